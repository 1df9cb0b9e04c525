//! Membership certificates through the engine (docs/membership.md): private swarms admit only
//! certified peers, certificates travel in handshakes and PEX, bare PEX addresses are ignored.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::net::SocketAddr;

use bytes::Bytes;
use ppspp_tracker::ca::Authority;

use crate::config::SwarmConfig;
use crate::event::{Event, SwarmHandle};
use crate::hash::HashAlgorithm;
use crate::membership::{Membership, TrackerKey};
use crate::merkle::MerkleTree;
use crate::testing::{Datagram, Mesh, Verdict, addr, content, leecher_with, seeder_with};
use crate::time::Duration;
use crate::wire::Message;

const CS: u32 = 1024;
/// The mesh's wall clock at its start: `endpoint_config`'s Unix time at zero plus the mesh's
/// 1,000 s.
const NOW_UNIX: u64 = 1_700_000_000 + 1_000;

struct Ca {
    auth: Authority,
    key: TrackerKey,
}

impl Ca {
    fn new() -> Self {
        let auth = Authority::generate().unwrap();
        let key = TrackerKey::from_bytes(auth.public_key());
        Self { auth, key }
    }

    /// A policy with, if `node` is given, a certificate for that node's address.
    fn policy(&mut self, tree: &MerkleTree, node: Option<usize>, require: bool) -> Membership {
        let mut m = Membership::new(self.key);
        m.require(require);
        if let Some(n) = node {
            m.own_cert(Some(self.cert(tree, addr(n))));
        }
        m
    }

    fn cert(&mut self, tree: &MerkleTree, a: SocketAddr) -> Bytes {
        let der = self
            .auth
            .issue(tree.root_hash().as_ref(), a, NOW_UNIX, 3600)
            .unwrap();
        Bytes::from(der)
    }
}

fn tree_of(data: &[u8]) -> MerkleTree {
    MerkleTree::build(HashAlgorithm::Sha256, CS, data).unwrap()
}

/// Every (sender, destination) pair seen on the network.
fn recorder(mesh: &mut Mesh) -> Rc<RefCell<Vec<(usize, SocketAddr)>>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    mesh.add_filter(move |d: &mut Datagram| {
        s.borrow_mut().push((d.from, d.dst));
        Verdict::Pass
    });
    seen
}

fn connected_to(mesh: &Mesh, node: usize) -> Vec<SocketAddr> {
    mesh.nodes[node]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::PeerConnected { remote, .. } => Some(*remote),
            _ => None,
        })
        .collect()
}

/// A private swarm: seeder 0; leecher 1 knows the seeder; leecher 2 knows only leecher 1 and
/// finds the seeder through the seeder's certificate, relayed by leecher 1 in PEX_REScert.
#[test]
fn certified_peers_complete_and_relay_certificates() {
    let data = content(64 * CS as usize, 11);
    let tree = tree_of(&data);
    let mut ca = Ca::new();
    let mut mesh = Mesh::new(1);
    for _ in 0..3 {
        mesh.add_node();
    }
    let p0 = ca.policy(&tree, Some(0), true);
    let (_, tree) = seeder_with(&mut mesh, 0, &data, CS, HashAlgorithm::Sha256, |c| {
        c.membership(Some(p0));
    });
    let mut hs: Vec<SwarmHandle> = Vec::new();
    for n in 1..3 {
        let p = ca.policy(&tree, Some(n), true);
        let (h, _) = leecher_with(&mut mesh, n, &tree, &data, |c: &mut SwarmConfig| {
            c.membership(Some(p));
        });
        hs.push(h);
    }
    let now = mesh.now;
    mesh.nodes[1].ep.connect(now, hs[0], addr(0)).unwrap();
    mesh.nodes[2].ep.connect(now, hs[1], addr(1)).unwrap();
    let done = mesh.run_until(Duration::from_secs(120), |m| {
        m.complete(1, hs[0]) && m.complete(2, hs[1])
    });
    assert!(done, "private swarm did not complete");
    assert!(
        connected_to(&mesh, 2).contains(&addr(0)),
        "leecher 2 never reached the seeder through a relayed certificate: {:?}",
        connected_to(&mesh, 2)
    );
    for n in 0..3 {
        let st = mesh.nodes[n].ep.stats();
        assert_eq!(st.drops.uncertified, 0, "node {n}");
        assert_eq!(st.drops.bad_certificates, 0, "node {n}");
    }
    assert!(
        mesh.nodes[1].ep.stats().messages_out.0
            [crate::wire::MessageType::PexResCert.code() as usize]
            > 0
    );
}

