//! A PPSTP tracker's state (RFC 7846 §2.3): peer registrations, swarms and peer lists.
//!
//! [`Tracker::handle`] takes a request body, the time and the address it came from, and
//! returns the response; nothing else happens (no clock, no socket, no randomness), so the
//! `ppspp tracker` HTTP server and the simulator share it.
//!
//! - **Soft state.** A registration lives [`Limits::track_timeout`] after the peer's last
//!   request (the "track timer"); expired registrations are swept at each request and by
//!   [`Tracker::expire`]. A peer that leaves its last swarm is deregistered at once.
//! - **Per-peer-ID state machine.** CONNECT registers; FIND and STAT_REPORT from an unknown
//!   peer ID are 03 Forbidden (§2.3.2 B); a CONNECT whose every action is invalid (LEAVE of a
//!   swarm not joined) is 03 and a new registration is dropped (§2.3.2 A). A peer ID belongs
//!   to the source address that registered it: requests for it from elsewhere are 03.
//! - **Peer lists.** FIND (and CONNECT as a LEECH) returns up to `peer_count` (at most
//!   [`crate::proto::MAX_PEER_COUNT`]) other members: seeders first, then leechers that
//!   reported downloaded bytes, then the rest, taken from a window of each set that starts
//!   at a hashed position per request: a flash crowd is spread over all members instead of
//!   being sent to the same few, and a request costs O(`peer_count`), not O(swarm).
//! - **Addresses.** A peer's advertised address counts only if it is the address its request
//!   came from (or unspecified, which means exactly that): otherwise anyone could point a
//!   swarm at a victim. [`Limits::trust_advertised`] lifts this behind a proxy.
//! - **Bounded.** Registrations per source, per swarm and in total, swarms, swarms per peer,
//!   addresses per peer, identifier lengths and rate buckets are all capped; when full, the
//!   least recently seen registration goes first (the same source's own, if it is the source
//!   that is over its cap). Each source (an IPv4 address or an IPv6 /64) has a token bucket;
//!   over it, requests get 05 Service Unavailable without being decoded.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

use crate::proto::{
    Action, AddrType, Connect, ErrorCode, MAX_PEER_COUNT, PeerAddr, PeerInfo, PeerMode, PeerNum,
    Request, RequestBody, Response, ResponseType, StreamStats, SwarmResult,
};

/// A tracker's limits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// How long a registration lives without a request from its peer.
    pub track_timeout: Duration,
    /// Registrations in total.
    pub max_peers: usize,
    /// Members of one swarm.
    pub max_peers_per_swarm: usize,
    /// Swarms.
    pub max_swarms: usize,
    /// Registrations from one source (IPv4 address or IPv6 /64).
    pub max_peers_per_source: usize,
    /// Swarms one peer is in.
    pub max_swarms_per_peer: usize,
    /// Addresses kept per peer.
    pub max_addrs_per_peer: usize,
    /// Peers returned when the request has no `peer_num`.
    pub default_peer_count: u32,
    /// The longest peer ID, swarm ID or transaction ID accepted, in bytes.
    pub max_id_len: usize,
    /// Requests a source may send at once (its bucket's size).
    pub rate_burst: u32,
    /// Requests per second a source may keep sending.
    pub rate_per_sec: u32,
    /// Sources whose rate is tracked (the least recently seen are forgotten first).
    pub max_sources: usize,
    /// Take advertised addresses as given, even when they are not the request's source.
    pub trust_advertised: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            track_timeout: Duration::from_secs(120),
            max_peers: 100_000,
            max_peers_per_swarm: 20_000,
            max_swarms: 10_000,
            max_peers_per_source: 256,
            max_swarms_per_peer: 16,
            max_addrs_per_peer: 4,
            default_peer_count: 20,
            max_id_len: 256,
            rate_burst: 64,
            rate_per_sec: 32,
            max_sources: 65_536,
            trust_advertised: false,
        }
    }
}

