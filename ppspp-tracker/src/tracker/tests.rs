use super::*;
use crate::proto::{Action, Connect, PeerMode, SwarmAction};

const S: &str = "aaaa";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn connect_req(pid: &str, addr: Option<&str>, acts: &[(&str, Action, PeerMode)]) -> Vec<u8> {
    Request {
        transaction_id: "1".into(),
        peer_id: pid.into(),
        body: RequestBody::Connect(Connect {
            peer_num: None,
            peer_addr: addr
                .map(|a| PeerAddr::host(a.parse().unwrap()))
                .into_iter()
                .collect(),
            swarm_action: acts
                .iter()
                .map(|(s, a, m)| SwarmAction {
                    swarm_id: (*s).into(),
                    action: *a,
                    peer_mode: *m,
                })
                .collect(),
        }),
    }
    .encode()
}

fn join(t: &mut Tracker, now: Duration, pid: &str, addr: &str, mode: PeerMode) -> Response {
    let src = addr.parse::<SocketAddr>().unwrap().ip();
    t.handle(
        now,
        src,
        &connect_req(pid, Some(addr), &[(S, Action::Join, mode)]),
    )
}

fn find(t: &mut Tracker, now: Duration, pid: &str, src: &str, count: u64) -> Response {
    let body = Request {
        transaction_id: "2".into(),
        peer_id: pid.into(),
        body: RequestBody::Find {
            swarm_id: S.into(),
            peer_num: Some(PeerNum {
                peer_count: count,
                ..PeerNum::default()
            }),
        },
    }
    .encode();
    t.handle(now, ip(src), &body)
}

fn stat(t: &mut Tracker, now: Duration, pid: &str, src: &str, downloaded: u64) -> Response {
    let body = Request {
        transaction_id: "3".into(),
        peer_id: pid.into(),
        body: RequestBody::StatReport {
            stats: vec![StreamStats {
                swarm_id: S.into(),
                downloaded_bytes: downloaded,
                ..StreamStats::default()
            }],
        },
    }
    .encode();
    t.handle(now, ip(src), &body)
}

#[test]
fn a_leecher_gets_the_seeder_and_registrations_expire() {
    let mut t = Tracker::new(Limits::default());
    let r = join(&mut t, secs(0), "seed", "10.0.0.1:7000", PeerMode::Seeder);
    assert_eq!(r.error_code, ErrorCode::NoError);
    // A seeder's CONNECT without peer_num gets no peer list.
    assert!(r.swarm_result[0].peers.is_none());
    let r = join(&mut t, secs(1), "leech", "10.0.0.2:7001", PeerMode::Leech);
    assert_eq!(r.peer_addrs(), ["10.0.0.1:7000".parse().unwrap()]);
    assert_eq!(
        r.peer_addr.unwrap().socket_addr(),
        "10.0.0.2:7001".parse().unwrap()
    );
    assert_eq!((t.peer_count(), t.swarm_count()), (2, 1));
    // The seeder refreshes at 100 s; the leecher says nothing after 1 s.
    assert_eq!(
        stat(&mut t, secs(100), "seed", "10.0.0.1", 0).error_code,
        ErrorCode::NoError
    );
    assert_eq!(t.expire(secs(120)), 0);
    assert_eq!(t.expire(secs(121)), 1);
    assert_eq!(t.snapshot().swarms[0].peers[0].peer_id, "seed");
    // The expired leecher is unknown now: 03, and it registers again with CONNECT.
    assert_eq!(
        find(&mut t, secs(122), "leech", "10.0.0.2", 5).error_code,
        ErrorCode::Forbidden
    );
    assert_eq!(t.counters().expired, 1);
    assert_eq!(t.expire(secs(221)), 1);
    assert_eq!((t.peer_count(), t.swarm_count()), (0, 0));
}

