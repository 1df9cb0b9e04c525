//! A seeder and one or two leechers (`Endpoint`s, PEX on) exchange a small content through a
//! hostile network that the fuzzer controls: it drops, duplicates, reorders, truncates and
//! corrupts their datagrams, injects datagrams of its own from their addresses and from
//! strangers, and moves the clock. Real traffic supplies valid channel IDs and message layouts,
//! so the mutations reach every message handler, the verifier and the timers, not only the
//! decoder.
//!
//! The fourth content is a live stream (RFC 7574 §6): the seeder is an injector that adds a
//! chunk at every step and signs a munro every four chunks; the leechers tune in, verify
//! against the signed munros and relay.
//!
//! Checked: no panic; a leecher's store only ever receives chunks equal to the original
//! content (content is written only once verified); the channel tables stay within their
//! configured bounds; and when the network only lost, duplicated, reordered and delayed
//! datagrams (no tampering, which UDP checksums and off-path attackers cannot do), every
//! leecher completes once the network turns honest.
#![cfg_attr(fuzzing, no_main)]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use ppspp_core::hash::HashAlgorithm;
use ppspp_core::live::{KeyPair, LiveParams, SignedForm};
use ppspp_core::merkle::MerkleTree;
use ppspp_core::testing::{CheckingStore, FixedContent, PatternContent, endpoint_config};
use ppspp_core::wire::ChunkAddressing;
use ppspp_core::{Endpoint, EndpointConfig, Event, Instant, MemoryStore, SwarmConfig};

/// The contents, chosen by the setup byte: (chunk size, bytes). One byte (a single, short
/// chunk); 23 whole chunks and a partial one (a tree with an incomplete right edge); 300
/// chunks of 256 bytes and a partial one (a deeper tree: longer uncle chains, more peaks).
const SHAPES: [(u32, usize); 3] = [(1024, 1), (1024, 23 * 1024 + 321), (256, 300 * 256 + 17)];
/// Most channels either endpoint may hold (strangers can open many).
const MAX_CHANNELS: usize = 16;

fn content(shape: usize) -> &'static Arc<Vec<u8>> {
    static C: OnceLock<Vec<Arc<Vec<u8>>>> = OnceLock::new();
    &C.get_or_init(|| {
        SHAPES
            .iter()
            .zip(1..)
            .map(|(&(_, size), seed)| Arc::new(ppspp_core::testing::content(size, seed)))
            .collect()
    })[shape]
}

fn tree(shape: usize, alg: HashAlgorithm) -> Arc<MerkleTree> {
    static T: OnceLock<Vec<Vec<Arc<MerkleTree>>>> = OnceLock::new();
    let all = T.get_or_init(|| {
        (0..SHAPES.len())
            .map(|sh| {
                HashAlgorithm::ALL
                    .iter()
                    .map(|&a| {
                        Arc::new(MerkleTree::build(a, SHAPES[sh].0, content(sh)).expect("tree"))
                    })
                    .collect()
            })
            .collect()
    });
    let i = HashAlgorithm::ALL
        .iter()
        .position(|&a| a == alg)
        .unwrap_or(0);
    all[shape][i].clone()
}

/// Live chunks: 256 bytes, 4 per munro, 96 in all.
const LIVE_CS: u32 = 256;
const LIVE_CHUNKS: u64 = 96;
/// The live stream.
const LIVE: PatternContent = PatternContent {
    chunk_size: LIVE_CS,
    chunks: LIVE_CHUNKS,
    byte: |i, j| (i.wrapping_mul(0x9E37) ^ j.wrapping_mul(13)) as u8,
};

/// Live chunk `i`.
fn live_chunk(i: u64) -> Vec<u8> {
    use ppspp_core::testing::Content;
    LIVE.chunk(i)
}

fn live_key() -> &'static KeyPair {
    static K: OnceLock<KeyPair> = OnceLock::new();
    K.get_or_init(|| {
        KeyPair::from_seed(ppspp_core::wire::SignatureAlgorithm::ED25519, &[7; 32]).expect("key")
    })
}

