//! A connection manager for one swarm: which peers to connect to, and which to drop.
//!
//! The engine connects where it is told ([`crate::Endpoint::connect`]); a [`ConnManager`]
//! decides where, from candidates learnt from the user, trackers and PEX. It is a pure data
//! structure (time is an argument, every map ordered), fed with what the engine reports
//! (`Event::PeerConnected`, `Event::PeerClosed`, bytes delivered) and asked for a
//! [`ConnPlan`] now and then. Its rules:
//!
//! - **A target number of peers** ([`ConnConfig::target`]): connect while fewer are open
//!   or opening, user candidates first, then tracker ones, then PEX ones (address order
//!   within a source, so runs are deterministic).
//! - **Replacement of peers that never deliver**: at the target, a peer connected for
//!   [`ConnConfig::deliver_grace`] that delivered nothing is dropped when an eligible
//!   candidate waits (at most one per plan, so a slow start does not empty the swarm).
//! - **Anti-eclipse** (RFC 7574 §12.2): at most [`ConnConfig::max_per_block`] peers from one
//!   address block (an IPv4 /24, an IPv6 /48), and at most [`ConnConfig::max_pex_share`]
//!   of the target learnt by PEX, so that a peer list forged by one attacker cannot fill
//!   every slot. The candidate table is bounded and gives way to PEX candidates first.
//! - **No reconnection to a peer that sent bad content** (or broke the protocol): banned
//!   for good (a bounded set; the oldest ban is forgotten first).
//! - **Backoff for peers that don't answer**: a failed or lost connection makes the
//!   candidate eligible again after [`ConnConfig::backoff_base`], doubling per failure up to
//!   [`ConnConfig::backoff_max`].

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};

use crate::event::CloseReason;
use crate::time::{Duration, Instant};

/// Where a candidate address was learnt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeerSource {
    /// Given by the user (command line, link): trusted most.
    User,
    /// From a tracker.
    Tracker,
    /// From another peer's PEX_RES: trusted least.
    Pex,
}

/// A [`ConnManager`]'s rules.
#[derive(Clone, Debug)]
pub struct ConnConfig {
    /// Peers to keep connected.
    pub target: usize,
    /// Peers at most from one /24 (IPv4) or /48 (IPv6). Loopback, private and link-local
    /// addresses are exempt (a LAN or one host is one block, and not where an eclipse
    /// attack on the Internet comes from).
    pub max_per_block: usize,
    /// The share of [`ConnConfig::target`] that peers learnt by PEX may take, in percent.
    pub max_pex_share: u8,
    /// How long a connected peer may deliver nothing before it may be replaced.
    pub deliver_grace: Duration,
    /// The first delay before trying a peer that failed again.
    pub backoff_base: Duration,
    /// The longest such delay.
    pub backoff_max: Duration,
    /// Candidates remembered.
    pub max_candidates: usize,
    /// Banned addresses remembered.
    pub max_banned: usize,
}

impl Default for ConnConfig {
    fn default() -> Self {
        Self {
            target: 8,
            max_per_block: 2,
            max_pex_share: 50,
            deliver_grace: Duration::from_secs(15),
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(600),
            max_candidates: 1024,
            max_banned: 4096,
        }
    }
}

/// What to do now: connect to these, close those.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnPlan {
    /// Addresses to connect to.
    pub connect: Vec<SocketAddr>,
    /// Connected peers to close (they never delivered and a candidate waits).
    pub drop: Vec<SocketAddr>,
}

/// Counters of what a [`ConnManager`] refused or did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnCounters {
    /// Candidates ignored because they are banned.
    pub banned_ignored: u64,
    /// Connections deferred because their address block was full.
    pub block_limited: u64,
    /// Connections deferred because PEX peers had their share.
    pub pex_limited: u64,
    /// Peers dropped for never delivering.
    pub replaced: u64,
    /// Peers banned (bad content, protocol violation).
    pub banned: u64,
}

#[derive(Clone, Copy, Debug)]
struct Candidate {
    source: PeerSource,
    eligible_at: Instant,
    failures: u32,
}

#[derive(Clone, Copy, Debug)]
struct Link {
    source: PeerSource,
    since: Instant,
    established: bool,
    delivered: u64,
    failures: u32,
}

