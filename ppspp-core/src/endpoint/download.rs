//! Requesting chunks (RFC 7574 §3.7, §3.8): the per-peer request pipeline, its refill and
//! expiry, and chunks released for others to fetch.

use super::Endpoint;
use super::channel::Channel;
use super::output::Out;
use super::swarm::Swarm;
use super::table::{ChunkHash, ChunkMap, chunk_map};
use crate::rtt::RttEstimator;
use crate::time::{Duration, Instant};
use crate::wire::{ChunkSpec, Message};
use alloc::vec::Vec;

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

/// How long requests to a peer with retransmission timeout `rto` may go unanswered before they
/// are given up (and how long a hole may stay behind a later delivery).
pub(super) fn request_timeout_for(rto: Duration) -> Duration {
    (rto * 2).max(Duration::from_millis(400))
}

impl Endpoint {
    /// Asks peers for more chunks, up to the channel's request target.
    pub(crate) fn fill_requests(&mut self, id: u32) {
        let now = self.now;
        let max = match self
            .chan(id)
            .and_then(|c| self.swarms.get(c.swarm)?.as_ref())
        {
            Some(s) => s.cfg.max_requests_per_peer,
            None => return,
        };
        let urgency = self.urgency(id);
        let Some((ch, sw, rng)) = self.parts(id) else {
            return;
        };
        if !ch.is_established()
            || !ch.proven
            || ch.choke.peer_choking
            || sw.complete
            || sw.store_failed
            || !ch.accepts(crate::wire::MessageType::Request)
        {
            return;
        }
        let target = ch.down.request_target.min(max);
        let outstanding = ch.down.requested.len();
        // Endgame: everything missing is already requested; a peer that is running dry may
        // then ask for chunks already requested elsewhere (and CANCELs the copies later).
        let endgame = outstanding < 4
            && sw.live.is_none()
            && sw
                .chunk_count()
                .is_some_and(|n| sw.have.count() + sw.requested.len() as u64 >= n);
        // The last pick found nothing this peer has that we could ask for; a useful HAVE or a
        // released request clears this. The endgame does too: the pick that found nothing
        // may have run while this peer was still busy, and the chunks it skipped as asked of
        // someone else (a slower peer, an origin) are what it may now ask for.
        if ch.down.pick_exhausted && !endgame {
            return;
        }
        // A reader's window does not wait for the pipeline to drain (a seek is served at
        // once), up to a burst beyond the target.
        let window_only = !ch.down.refill_due(max);
        let burst = ch.down.window_burst();
        if window_only && (outstanding >= target + burst || !sw.window_open_for(&ch.peer_have)) {
            return;
        }
        // Whole groups of PICK_GROUP chunks (one REQUEST, later one HAVE), overshooting the
        // target by less than a group.
        let want = if window_only {
            target + burst - outstanding
        } else {
            (target - outstanding).next_multiple_of(super::picker::PICK_GROUP as usize)
        };
        let (picks, whole) = sw.pick(
            &ch.peer_have,
            &ch.down.requested,
            want,
            endgame,
            rng,
            super::playback::WindowPick {
                urgency,
                only: window_only,
            },
        );
        if picks.is_empty() {
            // Only a pick that looked at the peer's whole map may conclude there is nothing.
            ch.down.pick_exhausted = !endgame && whole;
            return;
        }
        for &(a, b) in &picks {
            for c in a..=b {
                ch.down.ask(c, now, sw.live.is_some());
                *sw.requested.entry(c).or_insert(0) += 1;
            }
            sw.claimed.insert_range(a..b.saturating_add(1));
        }
        // In request order (not sorted): peers serve requests first come, first served, so a
        // chunk still missing behind a delivered later request is a hole (see
        // `expire_requests`); sorting batches together would reorder them.
        for (a, b) in picks {
            match ch.down.pending_requests.last_mut() {
                Some(l) if l.1.checked_add(1) == Some(a) => l.1 = b,
                _ => ch.down.pending_requests.push((a, b)),
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
            if !ch.is_established() || !ch.proven || ch.choke.peer_choking {
                continue;
            }
            // Nothing to clear and no refill due: fill_requests would return at once, so the
            // peer's map need not be searched (with many peers and scattered releases, that
            // search is costly).
            if !ch.down.pick_exhausted && !ch.down.refill_due(max) {
                continue;
            }
            if runs.iter().any(|r| ch.peer_have.intersects(r.clone())) {
                ch.down.pick_exhausted = false;
                self.fill_requests(o);
            }
        }
    }

    /// Gives up on requests a peer did not serve: all of them when it delivered nothing for a
    /// while, or holes left behind chunks requested later and already delivered.
    pub(super) fn expire_requests(&mut self, id: u32) {
        let now = self.now;
        let req_timeout = self.request_timeout(id);
        let hole_timeout = self.hole_timeout(id);
        let Some((ch, sw, _)) = self.parts(id) else {
            return;
        };
        if ch.down.requested.is_empty() {
            return;
        }
        let stalled = now.saturating_duration_since(ch.down.last_delivery) >= req_timeout;
        // Holes: peers serve requests in order, so a request still missing after a later one
        // was delivered was lost (or its DATA was, and the peer did not resend it). Requests
        // overtaken at the last mark, a hole timeout ago, are given up; network reordering and
        // the peer's own retransmission had that long to fill them.
        let epoch = now.saturating_duration_since(ch.down.hole_mark_at) >= hole_timeout;
        if !stalled && !epoch {
            return;
        }
        let mark = if epoch { ch.down.hole_mark_seq } else { 0 };
        if epoch {
            ch.down.hole_mark_seq = ch.down.delivered_seq;
            ch.down.hole_mark_at = now;
        }
        if !stalled && mark == 0 {
            return;
        }
        let mut expired: Vec<u64> = ch
            .down
            .requested
            .iter()
            .filter(|(_, r)| stalled || r.seq < mark)
            .map(|(&c, _)| c)
            .collect();
        expired.sort_unstable();
        if expired.is_empty() {
            return;
        }
        for c in &expired {
            ch.down.requested.remove(c);
            release(sw, *c);
        }
        let mut fell_back = false;
        if stalled {
            ch.down.request_target = (ch.down.request_target / 2).max(4);
            ch.down.last_delivery = now;
            // The same path-MTU fallback as for DATA (`detect_losses`), seen from the
            // downloading side: requests that keep going unanswered may be riding in datagrams
            // the path drops (a long REQUEST or HAVE list).
            let alone = 4 + 1 + ch.wire.addressing.spec_len() + 8 + sw.cfg.chunk_size as usize;
            fell_back = ch.mtu.on_timeout(now, alone);
        }
        let idx = ch.swarm;
        self.stats.rerequests += expired.len() as u64;
        if stalled {
            self.stats.rerequests_stalled += expired.len() as u64;
        }
        if fell_back {
            self.stats.pmtu_fallbacks += 1;
        }
        if let Some(ch) = self.chan_mut(id) {
            ch.down.pick_exhausted = false;
        }
        self.offer_released(idx, &expired, u32::MAX);
    }

    pub(super) fn request_timeout(&self, id: u32) -> Duration {
        request_timeout_for(self.chan(id).map_or(Duration::from_secs(1), |c| {
            // A peer that only downloads sends no DATA and so has no RTT sample of its own
            // (its RTO stays at the initial 1 s, making a lost REQUEST cost 2–4 s): the
            // quickest request-to-delivery time stands in for the round trip.
            match (c.rtt.smoothed(), c.down.req_rtt) {
                (None, Some(r)) => (r * 2).max(Duration::from_millis(100)),
                _ => c.rtt.rto(),
            }
        }))
    }

    /// How long a request may stay behind a later delivered one (the same as a request
    /// timeout).
    pub(super) fn hole_timeout(&self, id: u32) -> Duration {
        self.request_timeout(id)
    }
}

/// A chunk we asked this peer for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Requested {
    pub(crate) seq: u64,
    /// When it was asked for.
    pub(crate) at: Instant,
}

