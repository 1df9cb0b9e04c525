//! Per-peer state: one channel of one swarm (RFC 7574 §3.11).

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::binmap::Binmap;
use crate::congestion::Controller;
use crate::rtt::RttEstimator;
use crate::stats::{ChannelStats, MessageCounts};
use crate::time::Instant;
use crate::wire::{MessageType, WireParams};

use super::table::{ChunkHash, ChunkMap, chunk_map};

/// Which side opened the channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Initiator,
    Responder,
}

/// Where the channel is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Initiator: handshakes sent, no valid reply yet. Responder: reply sent, waiting for the
    /// first datagram carrying our channel ID.
    Connecting,
    /// Handshake complete.
    Established,
}

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

/// A chunk we asked this peer for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Requested {
    pub(crate) seq: u64,
}

/// An ACK waiting to be sent.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PendingAck {
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) delay: i64,
}

/// A channel's counters, kept compact (message counts in 32 bits) and widened into
/// [`ChannelStats`] when read.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) datagrams_in: u64,
    pub(crate) datagrams_out: u64,
    /// Bytes received; also the anti-amplification credit (R-12.1.1-a).
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) content_in: u64,
    pub(crate) content_out: u64,
    pub(crate) retransmissions: u64,
    pub(crate) messages_in: SmallCounts,
    pub(crate) messages_out: SmallCounts,
}

/// Messages by type, 32 bits each.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SmallCounts([u32; 14]);

impl SmallCounts {
    pub(crate) fn add(&mut self, t: MessageType) {
        let c = &mut self.0[usize::from(t.code())];
        *c = c.saturating_add(1);
    }

    fn widen(&self) -> MessageCounts {
        let mut out = MessageCounts::default();
        for (o, i) in out.0.iter_mut().zip(self.0) {
            *o = u64::from(i);
        }
        out
    }
}