/// The connection manager of one swarm. See the module docs.
#[derive(Clone, Debug)]
pub struct ConnManager {
    cfg: ConnConfig,
    candidates: BTreeMap<SocketAddr, Candidate>,
    links: BTreeMap<SocketAddr, Link>,
    banned: BTreeMap<SocketAddr, Instant>,
    counters: ConnCounters,
}

/// The address block of an address: IPv4 /24 or IPv6 /48 (IPv4-mapped IPv6 as IPv4).
pub fn address_block(addr: SocketAddr) -> (u8, u128) {
    let ip = match addr.ip() {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(a) => (4, u128::from(u32::from(a) >> 8)),
        IpAddr::V6(a) => (6, u128::from(a) >> 80),
    }
}

/// Loopback, private (RFC 1918, unique-local) and link-local addresses.
pub(crate) fn is_local(addr: SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(a) => a.is_loopback() || a.is_private() || a.is_link_local(),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
            None => {
                let seg = a.segments()[0];
                a.is_loopback() || (seg & 0xfe00) == 0xfc00 || (seg & 0xffc0) == 0xfe80
            }
        },
    }
}

impl ConnManager {
    /// An empty manager.
    pub fn new(cfg: ConnConfig) -> Self {
        Self {
            cfg,
            candidates: BTreeMap::new(),
            links: BTreeMap::new(),
            banned: BTreeMap::new(),
            counters: ConnCounters::default(),
        }
    }

    /// What it refused or did so far.
    pub fn counters(&self) -> &ConnCounters {
        &self.counters
    }

    /// Peers connected or being connected to.
    pub fn links(&self) -> usize {
        self.links.len()
    }

    /// Candidates waiting.
    pub fn candidates(&self) -> usize {
        self.candidates.len()
    }

    /// Whether `addr` is banned.
    pub fn is_banned(&self, addr: SocketAddr) -> bool {
        self.banned.contains_key(&addr)
    }

    /// Whether `addr` is connected or being connected to.
    pub fn is_linked(&self, addr: SocketAddr) -> bool {
        self.links.contains_key(&addr)
    }

    /// Offers a candidate. A better source than the one it was known from upgrades it.
    pub fn add_candidate(&mut self, now: Instant, addr: SocketAddr, source: PeerSource) {
        if addr.port() == 0 || addr.ip().is_unspecified() {
            return;
        }
        if self.banned.contains_key(&addr) {
            self.counters.banned_ignored += 1;
            return;
        }
        if let Some(l) = self.links.get_mut(&addr) {
            l.source = l.source.min(source);
            return;
        }
        if let Some(c) = self.candidates.get_mut(&addr) {
            c.source = c.source.min(source);
            return;
        }
        if self.candidates.len() >= self.cfg.max_candidates.max(1) {
            // Full: a candidate of this source or a worse one gives way (PEX ones first, the
            // highest address among them), or the newcomer is dropped.
            let victim = self
                .candidates
                .iter()
                .filter(|(_, c)| c.source >= source)
                .max_by_key(|(a, c)| (c.source, **a))
                .map(|(a, _)| *a);
            match victim {
                Some(v) => {
                    self.candidates.remove(&v);
                }
                None => return,
            }
        }
        self.candidates.insert(
            addr,
            Candidate {
                source,
                eligible_at: now,
                failures: 0,
            },
        );
    }

    /// The engine opened a channel to (or accepted one from) `addr`.
    pub fn on_connected(&mut self, now: Instant, addr: SocketAddr) {
        let cand = self.candidates.remove(&addr);
        let l = self.links.entry(addr).or_insert_with(|| Link {
            source: cand.map_or(PeerSource::User, |c| c.source),
            since: now,
            established: false,
            delivered: 0,
            failures: cand.map_or(0, |c| c.failures),
        });
        if !l.established {
            l.established = true;
            l.since = now;
        }
    }

    /// `addr` delivered `bytes` of verified content.
    pub fn on_delivered(&mut self, addr: SocketAddr, bytes: u64) {
        if let Some(l) = self.links.get_mut(&addr) {
            l.delivered = l.delivered.saturating_add(bytes);
            l.failures = 0;
        }
    }

