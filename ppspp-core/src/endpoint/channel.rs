//! Per-peer state: one channel of one swarm (RFC 7574 §3.11).

use super::announce::Announce;
use super::choke::ChokeState;
use super::download::Download;
use super::error::ConnectError;
use super::handshake::HandshakeState;
use super::live_swarm::LiveChannel;
use super::loss::Flight;
use super::mtu::PathMtu;
use super::pex::PexState;
use super::swarm::Swarm;
use super::table::ChunkHash;
use super::upload::Upload;
use super::{download::release, pex, table};
use crate::binmap::Binmap;
use crate::congestion::Controller;
use crate::event::{CloseReason, Event, PeerHandle};
use crate::rtt::RttConfig;
use crate::rtt::RttEstimator;
use crate::stats::{ChannelStats, MessageCounts};
use crate::time::Duration;
use crate::time::Instant;
use crate::wire::ChannelId;
use crate::wire::{MessageType, WireParams};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::net::SocketAddr;

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

/// One channel: the peer's identity and the handshake's outcome, then one part per concept,
/// each defined (with its rules) in the module named after it.
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
    /// We opened it to an address learnt by PEX (counted against the PEX share).
    pub(crate) from_pex: bool,
    pub(crate) wire: WireParams,
    /// The message types the peer accepts, bit `code` per type (RFC 7574 §7.10: a peer
    /// supporting a proper subset says which in its handshake; all until it does).
    pub(crate) peer_accepts: u16,
    pub(crate) send_keepalive: bool,
    /// What the peer announced (HAVE, ACK).
    pub(crate) peer_have: Binmap,

    /// Handshake retransmission ([`super::handshake`]).
    pub(crate) hs: HandshakeState,
    /// Choking in both directions ([`super::choke`]).
    pub(crate) choke: ChokeState,
    /// Peer exchange ([`super::pex`]).
    pub(crate) pex: PexState,
    /// HAVEs and ACKs we owe the peer ([`super::announce`]).
    pub(crate) ann: Announce,
    /// What the peer asked us for ([`super::upload`]).
    pub(crate) up: Upload,
    /// Our DATA in flight to the peer ([`super::loss`]).
    pub(crate) flight: Flight,
    /// What we asked the peer for ([`super::download`]).
    pub(crate) down: Download,
    /// The path MTU fallback ([`super::mtu`]).
    pub(crate) mtu: PathMtu,
    /// Live-stream munro exchange ([`super::live_swarm`]).
    pub(crate) live: LiveChannel,

    // Timing.
    pub(crate) last_recv: Instant,
    pub(crate) last_send: Instant,
    pub(crate) sent_since_recv: u32,
    pub(crate) rtt: RttEstimator,
    pub(crate) cc: Box<dyn Controller>,

    // Scheduling.
    pub(crate) timer_at: Option<Instant>,
    /// Which timer `timer_at` is for.
    pub(crate) timer_reason: super::timer::Timer,
    pub(crate) queued: bool,

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
            from_pex: false,
            wire,
            peer_accepts: u16::MAX,
            wire_id: id,
            send_keepalive: false,
            peer_have: Binmap::new(),
            hs: HandshakeState::new(role),
            choke: ChokeState::default(),
            pex: PexState::default(),
            ann: Announce::new(now),
            up: Upload::default(),
            flight: Flight::new(now, hash),
            down: Download::new(now, hash),
            mtu: PathMtu::new(now),
            live: LiveChannel::default(),
            last_recv: now,
            last_send: now,
            sent_since_recv: 0,
            rtt: RttEstimator::default(),
            cc,
            timer_at: None,
            timer_reason: super::timer::Timer::KeepAlive,
            queued: false,
            stats: Counters::default(),
        }
    }

    /// Drops pending messages of types the peer said it does not accept (R-7.10-a);
    /// `have_log_end` is the swarm's HAVE log end (nothing in it is announced to such a peer).
    pub(crate) fn drop_unaccepted(&mut self, have_log_end: u64) {
        let bits = self.peer_accepts;
        let accepts = move |t: MessageType| bits & (1 << t.code()) != 0;
        if !accepts(MessageType::Ack) {
            self.ann.pending_acks.clear();
        }
        if !accepts(MessageType::Cancel) {
            self.down.pending_cancels.clear();
        }
        if !accepts(MessageType::PexReq) {
            self.pex.send_pex_req = false;
        }
        self.pex.pex_replies.retain(|r| accepts(r.message_type()));
        if let Some(choke) = self.choke.send_choke {
            let t = if choke {
                MessageType::Choke
            } else {
                MessageType::Unchoke
            };
            if !accepts(t) {
                self.choke.send_choke = None;
                self.choke.unchoke_unanswered = None;
            }
        }
        if !accepts(MessageType::Have) {
            // Nothing to announce to this peer: move past the log.
            self.ann.have_seq = have_log_end;
            self.ann.pending_haves.clear();
        }
    }

    /// The channel's counters with its RTT, window and flight, as the public view gives them.
    pub(crate) fn public_stats(&self) -> ChannelStats {
        let mut s = self.stats.public();
        s.rtt = self.rtt.smoothed();
        s.cwnd = self.cc.window();
        s.in_flight = self.cc.bytes_in_flight();
        s
    }

    pub(crate) fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// Whether the channel has control messages that must go out now (HAVEs wait until
    /// [`Channel::haves_are_due`] and ACKs until [`Channel::acks_due`], riding on other
    /// datagrams meanwhile).
    pub(crate) fn has_control(&self, now: Instant) -> bool {
        self.hs.send_handshake
            || self.ann.acks_due(now)
            || !self.down.pending_requests.is_empty()
            || !self.down.pending_cancels.is_empty()
            || self.choke.send_choke.is_some()
            || self.pex.send_pex_req
            || !self.pex.pex_replies.is_empty()
            || self.pex.send_own_cert
    }
}