/// What we asked one peer for, and how fast it delivers.
#[derive(Debug)]
pub(crate) struct Download {
    pub(crate) requested: ChunkMap<Requested>,
    pub(crate) request_seq: u64,
    pub(crate) delivered_seq: u64,
    /// `delivered_seq` as it was at `hole_mark_at`: requests below it were overtaken by a
    /// delivery at least `now - hole_mark_at` ago (see `expire_requests`).
    pub(crate) hole_mark_seq: u64,
    pub(crate) hole_mark_at: Instant,
    pub(crate) request_target: usize,
    /// Delivery rate from this peer, chunks per second (EWMA over windows of
    /// [`RATE_WINDOW`]; 0 until the first window closes).
    pub(crate) dl_rate: u32,
    /// Chunks delivered in the current rate window, and when it opened.
    pub(crate) dl_window: (u32, Instant),
    /// The last pick from this peer found nothing to request.
    pub(crate) pick_exhausted: bool,
    pub(crate) pending_requests: Vec<(u64, u64)>,
    pub(crate) pending_cancels: Vec<(u64, u64)>,
    pub(crate) last_delivery: Instant,
    /// The shortest time from a request to its chunk's delivery (the round trip seen from
    /// the downloading side, which sends no DATA to time).
    pub(crate) req_rtt: Option<Duration>,
}

