//! Hybrid delivery: HTTP origins as sources of chunks beside the peers (issue 17).
//!
//! The decisions live here, sans IO, so that the `ppspp` program and the simulator share
//! them: which bytes to fetch from which origin, when, and what to make of the answer. The
//! adapter only performs the byte-range GETs the endpoint asks for
//! ([`Endpoint::poll_origin_fetch`]) and hands back the bodies ([`Endpoint::origin_data`]) or
//! the failures ([`Endpoint::origin_failed`]).
//!
//! # Verification
//!
//! A peer sends the hashes a chunk needs with its DATA; a file server sends only bytes. The
//! origin therefore hosts the content's tree sidecar ([`crate::merkle::SidecarLayout`]) next
//! to the content. Before any content, the endpoint fetches a prefix of the sidecar
//! ([`OriginResource::Tree`]): the peak hashes (checked against the swarm ID: the size) and
//! the upper layers that fit (checked as one fold against the root). Before content under a
//! node of the lowest layer it has, it fetches that node's leaf hashes (checked by folding
//! into the node). Each chunk is then checked against its verified leaf hash, exactly as a
//! peer's, before it is stored: an origin that serves wrong bytes (or a wrong sidecar) is
//! counted, backed off, and disabled after [`MAX_LIES`] offences, like a lying peer.
//!
//! # The hybrid switch
//!
//! - A swarm with no peer connected fetches from the origin alone, in order from the playback
//!   position, with runs as long as the origin's measured rate warrants, at full speed.
//! - Beside peers, the origin fetches (1) the critical window: chunks from the first one not
//!   yet verified at the playback position on that no peer was asked for, [`CRITICAL_WINDOW`]
//!   of them until a peer has proven itself by delivering (with a playback deadline: those
//!   whose deadline is nearer than peers are expected to take); and (2) while peers have
//!   nothing for us to ask, chunks no connected peer has (nobody else can deliver them), in
//!   short runs along a walk that jumps to a random point when it meets others' chunks, so
//!   that leechers sharing an origin fetch different parts and trade the rest.
//! - A viewer's prefetch part that only seeders could fill (chunks no leecher peer has, due
//!   within [`PREFETCH_FLOOR`]) comes from the origin unless the seeders deliver at least 1.5
//!   times the media rate: at the front of a swarm nobody else has those chunks, and a
//!   seeder's uplink is shared by everyone.
//! - Everything else is left to peers; chunks the origin was asked for are claimed in the
//!   swarm's tables as a request to a peer would be, so peers do not fetch them too (outside
//!   the endgame), and are released for peers when the origin fails.

use alloc::collections::{BTreeSet, VecDeque};
use alloc::vec::Vec;
use core::ops::Range;

use super::Endpoint;
use super::download::release;
use super::swarm::Tree;
use crate::bin::Bin;
use crate::event::{Event, OriginHandle, SwarmHandle};
use crate::merkle::{SidecarLayout, VerifyError};
use crate::time::{Duration, Instant};

mod live;
mod pick;

pub use live::LIVE_GRACE;