/// The channel table: allocation (slot in the low 16 bits of the ID, random high bits, a keyed
/// permutation on the wire) and release (closing handshake, slot freed, requests released).
impl super::Endpoint {
    pub(super) fn alloc_channel(
        &mut self,
        swarm: usize,
        remote: SocketAddr,
        role: Role,
        wire: WireParams,
    ) -> Result<u32, ConnectError> {
        if self.live_channels >= self.cfg.max_channels {
            return Err(ConnectError::TooManyChannels);
        }
        let slot = match self.free_slots.pop() {
            Some(s) => s as usize,
            None if self.channels.len() < 0x1_0000 => {
                self.channels.push(None);
                self.channels.len() - 1
            }
            None => return Err(ConnectError::TooManyChannels),
        };
        // The high 16 bits are random; the low 16 bits index the slot, so a datagram finds its
        // channel in O(1). The network sees the ID through a keyed permutation (RFC 7574
        // §12.1, R-8.3-a: unpredictable IDs), never 0 (the handshake's channel).
        let mut id;
        loop {
            id = (self.rng.next_u32() & 0xFFFF_0000) | slot as u32;
            if id != 0 && self.id_cipher.encrypt(id) != 0 {
                break;
            }
        }
        let mss = self.cfg.max_datagram_size as u64;
        let cc = self.cfg.congestion.build(self.now, mss);
        let mut ch = Channel::new(id, swarm, remote, role, wire, cc, self.now, self.chunk_hash);
        ch.wire_id = self.id_cipher.encrypt(id);
        let mut rc = RttConfig::default();
        rc.min_rto(Duration::from_millis(200));
        ch.rtt = RttEstimator::new(rc);
        ch.hs.hs_attempts = 0;
        // Announcing starts with the whole map when the channel is established; the log
        // before this point is already in it.
        ch.ann.have_seq = self.swarms[swarm].as_ref().map_or(0, Swarm::have_log_end);
        self.channels[slot] = Some(Box::new(ch));
        self.live_channels += 1;
        if let Some(s) = self.swarms.get_mut(swarm).and_then(Option::as_mut) {
            s.channels.insert(id);
        }
        Ok(id)
    }

