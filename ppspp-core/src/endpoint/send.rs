//! Sending: assembling datagrams from each channel's pending messages and upload queue.

use arrayvec::ArrayVec;

use super::channel::{HashesAhead, Role, Sent, State};
use super::{Endpoint, Transmit};
use crate::bin::Bin;
use crate::merkle::AckedHashes;
use crate::wire::{
    Ack, ChannelId, ChunkSpec, DatagramWriter, Handshake, Message, MessageType, ProtocolOptions,
};

use super::recv::VERSION;

/// The size of a typical DATA datagram, for window and pacing checks before it is built: a
/// chunk, its headers and a couple of hashes, at most the maximum datagram size.
pub(crate) fn data_estimate(mss: u64, chunk_size: u32) -> u64 {
    (u64::from(chunk_size) + 64).min(mss)
}

/// Bytes of a DATA message header before the chunk: type, chunk spec, timestamp.
fn data_header_len(spec_len: usize) -> usize {
    1 + spec_len + 8
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
        if (ch.has_control(self.now) || ch.haves_are_due(self.now, log_end))
            && (ch.is_established() || ch.send_handshake)
        {
            return true;
        }
        if !ch.is_established() || !ch.proven || ch.upload.is_empty() || ch.am_choking {
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

    fn handshake_options(&self, id: u32) -> ProtocolOptions {
        let ch = self.chan(id).expect("caller checked");
        let s = self.swarms[ch.swarm]
            .as_ref()
            .expect("channel's swarm exists");
        let initiator = ch.role == Role::Initiator;
        let chunk_size = if initiator {
            // DESIGN.md §4: after unanswered handshakes with option 9, retry without it.
            ch.hs_attempts < self.cfg.chunk_size_fallback_after
        } else {
            ch.reply_with_chunk_size
        };
        let live = s.live.as_ref().map(|l| &l.cfg);
        ProtocolOptions {
            version: Some(VERSION),
            min_version: initiator.then_some(VERSION),
            swarm_id: initiator.then(|| bytes::Bytes::copy_from_slice(&s.key)),
            integrity: Some(match live {
                None => super::STATIC_INTEGRITY,
                Some(_) => crate::wire::ContentIntegrity::UnifiedMerkleTree,
            }),
            // A live swarm with SHA-1 leaves it implied, as libswift does.
            merkle_hash: (live.is_none() || s.cfg.hash != crate::hash::HashAlgorithm::Sha1)
                .then_some(s.cfg.hash),
            // R-7.7-a, R-7.9-a/c: the key's algorithm, and no discarding (all ones).
            live_signature: live.map(|l| l.id.algorithm()),
            live_discard_window: live.map(|l| l.window.unwrap_or(u64::MAX)),
            addressing: Some(s.cfg.addressing),
            // RFC 7574 §7.10 asks for Supported Messages only from peers that support a proper
            // subset; we support every message, and libswift misparses the option (it skips the
            // wrong number of bytes and loses what follows), so it is not sent (CHECKLIST Q4).
            supported_messages: None,
            chunk_size: chunk_size.then_some(s.cfg.chunk_size),
        }
    }

    /// Assembles one datagram for channel `id`; returns its size (0: nothing to send now).
    fn build(&mut self, id: u32, buf: &mut [u8]) -> usize {
        let now = self.now;
        let Some(ch) = self.chan(id) else { return 0 };
        // R-8.1-a: the configured size is for IPv4; an IPv6 header is 20 bytes longer.
        let v6 =
            matches!(ch.remote, core::net::SocketAddr::V6(a) if a.ip().to_ipv4_mapped().is_none());
        let max = self
            .cfg
            .max_datagram_size
            .saturating_sub(if v6 { 20 } else { 0 })
            .min(ch.dgram_cap.unwrap_or(usize::MAX))
            .min(buf.len());
        let initiator = ch.role == Role::Initiator;
        let opening = initiator && ch.state == State::Connecting;
        if opening && !ch.send_handshake {
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
        let hs = ch.send_handshake.then(|| self.handshake_options(id));
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
            ch.send_handshake = false;
            if initiator {
                ch.hs_attempts += 1;
                let backoff = hs_timeout * 2u32.pow(ch.hs_attempts.min(8) - 1);
                ch.hs_deadline = Some(now + backoff);
            }
        }
        let established = ch.is_established() || (ch.role == Role::Responder && !opening);
        if established && !opening {
            let cs = u64::from(sw.cfg.chunk_size);
            // R-7.10-a: nothing of a type the peer said it does not accept.
            let accepts = |t| ch.peer_accepts & (1 << MessageType::code(t)) != 0;
            if !accepts(MessageType::Ack) {
                ch.pending_acks.clear();
            }
            if !accepts(MessageType::Cancel) {
                ch.pending_cancels.clear();
            }
            if !accepts(MessageType::PexReq) {
                ch.send_pex_req = false;
            }
            ch.pex_replies.retain(|a| {
                accepts(match a {
                    core::net::SocketAddr::V4(_) => MessageType::PexResV4,
                    core::net::SocketAddr::V6(_) => MessageType::PexResV6,
                })
            });
            // CHOKE / UNCHOKE first: they change how the peer reads the rest.
            if let Some(choke) = ch.send_choke {
                let m = if choke {
                    Message::Choke
                } else {
                    Message::Unchoke
                };
                if !accepts(m.message_type()) {
                    ch.send_choke = None;
                    ch.unchoke_unanswered = None;
                } else if w.push(&m).is_ok() {
                    counts.push(m.message_type());
                    ch.send_choke = None;
                    // An UNCHOKE is never acknowledged: until a REQUEST answers it, it is sent
                    // again now and then (`repeat_unchokes`). A CHOKE ends that.
                    ch.unchoke_unanswered = match (choke, ch.unchoke_unanswered) {
                        (true, _) => None,
                        (false, Some(u)) => Some(u),
                        (false, None) => Some((now + super::UNCHOKE_REPEAT, 0)),
                    };
                }
            }
            // ACKs, oldest first (L-2.3-b: samples in the order they were taken).
            let mut sent_acks = 0;
            for a in &ch.pending_acks {
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
            ch.pending_acks.drain(..sent_acks);
            if ch.pending_acks.is_empty() {
                ch.data_unacked = 0;
                ch.ack_due = None;
            }
            if !accepts(MessageType::Have) {
                // Nothing to announce to this peer: move past the log.
                ch.have_seq = sw.have_log_end();
                ch.pending_haves.clear();
            }
            // HAVEs (R-3.2-a), each the largest complete interval around new chunks (R-4.3.1-a).
            if ch.haves_may_ride(now, sw.have_log_end())
                && (ch.proven || ch.role == Role::Responder)
            {
                let mut ranges = sw.take_new_haves(ch);
                if !ch.pending_haves.is_empty() {
                    for r in ranges {
                        ch.pending_haves.insert_range(r);
                    }
                    ranges = ch.pending_haves.ranges().collect();
                    ch.pending_haves.clear();
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
                        ch.pending_haves.insert_range(start..r.end);
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
                let due = match ch.munro_sent {
                    Some((bin, at)) => bin != m.bin || now >= at + super::MUNRO_REPEAT,
                    None => true,
                };
                // A peer that sent us this munro (or a newer one) knows it.
                let due = due && ch.munro_heard.is_none_or(|h| h < a);
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
                            ch.munro_sent = Some((m.bin, now));
                        }
                    }
                }
            }
            if (ch.proven || ch.role == Role::Responder) && !ch.haves_pending(sw.have_log_end()) {
                ch.haves_due = None;
                // Nothing left: wait (off the timer) for the next verified chunk.
                if !ch.have_idle && !sw.complete {
                    ch.have_idle = true;
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
                        &mut ch.pending_cancels,
                        Message::Cancel as fn(ChunkSpec) -> Message,
                    ),
                    (
                        &mut ch.pending_requests,
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
                if ch.send_pex_req && w.push(&Message::PexReq).is_ok() {
                    ch.send_pex_req = false;
                    let _ = counts.try_push(MessageType::PexReq);
                }
                while let Some(&addr) = ch.pex_replies.last() {
                    let m = match addr {
                        core::net::SocketAddr::V4(a) => Message::PexResV4(a),
                        core::net::SocketAddr::V6(a) => Message::PexResV6(a),
                    };
                    if w.push(&m).is_err() {
                        break;
                    }
                    let _ = counts.try_push(m.message_type());
                    ch.pex_replies.pop();
                }
            }
        }
        let mut len = w.len();
        let had_control = !w.is_empty();
        let _ = w;
        // DATA, with its INTEGRITY messages first (R-5.4-a), if the window allows.
        if established && !opening && ch.proven && !ch.am_choking && !sw.store_failed {
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

    /// Appends INTEGRITY + DATA for the next queued chunk to the datagram in `buf[..len]`.
    fn add_data(
        &mut self,
        id: u32,
        buf: &mut [u8],
        mut len: usize,
        limit: usize,
        had_control: bool,
        counts: &mut ArrayVec<MessageType, 96>,
    ) -> usize {
        let now = self.now;
        let unix = self.unix_micros();
        let mss = self.cfg.max_datagram_size as u64;
        let Some((ch, sw, _)) = self.parts(id) else {
            return len;
        };
        let estimate = data_estimate(mss, sw.cfg.chunk_size);
        match ch.cc.next_send_time(now, estimate) {
            Some(t) if t <= now => {}
            // Window full (wait for ACKs) or paced (the timer wakes us).
            _ => return len,
        }
        let wire = ch.wire;
        let cs = u64::from(sw.cfg.chunk_size);
        let Some(n) = sw.chunk_count() else {
            return len;
        };
        // The next chunk we can serve.
        let chunk = loop {
            let Some(c) = ch.pop_upload() else { return len };
            // A chunk already in flight is not sent twice (a peer re-requesting a hole while
            // our copy is on its way); if that copy is lost, loss detection queues it again.
            if c < n
                && sw.have.contains(c)
                && !ch.peer_have.contains(c)
                && !ch.in_flight.contains_key(&c)
            {
                break c;
            }
        };
        // Live chunks are all full-size.
        let chunk_len = if chunk + 1 < n || sw.live.is_some() {
            cs as usize
        } else {
            match sw.tree.content_len() {
                Some(total) => (total - (n - 1) * cs) as usize,
                None => {
                    ch.push_upload_front(chunk);
                    return len;
                }
            }
        };
        let retransmit = sw_lost(ch, chunk);
        // Which hashes the peer needs: the peaks until it acknowledged anything (R-5.6.2-a),
        // then uncles it cannot know from its ACKs/HAVEs (R-5.3-e) — and, on a first
        // transmission, not those of chunks already in flight to it (R-5.3-f).
        // On a first transmission, hashes already sent in datagrams still in flight are left
        // out too (R-5.3-f); the receiver holds a chunk whose hashes were lost until they
        // arrive again, and a retransmission carries every hash the acknowledgements do not
        // cover.
        let with_peaks = ch.peer_have.is_empty() && sw.live.is_none();
        let peer_have = &ch.peer_have;
        let in_flight = &ch.in_flight_map;
        // While peaks are still owed (the peer acknowledged nothing yet) every peak goes in
        // every DATA datagram: a receiver cannot check part of a peak set, so no optimism.
        let optimistic = !retransmit && !with_peaks;
        // Only nodes on the chunk's path (and peaks, while nothing is acknowledged) are asked
        // about, so the lowest known layer on the path answers for all of them.
        let from_acks = AckedHashes::new(peer_have).lowest_known_layer(chunk);
        let from_flight = if optimistic {
            AckedHashes::new(in_flight).lowest_known_layer(chunk)
        } else {
            None
        };
        let lowest = match (from_acks, from_flight) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let known = |b: Bin| lowest.is_some_and(|l| b.layer() >= l);
        // The nodes only: each hash is copied once, straight into the datagram.
        let mut hashes: ArrayVec<Bin, 130> = ArrayVec::new();
        let source = sw.tree.source();
        // A live stream's chunk is proven against its signed munro (RFC 7574 §6.1.2.3): the
        // munro's INTEGRITY and SIGNED_INTEGRITY first, unless the peer has a chunk under it
        // (or, on a first transmission, one is on its way), then the uncles below it.
        let mut signed = None;
        if let Some(l) = &sw.live {
            let Some(m) = l.munro_for(&sw.tree, chunk) else {
                return len;
            };
            let (a, b) = (
                m.bin.first_chunk().unwrap_or(0),
                m.bin.last_chunk().unwrap_or(0) + 1,
            );
            let has_munro =
                peer_have.intersects(a..b) || (optimistic && in_flight.intersects(a..b));
            let mut up = Bin::leaf(chunk).unwrap_or(Bin::NONE);
            let mut uncles: ArrayVec<Bin, 64> = ArrayVec::new();
            while m.bin.contains(up) && up != m.bin {
                let (Some(sib), Some(parent)) = (up.sibling(), up.parent()) else {
                    break;
                };
                if has_munro && known(sib) {
                    break;
                }
                if !source.has_node(sib) {
                    // We cannot prove this chunk (a hash we never verified): skip it.
                    return len;
                }
                let _ = uncles.try_push(sib);
                up = parent;
            }
            if !has_munro {
                hashes.push(m.bin);
                signed = Some(m);
            }
            hashes.extend(uncles.into_iter().rev());
        } else {
            match crate::merkle::integrity(source, chunk, with_peaks, known) {
                Ok(it) => hashes.extend(it.bins().take(130)),
                Err(_) => {
                    // We cannot prove this chunk (a leecher missing a hash): skip it.
                    return len;
                }
            }
        }
        // Writes the INTEGRITY of `bin` (and, for the signed munro, its SIGNED_INTEGRITY right
        // after it, R-6.1.2.3-b); `None` when they do not both fit.
        let write_hash = |bin: Bin, out: &mut [u8], counts: &mut ArrayVec<MessageType, 96>| {
            let k = write_integrity(source, &wire, bin, cs, out)?;
            let Some(m) = signed.filter(|m| m.bin == bin) else {
                let _ = counts.try_push(MessageType::Integrity);
                return Some(k);
            };
            let msg = Message::SignedIntegrity(crate::wire::SignedIntegrity {
                spec: node_spec(wire.addressing, bin, cs)?,
                timestamp: m.timestamp,
                signature: m.signature.clone(),
            });
            let k2 = msg.encode(&wire, out.get_mut(k..)?).ok()?;
            let _ = counts.try_push(MessageType::Integrity);
            let _ = counts.try_push(MessageType::SignedIntegrity);
            Some(k + k2)
        };
        let skip = match ch.hashes_ahead {
            Some(h) if h.chunk == chunk => h.sent.min(hashes.len()),
            _ => 0,
        };
        let int_len = 1 + wire.addressing.spec_len() + wire.hash_len;
        let signed_len = match signed {
            Some(m) if hashes.iter().skip(skip).any(|&b| b == m.bin) => {
                1 + wire.addressing.spec_len() + 8 + m.signature.len()
            }
            _ => 0,
        };
        let data_len = data_header_len(wire.addressing.spec_len()) + chunk_len;
        let need = (hashes.len() - skip) * int_len + signed_len + data_len;
        // A retransmission that carries hashes goes in datagrams no bigger than its DATA
        // alone, the hashes ahead in their own (R-5.3-c): if the first copy was dropped for
        // its size (a path MTU below ours), the same datagram would be dropped again and
        // again until the channel-wide fallback after several timeouts.
        // (With control messages already in the datagram, the chunk waits for the next one.)
        let limit = if retransmit && hashes.len() > skip {
            // At least 512 bytes: a short last chunk's DATA alone leaves no room for a hash.
            limit.min((4 + data_len).max(512))
        } else {
            limit
        };
        let room = limit.saturating_sub(len);
        let Some(spec) = ChunkSpec::chunk(wire.addressing, chunk, cs) else {
            return len;
        };
        if need > room {
            if had_control || room < int_len + signed_len {
                // Send the control messages now; the chunk goes in the next datagram.
                ch.push_upload_front(chunk);
                return len;
            }
            // R-5.3-c: hashes that do not fit with the DATA go first, in their own datagram.
            let mut sent = skip;
            for &bin in hashes.iter().skip(skip) {
                match write_hash(bin, &mut buf[len..limit], counts) {
                    Some(k) => len += k,
                    None => break,
                }
                sent += 1;
            }
            ch.hashes_ahead = Some(HashesAhead { chunk, sent });
            ch.push_upload_front(chunk);
            return len;
        }
        for &bin in hashes.iter().skip(skip) {
            if let Some(k) = write_hash(bin, &mut buf[len..limit], counts) {
                len += k;
            }
        }
        ch.hashes_ahead = None;
        // DATA header, then the chunk read by the store straight into the datagram.
        let start = len;
        buf[len] = MessageType::Data.code();
        len += 1;
        let sl = wire.addressing.spec_len();
        if spec
            .write(wire.addressing, &mut buf[len..len + sl])
            .is_err()
        {
            return start;
        }
        len += sl;
        buf[len..len + 8].copy_from_slice(&unix.to_be_bytes());
        len += 8;
        match sw.store.read_chunk(
            chunk,
            &mut buf[len..len + chunk_len.max(cs as usize).min(limit - len)],
        ) {
            Ok(k) if k == chunk_len => len += k,
            Ok(_) | Err(_) => {
                // The store cannot give this chunk back as it was verified: stop serving.
                sw.store_failed = true;
                let swarm = sw.handle;
                self.events.push_back(crate::event::Event::StoreFailure {
                    swarm,
                    error: crate::store::StoreError::Io {
                        message: alloc::format!("chunk {chunk} could not be read back"),
                    },
                });
                return start;
            }
        }
        let _ = counts.try_push(MessageType::Data);
        let bytes = (len - start) as u64;
        ch.send_seq += 1;
        if retransmit {
            ch.stats.retransmissions += 1;
        }
        ch.in_flight.insert(
            chunk,
            Sent {
                at: now,
                bytes,
                seq: ch.send_seq,
                retransmitted: retransmit,
                size: u16::try_from(len).unwrap_or(u16::MAX),
            },
        );
        ch.in_flight_map.insert(chunk);
        ch.sent_order.push(ch.send_seq, chunk);
        ch.lost.remove(chunk);
        ch.cc.on_sent(now, bytes);
        ch.stats.content_out += chunk_len as u64;
        ch.round_up += chunk_len as u64;
        if retransmit {
            self.stats.data_retransmissions += 1;
        }
        len
    }
}

/// Writes the messages naming chunks `a..=b` (one under range addressing, the minimal bins
/// otherwise, R-4.2-g) as far as they fit, in order; returns the first chunk left out (`None`:
/// all written). A range whose messages do not fit one datagram goes out over several.
fn push_ranged_partial(
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

/// Writes the INTEGRITY message of node `bin` at the start of `out`, its hash copied straight
/// from `source`; returns its length, or `None` (nothing written) if the node has no chunk
/// specification under the addressing, `source` lacks its hash, the hash is not the channel's
/// length, or `out` is too short.
fn write_integrity(
    source: &dyn crate::merkle::NodeHashes,
    wire: &crate::wire::WireParams,
    bin: Bin,
    chunk_size: u64,
    out: &mut [u8],
) -> Option<usize> {
    let spec = node_spec(wire.addressing, bin, chunk_size)?;
    let sl = wire.addressing.spec_len();
    let total = 1 + sl + wire.hash_len;
    let msg = out.get_mut(..total)?;
    spec.write(wire.addressing, &mut msg[1..1 + sl]).ok()?;
    if source.copy_node_hash(bin, &mut msg[1 + sl..])? != wire.hash_len {
        return None;
    }
    msg[0] = MessageType::Integrity.code();
    Some(total)
}

/// Whether `chunk` was declared lost before (its resend is a retransmission).
fn sw_lost(ch: &super::channel::Channel, chunk: u64) -> bool {
    ch.lost.contains(chunk)
}

/// The chunk specification of tree node `bin` under `addressing` (CHECKLIST Q8: the full
/// aligned range, not clipped).
fn node_spec(
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
