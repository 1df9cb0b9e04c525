//! Hybrid delivery tests: an origin model ([`TestOrigin`]) beside in-memory peers.

use alloc::vec::Vec;

use crate::event::Event;
use crate::hash::HashAlgorithm;
use crate::merkle::MerkleTree;
use crate::testing::{LinkConfig, Mesh, TestOrigin, content, leecher, seeder};
use crate::time::Duration;

const CHUNK: u32 = 1024;

fn origin_events(mesh: &Mesh, node: usize) -> (usize, usize) {
    let ev = &mesh.nodes[node].events;
    let lies = ev
        .iter()
        .filter(|e| matches!(e, Event::OriginIntegrityFailure { .. }))
        .count();
    let disabled = ev
        .iter()
        .filter(|e| matches!(e, Event::OriginDisabled { .. }))
        .count();
    (lies, disabled)
}

/// A leecher with no peer downloads from the origin alone; every byte is verified content.
fn origin_only(len: usize) {
    let data = content(len, 7);
    let tree = MerkleTree::build(HashAlgorithm::Sha1, CHUNK, &data).unwrap();
    let mut mesh = Mesh::new(1);
    let l = mesh.add_node();
    let (lh, store) = leecher(&mut mesh, l, &tree, &data);
    let mut o = TestOrigin::new(data.clone(), &tree);
    o.latency = Duration::from_millis(20);
    let server = mesh.add_origin_server(o);
    let oh = mesh.add_origin(l, lh, server);
    assert!(mesh.run_until(Duration::from_secs(60), |m| m.complete(l, lh)));
    assert_eq!(store.assembled(), data);
    assert_eq!(store.refused(), 0);
    let stats = mesh.nodes[l].ep.stats();
    assert_eq!(stats.origin_content_in, data.len() as u64);
    assert_eq!(stats.content_in, 0);
    assert_eq!(stats.peer_efficiency(), Some(0.0));
    assert_eq!(stats.integrity_failures, 0);
    let os = mesh.nodes[l].ep.origin_stats(oh).unwrap();
    assert_eq!(os.content_in, data.len() as u64);
    // Each byte once: nothing fetched twice.
    assert_eq!(mesh.origins[server].content_served, data.len() as u64);
    let sw = mesh.nodes[l].ep.swarm(lh).unwrap();
    assert_eq!(sw.content_from_origins(), data.len() as u64);
    assert_eq!(sw.peer_efficiency(), Some(0.0));
}

#[test]
fn removing_a_swarm_forgets_its_origins() {
    let data = content(64 * 1024, 17);
    let tree = MerkleTree::build(HashAlgorithm::Sha1, CHUNK, &data).unwrap();
    let mut mesh = Mesh::new(9);
    let l = mesh.add_node();
    let (lh, _store) = leecher(&mut mesh, l, &tree, &data);
    let server = mesh.add_origin_server(TestOrigin::new(data.clone(), &tree));
    let oh = mesh.add_origin(l, lh, server);
    let now = mesh.now;
    let ep = &mut mesh.nodes[l].ep;
    assert!(ep.origins().any(|h| h == oh));
    assert!(ep.remove_swarm(now, lh).is_some());
    assert_eq!(ep.origins().count(), 0);
    assert!(ep.origin_stats(oh).is_none());
    assert!(ep.poll_origin_fetch().is_none());
}

#[test]
fn origin_alone_small_content_whole_sidecar_in_one_fetch() {
    // 300 chunks: the sidecar (about 12 KB) fits the first fetch.
    origin_only(300 * 1024 - 100);
}

#[test]
fn origin_alone_large_content_fetches_leaf_hashes_per_block() {
    // 5,000 chunks: the sidecar (about 200 KB) does not fit the first fetch; leaf hashes
    // come per node of the lowest layer it held.
    let data = content(5000 * 1024 - 3, 8);
    let tree = MerkleTree::build(HashAlgorithm::Sha1, CHUNK, &data).unwrap();
    let sidecar = crate::merkle::sidecar_bytes(&tree).len() as u64;
    assert!(sidecar > crate::endpoint::TREE_PREFIX);
    origin_only(data.len());
}

