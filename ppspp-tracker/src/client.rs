//! A peer's side of PPSTP: what to send to the tracker, when, and what the answers mean.
//!
//! One [`Announcer`] per swarm. It is a pure state machine: the caller asks
//! [`Announcer::poll`] for the request due at a time, sends it however it likes (an HTTP
//! client on its own thread in `ppspp`, a simulated link in `ppspp-sim`), and hands back the
//! response ([`Announcer::on_response`], which returns the peers to try) or the failure
//! ([`Announcer::on_failure`]).
//!
//! The schedule: CONNECT (JOIN) first; then every [`AnnouncerConfig::interval`] a
//! STAT_REPORT (the keep-alive RFC 7846 §4.1.3 requires, carrying the progress that ranks
//! the peer in others' peer lists), followed by a FIND while leeching. A 03 Forbidden answer
//! (the tracker forgot the registration: expiry or restart) registers again at once; other
//! failures retry with exponential backoff. [`Announcer::set_progress`] with `complete`
//! switches the peer to SEEDER with a new CONNECT. [`Announcer::leave`] is the LEAVE to send
//! on the way out.

use std::net::SocketAddr;
use std::time::Duration;

use crate::proto::{
    Action, Connect, ErrorCode, PeerAddr, PeerMode, PeerNum, Request, RequestBody, Response,
    ResponseType, StreamStats, SwarmAction,
};

/// How an [`Announcer`] paces itself.
#[derive(Clone, Debug)]
pub struct AnnouncerConfig {
    /// Between keep-alives (well under the tracker's track timer: 120 s by default here).
    pub interval: Duration,
    /// The first retry delay after a failure; doubles per failure.
    pub min_backoff: Duration,
    /// The longest retry delay.
    pub max_backoff: Duration,
    /// Peers asked for in each list.
    pub peer_count: u32,
    /// The shortest time between two FINDs asked for by [`Announcer::want_peers`].
    pub min_find_interval: Duration,
}

impl Default for AnnouncerConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            peer_count: 20,
            min_find_interval: Duration::from_secs(10),
        }
    }
}

/// What the peer reports about its part in the swarm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Bytes uploaded to the swarm.
    pub uploaded: u64,
    /// Bytes downloaded (verified) from the swarm.
    pub downloaded: u64,
    /// Channels open.
    pub links: u64,
    /// Whether the content is complete (the peer seeds from now on).
    pub complete: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Connect,
    Stat,
    Find,
}

/// One peer's announce logic for one swarm. See the module docs.
#[derive(Clone, Debug)]
pub struct Announcer {
    cfg: AnnouncerConfig,
    peer_id: String,
    swarm_id: String,
    mode: PeerMode,
    addr: Option<SocketAddr>,
    registered: bool,
    /// The mode changed since the last CONNECT: JOIN again with the new one.
    reconnect: bool,
    stat_due: bool,
    find_due: bool,
    next_at: Duration,
    failures: u32,
    txn: u64,
    pending: Option<(String, Kind)>,
    progress: Progress,
    left: bool,
    last_find: Option<Duration>,
}

impl Announcer {
    /// An announcer for `swarm_id` (hex) as `mode`, advertising `addr` (an unspecified IP
    /// means "the address my requests come from"; `None` advertises nothing, so the tracker
    /// lists this peer to nobody). The first CONNECT is due at once.
    pub fn new(
        cfg: AnnouncerConfig,
        peer_id: String,
        swarm_id: String,
        mode: PeerMode,
        addr: Option<SocketAddr>,
    ) -> Self {
        Self {
            cfg,
            peer_id,
            swarm_id,
            mode,
            addr,
            registered: false,
            reconnect: false,
            stat_due: false,
            find_due: false,
            next_at: Duration::ZERO,
            failures: 0,
            txn: 0,
            pending: None,
            progress: Progress::default(),
            left: false,
            last_find: None,
        }
    }

    /// The peer ID.
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// Whether the last CONNECT succeeded and nothing since said the tracker forgot it.
    pub fn is_registered(&self) -> bool {
        self.registered
    }

    /// The mode announced (or about to be).
    pub fn mode(&self) -> PeerMode {
        self.mode
    }

    /// When the next request is due (if none is outstanding).
    pub fn next_at(&self) -> Duration {
        self.next_at
    }

    /// Consecutive failures (0 after a success).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Updates what the next STAT_REPORT says; a newly complete leecher announces itself as
    /// a seeder with a new CONNECT at once.
    pub fn set_progress(&mut self, now: Duration, p: Progress) {
        self.progress = p;
        if p.complete && self.mode == PeerMode::Leech {
            self.mode = PeerMode::Seeder;
            self.reconnect = true;
            self.find_due = false;
            if self.pending.is_none() {
                self.next_at = self.next_at.min(now);
            }
        }
    }

    /// Asks for more peers now (for example when too few connections remain), or as soon as
    /// [`AnnouncerConfig::min_find_interval`] has passed since the last FIND.
    pub fn want_peers(&mut self, now: Duration) {
        let recent = self
            .last_find
            .is_some_and(|t| now < t + self.cfg.min_find_interval);
        if self.registered && !self.find_due && !recent {
            self.find_due = true;
            if self.pending.is_none() && self.failures == 0 {
                self.next_at = self.next_at.min(now);
            }
        }
    }

