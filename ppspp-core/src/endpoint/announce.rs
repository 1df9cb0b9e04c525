//! Announcements (RFC 7574 §3.2, §3.4, §4.3): HAVEs of what we verified, ACKs of what we
//! received, their aggregation and timing, and the periodic re-announcement of our map.

use super::Endpoint;
use super::channel::{Channel, Role};
use super::download::Download;
use super::output::Out;
use super::swarm::Swarm;
use super::{HAVE_DELAY, HAVE_REFRESH};
use crate::binmap::Binmap;
use crate::time::Instant;
use crate::wire::{Ack, ChunkSpec, Message};
use alloc::vec::Vec;

/// Queues an ACK of chunks `first..=last` (a complete interval around the chunk: the largest
/// aligned bin, see `on_data`; R-3.4-c) with a delay sample (R-3.4-d).
pub(super) fn push_ack(ch: &mut Channel, first: u64, last: u64, delay: i64) {
    // A later, larger interval supersedes earlier ACKs it covers.
    ch.ann
        .pending_acks
        .retain(|p| !(first <= p.first && p.last <= last));
    ch.ann.pending_acks.push(PendingAck { first, last, delay });
}

impl Endpoint {
    pub(super) fn on_have(&mut self, id: u32, spec: ChunkSpec) {
        let Some((a, b)) = self.spec_chunks(id, spec) else {
            return;
        };
        let Some((ch, sw, _)) = self.parts(id) else {
            return;
        };
        if ch.is_established() {
            sw.add_avail_range(&ch.peer_have, a, b + 1);
        }
        ch.peer_have.insert_range(a..b + 1);
        // R-3.8-c: a HAVE cancels the peer's requests for those chunks.
        ch.up.cancel_upload(a, b);
        // Picking again is only worth it when the HAVE names something we still need and
        // nobody is fetching.
        let claimed = !sw.complete && sw.claimed.intersects(a..b + 1);
        let unclaimed = !sw.complete && !sw.claimed.contains_range(a..b + 1);
        // Moving first: the pipeline's room goes to chunks the seeder would otherwise send
        // twice before new picks.
        if claimed {
            self.move_requests_from_seeders(id, a, b);
        }
        if unclaimed {
            if let Some(ch) = self.chan_mut(id) {
                ch.down.pick_exhausted = false;
            }
            self.fill_requests(id);
        }
    }