#[test]
fn origin_serving_a_corrupt_chunk_is_caught_and_the_chunk_never_stored() {
    let data = content(200 * 1024, 9);
    let tree = MerkleTree::build(HashAlgorithm::Sha1, CHUNK, &data).unwrap();
    let mut mesh = Mesh::new(2);
    let l = mesh.add_node();
    let (lh, store) = leecher(&mut mesh, l, &tree, &data);
    let mut bad = TestOrigin::new(data.clone(), &tree);
    bad.corrupt.insert(37);
    let bad_server = mesh.add_origin_server(bad);
    let good_server = mesh.add_origin_server(TestOrigin::new(data.clone(), &tree));
    mesh.add_origin(l, lh, bad_server);
    assert!(mesh.run_until(Duration::from_secs(5), |m| { origin_events(m, 0).0 > 0 }));
    // The bad origin's chunk 37 never reached the store; its neighbours in the same
    // answer before it did (each chunk is checked on its own).
    assert!(!store.holds(37));
    let ev = &mesh.nodes[l].events;
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::OriginIntegrityFailure {
            chunk: Some(37),
            ..
        }
    )));
    // A good origin finishes the job.
    mesh.add_origin(l, lh, good_server);
    assert!(mesh.run_until(Duration::from_secs(120), |m| m.complete(l, lh)));
    assert_eq!(store.assembled(), data);
    // The checking store refuses any write that differs from the content: none came.
    assert_eq!(store.refused(), 0);
    let stats = mesh.nodes[l].ep.stats();
    assert!(stats.origin_integrity_failures >= 1);
    assert_eq!(stats.integrity_failures, stats.origin_integrity_failures);
}

#[test]
fn an_origin_that_keeps_lying_is_disabled() {
    let data = content(64 * 1024, 10);
    let tree = MerkleTree::build(HashAlgorithm::Sha1, CHUNK, &data).unwrap();
    let mut mesh = Mesh::new(3);
    let l = mesh.add_node();
    let (lh, store) = leecher(&mut mesh, l, &tree, &data);
    let mut bad = TestOrigin::new(data.clone(), &tree);
    bad.corrupt.extend(0..64);
    let s = mesh.add_origin_server(bad);
    let oh = mesh.add_origin(l, lh, s);
    mesh.run_until(Duration::from_secs(300), |m| origin_events(m, 0).1 > 0);
    let (lies, disabled) = origin_events(&mesh, l);
    // Fetches already out when it was disabled may add an offence or so.
    assert!(lies as u32 >= crate::endpoint::MAX_LIES);
    assert_eq!(disabled, 1);
    assert!(mesh.nodes[l].ep.origin_stats(oh).unwrap().disabled);
    assert!(store.held().is_empty());
    // Disabled means asked nothing more.
    let fetches = mesh.origins[s].fetches;
    mesh.run_until(Duration::from_secs(60), |_| false);
    assert_eq!(mesh.origins[s].fetches, fetches);
}

#[test]
fn a_sidecar_of_other_content_is_refused() {
    let data = content(64 * 1024, 11);
    let other = content(64 * 1024, 12);
    let tree = MerkleTree::build(HashAlgorithm::Sha1, CHUNK, &data).unwrap();
    let other_tree = MerkleTree::build(HashAlgorithm::Sha1, CHUNK, &other).unwrap();
    let mut mesh = Mesh::new(4);
    let l = mesh.add_node();
    let (lh, store) = leecher(&mut mesh, l, &tree, &data);
    let s = mesh.add_origin_server(TestOrigin::new(other.clone(), &other_tree));
    mesh.add_origin(l, lh, s);
    mesh.run_until(Duration::from_secs(300), |m| origin_events(m, 0).1 > 0);
    let (lies, disabled) = origin_events(&mesh, l);
    assert!(lies >= 1 && disabled == 1);
    assert!(store.held().is_empty());
    assert_eq!(mesh.origins[s].content_served, 0);
}

#[test]
fn an_origin_without_sidecar_is_disabled_and_peers_still_deliver() {
    let data = content(100 * 1024, 13);
    let mut mesh = Mesh::new(5);
    let s = mesh.add_node();
    let l = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, s, &data, CHUNK, HashAlgorithm::Sha1);
    let (lh, store) = leecher(&mut mesh, l, &tree, &data);
    let mut o = TestOrigin::new(data.clone(), &tree);
    o.no_sidecar = true;
    let server = mesh.add_origin_server(o);
    mesh.add_origin(l, lh, server);
    let sa = mesh.nodes[s].addr;
    mesh.nodes[l].ep.connect(mesh.now, lh, sa).unwrap();
    assert!(mesh.run_until(Duration::from_secs(60), |m| m.complete(l, lh)));
    assert_eq!(store.assembled(), data);
    assert_eq!(origin_events(&mesh, l).1, 1);
    assert_eq!(mesh.nodes[l].ep.stats().peer_efficiency(), Some(1.0));
}