/// Reads the fuzzer's bytes.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, rest) = self.0.split_at(n);
        self.0 = rest;
        a
    }
}

const SEEDER: usize = 0;

struct Net {
    /// The seeder, then one or two leechers.
    ep: Vec<Endpoint>,
    addr: Vec<SocketAddr>,
    /// Datagrams in transit: (to, from, bytes).
    wire: std::collections::VecDeque<(usize, SocketAddr, Vec<u8>)>,
    now: Instant,
    integrity_failure: bool,
    /// The leechers' stores, which compare every write with the original content.
    stores: Vec<CheckingStore>,
    /// A datagram was altered on its way, or forged with a peer's address: what UDP's checksum
    /// and an off-path attacker cannot do. Liveness is then not owed (a garbled HAVE can leave
    /// the leecher believing the seeder has nothing); safety still is.
    tampered: bool,
}

impl Net {
    /// Collects what every endpoint wants to send.
    fn pump(&mut self) {
        let mut buf = vec![0u8; 1500];
        for from in 0..self.ep.len() {
            let mut n = 0;
            while let Some(t) = self.ep[from].poll_transmit(self.now, &mut buf) {
                let Some(to) = self.addr.iter().position(|&a| a == t.destination) else {
                    continue;
                };
                self.wire
                    .push_back((to, self.addr[from], buf[..t.size].to_vec()));
                n += 1;
                if n > 4096 {
                    break;
                }
            }
        }
    }

    fn deliver(&mut self, to: usize, from: SocketAddr, d: Vec<u8>) {
        self.ep[to].handle_datagram(self.now, from, Bytes::from(d));
    }

    fn advance(&mut self, by: std::time::Duration) {
        self.now += by;
        for ep in &mut self.ep {
            ep.handle_timeout(self.now);
        }
        self.drain_events();
    }

    fn drain_events(&mut self) {
        for ep in &mut self.ep {
            while let Some(e) = ep.poll_event() {
                if matches!(e, Event::IntegrityFailure { .. }) {
                    self.integrity_failure = true;
                }
            }
        }
    }

    /// The channel tables stay within their bounds, and a leecher's store only ever receives
    /// chunks equal to the original content, each once.
    fn check_bounds(&self) {
        for s in &self.stores {
            assert_eq!(s.refused(), 0, "a chunk was written corrupted: {s:?}");
            assert_eq!(s.duplicates(), 0, "a chunk was written twice: {s:?}");
        }
        for ep in &self.ep {
            assert!(
                ep.stats().channels <= MAX_CHANNELS as u64,
                "{} channels",
                ep.stats().channels
            );
        }
    }
}

fn config(seed: u8) -> EndpointConfig {
    let mut c = endpoint_config([seed; 32]);
    c.max_channels(MAX_CHANNELS);
    c.max_half_open(MAX_CHANNELS / 2);
    c
}