    /// Chunks `a..=b`, which peer `id` has just announced, that are still asked of a seeder
    /// (a peer with the whole content) are asked of `id` instead, and cancelled at the seeder
    /// while `id`'s request pipeline has room. A seeder's upload is where chunks new
    /// to the swarm come from: a chunk another leecher already has is better fetched from
    /// that leecher (several leechers picking the same rare chunk from the seeder at once
    /// sent it about a third of its chunks twice in a 1 + 4 swarm).
    fn move_requests_from_seeders(&mut self, id: u32, a: u64, b: u64) {
        let Some((ch, sw, _)) = self.parts(id) else {
            return;
        };
        if !ch.is_established() || ch.choke.peer_choking {
            return;
        }
        let max = sw.cfg.max_requests_per_peer;
        let room = ch
            .down
            .request_target
            .min(max)
            .saturating_sub(ch.down.requested.len());
        let Some(n) = sw.chunk_count() else { return };
        if room == 0 || n == 0 {
            return;
        }
        let others: Vec<u32> = sw.channels.iter().copied().filter(|&o| o != id).collect();
        let mut moved: Vec<u64> = Vec::new();
        for o in others {
            let Some(och) = self.chan_mut(o) else {
                continue;
            };
            if !och.peer_have.is_complete(n) {
                continue;
            }
            // Walk whichever is shorter: the announced range (a HAVE may name millions of
            // chunks) or what is requested of the seeder (sorted: the map's order is not
            // deterministic).
            let span = b - a + 1;
            let mut hits: Vec<u64> = if span > och.down.requested.len() as u64 {
                let mut v: Vec<u64> = och
                    .down
                    .requested
                    .keys()
                    .copied()
                    .filter(|c| (a..=b).contains(c))
                    .collect();
                v.sort_unstable();
                v
            } else {
                (a..=b)
                    .filter(|c| och.down.requested.contains_key(c))
                    .collect()
            };
            hits.truncate(room - moved.len());
            let mut cancels = Vec::new();
            for c in hits {
                och.down.requested.remove(&c);
                cancels.push((c, c));
                moved.push(c);
            }
            if !cancels.is_empty() {
                och.down.pending_cancels.extend(cancels);
                Download::coalesce(&mut och.down.pending_cancels);
                self.queue_send(o);
            }
        }
        if moved.is_empty() {
            return;
        }
        let now = self.now;
        let Some((ch, sw, _)) = self.parts(id) else {
            return;
        };
        let live = sw.live.is_some();
        for &c in &moved {
            ch.down.ask(c, now, live);
            match ch.down.pending_requests.last_mut() {
                Some(l) if l.1.checked_add(1) == Some(c) => l.1 = c,
                _ => ch.down.pending_requests.push((c, c)),
            }
        }
        self.stats.requests_moved += moved.len() as u64;
        self.queue_send(id);
        self.reschedule(id);
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
                och.ann.have_idle = false;
                if och.ann.haves_due.is_none() {
                    och.ann.haves_due = Some(now + HAVE_DELAY);
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

    /// Once swarm `idx`'s HAVE log is long, every channel folds its part into its own pending
    /// map and the log restarts, so a channel that cannot send does not hold the log forever.
    pub(crate) fn compact_have_log(&mut self, idx: usize) {
        let Some(s) = self.swarms.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        if s.have_log.len() < HAVE_LOG_MAX {
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

    /// HAVEs are never acknowledged, so one lost leaves the peer believing for good that we
    /// lack those chunks, and a leecher can stall for good while every peer it knows is
    /// complete (see CHANGELOG: the HAVE refresh). A peer that lacks chunks we have and has asked us for nothing for
    /// [`super::HAVE_REFRESH`] gets our whole map again (a complete peer's is one HAVE), then
    /// after twice as long each time, up to eight times; asking resets the delay.
    pub(super) fn refresh_haves(&mut self, idx: usize) {
        let now = self.now;
        let Some(s) = self.swarms[idx].as_ref() else {
            return;
        };
        let ids: Vec<u32> = s.channels.iter().copied().collect();
        for id in ids {
            let Some((ch, sw, _)) = self.parts(id) else {
                continue;
            };
            let (at, n) = ch.ann.have_refresh;
            if at > now {
                continue;
            }
            let asked = ch
                .choke
                .interested_at
                .is_some_and(|t| now.saturating_duration_since(t) < HAVE_REFRESH);
            let lacks = ch.is_established()
                && ch.proven
                && ch.accepts(crate::wire::MessageType::Have)
                && sw
                    .chunk_count()
                    .is_some_and(|c| !ch.peer_have.is_complete(c))
                && sw.have.difference_ranges(&ch.peer_have).next().is_some();
            if asked || !lacks {
                ch.ann.have_refresh = (now + HAVE_REFRESH, 0);
                continue;
            }
            ch.ann.pending_haves.union_with(&sw.have);
            ch.ann.have_refresh = (now + HAVE_REFRESH * (2u32 << n.min(2)), n + 1);
            self.stats.have_refreshes += 1;
            self.queue_send(id);
        }
    }
}

/// An ACK waiting to be sent.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PendingAck {
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) delay: i64,
}

/// The HAVEs and ACKs one channel owes its peer, and when they go out.
#[derive(Debug)]
pub(crate) struct Announce {
    pub(crate) pending_acks: Vec<PendingAck>,
    /// DATA acknowledged in `pending_acks` (since ACKs last went out).
    pub(crate) data_unacked: u16,
    /// When a lone pending ACK goes out.
    pub(crate) ack_due: Option<Instant>,
    /// Chunks to announce beyond the swarm's HAVE log (the initial map, a compacted log).
    pub(crate) pending_haves: Binmap,
    /// Position in the swarm's HAVE log up to which chunks are announced or in
    /// `pending_haves` (see `Swarm::have_log`).
    pub(crate) have_seq: u64,
    /// In the swarm's list of channels waiting for the next verified chunk.
    pub(crate) have_idle: bool,
    /// When pending HAVEs go out (with the next datagram, or alone); `None` with HAVEs
    /// pending: at once.
    pub(crate) haves_due: Option<Instant>,
    /// When to announce our whole map again if the peer still lacks chunks we have and asks
    /// us for none, and how many times it was announced again since it last asked (see
    /// `Endpoint::refresh_haves`).
    pub(crate) have_refresh: (Instant, u8),
}

impl Announce {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            pending_acks: Vec::new(),
            data_unacked: 0,
            ack_due: None,
            pending_haves: Binmap::new(),
            have_seq: 0,
            have_idle: false,
            haves_due: None,
            have_refresh: (now + HAVE_REFRESH, 0),
        }
    }

    /// Whether pending ACKs must go out now: every second DATA is acknowledged at once, a
    /// lone one after [`super::ACK_DELAY`] (R-3.4-e; until then they ride on other datagrams).
    pub(crate) fn acks_due(&self, now: Instant) -> bool {
        !self.pending_acks.is_empty()
            && (self.data_unacked >= 2 || self.ack_due.is_none_or(|t| t <= now))
    }

    /// Whether HAVEs are pending: in `pending_haves`, or in the swarm's HAVE log past this
    /// channel's position (`log_end`: the log's end).
    pub(crate) fn haves_pending(&self, log_end: u64) -> bool {
        !self.pending_haves.is_empty() || self.have_seq < log_end
    }

    /// Whether pending HAVEs may ride on a datagram going out now (`log_end`: the swarm's
    /// HAVE log end).
    pub(crate) fn haves_may_ride(&self, now: Instant, log_end: u64) -> bool {
        self.haves_pending(log_end) && self.haves_due.is_none_or(|t| t <= now)
    }