/// A seeder peer and an origin; returns (origin content bytes, peer content bytes).
fn hybrid(peer_latency_ms: u64, with_peer: bool) -> (u64, u64) {
    let data = content(2048 * 1024, 14);
    let mut mesh = Mesh::new(6);
    mesh.link = LinkConfig {
        latency: Duration::from_millis(peer_latency_ms),
        ..LinkConfig::default()
    };
    let s = mesh.add_node();
    let l = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, s, &data, CHUNK, HashAlgorithm::Sha1);
    let (lh, store) = leecher(&mut mesh, l, &tree, &data);
    let mut o = TestOrigin::new(data.clone(), &tree);
    o.latency = Duration::from_millis(25);
    o.bandwidth = 4 << 20;
    let server = mesh.add_origin_server(o);
    mesh.add_origin(l, lh, server);
    if with_peer {
        let sa = mesh.nodes[s].addr;
        mesh.nodes[l].ep.connect(mesh.now, lh, sa).unwrap();
    }
    assert!(mesh.run_until(Duration::from_secs(120), |m| m.complete(l, lh)));
    assert_eq!(store.assembled(), data);
    assert_eq!(store.refused(), 0);
    let st = mesh.nodes[l].ep.stats();
    assert_eq!(st.origin_content_in + st.content_in, data.len() as u64);
    (st.origin_content_in, st.content_in)
}

#[test]
fn with_a_fast_peer_the_origin_serves_only_the_critical_window() {
    let (alone, _) = hybrid(10, false);
    assert_eq!(alone, 2048 * 1024);
    let critical = crate::endpoint::CRITICAL_WINDOW * 4 * u64::from(CHUNK);
    // A peer that answers before the origin's tree arrives: the origin is hardly needed.
    let (origin, peers) = hybrid(10, true);
    assert!(origin <= critical, "origin {origin} bytes, peers {peers}");
    // A peer 40 ms away: the origin serves the start while the peer proves itself, then
    // nothing more (the critical window, no more).
    let (origin, peers) = hybrid(40, true);
    assert!(
        origin > 0 && origin <= critical,
        "origin {origin} bytes, peers {peers} (critical window {critical})"
    );
    let eff = peers as f64 / (peers + origin) as f64;
    assert!(eff > 0.95, "peer efficiency {eff}");
}

#[test]
fn a_slow_origin_does_not_hold_the_last_chunks_back() {
    // The origin's tree is quick, its content takes a minute: the chunks it claimed at the
    // start (before the peer proved itself) must still come from the peer, in the endgame,
    // not wait for the origin.
    let data = content(300 * 1024, 16);
    let mut mesh = Mesh::new(8);
    mesh.link = LinkConfig {
        latency: Duration::from_millis(40),
        ..LinkConfig::default()
    };
    let s = mesh.add_node();
    let l = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, s, &data, CHUNK, HashAlgorithm::Sha1);
    let (lh, store) = leecher(&mut mesh, l, &tree, &data);
    let mut o = TestOrigin::new(data.clone(), &tree);
    o.latency = Duration::from_millis(5);
    o.content_delay = Duration::from_secs(60);
    let server = mesh.add_origin_server(o);
    mesh.add_origin(l, lh, server);
    let sa = mesh.nodes[s].addr;
    mesh.nodes[l].ep.connect(mesh.now, lh, sa).unwrap();
    let start = mesh.now;
    assert!(mesh.run_until(Duration::from_secs(120), |m| m.complete(l, lh)));
    let took = mesh.now.saturating_duration_since(start);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(store.assembled(), data);
    let st = mesh.nodes[l].ep.stats();
    assert_eq!(st.origin_content_in, 0);
}

#[test]
fn origin_down_for_a_while_then_back() {
    let data = content(300 * 1024, 15);
    let tree = MerkleTree::build(HashAlgorithm::Sha1, CHUNK, &data).unwrap();
    let mut mesh = Mesh::new(7);
    let l = mesh.add_node();
    let (lh, store) = leecher(&mut mesh, l, &tree, &data);
    let mut o = TestOrigin::new(data.clone(), &tree);
    o.latency = Duration::from_millis(10);
    o.bandwidth = 100 * 1024;
    let start = mesh.now;
    o.down
        .push(start + Duration::from_secs(1)..start + Duration::from_secs(4));
    let server = mesh.add_origin_server(o);
    let oh = mesh.add_origin(l, lh, server);
    assert!(mesh.run_until(Duration::from_secs(120), |m| m.complete(l, lh)));
    assert_eq!(store.assembled(), data);
    let os = mesh.nodes[l].ep.origin_stats(oh).unwrap();
    assert!(os.failures > 0);
    assert!(!os.disabled);
    // Backoff: a handful of failed fetches over 3 s, not one per poll.
    assert!(os.failures < 20, "{} failures", os.failures);
}

