//! Timers: handshake retransmission, loss detection, request timeouts, keep-alives, dead
//! peers, pacing, and the swarm-wide choke rounds and PEX.

use super::Endpoint;
use super::TICK;
use super::channel::{Role, State};
use super::download::request_timeout_for;
use crate::event::CloseReason;
use crate::time::{Duration, Instant};
use alloc::vec::Vec;
use core::cmp::Reverse;

/// A responder's half-open channel is dropped after this long without proof.
pub(super) const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(20);
/// How many times an unanswered UNCHOKE is sent again.
pub(super) const UNCHOKE_REPEATS: u8 = 8;

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
    pub(super) fn deadline(&self, id: u32) -> Option<Instant> {
        let ch = self.chan(id)?;
        let mut d: Option<Instant> = None;
        let mut at = |t: Instant| d = Some(d.map_or(t, |x: Instant| x.min(t)));
        if ch.role == Role::Initiator && ch.state == State::Connecting {
            if let Some(t) = ch.hs.hs_deadline {
                at(t);
            }
            return d;
        }
        if ch.role == Role::Responder && !ch.proven {
            at(ch.last_recv + HALF_OPEN_TIMEOUT);
            return d;
        }
        let rto = ch.rtt.rto();
        if let Some((_, c)) = ch.flight.sent_order.first() {
            if let Some(s) = ch.flight.in_flight.get(&c) {
                at(s.at + rto);
            }
        }
        if let Some(t) = ch.cc.cto_deadline() {
            at(t.max(self.now + Duration::from_millis(1)));
        }
        if !ch.up.upload.is_empty() && !ch.choke.am_choking {
            if let Some(t) = ch.cc.next_send_time(self.now, self.data_estimate_for(ch)) {
                if t > self.now {
                    at(t);
                }
            }
        }
        if !ch.down.requested.is_empty() {
            let timeout = request_timeout_for(rto);
            at(ch.down.last_delivery + timeout);
            if ch.down.delivered_seq > 0 {
                at(ch.down.hole_mark_at + timeout);
            }
        }
        let log_end = self
            .swarms
            .get(ch.swarm)
            .and_then(Option::as_ref)
            .map_or(0, |s| s.have_log_end());
        if ch.ann.haves_pending(log_end) {
            if let Some(t) = ch.ann.haves_alone_at() {
                at(t);
            }
        }
        if !ch.ann.pending_acks.is_empty() {
            if let Some(t) = ch.ann.ack_due {
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

    pub(super) fn on_channel_timer(&mut self, id: u32) {
        let now = self.now;
        let (attempts, dead, keepalive) = (
            self.cfg.handshake_attempts,
            self.cfg.dead_peer_timeout,
            self.cfg.keepalive_interval,
        );
        let Some(ch) = self.chan_mut(id) else { return };
        if ch.role == Role::Initiator && ch.state == State::Connecting {
            if ch.hs.hs_deadline.is_some_and(|t| t <= now) {
                if ch.hs.hs_attempts >= attempts {
                    self.close_channel(id, CloseReason::HandshakeTimeout, false);
                    return;
                }
                // R-3.1.1-r: resend the opening datagram.
                ch.hs.send_handshake = true;
                ch.hs.hs_deadline = None;
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

    /// Swarm-wide housekeeping: upload slots and PEX.
    pub(super) fn tick(&mut self) {
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
}
