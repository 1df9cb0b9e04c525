//! Peer exchange (RFC 7574 §3.10): answering PEX_REQ, learning addresses from PEX_RES,
//! connecting to them, and reconnecting to lost peers with backoff.

use super::Endpoint;
use super::channel::{Channel, Role};
use super::output::Out;
use super::swarm::Swarm;
use crate::event::CloseReason;
use crate::event::Event;
use crate::membership::HeldCert;
use crate::time::{Duration, Instant};
use crate::wire::{Message, MessageType};
use alloc::vec::Vec;
use bytes::Bytes;
use core::net::SocketAddr;

/// Private, unique-local, link-local, loopback or multicast addresses (R-8.13-d).
pub(crate) fn is_private(addr: SocketAddr) -> bool {
    match addr {
        SocketAddr::V4(a) => {
            let ip = a.ip();
            ip.is_private() || ip.is_loopback() || ip.is_link_local() || ip.is_multicast()
        }
        SocketAddr::V6(a) => {
            let ip = a.ip();
            let seg = ip.segments()[0];
            ip.is_loopback()
                || ip.is_multicast()
                || (seg & 0xfe00) == 0xfc00
                || (seg & 0xffc0) == 0xfe80
        }
    }
}

impl Endpoint {
    pub(super) fn on_pex_req(&mut self, id: u32) {
        let now = self.now;
        let Some(ch) = self.chan(id) else { return };
        // R-12.6.11-a: not before the handshake completed; answer at most once a second.
        if !ch.is_established()
            || ch
                .pex
                .pex_answered_at
                .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        let Some(s) = self.swarms.get(ch.swarm).and_then(Option::as_ref) else {
            return;
        };
        if !s.cfg.pex {
            return;
        }
        let requester_private = is_private(ch.remote);
        let member = s.cfg.membership.as_ref();
        let unix = self.unix_micros() / 1_000_000;
        let mut out = Vec::new();
        for &o in &s.channels {
            if o == id {
                continue;
            }
            let Some(oc) = self.chan(o) else { continue };
            // R-3.10-c: only peers we exchanged messages with in the last 60 s.
            if !oc.is_established()
                || now.saturating_duration_since(oc.last_recv) > Duration::from_secs(60)
            {
                continue;
            }
            // R-8.13-d: no private addresses to a public requester.
            if !requester_private && is_private(oc.remote) {
                continue;
            }
            // A peer's certificate, while valid, goes in place of its address (RFC 7574
            // §3.10); a swarm that requires certificates never sends a bare address.
            let cert = oc.pex.peer_cert.as_ref().filter(|c| unix <= c.not_after);
            out.push(match (cert, member) {
                (Some(c), Some(_)) => PexReply::Cert(c.der.clone()),
                (_, Some(m)) if m.require => continue,
                _ => PexReply::Addr(oc.remote),
            });
            if out.len() >= 16 {
                break;
            }
        }
        if let Some(ch) = self.chan_mut(id) {
            ch.pex.pex_answered_at = Some(now);
            ch.pex.pex_replies = out;
        }
        self.queue_send(id);
    }

    /// A bare address (PEX_RESv4/v6).
    pub(super) fn on_pex_res(&mut self, id: u32, addr: SocketAddr) {
        let required = self.chan(id).is_some_and(|ch| {
            self.swarms
                .get(ch.swarm)
                .and_then(Option::as_ref)
                .and_then(|s| s.cfg.membership.as_ref())
                .is_some_and(|m| m.require)
        });
        if required {
            // docs/membership.md: a private swarm learns addresses only with a certificate.
            self.stats.drops.uncertified += 1;
            return;
        }
        self.learn_pex_addr(id, addr);
    }

    /// An address learnt by PEX (bare, or from a checked certificate).
    pub(super) fn learn_pex_addr(&mut self, id: u32, addr: SocketAddr) {
        let connected = self.chan(id).is_some_and(|ch| {
            self.swarms
                .get(ch.swarm)
                .and_then(Option::as_ref)
                .is_some_and(|s| {
                    s.channels
                        .iter()
                        .any(|&o| self.chan(o).is_some_and(|c| c.remote == addr))
                })
        });
        let Some((ch, sw, _)) = self.parts(id) else {
            return;
        };
        if !sw.cfg.pex || !ch.is_established() || addr.port() == 0 {
            return;
        }
        let handle = sw.handle;
        if !sw.tried.contains(&addr) && sw.pex_candidates.len() < 256 {
            sw.pex_candidates.insert(addr);
        }
        // Reported once per address new to the swarm: not for peers we are connected to,
        // tried, or already reported (up to DISCOVERED_MAX remembered addresses).
        let known = connected || sw.tried.contains(&addr) || sw.discovered.contains(&addr);
        if known {
            return;
        }
        if sw.discovered.len() < DISCOVERED_MAX {
            sw.discovered.insert(addr);
        }
        self.events.push_back(Event::PeerDiscovered {
            swarm: handle,
            remote: addr,
        });
    }

