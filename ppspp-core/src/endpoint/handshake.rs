//! Channel setup and teardown (RFC 7574 §3.1.1, §7): the responder's checks on an opening
//! handshake, the initiator's checks on the reply, protocol-option negotiation, the half-open
//! bound, and the options we send.

use super::Endpoint;
use super::channel::{Channel, Role, State};
use super::member::HandshakeCert;
use super::output::Out;
use crate::event::{CloseReason, Event, PeerHandle};
use crate::hash::HashAlgorithm;
use crate::time::{Duration, Instant};
use crate::wire::{
    ChannelId, ChunkAddressing, ContentIntegrity, Handshake, Message, MessageType, ProtocolOptions,
    WireParams, decode_datagram,
};
use bytes::Bytes;
use core::net::SocketAddr;

/// The protocol version this implementation speaks (RFC 7574).
pub(crate) const VERSION: u8 = 1;

/// The integrity method every static swarm speaks.
pub(crate) const STATIC_INTEGRITY: ContentIntegrity = ContentIntegrity::MerkleTree;

/// Whether a channel in this state counts as half-open (responder, unproven).
pub(crate) fn is_half_open(ch: &Channel) -> bool {
    ch.role == Role::Responder && ch.state == State::Connecting
}

impl Endpoint {
    /// A datagram to channel 0: the first datagram of a handshake (RFC 7574 §3.1.1).
    pub(super) fn handle_opening(&mut self, remote: SocketAddr, datagram: Bytes) {
        let len = datagram.len() as u64;
        let Ok((_, mut messages)) = decode_datagram(datagram, &WireParams::default()) else {
            self.stats.drops.malformed += 1;
            return;
        };
        let hs = match messages.next() {
            Some(Ok(Message::Handshake(h))) => h,
            Some(Ok(_)) => {
                // R-12.1-a: a destination-0 datagram must open with a HANDSHAKE.
                self.stats.drops.not_handshake += 1;
                return;
            }
            _ => {
                self.stats.drops.malformed += 1;
                return;
            }
        };
        self.stats.messages_in.add(MessageType::Handshake);
        if hs.source_channel.is_zero() {
            // A closing handshake to channel 0 closes nothing.
            self.stats.drops.handshake_rejected += 1;
            return;
        }
        // R-8.2-d: a repeated handshake (our reply was lost) gets the same reply again — with
        // the map of what we have that rode with it (R-3.1.1-l), lost along with it. Without
        // that, a peer whose first reply was lost never learns what we hold, and never asks us
        // for anything.
        if let Some(&id) = self.handshakes.get(&(remote, hs.source_channel.0)) {
            // It passes the same checks as a first one (R-3.1.1-h), for the same swarm.
            let same_swarm = match self.check_opening(&hs.options) {
                Some((swarm_idx, _)) => self.chan(id).is_some_and(|c| c.swarm == swarm_idx),
                None => false,
            };
            if !same_swarm {
                self.stats.drops.handshake_rejected += 1;
                return;
            }
            let resend = match self.parts(id) {
                Some((ch, sw, _)) if !ch.proven => {
                    ch.hs.send_handshake = true;
                    ch.stats.bytes_in += len;
                    ch.ann.pending_haves = sw.have.clone();
                    ch.ann.haves_due = None;
                    true
                }
                _ => false,
            };
            if resend {
                self.queue_send(id);
            }
            return;
        }
        let Some((swarm_idx, wire)) = self.check_opening(&hs.options) else {
            // R-3.1.1-h: any failed check gets no answer at all (the source may be spoofed).
            self.stats.drops.handshake_rejected += 1;
            return;
        };
        // The rest of the datagram: a membership certificate may have to be found in it
        // before anything is allocated (docs/membership.md).
        let rest: alloc::vec::Vec<_> = messages.collect();
        let peer_cert = match self.handshake_cert(swarm_idx, remote, rest.iter()) {
            HandshakeCert::Refused => return,
            HandshakeCert::Valid(c) => Some(c),
            HandshakeCert::NotRequired => None,
        };
        // Bound the half-open state a flood of spoofed handshakes can create.
        self.evict_half_open();
        let Ok(id) = self.alloc_channel(swarm_idx, remote, Role::Responder, wire) else {
            self.stats.drops.handshake_rejected += 1;
            return;
        };
        self.handshakes.insert((remote, hs.source_channel.0), id);
        let have = self.swarms[swarm_idx]
            .as_ref()
            .map(|s| s.have.clone())
            .unwrap_or_default();
        self.half_open.push_back(id);
        {
            let ch = self.chan_mut(id).expect("just allocated");
            ch.peer_id = hs.source_channel.0;
            ch.hs.send_handshake = true;
            ch.ann.pending_haves = have;
            // libswift drops handshakes carrying Chunk Size: answer in kind (docs/conformance.md, deviations).
            ch.hs.reply_with_chunk_size = hs.options.chunk_size.is_some();
            ch.note_supported(hs.options.supported_messages.as_ref());
            ch.stats.datagrams_in += 1;
            ch.stats.bytes_in += len;
            ch.stats.messages_in.add(MessageType::Handshake);
            ch.pex.peer_cert = peer_cert;
        }
        // R-3.1.1-f: the first datagram may carry small messages such as HAVE. Nothing that
        // asks for an answer is honoured before the handshake completes (R-12.6.11-a).
        let wire = self.chan(id).map(|c| c.wire).unwrap_or(wire);
        let _ = wire;
        for m in rest {
            match m {
                Ok(Message::Have(spec)) => {
                    self.count_in(id, MessageType::Have);
                    self.on_have(id, spec);
                }
                Ok(other) => self.count_in(id, other.message_type()),
                Err(_) => {
                    self.stats.drops.truncated_processing += 1;
                    break;
                }
            }
        }
        self.queue_send(id);
        self.reschedule(id);
    }