    /// Frees a channel. With `notify`, a closing handshake is sent if the peer knows us.
    pub(crate) fn close_channel(&mut self, id: u32, reason: CloseReason, notify: bool) {
        let slot = (id & 0xFFFF) as usize;
        // Check the ID before taking: a stale ID must not free the slot's new occupant.
        if self.chan(id).is_none() {
            return;
        }
        let Some(ch) = self.channels.get_mut(slot).and_then(Option::take) else {
            return;
        };
        self.live_channels -= 1;
        if notify && ch.peer_id != 0 {
            // Closing handshake: source channel 0, empty option list (R-3.1.1-p, R-3.1.1-q).
            let closing = crate::wire::Message::Handshake(crate::wire::Handshake {
                source_channel: ChannelId(0),
                options: crate::wire::ProtocolOptions::default(),
            });
            let mut d = alloc::vec![0u8; 16];
            if let Ok(n) = crate::wire::encode_datagram(
                ChannelId(ch.peer_id),
                [&closing],
                &WireParams::default(),
                &mut d,
            ) {
                d.truncate(n);
                self.raw_out.push_back((ch.remote, d));
            }
        }
        self.free_slots.push(slot as u16);
        if ch.role == Role::Responder {
            self.handshakes.remove(&(ch.remote, ch.peer_id));
        }
        let swarm_idx = ch.swarm;
        // The peer closing one of two channels to us (see `Endpoint::on_established`) closes
        // a duplicate: it stays connected through the other.
        // (This channel's slot is free already: any channel found is another.)
        let reason = if reason == CloseReason::RemoteClosed
            && self.channel_to(swarm_idx, ch.remote, |_| true).is_some()
        {
            CloseReason::Duplicate
        } else {
            reason
        };
        let mut released = Vec::new();
        if let Some(s) = self.swarms.get_mut(swarm_idx).and_then(Option::as_mut) {
            s.channels.remove(&id);
            s.unchoked.remove(&id);
            if s.optimistic == Some(id) {
                s.optimistic = None;
            }
            if ch.is_established() {
                s.add_avail(&ch.peer_have, -1);
            }
            pex::remember_lost(s, &ch, reason, self.now);
            for c in table::sorted_keys(&ch.down.requested) {
                release(s, c);
                released.push(c);
            }
            if ch.is_established() || ch.role == Role::Initiator {
                self.events.push_back(Event::PeerClosed {
                    swarm: s.handle,
                    peer: PeerHandle(id),
                    remote: ch.remote,
                    reason,
                    stats: Box::new(ch.public_stats()),
                });
            }
            if !released.is_empty() {
                self.offer_released(swarm_idx, &released, id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::congestion::FixedWindow;
    use crate::endpoint::loss::SentOrder;
    use crate::wire::WireParams;
    use alloc::vec;
    use alloc::vec::Vec;

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
        assert_eq!(c.up.queue_upload(0, 9, 15), 0);
        assert_eq!(c.up.queue_upload(10, 19, 15), 5);
        assert_eq!(c.up.upload_len, 15);
        c.up.cancel_upload(3, 5);
        assert_eq!(c.up.upload_len, 12);
        assert_eq!(c.up.pop_upload(), Some(0));
        c.up.push_upload_front(42);
        assert_eq!(c.up.pop_upload(), Some(42));
        let rest: Vec<u64> = core::iter::from_fn(|| c.up.pop_upload()).collect();
        assert_eq!(rest, [1, 2, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
        assert_eq!(c.up.upload_len, 0);
    }

    #[test]
    fn coalesce_merges_adjacent_and_overlapping() {
        let mut r = vec![(5, 6), (0, 1), (2, 3), (10, 12), (11, 20)];
        Download::coalesce(&mut r);
        assert_eq!(r, [(0, 3), (5, 6), (10, 20)]);
    }
}