#[test]
fn sidecar_layout_round_trips() {
    for len in [1usize, 1023, 1024, 1025, 7 * 1024 + 1018, 100_000] {
        let data = content(len, len as u64);
        let tree = MerkleTree::build(HashAlgorithm::Sha256, CHUNK, &data).unwrap();
        let bytes = crate::merkle::sidecar_bytes(&tree);
        let layout = crate::merkle::SidecarLayout::parse(&bytes).unwrap();
        assert_eq!(layout.total_len(), bytes.len() as u64);
        assert_eq!(layout.chunks(), tree.chunk_count());
        assert_eq!(layout.lowest_layer_within(bytes.len() as u64), Some(0));
        let root = layout.layer_bytes(layout.root_layer(), 0..1);
        assert_eq!(
            &bytes[root.start as usize..root.end as usize],
            tree.root_hash().as_bytes()
        );
        let mut bad = bytes.clone();
        bad[0] ^= 1;
        assert!(crate::merkle::SidecarLayout::parse(&bad).is_err());
    }
}

#[test]
fn add_layer_under_rejects_a_wrong_hash_and_records_nothing() {
    let data = content(37 * 1024, 16);
    let tree = MerkleTree::build(HashAlgorithm::Sha1, CHUNK, &data).unwrap();
    let bytes = crate::merkle::sidecar_bytes(&tree);
    let layout = crate::merkle::SidecarLayout::parse(&bytes).unwrap();
    let mut p = crate::merkle::PartialTree::new(
        HashAlgorithm::Sha1,
        CHUNK,
        tree.root_hash(),
        crate::merkle::ContentSize::Chunks(37),
    )
    .unwrap();
    let root = crate::bin::Bin::root_covering(37).unwrap();
    let leaves = layout.layer_bytes(0, 0..u64::MAX);
    let mut wrong: Vec<u8> = bytes[leaves.start as usize..leaves.end as usize].to_vec();
    wrong[5] ^= 1;
    assert!(p.add_layer_under(root, 0, &wrong).is_err());
    assert!(p.verify_chunk(0, &data[..1024]).is_err());
    assert!(
        p.add_layer_under(root, 0, &wrong[..wrong.len() - 1])
            .is_err()
    );
    let right = &bytes[leaves.start as usize..leaves.end as usize];
    p.add_layer_under(root, 0, right).unwrap();
    for c in 0..37u64 {
        let a = c as usize * 1024;
        let chunk = &data[a..(a + 1024).min(data.len())];
        p.verify_chunk(c, chunk).unwrap();
    }
    let mut bad = data[..1024].to_vec();
    bad[0] ^= 1;
    assert!(p.verify_chunk(0, &bad).is_err());
}

#[test]
fn two_leechers_sharing_an_origin_fetch_different_parts() {
    let data = content(4 * 1024 * 1024, 17);
    let tree = MerkleTree::build(HashAlgorithm::Sha1, CHUNK, &data).unwrap();
    let mut mesh = Mesh::new(8);
    mesh.link = LinkConfig {
        latency: Duration::from_millis(5),
        ..LinkConfig::default()
    };
    let a = mesh.add_node();
    let b = mesh.add_node();
    let (ah, astore) = leecher(&mut mesh, a, &tree, &data);
    let (bh, bstore) = leecher(&mut mesh, b, &tree, &data);
    let mut o = TestOrigin::new(data.clone(), &tree);
    o.latency = Duration::from_millis(20);
    // The origin's uplink is the bottleneck: what peers can take over matters.
    o.bandwidth = 2 << 20;
    let server = mesh.add_origin_server(o);
    mesh.add_origin(a, ah, server);
    mesh.add_origin(b, bh, server);
    let ba = mesh.nodes[b].addr;
    mesh.nodes[a].ep.connect(mesh.now, ah, ba).unwrap();
    assert!(
        mesh.run_until(Duration::from_secs(120), |m| m.complete(a, ah)
            && m.complete(b, bh))
    );
    assert_eq!(astore.assembled(), data);
    assert_eq!(bstore.assembled(), data);
    let served = mesh.origins[server].content_served;
    // Each leecher alone would take a whole copy; together they take well under two.
    assert!(
        served < data.len() as u64 * 3 / 2,
        "the origin served {served} bytes for two leechers of {}",
        data.len()
    );
    let (ea, eb) = (
        mesh.nodes[a].ep.stats().peer_efficiency().unwrap(),
        mesh.nodes[b].ep.stats().peer_efficiency().unwrap(),
    );
    assert!(ea > 0.2 && eb > 0.2, "peer efficiency {ea:.2} {eb:.2}");
}

