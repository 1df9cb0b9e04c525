//! The protocol engine: one [`Endpoint`] per UDP socket, holding every swarm and channel.
//!
//! # Calling order (the drain contract)
//!
//! The endpoint is a pure state machine. Its methods fall in four groups:
//!
//! - **inputs**: [`Endpoint::handle_datagram`] and [`Endpoint::handle_timeout`];
//! - **commands**: [`Endpoint::add_swarm`], [`Endpoint::connect`], [`Endpoint::close`],
//!   [`Endpoint::remove_swarm`], [`Endpoint::seek`];
//! - **outputs**: [`Endpoint::poll_transmit`], [`Endpoint::poll_timeout`],
//!   [`Endpoint::poll_event`];
//! - **views**: [`Endpoint::swarm`], [`Endpoint::peer`], [`Endpoint::stats`].
//!
//! After every input or command, drain the outputs in this order: call `poll_transmit` until
//! it returns `None` (sending each datagram), then read `poll_timeout` (and call
//! `handle_timeout` when that instant is reached), then `poll_event` until `None`. Time is
//! always an argument and must never decrease; the endpoint never reads a clock.
//!
//! Bad input from the network is never an error to the caller: it is dropped and counted in
//! [`EndpointStats`], and may close the channel it came on.

mod announce;
mod channel;
mod choke;
pub mod connmgr;
mod download;
mod error;
mod handshake;
mod held;
mod input;
mod live_swarm;
#[cfg(test)]
mod live_tests;
mod loss;
mod member;
#[cfg(all(test, feature = "membership"))]
mod member_tests;
mod mtu;
mod origin;
#[cfg(test)]
mod origin_tests;
mod output;
mod pex;
#[cfg(test)]
mod pex_tests;
mod picker;
mod playback;
#[cfg(test)]
mod playback_tests;
mod resume;
mod swarm;
mod table;
#[cfg(test)]
mod tests;
mod timer;
mod upload;
mod verify;
mod views;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BinaryHeap, VecDeque};
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::fmt;
use core::net::SocketAddr;

use crate::binmap::Binmap;
use crate::config::{EndpointConfig, SwarmConfig, SwarmContent};
use crate::event::{CloseReason, Event, PeerHandle, SwarmHandle};
use crate::hash::HashValue;
use crate::merkle::{ContentSize, PartialTree};
use crate::rand::Rng;
use crate::stats::EndpointStats;
use crate::store::ChunkStore;
use crate::time::{Duration, Instant};

use channel::{Channel, Role};
pub use error::{ConnectError, LiveChunkError, SwarmError};
pub use origin::{
    CRITICAL_HORIZON, CRITICAL_WINDOW, LIVE_GRACE, MAX_LIES, OriginError, OriginFailure,
    OriginFetch, OriginResource, OriginStats, TREE_PREFIX,
};
pub use pex::{PEX_MAX_PER_BLOCK, PEX_MAX_SHARE};
pub use playback::Playback;
use resume::resume_tree;
use swarm::{Swarm, Tree};
pub use timer::Timer;
pub use views::{PeerRef, SwarmRef};

/// A datagram written by [`Endpoint::poll_transmit`] into the caller's buffer.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// How many bytes of the buffer it occupies.
    pub size: usize,
}

