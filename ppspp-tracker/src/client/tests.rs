//! The announcer driven against a real [`Tracker`] in memory.

use std::net::IpAddr;

use super::*;
use crate::tracker::{Limits, Tracker};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

struct Net {
    tracker: Tracker,
}

impl Net {
    /// Sends what `a` has due at `now`; returns the kind sent and the peers learnt.
    fn step(
        &mut self,
        a: &mut Announcer,
        now: Duration,
        src: &str,
    ) -> Option<(&'static str, Vec<SocketAddr>)> {
        let req = a.poll(now)?;
        let kind = match req.body {
            RequestBody::Connect(_) => "CONNECT",
            RequestBody::Find { .. } => "FIND",
            RequestBody::StatReport { .. } => "STAT_REPORT",
        };
        let resp = self
            .tracker
            .handle(now, src.parse::<IpAddr>().unwrap(), &req.encode());
        Some((kind, a.on_response(now, &resp)))
    }
}

fn announcer(pid: &str, mode: PeerMode, addr: &str) -> Announcer {
    Announcer::new(
        AnnouncerConfig::default(),
        pid.into(),
        "ab".repeat(20),
        mode,
        Some(addr.parse().unwrap()),
    )
}

#[test]
fn connect_then_keep_alives_and_finds_on_schedule() {
    let mut net = Net {
        tracker: Tracker::new(Limits::default()),
    };
    let mut seed = announcer("s", PeerMode::Seeder, "10.0.0.1:7000");
    let mut leech = announcer("l", PeerMode::Leech, "10.0.0.2:7000");
    assert_eq!(
        net.step(&mut seed, secs(0), "10.0.0.1").unwrap().0,
        "CONNECT"
    );
    let (kind, peers) = net.step(&mut leech, secs(0), "10.0.0.2").unwrap();
    assert_eq!(
        (kind, peers),
        ("CONNECT", vec!["10.0.0.1:7000".parse().unwrap()])
    );
    // Nothing is due before the interval.
    assert!(leech.poll(secs(29)).is_none());
    assert!(seed.poll(secs(29)).is_none());
    // Then a STAT_REPORT, and for the leecher a FIND right after it.
    assert_eq!(
        net.step(&mut leech, secs(30), "10.0.0.2").unwrap().0,
        "STAT_REPORT"
    );
    let (kind, peers) = net.step(&mut leech, secs(30), "10.0.0.2").unwrap();
    assert_eq!((kind, peers.len()), ("FIND", 1));
    assert_eq!(
        net.step(&mut seed, secs(30), "10.0.0.1").unwrap().0,
        "STAT_REPORT"
    );
    assert!(seed.poll(secs(30)).is_none(), "a seeder does not FIND");
    assert_eq!(leech.next_at(), secs(60));
    // Asking for peers right after a FIND waits for the minimum interval.
    leech.want_peers(secs(31));
    assert!(leech.poll(secs(31)).is_none());
    leech.want_peers(secs(40));
    let (kind, _) = net.step(&mut leech, secs(40), "10.0.0.2").unwrap();
    assert_eq!(kind, "FIND");
}

#[test]
fn a_forgotten_registration_is_renewed_and_completion_switches_to_seeder() {
    let mut net = Net {
        tracker: Tracker::new(Limits::default()),
    };
    let mut leech = announcer("l", PeerMode::Leech, "10.0.0.2:7000");
    net.step(&mut leech, secs(0), "10.0.0.2").unwrap();
    // The tracker restarts.
    net.tracker = Tracker::new(Limits::default());
    assert_eq!(
        net.step(&mut leech, secs(30), "10.0.0.2").unwrap().0,
        "STAT_REPORT"
    );
    assert!(!leech.is_registered());
    assert_eq!(
        net.step(&mut leech, secs(30), "10.0.0.2").unwrap().0,
        "CONNECT"
    );
    assert!(leech.is_registered());
    assert_eq!(net.tracker.peer_count(), 1);
    leech.set_progress(
        secs(40),
        Progress {
            downloaded: 100,
            complete: true,
            ..Progress::default()
        },
    );
    assert_eq!(
        net.step(&mut leech, secs(40), "10.0.0.2").unwrap().0,
        "CONNECT"
    );
    let snap = net.tracker.snapshot();
    assert_eq!(snap.swarms[0].peers[0].mode, PeerMode::Seeder);
    // LEAVE empties the tracker, and nothing is sent afterwards.
    let bye = leech.leave().unwrap();
    net.tracker
        .handle(secs(41), "10.0.0.2".parse().unwrap(), &bye.encode());
    assert_eq!(net.tracker.peer_count(), 0);
    assert!(leech.poll(secs(1000)).is_none());
}

#[test]
fn failures_back_off_exponentially_up_to_the_limit() {
    let mut a = announcer("p", PeerMode::Leech, "10.0.0.2:7000");
    let mut delays = Vec::new();
    let mut now = secs(0);
    for _ in 0..9 {
        assert!(a.poll(now).is_some());
        a.on_failure(now);
        delays.push((a.next_at() - now).as_secs());
        now = a.next_at();
    }
    assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    // A success resets the backoff.
    let req = a.poll(now).unwrap();
    let resp = Response {
        response_type: ResponseType::Successful,
        error_code: ErrorCode::NoError,
        transaction_id: req.transaction_id.clone(),
        peer_addr: None,
        swarm_result: Vec::new(),
    };
    a.on_response(now, &resp);
    assert_eq!(a.failures(), 0);
    assert_eq!(a.next_at(), now + secs(30));
    // An answer to another transaction counts as a failure.
    let req = a.poll(now + secs(30)).unwrap();
    let mut wrong = resp.clone();
    wrong.transaction_id = format!("{}x", req.transaction_id);
    a.on_response(now + secs(30), &wrong);
    assert_eq!(a.failures(), 1);
}