    /// The responder's checks on an opening handshake. Returns the swarm and the channel's
    /// wire parameters, or `None` to stay silent.
    pub(super) fn check_opening(&self, o: &ProtocolOptions) -> Option<(usize, WireParams)> {
        // R-7.2-a, R-7.3-a: Version and Minimum Version; negotiate min/max.
        let max = o.version?;
        let min = o.min_version.unwrap_or(max);
        if max < VERSION || min > VERSION || min > max {
            return None;
        }
        // R-3.1.1-c, R-7.4-a: the initiator must name the swarm.
        let id = o.swarm_id.as_ref()?;
        let &idx = self.swarm_by_id.get(id.as_ref())?;
        let s = self.swarms.get(idx)?.as_ref()?;
        Self::options_match(o, &s.cfg)?;
        Some((idx, Self::wire_params(&s.cfg)))
    }

    /// What decoding a swarm's channels needs: addressing, hash and signature lengths, and
    /// the chunk size.
    pub(crate) fn wire_params(cfg: &crate::config::SwarmConfig) -> WireParams {
        WireParams::new(cfg.addressing, cfg.hash)
            .with_chunk_size(cfg.chunk_size)
            .with_signature_len(cfg.live.as_ref().map_or(0, |l| l.signature_len()))
    }

    /// Whether the swarm-metadata options present agree with the swarm. Absent options take
    /// the RFC defaults (Table 8), except Chunk Size, which libswift never sends (docs/conformance.md, deviations).
    pub(super) fn options_match(
        o: &ProtocolOptions,
        cfg: &crate::config::SwarmConfig,
    ) -> Option<()> {
        match &cfg.live {
            None => {
                if o.integrity.unwrap_or(STATIC_INTEGRITY) != STATIC_INTEGRITY {
                    return None;
                }
                if o.merkle_hash.unwrap_or(HashAlgorithm::Sha256) != cfg.hash {
                    return None;
                }
            }
            Some(l) => {
                // R-6.1-b, R-7.7-a: the Unified Merkle Tree under the key's algorithm (a
                // live swarm must say so: the static default does not apply). libswift
                // sends no Merkle hash function for live swarms: SHA-1 is then assumed.
                if o.integrity != Some(ContentIntegrity::UnifiedMerkleTree) {
                    return None;
                }
                if o.live_signature.is_some_and(|a| a != l.id.algorithm()) {
                    return None;
                }
                if o.merkle_hash.unwrap_or(HashAlgorithm::Sha1) != cfg.hash {
                    return None;
                }
            }
        }
        if o.addressing.unwrap_or(ChunkAddressing::ChunkRange32) != cfg.addressing {
            return None;
        }
        if o.chunk_size.is_some_and(|cs| cs != cfg.chunk_size) {
            return None;
        }
        Some(())
    }