/// The PPSPP protocol engine for one UDP socket: every swarm and channel on it.
///
/// # Calling order (the drain contract)
///
/// - **inputs**: [`Endpoint::handle_datagram`] and [`Endpoint::handle_timeout`];
/// - **commands**: [`Endpoint::add_swarm`], [`Endpoint::connect`], [`Endpoint::close`],
///   [`Endpoint::remove_swarm`], [`Endpoint::seek`];
/// - **outputs**: [`Endpoint::poll_transmit`], [`Endpoint::poll_timeout`],
///   [`Endpoint::poll_event`];
/// - **views**: [`Endpoint::swarm`], [`Endpoint::peer`], [`Endpoint::stats`].
///
/// After every input or command, drain the outputs in this order: call `poll_transmit` until
/// it returns `None` (sending each datagram), then read `poll_timeout` (and call
/// `handle_timeout` when that instant is reached), then `poll_event` until `None`. Time is
/// always an argument and must never decrease; the endpoint never reads a clock. Bad input
/// from the network is never an error to the caller: it is dropped and counted in
/// [`EndpointStats`], and may close the channel it came on.
pub struct Endpoint {
    pub(crate) cfg: EndpointConfig,
    pub(crate) rng: Rng,
    /// The keyed hash of the per-chunk tables (see `table`).
    pub(crate) chunk_hash: table::ChunkHash,
    /// Maps our internal channel IDs to the unpredictable IDs the network sees, and back.
    pub(crate) id_cipher: table::ChannelIdCipher,
    pub(crate) now: Instant,
    pub(crate) swarms: Vec<Option<Swarm>>,
    /// Swarms by the ID handshakes carry (a root hash, or a live stream's public key).
    pub(crate) swarm_by_id: BTreeMap<Vec<u8>, usize>,
    /// Counts swarms added: the generation of the next handle.
    pub(crate) swarm_generation: u32,
    /// Channels by slot (the low 16 bits of their ID); boxed so that empty slots stay small.
    pub(crate) channels: Vec<Option<Box<Channel>>>,
    pub(crate) live_channels: usize,
    pub(crate) free_slots: Vec<u16>,
    /// (remote, remote's channel ID) of handshakes we answered: a repeated handshake gets the
    /// same channel (RFC 7574 §8.2, R-8.2-d).
    pub(crate) handshakes: BTreeMap<(SocketAddr, u32), u32>,
    pub(crate) half_open: VecDeque<u32>,
    pub(crate) timers: BinaryHeap<Reverse<(Instant, u32)>>,
    pub(crate) send_queue: VecDeque<u32>,
    /// Datagrams already encoded (closing handshakes of channels already freed).
    pub(crate) raw_out: VecDeque<(SocketAddr, Vec<u8>)>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) stats: EndpointStats,
    pub(crate) next_tick: Instant,
    /// Set while held chunks are being verified again (no nested retries).
    pub(crate) retrying: bool,
    /// Held chunks released and not verified yet (see `verify`).
    pub(crate) released: VecDeque<(u32, crate::wire::Data)>,
    /// The last INTEGRITY received (channel, spec, hash): a SIGNED_INTEGRITY signs the hash of
    /// the INTEGRITY just before it (RFC 7574 §6.1.2.3).
    pub(crate) last_integrity: Option<(u32, crate::wire::ChunkSpec, HashValue)>,
    /// HTTP origins (see `origin`).
    pub(crate) origins: origin::Origins,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("now", &self.now)
            .field("swarms", &self.swarm_by_id.len())
            .field("channels", &self.stats.channels)
            .finish_non_exhaustive()
    }
}

/// How often choke rounds and PEX connections run.
const TICK: Duration = Duration::from_millis(500);
/// How long HAVEs of newly verified chunks are held before they may ride on another datagram
/// to the peer: chunks verified meanwhile aggregate into the same messages (fewer HAVE
/// messages, with no cost in completion time; measured in CHANGELOG).
pub(crate) const HAVE_DELAY: Duration = Duration::from_millis(100);
/// How much longer they wait for such a datagram before they are sent alone: a peer we
/// exchange nothing else with gets one HAVE datagram per 500 ms, not one per chunk.
pub(crate) const HAVE_ALONE_EXTRA: Duration = Duration::from_millis(400);
/// How long the ACK of a lone DATA waits for a second DATA (or another datagram to the peer)
/// to go out with (R-3.4-e, as QUIC's and TCP's delayed ACKs): halves the ACK datagrams of a
/// transfer. Well under one RTT on real paths (L-4.1-a asks for one ACK per RTT).
pub(crate) const ACK_DELAY: Duration = Duration::from_millis(10);
/// How long an UNCHOKE waits for a REQUEST before it is sent again (then twice as long each
/// time; see `Endpoint::repeat_unchokes`).
pub(crate) const UNCHOKE_REPEAT: Duration = Duration::from_secs(1);
/// How often a live stream's newest signed munro is sent again to a peer that shows no chunk
/// under it (RFC 7574 §6.1.2.4).
pub(crate) const MUNRO_REPEAT: Duration = Duration::from_secs(1);
/// How long a peer that lacks chunks we have may ask us for nothing before we announce our
/// whole map to it again (then twice as long each time, up to eight times as long).
pub(crate) const HAVE_REFRESH: Duration = Duration::from_secs(10);
/// How much data (in time at the peer's delivery rate) a download queues at one peer beyond
/// the round trip.
pub(crate) const QUEUE_TIME: Duration = Duration::from_millis(250);
/// The window over which a peer's delivery rate is measured.
pub(crate) const RATE_WINDOW: Duration = Duration::from_millis(250);
/// How often the unchoked set is re-ranked (RFC 7574 §3.9 leaves policy open; BitTorrent uses
/// 10 s).
const CHOKE_ROUND: Duration = Duration::from_secs(10);