#[test]
fn leaving_the_last_swarm_deregisters_and_invalid_actions_are_forbidden() {
    let mut t = Tracker::new(Limits::default());
    // LEAVE of a swarm never joined: the only action is invalid.
    let r = t.handle(
        secs(0),
        ip("10.0.0.9"),
        &connect_req("x", None, &[(S, Action::Leave, PeerMode::Leech)]),
    );
    assert_eq!(r.error_code, ErrorCode::Forbidden);
    assert_eq!(t.peer_count(), 0);
    join(&mut t, secs(0), "a", "10.0.0.1:1", PeerMode::Leech);
    let r = t.handle(
        secs(1),
        ip("10.0.0.1"),
        &connect_req("a", None, &[(S, Action::Leave, PeerMode::Leech)]),
    );
    assert_eq!(r.error_code, ErrorCode::NoError);
    assert_eq!((t.peer_count(), t.swarm_count()), (0, 0));
    assert_eq!(t.counters().deregistered, 1);
    // STAT_REPORT and FIND from peers the tracker does not know: 03.
    assert_eq!(
        stat(&mut t, secs(2), "a", "10.0.0.1", 1).error_code,
        ErrorCode::Forbidden
    );
    // A FIND for a swarm nobody is in: 03 (§2.3.2 C).
    join(&mut t, secs(3), "b", "10.0.0.2:1", PeerMode::Leech);
    let mut r = Request {
        transaction_id: "t".into(),
        peer_id: "b".into(),
        body: RequestBody::Find {
            swarm_id: "nowhere".into(),
            peer_num: None,
        },
    };
    let resp = t.handle(secs(3), ip("10.0.0.2"), &r.encode());
    assert_eq!(
        (resp.error_code, resp.transaction_id.as_str()),
        (ErrorCode::Forbidden, "t")
    );
    // Somebody else's peer ID from another source: 03, and the registration is untouched.
    r.body = RequestBody::Find {
        swarm_id: S.into(),
        peer_num: None,
    };
    assert_eq!(
        t.handle(secs(4), ip("10.9.9.9"), &r.encode()).error_code,
        ErrorCode::Forbidden
    );
    assert_eq!(
        t.handle(secs(4), ip("10.0.0.2"), &r.encode()).error_code,
        ErrorCode::NoError
    );
}

#[test]
fn peer_lists_prefer_seeders_then_peers_reporting_progress() {
    let mut t = Tracker::new(Limits::default());
    for i in 0..10 {
        join(
            &mut t,
            secs(0),
            &format!("l{i}"),
            &format!("10.0.1.{i}:1"),
            PeerMode::Leech,
        );
    }
    join(&mut t, secs(0), "s", "10.0.2.1:1", PeerMode::Seeder);
    stat(&mut t, secs(1), "l7", "10.0.1.7", 5000);
    stat(&mut t, secs(1), "l3", "10.0.1.3", 10);
    join(&mut t, secs(2), "new", "10.0.3.1:1", PeerMode::Leech);
    for round in 0..5 {
        let r = find(&mut t, secs(3), "new", "10.0.3.1", 3);
        let ids: Vec<_> = r.swarm_result[0]
            .peers
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| p.peer_id.clone())
            .collect();
        assert_eq!(ids.len(), 3, "round {round}");
        assert_eq!(ids[0], "s");
        let mut progressed = ids[1..].to_vec();
        progressed.sort();
        assert_eq!(progressed, ["l3", "l7"], "round {round}");
    }
    // Asking for more than there are: everyone else, the requester never.
    let r = find(&mut t, secs(4), "new", "10.0.3.1", 100);
    let n = r.peer_addrs().len();
    assert_eq!(n, 11);
    assert!(!r.peer_addrs().contains(&"10.0.3.1:1".parse().unwrap()));
}

#[test]
fn idle_leechers_are_spread_over_requests() {
    let mut t = Tracker::new(Limits {
        rate_burst: 1000,
        ..Limits::default()
    });
    for i in 0..40 {
        join(
            &mut t,
            secs(0),
            &format!("l{i:02}"),
            &format!("10.0.1.{i}:1"),
            PeerMode::Leech,
        );
    }
    join(&mut t, secs(0), "me", "10.0.9.9:1", PeerMode::Leech);
    let mut seen: BTreeMap<SocketAddr, u32> = BTreeMap::new();
    for _ in 0..200 {
        for a in find(&mut t, secs(1), "me", "10.0.9.9", 5).peer_addrs() {
            *seen.entry(a).or_default() += 1;
        }
    }
    // 1,000 places over 40 peers: 25 each on average; none left out, none hammered.
    assert_eq!(seen.len(), 40);
    let (min, max) = (seen.values().min().unwrap(), seen.values().max().unwrap());
    assert!(*min >= 10 && *max <= 50, "{min}..{max}");
}

#[test]
fn a_growing_crowd_is_not_sent_to_the_same_few() {
    // Each newcomer asks as it joins (a flash crowd): the lists must not all name the same
    // early members.
    let mut t = Tracker::new(Limits::default());
    let mut named: BTreeMap<String, u32> = BTreeMap::new();
    for i in 0..500u32 {
        let addr = format!("10.{}.{}.1:1", i >> 8, i & 255);
        let r = join(&mut t, secs(0), &format!("p{i:03}"), &addr, PeerMode::Leech);
        for p in r.swarm_result[0].peers.iter().flatten() {
            *named.entry(p.peer_id.clone()).or_default() += 1;
        }
    }
    // About 20 names per list over 500 lists: a fair share is ~20 per member for the early
    // ones; a concentrating selection names a few members hundreds of times.
    let max = named.values().max().unwrap();
    assert!(*max < 150, "one member named {max} times");
}