    /// The request to send now, if one is due and none is outstanding.
    pub fn poll(&mut self, now: Duration) -> Option<Request> {
        if self.left || self.pending.is_some() || now < self.next_at {
            return None;
        }
        let kind = if !self.registered || self.reconnect {
            Kind::Connect
        } else {
            if !self.stat_due && !self.find_due {
                self.stat_due = true;
                self.find_due = self.mode == PeerMode::Leech;
            }
            if self.stat_due {
                Kind::Stat
            } else {
                Kind::Find
            }
        };
        let body = match kind {
            Kind::Connect => RequestBody::Connect(Connect {
                peer_num: (self.mode == PeerMode::Leech).then(|| self.peer_num()),
                peer_addr: self.addr.map(PeerAddr::host).into_iter().collect(),
                swarm_action: vec![SwarmAction {
                    swarm_id: self.swarm_id.clone(),
                    action: Action::Join,
                    peer_mode: self.mode,
                }],
            }),
            Kind::Stat => RequestBody::StatReport {
                stats: vec![StreamStats {
                    swarm_id: self.swarm_id.clone(),
                    uploaded_bytes: self.progress.uploaded,
                    downloaded_bytes: self.progress.downloaded,
                    available_bandwidth: 0,
                    concurrent_links: self.progress.links,
                }],
            },
            Kind::Find => RequestBody::Find {
                swarm_id: self.swarm_id.clone(),
                peer_num: Some(self.peer_num()),
            },
        };
        Some(self.request(kind, body))
    }

    /// The CONNECT LEAVE to send on the way out (`None` if never registered). Nothing more is
    /// sent after it.
    pub fn leave(&mut self) -> Option<Request> {
        let was = self.registered && !self.left;
        self.left = true;
        self.pending = None;
        was.then(|| {
            let body = RequestBody::Connect(Connect {
                peer_num: None,
                peer_addr: Vec::new(),
                swarm_action: vec![SwarmAction {
                    swarm_id: self.swarm_id.clone(),
                    action: Action::Leave,
                    peer_mode: self.mode,
                }],
            });
            self.request(Kind::Connect, body)
        })
    }

    /// Takes the tracker's response to the outstanding request; returns the peers it lists
    /// (never this peer's own advertised address).
    pub fn on_response(&mut self, now: Duration, resp: &Response) -> Vec<SocketAddr> {
        let Some((txn, kind)) = self.pending.take() else {
            return Vec::new();
        };
        if resp.transaction_id != txn && !resp.transaction_id.is_empty() {
            // Not the answer to what was asked: as good as no answer.
            self.backoff(now);
            return Vec::new();
        }
        if resp.response_type == ResponseType::Failed {
            match resp.error_code {
                ErrorCode::Forbidden if self.failures == 0 => {
                    // The tracker does not know us (expired, restarted): register again now.
                    self.registered = false;
                    self.failures = 1;
                    self.next_at = now;
                }
                ErrorCode::Forbidden => {
                    self.registered = false;
                    self.backoff(now);
                }
                _ => self.backoff(now),
            }
            return Vec::new();
        }
        self.failures = 0;
        match kind {
            Kind::Connect => {
                self.registered = true;
                self.reconnect = false;
                self.stat_due = false;
                self.find_due = false;
                self.next_at = now + self.cfg.interval;
            }
            Kind::Stat => {
                self.stat_due = false;
                self.next_at = if self.find_due {
                    now
                } else {
                    now + self.cfg.interval
                };
            }
            Kind::Find => {
                self.find_due = false;
                self.last_find = Some(now);
                self.next_at = now + self.cfg.interval;
            }
        }
        let own = self.addr;
        resp.peer_addrs()
            .into_iter()
            .filter(|a| Some(*a) != own && a.port() != 0)
            .collect()
    }

    /// The outstanding request failed (no answer, transport error, undecodable answer).
    pub fn on_failure(&mut self, now: Duration) {
        if self.pending.take().is_some() {
            self.backoff(now);
        }
    }

    fn backoff(&mut self, now: Duration) {
        self.failures = self.failures.saturating_add(1);
        let shift = self.failures.saturating_sub(1).min(16);
        let delay = self
            .cfg
            .min_backoff
            .saturating_mul(1 << shift)
            .min(self.cfg.max_backoff);
        self.next_at = now + delay;
    }

    fn peer_num(&self) -> PeerNum {
        PeerNum {
            peer_count: u64::from(self.cfg.peer_count),
            concurrent_links: Some(self.progress.links),
            ..PeerNum::default()
        }
    }

    fn request(&mut self, kind: Kind, body: RequestBody) -> Request {
        self.txn += 1;
        let transaction_id = self.txn.to_string();
        if !self.left {
            self.pending = Some((transaction_id.clone(), kind));
        }
        Request {
            transaction_id,
            peer_id: self.peer_id.clone(),
            body,
        }
    }
}

#[cfg(test)]
mod tests;