/// A reader at 512 KiB/s (200 ms startup) with a seeder 250 ms away, with or without an origin 20 ms away;
/// returns (chunks verified after their deadline, origin bytes, peer bytes).
fn late_chunks(with_origin: bool) -> (u64, u64, u64) {
    let data = content(4 * 1024 * 1024, 18);
    let mut mesh = Mesh::new(9);
    mesh.link = LinkConfig {
        latency: Duration::from_millis(250),
        ..LinkConfig::default()
    };
    // An origin of 8 times the stream (as fast as a CDN edge, not unlimited).
    let (_, l, lh, store) = viewer_beside_seeder(&mut mesh, &data, with_origin);
    let playback = crate::Playback::at(0).with_bitrate(512 * 1024);
    mesh.nodes[l].ep.set_playback(mesh.now, lh, playback);
    // Deadlines of the first window, fixed when playback was set, after a startup buffer of
    // 200 ms (the sidecar and the first chunks take two round trips to the origin).
    let sw = mesh.nodes[l].ep.swarm(lh).unwrap();
    let startup = Duration::from_millis(200);
    let deadlines: Vec<_> = (0..256)
        .filter_map(|c| sw.deadline(c))
        .map(|d| d + startup)
        .collect();
    let mut late = 0;
    let mut checked = 0;
    let end = mesh.now + Duration::from_secs(60);
    while mesh.now < end && !mesh.complete(l, lh) {
        mesh.step();
        let run = mesh.nodes[l].ep.swarm(lh).unwrap().verified_run(0);
        while checked < deadlines.len() && deadlines[checked] <= mesh.now {
            if run <= checked as u64 {
                late += 1;
            }
            checked += 1;
        }
    }
    assert!(mesh.complete(l, lh));
    assert_eq!(store.assembled(), data);
    let st = mesh.nodes[l].ep.stats();
    (late, st.origin_content_in, st.content_in)
}

#[test]
fn deadlines_nearer_than_peers_can_deliver_go_to_the_origin() {
    let (late_without, ..) = late_chunks(false);
    let (late_with, origin, peers) = late_chunks(true);
    // The seeder's first chunk arrives after 3 round trips (750 ms): without the origin the
    // first chunks are late; with it, none is.
    assert!(late_without > 0, "baseline: {late_without} late chunks");
    assert_eq!(late_with, 0, "with the origin: {late_with} late");
    // Both served: the origin what the far peer could not deliver in time.
    assert!(origin > 0 && peers > 0, "origin {origin} peers {peers}");
}

/// A seeder (node `s`) of `data` and a leecher (node `l`) connecting to it, with an origin
/// 20 ms away at 4 MiB/s when `with_origin`: returns (s, l, the leecher's swarm, its store).
fn viewer_beside_seeder(
    mesh: &mut Mesh,
    data: &[u8],
    with_origin: bool,
) -> (
    usize,
    usize,
    crate::event::SwarmHandle,
    crate::testing::CheckingStore,
) {
    let s = mesh.add_node();
    let l = mesh.add_node();
    let (_, tree) = seeder(mesh, s, data, CHUNK, HashAlgorithm::Sha1);
    let (lh, store) = leecher(mesh, l, &tree, data);
    if with_origin {
        let mut o = TestOrigin::new(data.to_vec(), &tree);
        o.latency = Duration::from_millis(20);
        o.bandwidth = 4 * 1024 * 1024;
        let server = mesh.add_origin_server(o);
        mesh.add_origin(l, lh, server);
    }
    let sa = mesh.nodes[s].addr;
    mesh.nodes[l].ep.connect(mesh.now, lh, sa).unwrap();
    (s, l, lh, store)
}