impl Download {
    pub(crate) fn new(now: Instant, hash: ChunkHash) -> Self {
        Self {
            requested: chunk_map(hash),
            request_seq: 0,
            delivered_seq: 0,
            hole_mark_seq: 0,
            hole_mark_at: now,
            request_target: 64,
            dl_rate: 0,
            dl_window: (0, now),
            pick_exhausted: false,
            pending_requests: Vec::new(),
            pending_cancels: Vec::new(),
            last_delivery: now,
            req_rtt: None,
        }
    }

    /// Records a request for chunk `c` sent at `now` (`live`: in a live swarm).
    pub(crate) fn ask(&mut self, c: u64, now: Instant, live: bool) {
        // Nothing was owed before: the wait starts now. A channel idle for a while (its peer
        // had nothing for us) otherwise counted new requests as stalled the moment they
        // left, gave them up and halved its target: a quarter of a live swarm's chunks were
        // re-requested that way.
        // Live swarms only, for now: static swarms were tuned with the old clock, and a
        // viewer beside a seeder too slow for the swarm (20 KB/s for 12 viewers of 250 KB/s,
        // no origin) then never started playing: the seeder, the only source, was asked
        // for less and uploaded a quarter of what it did (ppspp-sim/tests/origin.rs).
        if live && self.requested.is_empty() {
            self.last_delivery = now;
        }
        self.request_seq += 1;
        self.requested.insert(
            c,
            Requested {
                seq: self.request_seq,
                at: now,
            },
        );
    }

    /// Whether the request pipeline is low enough to refill, with at most `max` requests per
    /// peer: refills go half the target at a time, so picking is amortised over several chunks
    /// instead of running for every chunk that arrives, and picks take longer runs (the runs a
    /// peer verifies are what it announces: shorter refills mean more HAVE messages).
    pub(crate) fn refill_due(&self, max: usize) -> bool {
        let target = self.request_target.min(max);
        let outstanding = self.requested.len();
        !(outstanding >= target || (outstanding > 0 && target - outstanding < (target / 2).max(1)))
    }

    /// How many window chunks may be asked beyond the request target: [`WINDOW_BURST`], or
    /// what the peer delivers in [`QUEUE_TIME`](super::QUEUE_TIME) once its rate is known (at
    /// least 4). Urgent chunks queue behind what was asked before them (peers serve in
    /// order): a burst of 64 at a peer delivering 80 chunks a second queued the next urgent
    /// chunk for most of a second, longer than a player's start buffer.
    ///
    /// [`WINDOW_BURST`]: super::playback::WINDOW_BURST
    pub(crate) fn window_burst(&self) -> usize {
        let full = super::playback::WINDOW_BURST;
        if self.dl_rate == 0 {
            return full;
        }
        let in_queue_time =
            u64::from(self.dl_rate) * (super::QUEUE_TIME.as_micros() as u64) / 1_000_000;
        (in_queue_time.min(full as u64) as usize).max(4)
    }