/// What a private seeder does with a leecher whose certificate is `cert` (None: no
/// certificate); returns whether the leecher completed and the seeder's stats.
fn against_private_seeder(
    make: impl FnOnce(&mut Ca, &MerkleTree) -> Membership,
    ca_for_leecher: Option<Ca>,
) -> (bool, crate::EndpointStats, Vec<SocketAddr>) {
    let data = content(16 * CS as usize, 12);
    let tree = tree_of(&data);
    let mut ca = Ca::new();
    let mut mesh = Mesh::new(2);
    mesh.add_node();
    mesh.add_node();
    let p0 = ca.policy(&tree, Some(0), true);
    let (_, tree) = seeder_with(&mut mesh, 0, &data, CS, HashAlgorithm::Sha256, |c| {
        c.membership(Some(p0));
    });
    let mut lca = ca_for_leecher.unwrap_or(ca);
    let p1 = make(&mut lca, &tree);
    let (h, _) = leecher_with(&mut mesh, 1, &tree, &data, |c| {
        c.membership(Some(p1));
    });
    let now = mesh.now;
    mesh.nodes[1].ep.connect(now, h, addr(0)).unwrap();
    let done = mesh.run_until(Duration::from_secs(30), |m| m.complete(1, h));
    (done, mesh.nodes[0].ep.stats(), connected_to(&mesh, 0))
}

#[test]
fn private_seeder_refuses_uncertified_handshakes() {
    // Control: a certificate for the leecher's own address is admitted.
    let (done, st, peers) = against_private_seeder(|ca, t| ca.policy(t, Some(1), false), None);
    assert!(done && peers == [addr(1)] && st.drops.uncertified == 0);
    // No certificate at all.
    let (done, st, peers) = against_private_seeder(|ca, t| ca.policy(t, None, false), None);
    assert!(!done && peers.is_empty());
    assert!(st.drops.uncertified > 0);
    // A certificate for another address.
    let (done, st, peers) = against_private_seeder(
        |ca, t| {
            let mut m = ca.policy(t, None, false);
            m.own_cert(Some(ca.cert(t, addr(5))));
            m
        },
        None,
    );
    assert!(!done && peers.is_empty());
    assert!(st.drops.uncertified > 0 && st.drops.bad_certificates > 0);
    // A certificate from another authority.
    let (done, st, peers) =
        against_private_seeder(|ca, t| ca.policy(t, Some(1), false), Some(Ca::new()));
    assert!(!done && peers.is_empty());
    assert!(st.drops.uncertified > 0 && st.drops.bad_certificates > 0);
    // An expired one (issued two hours before, for one hour).
    let (done, st, peers) = against_private_seeder(
        |ca, t| {
            let der = ca
                .auth
                .issue(t.root_hash().as_ref(), addr(1), NOW_UNIX - 7200, 3600)
                .unwrap();
            let mut m = ca.policy(t, None, false);
            m.own_cert(Some(Bytes::from(der)));
            m
        },
        None,
    );
    assert!(!done && peers.is_empty());
    assert!(st.drops.uncertified > 0 && st.drops.bad_certificates > 0);
}

/// A leecher that requires certificates leaves a seeder that cannot show one.
#[test]
fn private_leecher_refuses_an_uncertified_seeder() {
    let data = content(16 * CS as usize, 13);
    let mut ca = Ca::new();
    let mut mesh = Mesh::new(3);
    mesh.add_node();
    mesh.add_node();
    let (_, tree) = seeder_with(&mut mesh, 0, &data, CS, HashAlgorithm::Sha256, |_| {});
    let p1 = ca.policy(&tree, Some(1), true);
    let (h, _) = leecher_with(&mut mesh, 1, &tree, &data, |c| {
        c.membership(Some(p1));
    });
    let now = mesh.now;
    mesh.nodes[1].ep.connect(now, h, addr(0)).unwrap();
    let done = mesh.run_until(Duration::from_secs(30), |m| m.complete(1, h));
    assert!(!done);
    assert!(connected_to(&mesh, 1).is_empty());
    assert!(mesh.nodes[1].ep.stats().drops.uncertified > 0);
}

