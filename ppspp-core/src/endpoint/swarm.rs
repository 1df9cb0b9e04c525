//! Per-swarm state: content, integrity, availability, chunk picking.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::ops::Range;

use crate::bin::Bin;
use crate::binmap::Binmap;
use crate::config::{PickerMode, SwarmConfig};
use crate::event::SwarmHandle;
use crate::hash::HashValue;
use crate::merkle::{MerkleTree, NodeHashes, PartialTree};
use crate::rand::Rng;
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

/// A live swarm's state beside its tree (RFC 7574 §6).
#[derive(Debug)]
pub(crate) struct LiveState {
    pub(crate) cfg: crate::config::LiveConfig,
    /// Trusted signed munros by first chunk, kept to pass on (a peer that is not the
    /// injector; the injector's are in its [`crate::live::LiveSource`]).
    pub(crate) munros: BTreeMap<u64, crate::live::SignedMunro>,
    /// One past the last chunk under a trusted (or, at the injector, signed) munro.
    pub(crate) end: u64,
    /// Whether a tune-in point was chosen (the first trusted munro's first chunk).
    pub(crate) tuned_in: bool,
    /// Chunks before this are forgotten (the discard window, §6.2).
    pub(crate) floor: u64,
}

impl Swarm {
    /// Moves a live swarm's discard window up to its newest munro: chunks, hashes and munros
    /// before it are forgotten (RFC 7574 §6.2), so memory stays bounded.
    pub(crate) fn live_forget(&mut self) {
        let Some(l) = self.live.as_mut() else { return };
        let Some(w) = l.cfg.window else { return };
        let n = l.cfg.params.nchunks_per_sig.max(1);
        // A peer that is behind keeps what it has not delivered yet (from its first missing
        // chunk), up to four windows back: the window would otherwise slide past chunks while
        // they are on their way, drop their munros, and leave the peer chasing the edge
        // without ever verifying anything.
        let behind = match &self.tree {
            Tree::Live(_) => l.end,
            _ => self
                .have
                .missing_in(self.playback..l.end)
                .next()
                .map_or(l.end, |r| r.start),
        };
        let keep_from = l.end.saturating_sub(w).min(behind);
        let floor = keep_from.max(l.end.saturating_sub(w.saturating_mul(4))) / n * n;
        if floor <= l.floor {
            return;
        }
        l.floor = floor;
        l.munros = l.munros.split_off(&floor);
        match &mut self.tree {
            Tree::Partial(t) => t.forget_before(floor),
            Tree::Live(src) => src.set_discard_window(Some(w)),
            Tree::Full(_) => {}
        }
        self.have.remove_range(0..floor);
        self.claimed.remove_range(0..floor);
        self.playback = self.playback.max(floor);
        self.held.retain(|&c, _| c >= floor);
    }
}

impl LiveState {
    /// The signed munro covering `chunk`, if known.
    pub(crate) fn munro_for<'a>(
        &'a self,
        tree: &'a Tree,
        chunk: u64,
    ) -> Option<&'a crate::live::SignedMunro> {
        if let Tree::Live(src) = tree {
            return src.munro_for(chunk);
        }
        let first = self.cfg.params.munro_of(chunk)?.first_chunk()?;
        self.munros.get(&first)
    }

    /// The newest signed munro known.
    pub(crate) fn latest<'a>(&'a self, tree: &'a Tree) -> Option<&'a crate::live::SignedMunro> {
        if let Tree::Live(src) = tree {
            return src.latest_munro();
        }
        self.munros.values().next_back()
    }
}

#[derive(Debug)]
pub(crate) struct Swarm {
    pub(crate) handle: SwarmHandle,
    pub(crate) cfg: SwarmConfig,
    pub(crate) swarm_id: HashValue,
    /// The swarm ID as handshakes carry it (the root hash, or a live stream's public key).
    pub(crate) key: Vec<u8>,
    /// Live stream state (`None` for static content).
    pub(crate) live: Option<Box<LiveState>>,
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
    /// Chunks received but not yet verifiable (their hashes were lost or reordered), by
    /// chunk: the sender's channel, the DATA, and the node whose hash is awaited
    /// ([`Bin::NONE`]: the peaks). At most [`MAX_HELD`].
    pub(crate) held: BTreeMap<u64, (u32, crate::wire::Data, Bin)>,
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
}

/// The first reconnection delay to a lost peer (doubling with each attempt, up to
/// `RETRY_BASE << RETRY_MAX_SHIFT`).
pub(crate) const RETRY_BASE: crate::time::Duration = crate::time::Duration::from_secs(30);
/// Doublings of [`RETRY_BASE`] at most (30 s × 64 = 32 min).
pub(crate) const RETRY_MAX_SHIFT: u8 = 6;
/// The most lost peers a swarm remembers for reconnection.
pub(crate) const RETRY_MAX: usize = 256;

/// Log length at which every channel folds the log into its own pending map and the log
/// restarts (bounds the log when some channel cannot send).
pub(crate) const HAVE_LOG_MAX: usize = 4096;