    pub(super) fn evict_half_open(&mut self) {
        let mut live = 0;
        self.half_open.retain(|&id| {
            let keep = self
                .channels
                .get((id & 0xFFFF) as usize)
                .and_then(Option::as_ref)
                .is_some_and(|c| c.id == id && is_half_open(c));
            live += usize::from(keep);
            keep
        });
        while live >= self.cfg.max_half_open {
            let Some(oldest) = self.half_open.pop_front() else {
                break;
            };
            self.stats.drops.evicted_half_open += 1;
            self.close_channel(oldest, CloseReason::Evicted, false);
            live -= 1;
        }
    }

    /// The initiator's checks on the responder's reply (R-3.1.1-m to R-3.1.1-s).
    pub(super) fn on_reply(&mut self, id: u32, h: Handshake) -> bool {
        let Some(ch) = self.chan(id) else {
            return false;
        };
        let swarm = ch.swarm;
        let ok = !h.is_closing() && {
            let o = &h.options;
            let s = self.swarms.get(swarm).and_then(Option::as_ref);
            let version_ok = o.version.is_none_or(|v| v >= VERSION)
                && o.min_version.is_none_or(|m| m <= VERSION);
            let id_ok = match (&o.swarm_id, s) {
                (Some(got), Some(s)) => got.as_ref() == s.key.as_slice(),
                (None, Some(_)) => true,
                (_, None) => false,
            };
            version_ok && id_ok && s.is_some_and(|s| Self::options_match_reply(o, &s.cfg))
        };
        if !ok {
            // R-3.1.1-o: a failed check on the reply; say goodbye if the peer sent a channel.
            let notify = !h.source_channel.is_zero();
            if let Some(ch) = self.chan_mut(id) {
                ch.peer_id = h.source_channel.0;
            }
            self.stats.drops.handshake_rejected += 1;
            self.close_channel(id, CloseReason::HandshakeRejected, notify);
            return false;
        }
        {
            let ch = self.chan_mut(id).expect("checked");
            ch.peer_id = h.source_channel.0;
            ch.note_supported(h.options.supported_messages.as_ref());
            ch.state = State::Established;
            ch.proven = true;
            ch.hs.hs_deadline = None;
            ch.hs.send_handshake = false;
            // R-3.1.1-s, R-12.1.2-a: the third datagram proves our address to the responder
            // and must go out now: a keep-alive if nothing else does (REQUEST, HAVE, PEX_REQ).
            ch.send_keepalive = true;
        }
        self.on_established(id);
        self.queue_send(id);
        true
    }

    /// Of channel `id` and another established channel to the same peer in its swarm, the one
    /// to close: the one whose (smaller, larger) pair of channel IDs is larger.
    fn duplicate_loser(&self, id: u32) -> Option<u32> {
        let ch = self.chan(id)?;
        let other = self.channel_to(ch.swarm, ch.remote, |o| o.id != id && o.is_established())?;
        let key = |c: &Channel| (c.wire_id.min(c.peer_id), c.wire_id.max(c.peer_id));
        Some(if key(ch) < key(other) { other.id } else { id })
    }

    /// A channel of swarm `swarm_idx` to `remote` that satisfies `pred`.
    pub(super) fn channel_to(
        &self,
        swarm_idx: usize,
        remote: SocketAddr,
        pred: impl Fn(&Channel) -> bool,
    ) -> Option<&Channel> {
        let sw = self.swarms.get(swarm_idx)?.as_ref()?;
        sw.channels
            .iter()
            .filter_map(|&o| self.chan(o))
            .find(|o| o.remote == remote && pred(o))
    }

    /// Options in a reply must agree when present; the responder may omit any.
    pub(super) fn options_match_reply(
        o: &ProtocolOptions,
        cfg: &crate::config::SwarmConfig,
    ) -> bool {
        let integrity = match &cfg.live {
            None => STATIC_INTEGRITY,
            Some(_) => ContentIntegrity::UnifiedMerkleTree,
        };
        o.integrity.is_none_or(|i| i == integrity)
            && cfg
                .live
                .as_ref()
                .is_none_or(|l| o.live_signature.is_none_or(|a| a == l.id.algorithm()))
            && o.merkle_hash.is_none_or(|m| m == cfg.hash)
            && o.addressing.is_none_or(|a| a == cfg.addressing)
            && o.chunk_size.is_none_or(|c| c == cfg.chunk_size)
    }