    /// Connects to peers learnt by PEX while the swarm has room, and asks for more peers now
    /// and then.
    pub(super) fn pex_connect(&mut self, idx: usize) {
        let now = self.now;
        let Some(s) = self.swarms[idx].as_mut() else {
            return;
        };
        if s.complete {
            s.retry.clear();
            return;
        }
        let room = s.cfg.max_peers.saturating_sub(s.channels.len());
        let mut targets = Vec::new();
        // Anti-eclipse (RFC 7574 §12.2): the address blocks of the peers we have (or are
        // connecting to), local addresses exempt; and how many of them PEX gave us.
        let chans: Vec<&Channel> = s
            .channels
            .iter()
            .filter_map(|&id| {
                self.channels
                    .get((id & 0xFFFF) as usize)?
                    .as_deref()
                    .filter(|c| c.id == id)
            })
            .collect();
        let mut blocks: Vec<(u8, u128)> = chans
            .iter()
            .map(|c| c.remote)
            .filter(|a| !super::connmgr::is_local(*a))
            .map(super::connmgr::address_block)
            .collect();
        // §12.2.3: part of the connections stay for peers from elsewhere (the tracker, the
        // user): PEX fills at most PEX_MAX_SHARE percent of `max_peers`.
        let pex_cap = (s.cfg.max_peers * PEX_MAX_SHARE / 100).max(1);
        let pex_room = pex_cap.saturating_sub(chans.iter().filter(|c| c.from_pex).count());
        // Lost peers whose retry time has come (address order: deterministic). Each attempt
        // doubles the next delay; an established channel forgets the entry.
        let due: Vec<SocketAddr> = s
            .retry
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(&a, _)| a)
            .take(room.min(4))
            .collect();
        for a in due {
            if let Some((at, attempts)) = s.retry.get_mut(&a) {
                *attempts = attempts.saturating_add(1);
                *at = now + RETRY_BASE * (1u32 << (*attempts).min(RETRY_MAX_SHIFT));
            }
            targets.push(a);
        }
        if !s.cfg.pex {
            let handle = s.handle;
            for a in targets {
                let _ = self.connect(now, handle, a);
            }
            return;
        }
        // Candidates at random, not in address order: an attacker choosing low addresses
        // would else be tried first. At most PEX_MAX_PER_BLOCK peers from one block: many
        // addresses of one attacker's network cannot fill the swarm's slots.
        let retries = targets.len();
        let mut from_pex = 0;
        while targets.len() < room.min(4) && from_pex < pex_room && !s.pex_candidates.is_empty() {
            let i = self.rng.gen_range(0..s.pex_candidates.len() as u64) as usize;
            let Some(&a) = s.pex_candidates.iter().nth(i) else {
                break;
            };
            s.pex_candidates.remove(&a);
            if !super::connmgr::is_local(a) {
                let b = super::connmgr::address_block(a);
                if blocks.iter().filter(|x| **x == b).count() >= PEX_MAX_PER_BLOCK {
                    self.stats.drops.pex_block_limited += 1;
                    continue;
                }
                blocks.push(b);
            }
            if s.tried.insert(a) {
                targets.push(a);
                from_pex += 1;
            }
        }
        let ask = room > 0 && now >= s.next_pex;
        if ask {
            s.next_pex = now + Duration::from_secs(15);
        }
        let handle = s.handle;
        let members: Vec<u32> = s.channels.iter().copied().collect();
        for (i, a) in targets.into_iter().enumerate() {
            if let Ok(p) = self.connect(now, handle, a) {
                if let Some(ch) = self.chan_mut(p.0) {
                    ch.from_pex = i >= retries;
                }
            }
        }
        if ask {
            for id in members {
                if let Some(ch) = self.chan_mut(id) {
                    if ch.is_established() && ch.role == Role::Initiator {
                        ch.pex.send_pex_req = true;
                        self.queue_send(id);
                    }
                }
            }
        }
    }
}

