//! Peers from trackers for one download: the tracker clients ([`Trackers`]) and the core's
//! connection manager ([`ConnManager`]), stepped from a network loop (`ppspp get`'s blocking
//! one, `ppspp serve`'s tokio one). Nothing here waits for a tracker.

use std::net::SocketAddr;
use std::time::{Duration, Instant as StdInstant};

use ppspp_core::connmgr::{ConnConfig, ConnManager, PeerSource};
use ppspp_core::time::Instant;
use ppspp_core::{CloseReason, ConnectError, Endpoint, SwarmHandle};
use ppspp_tracker::Progress;

use crate::cli::tracker_client::Trackers;

/// Peers the connection manager keeps connected from the trackers' lists.
pub const CONN_TARGET: usize = 12;

/// How often the manager's plan is carried out and progress reported.
const STEP_EVERY: Duration = Duration::from_secs(1);

/// The trackers of one download and the manager deciding which of their peers to use.
#[derive(Debug)]
pub struct Finder {
    trackers: Trackers,
    conn: ConnManager,
    last_step: Option<StdInstant>,
}

impl Finder {
    /// Uses `trackers` (possibly none) with a manager keeping [`CONN_TARGET`] peers.
    pub fn new(trackers: Trackers) -> Self {
        Self {
            trackers,
            conn: ConnManager::new(ConnConfig {
                target: CONN_TARGET,
                ..ConnConfig::default()
            }),
            last_step: None,
        }
    }

    /// Whether there is no tracker (then [`Finder::step`] does nothing).
    pub fn is_empty(&self) -> bool {
        self.trackers.is_empty()
    }

    /// A channel to `remote` came up.
    pub fn on_connected(&mut self, now: Instant, remote: SocketAddr) {
        self.conn.on_connected(now, remote);
    }

    /// A channel to `remote` closed for `reason`.
    pub fn on_closed(&mut self, now: Instant, remote: SocketAddr, reason: CloseReason) {
        self.conn.on_closed(now, remote, reason);
    }

    /// A membership certificate the trackers issued (new or renewed) goes with our
    /// handshakes in `swarm` from now on.
    pub fn certify(&mut self, ep: &mut Endpoint, now: Instant, swarm: SwarmHandle) {
        if let Some(c) = self.trackers.new_cert() {
            ep.set_membership_cert(now, swarm, ppspp_core::Bytes::from(c));
        }
    }

    /// Reports `progress` to the trackers now (e.g. complete: listed as a seeder from then on).
    pub fn report(&mut self, progress: Progress) {
        self.trackers.progress(progress);
    }

    /// Hands the peers the trackers returned to the manager (and a membership certificate
    /// they issued to the engine); at most once a second carries
    /// out its plan on `swarm` (connect to new candidates, close peers that never deliver)
    /// and reports `progress` (its `links`: the swarm's connected peers).
    pub fn step(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        swarm: SwarmHandle,
        local: SocketAddr,
        progress: Progress,
    ) {
        if self.trackers.is_empty() {
            return;
        }
        self.certify(ep, now, swarm);
        for p in crate::cli::reachable(&self.trackers.new_peers(), local) {
            self.conn.add_candidate(now, p, PeerSource::Tracker);
        }
        if self.last_step.is_some_and(|t| t.elapsed() < STEP_EVERY) {
            return;
        }
        self.last_step = Some(StdInstant::now());
        // Who delivered: the manager replaces peers that never do.
        let mut handles = Vec::new();
        if let Some(s) = ep.swarm(swarm) {
            for h in s.peers() {
                if let Some(pr) = ep.peer(h) {
                    let got = pr.stats().content_in;
                    if got > 0 {
                        self.conn.on_delivered(pr.remote(), got);
                    }
                    handles.push((pr.remote(), h));
                }
            }
        }
        let plan = self.conn.plan(now);
        for a in plan.drop {
            if let Some((_, h)) = handles.iter().find(|(r, _)| *r == a) {
                ep.close(now, *h);
            }
        }
        for a in plan.connect {
            if let Err(e) = ep.connect(now, swarm, a) {
                if e != ConnectError::AlreadyConnected {
                    self.conn.on_closed(now, a, CloseReason::LocalClosed);
                }
            }
        }
        let connected = progress.links;
        self.trackers.progress(progress);
        if connected < 2 || (self.conn.candidates() == 0 && self.conn.links() < CONN_TARGET) {
            self.trackers.want_peers();
        }
    }
}