/// How many bytes of the sidecar the first fetch asks for: the header, the peaks and the upper
/// layers (the whole sidecar of contents up to about 1,600 chunks with SHA-1).
pub const TREE_PREFIX: u64 = 64 * 1024;
/// Chunks of the critical window while no peer has delivered anything.
pub const CRITICAL_WINDOW: u64 = 16;
/// The media time ahead of the playback position that counts as critical: a chunk due within
/// it that is still missing is fetched from the origin even when a peer was asked for it (the
/// startup and rebuffering the product brief allows: ≤ 1 s).
pub const CRITICAL_HORIZON: Duration = Duration::from_secs(1);
/// The media time ahead of a viewer's playback that the origin keeps filled with chunks no
/// leecher peer has (see [`Endpoint::deadline_critical`]): an outage of the origin as long
/// as this leaves such a viewer playing from what it holds and from seeders.
const PREFETCH_FLOOR: Duration = Duration::from_secs(30);
/// How far ahead of a viewer's playback (media time) the leaf hashes are fetched before any
/// chunk there turns critical.
const LEAF_LOOKAHEAD: Duration = Duration::from_secs(4);
/// Offences (wrong chunk, wrong sidecar) after which an origin is disabled.
pub const MAX_LIES: u32 = 3;
/// Fetches outstanding at one origin at a time.
const MAX_FETCHES: usize = 4;
/// The smallest and largest fetch of content, in chunks.
const MIN_RUN: u64 = 16;
/// Window chunks [`Endpoint::deadline_critical`] looks at, at most, per call.
const CRITICAL_WALK: u32 = 4096;
/// Critical chunks it returns, at most (a critical horizon of 4 Mbit/s media is 488 chunks
/// of 1 KiB).
const CRITICAL_MAX: usize = 2048;
const MAX_RUN_BYTES: u64 = 4 << 20;
/// How much content, in time at the origin's measured rate, one fetch asks for.
const RUN_TIME: Duration = Duration::from_millis(250);
/// How long a viewer's look for critical chunks that found none holds (a deadline moves by
/// this much at most before it is looked at again; the origin answers in hundreds).
const QUIET_LOOK: Duration = Duration::from_millis(10);
/// Backoff after a failure: doubles from this, up to `MAX_BACKOFF`.
const BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// One byte-range GET the endpoint asks the adapter to perform (see
/// [`Endpoint::poll_origin_fetch`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OriginFetch {
    /// The origin to ask.
    pub origin: OriginHandle,
    /// The swarm it serves.
    pub swarm: SwarmHandle,
    /// Names this fetch in [`Endpoint::origin_data`] and [`Endpoint::origin_failed`].
    pub id: u64,
    /// Which file: the content or its tree sidecar.
    pub resource: OriginResource,
    /// The bytes of that file (half open). For [`OriginResource::Tree`] the range may run past
    /// the end of the file: the answer is then the bytes up to the end (as an HTTP server
    /// answers such a range).
    pub bytes: Range<u64>,
}

/// Which of the origin's files a fetch is for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OriginResource {
    /// The content itself; the bytes are those of these chunks.
    Content {
        /// The chunks, half open.
        chunks: Range<u64>,
    },
    /// The tree sidecar (by default the content's URL with `.mhash` appended).
    Tree,
    /// A live stream's munro log (by default the content's URL with `.munros` appended; see
    /// [`crate::live::MunroLogHeader`]). The range never runs past the records the log's
    /// header announced, but the header itself is asked for again and again as it changes.
    MunroLog,
}

/// Why a fetch failed, as the adapter saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OriginFailure {
    /// The origin could not be reached (DNS, connection refused, TLS).
    Unreachable,
    /// No complete answer in time.
    Timeout,
    /// An HTTP status other than a success: 4xx (except 408 and 429) disable the origin (the
    /// file is not there for us), the others are retried after a backoff.
    Status(u16),
    /// A body shorter than the range asked for, or a `Content-Range` that names other bytes.
    BadBody,
}

impl OriginFailure {
    /// Whether retrying cannot help (the origin is disabled at once).
    pub fn is_permanent(self) -> bool {
        matches!(self, Self::Status(s) if (400..500).contains(&s) && s != 408 && s != 429)
    }
}

/// Counters of one origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OriginStats {
    /// Content bytes received, verified and stored.
    pub content_in: u64,
    /// Chunks verified and stored.
    pub chunks_verified: u64,
    /// Content bytes received for chunks already verified (from a peer meanwhile).
    pub duplicate_bytes: u64,
    /// Sidecar bytes received.
    pub tree_in: u64,
    /// Fetches asked for.
    pub fetches: u64,
    /// Fetches that failed (transport or HTTP).
    pub failures: u64,
    /// Chunks or sidecar parts that failed verification.
    pub integrity_failures: u64,
    /// The origin is disabled (too many offences, or a permanent failure).
    pub disabled: bool,
}

