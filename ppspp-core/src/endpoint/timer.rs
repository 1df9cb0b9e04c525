//! Timers: handshake retransmission, loss detection, request timeouts, keep-alives, dead
//! peers, pacing, and the swarm-wide choke rounds and PEX.

use super::Endpoint;
use super::TICK;
use super::channel::{Role, State};
use crate::event::CloseReason;
use crate::time::{Duration, Instant};
use alloc::vec::Vec;
use core::cmp::Reverse;

/// A responder's half-open channel is dropped after this long without proof.
pub(super) const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(20);
/// How many times an unanswered UNCHOKE is sent again.
pub(super) const UNCHOKE_REPEATS: u8 = 8;

/// What the endpoint wants to be woken for: each deadline of a channel by name, and the
/// endpoint-wide tick (as quinn-proto's `Timer`). See [`Endpoint::timeout_reason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Timer {
    /// The initiator resends its opening handshake (RFC 7574 §3.1.1, with backoff).
    Handshake,
    /// A responder's unproven channel expires.
    HalfOpen,
    /// The oldest DATA in flight has gone unanswered for a retransmission timeout.
    Retransmission,
    /// The congestion controller's own timeout (LEDBAT's CTO, RFC 6817 §2.4.1).
    CongestionTimeout,
    /// Pacing lets the next DATA go.
    Pacing,
    /// Requests to a peer that delivered nothing for a while are given up.
    Request,
    /// A request left behind later deliveries is given up.
    Hole,
    /// HAVEs that found no datagram to ride on go out alone.
    Haves,
    /// A lone ACK goes out (delayed ACK).
    Ack,
    /// A keep-alive goes out on an idle channel (RFC 7574 §3.12).
    KeepAlive,
    /// A silent peer is declared dead (RFC 7574 §3.12).
    DeadPeer,
    /// The endpoint-wide tick: choke rounds, PEX, reconnections, UNCHOKE and HAVE repeats.
    Tick,
}

impl Timer {
    /// The channel timers, in table order.
    const CHANNEL: [Self; 11] = [
        Self::Handshake,
        Self::HalfOpen,
        Self::Retransmission,
        Self::CongestionTimeout,
        Self::Pacing,
        Self::Request,
        Self::Hole,
        Self::Haves,
        Self::Ack,
        Self::KeepAlive,
        Self::DeadPeer,
    ];
}

/// One channel's deadlines, one slot per [`Timer`] (the earliest instant when set twice).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct TimerTable([Option<Instant>; 11]);

impl TimerTable {
    fn set(&mut self, timer: Timer, at: Instant) {
        if let Some(i) = Timer::CHANNEL.iter().position(|&t| t == timer) {
            let slot = &mut self.0[i];
            *slot = Some(slot.map_or(at, |x| x.min(at)));
        }
    }

    /// The earliest deadline and its timer.
    pub(super) fn earliest(&self) -> Option<(Instant, Timer)> {
        let mut best: Option<(Instant, Timer)> = None;
        for (slot, &timer) in self.0.iter().zip(&Timer::CHANNEL) {
            if let Some(t) = *slot {
                if best.is_none_or(|(b, _)| t < b) {
                    best = Some((t, timer));
                }
            }
        }
        best
    }
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

    /// Channel `id`'s deadlines, one per timer that applies now.
    pub(super) fn timer_table(&self, id: u32) -> Option<TimerTable> {
        let ch = self.chan(id)?;
        let mut table = TimerTable::default();
        if ch.role == Role::Initiator && ch.state == State::Connecting {
            if let Some(t) = ch.hs.hs_deadline {
                table.set(Timer::Handshake, t);
            }
            return Some(table);
        }
        if ch.role == Role::Responder && !ch.proven {
            table.set(Timer::HalfOpen, ch.last_recv + HALF_OPEN_TIMEOUT);
            return Some(table);
        }
        let rto = ch.rtt.rto();
        if let Some((_, c)) = ch.flight.sent_order.first() {
            if let Some(s) = ch.flight.in_flight.get(&c) {
                table.set(Timer::Retransmission, s.at + rto);
            }
        }
        if let Some(t) = ch.cc.cto_deadline() {
            table.set(
                Timer::CongestionTimeout,
                t.max(self.now + Duration::from_millis(1)),
            );
        }
        if !ch.up.upload.is_empty() && !ch.choke.am_choking {
            if let Some(t) = ch.cc.next_send_time(self.now, self.data_estimate_for(ch)) {
                if t > self.now {
                    table.set(Timer::Pacing, t);
                }
            }
        }
        if !ch.down.requested.is_empty() {
            let timeout = self.request_timeout(id);
            table.set(Timer::Request, ch.down.last_delivery + timeout);
            if ch.down.delivered_seq > 0 {
                table.set(Timer::Hole, ch.down.hole_mark_at + timeout);
            }
        }
        let log_end = self
            .swarms
            .get(ch.swarm)
            .and_then(Option::as_ref)
            .map_or(0, |s| s.have_log_end());
        if ch.ann.haves_pending(log_end) {
            if let Some(t) = ch.ann.haves_alone_at() {
                table.set(Timer::Haves, t);
            }
        }
        if !ch.ann.pending_acks.is_empty() {
            if let Some(t) = ch.ann.ack_due {
                table.set(Timer::Ack, t);
            }
        }
        if !ch.send_keepalive {
            table.set(Timer::KeepAlive, ch.last_send + self.cfg.keepalive_interval);
        }
        if ch.sent_since_recv >= 3 {
            table.set(Timer::DeadPeer, ch.last_recv + self.cfg.dead_peer_timeout);
        }
        Some(table)
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
        let d = self.timer_table(id).and_then(|t| t.earliest());
        let Some(ch) = self.chan_mut(id) else { return };
        if let Some((d, why)) = d {
            if ch.timer_at.is_none_or(|t| d < t) {
                ch.timer_at = Some(d);
                ch.timer_reason = why;
                self.timers.push(Reverse((d, id)));
            }
        }
    }

    /// Why [`Endpoint::poll_timeout`] names the instant it does (as str0m's
    /// `last_timeout_reason`): which timer of which channel, or the endpoint-wide tick. For
    /// logs and for a driver's own accounting; the endpoint runs whatever is due whenever
    /// [`Endpoint::handle_timeout`] is called.
    #[must_use]
    pub fn timeout_reason(&self) -> Option<Timer> {
        let chan = self
            .timers
            .peek()
            .map(|Reverse((t, id))| (*t, self.chan(*id).map_or(Timer::Tick, |c| c.timer_reason)));
        let tick = (!self.swarm_by_id.is_empty()).then_some((self.next_tick, Timer::Tick));
        match (chan, tick) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a.1 } else { b.1 }),
            (a, b) => a.or(b).map(|x| x.1),
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
            self.playback_tick(idx);
        }
    }
}
