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

mod channel;
#[cfg(test)]
mod live_tests;
mod recv;
mod send;
mod swarm;
mod table;
#[cfg(test)]
mod tests;
mod timer;

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
use crate::rtt::{RttConfig, RttEstimator};
use crate::stats::{ChannelStats, EndpointStats};
use crate::store::ChunkStore;
use crate::time::{Duration, Instant};
use crate::wire::{ChannelId, ContentIntegrity, WireParams};

use channel::{Channel, Role, State};
use swarm::{Swarm, Tree};

/// A datagram written by [`Endpoint::poll_transmit`] into the caller's buffer.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// How many bytes of the buffer it occupies.
    pub size: usize,
}

/// Why a swarm could not be added.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SwarmError {
    /// A swarm with this ID is already on the endpoint.
    Duplicate,
    /// The swarm's settings are inconsistent (hash length, chunk size, content).
    InvalidConfig(&'static str),
}

impl fmt::Display for SwarmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duplicate => f.write_str("a swarm with this ID already exists"),
            Self::InvalidConfig(why) => write!(f, "invalid swarm configuration: {why}"),
        }
    }
}

impl core::error::Error for SwarmError {}

/// Why [`Endpoint::push_live_chunk`] refused a chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LiveChunkError {
    /// The swarm is not a live injector's (or does not exist).
    NotLiveSource,
    /// The chunk is not exactly the swarm's chunk size (its length is given).
    Length(usize),
    /// The store could not take the chunk.
    Store(crate::store::StoreError),
    /// The live tree refused it (see the inner error).
    Live(crate::live::LiveError),
}

impl fmt::Display for LiveChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotLiveSource => f.write_str("not a live injector's swarm"),
            Self::Length(n) => write!(f, "a live chunk of {n} bytes is not the chunk size"),
            Self::Store(e) => write!(f, "store: {e}"),
            Self::Live(e) => write!(f, "live: {e}"),
        }
    }
}

impl core::error::Error for LiveChunkError {}

/// Why a connection could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// No such swarm.
    UnknownSwarm,
    /// The endpoint holds as many channels as it may.
    TooManyChannels,
    /// A channel with this peer already exists in this swarm.
    AlreadyConnected,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownSwarm => "no such swarm",
            Self::TooManyChannels => "too many channels",
            Self::AlreadyConnected => "already connected to that peer in this swarm",
        })
    }
}