#[derive(Clone, Debug)]
enum Kind {
    Prefix,
    /// Leaf hashes under nodes `blocks` of the origin's lowest whole layer.
    Leaves {
        blocks: Range<u64>,
    },
    Chunks(Range<u64>),
    /// A live stream's munro log header (the live edge).
    LogHeader,
    /// Records of munros `munros` of a live stream's munro log.
    LogRecords {
        munros: Range<u64>,
    },
}

#[derive(Clone, Debug)]
struct Fetch {
    id: u64,
    kind: Kind,
    sent: Instant,
}

#[derive(Debug)]
struct Origin {
    handle: OriginHandle,
    swarm: SwarmHandle,
    /// The sidecar's layout, once its prefix verified.
    layout: Option<SidecarLayout>,
    /// The lowest layer verified whole: leaf hashes are fetched per node of this layer.
    layer: u32,
    /// Nodes of `layer` whose leaf hashes are verified or on their way.
    leaves: BTreeSet<u64>,
    fetches: Vec<Fetch>,
    failures_in_row: u32,
    lies: u32,
    retry_at: Option<Instant>,
    /// The quickest answer to a fetch so far (request to body), for deadlines.
    answer_time: Option<Duration>,
    /// Where the walk for chunks no peer has goes on from.
    cursor: Option<u64>,
    /// A viewer's last look found nothing to fetch: the next waits until then, unless an
    /// answer or a failure frees a fetch first.
    quiet_until: Option<Instant>,
    /// Content delivery rate, bytes per second (0 until measured).
    rate: u64,
    /// A live stream's munro log, for an origin of a live swarm.
    live: Option<live::LiveLog>,
    stats: OriginStats,
}

/// The endpoint's origins.
#[derive(Debug, Default)]
pub(crate) struct Origins {
    slots: Vec<Option<Origin>>,
    generation: u32,
    next_id: u64,
    out: VecDeque<OriginFetch>,
}

/// Why [`Endpoint::add_origin`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OriginError {
    /// No such swarm.
    UnknownSwarm,
}

impl core::fmt::Display for OriginError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::UnknownSwarm => "no such swarm",
        })
    }
}

impl core::error::Error for OriginError {}