    /// Counts one chunk delivered by this peer and returns the request queue it warrants: the
    /// delivery rate times (RTT + [`super::QUEUE_TIME`]), plus a few. A peer that serves
    /// everything asked of it delivers faster as the queue grows, so the queue keeps growing
    /// (by one per delivery); one that is slower than asked queues up to `QUEUE_TIME` of data
    /// at the peer, no more (chunks queued behind a slow peer are held hostage from others).
    pub(crate) fn on_delivered(
        &mut self,
        now: Instant,
        max: usize,
        rtt: &RttEstimator,
        asked_at: Instant,
    ) {
        // The round trip as the downloading side sees it: the quickest answer to a request.
        let sample = now.saturating_duration_since(asked_at);
        self.req_rtt = Some(self.req_rtt.map_or(sample, |r| r.min(sample)));
        let path_rtt = rtt
            .smoothed()
            .or(self.req_rtt)
            .unwrap_or(super::RATE_WINDOW);
        if self.dl_rate == 0 && self.dl_window.0 == 0 {
            // The first window opens with the first delivery, not with the channel: the
            // handshake and the first round trip are no measure of the peer's rate.
            self.dl_window.1 = now;
        }
        let (count, since) = self.dl_window;
        let count = count + 1;
        let elapsed = now.saturating_duration_since(since);
        // Rate windows of two round trips (at most RATE_WINDOW): a rate that lags the pipeline
        // by more would cap its growth.
        let window = (path_rtt * 2).clamp(Duration::from_millis(20), super::RATE_WINDOW);
        if elapsed >= window {
            let inst = (u64::from(count) * 1_000_000 / (elapsed.as_micros() as u64).max(1))
                .min(u64::from(u32::MAX)) as u32;
            // Fast up, slow down: a peer that serves faster than before is believed at once
            // (the queue must grow with it, or it caps its own growth), a slower one only
            // over several windows.
            self.dl_rate = if self.dl_rate == 0 {
                inst
            } else {
                inst.max(((3 * u64::from(self.dl_rate) + u64::from(inst)) / 4) as u32)
            };
            self.dl_window = (0, now);
        } else {
            self.dl_window = (count, since);
        }
        let mut target = (self.request_target + 1).min(max);
        // A peer that answers within a round trip and QUEUE_TIME keeps up: its queue grows by
        // one per delivery (doubling per round trip). One that answers later has more queued
        // than it serves in QUEUE_TIME: its queue is capped at what it delivers in that time.
        let queued = sample > path_rtt + super::QUEUE_TIME;
        if self.dl_rate > 0 && queued {
            let horizon = path_rtt * 2 + super::QUEUE_TIME;
            let ceiling = u64::from(self.dl_rate) * (horizon.as_micros() as u64) / 1_000_000 + 8;
            target = target.min(ceiling.min(usize::MAX as u64) as usize);
        }
        self.request_target = target.max(4);
    }

    /// Sorts and merges `ranges` (inclusive pairs) in place.
    pub(crate) fn coalesce(ranges: &mut Vec<(u64, u64)>) {
        ranges.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for &(a, b) in ranges.iter() {
            match out.last_mut() {
                Some(l) if a <= l.1.saturating_add(1) => l.1 = l.1.max(b),
                _ => out.push((a, b)),
            }
        }
        *ranges = out;
    }
}

/// Writes pending CANCELs, then REQUESTs; a range whose messages do not all fit goes on in the
/// next datagram from where this one stopped.
pub(super) fn write_requests(ch: &mut Channel, out: &mut Out<'_>) {
    for (list, make) in [
        (
            &mut ch.down.pending_cancels,
            Message::Cancel as fn(ChunkSpec) -> Message,
        ),
        (
            &mut ch.down.pending_requests,
            Message::Request as fn(ChunkSpec) -> Message,
        ),
    ] {
        let mut done = 0;
        for range in list.iter_mut() {
            let (a, b) = *range;
            match out.push_ranges(a, b, make) {
                None => done += 1,
                Some(next) => {
                    range.0 = next.max(a);
                    break;
                }
            }
        }
        list.drain(..done);
    }
}