/// Peer exchange on one channel.
#[derive(Debug, Default)]
pub(crate) struct PexState {
    pub(crate) send_pex_req: bool,
    pub(crate) pex_replies: Vec<PexReply>,
    pub(crate) pex_answered_at: Option<Instant>,
    /// The peer's checked membership certificate for its own address (docs/membership.md).
    pub(crate) peer_cert: Option<HeldCert>,
    /// Certificates from this peer that failed their checks (bounded work, §12.2.2).
    pub(crate) bad_certs: u8,
    /// Our own certificate was renewed: send it to this peer.
    pub(crate) send_own_cert: bool,
}

/// One entry of a PEX answer.
#[derive(Clone, Debug)]
pub(crate) enum PexReply {
    /// A bare address: PEX_RESv4 or PEX_RESv6.
    Addr(SocketAddr),
    /// A membership certificate: PEX_REScert.
    Cert(Bytes),
}

impl PexReply {
    /// The message type this entry goes out as.
    pub(crate) fn message_type(&self) -> MessageType {
        match self {
            Self::Addr(SocketAddr::V4(_)) => MessageType::PexResV4,
            Self::Addr(SocketAddr::V6(_)) => MessageType::PexResV6,
            Self::Cert(_) => MessageType::PexResCert,
        }
    }
}

/// Writes a pending PEX_REQ and as many PEX_RES as fit.
pub(super) fn write(ch: &mut Channel, out: &mut Out<'_>) {
    if ch.pex.send_pex_req && out.push(&Message::PexReq) {
        ch.pex.send_pex_req = false;
    }
    while let Some(r) = ch.pex.pex_replies.last() {
        let m = match r {
            PexReply::Addr(SocketAddr::V4(a)) => Message::PexResV4(*a),
            PexReply::Addr(SocketAddr::V6(a)) => Message::PexResV6(*a),
            PexReply::Cert(c) => Message::PexResCert(c.clone()),
        };
        if !out.push(&m) {
            break;
        }
        ch.pex.pex_replies.pop();
    }
}

/// A peer lost while we still download is tried again later, with backoff (it may restart; a
/// seeder that did is otherwise never found again). Not a peer that sent bad content or broke
/// the protocol, nor one we closed ourselves.
pub(super) fn remember_lost(s: &mut Swarm, ch: &Channel, reason: CloseReason, now: Instant) {
    let lost = matches!(
        reason,
        CloseReason::Dead | CloseReason::RemoteClosed | CloseReason::Evicted
    ) || (reason == CloseReason::HandshakeTimeout && ch.role == Role::Initiator);
    if lost && !s.complete && (ch.is_established() || ch.role == Role::Initiator) {
        let attempts = s.retry.get(&ch.remote).map_or(0, |r| r.1);
        if s.retry.len() < RETRY_MAX || s.retry.contains_key(&ch.remote) {
            let delay = RETRY_BASE * (1u32 << attempts.min(RETRY_MAX_SHIFT));
            s.retry.insert(ch.remote, (now + delay, attempts));
        }
    }
}

/// The first reconnection delay to a lost peer (doubling with each attempt, up to
/// `RETRY_BASE << RETRY_MAX_SHIFT`).
const RETRY_BASE: Duration = Duration::from_secs(30);
/// Doublings of [`RETRY_BASE`] at most (30 s × 64 = 32 min).
const RETRY_MAX_SHIFT: u8 = 6;
/// The most lost peers a swarm remembers for reconnection.
const RETRY_MAX: usize = 256;
/// Peers a swarm connects to by PEX from one address block (an IPv4 /24, an IPv6 /48), counting
/// those it has: anti-eclipse (RFC 7574 §12.2). Local addresses are exempt.
pub const PEX_MAX_PER_BLOCK: usize = 2;
/// The share of a swarm's `max_peers`, in percent, that connections to addresses learnt by
/// PEX may fill (RFC 7574 §12.2.3: part of the connections stay for peers from the tracker
/// or the user).
pub const PEX_MAX_SHARE: usize = 50;
/// How many addresses learnt by PEX a swarm remembers having reported.
const DISCOVERED_MAX: usize = 4096;