impl Endpoint {
    /// Adds an HTTP origin as a source of `swarm`'s chunks. The endpoint asks for its first
    /// fetch (the tree sidecar's prefix, or for a live stream the munro log's header) at the
    /// next [`Endpoint::poll_origin_fetch`]. A seeder's, an injector's or a complete swarm's
    /// origin is never asked for anything.
    pub fn add_origin(
        &mut self,
        now: Instant,
        swarm: SwarmHandle,
    ) -> Result<OriginHandle, OriginError> {
        self.advance(now);
        let idx = self.slot_of(swarm).ok_or(OriginError::UnknownSwarm)?;
        let is_live = self.swarms[idx].as_ref().is_some_and(|s| s.live.is_some());
        let o = &mut self.origins;
        o.generation = o.generation.wrapping_add(1);
        let slot = match o.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                o.slots.push(None);
                o.slots.len() - 1
            }
        };
        let handle = OriginHandle {
            slot: slot as u32,
            generation: o.generation,
        };
        o.slots[slot] = Some(Origin {
            handle,
            swarm,
            layout: None,
            layer: 0,
            leaves: BTreeSet::new(),
            fetches: Vec::new(),
            failures_in_row: 0,
            lies: 0,
            retry_at: None,
            answer_time: None,
            cursor: None,
            quiet_until: None,
            rate: 0,
            live: is_live.then(live::LiveLog::default),
            stats: OriginStats::default(),
        });
        Ok(handle)
    }

    /// Removes an origin; answers to its fetches still out are ignored, and the chunks they
    /// were for are left to others.
    pub fn remove_origin(&mut self, now: Instant, origin: OriginHandle) {
        self.advance(now);
        let Some(i) = self.origin_slot(origin) else {
            return;
        };
        if let Some(o) = self.origins.slots[i].take() {
            for f in o.fetches {
                self.release_fetch(o.swarm, &f.kind);
            }
        }
    }

    /// Forgets the origins of `swarm` (it is being removed) and their fetches not handed out
    /// yet; answers to fetches already out are then ignored.
    pub(crate) fn drop_origins_of(&mut self, swarm: SwarmHandle) {
        for slot in &mut self.origins.slots {
            if slot.as_ref().is_some_and(|o| o.swarm == swarm) {
                *slot = None;
            }
        }
        self.origins.out.retain(|f| f.swarm != swarm);
    }

    /// The next byte-range GET to perform, if any: decides what each origin should fetch now
    /// (see the module docs) and hands the fetches out one at a time. Drain it after every
    /// input, like [`Endpoint::poll_transmit`]; every fetch must be answered, once, by
    /// [`Endpoint::origin_data`] or [`Endpoint::origin_failed`] (the adapter's own timeout
    /// included).
    pub fn poll_origin_fetch(&mut self) -> Option<OriginFetch> {
        if self.origins.out.is_empty() {
            for i in 0..self.origins.slots.len() {
                self.schedule_origin(i);
            }
        }
        self.origins.out.pop_front()
    }

    /// The body of fetch `id`: the bytes asked for (for the sidecar, up to its end). It is
    /// checked (length, then every hash and chunk against the swarm's tree) before anything
    /// is stored.
    pub fn origin_data(&mut self, now: Instant, id: u64, body: &[u8]) {
        self.advance(now);
        let Some((i, f)) = self.take_fetch(id) else {
            return;
        };
        let Some(o) = self.origins.slots[i].as_mut() else {
            return;
        };
        let swarm = o.swarm;
        let took = now.saturating_duration_since(f.sent);
        o.answer_time = Some(o.answer_time.map_or(took, |t| t.min(took)));
        let result = match f.kind.clone() {
            Kind::Prefix => {
                o.stats.tree_in += body.len() as u64;
                self.on_tree_prefix(i, body)
            }
            Kind::Leaves { blocks } => {
                o.stats.tree_in += body.len() as u64;
                self.on_leaves(i, blocks, body)
            }
            Kind::LogHeader => {
                o.stats.tree_in += body.len() as u64;
                self.on_log_header(i, body)
            }
            Kind::LogRecords { munros } => {
                o.stats.tree_in += body.len() as u64;
                self.on_log_records(i, munros, body)
            }
            Kind::Chunks(chunks) => {
                let took = (now.saturating_duration_since(f.sent).as_micros() as u64).max(1000);
                let inst = (body.len() as u64).saturating_mul(1_000_000) / took;
                o.rate = if o.rate == 0 {
                    inst
                } else {
                    (3 * o.rate + inst) / 4
                };
                self.on_chunks(i, chunks, body)
            }
        };
        match result {
            Ok(()) => {
                if let Some(o) = self.origins.slots[i].as_mut() {
                    o.failures_in_row = 0;
                }
            }
            Err(Offence::Short) => self.origin_trouble(i, false),
            Err(Offence::Lie(chunk)) => self.origin_lied(i, chunk),
            Err(Offence::Mismatch) => self.disable_origin(i),
        }
        self.release_fetch(swarm, &f.kind);
    }

    /// Fetch `id` failed. The chunks it was for are left to peers (and to this origin after a
    /// backoff); a permanent failure ([`OriginFailure::is_permanent`]) disables the origin.
    pub fn origin_failed(&mut self, now: Instant, id: u64, failure: OriginFailure) {
        self.advance(now);
        let Some((i, f)) = self.take_fetch(id) else {
            return;
        };
        if let Some(o) = self.origins.slots[i].as_mut() {
            if let Kind::Leaves { blocks } = &f.kind {
                for b in blocks.clone() {
                    o.leaves.remove(&b);
                }
            }
            if let (Kind::LogRecords { munros }, Some(l)) = (&f.kind, o.live.as_mut()) {
                l.forget(munros.clone());
            }
            let swarm = o.swarm;
            self.release_fetch(swarm, &f.kind);
        }
        // A live stream's log (or record) that is not there yet: the injector may not have
        // published it. Retried after the backoff, like a server error.
        let early = matches!(f.kind, Kind::LogHeader | Kind::LogRecords { .. })
            && matches!(failure, OriginFailure::Status(404 | 416));
        self.origin_trouble(i, failure.is_permanent() && !early);
    }

    /// An origin's counters.
    pub fn origin_stats(&self, origin: OriginHandle) -> Option<OriginStats> {
        let o = self.origins.slots[self.origin_slot(origin)?].as_ref()?;
        Some(o.stats)
    }

    /// Every origin of the endpoint.
    pub fn origins(&self) -> impl Iterator<Item = OriginHandle> + '_ {
        self.origins.slots.iter().flatten().map(|o| o.handle)
    }

    /// When an origin's backoff ends, or a live origin or a viewer's is due a look (for
    /// [`Endpoint::poll_timeout`]).
    pub(crate) fn origin_timeout(&self) -> Option<Instant> {
        self.origins
            .slots
            .iter()
            .flatten()
            .filter(|o| !o.stats.disabled)
            .filter_map(|o| {
                // A live origin is looked at again at its polling pace (the live edge moves,
                // and chunks fall due for the origin as their munros age).
                let tick = o
                    .live
                    .as_ref()
                    .and_then(live::LiveLog::wake_at)
                    .filter(|&t| t > self.now);
                // A viewer's quiet look ends: without inputs meanwhile nothing else would
                // look again.
                let tick = tick.or_else(|| o.quiet_until.filter(|&t| t > self.now));
                match (o.retry_at, tick) {
                    (Some(r), Some(t)) => Some(r.max(t)),
                    (r, t) => r.or(t),
                }
            })
            .min()
    }

    // ---- internals -----------------------------------------------------------------------

    fn origin_slot(&self, h: OriginHandle) -> Option<usize> {
        let i = h.slot as usize;
        self.origins
            .slots
            .get(i)?
            .as_ref()
            .filter(|o| o.handle == h)
            .map(|_| i)
    }

    fn take_fetch(&mut self, id: u64) -> Option<(usize, Fetch)> {
        for (i, o) in self.origins.slots.iter_mut().enumerate() {
            let Some(o) = o.as_mut() else { continue };
            if let Some(k) = o.fetches.iter().position(|f| f.id == id) {
                o.quiet_until = None;
                return Some((i, o.fetches.swap_remove(k)));
            }
        }
        None
    }

    /// Gives back the claims of a fetch that is over (chunks it did not bring), and lets
    /// peers pick them.
    fn release_fetch(&mut self, swarm: SwarmHandle, kind: &Kind) {
        let Kind::Chunks(chunks) = kind else { return };
        let Some(idx) = self.slot_of(swarm) else {
            return;
        };
        let Some(s) = self.swarms[idx].as_mut() else {
            return;
        };
        let mut freed = Vec::new();
        for c in chunks.clone() {
            if s.requested.contains_key(&c) {
                release(s, c);
                if !s.claimed.contains(c) {
                    freed.push(c);
                }
            }
        }
        if !freed.is_empty() {
            for &id in &s.channels.iter().copied().collect::<Vec<_>>() {
                if let Some(ch) = self.chan_mut(id) {
                    ch.down.pick_exhausted = false;
                }
            }
            self.offer_released(idx, &freed, u32::MAX);
        }
    }

    /// A failed fetch: counted, then the origin backs off, or is disabled when retrying
    /// cannot help.
    fn origin_trouble(&mut self, i: usize, permanent: bool) {
        let now = self.now;
        let Some(o) = self.origins.slots[i].as_mut() else {
            return;
        };
        o.stats.failures += 1;
        self.stats.origin_failures += 1;
        if permanent {
            self.disable_origin(i);
            return;
        }
        o.failures_in_row = o.failures_in_row.saturating_add(1);
        let shift = o.failures_in_row.saturating_sub(1).min(5);
        o.retry_at = Some(now + (BACKOFF * (1u32 << shift)).min(MAX_BACKOFF));
    }

    fn origin_lied(&mut self, i: usize, chunk: Option<u64>) {
        let now = self.now;
        let Some(o) = self.origins.slots[i].as_mut() else {
            return;
        };
        o.stats.integrity_failures += 1;
        self.stats.integrity_failures += 1;
        self.stats.origin_integrity_failures += 1;
        o.lies += 1;
        self.events.push_back(Event::OriginIntegrityFailure {
            swarm: o.swarm,
            origin: o.handle,
            chunk,
        });
        if o.lies >= MAX_LIES {
            self.disable_origin(i);
        } else {
            o.failures_in_row = o.failures_in_row.saturating_add(1);
            let shift = o.failures_in_row.saturating_sub(1).min(5);
            o.retry_at = Some(now + (BACKOFF * (1u32 << shift)).min(MAX_BACKOFF));
        }
    }

    fn disable_origin(&mut self, i: usize) {
        let Some(o) = self.origins.slots[i].as_mut() else {
            return;
        };
        if o.stats.disabled {
            return;
        }
        o.stats.disabled = true;
        self.events.push_back(Event::OriginDisabled {
            swarm: o.swarm,
            origin: o.handle,
        });
    }

    /// The sidecar's prefix: size from the peaks, then the lowest whole layer in it.
    fn on_tree_prefix(&mut self, i: usize, body: &[u8]) -> Result<(), Offence> {
        let Some(o) = self.origins.slots[i].as_ref() else {
            return Ok(());
        };
        let swarm = o.swarm;
        let Some(idx) = self.slot_of(swarm) else {
            return Ok(());
        };
        let layout = SidecarLayout::parse(body).map_err(|_| Offence::Lie(None))?;
        let Some(s) = self.swarms[idx].as_mut() else {
            return Ok(());
        };
        if layout.hash != s.cfg.hash || layout.chunk_size != s.cfg.chunk_size {
            // Another content's tree (or another hash or chunk size): nothing to verify
            // against; no use retrying.
            return Err(Offence::Mismatch);
        }
        let Tree::Partial(tree) = &mut s.tree else {
            return Ok(());
        };
        let n = layout.chunks();
        let newly_sized = match tree.chunk_count() {
            Some(known) if known != n => return Err(Offence::Lie(None)),
            Some(_) => false,
            None => {
                let peaks = body
                    .get(range_usize(layout.peaks()))
                    .ok_or(Offence::Short)?;
                let hlen = layout.hash.output_len();
                for (p, h) in Bin::peaks(n).zip(peaks.chunks_exact(hlen)) {
                    let h = crate::hash::HashValue::from_slice(h).ok_or(Offence::Short)?;
                    tree.add_hash(p, &h).map_err(|_| Offence::Lie(None))?;
                }
                match tree.resolve_size_at_least(n) {
                    Ok(got) if got == n => true,
                    _ => return Err(Offence::Lie(None)),
                }
            }
        };
        let root = Bin::root_covering(n).ok_or(Offence::Lie(None))?;
        let layer = layout
            .lowest_layer_within(body.len() as u64)
            .ok_or(Offence::Short)?;
        let bytes = body
            .get(range_usize(layout.layer_bytes(layer, 0..u64::MAX)))
            .ok_or(Offence::Short)?;
        tree.add_layer_under(root, layer, bytes)
            .map_err(|_| Offence::Lie(None))?;
        if newly_sized {
            self.report_size(swarm, u32::MAX);
        }
        if let Some(o) = self.origins.slots[i].as_mut() {
            o.layout = Some(layout);
            o.layer = layer;
        }
        Ok(())
    }

    /// The leaf hashes under nodes `blocks` of the origin's lowest whole layer, each block's
    /// checked by folding into its node.
    fn on_leaves(&mut self, i: usize, blocks: Range<u64>, body: &[u8]) -> Result<(), Offence> {
        let Some(o) = self.origins.slots[i].as_ref() else {
            return Ok(());
        };
        let (layer, swarm, Some(layout)) = (o.layer, o.swarm, o.layout) else {
            return Ok(());
        };
        let Some(idx) = self.slot_of(swarm) else {
            return Ok(());
        };
        let Some(Tree::Partial(tree)) = self.swarms[idx].as_mut().map(|s| &mut s.tree) else {
            return Ok(());
        };
        let n = layout.chunks();
        let hlen = layout.hash.output_len();
        let mut result = Ok(());
        let mut rest = body;
        let mut failed_from = blocks.end;
        for b in blocks.clone() {
            let first = b << layer;
            let count = (((b + 1) << layer).min(n) - first.min(n)) as usize;
            let Some((mine, next)) = rest.split_at_checked(count * hlen) else {
                result = Err(Offence::Short);
                failed_from = b;
                break;
            };
            rest = next;
            let Some(bin) = Bin::from_layer_offset(layer, b) else {
                continue;
            };
            if let Err(e) = tree.add_layer_under(bin, 0, mine) {
                result = Err(match e {
                    VerifyError::BadHashLength { .. } => Offence::Short,
                    _ => Offence::Lie(None),
                });
                failed_from = b;
                break;
            }
        }
        if result.is_ok() && !rest.is_empty() {
            result = Err(Offence::Short);
        }
        // What did not verify is fetched again after the backoff.
        if let Some(o) = self.origins.slots[i].as_mut() {
            for b in failed_from..blocks.end {
                o.leaves.remove(&b);
            }
        }
        result
    }

    /// Content: each chunk verified against its leaf hash, then stored as a peer's would be.
    fn on_chunks(&mut self, i: usize, chunks: Range<u64>, body: &[u8]) -> Result<(), Offence> {
        let Some(o) = self.origins.slots[i].as_ref() else {
            return Ok(());
        };
        let swarm = o.swarm;
        let Some(idx) = self.slot_of(swarm) else {
            return Ok(());
        };
        let (want, cs) = match (o.layout, o.live.as_ref().and_then(|l| l.header)) {
            (Some(layout), _) => (layout.content_bytes(chunks.clone()), layout.chunk_size),
            // A live stream's chunks are all full.
            (None, Some(h)) => (
                chunks.start * u64::from(h.chunk_size)..chunks.end * u64::from(h.chunk_size),
                h.chunk_size,
            ),
            (None, None) => return Ok(()),
        };
        if body.len() as u64 != want.end - want.start {
            return Err(Offence::Short);
        }
        let cs = cs as usize;
        let mut stored = false;
        let result = self.store_origin_run(i, idx, chunks.start, body, cs, &mut stored);
        if stored {
            self.announce_now(idx);
        }
        result
    }

    /// Tells peers at once about chunks from an origin (one HAVE per answer): the usual
    /// aggregation delay would let other leechers of the origin fetch them too meanwhile.
    fn announce_now(&mut self, idx: usize) {
        let ids: Vec<u32> = match self.swarms[idx].as_ref() {
            Some(s) => s.channels.iter().copied().collect(),
            None => return,
        };
        for id in ids {
            if let Some(ch) = self.chan_mut(id) {
                if ch.is_established() {
                    ch.ann.haves_due = None;
                    self.queue_send(id);
                }
            }
        }
    }

    fn store_origin_run(
        &mut self,
        i: usize,
        idx: usize,
        first: u64,
        body: &[u8],
        cs: usize,
        stored: &mut bool,
    ) -> Result<(), Offence> {
        let chunks = first..;
        for (k, data) in body.chunks(cs).enumerate() {
            let c = chunks.start + k as u64;
            let Some(s) = self.swarms[idx].as_mut() else {
                return Ok(());
            };
            if s.have.contains(c) || s.forgotten(c) {
                if let Some(o) = self.origins.slots[i].as_mut() {
                    o.stats.duplicate_bytes += data.len() as u64;
                }
                continue;
            }
            let Tree::Partial(tree) = &mut s.tree else {
                return Ok(());
            };
            match tree.verify_chunk(c, data) {
                Ok(()) => {}
                // The leaf hash is not there (cannot happen for a chunk we asked for after its
                // leaves verified): the chunk is simply not taken.
                Err(VerifyError::MissingHashes { .. } | VerifyError::SizeUnknown) => continue,
                Err(_) => return Err(Offence::Lie(Some(c))),
            }
            if !self.store_origin_chunk(idx, c, data) {
                return Ok(());
            }
            *stored = true;
            if let Some(o) = self.origins.slots[i].as_mut() {
                o.stats.content_in += data.len() as u64;
                o.stats.chunks_verified += 1;
            }
        }
        Ok(())
    }

    /// Stores verified chunk `c` from an origin and does what a peer's verified chunk does
    /// (announce, events, completion). Returns false when the store failed.
    fn store_origin_chunk(&mut self, idx: usize, c: u64, data: &[u8]) -> bool {
        let Some(s) = self.swarms[idx].as_mut() else {
            return false;
        };
        let swarm = s.handle;
        if let Err(error) = s.store.write_chunk(c, data) {
            s.store_failed = true;
            self.events.push_back(Event::StoreFailure { swarm, error });
            return false;
        }
        s.have.insert(c);
        s.claimed.insert(c);
        s.content_from_origins += data.len() as u64;
        // Requests for it still out at peers (the endgame) are cancelled.
        let others: Vec<u32> = if s.requested.remove(&c).is_some_and(|k| k > 1) {
            s.channels.iter().copied().collect()
        } else {
            Vec::new()
        };
        self.stats.chunks_verified += 1;
        self.stats.origin_content_in += data.len() as u64;
        self.push_verified(swarm, c);
        self.announce(idx, c..c + 1);
        if !others.is_empty() {
            self.cancel_duplicates(c, &others);
        }
        self.check_complete(idx);
        self.retry_held(idx);
        true
    }

    fn emit(&mut self, (i, f): (usize, Fetch), bytes: Range<u64>) {
        let Some(o) = self.origins.slots[i].as_mut() else {
            return;
        };
        o.stats.fetches += 1;
        let resource = match &f.kind {
            Kind::Chunks(c) => OriginResource::Content { chunks: c.clone() },
            Kind::LogHeader | Kind::LogRecords { .. } => OriginResource::MunroLog,
            Kind::Prefix | Kind::Leaves { .. } => OriginResource::Tree,
        };
        self.origins.out.push_back(OriginFetch {
            origin: o.handle,
            swarm: o.swarm,
            id: f.id,
            resource,
            bytes,
        });
        o.fetches.push(f);
    }
}