/// What a tracker has done, for logs, tests and the state API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrackerCounters {
    /// Requests answered (rate-limited ones included).
    pub requests: u64,
    /// Requests answered with success.
    pub ok: u64,
    /// Answers with 01 Bad Request.
    pub bad_request: u64,
    /// Answers with 02 Unsupported Version.
    pub unsupported_version: u64,
    /// Answers with 03 Forbidden Action.
    pub forbidden: u64,
    /// Answers with 05 Service Unavailable (rate limit).
    pub rate_limited: u64,
    /// Peer IDs registered.
    pub registered: u64,
    /// Registrations removed because the peer left its last swarm.
    pub deregistered: u64,
    /// Registrations removed by the track timer.
    pub expired: u64,
    /// Registrations removed to make room (a cap was reached).
    pub evicted: u64,
    /// Advertised addresses ignored (not the request's source).
    pub foreign_addrs_ignored: u64,
    /// FIND and CONNECT peer lists sent.
    pub peer_lists: u64,
    /// Membership certificates issued (a tracker with [`Tracker::set_issuing`]).
    pub certificates: u64,
}

/// A source of requests for rate limiting and per-source caps: an IPv4 address, or an IPv6
/// address's /64 (one host usually owns a whole /64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Source(IpAddr);

impl Source {
    fn of(ip: IpAddr) -> Self {
        match canonical(ip) {
            IpAddr::V6(a) => {
                let bits = u128::from(a) & !((1u128 << 64) - 1);
                Self(IpAddr::V6(Ipv6Addr::from(bits)))
            }
            v4 => Self(v4),
        }
    }
}

/// IPv4-mapped IPv6 addresses as IPv4 (a dual-stack listener sees IPv4 clients so).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[derive(Clone, Debug)]
struct Membership {
    mode: PeerMode,
    uploaded: u64,
    downloaded: u64,
}

#[derive(Clone, Debug)]
struct Peer {
    source: Source,
    origin: IpAddr,
    addrs: Vec<SocketAddr>,
    swarms: BTreeMap<String, Membership>,
    last_seen: Duration,
}

/// Peer IDs with O(log n) insertion and removal and O(1) access by position, so that a peer
/// list is picked from a window at any position without walking the whole swarm.
#[derive(Clone, Debug, Default)]
struct IndexedSet {
    items: Vec<String>,
    pos: BTreeMap<String, usize>,
}

impl IndexedSet {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn insert(&mut self, id: &str) {
        if !self.pos.contains_key(id) {
            self.pos.insert(id.to_owned(), self.items.len());
            self.items.push(id.to_owned());
        }
    }

    fn remove(&mut self, id: &str) -> bool {
        let Some(i) = self.pos.remove(id) else {
            return false;
        };
        self.items.swap_remove(i);
        if let Some(moved) = self.items.get(i) {
            self.pos.insert(moved.clone(), i);
        }
        true
    }

    /// Up to `n` members from position `start` on, wrapping.
    fn window(&self, start: usize, n: usize) -> impl Iterator<Item = &String> {
        let len = self.items.len();
        (0..n.min(len)).map(move |k| &self.items[(start + k) % len])
    }
}

#[derive(Clone, Debug, Default)]
struct Swarm {
    seeders: IndexedSet,
    leechers: IndexedSet,
    /// Peer lists sent, hashed into each list's starting position.
    cursor: u64,
}

impl Swarm {
    fn len(&self) -> usize {
        self.seeders.len() + self.leechers.len()
    }

    fn insert(&mut self, id: &str, mode: PeerMode) {
        match mode {
            PeerMode::Seeder => {
                self.leechers.remove(id);
                self.seeders.insert(id);
            }
            PeerMode::Leech => {
                self.seeders.remove(id);
                self.leechers.insert(id);
            }
        }
    }

    fn remove(&mut self, id: &str) {
        if !self.seeders.remove(id) {
            self.leechers.remove(id);
        }
    }

    /// Every member, by peer ID.
    fn members(&self) -> impl Iterator<Item = &String> {
        let mut all: Vec<&String> = self
            .seeders
            .pos
            .keys()
            .chain(self.leechers.pos.keys())
            .collect();
        all.sort();
        all.into_iter()
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Tokens in thousandths, so a slow refill rate does not round to nothing.
    milli: u64,
    at: Duration,
}

/// A PPSTP tracker's state. See the module docs.
#[derive(Debug)]
pub struct Tracker {
    limits: Limits,
    peers: BTreeMap<String, Peer>,
    swarms: BTreeMap<String, Swarm>,
    /// (last seen, peer ID): the oldest registration first.
    by_age: BTreeSet<(Duration, String)>,
    /// The same per source, for the per-source cap.
    by_source: BTreeMap<Source, BTreeSet<(Duration, String)>>,
    buckets: BTreeMap<Source, Bucket>,
    bucket_age: BTreeSet<(Duration, Source)>,
    counters: TrackerCounters,
    issuing: Option<crate::ca::Issuing>,
}

/// One swarm as [`Tracker::snapshot`] shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SwarmSnapshot {
    /// The swarm ID.
    pub swarm_id: String,
    /// Its members.
    pub peers: Vec<PeerSnapshot>,
}