/// A certified member relays the bare address of a non-member it talks to (it does not require
/// certificates). A victim that requires them drops that address and never sends it a
/// datagram; the same victim without the requirement does connect to it (the control).
fn poisoned(require: bool) -> (Vec<(usize, SocketAddr)>, crate::EndpointStats) {
    let data = content(2048 * CS as usize, 14);
    let tree = tree_of(&data);
    let mut ca = Ca::new();
    let mut mesh = Mesh::new(4);
    // Slow enough that the victim is still downloading when PEX connects (once a second).
    mesh.link.latency = Duration::from_millis(100);
    for _ in 0..3 {
        mesh.add_node();
    }
    // Node 0 seeds, certified, not requiring; node 2, uncertified, leeches from it.
    let p0 = ca.policy(&tree, Some(0), false);
    let (_, tree) = seeder_with(&mut mesh, 0, &data, CS, HashAlgorithm::Sha256, |c| {
        c.membership(Some(p0));
    });
    let (h2, _) = leecher_with(&mut mesh, 2, &tree, &data, |_| {});
    let p1 = ca.policy(&tree, Some(1), require);
    let (h1, _) = leecher_with(&mut mesh, 1, &tree, &data, |c| {
        c.membership(Some(p1));
    });
    let seen = recorder(&mut mesh);
    let now = mesh.now;
    mesh.nodes[2].ep.connect(now, h2, addr(0)).unwrap();
    mesh.run_until(Duration::from_millis(500), |_| false);
    let now = mesh.now;
    mesh.nodes[1].ep.connect(now, h1, addr(0)).unwrap();
    mesh.run_until(Duration::from_secs(60), |m| m.complete(1, h1));
    assert!(mesh.complete(1, h1));
    let sent = seen.borrow().clone();
    (sent, mesh.nodes[1].ep.stats())
}

#[test]
fn required_certificates_stop_pex_poisoning() {
    let (sent, st) = poisoned(false);
    assert!(
        sent.contains(&(1, addr(2))),
        "control: without the requirement the victim contacts the relayed address"
    );
    assert_eq!(st.drops.uncertified, 0);
    let (sent, st) = poisoned(true);
    assert!(
        !sent.contains(&(1, addr(2))),
        "contacted an uncertified address"
    );
    assert!(st.drops.uncertified > 0, "the bare address was not counted");
}

/// Our certificate rides in the opening handshake and the reply, as a PEX_REScert.
#[test]
fn certificate_rides_with_the_handshake() {
    let data = content(4 * CS as usize, 15);
    let tree = tree_of(&data);
    let mut ca = Ca::new();
    let mut mesh = Mesh::new(5);
    mesh.add_node();
    mesh.add_node();
    let p0 = ca.policy(&tree, Some(0), true);
    let (_, tree) = seeder_with(&mut mesh, 0, &data, CS, HashAlgorithm::Sha256, |c| {
        c.membership(Some(p0));
    });
    let p1 = ca.policy(&tree, Some(1), true);
    let (h, _) = leecher_with(&mut mesh, 1, &tree, &data, |c| {
        c.membership(Some(p1));
    });
    let hs_with_cert = Rc::new(RefCell::new([false; 2]));
    let hw = hs_with_cert.clone();
    mesh.add_filter(move |d: &mut Datagram| {
        let m = d.messages();
        if matches!(m.first(), Some(Message::Handshake(_)))
            && m.iter().any(|x| matches!(x, Message::PexResCert(_)))
        {
            hw.borrow_mut()[d.from] = true;
        }
        Verdict::Pass
    });
    let now = mesh.now;
    mesh.nodes[1].ep.connect(now, h, addr(0)).unwrap();
    assert!(mesh.run_until(Duration::from_secs(10), |m| m.complete(1, h)));
    assert_eq!(*hs_with_cert.borrow(), [true, true]);
}

