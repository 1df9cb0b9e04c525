//! Output: assembling each channel's next datagram. [`Endpoint::build`] reads as one short
//! step per message kind, each written by the module that owns it; the datagram goes through
//! the wire codec's [`DatagramWriter`].

use super::channel::{Channel, Role, State};
use super::upload::data_estimate;
use super::{Endpoint, Transmit};
use super::{announce, choke, download, handshake, live_swarm, pex};
use crate::bin::Bin;
use crate::time::Instant;
use crate::wire::{ChannelId, ChunkSpec, DatagramWriter, Message, MessageType, WireParams};
use arrayvec::ArrayVec;

/// A datagram being assembled: the writer, the message types written (for the counters), and
/// what every message's writer needs to know.
pub(super) struct Out<'a> {
    pub(super) w: DatagramWriter<'a>,
    pub(super) counts: ArrayVec<MessageType, 96>,
    pub(super) now: Instant,
    /// The swarm's chunk size.
    pub(super) cs: u64,
    pub(super) wire: WireParams,
}

impl Out<'_> {
    /// Writes `m` if it fits; whether it did.
    pub(super) fn push(&mut self, m: &Message) -> bool {
        let ok = self.w.push(m).is_ok();
        if ok {
            self.count(m.message_type());
        }
        ok
    }

    /// Counts a message written straight through the writer.
    pub(super) fn count(&mut self, t: MessageType) {
        let _ = self.counts.try_push(t);
    }

    /// Writes the messages naming chunks `a..=b` (one under range addressing, the minimal bins
    /// otherwise, R-4.2-g) as far as they fit, in order; returns the first chunk left out
    /// (`None`: all written). A range whose messages do not fit one datagram goes out over
    /// several.
    pub(super) fn push_ranges(
        &mut self,
        a: u64,
        b: u64,
        make: fn(ChunkSpec) -> Message,
    ) -> Option<u64> {
        let addressing = self.wire.addressing;
        if let Some(spec) = ChunkSpec::chunk_range(addressing, a, b, self.cs) {
            return (!self.push(&make(spec))).then_some(a);
        }
        for bin in Bin::cover(a, b) {
            let Some(spec) = ChunkSpec::node(addressing, bin, self.cs) else {
                continue;
            };
            if !self.push(&make(spec)) {
                return Some(bin.first_chunk().unwrap_or(a));
            }
        }
        None
    }
}

