//! Loss detection for our DATA (RFC 7574 §3.4, RFC 6817 §2.4): ACKs in, in-flight bookkeeping,
//! losses by order and by time, and what each ACK batch tells the congestion controller.

use super::Endpoint;
use super::table::{ChunkHash, ChunkMap, chunk_map};
use crate::binmap::Binmap;
use crate::time::{Duration, Instant};
use crate::wire::ChunkSpec;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

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
        // Spurious losses (RFC 8985 §6.2 uses DSACK; PPSPP has none, but an ACK tells as
        // much): chunks declared lost whose resend has not gone out yet, or whose resend is
        // acknowledged sooner than any round trip, so the first send arrived after all.
        let min_rtt = ch.rtt.min();
        let mut spurious = 0u64;
        if ch.flight.lost.intersects(a..b + 1) {
            for r in ch.flight.lost.ranges_in(a..b + 1) {
                spurious += r.end - r.start;
                ch.up.cancel_upload(r.start, r.end - 1);
            }
        }
        // M-2: count each chunk in flight once; R-12.6.4-a: ACKs for what we never sent
        // change nothing.
        if !ch.flight.in_flight_map.intersects(a..b + 1) {
            if spurious > 0 {
                ch.flight.lost.remove_range(a..b + 1);
                ch.flight.on_spurious();
                self.stats.spurious_losses += spurious;
            }
            return;
        }
        let mut bytes = 0;
        // The chunk this ACK answers: the oldest of ours it names. A receiver names the
        // largest aligned bin it holds around the chunk it acknowledges (R-3.4-c), and that
        // bin may take in chunks it had from other peers while our copies are still on their
        // way: they leave our flight (the peer needs them no more), but only the answered
        // chunk's send tells the round trip, the order of arrival (RACK) and the size that
        // got through. In 1+4 swarms those copies gave round trips of 14 ms on a 100 ms path,
        // and RACK took every older chunk in flight for lost.
        let mut answered: Option<Sent> = None;
        let chunks = ch.flight.in_flight_map.ranges_in(a..b + 1).flatten();
        for c in chunks {
            if let Some(s) = ch.flight.in_flight.remove(&c) {
                ch.flight.sent_order.remove(s.seq);
                bytes += s.bytes;
                if answered.is_none_or(|t| s.seq < t.seq) {
                    answered = Some(s);
                }
            }
        }
        let mut sample = None;
        if let Some(s) = answered {
            ch.flight.acked_seq = ch.flight.acked_seq.max(s.seq);
            ch.mtu.on_acked(s.size);
            // Karn: a resent chunk's ACK may answer either send. It still counts when the
            // time since the resend is no shorter than the minimum RTT seen (it cannot then
            // be an underestimate below the path's floor); otherwise a flow made only of
            // resends would never clear its RTO backoff.
            // Before any sample at all, a resend's is taken: a path that drops every first
            // transmission (datagrams over its MTU, resent smaller) would otherwise never get
            // one, and its RTO would back off without end.
            let plausible = min_rtt.is_none_or(|m| now.saturating_duration_since(s.at) >= m);
            if s.retransmitted && !plausible {
                spurious += 1;
            }
            if !s.retransmitted || plausible {
                sample = Some(s.at);
            }
        }
        ch.flight.in_flight_map.remove_range(a..b + 1);
        ch.flight.lost.remove_range(a..b + 1);
        if spurious > 0 {
            ch.flight.on_spurious();
        }
        // The controller sees one ACK per datagram (all its ACK messages together): LEDBAT's
        // clamp to flightsize + ALLOWED_INCREASE·MSS (L-2.4-f) is about the flight before
        // the acknowledgement as a whole; fed message by message, the second ACK of a
        // datagram would clamp the window to what the first left in flight.
        let batch = ch.flight.ack_batch.get_or_insert_with(Default::default);
        batch.bytes += bytes;
        batch.delay = Some(delay);
        if let Some(t) = sample {
            batch.sample = Some(batch.sample.map_or(t, |x: Instant| x.max(t)));
        }
        self.stats.spurious_losses += spurious;
    }

    /// Feeds the ACKs of one datagram to the RTT estimator and the congestion controller.
    pub(super) fn flush_acks(&mut self, id: u32) {
        let now = self.now;
        let Some(ch) = self.chan_mut(id) else { return };
        let Some(batch) = ch.flight.ack_batch.take() else {
            return;
        };
        if let Some(sent) = batch.sample {
            ch.rtt.update(now.saturating_duration_since(sent));
        }
        if batch.bytes > 0 {
            ch.mtu.on_answered();
            if !ch.up.upload.is_empty() && !ch.choke.am_choking {
                ch.cc.on_data_waiting(now);
            }
            ch.cc.on_ack(now, batch.bytes, batch.delay, &ch.rtt);
            ch.flight.last_data_ack = now;
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
        let Some(ch) = self.chan_mut(id) else { return };
        ch.mtu.expire(now);
        let rto = ch.rtt.rto();
        let srtt = ch.rtt.smoothed_or(rto);
        // RACK (RFC 8985) rather than a packet count: DATA is lost when DATA sent after it
        // was acknowledged and it is older than a round trip plus a reordering window (a
        // quarter of the minimum RTT, at least 5 ms). Three later acknowledgements are no
        // proof at high rates: 2% of datagrams delayed 10 ms on a 100 Mbit/s path are passed
        // by dozens.
        // The window grows by a quarter of the minimum RTT for each spurious loss seen (up to
        // a round trip), and shrinks back after 16 loss recoveries without one (RFC 8985
        // §6.2's reo_wnd_mult and its reset).
        let reo_wnd = ch.rtt.min().map_or(Duration::from_millis(5), |m| {
            ((m / 4) * ch.flight.reo_mult)
                .min(srtt)
                .max(Duration::from_millis(5))
        });
        // The round trip the newest acknowledgement took (RACK's RTT): a queue that builds
        // delays every datagram behind it, and a smoothed RTT lags it.
        let rack_rtt = ch.rtt.latest().map_or(srtt, |l| l.max(srtt));
        let time_threshold = rack_rtt + reo_wnd;
        let mut lost = Vec::new();
        let mut bytes = 0;
        let mut timed_out = false;
        while let Some((seq, c)) = ch.flight.sent_order.first() {
            let Some(s) = ch.flight.in_flight.get(&c).copied() else {
                ch.flight.sent_order.remove(seq);
                continue;
            };
            let age = now.saturating_duration_since(s.at);
            let by_order = seq < ch.flight.acked_seq && age > time_threshold;
            // Once the oldest DATA has gone unanswered for an RTO, everything still in flight
            // counts as lost (as TCP does on a retransmission timeout): waiting for each to
            // time out in turn, under a window of one packet, would stall for seconds.
            let by_timeout = age >= rto || (timed_out && age > time_threshold);
            if !(by_order || by_timeout) {
                break;
            }
            timed_out |= by_timeout && !by_order;
            ch.flight.sent_order.remove(seq);
            ch.flight.in_flight.remove(&c);
            ch.flight.in_flight_map.remove(c);
            bytes += s.bytes;
            ch.mtu.on_lost(s.size);
            lost.push(c);
        }
        if lost.is_empty() {
            return;
        }
        ch.flight.on_recovery();
        let alone = 4 + 1 + ch.wire.addressing.spec_len() + 8 + cs as usize;
        let mut fell_back = ch.mtu.check_sizes(now, alone);
        if timed_out {
            ch.rtt.on_timeout();
            fell_back |= ch.mtu.on_timeout(now, alone);
        }
        ch.cc.on_loss(now, bytes, &ch.rtt);
        // The oldest loss goes out first.
        for &c in lost.iter().rev() {
            if !ch.peer_have.contains(c) {
                ch.flight.lost.insert(c);
                ch.up.push_upload_front(c);
            }
        }
        if fell_back {
            self.stats.pmtu_fallbacks += 1;
        }
        self.queue_send(id);
    }
}