impl Counters {
    /// The public view (RTT, window and flight are filled in by the caller).
    pub(crate) fn public(&self) -> ChannelStats {
        ChannelStats {
            datagrams_in: self.datagrams_in,
            datagrams_out: self.datagrams_out,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            content_in: self.content_in,
            content_out: self.content_out,
            retransmissions: self.retransmissions,
            messages_in: self.messages_in.widen(),
            messages_out: self.messages_out.widen(),
            ..ChannelStats::default()
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

/// Hashes of a chunk already sent ahead of its DATA (RFC 7574 §5.3: hashes that do not fit
/// with the DATA go first, in their own datagram).
#[derive(Clone, Copy, Debug)]
pub(crate) struct HashesAhead {
    pub(crate) chunk: u64,
    pub(crate) sent: usize,
}

#[derive(Debug)]
pub(crate) struct Channel {
    pub(crate) id: u32,
    /// `id` as the network sees it (`Endpoint::id_cipher`).
    pub(crate) wire_id: u32,
    pub(crate) swarm: usize,
    pub(crate) remote: SocketAddr,
    pub(crate) peer_id: u32,
    pub(crate) role: Role,
    pub(crate) state: State,
    /// The peer echoed our channel ID: its address is real (RFC 7574 §12.1).
    pub(crate) proven: bool,
    pub(crate) wire: WireParams,

    // Handshake.
    pub(crate) hs_attempts: u32,
    pub(crate) hs_deadline: Option<Instant>,
    pub(crate) send_handshake: bool,
    pub(crate) reply_with_chunk_size: bool,
    /// The message types the peer accepts, bit `code` per type (RFC 7574 §7.10: a peer
    /// supporting a proper subset says which in its handshake; all until it does).
    pub(crate) peer_accepts: u16,
    pub(crate) send_close: bool,
    pub(crate) send_keepalive: bool,

    // What the peer has and says.
    pub(crate) peer_have: Binmap,
    pub(crate) peer_choking: bool,
    pub(crate) am_choking: bool,
    pub(crate) send_choke: Option<bool>,
    pub(crate) choke_resent_at: Option<Instant>,
    /// An UNCHOKE we sent that no REQUEST has answered yet: when to send it again, and how
    /// many times it was sent again already (see `Endpoint::repeat_unchokes`).
    pub(crate) unchoke_unanswered: Option<(Instant, u8)>,
    /// When to announce our whole map again if the peer still lacks chunks we have and asks
    /// us for none, and how many times it was announced again since it last asked (see
    /// `Endpoint::refresh_haves`).
    pub(crate) have_refresh: (Instant, u8),
    /// Live streams: the newest signed munro sent to the peer at tune-in (§6.1.2.4), and when.
    pub(crate) munro_sent: Option<(crate::bin::Bin, Instant)>,
    /// Live streams: the first chunk of the newest signed munro the peer sent us.
    pub(crate) munro_heard: Option<u64>,

    // Upload: what the peer asked for, and DATA in flight.
    pub(crate) upload: VecDeque<(u64, u64)>,
    pub(crate) upload_len: u64,
    pub(crate) in_flight: ChunkMap<Sent>,
    pub(crate) in_flight_map: Binmap,
    /// In-flight chunks by send order, for loss detection.
    pub(crate) sent_order: SentOrder,
    /// Chunks declared lost and queued again: their next send is a retransmission.
    pub(crate) lost: Binmap,
    pub(crate) send_seq: u64,
    pub(crate) acked_seq: u64,
    pub(crate) hashes_ahead: Option<HashesAhead>,
    pub(crate) interested_at: Option<Instant>,

    // Download: what we asked for.
    pub(crate) requested: ChunkMap<Requested>,
    pub(crate) request_seq: u64,
    pub(crate) delivered_seq: u64,
    /// `delivered_seq` as it was at `hole_mark_at`: requests below it were overtaken by a
    /// delivery at least `now - hole_mark_at` ago (see `expire_requests`).
    pub(crate) hole_mark_seq: u64,
    pub(crate) hole_mark_at: Instant,
    pub(crate) request_target: usize,
    /// Retransmission timeouts in a row without an ACK in between.
    pub(crate) rto_streak: u8,
    /// DATA datagrams bigger than any acknowledged so far declared lost, since a datagram as
    /// big as the smallest of them was last acknowledged: a path that keeps dropping only
    /// those has an MTU below ours.
    pub(crate) big_loss_streak: u8,
    /// The smallest datagram counted in `big_loss_streak` (`u16::MAX`: none).
    pub(crate) big_loss_min: u16,
    /// The biggest DATA datagram acknowledged (a size the path carries).
    pub(crate) max_acked_size: u16,
    /// A datagram size cap for this peer: set when full-size datagrams kept vanishing (a path
    /// MTU black hole), so DATA goes alone and INTEGRITY in datagrams of its own.
    pub(crate) dgram_cap: Option<usize>,
    /// When `dgram_cap` was set.
    pub(crate) dgram_cap_at: Instant,
    /// Delivery rate from this peer, chunks per second (EWMA over windows of
    /// [`super::RATE_WINDOW`]; 0 until the first window closes).
    pub(crate) dl_rate: u32,
    /// Chunks delivered in the current rate window, and when it opened.
    pub(crate) dl_window: (u32, Instant),
    /// The last pick from this peer found nothing to request.
    pub(crate) pick_exhausted: bool,
    pub(crate) pending_requests: Vec<(u64, u64)>,
    pub(crate) pending_cancels: Vec<(u64, u64)>,
    pub(crate) last_delivery: Instant,

    // Control messages to send.
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
    pub(crate) send_pex_req: bool,
    pub(crate) pex_replies: Vec<SocketAddr>,
    pub(crate) pex_answered_at: Option<Instant>,

    // Timing.
    pub(crate) last_recv: Instant,
    pub(crate) last_send: Instant,
    pub(crate) sent_since_recv: u32,
    pub(crate) rtt: RttEstimator,
    pub(crate) cc: Box<dyn Controller>,
    pub(crate) last_data_ack: Instant,
    pub(crate) ack_batch: Option<AckBatch>,

    // Scheduling.
    pub(crate) timer_at: Option<Instant>,
    pub(crate) queued: bool,

    // Reciprocity (bytes this choke round).
    pub(crate) round_down: u64,
    pub(crate) round_up: u64,

    pub(crate) stats: Counters,
}

impl Channel {
    /// Whether the peer accepts messages of type `t` (RFC 7574 §7.10).
    pub(crate) fn accepts(&self, t: MessageType) -> bool {
        self.peer_accepts & (1 << t.code()) != 0
    }

    /// Notes the Supported Messages option of the peer's handshake, if it carried one.
    pub(crate) fn note_supported(&mut self, s: Option<&crate::wire::SupportedMessages>) {
        if let Some(s) = s {
            self.peer_accepts = (0..16u8)
                .filter(|&c| s.contains_code(c))
                .fold(0, |m, c| m | (1 << c));
        }
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "crate-private constructor; every argument is a distinct part of the channel"
    )]
    pub(crate) fn new(
        id: u32,
        swarm: usize,
        remote: SocketAddr,
        role: Role,
        wire: WireParams,
        cc: Box<dyn Controller>,
        now: Instant,
        hash: ChunkHash,
    ) -> Self {
        Self {
            id,
            swarm,
            remote,
            peer_id: 0,
            role,
            state: State::Connecting,
            proven: false,
            wire,
            hs_attempts: 0,
            hs_deadline: None,
            send_handshake: role == Role::Initiator,
            reply_with_chunk_size: true,
            peer_accepts: u16::MAX,
            wire_id: id,
            send_close: false,
            send_keepalive: false,
            peer_have: Binmap::new(),
            peer_choking: false,
            am_choking: false,
            send_choke: None,
            choke_resent_at: None,
            unchoke_unanswered: None,
            have_refresh: (now + super::HAVE_REFRESH, 0),
            munro_sent: None,
            munro_heard: None,
            upload: VecDeque::new(),
            upload_len: 0,
            in_flight: chunk_map(hash),
            in_flight_map: Binmap::new(),
            sent_order: SentOrder::default(),
            lost: Binmap::new(),
            send_seq: 0,
            acked_seq: 0,
            hashes_ahead: None,
            interested_at: None,
            requested: chunk_map(hash),
            request_seq: 0,
            delivered_seq: 0,
            hole_mark_seq: 0,
            hole_mark_at: now,
            request_target: 16,
            rto_streak: 0,
            big_loss_streak: 0,
            max_acked_size: 0,
            big_loss_min: u16::MAX,
            dgram_cap: None,
            dgram_cap_at: now,
            dl_rate: 0,
            dl_window: (0, now),
            pick_exhausted: false,
            pending_requests: Vec::new(),
            pending_cancels: Vec::new(),
            last_delivery: now,
            pending_acks: Vec::new(),
            data_unacked: 0,
            ack_due: None,
            pending_haves: Binmap::new(),
            have_seq: 0,
            have_idle: false,
            haves_due: None,
            send_pex_req: false,
            pex_replies: Vec::new(),
            pex_answered_at: None,
            last_recv: now,
            last_send: now,
            sent_since_recv: 0,
            rtt: RttEstimator::default(),
            cc,
            last_data_ack: now,
            ack_batch: None,
            timer_at: None,
            queued: false,
            round_down: 0,
            round_up: 0,
            stats: Counters::default(),
        }
    }

    pub(crate) fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// Whether the request pipeline is low enough to refill, with at most `max` requests per
    /// peer: refills go half the target at a time, so picking is amortised over several chunks
    /// instead of running for every chunk that arrives, and picks take longer runs (in a
    /// 1,000-peer swarm, a quarter at a time sent 40% more HAVE messages, the runs a peer
    /// verifies being what it announces, and took 14% longer to simulate).
    pub(crate) fn refill_due(&self, max: usize) -> bool {
        let target = self.request_target.min(max);
        let outstanding = self.requested.len();
        !(outstanding >= target || (outstanding > 0 && target - outstanding < (target / 2).max(1)))
    }

    /// Counts one chunk delivered by this peer and returns the request queue it warrants: the
    /// delivery rate times (RTT + [`super::QUEUE_TIME`]), plus a few. A peer that serves
    /// everything asked of it delivers faster as the queue grows, so the queue keeps growing
    /// (by one per delivery); one that is slower than asked queues up to `QUEUE_TIME` of data
    /// at the peer, no more (chunks queued behind a slow peer are held hostage from others).
    pub(crate) fn on_delivered(&mut self, now: Instant, max: usize) {
        let (count, since) = self.dl_window;
        let count = count + 1;
        let elapsed = now.saturating_duration_since(since);
        if elapsed >= super::RATE_WINDOW {
            let inst = (u64::from(count) * 1_000_000 / (elapsed.as_micros() as u64).max(1))
                .min(u64::from(u32::MAX)) as u32;
            self.dl_rate = if self.dl_rate == 0 {
                inst
            } else {
                ((3 * u64::from(self.dl_rate) + u64::from(inst)) / 4) as u32
            };
            self.dl_window = (0, now);
        } else {
            self.dl_window = (count, since);
        }
        let mut target = (self.request_target + 1).min(max);
        if self.dl_rate > 0 {
            let horizon = self.rtt.smoothed_or(super::RATE_WINDOW) + super::QUEUE_TIME;
            let ceiling = u64::from(self.dl_rate) * (horizon.as_micros() as u64) / 1_000_000 + 8;
            target = target.min(ceiling.min(usize::MAX as u64) as usize);
        }
        self.request_target = target.max(4);
    }

    /// Whether pending ACKs must go out now: every second DATA is acknowledged at once, a
    /// lone one after [`super::ACK_DELAY`] (R-3.4-e; until then they ride on other datagrams).
    pub(crate) fn acks_due(&self, now: Instant) -> bool {
        !self.pending_acks.is_empty()
            && (self.data_unacked >= 2 || self.ack_due.is_none_or(|t| t <= now))
    }

    /// Whether the channel has control messages that must go out now (HAVEs wait until
    /// [`Channel::haves_are_due`] and ACKs until [`Channel::acks_due`], riding on other
    /// datagrams meanwhile).
    pub(crate) fn has_control(&self, now: Instant) -> bool {
        self.send_handshake
            || self.send_close
            || self.acks_due(now)
            || !self.pending_requests.is_empty()
            || !self.pending_cancels.is_empty()
            || self.send_choke.is_some()
            || self.send_pex_req
            || !self.pex_replies.is_empty()
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

    /// Adds chunks `first..=last` to the upload queue, up to `limit` queued chunks; returns how
    /// many were refused.
    pub(crate) fn queue_upload(&mut self, first: u64, last: u64, limit: u64) -> u64 {
        let room = limit.saturating_sub(self.upload_len);
        let len = last - first + 1;
        let take = len.min(room);
        if take > 0 {
            let end = first + take - 1;
            match self.upload.back_mut() {
                Some(b) if b.1 + 1 == first => b.1 = end,
                _ => self.upload.push_back((first, end)),
            }
            self.upload_len += take;
        }
        len - take
    }

    /// Removes chunks `first..=last` from the upload queue (CANCEL, or an implicit cancel by
    /// HAVE, RFC 7574 §3.8).
    pub(crate) fn cancel_upload(&mut self, first: u64, last: u64) {
        if !self.upload.iter().any(|&(a, b)| a <= last && b >= first) {
            return;
        }
        let mut out = VecDeque::with_capacity(self.upload.len() + 1);
        let mut removed = 0;
        for &(a, b) in &self.upload {
            if b < first || a > last {
                out.push_back((a, b));
                continue;
            }
            if a < first {
                out.push_back((a, first - 1));
            }
            if b > last {
                out.push_back((last + 1, b));
            }
            removed += b.min(last) - a.max(first) + 1;
        }
        self.upload = out;
        self.upload_len -= removed;
    }

    /// The next chunk to upload, removed from the queue.
    pub(crate) fn pop_upload(&mut self) -> Option<u64> {
        let front = self.upload.front_mut()?;
        let c = front.0;
        if front.0 == front.1 {
            self.upload.pop_front();
        } else {
            front.0 += 1;
        }
        self.upload_len -= 1;
        Some(c)
    }

    /// Puts a chunk back at the front of the upload queue (a retransmission goes first).
    pub(crate) fn push_upload_front(&mut self, chunk: u64) {
        self.upload.push_front((chunk, chunk));
        self.upload_len += 1;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::congestion::FixedWindow;
    use crate::wire::WireParams;
    use alloc::vec;

    fn chan() -> Channel {
        Channel::new(
            1,
            0,
            "127.0.0.1:1".parse().unwrap(),
            Role::Responder,
            WireParams::default(),
            Box::new(FixedWindow::unlimited()),
            Instant::ZERO,
            ChunkHash::new(1),
        )
    }

    #[test]
    fn sent_order_keeps_the_oldest_in_flight_first() {
        let mut o = SentOrder::default();
        assert_eq!(o.first(), None);
        for (seq, chunk) in [(1, 10), (2, 11), (3, 12), (4, 13)] {
            o.push(seq, chunk);
        }
        assert_eq!(o.first(), Some((1, 10)));
        // Acknowledged out of order: a hole in the middle stays until the front reaches it.
        o.remove(3);
        assert_eq!(o.first(), Some((1, 10)));
        o.remove(1);
        assert_eq!(o.first(), Some((2, 11)));
        o.remove(2);
        assert_eq!(o.first(), Some((4, 13)));
        // Unknown or repeated sequence numbers change nothing.
        o.remove(0);
        o.remove(3);
        o.remove(99);
        assert_eq!(o.first(), Some((4, 13)));
        o.push(4, 99);
        o.remove(4);
        assert_eq!(o.first(), None);
        // A gap in the numbering (never expected) is skipped over, not misattributed.
        o.push(10, 1);
        o.push(12, 2);
        o.remove(10);
        assert_eq!(o.first(), Some((12, 2)));
    }

    #[test]
    fn upload_queue_bounds_cancels_and_order() {
        let mut c = chan();
        assert_eq!(c.queue_upload(0, 9, 15), 0);
        assert_eq!(c.queue_upload(10, 19, 15), 5);
        assert_eq!(c.upload_len, 15);
        c.cancel_upload(3, 5);
        assert_eq!(c.upload_len, 12);
        assert_eq!(c.pop_upload(), Some(0));
        c.push_upload_front(42);
        assert_eq!(c.pop_upload(), Some(42));
        let rest: Vec<u64> = core::iter::from_fn(|| c.pop_upload()).collect();
        assert_eq!(rest, [1, 2, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
        assert_eq!(c.upload_len, 0);
    }

    #[test]
    fn coalesce_merges_adjacent_and_overlapping() {
        let mut r = vec![(5, 6), (0, 1), (2, 3), (10, 12), (11, 20)];
        Channel::coalesce(&mut r);
        assert_eq!(r, [(0, 3), (5, 6), (10, 20)]);
    }
}