    /// The handshake completed on channel `id`.
    pub(crate) fn on_established(&mut self, id: u32) {
        // Both ends opened a channel to each other at once (peers that learnt of each other
        // from a tracker or a command line): two channels to one peer split its requests,
        // count it twice among the unchoked and double every HAVE. Both ends see the same two
        // pairs of channel IDs and keep the channel whose pair is smaller.
        if let Some(loser) = self.duplicate_loser(id) {
            self.close_channel(loser, CloseReason::Duplicate, true);
            if loser == id {
                return;
            }
        }
        let Some((ch, sw, _)) = self.parts(id) else {
            return;
        };
        // Announce what we have (R-3.2-a). A responder already queued it with its reply
        // (R-3.1.1-l: HAVE may ride with the handshake, within the amplification bound).
        if ch.role == Role::Initiator {
            let have = sw.have.clone();
            ch.ann.pending_haves.union_with(&have);
        }
        if sw.cfg.pex && ch.role == Role::Initiator {
            ch.pex.send_pex_req = true;
        }
        sw.add_avail(&ch.peer_have, 1);
        sw.retry.remove(&ch.remote);
        let (swarm, remote) = (sw.handle, ch.remote);
        self.events.push_back(Event::PeerConnected {
            swarm,
            peer: PeerHandle(id),
            remote,
        });
        self.fill_requests(id);
        self.queue_send(id);
    }

    pub(super) fn handshake_options(&self, id: u32) -> ProtocolOptions {
        let ch = self.chan(id).expect("caller checked");
        let s = self.swarms[ch.swarm]
            .as_ref()
            .expect("channel's swarm exists");
        let initiator = ch.role == Role::Initiator;
        let chunk_size = if initiator {
            // after unanswered handshakes with option 9, retry without it.
            ch.hs.hs_attempts < self.cfg.chunk_size_fallback_after
        } else {
            ch.hs.reply_with_chunk_size
        };
        let live = s.live.as_ref().map(|l| &l.cfg);
        ProtocolOptions {
            version: Some(VERSION),
            min_version: initiator.then_some(VERSION),
            swarm_id: initiator.then(|| Bytes::copy_from_slice(&s.key)),
            integrity: Some(match live {
                None => STATIC_INTEGRITY,
                Some(_) => ContentIntegrity::UnifiedMerkleTree,
            }),
            // A live swarm with SHA-1 leaves it implied, as libswift does.
            merkle_hash: (live.is_none() || s.cfg.hash != HashAlgorithm::Sha1)
                .then_some(s.cfg.hash),
            // R-7.7-a, R-7.9-a/c: the key's algorithm, and no discarding (all ones).
            live_signature: live.map(|l| l.id.algorithm()),
            live_discard_window: live.map(|l| l.window.unwrap_or(u64::MAX)),
            addressing: Some(s.cfg.addressing),
            // RFC 7574 §7.10 asks for Supported Messages only from peers that support a proper
            // subset; we support every message, and libswift misparses the option (it skips the
            // wrong number of bytes and loses what follows), so it is not sent.
            supported_messages: None,
            chunk_size: chunk_size.then_some(s.cfg.chunk_size),
        }
    }
}

/// Where the opening handshake is (RFC 7574 §3.1.1).
#[derive(Debug)]
pub(crate) struct HandshakeState {
    pub(crate) hs_attempts: u32,
    pub(crate) hs_deadline: Option<Instant>,
    pub(crate) send_handshake: bool,
    pub(crate) reply_with_chunk_size: bool,
}

impl HandshakeState {
    pub(crate) fn new(role: Role) -> Self {
        Self {
            hs_attempts: 0,
            hs_deadline: None,
            send_handshake: role == Role::Initiator,
            reply_with_chunk_size: true,
        }
    }
}

/// Writes our HANDSHAKE (the opening one, or the reply) first in the datagram, and arms the
/// initiator's retransmission with backoff (R-3.1.1-r). Returns false when it does not fit.
pub(super) fn write(
    ch: &mut Channel,
    out: &mut Out<'_>,
    options: ProtocolOptions,
    timeout: Duration,
) -> bool {
    let m = Message::Handshake(Handshake {
        source_channel: ChannelId(ch.wire_id),
        options,
    });
    if !out.push(&m) {
        return false;
    }
    ch.hs.send_handshake = false;
    if ch.role == Role::Initiator {
        ch.hs.hs_attempts += 1;
        let backoff = timeout * 2u32.pow(ch.hs.hs_attempts.min(8) - 1);
        ch.hs.hs_deadline = Some(out.now + backoff);
    }
    true
}