#[test]
fn advertised_addresses_must_be_the_source() {
    let mut t = Tracker::new(Limits::default());
    // Pointing the swarm at someone else: ignored and counted.
    let r = t.handle(
        secs(0),
        ip("10.0.0.5"),
        &connect_req(
            "a",
            Some("192.0.2.99:80"),
            &[(S, Action::Join, PeerMode::Seeder)],
        ),
    );
    assert_eq!(r.error_code, ErrorCode::NoError);
    assert_eq!(t.counters().foreign_addrs_ignored, 1);
    assert!(t.snapshot().swarms[0].peers[0].addrs.is_empty());
    // Unspecified means "where my request comes from".
    t.handle(
        secs(0),
        ip("::ffff:10.0.0.6"),
        &connect_req(
            "b",
            Some("0.0.0.0:6778"),
            &[(S, Action::Join, PeerMode::Seeder)],
        ),
    );
    let r = join(&mut t, secs(1), "c", "10.0.0.7:1", PeerMode::Leech);
    // `a` has no usable address, so only `b` is listed.
    assert_eq!(r.peer_addrs(), ["10.0.0.6:6778".parse().unwrap()]);
}

#[test]
fn a_flood_from_one_source_stays_bounded_and_spares_the_others() {
    let limits = Limits {
        rate_burst: 1_000_000,
        max_peers_per_source: 50,
        ..Limits::default()
    };
    let mut t = Tracker::new(limits);
    join(&mut t, secs(0), "honest", "10.1.0.1:1", PeerMode::Seeder);
    for i in 0..5000 {
        let pid = format!("flood{i}");
        let r = join(&mut t, secs(1), &pid, "10.6.6.6:1", PeerMode::Leech);
        assert_eq!(r.error_code, ErrorCode::NoError);
    }
    assert_eq!(t.peer_count(), 51);
    assert_eq!(t.counters().evicted, 4950);
    assert!(
        t.snapshot().swarms[0]
            .peers
            .iter()
            .any(|p| p.peer_id == "honest")
    );
}

#[test]
fn total_and_per_swarm_caps_and_rate_buckets_are_bounded() {
    let limits = Limits {
        max_peers: 100,
        max_peers_per_swarm: 60,
        max_sources: 30,
        ..Limits::default()
    };
    let mut t = Tracker::new(limits);
    for i in 0..1000u32 {
        let addr = format!("10.{}.{}.{}:1", i >> 16, (i >> 8) & 255, i & 255);
        join(
            &mut t,
            secs(u64::from(i)),
            &format!("p{i}"),
            &addr,
            PeerMode::Leech,
        );
        assert!(t.peer_count() <= 60);
        assert!(t.tracked_sources() <= 30);
    }
    // The newest 60 remain.
    let snap = t.snapshot();
    assert_eq!(snap.swarms[0].peers.len(), 60);
    assert!(snap.swarms[0].peers.iter().any(|p| p.peer_id == "p999"));
    assert!(!snap.swarms[0].peers.iter().any(|p| p.peer_id == "p939"));
}

#[test]
fn a_source_over_its_rate_gets_service_unavailable_until_it_refills() {
    let limits = Limits {
        rate_burst: 5,
        rate_per_sec: 2,
        ..Limits::default()
    };
    let mut t = Tracker::new(limits);
    let codes: Vec<_> = (0..7)
        .map(|i| {
            join(
                &mut t,
                secs(0),
                &format!("p{i}"),
                "10.0.0.1:1",
                PeerMode::Leech,
            )
            .error_code
        })
        .collect();
    assert_eq!(&codes[..5], [ErrorCode::NoError; 5]);
    assert_eq!(&codes[5..], [ErrorCode::ServiceUnavailable; 2]);
    assert_eq!(t.counters().rate_limited, 2);
    // Another source is not affected.
    assert_eq!(
        join(&mut t, secs(0), "q", "10.0.0.2:1", PeerMode::Leech).error_code,
        ErrorCode::NoError
    );
    // Half a second refills one token.
    let r = find(&mut t, Duration::from_millis(500), "p0", "10.0.0.1", 1);
    assert_eq!(r.error_code, ErrorCode::NoError);
    assert_eq!(
        find(&mut t, Duration::from_millis(500), "p0", "10.0.0.1", 1).error_code,
        ErrorCode::ServiceUnavailable
    );
}

