//! Read-only views of a swarm and of a peer, for drivers and applications.

use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddr;

use super::Endpoint;
use super::channel::Channel;
use super::swarm::{Swarm, Tree};
use crate::binmap::Binmap;
use crate::event::{PeerHandle, SwarmHandle};
use crate::hash::HashValue;
use crate::stats::ChannelStats;
use crate::wire::ChannelId;

/// A view of one swarm of an endpoint.
#[derive(Clone, Copy)]
pub struct SwarmRef<'a> {
    pub(super) endpoint: &'a Endpoint,
    pub(super) swarm: &'a Swarm,
}

impl fmt::Debug for SwarmRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwarmRef")
            .field("handle", &self.swarm.handle)
            .field("chunks", &self.chunk_count())
            .field("complete", &self.is_complete())
            .finish_non_exhaustive()
    }
}

impl<'a> SwarmRef<'a> {
    /// The swarm ID (the Merkle root hash).
    pub fn swarm_id(&self) -> &'a HashValue {
        &self.swarm.swarm_id
    }

    /// The reader set with [`Endpoint::set_playback`], its window filled in.
    pub fn playback(&self) -> Option<crate::Playback> {
        self.swarm.play.map(|p| p.playback)
    }

    /// How many consecutive chunks from `from` on are verified: what a reader at `from` may
    /// be given now (bytes verified up to).
    pub fn verified_run(&self, from: u64) -> u64 {
        let end = self.chunk_count().unwrap_or(u64::MAX);
        if from >= end {
            return 0;
        }
        let first_missing = self
            .swarm
            .have
            .missing_in(from..end)
            .next()
            .map_or(end, |r| r.start);
        first_missing - from
    }

    /// When the reader needs `chunk`: with a bitrate, for chunks of its window (the playback
    /// deadline the picker works to).
    pub fn deadline(&self, chunk: u64) -> Option<crate::time::Instant> {
        self.swarm.deadline(chunk)
    }

    /// The number of chunks, once known.
    pub fn chunk_count(&self) -> Option<u64> {
        self.swarm.chunk_count()
    }

    /// The content length in bytes, once known.
    pub fn content_len(&self) -> Option<u64> {
        self.swarm.tree.content_len()
    }

    /// The chunks verified and stored.
    pub fn verified(&self) -> &'a Binmap {
        &self.swarm.have
    }

    /// Whether every chunk is verified and stored.
    pub fn is_complete(&self) -> bool {
        self.swarm.complete
    }

    /// The swarm's peers (channels in any state).
    pub fn peers(&self) -> impl Iterator<Item = PeerHandle> + 'a {
        self.swarm.channels.iter().map(|&id| PeerHandle(id))
    }

    /// The number of established channels.
    pub fn connected_peers(&self) -> usize {
        let ep = self.endpoint;
        self.swarm
            .channels
            .iter()
            .filter(|&&id| ep.chan(id).is_some_and(Channel::is_established))
            .count()
    }

    /// The verified tree nodes `(bin, hash)` a resumed download needs (see
    /// [`SwarmContent::Partial`](crate::SwarmContent::Partial)); empty for a seeder.
    pub fn verified_hashes(&self) -> Vec<(crate::bin::Bin, HashValue)> {
        match &self.swarm.tree {
            Tree::Partial(t) => {
                // Every verified node of the tree (bins 0..2W−1, W the tree width).
                let Some(n) = t.chunk_count() else {
                    return Vec::new();
                };
                (0..2 * n.next_power_of_two() - 1)
                    .map(crate::bin::Bin::from_raw)
                    .filter(|&b| t.is_verified(b))
                    .filter_map(|b| Some((b, t.hash(b)?)))
                    .collect()
            }
            Tree::Full(_) | Tree::Live(_) => Vec::new(),
        }
    }

    /// The live swarm ID, for a live swarm.
    pub fn live_swarm_id(&self) -> Option<&'a crate::live::LiveSwarmId> {
        self.swarm.live.as_ref().map(|l| &l.cfg.id)
    }

    /// For a live swarm: the chunk this peer tuned in at (the first chunk of the first
    /// trusted munro; 0 at the injector), once known.
    pub fn live_tune_in(&self) -> Option<u64> {
        let l = self.swarm.live.as_ref()?;
        l.tuned_in.then_some(self.swarm.playback_start)
    }

    /// For a live swarm: one past the last chunk under a signed munro known here.
    pub fn live_end(&self) -> Option<u64> {
        self.swarm.live.as_ref().map(|l| l.end)
    }

    /// For a live swarm: the first chunk still kept; those before it fell out of the
    /// discard window (RFC 7574 §6.2) and are forgotten.
    pub fn live_floor(&self) -> Option<u64> {
        self.swarm.live.as_ref().map(|l| l.floor)
    }
}

/// A view of one peer (channel).
#[derive(Clone, Copy)]
pub struct PeerRef<'a> {
    pub(super) ch: &'a Channel,
    pub(super) swarm: SwarmHandle,
}

impl fmt::Debug for PeerRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerRef")
            .field("remote", &self.ch.remote)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

impl PeerRef<'_> {
    /// The peer's address.
    pub fn remote(&self) -> SocketAddr {
        self.ch.remote
    }

    /// Whether the handshake completed.
    pub fn is_connected(&self) -> bool {
        self.ch.is_established()
    }

    /// The swarm of this channel.
    pub fn swarm(&self) -> SwarmHandle {
        self.swarm
    }

    /// Our channel ID (as the peer sees it) and the peer's (0 until known).
    pub fn channel_ids(&self) -> (ChannelId, ChannelId) {
        (ChannelId(self.ch.wire_id), ChannelId(self.ch.peer_id))
    }

    /// The chunks the peer announced.
    pub fn peer_has(&self) -> &Binmap {
        &self.ch.peer_have
    }

    /// Whether the peer chokes us, and whether we choke it.
    pub fn choking(&self) -> (bool, bool) {
        (self.ch.choke.peer_choking, self.ch.choke.am_choking)
    }

    /// Counters of this channel.
    pub fn stats(&self) -> ChannelStats {
        self.ch.public_stats()
    }
}