/// The largest reordering window, in quarters of the minimum RTT.
const MAX_REO_MULT: u32 = 8;
/// Loss recoveries without a spurious loss after which the window is reset.
const REO_RESET: u32 = 16;

/// A DATA message in flight.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sent {
    pub(crate) at: Instant,
    pub(crate) bytes: u64,
    pub(crate) seq: u64,
    pub(crate) retransmitted: bool,
    /// The size of the datagram that carried it.
    pub(crate) size: u16,
}

/// In-flight DATA by send sequence number: the chunk sent with each sequence number from
/// the oldest still in flight on. Sequence numbers are consecutive (one per DATA sent), so
/// this is a ring indexed by `seq - base`; acknowledged entries in the middle stay as holes
/// until the front reaches them.
#[derive(Clone, Debug, Default)]
pub(crate) struct SentOrder {
    /// Sequence number of `chunks[0]`.
    base: u64,
    /// Chunk per sequence number; [`SentOrder::GONE`] once acknowledged or declared lost.
    chunks: VecDeque<u64>,
}

impl SentOrder {
    const GONE: u64 = u64::MAX;

    /// Records that `chunk` went out with sequence number `seq` (greater than any before).
    pub(crate) fn push(&mut self, seq: u64, chunk: u64) {
        if self.chunks.is_empty() {
            self.base = seq;
        }
        let next = self.base + self.chunks.len() as u64;
        if seq < next {
            return;
        }
        for _ in next..seq {
            self.chunks.push_back(Self::GONE);
        }
        self.chunks.push_back(chunk);
    }