impl Endpoint {
    /// Writes the next datagram to send into `buf` and says where it goes. Call until `None`
    /// after every input or command. `buf` should hold at least the configured maximum
    /// datagram size (1472 bytes by default).
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.advance(now);
        if buf.len() < self.cfg.max_datagram_size {
            self.stats.small_transmit_buffers += 1;
        }
        if let Some((to, d)) = self.raw_out.pop_front() {
            if d.len() <= buf.len() {
                buf[..d.len()].copy_from_slice(&d);
                self.stats.datagrams_out += 1;
                self.stats.bytes_out += d.len() as u64;
                self.stats.messages_out.add(MessageType::Handshake);
                return Some(Transmit {
                    destination: to,
                    size: d.len(),
                });
            }
        }
        let now = self.now;
        while let Some(id) = self.send_queue.pop_front() {
            let Some(ch) = self.chan_mut(id) else {
                continue;
            };
            ch.queued = false;
            let size = self.build(id, buf);
            if size == 0 {
                self.reschedule(id);
                continue;
            }
            let Some(ch) = self.chan_mut(id) else {
                continue;
            };
            let dest = ch.remote;
            ch.last_send = now;
            ch.sent_since_recv = ch.sent_since_recv.saturating_add(1);
            ch.stats.datagrams_out += 1;
            ch.stats.bytes_out += size as u64;
            self.stats.datagrams_out += 1;
            self.stats.bytes_out += size as u64;
            // Round robin: a channel with more to send goes to the back of the queue.
            if self.can_send_more(id) {
                self.queue_send(id);
            }
            self.reschedule(id);
            return Some(Transmit {
                destination: dest,
                size,
            });
        }
        None
    }

    /// Whether channel `id` could put another datagram on the wire right now.
    pub(crate) fn can_send_more(&self, id: u32) -> bool {
        let Some(ch) = self.chan(id) else {
            return false;
        };
        let log_end = self
            .swarms
            .get(ch.swarm)
            .and_then(Option::as_ref)
            .map_or(0, |s| s.have_log_end());
        if (ch.has_control(self.now) || ch.ann.haves_are_due(self.now, log_end))
            && (ch.is_established() || ch.hs.send_handshake)
        {
            return true;
        }
        if !ch.is_established() || !ch.proven || ch.up.upload.is_empty() || ch.choke.am_choking {
            return false;
        }
        matches!(ch.cc.next_send_time(self.now, self.data_estimate_for(ch)), Some(t) if t <= self.now)
    }

    /// [`data_estimate`] for channel `ch`'s swarm.
    pub(crate) fn data_estimate_for(&self, ch: &Channel) -> u64 {
        let cs = self
            .swarms
            .get(ch.swarm)
            .and_then(Option::as_ref)
            .map_or(1024, |s| s.cfg.chunk_size);
        data_estimate(self.cfg.max_datagram_size as u64, cs)
    }

    /// The largest datagram channel `ch` may send now, in a buffer of `buf_len` bytes.
    fn datagram_limit(&self, ch: &Channel, buf_len: usize) -> usize {
        // R-8.1-a: the configured size is for IPv4; an IPv6 header is 20 bytes longer.
        let v6 =
            matches!(ch.remote, core::net::SocketAddr::V6(a) if a.ip().to_ipv4_mapped().is_none());
        let max = self
            .cfg
            .max_datagram_size
            .saturating_sub(if v6 { 20 } else { 0 })
            .min(ch.mtu.cap())
            .min(buf_len);
        // R-12.1-b, R-12.1.1-a: until the peer proves its address, stay within a small
        // multiple of what it sent.
        if ch.role == Role::Responder && !ch.proven {
            let budget = (ch.stats.bytes_in as usize)
                .saturating_mul(self.cfg.amplification_factor)
                .saturating_sub(ch.stats.bytes_out as usize);
            budget.min(max)
        } else {
            max
        }
    }

    /// Assembles one datagram for channel `id`; returns its size (0: nothing to send now).
    pub(super) fn build(&mut self, id: u32, buf: &mut [u8]) -> usize {
        let now = self.now;
        let Some(ch) = self.chan(id) else { return 0 };
        let opening = ch.role == Role::Initiator && ch.state == State::Connecting;
        if opening && !ch.hs.send_handshake {
            return 0;
        }
        let dest = if opening { 0 } else { ch.peer_id };
        let limit = self.datagram_limit(ch, buf.len());
        if limit < 8 {
            self.stats.drops.amplification_limited += 1;
            return 0;
        }
        let wire = ch.wire;
        let hs = ch.hs.send_handshake.then(|| self.handshake_options(id));
        // Our membership certificate rides with our handshake, and goes again when renewed.
        let own_cert = if hs.is_some() || ch.pex.send_own_cert {
            self.own_cert(ch.swarm)
        } else {
            None
        };
        let hs_timeout = self.cfg.handshake_timeout;
        let Some((ch, sw, _)) = self.parts(id) else {
            return 0;
        };
        let Ok(w) = DatagramWriter::new(&mut buf[..limit], ChannelId(dest), wire) else {
            return 0;
        };
        let cs = u64::from(sw.cfg.chunk_size);
        let mut out = Out {
            w,
            counts: ArrayVec::new(),
            now,
            cs,
            wire,
        };
        if let Some(options) = hs {
            if !handshake::write(ch, &mut out, options, hs_timeout) {
                return 0;
            }
            if let Some(c) = &own_cert {
                // Best effort: a peer that requires it refuses us without it.
                let _ = out.push(&Message::PexResCert(c.clone()));
            }
        }
        let established = ch.is_established() || (ch.role == Role::Responder && !opening);
        if established && !opening {
            // R-7.10-a: nothing of a type the peer said it does not accept.
            ch.drop_unaccepted(sw.have_log_end());
            // CHOKE / UNCHOKE first: they change how the peer reads the rest.
            choke::write(ch, &mut out);
            announce::write_acks(ch, &mut out);
            announce::write_haves(ch, sw, &mut out);
            live_swarm::write_munro(ch, sw, &mut out);
            announce::wait_for_haves(ch, sw);
            if ch.proven {
                download::write_requests(ch, &mut out);
                pex::write(ch, &mut out);
            }
            if ch.pex.send_own_cert {
                let sent = match &own_cert {
                    Some(c) => out.push(&Message::PexResCert(c.clone())),
                    None => true,
                };
                ch.pex.send_own_cert = !sent;
            }
        }
        let had_control = !out.w.is_empty();
        // DATA, with its INTEGRITY messages first (R-5.4-a), if the window allows.
        if established && !opening && ch.proven && !ch.choke.am_choking && !sw.store_failed {
            self.add_data(id, &mut out, had_control);
        }
        let len = out.w.len();
        if len == 4 {
            // R-8.14-a: a keep-alive is the channel ID alone.
            let Some(ch) = self.chan_mut(id) else {
                return 0;
            };
            if ch.send_keepalive && ch.is_established() {
                ch.send_keepalive = false;
                self.stats.keepalives_out += 1;
                return 4;
            }
            return 0;
        }
        if let Some(ch) = self.chan_mut(id) {
            ch.send_keepalive = false;
            for &t in &out.counts {
                ch.stats.messages_out.add(t);
            }
        }
        for &t in &out.counts {
            self.stats.messages_out.add(t);
        }
        len
    }
}