/// A renewed certificate reaches peers already connected.
#[test]
fn renewed_certificate_is_sent_to_peers() {
    let data = content(4 * CS as usize, 16);
    let tree = tree_of(&data);
    let mut ca = Ca::new();
    let mut mesh = Mesh::new(6);
    mesh.add_node();
    mesh.add_node();
    let p0 = ca.policy(&tree, Some(0), true);
    let (h0, _) = seeder_with(&mut mesh, 0, &data, CS, HashAlgorithm::Sha256, |c| {
        c.membership(Some(p0));
    });
    let p1 = ca.policy(&tree, Some(1), true);
    let (h, _) = leecher_with(&mut mesh, 1, &tree, &data, |c| {
        c.membership(Some(p1));
    });
    let now = mesh.now;
    mesh.nodes[1].ep.connect(now, h, addr(0)).unwrap();
    assert!(mesh.run_until(Duration::from_secs(10), |m| m.complete(1, h)));
    let before = mesh.nodes[1].ep.stats().messages_in.0
        [crate::wire::MessageType::PexResCert.code() as usize];
    let fresh = ca.cert(&tree, addr(0));
    let now = mesh.now;
    mesh.nodes[0].ep.set_membership_cert(now, h0, fresh);
    mesh.run_until(Duration::from_secs(1), |_| false);
    let after = mesh.nodes[1].ep.stats().messages_in.0
        [crate::wire::MessageType::PexResCert.code() as usize];
    assert_eq!(after, before + 1);
    assert_eq!(mesh.nodes[1].ep.stats().drops.bad_certificates, 0);
}

/// In a private swarm, a datagram that reaches the initiator after a lost reply (not opening
/// with HANDSHAKE) is dropped as any such datagram is, without closing the channel: the
/// retransmitted handshake still completes.
#[test]
fn a_datagram_after_a_lost_reply_does_not_close_the_channel() {
    use crate::wire::{ChannelId, ChunkSpec, WireParams, encode_datagram};
    use core::cell::Cell;
    let data = content(8 * CS as usize, 17);
    let tree = tree_of(&data);
    let mut ca = Ca::new();
    let mut mesh = Mesh::new(7);
    mesh.add_node();
    mesh.add_node();
    let p0 = ca.policy(&tree, Some(0), true);
    let (_, tree) = seeder_with(&mut mesh, 0, &data, CS, HashAlgorithm::Sha256, |c| {
        c.membership(Some(p0));
    });
    let p1 = ca.policy(&tree, Some(1), true);
    let (h, _) = leecher_with(&mut mesh, 1, &tree, &data, |c| {
        c.membership(Some(p1));
    });
    // The leecher's channel ID (from its opening handshake); the seeder's first reply lost.
    let channel = Rc::new(Cell::new(None::<u32>));
    let (ch, dropped) = (channel.clone(), Rc::new(Cell::new(false)));
    mesh.add_filter(move |d: &mut Datagram| {
        if let Some(Message::Handshake(hs)) = d.messages().first() {
            if d.from == 1 && ch.get().is_none() {
                ch.set(Some(hs.source_channel.0));
            }
            if d.from == 0 && !dropped.get() {
                dropped.set(true);
                return Verdict::Drop;
            }
        }
        Verdict::Pass
    });
    let now = mesh.now;
    mesh.nodes[1].ep.connect(now, h, addr(0)).unwrap();
    mesh.run_until(Duration::from_millis(50), |_| false);
    let id = channel.get().expect("the opening handshake went out");
    let mut buf = [0u8; 64];
    let have = [Message::Have(ChunkSpec::Chunks { start: 0, end: 7 })];
    let n = encode_datagram(ChannelId(id), &have, &WireParams::default(), &mut buf).unwrap();
    mesh.inject(1, addr(0), Bytes::copy_from_slice(&buf[..n]));
    assert!(mesh.run_until(Duration::from_secs(10), |m| m.complete(1, h)));
    assert_eq!(mesh.nodes[1].ep.stats().drops.uncertified, 0);
    assert_eq!(connected_to(&mesh, 1), [addr(0)]);
}
