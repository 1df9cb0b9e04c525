//! The public API as an embedder drives it: two endpoints in memory, a perfect network, virtual
//! time. Each test settles one finding of an independent driver written against the API.

use std::net::SocketAddr;
use std::sync::Arc;

use ppspp_core::hash::HashAlgorithm;
use ppspp_core::merkle::MerkleTree;
use ppspp_core::{
    CloseReason, ConnectError, Duration, Endpoint, EndpointConfig, Event, Instant, MemoryStore,
    SwarmConfig, SwarmHandle, Timer,
};

const CS: u32 = 1024;

struct Pair {
    now: Instant,
    seeder: Endpoint,
    leecher: Endpoint,
    swarm: SwarmHandle,
    content: Vec<u8>,
    events: Vec<Event>,
    buf_len: usize,
    /// Flip a byte of the next DATA-sized datagram from the seeder.
    corrupt_next_data: bool,
}

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 6778))
}

impl Pair {
    fn new(len: usize) -> Self {
        let content: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let tree = Arc::new(MerkleTree::build(HashAlgorithm::Sha256, CS, &content).unwrap());
        let now = Instant::ZERO;
        // Configurations are built inline: the setters' `&mut Self` converts into a value.
        let mut seeder = Endpoint::new(EndpointConfig::new([1; 32]).max_channels(16), now);
        let mut leecher = Endpoint::new(EndpointConfig::new([2; 32]), now);
        seeder
            .add_swarm(
                now,
                SwarmConfig::seed(tree.clone()).pex(false),
                Box::new(MemoryStore::with_content(CS, content.clone())),
            )
            .unwrap();
        let swarm = leecher
            .add_swarm(
                now,
                SwarmConfig::leech(tree.root_hash(), HashAlgorithm::Sha256, CS).pex(false),
                Box::new(MemoryStore::new(CS)),
            )
            .unwrap();
        leecher.connect(now, swarm, addr(1)).unwrap();
        Self {
            now,
            seeder,
            leecher,
            swarm,
            content,
            events: Vec::new(),
            buf_len: 1500,
            corrupt_next_data: false,
        }
    }

    /// Moves datagrams both ways until neither endpoint has anything to send, collects the
    /// leecher's events, then jumps to the next timer.
    fn step(&mut self) {
        let mut buf = vec![0u8; self.buf_len];
        loop {
            let mut moved = false;
            while let Some(t) = self.leecher.poll_transmit(self.now, &mut buf) {
                assert_eq!(t.destination, addr(1));
                // `handle_datagram` takes anything that converts into `Bytes`.
                self.seeder
                    .handle_datagram(self.now, addr(2), buf[..t.size].to_vec());
                moved = true;
            }
            while let Some(t) = self.seeder.poll_transmit(self.now, &mut buf) {
                let mut d = buf[..t.size].to_vec();
                if self.corrupt_next_data && d.len() > CS as usize {
                    // The DATA payload ends the datagram.
                    *d.last_mut().unwrap() ^= 0xFF;
                    self.corrupt_next_data = false;
                }
                self.leecher.handle_datagram(self.now, addr(1), d);
                moved = true;
            }
            if !moved {
                break;
            }
        }
        while let Some(e) = self.leecher.poll_event() {
            self.events.push(e);
        }
        while self.seeder.poll_event().is_some() {}
        let next = [self.seeder.poll_timeout(), self.leecher.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.now + Duration::from_millis(10));
        self.now = next.max(self.now + Duration::from_micros(1));
        self.seeder.handle_timeout(self.now);
        self.leecher.handle_timeout(self.now);
    }

    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let end = Instant::ZERO + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }

    fn complete(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, Event::SwarmComplete { .. }))
    }
}

#[test]
fn remove_swarm_gives_the_store_back_with_the_verified_bytes() {
    let mut p = Pair::new(50_000);
    assert!(p.run_until(Duration::from_secs(30), Pair::complete));
    let (now, swarm) = (p.now, p.swarm);
    let mut store = p
        .leecher
        .remove_swarm(now, swarm)
        .expect("the swarm exists");
    let mut got = vec![0u8; p.content.len()];
    for (i, chunk) in got.chunks_mut(CS as usize).enumerate() {
        assert_eq!(store.read_chunk(i as u64, chunk).unwrap(), chunk.len());
    }
    assert_eq!(got, p.content);
    // Removed: the handle names nothing any more.
    assert!(p.leecher.remove_swarm(now, swarm).is_none());
    assert!(p.leecher.swarm(swarm).is_none());
}

#[test]
fn store_mut_reads_what_verified_while_the_swarm_runs() {
    let mut p = Pair::new(20_000);
    assert!(p.run_until(Duration::from_secs(30), Pair::complete));
    let store = p.leecher.store_mut(p.swarm).expect("the swarm exists");
    let mut chunk = vec![0u8; CS as usize];
    assert_eq!(store.read_chunk(3, &mut chunk).unwrap(), CS as usize);
    assert_eq!(chunk, p.content[3 * CS as usize..4 * CS as usize]);
}