impl core::error::Error for ConnectError {}

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
    /// The last INTEGRITY received (channel, spec, hash): a SIGNED_INTEGRITY signs the hash of
    /// the INTEGRITY just before it (RFC 7574 §6.1.2.3).
    pub(crate) last_integrity: Option<(u32, crate::wire::ChunkSpec, HashValue)>,
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
/// to the peer: chunks verified meanwhile aggregate into the same messages (a 300-peer swarm
/// sent 24% fewer HAVE messages with 100 ms than with 50 ms, completing as fast).
pub(crate) const HAVE_DELAY: Duration = Duration::from_millis(100);
/// How much longer they wait for such a datagram before they are sent alone: a peer we
/// exchange nothing else with gets one HAVE datagram per 500 ms, not one per chunk (with 1 KiB
/// chunks at 1 MB/s and 30 peers, 60 datagrams/s instead of 30,000 messages/s).
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
    pub fn new(config: EndpointConfig, now: Instant) -> Self {
        Self {
            rng: Rng::from_seed(config.rng_seed),
            chunk_hash: table::ChunkHash::new(hash_key(config.rng_seed)),
            id_cipher: table::ChannelIdCipher::new(id_keys(config.rng_seed)),
            cfg: config,
            now,
            swarms: Vec::new(),
            swarm_by_id: BTreeMap::new(),
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
            last_integrity: None,
        }
    }

    // ---- commands ------------------------------------------------------------------------

    /// Adds a swarm: a seeder ([`SwarmContent::Complete`]) or a downloader. `store` holds the
    /// content (a seeder's) or receives verified chunks (a downloader's).
    pub fn add_swarm(
        &mut self,
        now: Instant,
        cfg: SwarmConfig,
        mut store: Box<dyn ChunkStore>,
    ) -> Result<SwarmHandle, SwarmError> {
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
        let tree = match (live_tree, &cfg.content) {
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
                    let t = resume_tree(&cfg, *size, verified, hashes, &mut *store, &mut have)?;
                    Tree::Partial(Box::new(t))
                }
            },
        };
        let idx = match self.swarms.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.swarms.push(None);
                self.swarms.len() - 1
            }
        };
        let handle = SwarmHandle(idx as u32);
        // A seeder is complete from the start; a resumed download completes (and finalises its
        // store) through `check_complete` below.
        let complete = matches!(tree, Tree::Full(_));
        let have_clone = have.clone();
        let live = cfg.live.clone().map(|cfg| {
            Box::new(swarm::LiveState {
                cfg,
                munros: BTreeMap::new(),
                end: 0,
                tuned_in: false,
                floor: 0,
            })
        });
        let mut swarm = Swarm {
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
            playback_start: 0,
            pex_candidates: Default::default(),
            tried: Default::default(),
            retry: BTreeMap::new(),
            next_pex: now,
            store_failed: false,
            held: BTreeMap::new(),
            have_log: Vec::new(),
            have_log_base: 0,
            have_idle: Vec::new(),
            have_runs: core::cell::RefCell::new((0, 0, Vec::new())),
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

    /// Removes a swarm, closing its channels with closing handshakes.
    pub fn remove_swarm(&mut self, now: Instant, swarm: SwarmHandle) {
        self.advance(now);
        let idx = swarm.0 as usize;
        let Some(s) = self.swarms.get(idx).and_then(Option::as_ref) else {
            return;
        };
        let ids: Vec<u32> = s.channels.iter().copied().collect();
        for id in ids {
            self.close_channel(id, CloseReason::LocalClosed, true);
        }
        if let Some(s) = self.swarms[idx].take() {
            self.swarm_by_id.remove(&s.key);
        }
    }

    /// Opens a channel to `remote` in `swarm`: sends the opening handshake (RFC 7574 §3.1.1).
    pub fn connect(
        &mut self,
        now: Instant,
        swarm: SwarmHandle,
        remote: SocketAddr,
    ) -> Result<PeerHandle, ConnectError> {
        self.advance(now);
        let idx = swarm.0 as usize;
        let s = self
            .swarms
            .get(idx)
            .and_then(Option::as_ref)
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

    /// The injector of a live stream ([`SwarmConfig::live_source`]) adds the next chunk: it is
    /// stored, hashed, and once `nchunks_per_sig` chunks are in, their munro is signed and
    /// they are announced to peers (RFC 7574 §6.1.2.3: no HAVE before the signature).
    /// Returns the signed munro when this chunk completed one. Every chunk is exactly the
    /// swarm's chunk size.
    pub fn push_live_chunk(
        &mut self,
        now: Instant,
        swarm: SwarmHandle,
        data: &[u8],
    ) -> Result<Option<crate::live::SignedMunro>, LiveChunkError> {
        self.live_source_step(now, swarm, |src, store, cs, unix| {
            if data.len() != cs as usize {
                return Err(LiveChunkError::Length(data.len()));
            }
            store
                .write_chunk(src.chunks_pushed(), data)
                .map_err(LiveChunkError::Store)?;
            src.push_chunk(data, unix).map_err(LiveChunkError::Live)
        })
    }

    /// The injector ends its live stream: a last munro with fewer than `nchunks_per_sig`
    /// chunks is signed (its missing leaves empty, as a static tree's) and its chunks are
    /// announced, so peers can fetch the stream's tail. No chunk can be pushed afterwards.
    pub fn finish_live(
        &mut self,
        now: Instant,
        swarm: SwarmHandle,
    ) -> Result<Option<crate::live::SignedMunro>, LiveChunkError> {
        self.live_source_step(now, swarm, |src, _, _, unix| {
            src.finish(unix).map_err(LiveChunkError::Live)
        })
    }

    /// Runs `step` on an injector's tree (with its store, chunk size and the Unix time);
    /// when it signs a munro, the munro's chunks become ours and are announced.
    fn live_source_step(
        &mut self,
        now: Instant,
        swarm: SwarmHandle,
        step: impl FnOnce(
            &mut crate::live::LiveSource,
            &mut dyn ChunkStore,
            u32,
            u64,
        ) -> Result<Option<crate::live::SignedMunro>, LiveChunkError>,
    ) -> Result<Option<crate::live::SignedMunro>, LiveChunkError> {
        self.advance(now);
        let unix = self.unix_micros();
        let idx = swarm.0 as usize;
        let Some(s) = self.swarms.get_mut(idx).and_then(Option::as_mut) else {
            return Err(LiveChunkError::NotLiveSource);
        };
        let (Tree::Live(src), Some(live)) = (&mut s.tree, s.live.as_mut()) else {
            return Err(LiveChunkError::NotLiveSource);
        };
        let Some(m) = step(src, &mut *s.store, s.cfg.chunk_size, unix)? else {
            return Ok(None);
        };
        let first = m.bin.first_chunk().unwrap_or(0);
        // A short last munro covers chunks that were never pushed.
        let end = src.signed_end();
        live.end = end;
        s.have.insert_range(first..end);
        s.claimed.insert_range(first..end);
        s.live_forget();
        self.announce(idx, first..end);
        Ok(Some(m))
    }

    /// Puts newly verified chunks in the swarm's HAVE log and wakes the channels that had
    /// nothing to announce: each flushes its HAVEs after [`HAVE_DELAY`], with its next
    /// datagram or alone (R-3.2-a leaves the timing to the implementation), so runs aggregate
    /// into single messages (R-4.3.1-a).
    pub(crate) fn announce(&mut self, idx: usize, chunks: core::ops::Range<u64>) {
        let now = self.now;
        let idle = match self.swarms.get_mut(idx).and_then(Option::as_mut) {
            Some(s) => {
                s.have_log.extend(chunks);
                core::mem::take(&mut s.have_idle)
            }
            None => Vec::new(),
        };
        for &o in &idle {
            if let Some(och) = self.chan_mut(o) {
                och.have_idle = false;
                if och.haves_due.is_none() {
                    och.haves_due = Some(now + HAVE_DELAY);
                }
                self.reschedule(o);
            }
        }
        if let Some(s) = self.swarms.get_mut(idx).and_then(Option::as_mut) {
            // Keep the list's allocation.
            let mut idle = idle;
            idle.clear();
            if s.have_idle.is_empty() {
                s.have_idle = idle;
            }
        }
        self.compact_have_log(idx);
    }

    /// Moves the playback position of a swarm picking in order (streaming): chunks from there
    /// on are requested first.
    pub fn seek(&mut self, now: Instant, swarm: SwarmHandle, chunk: u64) {
        self.advance(now);
        let ids = match self
            .swarms
            .get_mut(swarm.0 as usize)
            .and_then(Option::as_mut)
        {
            Some(s) => {
                s.playback = chunk;
                s.channels.iter().copied().collect::<Vec<_>>()
            }
            None => return,
        };
        for id in ids {
            if let Some(ch) = self.chan_mut(id) {
                ch.pick_exhausted = false;
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
        match (chan, tick) {
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
        let s = self.swarms.get(swarm.0 as usize)?.as_ref()?;
        Some(SwarmRef {
            endpoint: self,
            swarm: s,
        })
    }

    /// A view of a peer.
    pub fn peer(&self, peer: PeerHandle) -> Option<PeerRef<'_>> {
        self.chan(peer.0).map(|ch| PeerRef { ch })
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

    fn alloc_channel(
        &mut self,
        swarm: usize,
        remote: SocketAddr,
        role: Role,
        wire: WireParams,
    ) -> Result<u32, ConnectError> {
        if self.live_channels >= self.cfg.max_channels {
            return Err(ConnectError::TooManyChannels);
        }
        let slot = match self.free_slots.pop() {
            Some(s) => s as usize,
            None if self.channels.len() < 0x1_0000 => {
                self.channels.push(None);
                self.channels.len() - 1
            }
            None => return Err(ConnectError::TooManyChannels),
        };
        // The high 16 bits are random; the low 16 bits index the slot, so a datagram finds its
        // channel in O(1). The network sees the ID through a keyed permutation (RFC 7574
        // §12.1, R-8.3-a: unpredictable IDs), never 0 (the handshake's channel).
        let mut id;
        loop {
            id = (self.rng.next_u32() & 0xFFFF_0000) | slot as u32;
            if id != 0 && self.id_cipher.encrypt(id) != 0 {
                break;
            }
        }
        let mss = self.cfg.max_datagram_size as u64;
        let cc = self.cfg.congestion.build(self.now, mss);
        let mut ch = Channel::new(id, swarm, remote, role, wire, cc, self.now, self.chunk_hash);
        ch.wire_id = self.id_cipher.encrypt(id);
        let mut rc = RttConfig::default();
        rc.min_rto(Duration::from_millis(200));
        ch.rtt = RttEstimator::new(rc);
        ch.hs_attempts = 0;
        // Announcing starts with the whole map when the channel is established; the log
        // before this point is already in it.
        ch.have_seq = self.swarms[swarm].as_ref().map_or(0, Swarm::have_log_end);
        self.channels[slot] = Some(Box::new(ch));
        self.live_channels += 1;
        if let Some(s) = self.swarms.get_mut(swarm).and_then(Option::as_mut) {
            s.channels.insert(id);
        }
        Ok(id)
    }

    /// Frees a channel. With `notify`, a closing handshake is sent if the peer knows us.
    pub(crate) fn close_channel(&mut self, id: u32, reason: CloseReason, notify: bool) {
        let slot = (id & 0xFFFF) as usize;
        // Check the ID before taking: a stale ID must not free the slot's new occupant.
        if self.chan(id).is_none() {
            return;
        }
        let Some(ch) = self.channels.get_mut(slot).and_then(Option::take) else {
            return;
        };
        self.live_channels -= 1;
        if notify && ch.peer_id != 0 {
            // Closing handshake: source channel 0, empty option list (R-3.1.1-p, R-3.1.1-q).
            let mut d = Vec::with_capacity(10);
            d.extend_from_slice(&ch.peer_id.to_be_bytes());
            d.push(0x00);
            d.extend_from_slice(&[0, 0, 0, 0]);
            d.push(0xFF);
            self.raw_out.push_back((ch.remote, d));
        }
        self.free_slots.push(slot as u16);
        if ch.role == Role::Responder {
            self.handshakes.remove(&(ch.remote, ch.peer_id));
        }
        let swarm_idx = ch.swarm;
        let mut released = Vec::new();
        if let Some(s) = self.swarms.get_mut(swarm_idx).and_then(Option::as_mut) {
            s.channels.remove(&id);
            s.unchoked.remove(&id);
            if s.optimistic == Some(id) {
                s.optimistic = None;
            }
            if ch.is_established() {
                s.add_avail(&ch.peer_have, -1);
            }
            // A peer lost while we still download is tried again later, with backoff (it may
            // restart; a seeder that did is otherwise never found again). Not a peer that sent
            // bad content or broke the protocol, nor one we closed ourselves.
            let lost = matches!(
                reason,
                CloseReason::Dead | CloseReason::RemoteClosed | CloseReason::Evicted
            ) || (reason == CloseReason::HandshakeTimeout && ch.role == Role::Initiator);
            if lost && !s.complete && (ch.is_established() || ch.role == Role::Initiator) {
                let attempts = s.retry.get(&ch.remote).map_or(0, |r| r.1);
                if s.retry.len() < swarm::RETRY_MAX || s.retry.contains_key(&ch.remote) {
                    let delay = swarm::RETRY_BASE * (1u32 << attempts.min(swarm::RETRY_MAX_SHIFT));
                    s.retry.insert(ch.remote, (self.now + delay, attempts));
                }
            }
            for c in table::sorted_keys(&ch.requested) {
                release(s, c);
                released.push(c);
            }
            if ch.is_established() || ch.role == Role::Initiator {
                self.events.push_back(Event::PeerClosed {
                    swarm: s.handle,
                    peer: PeerHandle(id),
                    remote: ch.remote,
                    reason,
                });
            }
            if !released.is_empty() {
                self.offer_released(swarm_idx, &released, id);
            }
        }
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

    /// Asks peers for more chunks, up to the channel's request target.
    pub(crate) fn fill_requests(&mut self, id: u32) {
        let max = match self
            .chan(id)
            .and_then(|c| self.swarms.get(c.swarm)?.as_ref())
        {
            Some(s) => s.cfg.max_requests_per_peer,
            None => return,
        };
        let Some((ch, sw, rng)) = self.parts(id) else {
            return;
        };
        if !ch.is_established()
            || !ch.proven
            || ch.peer_choking
            || sw.complete
            || sw.store_failed
            || !ch.accepts(crate::wire::MessageType::Request)
        {
            return;
        }
        if ch.pick_exhausted {
            // The last pick found nothing this peer has that we could ask for; a useful HAVE
            // or a released request clears this.
            return;
        }
        if !ch.refill_due(max) {
            return;
        }
        let target = ch.request_target.min(max);
        let outstanding = ch.requested.len();
        // Whole groups of PICK_GROUP chunks (one REQUEST, later one HAVE), overshooting the
        // target by less than a group.
        let want = (target - outstanding).next_multiple_of(swarm::PICK_GROUP as usize);
        // Endgame: everything missing is already requested; a peer that is running dry may
        // then ask for chunks already requested elsewhere (and CANCELs the copies later).
        let endgame = outstanding < 4
            && sw.live.is_none()
            && sw
                .chunk_count()
                .is_some_and(|n| sw.have.count() + sw.requested.len() as u64 >= n);
        let (picks, whole) = sw.pick(&ch.peer_have, &ch.requested, want, endgame, rng);
        if picks.is_empty() {
            // Only a pick that looked at the peer's whole map may conclude there is nothing.
            ch.pick_exhausted = !endgame && whole;
            return;
        }
        for &(a, b) in &picks {
            for c in a..=b {
                ch.request_seq += 1;
                ch.requested.insert(
                    c,
                    channel::Requested {
                        seq: ch.request_seq,
                    },
                );
                *sw.requested.entry(c).or_insert(0) += 1;
            }
            sw.claimed.insert_range(a..b.saturating_add(1));
        }
        // In request order (not sorted): peers serve requests first come, first served, so a
        // chunk still missing behind a delivered later request is a hole (see
        // `expire_requests`); sorting batches together would reorder them.
        for (a, b) in picks {
            match ch.pending_requests.last_mut() {
                Some(l) if l.1.checked_add(1) == Some(a) => l.1 = b,
                _ => ch.pending_requests.push((a, b)),
            }
        }
        self.queue_send(id);
        self.reschedule(id);
    }

    /// Chunks `released` (requests given up) are free to fetch again: channels whose peer has
    /// one of them pick again; the others are not disturbed (picking on every release, for
    /// every channel, dominated large simulations).
    pub(crate) fn offer_released(&mut self, swarm_idx: usize, released: &[u64], except: u32) {
        let Some(s) = self.swarms.get(swarm_idx).and_then(Option::as_ref) else {
            return;
        };
        let ids: Vec<u32> = s
            .channels
            .iter()
            .copied()
            .filter(|&o| o != except)
            .collect();
        // As runs (callers pass chunks in order, mostly contiguous).
        let mut runs: Vec<core::ops::Range<u64>> = Vec::new();
        for &c in released {
            match runs.last_mut() {
                Some(r) if r.end == c => r.end += 1,
                _ => runs.push(c..c.saturating_add(1)),
            }
        }
        let max = s.cfg.max_requests_per_peer;
        for o in ids {
            let Some(ch) = self.chan_mut(o) else { continue };
            // Only peers we may ask now (fill_requests would do nothing for the others).
            if !ch.is_established() || !ch.proven || ch.peer_choking {
                continue;
            }
            // Nothing to clear and no refill due: fill_requests would return at once, so the
            // peer's map need not be searched (with many peers and scattered releases, that
            // search was 2% of a 1,000-peer simulation).
            if !ch.pick_exhausted && !ch.refill_due(max) {
                continue;
            }
            if runs.iter().any(|r| ch.peer_have.intersects(r.clone())) {
                ch.pick_exhausted = false;
                self.fill_requests(o);
            }
        }
    }

    /// Once swarm `idx`'s HAVE log is long, every channel folds its part into its own pending
    /// map and the log restarts, so a channel that cannot send does not hold the log forever.
    pub(crate) fn compact_have_log(&mut self, idx: usize) {
        let Some(s) = self.swarms.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        if s.have_log.len() < swarm::HAVE_LOG_MAX {
            return;
        }
        for &o in &s.channels {
            if let Some(ch) = self
                .channels
                .get_mut((o & 0xFFFF) as usize)
                .and_then(Option::as_deref_mut)
                .filter(|c| c.id == o)
            {
                s.absorb_haves(ch);
            }
        }
        s.have_log_base = s.have_log_end();
        s.have_log.clear();
    }

    /// Pushes an event, merging consecutive verified ranges.
    pub(crate) fn push_verified(&mut self, swarm: SwarmHandle, chunk: u64) {
        if let Some(Event::ChunksVerified { swarm: s, range }) = self.events.back_mut() {
            if *s == swarm && range.end == chunk {
                range.end += 1;
                return;
            }
        }
        self.events.push_back(Event::ChunksVerified {
            swarm,
            range: chunk..chunk + 1,
        });
    }
}

/// Rebuilds a download's verified state from saved resume data (see
/// [`SwarmContent::Partial`]). Nothing saved is believed blindly: the saved tree nodes must fold
/// up, pair by pair, to the swarm ID, and every saved chunk is read back from the store and
/// hashed against its verified leaf. What fails is simply downloaded again.
fn resume_tree(
    cfg: &SwarmConfig,
    size: Option<u64>,
    verified: &[core::ops::Range<u64>],
    hashes: &[(crate::bin::Bin, HashValue)],
    store: &mut dyn ChunkStore,
    have: &mut Binmap,
) -> Result<PartialTree, SwarmError> {
    use crate::bin::Bin;
    let content = size.map_or(ContentSize::Unknown, ContentSize::Bytes);
    let mut tree = PartialTree::new(cfg.hash, cfg.chunk_size, cfg.swarm_id, content)
        .map_err(|_| SwarmError::InvalidConfig("content size or hash"))?;
    // Resume needs the size: without it the tree's shape (and the root's bin) is unknown.
    let (Some(len), false) = (size, hashes.is_empty()) else {
        return Ok(tree);
    };
    let cs = u64::from(cfg.chunk_size);
    let n = len.div_ceil(cs);
    let Some(root) = Bin::root_covering(n) else {
        return Ok(tree);
    };
    let saved: BTreeMap<Bin, HashValue> = hashes.iter().copied().collect();
    let zero = cfg.hash.empty();
    let past_end = |b: Bin| b.first_chunk().is_some_and(|f| f >= n);
    let node = |b: Bin| -> Option<HashValue> {
        if past_end(b) {
            Some(zero)
        } else {
            saved.get(&b).copied()
        }
    };
    // Top down from the root: a pair of children is accepted when it folds into its
    // (already accepted) parent.
    let mut accepted: BTreeMap<Bin, HashValue> = BTreeMap::new();
    accepted.insert(root, cfg.swarm_id);
    let mut frontier = alloc::vec![root];
    while let Some(parent) = frontier.pop() {
        let Some((l, r)) = parent.children() else {
            continue;
        };
        let (Some(lh), Some(rh)) = (node(l), node(r)) else {
            continue;
        };
        let ph = accepted[&parent];
        let folded = if lh.is_zero() && rh.is_zero() {
            zero
        } else {
            cfg.hash.digest_pair(&lh, &rh)
        };
        if folded != ph {
            continue;
        }
        for (b, h) in [(l, lh), (r, rh)] {
            if !past_end(b) {
                accepted.insert(b, h);
                frontier.push(b);
            }
        }
    }
    for (b, h) in &accepted {
        if *b != root {
            let _ = tree.add_trusted(*b, h);
        }
    }
    // Every saved chunk must still be on disk as it was verified.
    let mut buf = alloc::vec![0u8; cfg.chunk_size as usize];
    for r in verified {
        for c in r.start..r.end.min(n) {
            let Some(leaf) = Bin::leaf(c).and_then(|b| accepted.get(&b)) else {
                continue;
            };
            let expect = if c + 1 < n { cs } else { len - (n - 1) * cs };
            let ok = match store.read_chunk(c, &mut buf) {
                Ok(k) => {
                    k as u64 == expect
                        && cfg.hash.digest(&buf[..k]) == *leaf
                        && tree.verify_chunk(c, &buf[..k]).is_ok()
                }
                Err(_) => false,
            };
            if ok {
                have.insert(c);
            }
        }
    }
    Ok(tree)
}

/// Forgets one request for chunk `c` in the swarm-wide table.
pub(crate) fn release(s: &mut Swarm, c: u64) {
    if let Some(k) = s.requested.get_mut(&c) {
        *k -= 1;
        if *k == 0 {
            s.requested.remove(&c);
            if !s.have.contains(c) {
                s.claimed.remove(c);
            }
        }
    }
}

/// A view of one swarm of an endpoint.
#[derive(Clone, Copy)]
pub struct SwarmRef<'a> {
    endpoint: &'a Endpoint,
    swarm: &'a Swarm,
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
    /// [`SwarmContent::Partial`]); empty for a seeder.
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
}

/// A view of one peer (channel).
#[derive(Clone, Copy)]
pub struct PeerRef<'a> {
    ch: &'a Channel,
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
        SwarmHandle(self.ch.swarm as u32)
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
        (self.ch.peer_choking, self.ch.am_choking)
    }

    /// Counters of this channel.
    pub fn stats(&self) -> ChannelStats {
        let mut s = self.ch.stats.public();
        s.rtt = self.ch.rtt.smoothed();
        s.cwnd = self.ch.cc.window();
        s.in_flight = self.ch.cc.bytes_in_flight();
        s
    }
}

/// The integrity method every static swarm speaks.
pub(crate) const STATIC_INTEGRITY: ContentIntegrity = ContentIntegrity::MerkleTree;

/// Whether a channel in this state counts as half-open (responder, unproven).
pub(crate) fn is_half_open(ch: &Channel) -> bool {
    ch.role == Role::Responder && ch.state == State::Connecting
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
