//! Output: assembling each channel's next datagram, message by message, each from the module
//! that owns it.

use super::channel::{Role, State};
use super::upload::data_estimate;
use super::{Endpoint, Transmit};
use crate::bin::Bin;
use crate::wire::{Ack, ChannelId, ChunkSpec, DatagramWriter, Handshake, Message, MessageType};
use arrayvec::ArrayVec;

/// Writes the messages naming chunks `a..=b` (one under range addressing, the minimal bins
/// otherwise, R-4.2-g) as far as they fit, in order; returns the first chunk left out (`None`:
/// all written). A range whose messages do not fit one datagram goes out over several.
pub(super) fn push_ranged_partial(
    w: &mut DatagramWriter<'_>,
    counts: &mut ArrayVec<MessageType, 96>,
    addressing: crate::wire::ChunkAddressing,
    a: u64,
    b: u64,
    cs: u64,
    make: fn(ChunkSpec) -> Message,
) -> Option<u64> {
    if let Some(spec) = ChunkSpec::chunk_range(addressing, a, b, cs) {
        let m = make(spec);
        if w.push(&m).is_err() {
            return Some(a);
        }
        let _ = counts.try_push(m.message_type());
        return None;
    }
    for bin in Bin::cover(a, b) {
        let Some(spec) = node_spec(addressing, bin, cs) else {
            continue;
        };
        let m = make(spec);
        if w.push(&m).is_err() {
            return Some(bin.first_chunk().unwrap_or(a));
        }
        let _ = counts.try_push(m.message_type());
    }
    None
}

/// The chunk specification of tree node `bin` under `addressing` (CHECKLIST Q8: the full
/// aligned range, not clipped).
pub(super) fn node_spec(
    addressing: crate::wire::ChunkAddressing,
    bin: Bin,
    chunk_size: u64,
) -> Option<ChunkSpec> {
    match addressing {
        crate::wire::ChunkAddressing::Bin32 | crate::wire::ChunkAddressing::Bin64 => {
            let s = ChunkSpec::Bin(bin);
            s.fits(addressing).then_some(s)
        }
        _ => ChunkSpec::chunk_range(
            addressing,
            bin.first_chunk()?,
            bin.last_chunk()?,
            chunk_size,
        ),
    }
}