/// One member of a swarm as [`Tracker::snapshot`] shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerSnapshot {
    /// The peer ID.
    pub peer_id: String,
    /// Its addresses.
    pub addrs: Vec<SocketAddr>,
    /// `SEEDER` or `LEECH`.
    pub mode: PeerMode,
    /// Bytes it last reported downloading.
    pub downloaded: u64,
    /// Bytes it last reported uploading.
    pub uploaded: u64,
}

/// A tracker's whole state, for the `ppspp tracker` state API and tests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// Registered peer IDs.
    pub registered_peers: usize,
    /// Swarms, by swarm ID.
    pub swarms: Vec<SwarmSnapshot>,
    /// What the tracker has done.
    pub counters: TrackerCounters,
}

impl Tracker {
    /// An empty tracker (the INIT state of RFC 7846 §2.3).
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            peers: BTreeMap::new(),
            swarms: BTreeMap::new(),
            by_age: BTreeSet::new(),
            by_source: BTreeMap::new(),
            buckets: BTreeMap::new(),
            bucket_age: BTreeSet::new(),
            counters: TrackerCounters::default(),
            issuing: None,
        }
    }

    /// Makes the tracker a certification authority (RFC 7574 §12.2.2, docs/membership.md):
    /// each successful JOIN, FIND and STAT_REPORT answer for a swarm the requester is a
    /// member of carries a fresh membership certificate for the requester's reflexive address
    /// (the request's source IP, the port it advertised) and that swarm, if the swarm ID is
    /// hex. `None` stops issuing.
    pub fn set_issuing(&mut self, issuing: Option<crate::ca::Issuing>) {
        self.issuing = issuing;
    }

    /// The public key certificates are signed with, if the tracker issues them.
    pub fn ca_public_key(&self) -> Option<[u8; 32]> {
        self.issuing.as_ref().map(|i| i.authority.public_key())
    }

    /// Adds the requester's certificate to a successful result for a swarm it is in.
    fn certify(&mut self, now: Duration, pid: &str, addr: Option<SocketAddr>, r: &mut SwarmResult) {
        let Some(iss) = self.issuing.as_mut() else {
            return;
        };
        let member = self
            .peers
            .get(pid)
            .is_some_and(|p| p.swarms.contains_key(&r.swarm_id));
        let (Some(addr), true, ResponseType::Successful) = (addr, member, r.result) else {
            return;
        };
        let Some(swarm) = crate::ca::unhex(&r.swarm_id).filter(|s| !s.is_empty()) else {
            return;
        };
        let unix = iss.unix_at_zero.saturating_add(now.as_secs());
        if let Ok(der) = iss.authority.issue(&swarm, addr, unix, iss.lifetime_secs) {
            r.membership_cert = Some(der);
            self.counters.certificates += 1;
        }
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// What the tracker has done so far.
    pub fn counters(&self) -> &TrackerCounters {
        &self.counters
    }

    /// Registered peer IDs.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Swarms with at least one member.
    pub fn swarm_count(&self) -> usize {
        self.swarms.len()
    }

    /// Rate buckets held (bounded by [`Limits::max_sources`]).
    pub fn tracked_sources(&self) -> usize {
        self.buckets.len()
    }

    /// Answers one request body from `source` at `now` (any monotonic time origin).
    pub fn handle(&mut self, now: Duration, source: IpAddr, body: &[u8]) -> Response {
        self.counters.requests += 1;
        self.expire(now);
        if !self.take_token(now, Source::of(source)) {
            self.counters.rate_limited += 1;
            return Response::error(String::new(), ErrorCode::ServiceUnavailable);
        }
        let resp = match Request::decode(body) {
            Ok(req) => self.handle_request(now, source, req),
            Err(e) => e.response(),
        };
        match resp.error_code {
            ErrorCode::NoError => self.counters.ok += 1,
            ErrorCode::BadRequest => self.counters.bad_request += 1,
            ErrorCode::UnsupportedVersion => self.counters.unsupported_version += 1,
            ErrorCode::Forbidden => self.counters.forbidden += 1,
            _ => {}
        }
        resp
    }

    /// Answers a request whose body was too large to read (over
    /// [`crate::proto::MAX_BODY`]): 01 Bad Request, rate-limited and counted like any other.
    pub fn reject_oversized(&mut self, now: Duration, source: IpAddr) -> Response {
        self.counters.requests += 1;
        if !self.take_token(now, Source::of(source)) {
            self.counters.rate_limited += 1;
            return Response::error(String::new(), ErrorCode::ServiceUnavailable);
        }
        self.counters.bad_request += 1;
        Response::error(String::new(), ErrorCode::BadRequest)
    }

    /// Answers a decoded request (no rate limit, no counting of the outcome).
    pub fn handle_request(&mut self, now: Duration, source: IpAddr, req: Request) -> Response {
        let txn = req.transaction_id.clone();
        let max = self.limits.max_id_len;
        if req.peer_id.is_empty() || req.peer_id.len() > max || txn.len() > max {
            return Response::error(txn, ErrorCode::BadRequest);
        }
        let source_key = Source::of(source);
        if let Some(p) = self.peers.get(&req.peer_id) {
            if p.source != source_key {
                return Response::error(txn, ErrorCode::Forbidden);
            }
        }
        match req.body {
            RequestBody::Connect(c) => self.connect(now, source, &req.peer_id, txn, c),
            RequestBody::Find { swarm_id, peer_num } => {
                self.find(now, &req.peer_id, txn, &swarm_id, peer_num.as_ref())
            }
            RequestBody::StatReport { stats } => self.stat_report(now, &req.peer_id, txn, &stats),
        }
    }

    /// Removes the registrations whose track timer ran out by `now`; returns how many.
    pub fn expire(&mut self, now: Duration) -> usize {
        let mut n = 0;
        while let Some((seen, id)) = self.by_age.first().cloned() {
            if seen + self.limits.track_timeout > now {
                break;
            }
            self.remove_peer(&id);
            self.counters.expired += 1;
            n += 1;
        }
        n
    }

    /// The whole state (swarms by ID, members by peer ID).
    pub fn snapshot(&self) -> Snapshot {
        let swarms = self
            .swarms
            .iter()
            .map(|(id, s)| SwarmSnapshot {
                swarm_id: id.clone(),
                peers: s
                    .members()
                    .filter_map(|pid| {
                        let p = self.peers.get(pid)?;
                        let m = p.swarms.get(id)?;
                        Some(PeerSnapshot {
                            peer_id: pid.clone(),
                            addrs: p.addrs.clone(),
                            mode: m.mode,
                            downloaded: m.downloaded,
                            uploaded: m.uploaded,
                        })
                    })
                    .collect(),
            })
            .collect();
        Snapshot {
            registered_peers: self.peers.len(),
            swarms,
            counters: self.counters.clone(),
        }
    }

    fn take_token(&mut self, now: Duration, src: Source) -> bool {
        let cap = u64::from(self.limits.rate_burst) * 1000;
        let bucket = match self.buckets.get(&src).copied() {
            Some(b) => {
                self.bucket_age.remove(&(b.at, src));
                let elapsed_ms = now.saturating_sub(b.at).as_millis();
                let refill = elapsed_ms.saturating_mul(u128::from(self.limits.rate_per_sec));
                let milli = u64::try_from(refill)
                    .unwrap_or(u64::MAX)
                    .saturating_add(b.milli)
                    .min(cap);
                Bucket { milli, at: now }
            }
            None => {
                while self.buckets.len() >= self.limits.max_sources.max(1) {
                    let Some((_, old)) = self.bucket_age.pop_first() else {
                        break;
                    };
                    self.buckets.remove(&old);
                }
                Bucket {
                    milli: cap,
                    at: now,
                }
            }
        };
        let ok = bucket.milli >= 1000;
        let b = Bucket {
            milli: if ok {
                bucket.milli - 1000
            } else {
                bucket.milli
            },
            at: now,
        };
        self.buckets.insert(src, b);
        self.bucket_age.insert((now, src));
        ok
    }

    fn touch(&mut self, now: Duration, id: &str) {
        let Some(p) = self.peers.get_mut(id) else {
            return;
        };
        let old = (p.last_seen, id.to_owned());
        p.last_seen = now;
        let src = p.source;
        self.by_age.remove(&old);
        self.by_age.insert((now, id.to_owned()));
        if let Some(s) = self.by_source.get_mut(&src) {
            s.remove(&old);
            s.insert((now, id.to_owned()));
        }
    }

    fn remove_peer(&mut self, id: &str) {
        let Some(p) = self.peers.remove(id) else {
            return;
        };
        self.by_age.remove(&(p.last_seen, id.to_owned()));
        if let Some(s) = self.by_source.get_mut(&p.source) {
            s.remove(&(p.last_seen, id.to_owned()));
            if s.is_empty() {
                self.by_source.remove(&p.source);
            }
        }
        for sid in p.swarms.keys() {
            self.leave_swarm(sid, id);
        }
    }

    fn leave_swarm(&mut self, sid: &str, pid: &str) {
        if let Some(s) = self.swarms.get_mut(sid) {
            s.remove(pid);
            if s.len() == 0 {
                self.swarms.remove(sid);
            }
        }
    }

    /// Registers a new peer ID, evicting to stay within the caps.
    fn register(&mut self, now: Duration, source: IpAddr, id: &str) {
        let src = Source::of(source);
        let own = self.by_source.get(&src).map_or(0, BTreeSet::len);
        if own >= self.limits.max_peers_per_source.max(1) {
            if let Some((_, old)) = self.by_source.get(&src).and_then(|s| s.first().cloned()) {
                self.remove_peer(&old);
                self.counters.evicted += 1;
            }
        }
        while self.peers.len() >= self.limits.max_peers.max(1) {
            let Some((_, old)) = self.by_age.first().cloned() else {
                break;
            };
            self.remove_peer(&old);
            self.counters.evicted += 1;
        }
        self.peers.insert(
            id.to_owned(),
            Peer {
                source: src,
                origin: canonical(source),
                addrs: Vec::new(),
                swarms: BTreeMap::new(),
                last_seen: now,
            },
        );
        self.by_age.insert((now, id.to_owned()));
        self.by_source
            .entry(src)
            .or_default()
            .insert((now, id.to_owned()));
        self.counters.registered += 1;
    }

    /// The addresses of a CONNECT the tracker accepts for the peer.
    fn accepted_addrs(&mut self, source: IpAddr, advertised: &[PeerAddr]) -> Vec<SocketAddr> {
        let origin = canonical(source);
        let mut out = Vec::new();
        for a in advertised {
            let ip = canonical(a.ip);
            let ip = if ip.is_unspecified() { origin } else { ip };
            if a.port == 0 || (!self.limits.trust_advertised && ip != origin) {
                self.counters.foreign_addrs_ignored += 1;
                continue;
            }
            let sa = SocketAddr::new(ip, a.port);
            if !out.contains(&sa) && out.len() < self.limits.max_addrs_per_peer {
                out.push(sa);
            }
        }
        out
    }

    fn connect(
        &mut self,
        now: Duration,
        source: IpAddr,
        pid: &str,
        txn: String,
        c: Connect,
    ) -> Response {
        let max = self.limits.max_id_len;
        if c.swarm_action
            .iter()
            .any(|a| a.swarm_id.is_empty() || a.swarm_id.len() > max)
        {
            return Response::error(txn, ErrorCode::BadRequest);
        }
        let is_new = !self.peers.contains_key(pid);
        if is_new {
            self.register(now, source, pid);
        } else {
            self.touch(now, pid);
        }
        let addrs = self.accepted_addrs(source, &c.peer_addr);
        if let Some(p) = self.peers.get_mut(pid) {
            if !addrs.is_empty() {
                p.addrs = addrs;
            }
        }
        let mut results = Vec::with_capacity(c.swarm_action.len());
        let mut any_ok = false;
        for a in c.swarm_action.iter().take(self.limits.max_swarms_per_peer) {
            let ok = match a.action {
                Action::Join => self.join(pid, &a.swarm_id, a.peer_mode),
                Action::Leave => self.leave(pid, &a.swarm_id),
            };
            any_ok |= ok;
            let wants_list = ok
                && a.action == Action::Join
                && (a.peer_mode == PeerMode::Leech || c.peer_num.is_some());
            let peers = wants_list.then(|| self.select(pid, &a.swarm_id, c.peer_num.as_ref()));
            results.push(SwarmResult {
                swarm_id: a.swarm_id.clone(),
                result: if ok {
                    ResponseType::Successful
                } else {
                    ResponseType::Failed
                },
                peers,
                membership_cert: None,
            });
        }
        if !any_ok {
            // §2.3.2 A: only invalid actions; a new registration does not survive it.
            if is_new {
                self.remove_peer(pid);
                self.counters.registered -= 1;
            }
            return Response::error(txn, ErrorCode::Forbidden);
        }
        let left_everything = self.peers.get(pid).is_some_and(|p| p.swarms.is_empty());
        let reflexive = self.reflexive(source, pid);
        if self.issuing.is_some() {
            let addr = reflexive.as_ref().map(PeerAddr::socket_addr);
            for r in &mut results {
                // A LEAVE's swarm is no longer the peer's: `certify` skips it.
                self.certify(now, pid, addr, r);
            }
        }
        if left_everything {
            self.remove_peer(pid);
            self.counters.deregistered += 1;
        }
        Response {
            response_type: ResponseType::Successful,
            error_code: ErrorCode::NoError,
            transaction_id: txn,
            peer_addr: reflexive,
            swarm_result: results,
        }
    }

    /// The requester's address as seen here, with the port it advertised.
    fn reflexive(&self, source: IpAddr, pid: &str) -> Option<PeerAddr> {
        let p = self.peers.get(pid)?;
        let port = p.addrs.first().map(SocketAddr::port)?;
        let mut a = PeerAddr::host(SocketAddr::new(canonical(source), port));
        a.addr_type = AddrType::Reflexive;
        Some(a)
    }

    fn join(&mut self, pid: &str, sid: &str, mode: PeerMode) -> bool {
        let Some(p) = self.peers.get(pid) else {
            return false;
        };
        if p.swarms.contains_key(sid) {
            // Joining again (a retry, or a leecher that completed and now seeds) refreshes.
            if let Some(m) = self.peers.get_mut(pid).and_then(|p| p.swarms.get_mut(sid)) {
                m.mode = mode;
            }
            if let Some(s) = self.swarms.get_mut(sid) {
                s.insert(pid, mode);
            }
            return true;
        }
        if p.swarms.len() >= self.limits.max_swarms_per_peer {
            return false;
        }
        if !self.swarms.contains_key(sid) && self.swarms.len() >= self.limits.max_swarms {
            return false;
        }
        let full = self
            .swarms
            .get(sid)
            .is_some_and(|s| s.len() >= self.limits.max_peers_per_swarm.max(1));
        if full {
            // Make room by dropping the swarm's least recently seen member from it (a walk
            // over the swarm, only when it is full).
            let oldest = self.swarms.get(sid).and_then(|s| {
                s.members()
                    .filter_map(|m| self.peers.get(m).map(|p| (p.last_seen, m.clone())))
                    .min()
            });
            if let Some((_, old)) = oldest {
                self.leave(&old, sid);
                if self.peers.get(&old).is_some_and(|p| p.swarms.is_empty()) {
                    self.remove_peer(&old);
                }
                self.counters.evicted += 1;
            }
        }
        self.swarms
            .entry(sid.to_owned())
            .or_default()
            .insert(pid, mode);
        if let Some(p) = self.peers.get_mut(pid) {
            p.swarms.insert(
                sid.to_owned(),
                Membership {
                    mode,
                    uploaded: 0,
                    downloaded: 0,
                },
            );
        }
        true
    }

    fn leave(&mut self, pid: &str, sid: &str) -> bool {
        let removed = self
            .peers
            .get_mut(pid)
            .and_then(|p| p.swarms.remove(sid))
            .is_some();
        if removed {
            self.leave_swarm(sid, pid);
        }
        removed
    }

    fn find(
        &mut self,
        now: Duration,
        pid: &str,
        txn: String,
        sid: &str,
        peer_num: Option<&PeerNum>,
    ) -> Response {
        if !self.peers.contains_key(pid) || !self.swarms.contains_key(sid) {
            // §2.3.2 B (unregistered peer) and C (invalid swarm).
            return Response::error(txn, ErrorCode::Forbidden);
        }
        self.touch(now, pid);
        let peers = self.select(pid, sid, peer_num);
        let origin = self.peers.get(pid).map(|p| p.origin);
        let reflexive = origin.and_then(|o| self.reflexive(o, pid));
        let mut result = SwarmResult {
            swarm_id: sid.to_owned(),
            result: ResponseType::Successful,
            peers: Some(peers),
            membership_cert: None,
        };
        let addr = reflexive.as_ref().map(PeerAddr::socket_addr);
        self.certify(now, pid, addr, &mut result);
        Response {
            response_type: ResponseType::Successful,
            error_code: ErrorCode::NoError,
            transaction_id: txn,
            peer_addr: reflexive,
            swarm_result: vec![result],
        }
    }

    fn stat_report(
        &mut self,
        now: Duration,
        pid: &str,
        txn: String,
        stats: &[StreamStats],
    ) -> Response {
        if !self.peers.contains_key(pid) {
            return Response::error(txn, ErrorCode::Forbidden);
        }
        self.touch(now, pid);
        let mut results = Vec::new();
        for s in stats.iter().take(self.limits.max_swarms_per_peer) {
            let m = self
                .peers
                .get_mut(pid)
                .and_then(|p| p.swarms.get_mut(&s.swarm_id));
            let ok = match m {
                Some(m) => {
                    m.uploaded = s.uploaded_bytes;
                    m.downloaded = s.downloaded_bytes;
                    true
                }
                None => false,
            };
            results.push(SwarmResult {
                swarm_id: s.swarm_id.clone(),
                result: if ok {
                    ResponseType::Successful
                } else {
                    ResponseType::Failed
                },
                peers: None,
                membership_cert: None,
            });
        }
        if self.issuing.is_some() {
            // A seeder only reports: its certificate is renewed here.
            let origin = self.peers.get(pid).map(|p| p.origin);
            let addr = origin
                .and_then(|o| self.reflexive(o, pid))
                .map(|a| a.socket_addr());
            for r in &mut results {
                self.certify(now, pid, addr, r);
            }
        }
        Response {
            response_type: ResponseType::Successful,
            error_code: ErrorCode::NoError,
            transaction_id: txn,
            peer_addr: None,
            swarm_result: results,
        }
    }

    /// Up to the requested number of other members of `sid`, best ranked first.
    fn select(&mut self, pid: &str, sid: &str, peer_num: Option<&PeerNum>) -> Vec<PeerInfo> {
        let want = peer_num.map_or_else(
            || u64::from(self.limits.default_peer_count),
            |n| n.peer_count,
        );
        let want = usize::try_from(want.min(u64::from(MAX_PEER_COUNT))).unwrap_or(0);
        let Some(swarm) = self.swarms.get_mut(sid) else {
            return Vec::new();
        };
        // Where this list starts (Fibonacci hashing of a per-swarm counter): a start that
        // advanced by the list length would, in a swarm growing by one member per request (a
        // flash crowd), name the same few members every time.
        swarm.cursor = swarm.cursor.wrapping_add(1);
        let hash =
            usize::try_from(swarm.cursor.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32).unwrap_or(0);
        // Rank 0: seeders; 1: leechers that reported progress; 2: the rest. Only a window
        // of each set is looked at, so a request costs O(peer_count), not O(swarm).
        let mut ranks: [Vec<(&String, SocketAddr)>; 3] = Default::default();
        let seeders = swarm
            .seeders
            .window(hash % swarm.seeders.len().max(1), want + 1);
        let leechers = swarm
            .leechers
            .window(hash % swarm.leechers.len().max(1), 4 * want + 16);
        for m in seeders.chain(leechers) {
            if m == pid {
                continue;
            }
            let Some(p) = self.peers.get(m) else { continue };
            let (Some(addr), Some(ms)) = (p.addrs.first(), p.swarms.get(sid)) else {
                continue;
            };
            let rank = match (ms.mode, ms.downloaded) {
                (PeerMode::Seeder, _) => 0,
                (PeerMode::Leech, d) if d > 0 => 1,
                _ => 2,
            };
            ranks[rank].push((m, *addr));
        }
        let out: Vec<PeerInfo> = ranks
            .iter()
            .flatten()
            .take(want)
            .map(|(id, addr)| PeerInfo {
                peer_id: (*id).clone(),
                peer_addr: PeerAddr::host(*addr),
            })
            .collect();
        self.counters.peer_lists += 1;
        out
    }
}

#[cfg(test)]
mod tests;
