//! Playback-driven picking in memory: the window first, seeks served at once, urgent chunks
//! from the quick peer.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use crate::Playback;
use crate::congestion::FixedWindowConfig;
use crate::hash::HashAlgorithm;
use crate::testing::{LinkConfig, Mesh, Verdict, content, leecher, seeder};
use crate::time::{Duration, Instant};
use crate::wire::{ChunkSpec, Message};
use alloc::sync::Arc;

const CS: u32 = 1024;

/// A seeder (node 0) and a leecher (node 1) of `chunks` chunks, 10 ms apart.
fn pair(seed: u64, chunks: usize) -> (Mesh, crate::SwarmHandle) {
    let mut mesh = Mesh::new(seed);
    let data = content(chunks * CS as usize, seed);
    let s = mesh.add_node();
    let l = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, s, &data, CS, HashAlgorithm::Sha1);
    let (lh, _) = leecher(&mut mesh, l, &tree, &data);
    (mesh, lh)
}

#[test]
fn the_window_is_fetched_before_the_rest() {
    let (mut mesh, lh) = pair(41, 4000);
    let sa = mesh.nodes[0].addr;
    mesh.nodes[1]
        .ep
        .set_playback(mesh.now, lh, Playback::at(2800).with_window(512));
    mesh.nodes[1].ep.connect(mesh.now, lh, sa).unwrap();
    let done = mesh.run_until(Duration::from_secs(60), |m| {
        m.nodes[1].ep.swarm(lh).unwrap().verified_run(2800) >= 512
    });
    assert!(done, "the window never filled");
    let sw = mesh.nodes[1].ep.swarm(lh).unwrap();
    // Rarest first alone would have the window complete only near the end.
    let total = sw.verified().count();
    assert!(
        total < 2000,
        "{total} chunks verified before the 512 of the window"
    );
    let p = sw.playback().unwrap();
    assert_eq!((p.position(), p.window()), (2800, 512));
    // The rest follows: the swarm completes.
    assert!(mesh.run_until(Duration::from_secs(120), |m| m.complete(1, lh)));
    assert_eq!(mesh.nodes[1].ep.swarm(lh).unwrap().verified_run(0), 4000);
}

#[test]
fn a_seek_is_served_before_the_pipeline_drains() {
    let (mut mesh, lh) = pair(42, 4000);
    let sa = mesh.nodes[0].addr;
    mesh.nodes[1].ep.set_playback(mesh.now, lh, Playback::at(0));
    mesh.nodes[1].ep.connect(mesh.now, lh, sa).unwrap();
    assert!(mesh.run_until(Duration::from_secs(60), |m| {
        m.nodes[1].ep.swarm(lh).unwrap().verified_run(0) >= 200
    }));
    let before = mesh.nodes[1].ep.swarm(lh).unwrap().verified().count();
    // The jump cancels what was queued at the seeder for the old position.
    let cancels = Rc::new(RefCell::new(0u32));
    let seen = cancels.clone();
    mesh.add_filter(move |d: &mut crate::testing::Datagram| {
        if d.from == 1 && d.carries(|m| matches!(m, Message::Cancel(_))) {
            *seen.borrow_mut() += 1;
        }
        Verdict::Pass
    });
    let seek_at = mesh.now;
    mesh.nodes[1]
        .ep
        .set_playback(mesh.now, lh, Playback::at(2800));
    assert!(mesh.run_until(Duration::from_secs(60), |m| {
        m.nodes[1].ep.swarm(lh).unwrap().verified_run(2800) >= 32
    }));
    let sw = mesh.nodes[1].ep.swarm(lh).unwrap();
    // The first chunks at the new position came within a few round trips (20 ms each), not
    // after the pipeline of earlier requests.
    let waited = mesh.now.saturating_duration_since(seek_at);
    assert!(waited < Duration::from_millis(200), "seek took {waited:?}");
    assert!(*cancels.borrow() > 0, "no CANCEL after the seek");
    assert!(sw.verified().count() < before + 1500);
}

#[test]
fn verified_run_counts_consecutive_chunks_and_stops_at_the_end() {
    let (mut mesh, lh) = pair(43, 300);
    let sa = mesh.nodes[0].addr;
    mesh.nodes[1]
        .ep
        .set_playback(mesh.now, lh, Playback::at(100));
    mesh.nodes[1].ep.connect(mesh.now, lh, sa).unwrap();
    assert!(mesh.run_until(Duration::from_secs(60), |m| m.complete(1, lh)));
    let sw = mesh.nodes[1].ep.swarm(lh).unwrap();
    assert_eq!(sw.verified_run(0), 300);
    assert_eq!(sw.verified_run(250), 50);
    assert_eq!(sw.verified_run(300), 0);
    assert_eq!(sw.verified_run(u64::MAX), 0);
}

