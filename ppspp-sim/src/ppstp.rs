//! The simulator's PPSTP (RFC 7846) tracker: the very [`ppspp_tracker::Tracker`] and
//! [`ppspp_tracker::Announcer`] that `ppspp tracker` and `ppspp get --tracker` run, with the
//! HTTP exchange replaced by a function call (a request is answered at the instant it is
//! made: the tracker's own latency is not modelled).
//!
//! With [`crate::scenario::Scenario::ppstp`], nodes learn peers only from it: each registers
//! when it joins, re-announces at every tracker tick (STAT_REPORT with its progress, then a
//! FIND while leeching), asks for more peers when fewer than two are connected, and sends
//! LEAVE when it leaves gracefully (a crashed node is forgotten by the track timer).

use std::net::SocketAddr;
use std::time::Duration;

use ppspp_core::Instant;
use ppspp_tracker::{Announcer, AnnouncerConfig, Limits, PeerMode, Progress, Tracker};

/// The tracker and every node's announcer.
#[derive(Debug)]
pub(crate) struct PpstpTracker {
    tracker: Tracker,
    announcers: Vec<Option<Announcer>>,
    swarm: String,
    interval: Duration,
    peer_count: u32,
}

fn at(now: Instant) -> Duration {
    Duration::from_micros(now.as_micros())
}

impl PpstpTracker {
    /// A tracker for `nodes` nodes in swarm `swarm` (hex), re-announcing every `interval`
    /// and asking for `peer_count` peers at a time.
    pub(crate) fn new(nodes: usize, swarm: String, interval: Duration, peer_count: u32) -> Self {
        Self {
            tracker: Tracker::new(Limits {
                // Simulated nodes may announce in bursts at one instant.
                rate_burst: 1_000,
                ..Limits::default()
            }),
            announcers: (0..nodes).map(|_| None).collect(),
            swarm,
            interval,
            peer_count,
        }
    }

    /// Makes the tracker a certification authority with the key from `seed` (the simulator's
    /// time zero is `unix_at_zero` UNIX seconds); returns its public key.
    pub(crate) fn issue_certificates(&mut self, seed: [u8; 32], unix_at_zero: u64) -> [u8; 32] {
        let authority = ppspp_tracker::ca::Authority::from_seed(seed).expect("a key from a seed");
        let key = authority.public_key();
        self.tracker.set_issuing(Some(ppspp_tracker::ca::Issuing {
            authority,
            lifetime_secs: 3600,
            unix_at_zero,
        }));
        key
    }

    /// Node `i` (incarnation `inc`, at `addr`) announces what is due; returns the peers the
    /// tracker named and the newest membership certificate it issued the node.
    pub(crate) fn announce(
        &mut self,
        now: Instant,
        i: u32,
        inc: u32,
        addr: SocketAddr,
        progress: Progress,
        want_peers: bool,
    ) -> (Vec<SocketAddr>, Option<Vec<u8>>) {
        let Some(slot) = self.announcers.get_mut(i as usize) else {
            return (Vec::new(), None);
        };
        let ann = slot.get_or_insert_with(|| {
            let mode = if progress.complete {
                PeerMode::Seeder
            } else {
                PeerMode::Leech
            };
            let cfg = AnnouncerConfig {
                interval: self.interval,
                peer_count: self.peer_count,
                ..AnnouncerConfig::default()
            };
            Announcer::new(
                cfg,
                format!("{i}.{inc}"),
                self.swarm.clone(),
                mode,
                Some(addr),
            )
        });
        let t = at(now);
        ann.set_progress(t, progress);
        if want_peers {
            ann.want_peers(t);
        }
        let mut found = Vec::new();
        let mut cert = None;
        // Bounded: an announcer has at most a CONNECT, a STAT_REPORT and a FIND due at once.
        for _ in 0..4 {
            let Some(req) = ann.poll(t) else { break };
            let resp = self.tracker.handle(t, addr.ip(), &req.encode());
            for p in ann.on_response(t, &resp) {
                if !found.contains(&p) {
                    found.push(p);
                }
            }
            if let Some(c) = resp
                .swarm_result
                .iter()
                .find_map(|r| r.membership_cert.clone())
            {
                cert = Some(c);
            }
        }
        (found, cert)
    }

    /// Node `i` leaves: LEAVE if `graceful`, and its announcer is dropped either way.
    pub(crate) fn leave(&mut self, now: Instant, i: u32, addr: SocketAddr, graceful: bool) {
        let Some(mut ann) = self.announcers.get_mut(i as usize).and_then(Option::take) else {
            return;
        };
        if let (true, Some(bye)) = (graceful, ann.leave()) {
            self.tracker.handle(at(now), addr.ip(), &bye.encode());
        }
    }
}
