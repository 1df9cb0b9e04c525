//! Per-swarm state: content, integrity, availability, chunk picking.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::ops::Range;

use crate::bin::Bin;
use crate::binmap::Binmap;
use crate::config::SwarmConfig;
use crate::event::SwarmHandle;
use crate::hash::HashValue;
use crate::merkle::{MerkleTree, NodeHashes, PartialTree};
use crate::store::ChunkStore;
use crate::time::Instant;

use super::table::ChunkMap;

/// Where the hashes a swarm serves and verifies come from.
#[derive(Debug)]
pub(crate) enum Tree {
    /// A seeder's complete tree.
    Full(Arc<MerkleTree>),
    /// A downloader's verified partial tree (for a live stream: anchored at trusted munros).
    Partial(Box<PartialTree>),
    /// A live injector's growing tree.
    Live(Box<crate::live::LiveSource>),
}

impl Tree {
    pub(crate) fn chunk_count(&self) -> Option<u64> {
        match self {
            Self::Full(t) => Some(t.chunk_count()),
            Self::Partial(t) => t.chunk_count(),
            Self::Live(t) => Some(t.signed_end()),
        }
    }

    pub(crate) fn content_len(&self) -> Option<u64> {
        match self {
            Self::Full(t) => Some(t.content_len()),
            Self::Partial(t) => t.content_len(),
            Self::Live(_) => None,
        }
    }

    pub(crate) fn source(&self) -> &dyn NodeHashes {
        match self {
            Self::Full(t) => &**t,
            Self::Partial(t) => &**t,
            Self::Live(t) => &**t,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Swarm {
    /// Addresses reported in `Event::PeerDiscovered` (bounded; see `pex`).
    pub(crate) discovered: BTreeSet<SocketAddr>,
    /// `Event::SizeKnown` was emitted (or the size was known from the start).
    pub(crate) size_reported: bool,
    pub(crate) handle: SwarmHandle,
    pub(crate) cfg: SwarmConfig,
    pub(crate) swarm_id: HashValue,
    /// The swarm ID as handshakes carry it (the root hash, or a live stream's public key).
    pub(crate) key: Vec<u8>,
    /// Live stream state (`None` for static content).
    pub(crate) live: Option<Box<super::live_swarm::LiveState>>,
    pub(crate) store: Box<dyn ChunkStore>,
    pub(crate) tree: Tree,
    /// Chunks verified and stored.
    pub(crate) have: Binmap,
    /// Chunks requested from some peer and not yet received (value: how many peers).
    pub(crate) requested: ChunkMap<u8>,
    /// Chunks we have or requested from someone: what the picker skips outside the endgame.
    pub(crate) claimed: Binmap,
    /// Per-chunk count of connected peers that have it (once the chunk count is known).
    pub(crate) avail: Vec<u16>,
    pub(crate) complete: bool,
    pub(crate) channels: BTreeSet<u32>,
    pub(crate) unchoked: BTreeSet<u32>,
    pub(crate) optimistic: Option<u32>,
    pub(crate) next_choke_round: Instant,
    pub(crate) playback: u64,
    /// A reader's position and bitrate ([`Endpoint::set_playback`](super::Endpoint::set_playback)).
    pub(crate) play: Option<super::playback::PlayState>,
    /// Where downloading started (a live stream's tune-in point).
    pub(crate) playback_start: u64,
    /// Addresses learnt by PEX and not yet tried.
    pub(crate) pex_candidates: BTreeSet<SocketAddr>,
    /// Addresses ever connected, so PEX does not reconnect in a loop.
    pub(crate) tried: BTreeSet<SocketAddr>,
    pub(crate) next_pex: Instant,
    /// Peers we lost while downloading (they died, left or timed out), to reconnect to at the
    /// given time; the count is the attempts so far (the delay doubles with each). A restarted
    /// seeder is otherwise never found again: its address is in `tried`, and no peer can tell
    /// us about it by PEX once all their channels to it died too.
    pub(crate) retry: BTreeMap<SocketAddr, (Instant, u8)>,
    pub(crate) store_failed: bool,
    /// Chunks received but not yet verifiable (their hashes were lost or reordered).
    pub(crate) held: super::held::Held,
    /// Chunks verified, in order, from log position `have_log_base` on: what channels still
    /// announce from their `have_seq` on. One shared log makes a verified chunk cost O(1)
    /// whatever the number of peers; each channel folds its part in when it next sends.
    pub(crate) have_log: Vec<u64>,
    /// Log position of `have_log[0]`.
    pub(crate) have_log_base: u64,
    /// Channels with nothing left to announce: their HAVE timer is armed when the next chunk
    /// is verified (so arming costs O(1) per channel per flush, not per chunk).
    pub(crate) have_idle: Vec<u32>,
    /// The HAVE log positions `(from, end)` last sorted into runs by
    /// [`Swarm::take_new_haves`], and those runs.
    pub(crate) have_runs: core::cell::RefCell<(u64, u64, Vec<Range<u64>>)>,
    /// Content bytes verified and stored from peers, and from HTTP origins (peer efficiency).
    pub(crate) content_from_peers: u64,
    pub(crate) content_from_origins: u64,
}

impl Swarm {
    pub(crate) fn chunk_count(&self) -> Option<u64> {
        match &self.live {
            Some(l) => Some(l.end),
            None => self.tree.chunk_count(),
        }
    }

    /// The HAVE log's end position.
    pub(crate) fn have_log_end(&self) -> u64 {
        self.have_log_base + self.have_log.len() as u64
    }

    /// The largest aligned bin around `chunk` that we hold completely (for HAVE and ACK
    /// aggregation, RFC 7574 §4.3).
    pub(crate) fn complete_bin(&self, chunk: u64) -> Bin {
        self.have
            .largest_complete_bin(chunk)
            .or_else(|| Bin::leaf(chunk))
            .unwrap_or(Bin::NONE)
    }
}