#[test]
fn deadlines_follow_the_bitrate() {
    let (mut mesh, lh) = pair(44, 300);
    let t0 = mesh.now;
    // 100 KiB/s: a 1 KiB chunk every 10 ms of playback.
    mesh.nodes[1].ep.set_playback(
        mesh.now,
        lh,
        Playback::at(10).with_bitrate(102_400).with_window(100),
    );
    let sw = mesh.nodes[1].ep.swarm(lh).unwrap();
    assert_eq!(sw.deadline(10), Some(t0));
    assert_eq!(sw.deadline(60), Some(t0 + Duration::from_millis(500)));
    assert_eq!(sw.deadline(9), None);
    assert_eq!(sw.deadline(110), None);
    // Without a bitrate there are no deadlines; 30 s of playback is the default window.
    mesh.nodes[1]
        .ep
        .set_playback(mesh.now, lh, Playback::at(10).with_bitrate(1 << 20));
    let sw = mesh.nodes[1].ep.swarm(lh).unwrap();
    assert_eq!(sw.playback().unwrap().window(), 30 * 1024);
    mesh.nodes[1].ep.clear_playback(mesh.now, lh);
    assert_eq!(mesh.nodes[1].ep.swarm(lh).unwrap().playback(), None);
}

/// Chunks `node` sent in DATA, with when.
fn record_data(mesh: &mut Mesh, node: usize) -> Rc<RefCell<Vec<(u64, Instant)>>> {
    let sent = Rc::new(RefCell::new(Vec::new()));
    let log = sent.clone();
    struct Log(usize, Rc<RefCell<Vec<(u64, Instant)>>>);
    impl crate::testing::Filter for Log {
        fn filter(&mut self, now: Instant, d: &mut crate::testing::Datagram) -> Verdict {
            if d.from == self.0 {
                for m in d.messages() {
                    if let Message::Data(x) = m {
                        let chunks = match x.spec {
                            ChunkSpec::Bin(b) => {
                                b.chunks().map_or(0..0, |r| *r.start()..*r.end() + 1)
                            }
                            ChunkSpec::Chunks { start, end } => start..end + 1,
                            ChunkSpec::Bytes { .. } => 0..0,
                        };
                        self.1.borrow_mut().extend(chunks.map(|c| (c, now)));
                    }
                }
            }
            Verdict::Pass
        }
    }
    mesh.add_filter(Log(node, log));
    sent
}