/// A viewer at 512 KiB/s of 8,000 chunks whose sidecar does not fit the first fetch, beside a
/// seeder 10 ms away that is cut off after 300 ms (its requests stay outstanding until the
/// channel times out), and an origin 20 ms away. Returns how many blocks of leaf hashes were
/// still unknown when their first missing chunk fell due within a second.
fn leaves_unknown_when_due() -> u64 {
    let data = content(8000 * 1024, 19);
    let mut mesh = Mesh::new(5);
    mesh.link = LinkConfig {
        latency: Duration::from_millis(50),
        ..LinkConfig::default()
    };
    let (s, l, lh, store) = viewer_beside_seeder(&mut mesh, &data, true);
    let playback = crate::Playback::at(0).with_bitrate(512 * 1024);
    mesh.nodes[l].ep.set_playback(mesh.now, lh, playback);
    let mut unknown = 0;
    let mut seen = alloc::collections::BTreeSet::new();
    let cut = mesh.now + Duration::from_millis(800);
    let end = mesh.now + Duration::from_secs(60);
    while mesh.now < end && !mesh.complete(l, lh) {
        mesh.step();
        if mesh.now >= cut && seen.is_empty() {
            let dead = LinkConfig {
                loss: 1.0,
                ..LinkConfig::default()
            };
            mesh.set_link(s, l, dead).set_link(l, s, dead);
        }
        let ep = &mesh.nodes[l].ep;
        let sw = ep.swarms[ep.slot_of(lh).unwrap()].as_ref().unwrap();
        let super::swarm::Tree::Partial(t) = &sw.tree else {
            continue;
        };
        let Some(due) = sw.due_before(mesh.now + Duration::from_secs(1)) else {
            continue;
        };
        // The first missing chunk due within a second, once per block of 256 chunks after the
        // first (whose leaves come with the first fetches, at startup).
        let Some(c) = sw.have.missing_in(0..due.min(8000)).next().map(|r| r.start) else {
            continue;
        };
        if c >= 256 && seen.insert(c / 256) && !t.is_verified(crate::bin::Bin::leaf(c).unwrap()) {
            unknown += 1;
        }
    }
    assert!(mesh.complete(l, lh));
    assert_eq!(store.assembled(), data);
    assert!(!seen.is_empty());
    unknown
}

#[test]
fn a_viewer_has_the_leaf_hashes_before_their_chunks_fall_due() {
    assert_eq!(leaves_unknown_when_due(), 0);
}

/// A viewer at 256 KiB/s of 16 MiB (64 s of media) whose only peer is a seeder on a link that
/// loses half of all datagrams (it delivers, slowly), beside an origin 20 ms away. Returns the
/// media time buffered ahead of the player 10 s after it started (the verified run from the
/// playback position), and the bytes the origin and the seeder delivered by then.
fn buffer_at_the_front() -> (Duration, u64, u64) {
    let data = content(16 * 1024 * 1024, 23);
    let mut mesh = Mesh::new(3);
    mesh.link = LinkConfig {
        latency: Duration::from_millis(50),
        loss: 0.5,
        ..LinkConfig::default()
    };
    let (_, l, lh, _store) = viewer_beside_seeder(&mut mesh, &data, true);
    let bitrate = 256 * 1024;
    let start = mesh.now;
    mesh.nodes[l]
        .ep
        .set_playback(start, lh, crate::Playback::at(0).with_bitrate(bitrate));
    let at = start + Duration::from_secs(10);
    mesh.run_until(Duration::from_secs(10), |m| m.now >= at);
    // The player is where the engine's clock puts it (it plays without stalling here).
    let pos = bitrate * 10 / u64::from(CHUNK);
    let run = mesh.nodes[l].ep.swarm(lh).unwrap().verified_run(pos);
    let ahead = Duration::from_micros(run * u64::from(CHUNK) * 1_000_000 / bitrate);
    let st = mesh.nodes[l].ep.stats();
    (ahead, st.origin_content_in, st.content_in)
}

#[test]
fn a_viewer_that_only_a_slow_seeder_could_feed_keeps_a_buffer_from_the_origin() {
    let (ahead, origin, peers) = buffer_at_the_front();
    // 3 s without the prefetch floor (critical fetches only); the window set at the start
    // ends 20 s ahead of the player by now.
    assert!(ahead >= Duration::from_secs(15), "{ahead:?} buffered");
    assert!(origin > 0 && peers > 0, "origin {origin} seeder {peers}");
}