fn check(data: &[u8]) {
    let mut input = Input(data);
    let Some(setup) = input.byte() else { return };
    // Setup byte: bits 0-1 the hash function, bits 2-4 the addressing, bits 5-6 the content.
    let alg = HashAlgorithm::ALL[usize::from(setup & 3) % HashAlgorithm::ALL.len()];
    let addressing =
        ChunkAddressing::ALL[usize::from((setup >> 2) & 7) % ChunkAddressing::ALL.len()];
    // Content 3: the live stream.
    let live = (setup >> 5) & 3 == 3;
    let shape = usize::from((setup >> 5) & 3) % SHAPES.len();
    let chunk_size = SHAPES[shape].0;
    let tree = tree(shape, alg);
    let live_params = LiveParams {
        chunk_size: LIVE_CS,
        nchunks_per_sig: 4,
        addressing,
        hash: alg,
        form: if setup & 1 == 0 {
            SignedForm::Rfc7574
        } else {
            SignedForm::Libswift
        },
    };
    // Bit 7: a second leecher, which also learns of the first through PEX.
    let leechers = 1 + usize::from(setup >> 7);
    let now = Instant::from_secs(1);
    let addr: Vec<SocketAddr> = (0..=leechers)
        .map(|i| SocketAddr::new(std::net::Ipv4Addr::new(10, 0, 0, 1 + i as u8).into(), 6778))
        .collect();
    let mut seeder = Endpoint::new(config(1), now);
    let injector = if live {
        let mut scfg = SwarmConfig::live_source(live_params, Arc::new(live_key().clone()));
        scfg.pex(true);
        Some(
            seeder
                .add_swarm(now, scfg, Box::new(MemoryStore::new(LIVE_CS)))
                .expect("injector swarm"),
        )
    } else {
        let mut scfg = SwarmConfig::seed(tree.clone());
        scfg.addressing(addressing);
        scfg.pex(true);
        seeder
            .add_swarm(
                now,
                scfg,
                Box::new(MemoryStore::with_content(
                    chunk_size,
                    content(shape).to_vec(),
                )),
            )
            .expect("seeder swarm");
        None
    };
    let mut ep = vec![seeder];
    let mut handles = Vec::new();
    let mut stores = Vec::new();
    for i in 1..=leechers {
        let mut leecher = Endpoint::new(config(1 + i as u8), now);
        let (lcfg, store) = if live {
            let id = live_key().swarm_id();
            let v = ppspp_core::live::verifier(&id).expect("verifier");
            let mut lcfg = SwarmConfig::live(id, live_params, v);
            lcfg.pex(true);
            (lcfg, CheckingStore::new(LIVE))
        } else {
            let mut lcfg = SwarmConfig::leech(tree.root_hash(), alg, chunk_size);
            lcfg.addressing(addressing);
            lcfg.pex(true);
            let expected = FixedContent::new(content(shape).to_vec(), chunk_size);
            (lcfg, CheckingStore::new(expected))
        };
        let lh = leecher
            .add_swarm(now, lcfg, Box::new(store.clone()))
            .expect("leecher swarm");
        stores.push(store);
        leecher.connect(now, lh, addr[SEEDER]).expect("connect");
        ep.push(leecher);
        handles.push((i, lh));
    }
    let mut net = Net {
        ep,
        addr,
        wire: Default::default(),
        now,
        integrity_failure: false,
        stores,
        tampered: false,
    };
    // The hostile phase: one operation per input byte.
    let mut steps = 0;
    let mut injected = 0u64;
    while let Some(op) = input.byte() {
        steps += 1;
        if steps > 2000 {
            break;
        }
        if let Some(h) = injector {
            inject(&mut net, h, &mut injected);
        }
        net.pump();
        match op % 10 {
            // Deliver the next datagram as it is (the most common case).
            0..=2 => {
                if let Some((to, from, d)) = net.wire.pop_front() {
                    net.deliver(to, from, d);
                }
            }
            // Drop it.
            3 => {
                net.wire.pop_front();
            }
            // Deliver it twice.
            4 => {
                if let Some((to, from, d)) = net.wire.pop_front() {
                    net.deliver(to, from, d.clone());
                    net.deliver(to, from, d);
                }
            }
            // Flip bits of one byte.
            5 => {
                let (at, x) = (input.byte().unwrap_or(0), input.byte().unwrap_or(1));
                if let Some((to, from, mut d)) = net.wire.pop_front() {
                    if !d.is_empty() {
                        let i = usize::from(at) % d.len();
                        d[i] ^= x.max(1);
                    }
                    net.tampered = true;
                    net.deliver(to, from, d);
                }
            }
            // Truncate, or overwrite a stretch with the fuzzer's bytes.
            6 => {
                let (at, n) = (input.byte().unwrap_or(0), input.byte().unwrap_or(0));
                if let Some((to, from, mut d)) = net.wire.pop_front() {
                    if n & 1 == 0 {
                        d.truncate(usize::from(at) % (d.len() + 1));
                    } else {
                        let start = (usize::from(at) * 4).min(d.len());
                        let patch = input.bytes(usize::from(n >> 1) % 24);
                        let end = (start + patch.len()).min(d.len());
                        d[start..end].copy_from_slice(&patch[..end - start]);
                    }
                    net.tampered = true;
                    net.deliver(to, from, d);
                }
            }
            // Reorder: the second datagram in transit goes first.
            7 => {
                if net.wire.len() >= 2 {
                    net.wire.swap(0, 1);
                }
            }
            // Inject the fuzzer's datagram, to either endpoint, from the other's address (a
            // spoofer who learnt a channel ID from the traffic: the first datagram in transit
            // lends its first four bytes) or from a stranger.
            8 => {
                let how = input.byte().unwrap_or(0);
                let len = usize::from(input.byte().unwrap_or(0));
                let mut d = input.bytes(len).to_vec();
                let n = net.ep.len();
                let to = usize::from(how) % n;
                if how & 2 != 0 {
                    if let (Some((_, _, t)), Some(head)) = (net.wire.front(), d.get_mut(..4)) {
                        if let Some(ch) = t.get(..4) {
                            head.copy_from_slice(ch);
                        }
                    }
                }
                let from = if how & 4 != 0 {
                    net.tampered = true;
                    net.addr[(to + 1 + usize::from(how >> 3) % (n - 1)) % n]
                } else {
                    SocketAddr::new(
                        std::net::Ipv4Addr::new(192, 0, 2, how >> 3).into(),
                        6000 + u16::from(how >> 3),
                    )
                };
                net.deliver(to, from, d);
            }
            // Let time pass: up to 2.55 s, or up to 65 s.
            _ => {
                let t = input.byte().unwrap_or(0);
                let ms = if t & 1 == 0 {
                    u64::from(t) * 10
                } else {
                    u64::from(t) * 256
                };
                net.advance(std::time::Duration::from_millis(ms));
            }
        }
        net.drain_events();
        net.check_bounds();
    }
    // The honest phase: everything is delivered, in order, on a 10 ms link.
    let mut idle = 0;
    // A live leecher is done when it holds every chunk from its tune-in point to the end.
    let all_complete = |net: &Net| {
        handles.iter().all(|&(i, h)| {
            net.ep[i].swarm(h).is_some_and(|s| match s.live_tune_in() {
                _ if !live => s.is_complete(),
                Some(t) => (t..LIVE_CHUNKS).all(|c| s.verified().contains(c)),
                None => false,
            })
        })
    };
    for _ in 0..20_000 {
        if let Some(h) = injector {
            inject(&mut net, h, &mut injected);
        }
        if all_complete(&net) && (!live || injected == LIVE_CHUNKS) {
            break;
        }
        net.pump();
        if net.wire.is_empty() {
            idle += 1;
            // Nothing to send: jump to the next timer.
            let next = [net.ep[0].poll_timeout(), net.ep[1].poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if idle < 200 => {
                    let by = t.saturating_duration_since(net.now);
                    net.advance(by.max(std::time::Duration::from_millis(1)));
                }
                _ => break,
            }
            continue;
        }
        idle = 0;
        while let Some((to, from, d)) = net.wire.pop_front() {
            net.deliver(to, from, d);
        }
        net.advance(std::time::Duration::from_millis(10));
        net.check_bounds();
    }
    net.check_bounds();
    let complete = all_complete(&net);
    // Completion is owed when the network only lost, duplicated, reordered and delayed
    // datagrams (and strangers sent junk), as long as the leecher's channel is up: one whose
    // channel died (the dead-peer timeout during a long silence) has no one to ask.
    let connected = handles.iter().all(|&(i, _)| net.ep[i].stats().channels > 0);
    if connected && !net.tampered && !net.integrity_failure && steps < 2000 {
        assert!(
            complete,
            "a leecher did not complete over an honest network"
        );
    }
}

/// The injector adds its next live chunk, if any are left.
fn inject(net: &mut Net, h: ppspp_core::SwarmHandle, injected: &mut u64) {
    if *injected < LIVE_CHUNKS {
        let now = net.now;
        net.ep[SEEDER]
            .push_live_chunk(now, h, &live_chunk(*injected))
            .expect("live chunk");
        *injected += 1;
    }
}

ppspp_fuzz::fuzz_entry!(check);