#[test]
fn a_slow_peer_is_not_given_chunks_it_would_deliver_late() {
    let chunks = 3000;
    let one_way_slow = Duration::from_millis(100);
    let run = |bitrate: Option<u64>| {
        let mut mesh = Mesh::new(45);
        let data = content(chunks * CS as usize, 45);
        // The quick seeder: 5 ms away, eight datagrams a round trip (about 800 chunks/s).
        let mut cfg = mesh.config();
        cfg.congestion(Arc::new(*FixedWindowConfig::new(8 * 1500).window(8 * 1500)));
        let fast = mesh.add(cfg);
        let slow = mesh.add_node();
        let l = mesh.add_node();
        let (_, tree) = seeder(&mut mesh, fast, &data, CS, HashAlgorithm::Sha1);
        seeder(&mut mesh, slow, &data, CS, HashAlgorithm::Sha1);
        let (lh, _) = leecher(&mut mesh, l, &tree, &data);
        let far = LinkConfig {
            latency: one_way_slow,
            ..LinkConfig::default()
        };
        let near = LinkConfig {
            latency: Duration::from_millis(5),
            ..LinkConfig::default()
        };
        mesh.set_link(slow, l, far).set_link(l, slow, far);
        mesh.set_link(fast, l, near).set_link(l, fast, near);
        let from_slow = record_data(&mut mesh, slow);
        let (fa, sa) = (mesh.nodes[fast].addr, mesh.nodes[slow].addr);
        mesh.nodes[l].ep.connect(mesh.now, lh, fa).unwrap();
        mesh.nodes[l].ep.connect(mesh.now, lh, sa).unwrap();
        // Both peers deliver for a while before the reader comes.
        assert!(mesh.run_until(Duration::from_secs(60), |m| {
            m.nodes[l].ep.swarm(lh).unwrap().verified().count() >= 300
        }));
        // 200 KiB/s: chunk 2000+k is due 5k ms after the reader came (the same window
        // without a bitrate has no deadlines).
        let mut p = Playback::at(2000).with_window(400);
        if let Some(b) = bitrate {
            p = p.with_bitrate(b);
        }
        let t0 = mesh.now;
        mesh.nodes[l].ep.set_playback(mesh.now, lh, p);
        assert!(mesh.run_until(Duration::from_secs(60), |m| {
            m.nodes[l].ep.swarm(lh).unwrap().verified_run(2000) >= 400
        }));
        // Window chunks the slow peer sent after the reader came, and those that arrived
        // after their deadline.
        let log = from_slow.borrow();
        let window: Vec<&(u64, Instant)> = log
            .iter()
            .filter(|&&(c, at)| at >= t0 && (2000..2400).contains(&c))
            .collect();
        let late = window
            .iter()
            .filter(|&&&(c, at)| at + one_way_slow > t0 + Duration::from_millis(5 * (c - 2000)))
            .count();
        (window.len(), late, mesh.now.saturating_duration_since(t0))
    };
    let (_, late_with, took_with) = run(Some(200 * 1024));
    let (sent_without, late_without, took_without) = run(None);
    assert!(
        late_without > 0,
        "without deadlines the slow peer was never late ({sent_without} window chunks): the \
         test shows nothing"
    );
    assert_eq!(
        late_with, 0,
        "with deadlines the slow peer delivered {late_with} chunks late (without: \
         {late_without})"
    );
    // The window fills sooner too: the slow peer no longer holds chunks back.
    assert!(
        took_with < took_without,
        "{took_with:?} vs {took_without:?}"
    );
}

#[test]
fn a_lost_request_is_asked_again_within_a_few_round_trips() {
    // A downloader sends no DATA, so its RTT estimator has no sample and its RTO stays at the
    // initial 1 s: request timeouts must come from its own request-to-delivery times.
    let mut mesh = Mesh::new(46);
    mesh.link = LinkConfig {
        latency: Duration::from_millis(40),
        ..LinkConfig::default()
    };
    let data = content(4000 * CS as usize, 46);
    let s = mesh.add_node();
    let l = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, s, &data, CS, HashAlgorithm::Sha1);
    let (lh, _) = leecher(&mut mesh, l, &tree, &data);
    // Drop the leecher's 8th datagram with a REQUEST (once deliveries gave it a round trip); remember its first chunk and when.
    let lost: Rc<RefCell<Option<(u64, Instant)>>> = Rc::new(RefCell::new(None));
    let seen = Rc::new(RefCell::new(0u32));
    let (lost2, seen2) = (lost.clone(), seen.clone());
    struct DropOne(Rc<RefCell<Option<(u64, Instant)>>>, Rc<RefCell<u32>>, usize);
    impl crate::testing::Filter for DropOne {
        fn filter(&mut self, now: Instant, d: &mut crate::testing::Datagram) -> Verdict {
            if d.from != self.2 || self.0.borrow().is_some() {
                return Verdict::Pass;
            }
            let first = d.messages().into_iter().find_map(|m| match m {
                Message::Request(ChunkSpec::Chunks { start, .. }) => Some(start),
                Message::Request(ChunkSpec::Bin(b)) => b.first_chunk(),
                _ => None,
            });
            let Some(first) = first else {
                return Verdict::Pass;
            };
            *self.1.borrow_mut() += 1;
            if *self.1.borrow() == 8 {
                *self.0.borrow_mut() = Some((first, now));
                return Verdict::Drop;
            }
            Verdict::Pass
        }
    }
    mesh.add_filter(DropOne(lost2, seen2, l));
    let sa = mesh.nodes[s].addr;
    mesh.nodes[l].ep.connect(mesh.now, lh, sa).unwrap();
    let ok = mesh.run_until(Duration::from_secs(30), |m| {
        lost.borrow()
            .is_some_and(|(c, _)| m.nodes[l].ep.swarm(lh).unwrap().verified().contains(c))
    });
    assert!(ok, "the chunk of the lost REQUEST never came");
    let (_, at) = lost.borrow().unwrap();
    let took = mesh.now.saturating_duration_since(at);
    // An 80 ms round trip: the hole is noticed within two request timeouts of 400 ms.
    assert!(took < Duration::from_millis(1000), "took {took:?}");
}