#[test]
fn a_stale_swarm_handle_never_names_the_swarm_that_reuses_its_slot() {
    let mut p = Pair::new(4_000);
    let now = p.now;
    let old = p.swarm;
    assert!(p.leecher.remove_swarm(now, old).is_some());
    let tree = MerkleTree::build(HashAlgorithm::Sha256, CS, b"another swarm").unwrap();
    let new = p
        .leecher
        .add_swarm(
            now,
            SwarmConfig::leech(tree.root_hash(), HashAlgorithm::Sha256, CS),
            Box::new(MemoryStore::new(CS)),
        )
        .unwrap();
    assert_eq!(new.index(), old.index(), "the slot is reused");
    assert_ne!(new, old);
    assert!(p.leecher.swarm(old).is_none());
    assert!(p.leecher.store_mut(old).is_none());
    assert_eq!(
        p.leecher.connect(now, old, addr(1)),
        Err(ConnectError::UnknownSwarm)
    );
    p.leecher.seek(now, old, 0);
    assert!(p.leecher.remove_swarm(now, old).is_none());
    assert!(
        p.leecher.swarm(new).is_some(),
        "the stale handle touched nothing"
    );
}

#[test]
fn a_transmit_buffer_too_small_for_data_is_counted() {
    let mut p = Pair::new(20_000);
    p.buf_len = 600;
    assert!(!p.run_until(Duration::from_secs(3), Pair::complete));
    assert!(p.seeder.stats().small_transmit_buffers > 0);
    assert!(p.leecher.stats().small_transmit_buffers > 0);
    // With a big enough buffer nothing is counted.
    let mut q = Pair::new(20_000);
    assert!(q.run_until(Duration::from_secs(30), Pair::complete));
    assert_eq!(q.seeder.stats().small_transmit_buffers, 0);
}

#[test]
fn content_totals_and_final_channel_stats_on_close() {
    let mut p = Pair::new(30_000);
    assert!(p.run_until(Duration::from_secs(30), Pair::complete));
    assert_eq!(p.leecher.stats().content_in, 30_000);
    assert!(p.seeder.stats().content_out >= 30_000);
    let peer = p
        .events
        .iter()
        .find_map(|e| match e {
            Event::PeerConnected { peer, .. } => Some(*peer),
            _ => None,
        })
        .expect("connected");
    let live = p.leecher.peer(peer).expect("open").stats();
    let now = p.now;
    p.leecher.close(now, peer);
    assert!(p.leecher.peer(peer).is_none());
    let closed = p
        .leecher
        .poll_event()
        .expect("the close is reported at once");
    let Event::PeerClosed { reason, stats, .. } = closed else {
        panic!("expected PeerClosed, got {closed:?}");
    };
    assert_eq!(reason, CloseReason::LocalClosed);
    assert_eq!(stats.content_in, 30_000);
    assert!(stats.content_in >= live.content_in);
    assert!(stats.datagrams_out >= live.datagrams_out);
}

#[test]
fn timeout_reason_names_the_timer_poll_timeout_reports() {
    let mut p = Pair::new(4_000);
    // The leecher's opening handshake is out (not yet delivered): its retransmission timer is
    // the earliest.
    let mut buf = vec![0u8; 1500];
    let now = p.now;
    assert!(p.leecher.poll_transmit(now, &mut buf).is_some());
    assert!(p.leecher.poll_timeout().is_some());
    assert_eq!(p.leecher.timeout_reason(), Some(Timer::Handshake));
    // Once the transfer is done and idle, the endpoint-wide tick or a keep-alive remains.
    assert!(p.run_until(Duration::from_secs(30), Pair::complete));
    assert!(p.leecher.timeout_reason().is_some());
    assert_eq!(
        p.seeder.timeout_reason().is_some(),
        p.seeder.poll_timeout().is_some()
    );
}

#[test]
fn size_known_comes_even_when_the_first_chunk_with_the_peaks_fails_verification() {
    let mut p = Pair::new(40_000);
    p.corrupt_next_data = true;
    p.run_until(Duration::from_secs(5), |p| {
        p.events
            .iter()
            .any(|e| matches!(e, Event::IntegrityFailure { .. }))
    });
    let swarm = p.swarm;
    let n = p.leecher.swarm(swarm).unwrap().chunk_count();
    assert_eq!(n, Some(40), "the peaks verified against the swarm ID");
    assert!(
        p.events.iter().any(|e| matches!(
            e,
            Event::SizeKnown { swarm: s, chunks: 40, .. } if *s == swarm
        )),
        "events: {:?}",
        p.events
    );
}