    /// The channel to `addr` closed for `reason`.
    pub fn on_closed(&mut self, now: Instant, addr: SocketAddr, reason: CloseReason) {
        if reason == CloseReason::Duplicate {
            // The peer is still connected through its other channel.
            return;
        }
        let link = self.links.remove(&addr);
        match reason {
            CloseReason::IntegrityFailure | CloseReason::ProtocolViolation => {
                self.ban(now, addr);
            }
            // Closed here (replaced, or the swarm is done): not worth trying again soon.
            CloseReason::LocalClosed => {}
            _ => {
                let Some(l) = link else { return };
                // It answered and delivered: a short pause; otherwise back off further.
                let failures = if l.delivered > 0 { 1 } else { l.failures + 1 };
                let shift = failures.saturating_sub(1).min(16);
                let delay = self
                    .cfg
                    .backoff_base
                    .saturating_mul(1 << shift)
                    .min(self.cfg.backoff_max);
                if self.candidates.len() < self.cfg.max_candidates.max(1) {
                    self.candidates.insert(
                        addr,
                        Candidate {
                            source: l.source,
                            eligible_at: now + delay,
                            failures,
                        },
                    );
                }
            }
        }
    }

    fn ban(&mut self, now: Instant, addr: SocketAddr) {
        self.candidates.remove(&addr);
        self.links.remove(&addr);
        if !self.banned.contains_key(&addr) {
            self.counters.banned += 1;
            if self.banned.len() >= self.cfg.max_banned.max(1) {
                let oldest = self
                    .banned
                    .iter()
                    .min_by_key(|(a, t)| (**t, **a))
                    .map(|(a, _)| *a);
                if let Some(o) = oldest {
                    self.banned.remove(&o);
                }
            }
            self.banned.insert(addr, now);
        }
    }

    fn pex_cap(&self) -> usize {
        (self.cfg.target * usize::from(self.cfg.max_pex_share.min(100)) / 100).max(1)
    }

    /// Whether `addr` (from `source`) may be linked now, given the block and PEX limits.
    fn admissible(&mut self, addr: SocketAddr, source: PeerSource) -> bool {
        let block = address_block(addr);
        let same_block = if is_local(addr) {
            0
        } else {
            self.links
                .keys()
                .filter(|a| address_block(**a) == block)
                .count()
        };
        if same_block >= self.cfg.max_per_block.max(1) {
            self.counters.block_limited += 1;
            return false;
        }
        if source == PeerSource::Pex {
            let pex = self
                .links
                .values()
                .filter(|l| l.source == PeerSource::Pex)
                .count();
            if pex >= self.pex_cap() {
                self.counters.pex_limited += 1;
                return false;
            }
        }
        true
    }

    /// What to do now. The caller connects to [`ConnPlan::connect`] (reporting failures
    /// through [`ConnManager::on_closed`]) and closes [`ConnPlan::drop`].
    pub fn plan(&mut self, now: Instant) -> ConnPlan {
        let mut plan = ConnPlan::default();
        // Eligible candidates, best source first, then address order.
        let mut eligible: Vec<(PeerSource, SocketAddr)> = self
            .candidates
            .iter()
            .filter(|(_, c)| c.eligible_at <= now)
            .map(|(a, c)| (c.source, *a))
            .collect();
        eligible.sort();
        // At the target with a candidate waiting: replace one peer that never delivered.
        if self.links.len() >= self.cfg.target && !eligible.is_empty() {
            let idle = self
                .links
                .iter()
                .filter(|(_, l)| {
                    l.established
                        && l.delivered == 0
                        && now.saturating_duration_since(l.since) >= self.cfg.deliver_grace
                })
                .map(|(a, _)| *a)
                .next();
            if let Some(a) = idle {
                if let Some(l) = self.links.remove(&a) {
                    // Not banned: it may simply have had nothing yet. It waits its turn.
                    let failures = l.failures + 1;
                    let delay = self
                        .cfg
                        .backoff_base
                        .saturating_mul(1 << failures.min(16))
                        .min(self.cfg.backoff_max);
                    self.candidates.insert(
                        a,
                        Candidate {
                            source: l.source,
                            eligible_at: now + delay,
                            failures,
                        },
                    );
                }
                self.counters.replaced += 1;
                plan.drop.push(a);
            }
        }
        for (source, addr) in eligible {
            if self.links.len() >= self.cfg.target {
                break;
            }
            if !self.admissible(addr, source) {
                continue;
            }
            let failures = self.candidates.remove(&addr).map_or(0, |c| c.failures);
            self.links.insert(
                addr,
                Link {
                    source,
                    since: now,
                    established: false,
                    delivered: 0,
                    failures,
                },
            );
            plan.connect.push(addr);
        }
        plan
    }
}

#[cfg(test)]
mod tests;
