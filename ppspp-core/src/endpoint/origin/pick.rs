//! The hybrid switch: what each origin fetches now (see the parent module's docs).

use alloc::vec::Vec;
use core::ops::Range;

use super::{
    CRITICAL_HORIZON, CRITICAL_MAX, CRITICAL_WALK, CRITICAL_WINDOW, Kind, LEAF_LOOKAHEAD,
    MAX_FETCHES, MAX_RUN_BYTES, MIN_RUN, Origin, PREFETCH_FLOOR, QUIET_LOOK, RUN_TIME, TREE_PREFIX,
    new_fetch,
};
use crate::bin::Bin;
use crate::endpoint::Endpoint;
use crate::endpoint::swarm::Tree;
use crate::time::{Duration, Instant};

impl Endpoint {
    /// Decides what origin `i` fetches now.
    pub(super) fn schedule_origin(&mut self, i: usize) {
        let now = self.now;
        let Some(o) = self.origins.slots[i].as_mut() else {
            return;
        };
        if o.stats.disabled || o.retry_at.is_some_and(|t| t > now) {
            return;
        }
        o.retry_at = None;
        if o.live.is_some() {
            self.schedule_live_origin(i);
            return;
        }
        if o.quiet_until.is_some_and(|t| t > now) {
            return;
        }
        // Where the prefetch floor's walk starts (see `deadline_critical`).
        let spread = self.rng.gen_range(0..u64::MAX);
        let Some(o) = self.origins.slots[i].as_ref() else {
            return;
        };
        let Some(idx) = self.slot_of(o.swarm) else {
            return;
        };
        let Some(s) = self.swarms[idx].as_ref() else {
            return;
        };
        if s.complete || s.store_failed || !matches!(s.tree, Tree::Partial(_)) {
            return;
        }
        let Some(layout) = o.layout else {
            if o.fetches.is_empty() {
                let f = new_fetch(&mut self.origins.next_id, i, Kind::Prefix, now);
                self.emit(f, 0..TREE_PREFIX);
            }
            return;
        };
        let n = layout.chunks();
        let cs = u64::from(layout.chunk_size);
        // The peers' pace: their summed delivery rate and the quickest answer to a request.
        let mut any_peer = false;
        let mut peer_requests = 0usize;
        let mut peer_rate = 0u64;
        let mut peer_rtt: Option<Duration> = None;
        for &id in &s.channels {
            let Some(ch) = self.chan(id) else { continue };
            // A peer still connecting counts: it may be a leecher of the same origin, and
            // fetching at full speed meanwhile would fetch what it fetches.
            any_peer = true;
            if !ch.is_established() {
                continue;
            }
            peer_requests += ch.down.requested.len();
            peer_rate += u64::from(ch.down.dl_rate);
            if let Some(r) = ch.down.req_rtt {
                peer_rtt = Some(peer_rtt.map_or(r, |p: Duration| p.min(r)));
            }
        }
        let pos = s.have.first_missing(s.playback.min(n));
        // Alone (no peer connected): the origin at full speed, in order.
        let (window_end, solo) = if !any_peer {
            (n, true)
        } else {
            // Without deadlines the critical window is the start: the first chunks after the
            // playback position, until a peer has proven itself by delivering. From then on
            // peers are expected to keep up, and the origin serves only what no peer has.
            let window = match (peer_rate, peer_rtt) {
                (0, _) | (_, None) => CRITICAL_WINDOW,
                _ => 0,
            };
            ((pos + window).min(n), false)
        };
        // Run length: what the origin delivers in RUN_TIME (at least MIN_RUN chunks).
        let run = (o.rate * RUN_TIME.as_micros() as u64 / 1_000_000 / cs)
            .clamp(MIN_RUN, (MAX_RUN_BYTES / cs).max(MIN_RUN));
        let mut slots = MAX_FETCHES.saturating_sub(o.fetches.len());
        if slots == 0 {
            return;
        }
        let Tree::Partial(tree) = &s.tree else { return };
        let layer = o.layer;
        let leaf_known = |c: u64| Bin::leaf(c).is_some_and(|b| tree.is_verified(b));
        // Candidates, most urgent first, each with its run length: the critical window (or,
        // alone, everything) from the playback position; then, beside peers, chunks no
        // connected peer has (nobody else can deliver them), walked from this origin's own
        // starting point so that leechers sharing an origin fetch different parts.
        let deadlines = if solo {
            None
        } else {
            self.deadline_critical(s, o, now, spread)
        };
        // With deadlines, chunks no peer has wait until nothing is critical, one fetch at a
        // time: an origin's answers queue behind each other, and prefetch must not delay a
        // deadline.
        let orphan_slots = match &deadlines {
            Some(d) if !d.is_empty() => 0,
            Some(_) => 1usize.saturating_sub(
                o.fetches
                    .iter()
                    .filter(|f| matches!(f.kind, Kind::Chunks(_)))
                    .count(),
            ),
            None => slots,
        };
        let viewer = deadlines.is_some();
        let mut ranges: Vec<(Range<u64>, u64)> = match deadlines {
            Some(d) => d.into_iter().map(|r| (r, run)).collect(),
            None => s
                .claimed
                .missing_in(pos..window_end)
                .map(|r| (r, if solo { run } else { MIN_RUN }))
                .collect(),
        };
        if solo && pos > 0 {
            ranges.extend(s.claimed.missing_in(0..pos).map(|r| (r, run)));
        }
        let mut cursor = o.cursor;
        // Only while peers have nothing for us to ask: between leechers of one origin, the
        // one whose peers keep it busy downloads from them, the other fills from the origin
        // (both fetching at once would fetch the same chunks before their HAVEs cross).
        if !solo && !s.avail.is_empty() && peer_requests == 0 {
            // A walk from a random point, on from where it stopped; it jumps to a new random
            // point when it runs into chunks others have or fetch, instead of following them
            // (a leecher sharing the origin would else trail the other's front and both fetch
            // the same chunks from then on).
            let orphan = |c: u64| s.avail.get(c as usize).is_some_and(|&a| a == 0);
            let mut jumps = 0;
            let mut steps = 0;
            let mut wanted = orphan_slots.min(slots);
            let mut wrapped = false;
            // `fresh`: at a random point, not following a run of ours.
            let mut fresh = cursor.is_none();
            let mut c = cursor.unwrap_or_else(|| self.rng.gen_range(0..n)).min(n);
            while wanted > 0 && jumps <= 8 && steps < 4096 {
                steps += 1;
                let Some(g) = s.claimed.missing_in(c..n).next().map(|g| g.start) else {
                    if wrapped {
                        break;
                    }
                    (c, wrapped, fresh) = (0, true, true);
                    continue;
                };
                // Following our own run into someone else's chunks (ours in flight are no
                // reason to jump): jump.
                let crossed = g > c && (s.have.count_in(c..g) > 0 || !orphan(g - 1));
                if !fresh && (crossed || !orphan(g)) {
                    (c, fresh) = (self.rng.gen_range(0..n), true);
                    jumps += 1;
                    continue;
                }
                if !orphan(g) {
                    c = g + 1;
                    continue;
                }
                let mut e = g + 1;
                while e < n && e - g < MIN_RUN && orphan(e) && !s.claimed.contains(e) {
                    e += 1;
                }
                ranges.push((g..e, MIN_RUN));
                wanted -= 1;
                (c, fresh) = (e, false);
            }
            cursor = Some(c);
        }
        let mut picks: Vec<Range<u64>> = Vec::new();
        let mut leaf_fetches: Vec<Range<u64>> = Vec::new();
        let leaf_span = (TREE_PREFIX / layout.hash.output_len() as u64).max(1);
        let mut taken = crate::binmap::Binmap::new();
        'outer: for (r, run) in ranges {
            let mut c = r.start;
            while c < r.end {
                if slots == 0 {
                    break 'outer;
                }
                if taken.contains(c) {
                    c += 1;
                    continue;
                }
                if !leaf_known(c) {
                    // Leaf hashes for the blocks from here on (at most a prefix's worth),
                    // those not already asked for.
                    let first = c >> layer;
                    let last = ((c + leaf_span).min(n) - 1) >> layer;
                    let mut b = first;
                    while b <= last
                        && !o.leaves.contains(&b)
                        && !leaf_fetches.iter().any(|f| f.contains(&b))
                    {
                        b += 1;
                    }
                    if b > first {
                        leaf_fetches.push(first..b);
                        slots -= 1;
                    }
                    c = ((b.max(first + 1)) << layer).min(r.end).max(c + 1);
                    continue;
                }
                let mut end = c + 1;
                while end < r.end && end - c < run && leaf_known(end) && !taken.contains(end) {
                    end += 1;
                }
                taken.insert_range(c..end);
                picks.push(c..end);
                slots -= 1;
                c = end;
            }
        }
        // A viewer's leaf hashes ahead of its playback position are fetched before a chunk
        // there turns critical: a critical chunk whose leaves are missing takes two answers of
        // the origin instead of one (20 viewers of a 4 Mbit/s VoD stalled twice, both where
        // playback crossed into a block whose leaves had not been fetched).
        // Only blocks due soon: further ahead peers may deliver the whole block meanwhile
        // (with the uncle hashes each chunk needs), and its leaves are never needed here.
        let lookahead = s.due_before(now + LEAF_LOOKAHEAD);
        if let (true, Some(ahead), true) = (viewer && slots > 0, lookahead, leaf_fetches.is_empty())
        {
            let ahead = ahead.min(n);
            let need = |b: u64| {
                !o.leaves.contains(&b)
                    && s.have
                        .missing_in((b << layer).max(pos)..((b + 1) << layer).min(n))
                        .next()
                        .is_some_and(|r| !leaf_known(r.start))
            };
            if let Some(first) = ((pos >> layer)..ahead.div_ceil(1 << layer)).find(|&b| need(b)) {
                let last = ((first << layer) + leaf_span).min(n).div_ceil(1 << layer);
                let mut b = first + 1;
                while b < last && !o.leaves.contains(&b) {
                    b += 1;
                }
                leaf_fetches.push(first..b);
            }
        }
        if let Some(o) = self.origins.slots[i].as_mut() {
            o.cursor = cursor;
            // A viewer's pass that found nothing to fetch is not repeated for QUIET_LOOK:
            // it ran after every input (a thousand a second per viewer), and walking the
            // window each time took 60% of a 200-viewer simulation's time.
            let idle = leaf_fetches.is_empty() && picks.is_empty();
            o.quiet_until = (viewer && idle).then(|| now + QUIET_LOOK);
        }
        for blocks in leaf_fetches {
            let Some(o) = self.origins.slots[i].as_mut() else {
                return;
            };
            o.leaves.extend(blocks.clone());
            let nodes = (blocks.start << layer)..(blocks.end << layer);
            let bytes = layout.layer_bytes(0, nodes);
            let f = new_fetch(&mut self.origins.next_id, i, Kind::Leaves { blocks }, now);
            self.emit(f, bytes);
        }
        for p in picks {
            if let Some(s) = self.swarms[idx].as_mut() {
                for c in p.clone() {
                    *s.requested.entry(c).or_insert(0) += 1;
                }
                s.claimed.insert_range(p.clone());
            }
            let bytes = layout.content_bytes(p.clone());
            let f = new_fetch(&mut self.origins.next_id, i, Kind::Chunks(p), now);
            self.emit(f, bytes);
        }
    }

    /// With a reader's bitrate (deadlines), the critical chunks of its window, most urgent
    /// first: when a chunk due within twice the origin's answer time is missing, every chunk
    /// still missing that is due within [`CRITICAL_HORIZON`], asked of a peer or not; and those no
    /// peer was asked for whose deadline is nearer than the quickest peer is expected to
    /// deliver (twice its round trip and queue) or that no peer has. Chunks this origin is
    /// fetching already are left out. `None` without a bitrate.
    fn deadline_critical(
        &self,
        s: &crate::endpoint::swarm::Swarm,
        o: &Origin,
        now: Instant,
        spread: u64,
    ) -> Option<Vec<Range<u64>>> {
        s.play.as_ref()?.playback.bitrate()?;
        let w = s.play_window()?;
        let best_eta = s
            .channels
            .iter()
            .filter_map(|&id| self.chan(id))
            .filter(|ch| ch.is_established())
            .map(crate::endpoint::playback::eta)
            .min();
        let origin_time = o.answer_time.unwrap_or(Duration::from_millis(300));
        let mut mine = crate::binmap::Binmap::new();
        for f in &o.fetches {
            if let Kind::Chunks(r) = &f.kind {
                mine.insert_range(r.clone());
            }
        }
        // Deadlines grow with the chunk number: "due within T" is "before chunk due_before(now
        // + T)" (one division per call instead of one per chunk).
        // The critical part of the buffer. When a chunk is missing that is due within twice
        // the origin's answer time (the player is about to run dry), whatever is missing
        // within the horizon is fetched from the origin, asked of a peer or not, in runs.
        // Fetching only the chunks about to be late, one by one as they fell due, kept a
        // player whose peers deliver at about the media rate at an empty buffer, with the
        // origin answering fetches of one or two chunks four at a time: slower than the
        // media (20 viewers of a 4 Mbit/s VoD stalled 405 times).
        let short_limit = s.due_before(now + origin_time * 2)?.clamp(w.start, w.end);
        let danger = s
            .have
            .missing_in(w.start..short_limit)
            .flatten()
            .any(|c| !mine.contains(c));
        let horizon = (origin_time * 2).max(CRITICAL_HORIZON);
        let late_limit = if danger {
            s.due_before(now + horizon)?.clamp(w.start, w.end)
        } else {
            w.start
        };
        let peer_limit = best_eta.map(|eta| s.due_before(now + eta * 2));
        let mut late: Vec<u64> = Vec::new();
        'late: for gap in s.have.missing_in(w.start..late_limit) {
            for c in gap {
                if late.len() >= CRITICAL_MAX {
                    break 'late;
                }
                if !mine.contains(c) {
                    late.push(c);
                }
            }
        }
        // Nobody was asked for them: critical when no peer has them or the quickest peer would
        // deliver them late. Bounded: this runs after every input, so it looks at no more
        // than CRITICAL_WALK such chunks (without bounds, one walk per chunk of the window
        // took 90% of a 20-viewer simulation's time).
        let mut unasked: Vec<u64> = Vec::new();
        let mut walked = 0u64;
        // Before `lim` every such chunk is critical; from it on, those no peer has.
        let lim = match peer_limit {
            Some(Some(l)) => l,
            _ => u64::MAX,
        };
        'walk: for gap in s.claimed.missing_in(w.clone()) {
            let mut c = gap.start;
            while c < gap.end {
                let budget = u64::from(CRITICAL_WALK) - walked;
                if budget == 0 || unasked.len() >= CRITICAL_MAX {
                    break 'walk;
                }
                if c < lim {
                    let room = (CRITICAL_MAX - unasked.len()) as u64;
                    let end = gap.end.min(lim).min(c + budget).min(c + room);
                    unasked.extend(c..end);
                    walked += end - c;
                    c = end;
                    continue;
                }
                let end = gap.end.min(c + budget);
                // The first chunk no peer has (past the map's end: none has it).
                let known = s.avail.len() as u64;
                let orphan = s
                    .avail
                    .get(c.min(known) as usize..end.min(known) as usize)
                    .and_then(|a| a.iter().position(|&n| n == 0))
                    .map(|i| c + i as u64)
                    .or_else(|| (end > known).then(|| c.max(known)));
                match orphan {
                    Some(z) => {
                        unasked.push(z);
                        walked += z - c + 1;
                        c = z + 1;
                    }
                    None => {
                        walked += end - c;
                        c = end;
                    }
                }
            }
        }
        // The prefetch part that only seeders could fill: chunks due within PREFETCH_FLOOR
        // that no leecher we know has (ahead of every other viewer, at the front of a swarm
        // whose viewers joined at different times). A seeder's uplink is shared by the whole
        // swarm; a viewer at the front lived on it and on critical fetches, a second or so
        // ahead of its player, and stalled through any outage of the origin.
        // Seeders that deliver half as fast again as the media keep that part growing by
        // themselves, and one that has not delivered yet is given the chance: the part is then
        // left to them.
        let n = s.chunk_count().unwrap_or(u64::MAX);
        let (mut seeders, mut seeder_rate, mut unmeasured) = (0usize, 0u64, false);
        for ch in s.channels.iter().filter_map(|&id| self.chan(id)) {
            if ch.is_established() && ch.peer_have.is_complete(n) {
                seeders += 1;
                seeder_rate += u64::from(ch.down.dl_rate) * u64::from(s.cfg.chunk_size);
                // Not delivered yet though it lets us ask: too early to tell.
                unmeasured |= !ch.choke.peer_choking && ch.down.req_rtt.is_none();
            }
        }
        let bitrate = s.play.as_ref()?.playback.bitrate()?;
        let floor_limit =
            if !unmeasured && seeder_rate.saturating_mul(2) < bitrate.saturating_mul(3) {
                s.due_before(now + PREFETCH_FLOOR)?.clamp(w.start, w.end)
            } else {
                w.start
            };
        // From a random point (`spread`), a few runs' worth at a time: viewers near each
        // other at the front then fetch different parts and trade them, instead of fetching
        // the same chunks in order before their HAVEs cross. What is due soonest is the
        // critical part's concern.
        let mut thin: Vec<u64> = Vec::new();
        let mut walked = 0u32;
        let span = floor_limit.saturating_sub(w.start);
        let from = w.start + spread.checked_rem(span).unwrap_or(0);
        'thin: for gap in s
            .have
            .missing_in(from..floor_limit)
            .chain(s.have.missing_in(w.start..from))
        {
            for c in gap {
                walked += 1;
                if walked > CRITICAL_WALK || thin.len() as u64 >= MIN_RUN * MAX_FETCHES as u64 {
                    break 'thin;
                }
                let leechers = usize::from(s.avail.get(c as usize).copied().unwrap_or(0))
                    .saturating_sub(seeders);
                if leechers == 0 && !mine.contains(c) {
                    thin.push(c);
                }
            }
        }
        // Most urgent first, as ranges; no more than the origin's free fetches could take.
        let mut all = late;
        all.extend(unasked);
        all.extend(thin);
        all.sort_unstable();
        all.dedup();
        all.truncate(CRITICAL_MAX);
        let mut out: Vec<Range<u64>> = Vec::new();
        for c in all {
            match out.last_mut() {
                Some(r) if r.end == c => r.end += 1,
                _ => out.push(c..c + 1),
            }
        }
        Some(out)
    }
}