    /// Forgets sequence number `seq`.
    pub(crate) fn remove(&mut self, seq: u64) {
        let Some(i) = seq.checked_sub(self.base) else {
            return;
        };
        if let Some(c) = usize::try_from(i).ok().and_then(|i| self.chunks.get_mut(i)) {
            *c = Self::GONE;
        }
        self.trim();
    }

    /// The oldest (sequence number, chunk) still recorded.
    pub(crate) fn first(&self) -> Option<(u64, u64)> {
        self.chunks.front().map(|&c| (self.base, c))
    }

    fn trim(&mut self) {
        while self.chunks.front() == Some(&Self::GONE) {
            self.chunks.pop_front();
            self.base += 1;
        }
    }
}

/// The ACKs of one received datagram, fed to the controller together.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AckBatch {
    pub(crate) bytes: u64,
    pub(crate) delay: Option<i64>,
    pub(crate) sample: Option<Instant>,
}

/// Our DATA in flight to one peer, for loss detection and the congestion controller.
#[derive(Debug)]
pub(crate) struct Flight {
    pub(crate) in_flight: ChunkMap<Sent>,
    pub(crate) in_flight_map: Binmap,
    /// In-flight chunks by send order, for loss detection.
    pub(crate) sent_order: SentOrder,
    /// Chunks declared lost and queued again: their next send is a retransmission.
    pub(crate) lost: Binmap,
    pub(crate) send_seq: u64,
    pub(crate) acked_seq: u64,
    pub(crate) ack_batch: Option<AckBatch>,
    pub(crate) last_data_ack: Instant,
    /// The reordering window in quarters of the minimum RTT (RFC 8985's reo_wnd_mult).
    pub(crate) reo_mult: u32,
    /// Loss recoveries since the window last grew.
    pub(crate) recoveries: u32,
}

impl Flight {
    /// Records the DATA of `chunk` sent at `now`: `bytes` of DATA and hashes in a datagram of
    /// `size` bytes, a retransmission or not.
    pub(crate) fn on_sent(
        &mut self,
        chunk: u64,
        now: Instant,
        bytes: u64,
        size: usize,
        retransmit: bool,
    ) {
        self.send_seq += 1;
        self.in_flight.insert(
            chunk,
            Sent {
                at: now,
                bytes,
                seq: self.send_seq,
                retransmitted: retransmit,
                size: u16::try_from(size).unwrap_or(u16::MAX),
            },
        );
        self.in_flight_map.insert(chunk);
        self.sent_order.push(self.send_seq, chunk);
        self.lost.remove(chunk);
    }

    /// A loss turned out spurious: the reordering window grows by a quarter of the minimum
    /// RTT (up to [`MAX_REO_MULT`] quarters; where it is used it never exceeds the smoothed
    /// RTT).
    pub(crate) fn on_spurious(&mut self) {
        self.reo_mult = (self.reo_mult + 1).min(MAX_REO_MULT);
        self.recoveries = 0;
    }

    /// Losses were declared: after [`REO_RESET`] of them without a spurious one the window
    /// is back to a quarter of the minimum RTT.
    pub(crate) fn on_recovery(&mut self) {
        self.recoveries += 1;
        if self.recoveries >= REO_RESET {
            self.reo_mult = 1;
            self.recoveries = 0;
        }
    }

    pub(crate) fn new(now: Instant, hash: ChunkHash) -> Self {
        Self {
            in_flight: chunk_map(hash),
            in_flight_map: Binmap::new(),
            sent_order: SentOrder::default(),
            lost: Binmap::new(),
            send_seq: 0,
            acked_seq: 0,
            ack_batch: None,
            last_data_ack: now,
            reo_mult: 1,
            recoveries: 0,
        }
    }
}
