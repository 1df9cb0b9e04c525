//! Timers: handshake retransmission, loss detection, request timeouts, keep-alives, dead
//! peers, pacing, and the swarm-wide choke rounds and PEX.

use alloc::vec::Vec;
use core::cmp::Reverse;

use super::channel::{Role, State};
use super::{CHOKE_ROUND, Endpoint, TICK, release};
use crate::event::CloseReason;
use crate::time::{Duration, Instant};

/// A responder's half-open channel is dropped after this long without proof.
const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(20);
/// Retransmission timeouts in a row after which a channel caps its datagrams (path MTU black
/// hole).
const PMTU_RTO_STREAK: u8 = 3;
/// How long the cap lasts before full-size datagrams are tried again.
const PMTU_RETRY: Duration = Duration::from_secs(60);
/// How many times an unanswered UNCHOKE is sent again.
const UNCHOKE_REPEATS: u8 = 8;
/// How long requests to a peer with retransmission timeout `rto` may go unanswered before they
/// are given up (and how long a hole may stay behind a later delivery).
fn request_timeout_for(rto: Duration) -> Duration {
    (rto * 2).max(Duration::from_millis(400))
}

impl Endpoint {
    /// Advances time to `now` and runs every timer that is due. Calling it early or twice is
    /// harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        // Each due channel runs once per call, so a deadline that stays due cannot spin here.
        let mut due: Vec<u32> = Vec::new();
        while let Some(&Reverse((t, id))) = self.timers.peek() {
            if t > self.now {
                break;
            }
            self.timers.pop();
            let Some(ch) = self.chan_mut(id) else {
                continue;
            };
            // An entry superseded by an earlier deadline is stale: the channel's own entry
            // (`timer_at`) is still in the heap.
            if ch.timer_at != Some(t) {
                continue;
            }
            ch.timer_at = None;
            if !due.contains(&id) {
                due.push(id);
            }
        }
        for id in due {
            self.on_channel_timer(id);
            self.reschedule(id);
        }
        self.drop_stale_timers();
        if self.now >= self.next_tick {
            self.next_tick = self.now + TICK;
            self.tick();
        }
    }

    /// The earliest instant channel `id` needs attention.
    fn deadline(&self, id: u32) -> Option<Instant> {
        let ch = self.chan(id)?;
        let mut d: Option<Instant> = None;
        let mut at = |t: Instant| d = Some(d.map_or(t, |x: Instant| x.min(t)));
        if ch.role == Role::Initiator && ch.state == State::Connecting {
            if let Some(t) = ch.hs_deadline {
                at(t);
            }
            return d;
        }
        if ch.role == Role::Responder && !ch.proven {
            at(ch.last_recv + HALF_OPEN_TIMEOUT);
            return d;
        }
        let rto = ch.rtt.rto();
        if let Some((_, c)) = ch.sent_order.first() {
            if let Some(s) = ch.in_flight.get(&c) {
                at(s.at + rto);
            }
        }
        if let Some(t) = ch.cc.cto_deadline() {
            at(t.max(self.now + Duration::from_millis(1)));
        }
        if !ch.upload.is_empty() && !ch.am_choking {
            if let Some(t) = ch.cc.next_send_time(self.now, self.data_estimate_for(ch)) {
                if t > self.now {
                    at(t);
                }
            }
        }
        if !ch.requested.is_empty() {
            let timeout = request_timeout_for(rto);
            at(ch.last_delivery + timeout);
            if ch.delivered_seq > 0 {
                at(ch.hole_mark_at + timeout);
            }
        }
        let log_end = self
            .swarms
            .get(ch.swarm)
            .and_then(Option::as_ref)
            .map_or(0, |s| s.have_log_end());
        if ch.haves_pending(log_end) {
            if let Some(t) = ch.haves_alone_at() {
                at(t);
            }
        }
        if !ch.pending_acks.is_empty() {
            if let Some(t) = ch.ack_due {
                at(t);
            }
        }
        if !ch.send_keepalive {
            at(ch.last_send + self.cfg.keepalive_interval);
        }
        if ch.sent_since_recv >= 3 {
            at(ch.last_recv + self.cfg.dead_peer_timeout);
        }
        d
    }

    /// Pops stale entries off the top of the timer heap, so that [`Endpoint::poll_timeout`]
    /// names a deadline that is really due then (a driver would otherwise wake for nothing).
    pub(crate) fn drop_stale_timers(&mut self) {
        while let Some(&Reverse((t, id))) = self.timers.peek() {
            if self.chan(id).is_some_and(|c| c.timer_at == Some(t)) {
                break;
            }
            self.timers.pop();
        }
    }

    /// Re-arms channel `id`'s timer if its deadline moved earlier.
    pub(crate) fn reschedule(&mut self, id: u32) {
        let d = self.deadline(id);
        let Some(ch) = self.chan_mut(id) else { return };
        if let Some(d) = d {
            if ch.timer_at.is_none_or(|t| d < t) {
                ch.timer_at = Some(d);
                self.timers.push(Reverse((d, id)));
            }
        }
    }

    fn request_timeout(&self, id: u32) -> Duration {
        request_timeout_for(
            self.chan(id)
                .map_or(Duration::from_secs(1), |c| c.rtt.rto()),
        )
    }

    /// How long a request may stay behind a later delivered one (the same as a request
    /// timeout).
    fn hole_timeout(&self, id: u32) -> Duration {
        self.request_timeout(id)
    }

    fn on_channel_timer(&mut self, id: u32) {
        let now = self.now;
        let (attempts, dead, keepalive) = (
            self.cfg.handshake_attempts,
            self.cfg.dead_peer_timeout,
            self.cfg.keepalive_interval,
        );
        let Some(ch) = self.chan_mut(id) else { return };
        if ch.role == Role::Initiator && ch.state == State::Connecting {
            if ch.hs_deadline.is_some_and(|t| t <= now) {
                if ch.hs_attempts >= attempts {
                    self.close_channel(id, CloseReason::HandshakeTimeout, false);
                    return;
                }
                // R-3.1.1-r: resend the opening datagram.
                ch.send_handshake = true;
                ch.hs_deadline = None;
                self.stats.handshake_retransmissions += 1;
                self.queue_send(id);
            }
            return;
        }
        if ch.role == Role::Responder && !ch.proven {
            if now.saturating_duration_since(ch.last_recv) >= HALF_OPEN_TIMEOUT {
                self.close_channel(id, CloseReason::HandshakeTimeout, false);
            }
            return;
        }
        // R-3.12-b: dead after the timeout with at least 3 datagrams sent meanwhile.
        if now.saturating_duration_since(ch.last_recv) >= dead && ch.sent_since_recv >= 3 {
            self.close_channel(id, CloseReason::Dead, false);
            return;
        }
        // R-3.12-a: keep-alive when nothing else went out.
        let keep = now.saturating_duration_since(ch.last_send) >= keepalive;
        if keep {
            ch.send_keepalive = true;
        }
        if let Some(t) = ch.cc.cto_deadline() {
            if t <= now {
                ch.cc.on_timeout(now);
            }
        }
        if keep {
            self.queue_send(id);
        }
        self.detect_losses(id);
        self.expire_requests(id);
        if self.can_send_more(id) {
            self.queue_send(id);
        }
    }

    /// Declares DATA lost (M-4): sent before three later-sent chunks were acknowledged, or
    /// unacknowledged for an RTO. Lost chunks go back to the front of the upload queue.
    pub(crate) fn detect_losses(&mut self, id: u32) {
        let now = self.now;
        let cs = self
            .chan(id)
            .and_then(|c| self.swarms.get(c.swarm)?.as_ref())
            .map_or(1024, |s| s.cfg.chunk_size);
        let mut fell_back = false;
        let Some(ch) = self.chan_mut(id) else { return };
        if ch.dgram_cap.is_some() && now.saturating_duration_since(ch.dgram_cap_at) >= PMTU_RETRY {
            // Try full-size datagrams again now and then (the path may have changed).
            ch.dgram_cap = None;
            ch.big_loss_streak = 0;
            ch.big_loss_min = u16::MAX;
        }
        let rto = ch.rtt.rto();
        let srtt = ch.rtt.smoothed_or(rto);
        let time_threshold = srtt + srtt / 8 + Duration::from_millis(5);
        let mut lost = Vec::new();
        let mut bytes = 0;
        let mut timed_out = false;
        while let Some((seq, c)) = ch.sent_order.first() {
            let Some(s) = ch.in_flight.get(&c).copied() else {
                ch.sent_order.remove(seq);
                continue;
            };
            let age = now.saturating_duration_since(s.at);
            let by_order = seq + 3 <= ch.acked_seq || (seq < ch.acked_seq && age > time_threshold);
            // Once the oldest DATA has gone unanswered for an RTO, everything still in flight
            // counts as lost (as TCP does on a retransmission timeout): waiting for each to
            // time out in turn, under a window of one packet, would stall for seconds.
            let by_timeout = age >= rto || timed_out;
            if !(by_order || by_timeout) {
                break;
            }
            timed_out |= by_timeout && !by_order;
            ch.sent_order.remove(seq);
            ch.in_flight.remove(&c);
            ch.in_flight_map.remove(c);
            bytes += s.bytes;
            if s.size > ch.max_acked_size {
                ch.big_loss_streak = ch.big_loss_streak.saturating_add(1);
                ch.big_loss_min = ch.big_loss_min.min(s.size);
            }
            lost.push(c);
        }
        if lost.is_empty() {
            return;
        }
        // Path MTU below ours, seen from sizes: datagrams bigger than any acknowledged keep
        // vanishing while smaller ones arrive (retransmissions go small, see `add_data`).
        // Cap at the biggest size known to pass (at least a DATA alone). Once full-size
        // datagrams have been acknowledged, random loss never triggers this.
        if ch.big_loss_streak >= PMTU_RTO_STREAK && ch.dgram_cap.is_none() {
            let alone = 4 + 1 + ch.wire.addressing.spec_len() + 8 + cs as usize;
            ch.dgram_cap = Some(alone.max(usize::from(ch.max_acked_size)).max(256));
            ch.dgram_cap_at = now;
            fell_back = true;
        }
        if timed_out {
            ch.rtt.on_timeout();
            // Path MTU black hole (RFC 4821 §3's fallback, coarsely): after repeated timeouts
            // with nothing acknowledged, send no datagram bigger than a DATA alone; the
            // hashes a chunk needs then travel in datagrams of their own (R-5.3-c).
            ch.rto_streak = ch.rto_streak.saturating_add(1);
            if ch.rto_streak >= PMTU_RTO_STREAK && ch.dgram_cap.is_none() {
                let cap = 4 + 1 + ch.wire.addressing.spec_len() + 8 + cs as usize;
                ch.dgram_cap = Some(cap.max(256));
                ch.dgram_cap_at = now;
                fell_back = true;
            }
        }
        ch.cc.on_loss(now, bytes, &ch.rtt);
        // The oldest loss goes out first.
        for &c in lost.iter().rev() {
            if !ch.peer_have.contains(c) {
                ch.lost.insert(c);
                ch.push_upload_front(c);
            }
        }
        if fell_back {
            self.stats.pmtu_fallbacks += 1;
        }
        self.queue_send(id);
    }

    /// Gives up on requests a peer did not serve: all of them when it delivered nothing for a
    /// while, or holes left behind chunks requested later and already delivered.
    fn expire_requests(&mut self, id: u32) {
        let now = self.now;
        let req_timeout = self.request_timeout(id);
        let hole_timeout = self.hole_timeout(id);
        let Some((ch, sw, _)) = self.parts(id) else {
            return;
        };
        if ch.requested.is_empty() {
            return;
        }
        let stalled = now.saturating_duration_since(ch.last_delivery) >= req_timeout;
        // Holes: peers serve requests in order, so a request still missing after a later one
        // was delivered was lost (or its DATA was, and the peer did not resend it). Requests
        // overtaken at the last mark, a hole timeout ago, are given up; network reordering and
        // the peer's own retransmission had that long to fill them.
        let epoch = now.saturating_duration_since(ch.hole_mark_at) >= hole_timeout;
        if !stalled && !epoch {
            return;
        }
        let mark = if epoch { ch.hole_mark_seq } else { 0 };
        if epoch {
            ch.hole_mark_seq = ch.delivered_seq;
            ch.hole_mark_at = now;
        }
        if !stalled && mark == 0 {
            return;
        }
        let mut expired: Vec<u64> = ch
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
            ch.requested.remove(c);
            release(sw, *c);
        }
        let mut fell_back = false;
        if stalled {
            ch.request_target = (ch.request_target / 2).max(4);
            ch.last_delivery = now;
            // The same path-MTU fallback as for DATA (`detect_losses`), seen from the
            // downloading side: requests that keep going unanswered may be riding in datagrams
            // the path drops (a long REQUEST or HAVE list).
            ch.rto_streak = ch.rto_streak.saturating_add(1);
            if ch.rto_streak >= PMTU_RTO_STREAK && ch.dgram_cap.is_none() {
                let cs = sw.cfg.chunk_size as usize;
                ch.dgram_cap = Some((4 + 1 + ch.wire.addressing.spec_len() + 8 + cs).max(256));
                ch.dgram_cap_at = now;
                fell_back = true;
            }
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
            ch.pick_exhausted = false;
        }
        self.offer_released(idx, &expired, u32::MAX);
    }

    /// Swarm-wide housekeeping: upload slots and PEX.
    fn tick(&mut self) {
        let now = self.now;
        for idx in 0..self.swarms.len() {
            let Some(s) = self.swarms[idx].as_ref() else {
                continue;
            };
            let round = now >= s.next_choke_round;
            self.refresh_slots(idx, round);
            self.pex_connect(idx);
            self.repeat_unchokes(idx);
            self.refresh_haves(idx);
        }
    }

    /// HAVEs are never acknowledged, so one lost leaves the peer believing for good that we
    /// lack those chunks (VOPR seed 30095: a leecher stuck at 512 of 562 chunks for 300 s
    /// while every peer it knew was complete, their HAVEs lost to a small path MTU before the
    /// network healed). A peer that lacks chunks we have and has asked us for nothing for
    /// [`super::HAVE_REFRESH`] gets our whole map again (a complete peer's is one HAVE), then
    /// after twice as long each time, up to eight times; asking resets the delay.
    fn refresh_haves(&mut self, idx: usize) {
        let now = self.now;
        let Some(s) = self.swarms[idx].as_ref() else {
            return;
        };
        let ids: Vec<u32> = s.channels.iter().copied().collect();
        for id in ids {
            let Some((ch, sw, _)) = self.parts(id) else {
                continue;
            };
            let (at, n) = ch.have_refresh;
            if at > now {
                continue;
            }
            let asked = ch
                .interested_at
                .is_some_and(|t| now.saturating_duration_since(t) < super::HAVE_REFRESH);
            let lacks = ch.is_established()
                && ch.proven
                && ch.accepts(crate::wire::MessageType::Have)
                && sw
                    .chunk_count()
                    .is_some_and(|c| !ch.peer_have.is_complete(c))
                && sw.have.difference_ranges(&ch.peer_have).next().is_some();
            if asked || !lacks {
                ch.have_refresh = (now + super::HAVE_REFRESH, 0);
                continue;
            }
            ch.pending_haves.union_with(&sw.have);
            ch.have_refresh = (now + super::HAVE_REFRESH * (2u32 << n.min(2)), n + 1);
            self.stats.have_refreshes += 1;
            self.queue_send(id);
        }
    }

    /// UNCHOKEs that no REQUEST answered are sent again, after [`super::UNCHOKE_REPEAT`] and
    /// then twice as long each time (at most [`UNCHOKE_REPEATS`] times), to peers that still
    /// lack chunks we have. An UNCHOKE is never acknowledged and a choked peer must not ask
    /// (R-3.9-c, R-3.9-d): when one is lost, the peer waits for good while we hold an upload
    /// slot for it (VOPR seed 3747: a leecher stuck at 915 of 1,038 chunks for 300 s, every
    /// peer holding the rest "choking" it). Repeating it is harmless: an UNCHOKE without a
    /// CHOKE is ignored (R-12.6.9-a). (Unanswered repeats do not count towards the path-MTU
    /// fallback: most peers that do not answer simply want nothing from us.)
    fn repeat_unchokes(&mut self, idx: usize) {
        let now = self.now;
        let Some(s) = self.swarms[idx].as_ref() else {
            return;
        };
        let ids: Vec<u32> = s.channels.iter().copied().collect();
        let mut sent = 0;
        for id in ids {
            let Some((ch, sw, _)) = self.parts(id) else {
                continue;
            };
            let Some((at, repeats)) = ch.unchoke_unanswered else {
                continue;
            };
            if at > now {
                continue;
            }
            let wants = sw
                .chunk_count()
                .is_some_and(|n| !ch.peer_have.is_complete(n))
                && sw.have.difference_ranges(&ch.peer_have).next().is_some();
            if ch.am_choking || !ch.is_established() || !wants || repeats >= UNCHOKE_REPEATS {
                ch.unchoke_unanswered = None;
                continue;
            }
            ch.send_choke = Some(false);
            let wait = super::UNCHOKE_REPEAT * (2u32 << repeats.min(5));
            ch.unchoke_unanswered = Some((now + wait, repeats + 1));
            sent += 1;
            self.queue_send(id);
        }
        self.stats.unchoke_resends += sent;
    }

    /// Upload slots (RFC 7574 §3.9). Every tick, slots of peers that stopped asking are freed
    /// and given to waiting peers; every choke round the unchoked set is re-ranked: peers that
    /// upload to us most keep their slots (reciprocity, RFC 7574 §9.2), and one slot goes to a
    /// random other peer (optimistic unchoke).
    fn refresh_slots(&mut self, idx: usize, round: bool) {
        let now = self.now;
        let Some(s) = self.swarms[idx].as_ref() else {
            return;
        };
        let slots = s.cfg.upload_slots;
        let idle = CHOKE_ROUND * 2;
        let mut interested: Vec<(u64, u32)> = Vec::new();
        for &id in &s.channels {
            let Some(ch) = self.chan(id) else { continue };
            // A peer we choke cannot say it is interested (no REQUEST while choked, R-3.9-c):
            // one that lacks chunks we have is taken to be, or it would stay choked for good
            // (a live stream's stragglers, choked by every peer ahead of them).
            let asked = ch
                .interested_at
                .is_some_and(|t| now.saturating_duration_since(t) < idle);
            let wants = ch.is_established()
                && (asked
                    || (ch.am_choking && s.have.difference_ranges(&ch.peer_have).next().is_some()))
                && !s.chunk_count().is_some_and(|n| ch.peer_have.is_complete(n));
            if wants {
                interested.push((ch.round_down, id));
            }
        }
        let mut unchoked: Vec<u32> = s
            .unchoked
            .iter()
            .copied()
            .filter(|id| interested.iter().any(|(_, i)| i == id))
            .collect();
        if round {
            // Reciprocity first; ties broken at random so seeders rotate their slots.
            let mut ranked: Vec<(u64, u32, u32)> = interested
                .iter()
                .map(|&(down, id)| (down, self.rng.next_u32(), id))
                .collect();
            ranked.sort_unstable_by(|a, b| b.cmp(a));
            unchoked = ranked
                .iter()
                .take(slots.saturating_sub(1))
                .map(|r| r.2)
                .collect();
            let rest: Vec<u32> = ranked
                .iter()
                .skip(slots.saturating_sub(1))
                .map(|r| r.2)
                .collect();
            if !rest.is_empty() {
                let pick = rest[self.rng.gen_range(0..rest.len() as u64) as usize];
                unchoked.push(pick);
            }
        } else {
            // Fill free slots with waiting peers.
            for &(_, id) in &interested {
                if unchoked.len() >= slots {
                    break;
                }
                if !unchoked.contains(&id) {
                    unchoked.push(id);
                }
            }
        }
        let Some(s) = self.swarms[idx].as_mut() else {
            return;
        };
        let old = core::mem::take(&mut s.unchoked);
        s.unchoked = unchoked.iter().copied().collect();
        if round {
            s.next_choke_round = now + CHOKE_ROUND;
        }
        let members: Vec<u32> = s.channels.iter().copied().collect();
        let new = s.unchoked.clone();
        for id in members {
            let Some(ch) = self.chan_mut(id) else {
                continue;
            };
            if new.contains(&id) {
                if ch.am_choking {
                    ch.am_choking = false;
                    ch.send_choke = Some(false);
                    self.queue_send(id);
                }
            } else if old.contains(&id) && interested.iter().any(|(_, i)| *i == id) {
                // R-3.9-b: a choked peer's pending requests are dropped.
                ch.am_choking = true;
                ch.send_choke = Some(true);
                ch.upload.clear();
                ch.upload_len = 0;
                self.queue_send(id);
            }
            if round {
                if let Some(ch) = self.chan_mut(id) {
                    ch.round_down = 0;
                    ch.round_up = 0;
                }
            }
        }
    }

    /// Connects to peers learnt by PEX while the swarm has room, and asks for more peers now
    /// and then.
    fn pex_connect(&mut self, idx: usize) {
        let now = self.now;
        let Some(s) = self.swarms[idx].as_mut() else {
            return;
        };
        if s.complete {
            s.retry.clear();
            return;
        }
        let room = s.cfg.max_peers.saturating_sub(s.channels.len());
        let mut targets = Vec::new();
        // Lost peers whose retry time has come (address order: deterministic). Each attempt
        // doubles the next delay; an established channel forgets the entry.
        let due: Vec<core::net::SocketAddr> = s
            .retry
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(&a, _)| a)
            .take(room.min(4))
            .collect();
        for a in due {
            if let Some((at, attempts)) = s.retry.get_mut(&a) {
                *attempts = attempts.saturating_add(1);
                *at = now
                    + super::swarm::RETRY_BASE
                        * (1u32 << (*attempts).min(super::swarm::RETRY_MAX_SHIFT));
            }
            targets.push(a);
        }
        if !s.cfg.pex {
            let handle = s.handle;
            for a in targets {
                let _ = self.connect(now, handle, a);
            }
            return;
        }
        while targets.len() < room.min(4) {
            let Some(a) = s.pex_candidates.pop_first() else {
                break;
            };
            if s.tried.insert(a) {
                targets.push(a);
            }
        }
        let ask = room > 0 && now >= s.next_pex;
        if ask {
            s.next_pex = now + Duration::from_secs(15);
        }
        let handle = s.handle;
        let members: Vec<u32> = s.channels.iter().copied().collect();
        for a in targets {
            let _ = self.connect(now, handle, a);
        }
        if ask {
            for id in members {
                if let Some(ch) = self.chan_mut(id) {
                    if ch.is_established() && ch.role == Role::Initiator {
                        ch.send_pex_req = true;
                        self.queue_send(id);
                    }
                }
            }
        }
    }
}
