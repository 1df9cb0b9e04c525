//! Loss detection for our DATA (RFC 7574 §3.4, RFC 6817 §2.4): ACKs in, in-flight bookkeeping,
//! losses by order and by time, and what each ACK batch tells the congestion controller.

use alloc::vec::Vec;

use super::Endpoint;
use super::timer::{PMTU_RETRY, PMTU_RTO_STREAK};
use crate::time::{Duration, Instant};
use crate::wire::ChunkSpec;

impl Endpoint {
    pub(super) fn on_ack(&mut self, id: u32, spec: ChunkSpec, delay: i64) {
        let Some((a, b)) = self.spec_chunks(id, spec) else {
            return;
        };
        let now = self.now;
        let Some((ch, sw, _)) = self.parts(id) else {
            return;
        };
        if ch.is_established() {
            sw.add_avail_range(&ch.peer_have, a, b + 1);
        }
        ch.peer_have.insert_range(a..b + 1);
        // M-2: count each chunk in flight once; R-12.6.4-a: ACKs for what we never sent
        // change nothing.
        if !ch.in_flight_map.intersects(a..b + 1) {
            return;
        }
        let mut bytes = 0;
        let mut sample = None;
        let min_rtt = ch.rtt.min();
        let chunks = ch.in_flight_map.ranges_in(a..b + 1).flatten();
        for c in chunks {
            if let Some(s) = ch.in_flight.remove(&c) {
                ch.sent_order.remove(s.seq);
                bytes += s.bytes;
                ch.acked_seq = ch.acked_seq.max(s.seq);
                ch.max_acked_size = ch.max_acked_size.max(s.size);
                if s.size >= ch.big_loss_min {
                    // The path carries datagrams that big: those losses were not its MTU.
                    ch.big_loss_streak = 0;
                    ch.big_loss_min = u16::MAX;
                }
                // Karn: a resent chunk's ACK may answer either send. It still counts when the
                // time since the resend is no shorter than the minimum RTT seen (it cannot
                // then be an underestimate below the path's floor); otherwise a flow made
                // only of resends would never clear its RTO backoff.
                // Before any sample at all, a resend's is taken: a path that drops every first
                // transmission (datagrams over its MTU, resent smaller) would otherwise never
                // get one, and its RTO would back off without end.
                let plausible = min_rtt.is_none_or(|m| now.saturating_duration_since(s.at) >= m);
                if !s.retransmitted || plausible {
                    sample = Some(sample.map_or(s.at, |t: Instant| t.max(s.at)));
                }
            }
        }
        ch.in_flight_map.remove_range(a..b + 1);
        ch.lost.remove_range(a..b + 1);
        // The controller sees one ACK per datagram (all its ACK messages together): LEDBAT's
        // clamp to flightsize + ALLOWED_INCREASE·MSS (L-2.4-f) is about the flight before
        // the acknowledgement as a whole; fed message by message, the second ACK of a
        // datagram would clamp the window to what the first left in flight.
        let batch = ch.ack_batch.get_or_insert_with(Default::default);
        batch.bytes += bytes;
        batch.delay = Some(delay);
        if let Some(t) = sample {
            batch.sample = Some(batch.sample.map_or(t, |x: Instant| x.max(t)));
        }
    }

    /// Feeds the ACKs of one datagram to the RTT estimator and the congestion controller.
    pub(super) fn flush_acks(&mut self, id: u32) {
        let now = self.now;
        let Some(ch) = self.chan_mut(id) else { return };
        let Some(batch) = ch.ack_batch.take() else {
            return;
        };
        if let Some(sent) = batch.sample {
            ch.rtt.update(now.saturating_duration_since(sent));
        }
        if batch.bytes > 0 {
            ch.rto_streak = 0;
            ch.cc.on_ack(now, batch.bytes, batch.delay, &ch.rtt);
            ch.last_data_ack = now;
        }
        self.detect_losses(id);
        self.queue_send(id);
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
}
