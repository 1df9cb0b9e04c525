//! Membership certificates on the wire (RFC 7574 §3.10, §12.2; docs/membership.md).
//!
//! - Our own certificate rides in every datagram that carries our HANDSHAKE (the opening one
//!   and the reply), as a PEX_REScert about ourselves.
//! - A peer's certificate about its own address, checked, is kept on its channel and relayed
//!   in our PEX answers in place of its bare address (§12.2.2: "Peer B can send the member
//!   certificate of Peer A to other peers").
//! - A certificate about another peer, checked, makes that address a PEX candidate.
//! - In a swarm that requires certificates, a handshake (opening or reply) without a valid
//!   certificate for the sender's own address is refused, and bare PEX addresses are ignored:
//!   we never talk to, nor send a handshake to, an address no valid certificate names
//!   (addresses the application adds itself — a tracker's list, the command line — are
//!   trusted to be tried, and are refused at the handshake if they cannot prove membership).

use super::Endpoint;
use crate::membership::{self, HeldCert};
use crate::time::Instant;
use crate::wire::{DecodeError, Message};
use bytes::Bytes;
use core::net::SocketAddr;

/// Certificates that fail before a channel's further ones are not checked at all (RFC 7574
/// §12.2.2: "check a few of the certificates sent and discard the rest if they are
/// defective").
pub(crate) const MAX_BAD_CERTS: u8 = 4;

/// What the handshake check decided.
pub(crate) enum HandshakeCert {
    /// The swarm has no membership policy, or does not require one and none was valid.
    NotRequired,
    /// The sender's valid certificate for its own address.
    Valid(HeldCert),
    /// Required and missing or invalid: refuse.
    Refused,
}

impl Endpoint {
    /// Looks for the sender's certificate about itself among the messages of a handshake
    /// datagram, for swarm slot `swarm`. Checks at most [`MAX_BAD_CERTS`] certificates.
    pub(crate) fn handshake_cert<'a>(
        &mut self,
        swarm: usize,
        remote: SocketAddr,
        msgs: impl Iterator<Item = &'a Result<Message, DecodeError>>,
    ) -> HandshakeCert {
        let unix = self.unix_micros() / 1_000_000;
        let Some(s) = self.swarms.get(swarm).and_then(Option::as_ref) else {
            return HandshakeCert::Refused;
        };
        let Some(m) = s.cfg.membership.as_ref() else {
            return HandshakeCert::NotRequired;
        };
        let mut tried = 0u8;
        let mut found = None;
        for msg in msgs {
            let Ok(Message::PexResCert(der)) = msg else {
                continue;
            };
            if tried >= MAX_BAD_CERTS {
                break;
            }
            tried += 1;
            match membership::check(der, &m.key, unix, &s.key, Some(remote)) {
                Ok(c) => {
                    found = Some(HeldCert {
                        der: der.clone(),
                        not_after: c.not_after,
                    });
                    break;
                }
                Err(_) => self.stats.drops.bad_certificates += 1,
            }
        }
        match (found, m.require) {
            (Some(c), _) => HandshakeCert::Valid(c),
            (None, false) => HandshakeCert::NotRequired,
            (None, true) => {
                self.stats.drops.uncertified += 1;
                HandshakeCert::Refused
            }
        }
    }

    /// A PEX_REScert on an established channel.
    pub(super) fn on_pex_res_cert(&mut self, id: u32, der: Bytes) {
        let unix = self.unix_micros() / 1_000_000;
        let Some((ch, sw, _)) = self.parts(id) else {
            return;
        };
        // Without a policy there is no key to check against: ignored, as before.
        let Some(m) = sw.cfg.membership.as_ref() else {
            return;
        };
        if ch.pex.peer_cert.as_ref().is_some_and(|h| h.der == der) {
            // Our copy of its own certificate (it rides with every handshake): checked.
            return;
        }
        if ch.pex.bad_certs >= MAX_BAD_CERTS {
            self.stats.drops.bad_certificates += 1;
            return;
        }
        match membership::check(&der, &m.key, unix, &sw.key, None) {
            Ok(c) if membership::same_addr(c.addr, ch.remote) => {
                // The peer's certificate about itself (a renewal): keep the one that lasts.
                if ch
                    .pex
                    .peer_cert
                    .as_ref()
                    .is_none_or(|h| h.not_after < c.not_after)
                {
                    ch.pex.peer_cert = Some(HeldCert {
                        der,
                        not_after: c.not_after,
                    });
                }
            }
            Ok(c) => self.learn_pex_addr(id, c.addr),
            Err(_) => {
                ch.pex.bad_certs += 1;
                self.stats.drops.bad_certificates += 1;
            }
        }
    }

    /// Our own certificate for swarm slot `swarm`, to send with a handshake.
    pub(crate) fn own_cert(&self, swarm: usize) -> Option<Bytes> {
        self.swarms
            .get(swarm)?
            .as_ref()?
            .cfg
            .membership
            .as_ref()?
            .own
            .clone()
    }

    /// Replaces our own membership certificate for `swarm` (a renewal from the tracker:
    /// certificates are short-lived). It goes out with later handshakes and to every peer
    /// now, so that they relay the fresh one. Does nothing for a swarm without a membership
    /// policy.
    pub fn set_membership_cert(&mut self, now: Instant, swarm: crate::SwarmHandle, der: Bytes) {
        self.advance(now);
        let Some(i) = self.slot_of(swarm) else { return };
        let Some(s) = self.swarms[i].as_mut() else {
            return;
        };
        let Some(m) = s.cfg.membership.as_mut() else {
            return;
        };
        m.own = Some(der.clone());
        let ids: alloc::vec::Vec<u32> = s.channels.iter().copied().collect();
        for id in ids {
            if let Some(ch) = self.chan_mut(id) {
                if ch.is_established() {
                    ch.pex.send_own_cert = true;
                    self.queue_send(id);
                }
            }
        }
    }
}
