//! PEX as the engine uses it: anti-eclipse limits on the addresses it connects to.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::net::SocketAddr;

use crate::hash::HashAlgorithm;
use crate::testing::{Datagram, Mesh, Verdict, content, leecher_with, seeder};
use crate::time::Duration;

/// A leecher (room for `max_peers`) downloading from a seeder 100 ms away is told by PEX, on
/// its channel to the seeder, of `learnt`; returns the addresses it sent datagrams to until
/// it completed, and how many it left for the block limit.
fn told_by_pex(seed: u64, max_peers: usize, learnt: &[SocketAddr]) -> (Vec<SocketAddr>, u64) {
    let data = content(2048 * 1024, seed);
    let mut mesh = Mesh::new(seed);
    // Slow enough that the leecher is still downloading when PEX connects (once a second).
    mesh.link.latency = Duration::from_millis(100);
    let s = mesh.add_node();
    let l = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, s, &data, 1024, HashAlgorithm::Sha1);
    let (lh, _) = leecher_with(&mut mesh, l, &tree, &data, |c| {
        c.max_peers(max_peers);
    });
    let sent: Rc<RefCell<Vec<SocketAddr>>> = Rc::new(RefCell::new(Vec::new()));
    let rec = sent.clone();
    mesh.add_filter(move |d: &mut Datagram| {
        rec.borrow_mut().push(d.dst);
        Verdict::Pass
    });
    let sa = mesh.nodes[s].addr;
    let now = mesh.now;
    mesh.nodes[l].ep.connect(now, lh, sa).unwrap();
    mesh.run_until(Duration::from_millis(500), |_| false);
    let ep = &mut mesh.nodes[l].ep;
    let idx = ep.slot_of(lh).unwrap();
    let id = *ep.swarms[idx].as_ref().unwrap().channels.first().unwrap();
    assert!(ep.chan(id).unwrap().is_established());
    for &a in learnt {
        ep.learn_pex_addr(id, a);
    }
    mesh.run_until(Duration::from_secs(20), |m| m.complete(l, lh));
    let limited = mesh.nodes[l].ep.stats().drops.pex_block_limited;
    let sent = sent.borrow().clone();
    (sent, limited)
}

/// 16 addresses in one public /24 (an attacker's network) and 4 in other blocks: at most
/// `PEX_MAX_PER_BLOCK` of the 16 are tried, and all 4 others.
#[test]
fn pex_connects_to_few_addresses_of_one_block() {
    let attacker: Vec<SocketAddr> = (1..=16)
        .map(|i| SocketAddr::from(([203, 0, 113, i], 6778)))
        .collect();
    let others: Vec<SocketAddr> = [
        [198, 51, 100, 7],
        [192, 0, 2, 9],
        [9, 9, 9, 9],
        [1, 1, 1, 1],
    ]
    .into_iter()
    .map(|ip| SocketAddr::from((ip, 6778)))
    .collect();
    let all: Vec<SocketAddr> = attacker.iter().chain(&others).copied().collect();
    let (sent, limited) = told_by_pex(21, 50, &all);
    let tried = |set: &[SocketAddr]| set.iter().filter(|a| sent.contains(a)).count();
    assert_eq!(tried(&others), others.len(), "every other block is tried");
    assert!(
        tried(&attacker) <= crate::PEX_MAX_PER_BLOCK,
        "{} addresses of one /24 tried",
        tried(&attacker)
    );
    assert!(limited > 0);
}

/// Room for 8 peers and 20 addresses learnt, one per /24 (no block limit): PEX fills at most
/// `PEX_MAX_SHARE` percent of the peers (RFC 7574 §12.2.3), leaving room for peers from the
/// tracker or the user.
#[test]
fn pex_fills_at_most_its_share_of_the_peers() {
    let learnt: Vec<SocketAddr> = (1..=20)
        .map(|i| SocketAddr::from(([198, 18, i, 1], 6778)))
        .collect();
    let (sent, _) = told_by_pex(22, 8, &learnt);
    let tried = learnt.iter().filter(|a| sent.contains(a)).count();
    assert_eq!(
        tried,
        8 * crate::PEX_MAX_SHARE / 100,
        "{tried} PEX addresses tried"
    );
}
