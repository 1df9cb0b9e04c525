use alloc::vec;

use super::*;
use crate::testing::{LinkConfig, Mesh, Verdict, addr, content, leecher_with, seeder};
use crate::wire::Message;
use crate::{Event, hash::HashAlgorithm};

fn t(s: u64) -> Instant {
    Instant::from_secs(s)
}

fn a(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn cfg(target: usize) -> ConnConfig {
    ConnConfig {
        target,
        ..ConnConfig::default()
    }
}

#[test]
fn connects_up_to_the_target_best_sources_first() {
    let mut m = ConnManager::new(cfg(3));
    m.add_candidate(t(0), a("10.0.1.1:1"), PeerSource::Pex);
    m.add_candidate(t(0), a("10.0.2.1:1"), PeerSource::Tracker);
    m.add_candidate(t(0), a("10.0.3.1:1"), PeerSource::Tracker);
    m.add_candidate(t(0), a("10.0.4.1:1"), PeerSource::User);
    let p = m.plan(t(0));
    assert_eq!(
        p.connect,
        [a("10.0.4.1:1"), a("10.0.2.1:1"), a("10.0.3.1:1")]
    );
    assert!(p.drop.is_empty());
    assert_eq!(
        m.plan(t(1)),
        ConnPlan::default(),
        "at the target, nothing more"
    );
    // One closes (it died): the PEX candidate takes its place.
    m.on_closed(t(2), a("10.0.2.1:1"), CloseReason::Dead);
    assert_eq!(m.plan(t(2)).connect, [a("10.0.1.1:1")]);
}

#[test]
fn one_address_block_gets_few_slots() {
    let mut m = ConnManager::new(cfg(8));
    for i in 1..=20 {
        m.add_candidate(
            t(0),
            SocketAddr::new([192, 0, 2, i].into(), 7),
            PeerSource::Tracker,
        );
    }
    for i in 1..=5u16 {
        let ip = core::net::Ipv6Addr::new(0x2001, 0xdb8, 7, i, 0, 0, 0, 1);
        m.add_candidate(t(0), SocketAddr::new(ip.into(), 7), PeerSource::Tracker);
    }
    // IPv4-mapped addresses of the same /24 count in it too.
    m.add_candidate(t(0), a("[::ffff:192.0.2.200]:7"), PeerSource::User);
    m.add_candidate(t(0), a("198.51.100.1:7"), PeerSource::Tracker);
    let p = m.plan(t(0));
    let v4_block = p
        .connect
        .iter()
        .filter(|x| address_block(**x) == address_block(a("192.0.2.1:7")))
        .count();
    let v6_block = p
        .connect
        .iter()
        .filter(|x| x.is_ipv6() && address_block(**x).0 == 6)
        .count();
    assert_eq!(v4_block, 2, "{:?}", p.connect);
    assert_eq!(v6_block, 2, "{:?}", p.connect);
    assert!(p.connect.contains(&a("198.51.100.1:7")));
    assert_eq!(p.connect.len(), 5);
    assert!(m.counters().block_limited > 0);
    // One host or one LAN is not limited.
    let mut m = ConnManager::new(cfg(8));
    for port in 1..=6 {
        m.add_candidate(
            t(0),
            SocketAddr::new([127, 0, 0, 1].into(), port),
            PeerSource::Tracker,
        );
        m.add_candidate(
            t(0),
            SocketAddr::new([192, 168, 1, 9].into(), port),
            PeerSource::Tracker,
        );
    }
    assert_eq!(m.plan(t(0)).connect.len(), 8);
}

#[test]
fn peers_learnt_by_pex_get_at_most_their_share() {
    // An eclipse attempt: 200 PEX addresses from many blocks, 3 tracker peers.
    let mut m = ConnManager::new(cfg(8));
    for i in 0..200u32 {
        let ip = core::net::Ipv4Addr::from(0x0a00_0000 + (i << 8) + 1);
        m.add_candidate(t(0), SocketAddr::new(ip.into(), 9), PeerSource::Pex);
    }
    for i in 1..=3 {
        m.add_candidate(
            t(0),
            SocketAddr::new([172, 16, i, 1].into(), 9),
            PeerSource::Tracker,
        );
    }
    let p = m.plan(t(0));
    let pex = p
        .connect
        .iter()
        .filter(|x| matches!(x.ip(), IpAddr::V4(v) if v.octets()[0] == 10))
        .count();
    assert_eq!(pex, 4, "50% of a target of 8");
    assert_eq!(p.connect.len(), 7, "three tracker peers and four PEX ones");
    assert!(m.counters().pex_limited > 0);
}

#[test]
fn a_peer_that_sent_bad_content_is_never_tried_again() {
    let mut m = ConnManager::new(cfg(4));
    let bad = a("10.0.0.66:1");
    m.add_candidate(t(0), bad, PeerSource::Tracker);
    assert_eq!(m.plan(t(0)).connect, [bad]);
    m.on_connected(t(0), bad);
    m.on_closed(t(1), bad, CloseReason::IntegrityFailure);
    assert!(m.is_banned(bad));
    for s in [PeerSource::User, PeerSource::Tracker, PeerSource::Pex] {
        m.add_candidate(t(2), bad, s);
    }
    assert_eq!(m.counters().banned_ignored, 3);
    assert!(m.plan(t(1000)).connect.is_empty());
    // Bans are bounded.
    let mut m = ConnManager::new(ConnConfig {
        max_banned: 10,
        ..ConnConfig::default()
    });
    for i in 0..100u16 {
        m.on_closed(
            t(u64::from(i)),
            SocketAddr::new([10, 0, 0, 1].into(), i + 1),
            CloseReason::ProtocolViolation,
        );
    }
    assert_eq!(m.banned.len(), 10);
    assert!(m.is_banned(SocketAddr::new([10, 0, 0, 1].into(), 100)));
}

#[test]
fn silent_peers_are_retried_with_growing_delays() {
    let mut m = ConnManager::new(cfg(4));
    let p = a("10.0.0.7:1");
    m.add_candidate(t(0), p, PeerSource::Tracker);
    let mut now = t(0);
    let mut delays = vec![];
    assert_eq!(m.plan(now).connect, [p]);
    for _ in 0..9 {
        m.on_closed(now, p, CloseReason::HandshakeTimeout);
        // Not before its time: plan again each second until it is linked.
        let mut s = now;
        while m.plan(s).connect.is_empty() {
            s += Duration::from_secs(1);
        }
        delays.push((s - now).as_secs());
        now = s;
    }
    assert_eq!(delays, [5, 10, 20, 40, 80, 160, 320, 600, 600]);
}

#[test]
fn a_peer_that_never_delivers_is_replaced_when_a_candidate_waits() {
    let mut m = ConnManager::new(cfg(2));
    let (x, y, z) = (a("10.0.1.1:1"), a("10.0.2.1:1"), a("10.0.3.1:1"));
    m.add_candidate(t(0), x, PeerSource::Tracker);
    m.add_candidate(t(0), y, PeerSource::Tracker);
    m.plan(t(0));
    m.on_connected(t(0), x);
    m.on_connected(t(0), y);
    m.on_delivered(x, 1000);
    // No candidate waiting: nobody is dropped however idle.
    assert_eq!(m.plan(t(100)), ConnPlan::default());
    m.add_candidate(t(100), z, PeerSource::Pex);
    let p = m.plan(t(100));
    assert_eq!(p.drop, [y]);
    assert_eq!(p.connect, [z]);
    assert_eq!(m.counters().replaced, 1);
    // Within the grace period a new peer is left alone.
    m.on_connected(t(100), z);
    m.add_candidate(t(101), a("10.0.4.1:1"), PeerSource::Tracker);
    assert!(m.plan(t(105)).drop.is_empty());
}

#[test]
fn the_candidate_table_is_bounded_and_gives_way_to_better_sources() {
    let mut m = ConnManager::new(ConnConfig {
        max_candidates: 10,
        ..ConnConfig::default()
    });
    for i in 0..50u16 {
        m.add_candidate(
            t(0),
            SocketAddr::new([10, 0, 0, 1].into(), i + 1),
            PeerSource::Pex,
        );
    }
    assert_eq!(m.candidates(), 10);
    for i in 0..5u16 {
        m.add_candidate(
            t(0),
            SocketAddr::new([10, 9, 0, 1].into(), i + 1),
            PeerSource::Tracker,
        );
    }
    assert_eq!(m.candidates(), 10);
    let trackers = m
        .candidates
        .values()
        .filter(|c| c.source == PeerSource::Tracker)
        .count();
    assert_eq!(trackers, 5);
}

/// In memory, on the engine: a leecher whose manager knows a peer that corrupts DATA, a
/// silent address and the honest seeder completes from the seeder, bans the corrupter and
/// never connects to it again.
#[test]
fn on_the_engine_bad_and_silent_peers_are_left_behind() {
    let mut mesh = Mesh::new(7);
    let honest = mesh.add_node();
    let corrupt = mesh.add_node();
    let silent = mesh.add_node();
    let me = mesh.add_node();
    let data = content(64 * 1024, 3);
    let (_, tree) = seeder(&mut mesh, honest, &data, 1024, HashAlgorithm::Sha256);
    seeder(&mut mesh, corrupt, &data, 1024, HashAlgorithm::Sha256);
    mesh.nodes[silent].alive = false;
    // Node `corrupt` flips a byte of every DATA payload it sends.
    mesh.add_filter(move |d: &mut crate::testing::Datagram| {
        if d.from == corrupt && d.carries(|m| matches!(m, Message::Data(_))) {
            if let Some(b) = d.bytes.last_mut() {
                *b ^= 0xff;
            }
        }
        Verdict::Pass
    });
    mesh.link = LinkConfig::default();
    let (sw, store) = leecher_with(&mut mesh, me, &tree, &data, |c| {
        // PEX off: the manager alone decides whom to connect to.
        c.pex(false);
    });
    let mut m = ConnManager::new(cfg(1));
    // Address order puts the corrupter and the silent node before the seeder.
    m.add_candidate(mesh.now, addr(corrupt), PeerSource::Tracker);
    m.add_candidate(mesh.now, addr(silent), PeerSource::Tracker);
    m.add_candidate(mesh.now, addr(honest), PeerSource::Pex);
    let mut seen = 0;
    let mut connects = vec![];
    let deadline = mesh.now + Duration::from_secs(600);
    while mesh.now < deadline && !mesh.complete(me, sw) {
        let now = mesh.now;
        let events: Vec<Event> = mesh.nodes[me].events[seen..].to_vec();
        seen = mesh.nodes[me].events.len();
        for e in events {
            match e {
                Event::PeerConnected { remote, .. } => m.on_connected(now, remote),
                Event::PeerClosed { remote, reason, .. } => m.on_closed(now, remote, reason),
                _ => {}
            }
        }
        for p in m.plan(now).connect {
            connects.push(p);
            mesh.nodes[me].ep.connect(now, sw, p).unwrap();
        }
        if !mesh.step() {
            break;
        }
    }
    assert!(mesh.complete(me, sw), "the leecher completes");
    assert_eq!(store.assembled(), data);
    assert!(m.is_banned(addr(corrupt)));
    assert_eq!(
        connects.iter().filter(|p| **p == addr(corrupt)).count(),
        1,
        "{connects:?}"
    );
    assert!(connects.contains(&addr(silent)));
    assert_eq!(*connects.last().unwrap(), addr(honest), "{connects:?}");
}