fn new_fetch(next_id: &mut u64, i: usize, kind: Kind, now: Instant) -> (usize, Fetch) {
    *next_id += 1;
    (
        i,
        Fetch {
            id: *next_id,
            kind,
            sent: now,
        },
    )
}

fn range_usize(r: Range<u64>) -> Range<usize> {
    usize::try_from(r.start).unwrap_or(usize::MAX)..usize::try_from(r.end).unwrap_or(usize::MAX)
}

/// What was wrong with an answer.
enum Offence {
    /// Shorter than asked for (or malformed in length): a failure, not a lie.
    Short,
    /// Content or hashes that do not verify (the chunk, when one is named).
    Lie(Option<u64>),
    /// The origin's tree is for another hash function or chunk size.
    Mismatch,
}

impl super::SwarmRef<'_> {
    /// Content bytes verified and stored from peers.
    pub fn content_from_peers(&self) -> u64 {
        self.swarm.content_from_peers
    }

    /// Content bytes verified and stored from HTTP origins.
    pub fn content_from_origins(&self) -> u64 {
        self.swarm.content_from_origins
    }

    /// Peer efficiency of this swarm: bytes from peers / bytes from peers and origins (`None`
    /// before any content arrived).
    pub fn peer_efficiency(&self) -> Option<f64> {
        crate::stats::peer_efficiency(
            self.swarm.content_from_peers,
            self.swarm.content_from_origins,
        )
    }
}