impl Endpoint {
    /// Writes the next datagram to send into `buf` and says where it goes. Call until `None`
    /// after every input or command. `buf` should hold at least the configured maximum
    /// datagram size (1472 bytes by default).
    #[must_use]
    pub fn poll_transmit(&mut self, now: crate::time::Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.advance(now);
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
    pub(crate) fn data_estimate_for(&self, ch: &super::channel::Channel) -> u64 {
        let cs = self
            .swarms
            .get(ch.swarm)
            .and_then(Option::as_ref)
            .map_or(1024, |s| s.cfg.chunk_size);
        data_estimate(self.cfg.max_datagram_size as u64, cs)
    }

    /// Assembles one datagram for channel `id`; returns its size (0: nothing to send now).
    pub(super) fn build(&mut self, id: u32, buf: &mut [u8]) -> usize {
        let now = self.now;
        let Some(ch) = self.chan(id) else { return 0 };
        // R-8.1-a: the configured size is for IPv4; an IPv6 header is 20 bytes longer.
        let v6 =
            matches!(ch.remote, core::net::SocketAddr::V6(a) if a.ip().to_ipv4_mapped().is_none());
        let max = self
            .cfg
            .max_datagram_size
            .saturating_sub(if v6 { 20 } else { 0 })
            .min(ch.mtu.dgram_cap.unwrap_or(usize::MAX))
            .min(buf.len());
        let initiator = ch.role == Role::Initiator;
        let opening = initiator && ch.state == State::Connecting;
        if opening && !ch.hs.send_handshake {
            return 0;
        }
        let dest = if opening { 0 } else { ch.peer_id };
        // R-12.1-b, R-12.1.1-a: until the peer proves its address, stay within a small
        // multiple of what it sent.
        let limit = if ch.role == Role::Responder && !ch.proven {
            let budget = (ch.stats.bytes_in as usize)
                .saturating_mul(self.cfg.amplification_factor)
                .saturating_sub(ch.stats.bytes_out as usize);
            budget.min(max)
        } else {
            max
        };
        if limit < 8 {
            self.stats.drops.amplification_limited += 1;
            return 0;
        }
        let wire = ch.wire;
        let hs = ch.hs.send_handshake.then(|| self.handshake_options(id));
        let hs_timeout = self.cfg.handshake_timeout;
        let mut counts: ArrayVec<MessageType, 96> = ArrayVec::new();
        let Some((ch, sw, _)) = self.parts(id) else {
            return 0;
        };
        let Ok(mut w) = DatagramWriter::new(&mut buf[..limit], ChannelId(dest), wire) else {
            return 0;
        };
        if let Some(options) = hs {
            let m = Message::Handshake(Handshake {
                source_channel: ChannelId(ch.wire_id),
                options,
            });
            if w.push(&m).is_err() {
                return 0;
            }
            counts.push(MessageType::Handshake);
            ch.hs.send_handshake = false;
            if initiator {
                ch.hs.hs_attempts += 1;
                let backoff = hs_timeout * 2u32.pow(ch.hs.hs_attempts.min(8) - 1);
                ch.hs.hs_deadline = Some(now + backoff);
            }
        }
        let established = ch.is_established() || (ch.role == Role::Responder && !opening);
        if established && !opening {
            let cs = u64::from(sw.cfg.chunk_size);
            // R-7.10-a: nothing of a type the peer said it does not accept.
            let accepts = |t| ch.peer_accepts & (1 << MessageType::code(t)) != 0;
            if !accepts(MessageType::Ack) {
                ch.ann.pending_acks.clear();
            }
            if !accepts(MessageType::Cancel) {
                ch.down.pending_cancels.clear();
            }
            if !accepts(MessageType::PexReq) {
                ch.pex.send_pex_req = false;
            }
            ch.pex.pex_replies.retain(|a| {
                accepts(match a {
                    core::net::SocketAddr::V4(_) => MessageType::PexResV4,
                    core::net::SocketAddr::V6(_) => MessageType::PexResV6,
                })
            });
            // CHOKE / UNCHOKE first: they change how the peer reads the rest.
            if let Some(choke) = ch.choke.send_choke {
                let m = if choke {
                    Message::Choke
                } else {
                    Message::Unchoke
                };
                if !accepts(m.message_type()) {
                    ch.choke.send_choke = None;
                    ch.choke.unchoke_unanswered = None;
                } else if w.push(&m).is_ok() {
                    counts.push(m.message_type());
                    ch.choke.send_choke = None;
                    // An UNCHOKE is never acknowledged: until a REQUEST answers it, it is sent
                    // again now and then (`repeat_unchokes`). A CHOKE ends that.
                    ch.choke.unchoke_unanswered = match (choke, ch.choke.unchoke_unanswered) {
                        (true, _) => None,
                        (false, Some(u)) => Some(u),
                        (false, None) => Some((now + super::UNCHOKE_REPEAT, 0)),
                    };
                }
            }
            // ACKs, oldest first (L-2.3-b: samples in the order they were taken).
            let mut sent_acks = 0;
            for a in &ch.ann.pending_acks {
                let Some(spec) = ChunkSpec::chunk_range(wire.addressing, a.first, a.last, cs)
                else {
                    sent_acks += 1;
                    continue;
                };
                let m = Message::Ack(Ack {
                    spec,
                    delay: a.delay,
                });
                if w.push(&m).is_err() {
                    break;
                }
                let _ = counts.try_push(MessageType::Ack);
                sent_acks += 1;
            }
            ch.ann.pending_acks.drain(..sent_acks);
            if ch.ann.pending_acks.is_empty() {
                ch.ann.data_unacked = 0;
                ch.ann.ack_due = None;
            }
            if !accepts(MessageType::Have) {
                // Nothing to announce to this peer: move past the log.
                ch.ann.have_seq = sw.have_log_end();
                ch.ann.pending_haves.clear();
            }
            // HAVEs (R-3.2-a), each the largest complete interval around new chunks (R-4.3.1-a).
            if ch.ann.haves_may_ride(now, sw.have_log_end())
                && (ch.proven || ch.role == Role::Responder)
            {
                let mut ranges = sw.take_new_haves(ch);
                if !ch.ann.pending_haves.is_empty() {
                    for r in ranges {
                        ch.ann.pending_haves.insert_range(r);
                    }
                    ranges = ch.ann.pending_haves.ranges().collect();
                    ch.ann.pending_haves.clear();
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
                    if let Some(next) = push_ranged_partial(
                        &mut w,
                        &mut counts,
                        wire.addressing,
                        first,
                        last,
                        cs,
                        Message::Have,
                    ) {
                        // The rest of this range (from `next`) waits for the next datagram.
                        covered = covered.max(next);
                        unsent = i;
                        break;
                    }
                    covered = covered.max(last + 1);
                }
                // What did not fit waits for the next datagram.
                for r in ranges.drain(unsent..) {
                    let start = r.start.max(covered);
                    if start < r.end {
                        ch.ann.pending_haves.insert_range(start..r.end);
                    }
                }
            }
            // R-6.1.2.4-a/b/c: our newest signed munro, from the third datagram on (the
            // initiator) or once the initiator proved its address (the responder), until
            // the peer shows it has a chunk under it; sent again when a newer one is signed
            // and, while unanswered, at most once a second.
            if let Some(m) = sw.live.as_ref().and_then(|l| l.latest(&sw.tree)) {
                let (a, b) = (
                    m.bin.first_chunk().unwrap_or(0),
                    m.bin.last_chunk().unwrap_or(0) + 1,
                );
                let due = match ch.live.munro_sent {
                    Some((bin, at)) => bin != m.bin || now >= at + super::MUNRO_REPEAT,
                    None => true,
                };
                // A peer that sent us this munro (or a newer one) knows it.
                let due = due && ch.live.munro_heard.is_none_or(|h| h < a);
                if ch.proven && due && !ch.peer_have.intersects(a..b) {
                    if let Some(spec) = node_spec(wire.addressing, m.bin, cs) {
                        let int = Message::Integrity(crate::wire::Integrity { spec, hash: m.hash });
                        let sig = Message::SignedIntegrity(crate::wire::SignedIntegrity {
                            spec,
                            timestamp: m.timestamp,
                            signature: m.signature.clone(),
                        });
                        if w.remaining() >= int.encoded_len(&wire) + sig.encoded_len(&wire)
                            && w.push(&int).is_ok()
                            && w.push(&sig).is_ok()
                        {
                            let _ = counts.try_push(MessageType::Integrity);
                            let _ = counts.try_push(MessageType::SignedIntegrity);
                            ch.live.munro_sent = Some((m.bin, now));
                        }
                    }
                }
            }
            if (ch.proven || ch.role == Role::Responder) && !ch.ann.haves_pending(sw.have_log_end())
            {
                ch.ann.haves_due = None;
                // Nothing left: wait (off the timer) for the next verified chunk.
                if !ch.ann.have_idle && !sw.complete {
                    ch.ann.have_idle = true;
                    if sw.have_idle.len() > 2 * sw.channels.len() + 16 {
                        let live = &sw.channels;
                        sw.have_idle.retain(|o| live.contains(o));
                    }
                    sw.have_idle.push(ch.id);
                }
            }
            if ch.proven {
                // CANCELs, then REQUESTs; a range whose messages do not all fit goes on in the
                // next datagram from where this one stopped.
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
                        match push_ranged_partial(
                            &mut w,
                            &mut counts,
                            wire.addressing,
                            a,
                            b,
                            cs,
                            make,
                        ) {
                            None => done += 1,
                            Some(next) => {
                                range.0 = next.max(a);
                                break;
                            }
                        }
                    }
                    list.drain(..done);
                }
                if ch.pex.send_pex_req && w.push(&Message::PexReq).is_ok() {
                    ch.pex.send_pex_req = false;
                    let _ = counts.try_push(MessageType::PexReq);
                }
                while let Some(&addr) = ch.pex.pex_replies.last() {
                    let m = match addr {
                        core::net::SocketAddr::V4(a) => Message::PexResV4(a),
                        core::net::SocketAddr::V6(a) => Message::PexResV6(a),
                    };
                    if w.push(&m).is_err() {
                        break;
                    }
                    let _ = counts.try_push(m.message_type());
                    ch.pex.pex_replies.pop();
                }
            }
        }
        let mut len = w.len();
        let had_control = !w.is_empty();
        let _ = w;
        // DATA, with its INTEGRITY messages first (R-5.4-a), if the window allows.
        if established && !opening && ch.proven && !ch.choke.am_choking && !sw.store_failed {
            len = self.add_data(id, buf, len, limit, had_control, &mut counts);
        }
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
        }
        for t in counts {
            self.stats.messages_out.add(t);
            if let Some(ch) = self.chan_mut(id) {
                ch.stats.messages_out.add(t);
            }
        }
        len
    }
}
