//! Chunk picking (RFC 7574 §3.7 leaves the policy open): rarest first in aligned groups, or in
//! order from the playback position (streaming), with the per-chunk availability counts it
//! ranks by.

use alloc::vec::Vec;

use super::playback::WindowPick;
use super::swarm::Swarm;
use super::table::ChunkMap;
use crate::binmap::Binmap;
use crate::config::PickerMode;
use crate::rand::Rng;

/// Chunks per aligned group that rarest-first picking keeps together.
pub(crate) const PICK_GROUP: u64 = 16;

/// A live stream's oldest missing chunks, asked for in order before the rest of the window
/// (from a random point).
const LIVE_URGENT: u64 = 16;

/// The most runs of a peer's map one pick walks.
pub(crate) const PICK_RUNS: usize = 64;

impl Swarm {
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
    ///
    /// With a reader set ([`Swarm::play_window`]) its window comes first (see
    /// [`Swarm::pick_window`], which `window.urgency` informs); `window.only` stops there.
    pub(crate) fn pick(
        &self,
        peer_have: &Binmap,
        mine: &ChunkMap<super::download::Requested>,
        want: usize,
        allow_dup: bool,
        rng: &mut Rng,
        window: WindowPick,
    ) -> (Vec<(u64, u64)>, bool) {
        if want == 0 {
            return (Vec::new(), false);
        }
        let (first, window_whole) =
            self.pick_window(peer_have, mine, want, allow_dup, window.urgency.as_ref());
        if window.only || first.len() >= want {
            return (runs_of(first), false);
        }
        // The reader's urgent chunks were picked above, in order; the rest of its window is
        // walked first below (rarest first within it: peers at the same point of playback
        // then fetch different chunks and trade them), then the rest of the content.
        let urgent = self.urgent_window();
        let tail = match (&urgent, self.play_window()) {
            (Some(u), Some(w)) if u.end < w.end => Some(u.end..w.end),
            _ => None,
        };
        let want = want - first.len();
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
                match &tail {
                    Some(t) => (rng.gen_range(t.clone()) & !(PICK_GROUP - 1)).max(t.start),
                    None => rng.gen_range(0..limit.max(1)) & !(PICK_GROUP - 1),
                },
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
        // The urgent chunks were walked above: the rest of the walk goes around them.
        let mut scan_outside = |lo: u64, hi: u64, out: &mut Vec<u64>| match &urgent {
            Some(u) => {
                if lo < u.start {
                    scan(lo, hi.min(u.start), out);
                }
                if hi > u.end {
                    scan(lo.max(u.end), hi, out);
                }
            }
            None => scan(lo, hi, out),
        };
        let spans = match (&tail, wrap) {
            // A live stream: the oldest chunks of the window in order, the rest from a random
            // point. Viewers near the live edge all lack the same newest chunks; asked in
            // order, the source sends each chunk to every viewer it serves and the viewers
            // have nothing to trade (10 viewers of a 4 Mbit/s stream whose source uploads
            // 16 Mbit/s fell 12 s behind). From different points they fetch different chunks
            // from the source and trade them.
            _ if self.live.is_some() && !wrap && to > from => {
                let u = from.saturating_add(LIVE_URGENT).min(to);
                let r = if to > u {
                    (rng.gen_range(u..to) & !(PICK_GROUP - 1)).max(u)
                } else {
                    u
                };
                [(from, u), (r, to), (u, r), (0, 0)]
            }
            (Some(t), true) => [(from, t.end), (t.start, from), (t.end, to), (0, t.start)],
            (None, true) => [(from, to), (0, from), (0, 0), (0, 0)],
            (_, false) => [(from, to), (0, 0), (0, 0), (0, 0)],
        };
        for (k, (lo, hi)) in spans.into_iter().enumerate() {
            if lo < hi && (k == 0 || candidates.len() < budget) {
                scan_outside(lo, hi, &mut candidates);
            }
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
        // The window's chunks first: peers serve requests in order.
        let mut out = runs_of(first);
        out.extend(runs_of(candidates));
        // The peer's whole map was looked at (a streaming window short of the end was not).
        (out, window_whole && whole && (wrap || to >= limit))
    }
}

/// Ascending chunks as inclusive runs.
fn runs_of(chunks: Vec<u64>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for c in chunks {
        match out.last_mut() {
            Some(l) if l.1.checked_add(1) == Some(c) => l.1 = c,
            _ => out.push((c, c)),
        }
    }
    out
}