    /// When pending HAVEs go out alone (`None`: at once).
    pub(crate) fn haves_alone_at(&self) -> Option<Instant> {
        self.haves_due.map(|t| t + super::HAVE_ALONE_EXTRA)
    }

    /// Whether pending HAVEs are due on their own (`log_end`: the swarm's HAVE log end).
    pub(crate) fn haves_are_due(&self, now: Instant, log_end: u64) -> bool {
        self.haves_pending(log_end) && self.haves_alone_at().is_none_or(|t| t <= now)
    }
}

/// Writes pending ACKs, oldest first (L-2.3-b: samples in the order they were taken).
pub(super) fn write_acks(ch: &mut Channel, out: &mut Out<'_>) {
    let mut sent = 0;
    for a in &ch.ann.pending_acks {
        let Some(spec) = ChunkSpec::chunk_range(out.wire.addressing, a.first, a.last, out.cs)
        else {
            sent += 1;
            continue;
        };
        if !out.push(&Message::Ack(Ack {
            spec,
            delay: a.delay,
        })) {
            break;
        }
        sent += 1;
    }
    ch.ann.pending_acks.drain(..sent);
    if ch.ann.pending_acks.is_empty() {
        ch.ann.data_unacked = 0;
        ch.ann.ack_due = None;
    }
}

/// Writes the HAVEs that may ride on this datagram (R-3.2-a), each the largest complete
/// interval around new chunks (R-4.3.1-a); what does not fit waits for the next datagram.
pub(super) fn write_haves(ch: &mut Channel, sw: &mut Swarm, out: &mut Out<'_>) {
    if !(ch.ann.haves_may_ride(out.now, sw.have_log_end())
        && (ch.proven || ch.role == Role::Responder))
    {
        return;
    }
    let mut ranges = sw.take_new_haves(ch);
    if !ch.ann.pending_haves.is_empty() {
        for r in ranges {
            ch.ann.pending_haves.insert_range(r);
        }
        ranges = ch.ann.pending_haves.ranges().collect();
        ch.ann.pending_haves.clear();
    }
    // Only what we still hold: a live stream's discard window may have slid past chunks
    // logged or left pending since (announcing them would be a lie the peer acts on).
    if ranges.iter().any(|r| !sw.have.contains_range(r.clone())) {
        ranges = ranges
            .into_iter()
            .flat_map(|r| held_in(&sw.have, r))
            .collect();
    }
    // Sorted: a range inside the run announced just before is already covered.
    let mut covered = 0;
    let mut unsent = ranges.len();
    for (i, r) in ranges.iter().enumerate() {
        if r.end <= covered {
            continue;
        }
        let (first, last) = match sw.have.run_containing(r.start) {
            Some(run) => (run.start, run.end - 1),
            None => (r.start, r.end - 1),
        };
        if let Some(next) = out.push_ranges(first, last, Message::Have) {
            // The rest of this range (from `next`) waits for the next datagram.
            covered = covered.max(next);
            unsent = i;
            break;
        }
        covered = covered.max(last + 1);
    }
    for r in ranges.drain(unsent..) {
        let start = r.start.max(covered);
        if start < r.end {
            ch.ann.pending_haves.insert_range(start..r.end);
        }
    }
}

/// The runs of `r` that `have` holds.
fn held_in(have: &Binmap, r: core::ops::Range<u64>) -> Vec<core::ops::Range<u64>> {
    let mut out = Vec::new();
    let mut c = r.start;
    for gap in have.missing_in(r.clone()) {
        if gap.start > c {
            out.push(c..gap.start);
        }
        c = gap.end;
    }
    if c < r.end {
        out.push(c..r.end);
    }
    out
}

/// A channel with nothing left to announce waits, off the timer, in the swarm's list of idle
/// channels until the next chunk verifies (see [`Endpoint::announce`]).
pub(super) fn wait_for_haves(ch: &mut Channel, sw: &mut Swarm) {
    if !(ch.proven || ch.role == Role::Responder) || ch.ann.haves_pending(sw.have_log_end()) {
        return;
    }
    ch.ann.haves_due = None;
    if !ch.ann.have_idle && !sw.complete {
        ch.ann.have_idle = true;
        if sw.have_idle.len() > 2 * sw.channels.len() + 16 {
            let live = &sw.channels;
            sw.have_idle.retain(|o| live.contains(o));
        }
        sw.have_idle.push(ch.id);
    }
}

/// Log length at which every channel folds the log into its own pending map and the log
/// restarts (bounds the log when some channel cannot send).
pub(crate) const HAVE_LOG_MAX: usize = 4096;

impl Swarm {
    /// Takes the HAVE log past `ch.ann.have_seq`: the runs of chunks verified since, sorted and
    /// merged, leaving out what the peer already has (R-3.2-d).
    pub(crate) fn take_new_haves(&self, ch: &mut Channel) -> Vec<core::ops::Range<u64>> {
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
    pub(crate) fn absorb_haves(&self, ch: &mut Channel) {
        for r in self.take_new_haves(ch) {
            ch.ann.pending_haves.insert_range(r);
        }
    }
}