impl Endpoint {
    /// A new endpoint with no swarms.
    pub fn new(config: impl Into<EndpointConfig>, now: Instant) -> Self {
        let config: EndpointConfig = config.into();
        Self {
            rng: Rng::from_seed(config.rng_seed),
            chunk_hash: table::ChunkHash::new(hash_key(config.rng_seed)),
            id_cipher: table::ChannelIdCipher::new(id_keys(config.rng_seed)),
            cfg: config,
            now,
            swarms: Vec::new(),
            swarm_by_id: BTreeMap::new(),
            swarm_generation: 0,
            channels: Vec::new(),
            live_channels: 0,
            free_slots: Vec::new(),
            handshakes: BTreeMap::new(),
            half_open: VecDeque::new(),
            timers: BinaryHeap::new(),
            send_queue: VecDeque::new(),
            raw_out: VecDeque::new(),
            events: VecDeque::new(),
            stats: EndpointStats::default(),
            next_tick: now + TICK,
            retrying: false,
            released: VecDeque::new(),
            last_integrity: None,
            origins: origin::Origins::default(),
        }
    }

    // ---- commands ------------------------------------------------------------------------

    /// Adds a swarm: a seeder ([`SwarmContent::Complete`]) or a downloader. `store` holds the
    /// content (a seeder's) or receives verified chunks (a downloader's).
    pub fn add_swarm(
        &mut self,
        now: Instant,
        cfg: impl Into<SwarmConfig>,
        mut store: Box<dyn ChunkStore>,
    ) -> Result<SwarmHandle, SwarmError> {
        let cfg: SwarmConfig = cfg.into();
        self.advance(now);
        let key = match &cfg.live {
            Some(l) => l.id.to_bytes(),
            None => cfg.swarm_id.as_bytes().to_vec(),
        };
        if self.swarm_by_id.contains_key(&key) {
            return Err(SwarmError::Duplicate);
        }
        if cfg.live.is_none() && cfg.swarm_id.len() != cfg.hash.output_len() {
            return Err(SwarmError::InvalidConfig(
                "swarm ID length differs from the hash length",
            ));
        }
        let mut have = Binmap::new();
        let tree = build_tree(&cfg, &mut *store, &mut have)?;
        let idx = match self.swarms.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.swarms.push(None);
                self.swarms.len() - 1
            }
        };
        self.swarm_generation = self.swarm_generation.wrapping_add(1);
        let handle = SwarmHandle {
            slot: idx as u32,
            generation: self.swarm_generation,
        };
        // A seeder is complete from the start; a resumed download completes (and finalises its
        // store) through `check_complete` below.
        let complete = matches!(tree, Tree::Full(_));
        let have_clone = have.clone();
        let live = cfg.live.clone().map(|cfg| {
            Box::new(live_swarm::LiveState {
                cfg,
                munros: BTreeMap::new(),
                end: 0,
                tuned_in: false,
                floor: 0,
                sent: Binmap::new(),
            })
        });
        let size_reported = tree.chunk_count().is_some();
        let mut swarm = Swarm {
            discovered: Default::default(),
            size_reported,
            handle,
            swarm_id: cfg.swarm_id,
            key,
            live,
            cfg,
            store,
            tree,
            have,
            requested: table::chunk_map(self.chunk_hash),
            claimed: have_clone,
            avail: Vec::new(),
            complete,
            channels: Default::default(),
            unchoked: Default::default(),
            optimistic: None,
            next_choke_round: now + CHOKE_ROUND,
            playback: 0,
            play: None,
            playback_start: 0,
            pex_candidates: Default::default(),
            tried: Default::default(),
            retry: BTreeMap::new(),
            next_pex: now,
            store_failed: false,
            held: held::Held::default(),
            have_log: Vec::new(),
            have_log_base: 0,
            have_idle: Vec::new(),
            have_runs: core::cell::RefCell::new((0, 0, Vec::new())),
            content_from_peers: 0,
            content_from_origins: 0,
        };
        swarm.ensure_avail(core::iter::empty());
        if let SwarmContent::Partial { .. } = swarm.cfg.content {
            // The resume data now lives in the tree and the map; do not keep a second copy.
            swarm.cfg.content = SwarmContent::Empty { size: None };
        }
        self.swarm_by_id.insert(swarm.key.clone(), idx);
        self.swarms[idx] = Some(swarm);
        self.check_complete(idx);
        Ok(handle)
    }

    /// Removes a swarm, closing its channels with closing handshakes, and gives its store
    /// back (`None`: no such swarm). The handle names nothing afterwards.
    pub fn remove_swarm(
        &mut self,
        now: Instant,
        swarm: SwarmHandle,
    ) -> Option<Box<dyn ChunkStore>> {
        self.advance(now);
        let idx = self.slot_of(swarm)?;
        let ids: Vec<u32> = self.swarms[idx]
            .as_ref()?
            .channels
            .iter()
            .copied()
            .collect();
        for id in ids {
            self.close_channel(id, CloseReason::LocalClosed, true);
        }
        self.drop_origins_of(swarm);
        let s = self.swarms[idx].take()?;
        self.swarm_by_id.remove(&s.key);
        Some(s.store)
    }

    /// Opens a channel to `remote` in `swarm`: sends the opening handshake (RFC 7574 §3.1.1).
    pub fn connect(
        &mut self,
        now: Instant,
        swarm: SwarmHandle,
        remote: SocketAddr,
    ) -> Result<PeerHandle, ConnectError> {
        self.advance(now);
        let idx = self.slot_of(swarm).ok_or(ConnectError::UnknownSwarm)?;
        let s = self.swarms[idx]
            .as_ref()
            .ok_or(ConnectError::UnknownSwarm)?;
        if s.channels
            .iter()
            .any(|&id| self.chan(id).is_some_and(|c| c.remote == remote))
        {
            return Err(ConnectError::AlreadyConnected);
        }
        let wire = Self::wire_params(&s.cfg);
        let id = self.alloc_channel(idx, remote, Role::Initiator, wire)?;
        if let Some(s) = self.swarms[idx].as_mut() {
            s.tried.insert(remote);
        }
        self.queue_send(id);
        self.reschedule(id);
        Ok(PeerHandle(id))
    }

    /// Closes a channel, sending a closing handshake (RFC 7574 §3.1.1, R-3.1.1-w).
    pub fn close(&mut self, now: Instant, peer: PeerHandle) {
        self.advance(now);
        if self.chan(peer.0).is_some() {
            self.close_channel(peer.0, CloseReason::LocalClosed, true);
        }
    }

    /// Moves the playback position of a swarm picking in order (streaming): chunks from there
    /// on are requested first.
    pub fn seek(&mut self, now: Instant, swarm: SwarmHandle, chunk: u64) {
        self.advance(now);
        let ids = match self.slot_of(swarm).and_then(|i| self.swarms[i].as_mut()) {
            Some(s) => {
                s.playback = chunk;
                s.channels.iter().copied().collect::<Vec<_>>()
            }
            None => return,
        };
        for id in ids {
            if let Some(ch) = self.chan_mut(id) {
                ch.down.pick_exhausted = false;
            }
            self.fill_requests(id);
        }
    }

    // ---- outputs -------------------------------------------------------------------------

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Endpoint::handle_timeout`] should next be called (it may be called early).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let chan = self.timers.peek().map(|Reverse((t, _))| *t);
        let tick = if self.swarm_by_id.is_empty() {
            None
        } else {
            Some(self.next_tick)
        };
        let t = match (chan, tick) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // An origin's backoff ending (origins asked nothing else of the clock).
        match (t, self.origin_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ---- views ---------------------------------------------------------------------------

    /// Endpoint-wide counters.
    pub fn stats(&self) -> EndpointStats {
        let mut s = self.stats;
        s.channels = self.live_channels as u64;
        s
    }

    /// A view of a swarm.
    pub fn swarm(&self, swarm: SwarmHandle) -> Option<SwarmRef<'_>> {
        let s = self.swarms[self.slot_of(swarm)?].as_ref()?;
        Some(SwarmRef {
            endpoint: self,
            swarm: s,
        })
    }

    /// A view of a peer.
    pub fn peer(&self, peer: PeerHandle) -> Option<PeerRef<'_>> {
        let ch = self.chan(peer.0)?;
        let swarm = self.swarms.get(ch.swarm)?.as_ref()?.handle;
        Some(PeerRef { ch, swarm })
    }

    /// Every swarm on the endpoint.
    pub fn swarms(&self) -> impl Iterator<Item = SwarmHandle> + '_ {
        self.swarms.iter().flatten().map(|s| s.handle)
    }

    /// The current time as far as the endpoint knows (the latest `now` it was given).
    pub fn now(&self) -> Instant {
        self.now
    }

    // ---- internals -----------------------------------------------------------------------

    /// The slot of the swarm `h` names, if it still exists.
    pub(crate) fn slot_of(&self, h: SwarmHandle) -> Option<usize> {
        let i = h.slot as usize;
        self.swarms
            .get(i)
            .and_then(Option::as_ref)
            .filter(|s| s.handle == h)
            .map(|_| i)
    }

    /// The store of swarm `h` (a seeder's content, a download's verified chunks), for an
    /// application that reads it while the swarm runs (a player reading what verified).
    pub fn store_mut(&mut self, h: SwarmHandle) -> Option<&mut dyn ChunkStore> {
        let i = self.slot_of(h)?;
        Some(&mut *self.swarms[i].as_mut()?.store)
    }

    pub(crate) fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    pub(crate) fn chan(&self, id: u32) -> Option<&Channel> {
        self.channels
            .get((id & 0xFFFF) as usize)
            .and_then(Option::as_deref)
            .filter(|c| c.id == id)
    }

    pub(crate) fn chan_mut(&mut self, id: u32) -> Option<&mut Channel> {
        self.channels
            .get_mut((id & 0xFFFF) as usize)
            .and_then(Option::as_deref_mut)
            .filter(|c| c.id == id)
    }

    /// The channel and its swarm, both mutable.
    pub(crate) fn parts(&mut self, id: u32) -> Option<(&mut Channel, &mut Swarm, &mut Rng)> {
        let ch = self
            .channels
            .get_mut((id & 0xFFFF) as usize)
            .and_then(Option::as_deref_mut)
            .filter(|c| c.id == id)?;
        let sw = self.swarms.get_mut(ch.swarm).and_then(Option::as_mut)?;
        Some((ch, sw, &mut self.rng))
    }

    pub(crate) fn queue_send(&mut self, id: u32) {
        if let Some(ch) = self.chan_mut(id) {
            if !ch.queued {
                ch.queued = true;
                self.send_queue.push_back(id);
            }
        }
    }

    /// The wall clock in µs since the Unix epoch, for DATA timestamps and ACK delays.
    pub(crate) fn unix_micros(&self) -> u64 {
        self.cfg
            .unix_time_at_zero
            .wrapping_add(self.now.as_micros())
    }
}

/// The secret key of the per-chunk tables' hash, drawn from the endpoint's seed in a stream of
/// its own (the main random stream, which picks channel IDs and chunks, is left as it was).
/// The keys of the channel ID permutation: secret, derived from the endpoint's seed apart from
/// its main random stream.
fn id_keys(seed: [u8; 32]) -> [u64; 4] {
    let mut s = seed;
    s[31] ^= 0x5A;
    s[1] ^= 0xC3;
    let mut r = Rng::from_seed(s);
    [r.next_u64(), r.next_u64(), r.next_u64(), r.next_u64()]
}

fn hash_key(seed: [u8; 32]) -> u64 {
    let mut s = seed;
    s[31] ^= 0xA5;
    s[0] ^= 0x3C;
    Rng::from_seed(s).next_u64()
}

/// The tree a new swarm starts with: a live injector's growing tree, a live peer's anchored
/// one, a seeder's complete one (every chunk in `have`), an empty one, or one rebuilt from
/// resume data (what checks out goes in `have`).
fn build_tree(
    cfg: &SwarmConfig,
    store: &mut dyn ChunkStore,
    have: &mut Binmap,
) -> Result<Tree, SwarmError> {
    let live_tree = match &cfg.live {
        None => None,
        Some(l) => Some(match &l.signer {
            Some(signer) => Tree::Live(Box::new(
                crate::live::LiveSource::new(l.params, signer.clone())
                    .map_err(|_| SwarmError::InvalidConfig("live parameters"))?,
            )),
            None => {
                l.params
                    .munro_layer()
                    .map_err(|_| SwarmError::InvalidConfig("live parameters"))?;
                let t = PartialTree::anchored(l.params.hash, l.params.chunk_size)
                    .map_err(|_| SwarmError::InvalidConfig("chunk size"))?;
                Tree::Partial(Box::new(t))
            }
        }),
    };
    Ok(match (live_tree, &cfg.content) {
        (Some(t), _) => t,
        (None, content) => match content {
            SwarmContent::Complete(t) => {
                if t.root_hash() != cfg.swarm_id || t.chunk_size() != cfg.chunk_size {
                    return Err(SwarmError::InvalidConfig("tree does not match the swarm"));
                }
                have.insert_range(0..t.chunk_count());
                Tree::Full(t.clone())
            }
            SwarmContent::Empty { size } => {
                let size = size.map_or(ContentSize::Unknown, ContentSize::Bytes);
                let t = PartialTree::new(cfg.hash, cfg.chunk_size, cfg.swarm_id, size)
                    .map_err(|_| SwarmError::InvalidConfig("content size or hash"))?;
                Tree::Partial(Box::new(t))
            }
            SwarmContent::Partial {
                size,
                verified,
                hashes,
            } => {
                let t = resume_tree(cfg, *size, verified, hashes, store, have)?;
                Tree::Partial(Box::new(t))
            }
        },
    })
}
