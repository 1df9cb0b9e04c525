//! Receiving: datagram demultiplexing, the handshake checks, and every message's effect.

use super::Endpoint;
use super::channel::{Role, State};
use super::member::HandshakeCert;
use crate::event::CloseReason;
use crate::time::Instant;
use crate::wire::{ChunkSpec, DecodeError, Message, MessageType, decode_datagram};
use bytes::Bytes;
use core::net::SocketAddr;

impl Endpoint {
    /// Processes one received datagram from `remote`. Never fails: bad input is dropped and
    /// counted, and may close the channel it arrived on.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        datagram: impl Into<Bytes>,
    ) {
        let datagram: Bytes = datagram.into();
        self.advance(now);
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += datagram.len() as u64;
        if datagram.len() < 4 {
            self.stats.drops.malformed += 1;
            return;
        }
        let wire_dest = u32::from_be_bytes([datagram[0], datagram[1], datagram[2], datagram[3]]);
        if wire_dest == 0 {
            self.handle_opening(remote, datagram);
            return;
        }
        let dest = self.id_cipher.decrypt(wire_dest);
        let Some(ch) = self.chan(dest) else {
            // R-12.1-a: silently drop datagrams for channels we never allocated.
            self.stats.drops.unknown_channel += 1;
            return;
        };
        if ch.remote != remote {
            // RFC 7574 §12.1: the channel ID is the only authenticator; a datagram for a known
            // channel from another address is dropped.
            self.stats.drops.wrong_address += 1;
            return;
        }
        let wire = ch.wire;
        let len = datagram.len() as u64;
        let Ok((_, messages)) = decode_datagram(datagram, &wire) else {
            self.stats.drops.malformed += 1;
            return;
        };
        {
            let now = self.now;
            let Some(ch) = self.chan_mut(dest) else {
                return;
            };
            ch.last_recv = now;
            ch.sent_since_recv = 0;
            ch.stats.datagrams_in += 1;
            ch.stats.bytes_in += len;
        }
        // R-3.1.1-v: the responder's handshake completes on the first datagram carrying its
        // channel ID: the peer's address is proven (return routability, R-12.1-b).
        let became_proven = {
            let ch = self.chan_mut(dest).expect("looked up above");
            if ch.role == Role::Responder && !ch.proven {
                ch.proven = true;
                ch.state = State::Established;
                true
            } else {
                false
            }
        };
        if became_proven {
            self.on_established(dest);
        }
        if !self.reply_cert_ok(dest, &messages) {
            return;
        }
        let mut first = true;
        let mut messages = messages;
        for m in &mut messages {
            match m {
                Ok(msg) => {
                    self.count_in(dest, msg.message_type());
                    let is_first = first;
                    first = false;
                    if !self.on_message(dest, msg, is_first) {
                        return;
                    }
                }
                Err(e) => {
                    self.on_decode_error(dest, e);
                    break;
                }
            }
        }
        self.flush_acks(dest);
        self.reschedule(dest);
    }

    /// For an initiator awaiting the reply, in a swarm with a membership policy: the reply
    /// datagram must carry the responder's certificate for its own address if the swarm
    /// requires it (docs/membership.md). Returns false when the channel was closed.
    fn reply_cert_ok(&mut self, id: u32, messages: &crate::wire::MessageIter) -> bool {
        let Some(ch) = self.chan(id) else {
            return false;
        };
        if ch.role != Role::Initiator || ch.state != State::Connecting {
            return true;
        }
        let (swarm, remote) = (ch.swarm, ch.remote);
        let has_policy = self
            .swarms
            .get(swarm)
            .and_then(Option::as_ref)
            .is_some_and(|s| s.cfg.membership.is_some());
        if !has_policy {
            return true;
        }
        let msgs: alloc::vec::Vec<_> = messages.clone().collect();
        if !matches!(msgs.first(), Some(Ok(Message::Handshake(_)))) {
            // Not the reply (it was lost, and this came after it): dropped as before by
            // `on_message` (R-3.1.1-m), without closing the channel.
            return true;
        }
        match self.handshake_cert(swarm, remote, msgs.iter()) {
            HandshakeCert::Refused => {
                self.close_channel(id, CloseReason::HandshakeRejected, false);
                false
            }
            HandshakeCert::Valid(c) => {
                if let Some(ch) = self.chan_mut(id) {
                    ch.pex.peer_cert = Some(c);
                }
                true
            }
            HandshakeCert::NotRequired => true,
        }
    }

    pub(super) fn count_in(&mut self, id: u32, t: MessageType) {
        self.stats.messages_in.add(t);
        if let Some(ch) = self.chan_mut(id) {
            ch.stats.messages_in.add(t);
        }
    }

    pub(super) fn on_decode_error(&mut self, _id: u32, _e: DecodeError) {
        // R-3-e: the invalid message and everything after it are dropped; what came before
        // has been processed. R-3.1.1-n: a bad datagram does not tear the channel down.
        self.stats.drops.truncated_processing += 1;
    }

    /// Handles one message on an existing channel. Returns false when the channel is gone.
    pub(super) fn on_message(&mut self, id: u32, msg: Message, is_first: bool) -> bool {
        let Some(ch) = self.chan(id) else {
            return false;
        };
        if ch.role == Role::Initiator && ch.state == State::Connecting {
            // R-3.1.1-m: until the reply arrives, only a datagram opening with our
            // handshake's reply counts.
            return match msg {
                Message::Handshake(h) if is_first => self.on_reply(id, h),
                _ => {
                    self.stats.drops.not_handshake += 1;
                    false
                }
            };
        }
        match msg {
            Message::Handshake(h) => {
                if h.is_closing() {
                    self.close_channel(id, CloseReason::RemoteClosed, false);
                    return false;
                }
                // A repeated reply, or a handshake on an open channel: nothing to do.
            }
            Message::Have(spec) => self.on_have(id, spec),
            Message::Ack(a) => self.on_ack(id, a.spec, a.delay),
            Message::Data(d) => return self.on_data(id, d),
            Message::Integrity(i) => {
                self.last_integrity = Some((id, i.spec, i.hash));
                return self.on_integrity(id, i.spec, &i.hash);
            }
            Message::SignedIntegrity(s) => return self.on_signed_integrity(id, &s),
            Message::Request(spec) => self.on_request(id, spec),
            Message::Cancel(spec) => {
                if let Some((a, b)) = self.spec_chunks(id, spec) {
                    if let Some(ch) = self.chan_mut(id) {
                        // R-12.6.7-a: a CANCEL for something never requested is harmless.
                        ch.up.cancel_upload(a, b);
                    }
                }
            }
            Message::Choke => self.on_choke(id),
            Message::Unchoke => {
                // R-12.6.9-a: an UNCHOKE without a CHOKE is ignored (it simply unchokes).
                if let Some(ch) = self.chan_mut(id) {
                    ch.choke.peer_choking = false;
                    ch.down.pick_exhausted = false;
                }
                self.fill_requests(id);
            }
            Message::PexReq => self.on_pex_req(id),
            Message::PexResV4(a) => self.on_pex_res(id, SocketAddr::V4(a)),
            Message::PexResV6(a) => self.on_pex_res(id, SocketAddr::V6(a)),
            // Checked against the swarm's tracker key; ignored without one (member.rs).
            Message::PexResCert(c) => self.on_pex_res_cert(id, c),
        }
        true
    }

    /// The chunks a specification names, clipped to what can exist; `None` for an empty spec.
    pub(crate) fn spec_chunks(&self, id: u32, spec: ChunkSpec) -> Option<(u64, u64)> {
        let ch = self.chan(id)?;
        let s = self.swarms.get(ch.swarm)?.as_ref()?;
        let (a, b) = spec.to_chunks(u64::from(s.cfg.chunk_size))?;
        // A live stream's peers may know newer munros than we do: no limit.
        let limit = match &s.live {
            Some(_) => 1 << 62,
            None => s.chunk_count().unwrap_or(1 << 62),
        };
        if a >= limit {
            return None;
        }
        Some((a, b.min(limit - 1)))
    }
}