/// Chunks per aligned group that rarest-first picking keeps together.
pub(crate) const PICK_GROUP: u64 = 16;

/// The most runs of a peer's map one pick walks.
pub(crate) const PICK_RUNS: usize = 64;

/// How many unverifiable chunks a swarm holds while their hashes are on their way.
pub(crate) const MAX_HELD: usize = 64;

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

    /// Takes the HAVE log past `ch.ann.have_seq`: the runs of chunks verified since, sorted and
    /// merged, leaving out what the peer already has (R-3.2-d).
    pub(crate) fn take_new_haves(&self, ch: &mut super::channel::Channel) -> Vec<Range<u64>> {
        let end = self.have_log_end();
        if ch.ann.have_seq >= end {
            return Vec::new();
        }
        let from = ch.ann.have_seq.max(self.have_log_base);
        ch.ann.have_seq = end;
        let mut cache = self.have_runs.borrow_mut();
        if (cache.0, cache.1) != (from, end) {
            // Channels armed by the same verified chunk flush together, over the same part of
            // the log: sort and merge it once for all of them.
            let start = (from - self.have_log_base) as usize;
            let mut new: Vec<u64> = self.have_log[start..].to_vec();
            if !new.is_sorted() {
                new.sort_unstable();
            }
            cache.2.clear();
            let mut i = 0;
            while i < new.len() {
                let first = new[i];
                let mut last = first;
                i += 1;
                while i < new.len() && new[i] <= last + 1 {
                    last = new[i];
                    i += 1;
                }
                cache.2.push(first..last + 1);
            }
            (cache.0, cache.1) = (from, end);
        }
        if ch.peer_have.is_empty() {
            return cache.2.clone();
        }
        let mut out = Vec::new();
        for run in &cache.2 {
            out.extend(ch.peer_have.missing_in(run.clone()));
        }
        out
    }

    /// Folds the HAVE log past `ch.ann.have_seq` into `ch.ann.pending_haves`.
    pub(crate) fn absorb_haves(&self, ch: &mut super::channel::Channel) {
        for r in self.take_new_haves(ch) {
            ch.ann.pending_haves.insert_range(r);
        }
    }

    /// Sets up the availability counts once the chunk count is known.
    pub(crate) fn ensure_avail(&mut self, peers: impl Iterator<Item = Binmap>) {
        if !self.avail.is_empty() || self.complete {
            return;
        }
        let Some(n) = self.chunk_count() else { return };
        // One u16 per chunk: 2 MiB for a million chunks. Larger contents skip rarity counts.
        if n > (1 << 24) {
            return;
        }
        self.avail = alloc::vec![0; n as usize];
        for map in peers {
            self.add_avail(&map, 1);
        }
    }

    /// Adds (or removes, with `delta = -1`) a peer's map to the availability counts.
    pub(crate) fn add_avail(&mut self, map: &Binmap, delta: i32) {
        if self.avail.is_empty() {
            return;
        }
        let n = self.avail.len() as u64;
        for r in map.ranges() {
            let (start, end) = (r.start.min(n) as usize, r.end.min(n) as usize);
            for v in &mut self.avail[start..end] {
                *v = if delta > 0 {
                    v.saturating_add(1)
                } else {
                    v.saturating_sub(1)
                };
            }
        }
    }

    /// Adds chunks `first..end` of one peer to the availability counts, skipping what that peer
    /// was already counted for (`before`).
    pub(crate) fn add_avail_range(&mut self, before: &Binmap, first: u64, end: u64) {
        if self.avail.is_empty() {
            return;
        }
        let n = self.avail.len() as u64;
        let end = end.min(n);
        if first >= end {
            return;
        }
        if !before.intersects(first..end) {
            // The common case: chunks the peer did not have before.
            for v in &mut self.avail[first as usize..end as usize] {
                *v = v.saturating_add(1);
            }
            return;
        }
        for gap in before.missing_in(first..end) {
            if let Some(counts) = self.avail.get_mut(gap.start as usize..gap.end as usize) {
                for v in counts {
                    *v = v.saturating_add(1);
                }
            }
        }
    }

    /// Picks up to `want` chunks to request from a peer with map `peer_have`, none of which we
    /// have or requested from anyone (`allow_dup` relaxes the latter for the endgame: chunks
    /// requested from fewer than two peers and not from this one, `mine`). Returns inclusive
    /// ranges, and whether the walk saw all of the peer's map (so an empty pick means the
    /// peer has nothing for us).
    ///
    /// Cost is proportional to the candidates examined (a small multiple of `want`, plus the
    /// runs skipped over), never to the content size.
    pub(crate) fn pick(
        &self,
        peer_have: &Binmap,
        mine: &ChunkMap<super::download::Requested>,
        want: usize,
        allow_dup: bool,
        rng: &mut Rng,
    ) -> (Vec<(u64, u64)>, bool) {
        if want == 0 {
            return (Vec::new(), false);
        }
        // A live stream is joined at the newest signed munro heard of (§6.1.2.4): nothing is
        // asked for before one arrives.
        if self.live.as_ref().is_some_and(|l| !l.tuned_in) {
            return (Vec::new(), false);
        }
        // A live stream's peers announce only signed chunks (R-6.1.2.3-a), and serve a
        // chunk with its signed munro (R-6.1.2.3-b): chunks past the newest munro we know are
        // fair game.
        let limit = match &self.live {
            Some(_) => 1 << 62,
            None => self.chunk_count().unwrap_or(1 << 62),
        };
        // Outside the endgame the walk below only meets unclaimed chunks.
        let usable = |c: u64| -> bool {
            !allow_dup
                || match self.requested.get(&c) {
                    None => true,
                    Some(&k) => k < 2 && !mine.contains_key(&c),
                }
        };
        // Candidates: chunks the peer has and we lack, walked from `from` (wrapping around to
        // `wrap_from` when it is given), skipping what is already requested.
        let mut candidates: Vec<u64> = Vec::new();
        // Outside the endgame, the gaps of `claimed` are exactly the usable chunks, so the walk
        // never steps over requested chunks one by one.
        let skip = if allow_dup { &self.have } else { &self.claimed };
        let (from, to, wrap, budget) = match self.cfg.picker {
            // Streaming: the earliest chunks after the playback position, in order.
            PickerMode::InOrder { lookahead } => {
                // A live stream's window follows what is fetched: from the first chunk
                // after the tune-in point that is neither verified nor asked for (a chunk
                // still on its way, or held for its hashes, does not hold the window back).
                let start = match &self.live {
                    Some(_) => skip
                        .missing_in(self.playback..limit.max(self.playback))
                        .next()
                        .map_or(limit, |r| r.start),
                    None => self.playback,
                };
                (
                    start,
                    start.saturating_add(lookahead.max(1)).min(limit),
                    false,
                    want,
                )
            }
            // Rarest first: look at a few times more candidates than needed, from a random
            // point, and keep the rarest.
            PickerMode::RarestFirst => (
                rng.gen_range(0..limit.max(1)) & !(PICK_GROUP - 1),
                limit,
                true,
                want.saturating_mul(2).max(16),
            ),
        };
        // The walk is bounded in runs as well as in chunks: a fragmented peer map whose runs
        // we already claimed would otherwise be walked end to end on every pick. A random
        // start point means later picks look elsewhere.
        let mut runs_left = PICK_RUNS;
        // Whether every walk went to its end (so finding nothing means there is nothing).
        let mut whole = true;
        let mut scan = |lo: u64, hi: u64, out: &mut Vec<u64>| {
            let mut skipped = 0u32;
            let mut gaps = peer_have.difference_in(skip, lo..hi).limit_runs(runs_left);
            'walk: for gap in gaps.by_ref() {
                for c in gap {
                    if usable(c) {
                        out.push(c);
                        if out.len() >= budget {
                            whole = false;
                            break 'walk;
                        }
                    } else {
                        skipped += 1;
                        // Bound the work spent walking over requested chunks.
                        if skipped > 1024 {
                            whole = false;
                            break 'walk;
                        }
                    }
                }
            }
            whole &= !gaps.truncated();
            runs_left = gaps.runs_left();
        };
        scan(from, to, &mut candidates);
        if wrap && candidates.len() < budget && from > 0 {
            scan(0, from, &mut candidates);
        }
        if matches!(self.cfg.picker, PickerMode::RarestFirst) && !self.avail.is_empty() {
            // Rarest first, ties broken at random by aligned group of PICK_GROUP chunks (so
            // peers spread over different parts of the content while each takes whole
            // groups: runs become single REQUESTs and the HAVEs announcing them aggregate into
            // few bins, RFC 7574 §4.3), then taken in chunk order.
            let salt = u64::from(rng.next_u32()) | 1;
            let mut keyed: Vec<(u16, u32, u64)> = candidates
                .iter()
                .map(|&c| {
                    let group = (c / PICK_GROUP)
                        .wrapping_add(salt)
                        .wrapping_mul(salt | 0x9E37);
                    (
                        self.avail.get(c as usize).copied().unwrap_or(0),
                        (group ^ (group >> 29)) as u32,
                        c,
                    )
                })
                .collect();
            // Only which `want` keys are smallest matters (the pick is then taken in chunk
            // order, and keys are distinct): a selection, not a full sort.
            if keyed.len() > want {
                keyed.select_nth_unstable(want);
                keyed.truncate(want);
            }
            candidates = keyed.into_iter().map(|k| k.2).collect();
            candidates.sort_unstable();
        } else {
            candidates.truncate(want);
        }
        let mut out: Vec<(u64, u64)> = Vec::new();
        for c in candidates {
            match out.last_mut() {
                Some(l) if l.1 + 1 == c => l.1 = c,
                _ => out.push((c, c)),
            }
        }
        // The peer's whole map was looked at (a streaming window short of the end was not).
        (out, whole && (wrap || to >= limit))
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