#[test]
fn garbage_is_answered_with_bad_request_and_counted() {
    let mut t = Tracker::new(Limits::default());
    for body in [
        &b"\xff\xfe"[..],
        b"{",
        b"{\"PPSPTrackerProtocol\":[]}",
        b"null",
    ] {
        let r = t.handle(secs(0), ip("10.0.0.1"), body);
        assert_eq!(r.error_code, ErrorCode::BadRequest);
    }
    assert_eq!(t.counters().bad_request, 4);
    assert_eq!(t.peer_count(), 0);
    // Over-long identifiers.
    let long = "x".repeat(1000);
    let r = t.handle(
        secs(0),
        ip("10.0.0.1"),
        &connect_req(&long, None, &[(S, Action::Join, PeerMode::Leech)]),
    );
    assert_eq!(r.error_code, ErrorCode::BadRequest);
    let r = t.handle(
        secs(0),
        ip("10.0.0.1"),
        &connect_req("p", None, &[(&long, Action::Join, PeerMode::Leech)]),
    );
    assert_eq!(r.error_code, ErrorCode::BadRequest);
    assert_eq!(t.peer_count(), 0);
}

/// A tracker with a CA issues, on JOIN, FIND and STAT_REPORT, a certificate for the
/// requester's reflexive address that the peers' code accepts; never on LEAVE, never for a
/// swarm ID that is not hex.
#[test]
fn issues_membership_certificates() {
    use ppspp_core::membership::{TrackerKey, check};
    let mut t = Tracker::new(Limits::default());
    let auth = crate::ca::Authority::from_seed([9; 32]).unwrap();
    let key = TrackerKey::from_bytes(auth.public_key());
    t.set_issuing(Some(crate::ca::Issuing {
        authority: auth,
        lifetime_secs: 600,
        unix_at_zero: 1_800_000_000,
    }));
    assert_eq!(t.ca_public_key(), Some(*key.as_bytes()));
    let r = join(&mut t, secs(10), "p1", "192.0.2.1:7000", PeerMode::Leech);
    let der = r.swarm_result[0]
        .membership_cert
        .clone()
        .expect("certificate on JOIN");
    let c = check(
        &der,
        &key,
        1_800_000_010,
        &[0xaa, 0xaa],
        Some("192.0.2.1:7000".parse().unwrap()),
    )
    .unwrap();
    assert_eq!(c.not_after, 1_800_000_610);
    // Survives the JSON round trip.
    let back = Response::decode(&r.encode()).unwrap();
    assert_eq!(
        back.swarm_result[0].membership_cert.as_deref(),
        Some(&der[..])
    );
    // FIND renews it.
    let f = find(&mut t, secs(100), "p1", "192.0.2.1", 5);
    let der2 = f.swarm_result[0]
        .membership_cert
        .clone()
        .expect("certificate on FIND");
    assert_eq!(
        check(&der2, &key, 1_800_000_100, &[0xaa, 0xaa], None)
            .unwrap()
            .not_after,
        1_800_000_700
    );
    // LEAVE: none.
    let bye = t.handle(
        secs(101),
        ip("192.0.2.1"),
        &connect_req(
            "p1",
            Some("192.0.2.1:7000"),
            &[(S, Action::Leave, PeerMode::Leech)],
        ),
    );
    assert!(bye.swarm_result.iter().all(|r| r.membership_cert.is_none()));
    // A swarm ID that is not hex: none.
    let src = ip("192.0.2.2");
    let r = t.handle(
        secs(102),
        src,
        &connect_req(
            "p2",
            Some("192.0.2.2:7000"),
            &[("not-hex", Action::Join, PeerMode::Leech)],
        ),
    );
    assert_eq!(r.swarm_result[0].result, ResponseType::Successful);
    assert!(r.swarm_result[0].membership_cert.is_none());
    assert_eq!(t.counters().certificates, 2);
    // A response with a malformed certificate field is a decode error, not a panic.
    let wire = |cert: &str| {
        format!(
            r#"{{"PPSPTrackerProtocol":{{"version":1,"response_type":0,"error_code":0,"transaction_id":"1","swarm_result":[{{"swarm_id":"aa","result":0,"membership_certificate":"{cert}"}}]}}}}"#
        )
    };
    let good = Response::decode(wire("3000").as_bytes()).unwrap();
    assert_eq!(
        good.swarm_result[0].membership_cert.as_deref(),
        Some(&[0x30, 0][..])
    );
    assert!(Response::decode(wire("xyz").as_bytes()).is_err());
}
