//! The simulation engine: next-event virtual time over real [`Endpoint`]s.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::Mutex;

use bytes::Bytes;
use ppspp_core::bin::Bin;
use ppspp_core::hash::HashValue;
use ppspp_core::merkle::{BuildError, MerkleTree};
use ppspp_core::time::{Duration, Instant};
use ppspp_core::wire::{ChunkAddressing, Message, WireParams, decode_datagram};
use ppspp_core::{
    ChunkStore, Endpoint, EndpointConfig, Event, SwarmConfig, SwarmContent, SwarmHandle,
};

use crate::content::{
    Bitmap, SharedLog, StoreCounters, SyntheticContent, SyntheticStore, VerifyingStore,
};
use crate::net::{DropReason, LossModel, NetCounters, Network};
use crate::report::{ProtocolCounters, Report, Sample, Violation, ViolationKind};
use crate::rng::{Purpose, SimRng, derive_seed};
use crate::scenario::{PartitionMode, Scenario};

/// The UDP port every simulated node uses.
pub const PORT: u16 = 6778;
/// Wall-clock microseconds since the Unix epoch at simulated time zero (DATA timestamps).
const UNIX_TIME_AT_ZERO: u64 = 1_700_000_000_000_000;
/// At most this many violations are kept in detail.
const MAX_VIOLATIONS: usize = 64;

/// The address of node `id`: `10.x.y.z:6778` with `x.y.z` = `id + 1`.
pub fn node_addr(id: u32) -> SocketAddr {
    let x = id + 1;
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(10, (x >> 16) as u8, (x >> 8) as u8, x as u8),
        PORT,
    ))
}

/// The node at `addr`, by arithmetic (no lookup table).
pub fn addr_node(addr: SocketAddr) -> Option<u32> {
    match addr {
        SocketAddr::V4(a) if a.port() == PORT && a.ip().octets()[0] == 10 => {
            let o = a.ip().octets();
            let x = (u32::from(o[1]) << 16) | (u32::from(o[2]) << 8) | u32::from(o[3]);
            x.checked_sub(1)
        }
        _ => None,
    }
}

/// A rolling 64-bit hash of everything observable in a run (delivered datagrams, endpoint
/// events): two runs with equal hashes saw the same things at the same times.
#[derive(Clone, Copy, Debug)]
pub struct TraceHash(u64);

impl Default for TraceHash {
    fn default() -> Self {
        Self(0xCBF2_9CE4_8422_2325)
    }
}

impl TraceHash {
    /// Folds in one word.
    #[inline]
    pub fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    /// Folds in bytes: 32 at a time in four independent lanes (so the multiplies overlap
    /// instead of waiting on each other), then eight at a time.
    pub fn bytes(&mut self, b: &[u8]) {
        let word = |w: &[u8]| {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            u64::from_le_bytes(a)
        };
        let mut blocks = b.chunks_exact(32);
        let mut lanes = [
            self.0,
            !self.0,
            self.0.rotate_left(17),
            self.0.rotate_left(41),
        ];
        for block in &mut blocks {
            for (lane, w) in lanes.iter_mut().zip(block.chunks_exact(8)) {
                *lane = (lane.rotate_left(5) ^ word(w)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            }
        }
        if b.len() >= 32 {
            self.0 = lanes[0];
            for lane in &lanes[1..] {
                self.word(*lane);
            }
        }
        let mut it = blocks.remainder().chunks_exact(8);
        for w in &mut it {
            self.word(word(w));
        }
        let rest = it.remainder();
        let mut a = [0u8; 8];
        a[..rest.len()].copy_from_slice(rest);
        self.word(u64::from_le_bytes(a) ^ ((b.len() as u64) << 56));
    }

    /// The hash value.
    pub fn value(&self) -> u64 {
        crate::rng::splitmix64(self.0)
    }
}

#[derive(Debug)]
enum Ev {
    Wake {
        node: u32,
        generation: u32,
    },
    Arrive {
        to: u32,
        from: u32,
        data: Bytes,
    },
    Deliver {
        to: u32,
        from: u32,
        data: Bytes,
    },
    Join(u32),
    Leave {
        node: u32,
        forever: bool,
    },
    Crash(u32),
    PartitionStart(usize),
    PartitionEnd,
    Heal,
    Tracker,
    Sample,
    /// A live run's injector adds its next chunk.
    Inject,
    /// Players advance (runs with viewers).
    View,
    /// An origin's answer reaches a leecher.
    OriginAnswer {
        node: u32,
        incarnation: u32,
        id: u64,
        answer: Result<Bytes, ppspp_core::OriginFailure>,
    },
}

/// A live run's stream: the injector's key and parameters, and how far injection got.
struct Stream {
    key: Arc<ppspp_core::live::KeyPair>,
    params: ppspp_core::live::LiveParams,
    injected: u64,
    total: u64,
    interval: Duration,
}

struct Node {
    seeder: bool,
    ep: Option<Box<Endpoint>>,
    swarm: Option<SwarmHandle>,
    incarnation: u32,
    wake_gen: u32,
    wake_at: Option<Instant>,
    same_instant_wakes: u32,
    last_wake: Instant,
    held: Arc<Mutex<Bitmap>>,
    counters: Arc<Mutex<StoreCounters>>,
    joined_at: Option<Instant>,
    completed_at: Option<Instant>,
    gone: bool,
    rng: SimRng,
    saved_hashes: Vec<(Bin, HashValue)>,
}

/// Progress of a running simulation, for progress bars.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Simulated time.
    pub sim_time: Duration,
    /// The simulated time limit.
    pub limit: Duration,
    /// Leechers complete.
    pub complete: u32,
    /// Leechers in all.
    pub peers: u32,
    /// Events processed.
    pub events: u64,
}

/// One simulation run. Build it from a [`Scenario`], then [`Simulation::run`] it.
pub struct Simulation {
    sc: Scenario,
    now: Instant,
    queue: crate::radix::RadixHeap<Ev>,
    seq: u64,
    nodes: Vec<Node>,
    net: Network,
    content: SyntheticContent,
    tree: Arc<MerkleTree>,
    log: SharedLog,
    trace: TraceHash,
    pub(crate) counters: NetCounters,
    buf: Vec<u8>,
    events: u64,
    live: Vec<u32>,
    live_pos: Vec<u32>,
    remaining: u32,
    healed: bool,
    scen_rng: SimRng,
    wire: WireParams,
    samples: Vec<Sample>,
    /// The PPSTP tracker, in [`Scenario::ppstp`] runs.
    ppstp: Option<crate::ppstp::PpstpTracker>,
    /// The tracker's certificate key, in [`Scenario::private`] runs.
    member_key: Option<[u8; 32]>,
    violations: Vec<Violation>,
    violation_count: u64,
    dead_stats: ProtocolCounters,
    event_counts: [u64; 8],
    tap: Option<Tap>,
    stream: Option<Stream>,
    /// Runs with viewers: each leecher's player, by node.
    players: Vec<Option<crate::viewer::Player>>,
    /// The HTTP origin, if the scenario has one.
    origin: Option<crate::origin::OriginModel>,
}

/// A callback that sees every datagram delivered: `(time, from node, to node, bytes)`.
pub type Tap = Box<dyn FnMut(Instant, u32, u32, &Bytes)>;

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation")
            .field("seed", &self.sc.seed)
            .field("now", &self.now)
            .field("nodes", &self.nodes.len())
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl Simulation {
    /// Prepares a run: builds the content's Merkle tree once, places the nodes and schedules
    /// joins, churn, crashes and partitions.
    pub fn new(sc: Scenario) -> Result<Self, BuildError> {
        let content = SyntheticContent {
            seed: sc.content_seed,
            len: sc.content_size.max(1),
            chunk_size: sc.chunk_size.max(1),
            hash: sc.hash,
        };
        let tree = content.build_tree()?;
        let origin = sc
            .origin
            .clone()
            .map(|o| crate::origin::OriginModel::new(o, content, &tree));
        let n_nodes = sc.seeders.max(1) + sc.peers;
        let mut sim = Self {
            now: Instant::ZERO,
            queue: crate::radix::RadixHeap::new(),
            seq: 0,
            nodes: Vec::with_capacity(n_nodes as usize),
            net: Network::new(sc.net),
            content,
            tree,
            log: SharedLog::default(),
            trace: TraceHash::default(),
            counters: NetCounters::default(),
            buf: vec![0u8; 65_536],
            events: 0,
            live: Vec::new(),
            live_pos: vec![u32::MAX; n_nodes as usize],
            remaining: sc.peers,
            healed: false,
            scen_rng: SimRng::stream(sc.seed, u32::MAX, Purpose::Scenario),
            wire: WireParams::new(ChunkAddressing::ChunkRange32, sc.hash),
            samples: Vec::new(),
            violations: Vec::new(),
            violation_count: 0,
            dead_stats: ProtocolCounters::default(),
            event_counts: [0; 8],
            tap: None,
            stream: None,
            players: vec![None; n_nodes as usize],
            ppstp: None,
            member_key: None,
            origin,
            sc,
        };
        if sim.sc.ppstp {
            sim.ppstp = Some(crate::ppstp::PpstpTracker::new(
                n_nodes as usize,
                sim.tree.root_hash().to_string(),
                // The `ppspp` program's re-announce interval; the tracker ticks (every
                // `tracker_interval`) only send what is due, and a FIND when a node has
                // fewer than 2 peers.
                ppspp_tracker::AnnouncerConfig::default().interval,
                // As many as the contact model hands out: PEX finds the rest.
                (sim.sc.contacts + sim.sc.seeder_contacts).max(1),
            ));
            if sim.sc.private {
                // Node u32::MAX: a purpose stream no node uses.
                let seed = derive_seed(sim.sc.seed, u32::MAX, Purpose::Endpoint, 0);
                sim.member_key = sim
                    .ppstp
                    .as_mut()
                    .map(|t| t.issue_certificates(seed, UNIX_TIME_AT_ZERO / 1_000_000));
            }
        }
        sim.setup();
        Ok(sim)
    }

    fn setup(&mut self) {
        let sc = self.sc.clone();
        let chunks = self.content.chunk_count();
        let seeders = sc.seeders.max(1);
        for id in 0..seeders + sc.peers {
            let seeder = id < seeders;
            let mut rng = SimRng::stream(sc.seed, id, Purpose::Placement);
            let access = if seeder {
                sc.seeder_access
            } else {
                sc.leecher_access
            };
            self.net.add_node(sc.seed, access.up, access.down, &mut rng);
            let join = if seeder {
                Duration::ZERO
            } else {
                Duration::from_micros(rng.range(0, sc.join_window.as_micros() as u64))
            };
            self.schedule(Instant::ZERO + join, Ev::Join(id));
            if !seeder {
                if let Some(c) = sc.churn {
                    if rng.chance(c.fraction) {
                        let lo = c.from.as_micros() as u64;
                        let hi = c.to.as_micros() as u64;
                        let at = join + Duration::from_micros(rng.range(lo, hi.max(lo)));
                        self.schedule(
                            Instant::ZERO + at,
                            Ev::Leave {
                                node: id,
                                forever: c.offline.is_none(),
                            },
                        );
                        if let Some(off) = c.offline {
                            self.schedule(Instant::ZERO + at + off, Ev::Join(id));
                        }
                    }
                }
            }
            self.nodes.push(Node {
                seeder,
                ep: None,
                swarm: None,
                incarnation: 0,
                wake_gen: 0,
                wake_at: None,
                same_instant_wakes: 0,
                last_wake: Instant::ZERO,
                held: Arc::new(Mutex::new(Bitmap::new(if seeder { 0 } else { chunks }))),
                counters: Arc::default(),
                joined_at: None,
                completed_at: None,
                gone: false,
                rng,
                saved_hashes: Vec::new(),
            });
        }
        if let Some(c) = sc.crashes {
            let first = if c.include_seeders { 0 } else { seeders };
            let total = seeders + sc.peers;
            for _ in 0..c.count {
                if first >= total {
                    break;
                }
                let node = first + self.scen_rng.below(u64::from(total - first)) as u32;
                let lo = c.from.as_micros() as u64;
                let at = self.scen_rng.range(lo, (c.to.as_micros() as u64).max(lo));
                let at = Instant::from_micros(at);
                self.schedule(at, Ev::Crash(node));
                self.schedule(at + c.down, Ev::Join(node));
            }
        }
        for (i, p) in sc.partitions.iter().enumerate() {
            self.schedule(Instant::ZERO + p.at, Ev::PartitionStart(i));
            self.schedule(Instant::ZERO + p.until, Ev::PartitionEnd);
        }
        if let Some(h) = sc.heal_at {
            self.schedule(Instant::ZERO + h, Ev::Heal);
        }
        self.schedule(Instant::ZERO + sc.tracker_interval, Ev::Tracker);
        self.schedule(Instant::ZERO, Ev::Sample);
        if self.sc.viewing.is_some() && self.sc.live_rate.is_none() {
            self.schedule(Instant::ZERO, Ev::View);
        }
        if let Some(rate) = sc.live_rate {
            // Ed25519: the cheapest signature to check, which matters with thousands of peers.
            let key = ppspp_core::live::KeyPair::from_seed(
                ppspp_core::wire::SignatureAlgorithm::ED25519,
                &derive_seed(sc.seed, u32::MAX, Purpose::Scenario, 0),
            )
            .expect("Ed25519 takes any seed");
            let params = ppspp_core::live::LiveParams {
                chunk_size: sc.chunk_size.max(1),
                nchunks_per_sig: 32,
                addressing: ChunkAddressing::ChunkRange32,
                hash: sc.hash,
                form: ppspp_core::live::SignedForm::Rfc7574,
            };
            // Datagrams are decoded (to check and count them) with the stream's signature length.
            self.wire = self
                .wire
                .with_signature_len(ppspp_core::live::Signer::signature_len(&key));
            let interval_us = (u64::from(params.chunk_size) * 1_000_000 / rate.max(1)).max(1);
            // Live chunks are full-size: a partial last chunk of the content is not injected.
            let total = self.content.len / u64::from(params.chunk_size);
            if let Some(o) = &mut self.origin {
                o.go_live(&params, ppspp_core::live::Signer::signature_len(&key));
            }
            self.stream = Some(Stream {
                key: Arc::new(key),
                params,
                injected: 0,
                total,
                interval: Duration::from_micros(interval_us),
            });
            self.log.lock().expect("single-threaded").live_clock =
                Some(crate::content::LiveClock {
                    now_us: 0,
                    start_us: 0,
                    interval_us,
                });
            self.schedule(Instant::ZERO, Ev::Inject);
        }
    }

    /// The injector adds the next chunk of a live run's stream.
    fn inject(&mut self) {
        let now = self.now;
        let Some(st) = self.stream.as_mut() else {
            return;
        };
        if st.injected >= st.total {
            return;
        }
        let i = st.injected;
        st.injected += 1;
        let next = now + st.interval;
        let more = st.injected < st.total;
        let total = st.total;
        let mut chunk = vec![0u8; st.params.chunk_size as usize];
        self.content.fill_chunk(i, &mut chunk);
        if let Some(o) = &mut self.origin {
            o.injected(&chunk);
        }
        // The injector is node 0; a stream only moves on while it is up.
        if let Some(mut ep) = self.nodes[0].ep.take() {
            if let Some(h) = self.nodes[0].swarm {
                match ep.push_live_chunk(now, h, &chunk) {
                    Ok(Some(m)) => {
                        if let Some(o) = &mut self.origin {
                            o.signed(&m, None);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => self.violation(
                        ViolationKind::EngineError,
                        Some(0),
                        format!("push_live_chunk {i}: {e}"),
                    ),
                }
            }
            if !more {
                // The end of the stream: sign and announce a short last munro.
                if let Some(h) = self.nodes[0].swarm {
                    match ep.finish_live(now, h) {
                        Ok(Some(m)) => {
                            if let Some(o) = &mut self.origin {
                                o.signed(&m, Some(total));
                            }
                        }
                        Ok(None) => {}
                        Err(e) => self.violation(
                            ViolationKind::EngineError,
                            Some(0),
                            format!("finish_live: {e}"),
                        ),
                    }
                }
            }
            self.drain(0, &mut ep);
            self.nodes[0].ep = Some(ep);
        }
        if more {
            self.schedule(next, Ev::Inject);
        }
    }

    /// Live runs: a leecher is complete once the stream is all injected and it holds every
    /// chunk from its tune-in point (or its discard window's start, if later) to the end.
    fn check_stream_complete(&mut self) {
        let now = self.now;
        let Some(st) = &self.stream else { return };
        if st.injected < st.total {
            return;
        }
        let total = st.total;
        for n in &mut self.nodes {
            let (Some(ep), Some(h)) = (&n.ep, n.swarm) else {
                continue;
            };
            if n.seeder || n.gone || n.completed_at.is_some() {
                continue;
            }
            // From the tune-in point, or what is still kept of the discard window: chunks
            // before its start are forgotten once verified.
            let done = ep.swarm(h).is_some_and(|s| {
                s.live_tune_in().is_some_and(|t| {
                    let from = t.max(s.live_floor().unwrap_or(0));
                    s.verified().contains_range(from..total)
                })
            });
            if done {
                n.completed_at = Some(now);
                self.remaining -= 1;
            }
        }
    }

    fn schedule(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        // Key: time, then scheduling order (unique, so the pop order is fully determined).
        // The event itself rides in the queue: a side table indexed by slot missed the cache
        // on most pops.
        self.queue.push(
            (u128::from(at.as_micros()) << 64) | u128::from(self.seq),
            ev,
        );
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.sc
    }

    /// Installs a tap that sees every delivered datagram (for debugging and custom checks).
    pub fn set_tap(&mut self, tap: Tap) {
        self.tap = Some(tap);
    }

    /// The simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The content's Merkle tree.
    pub fn tree(&self) -> &Arc<MerkleTree> {
        &self.tree
    }

    /// The endpoint of node `id`, if it is up.
    pub fn endpoint(&self, id: u32) -> Option<&Endpoint> {
        self.nodes.get(id as usize)?.ep.as_deref()
    }

    /// Leechers not yet complete (and not gone for good).
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// Runs to the end: every leecher complete, or the scenario's time limit.
    pub fn run(self) -> Report {
        self.run_with(&mut |_| {})
    }

    /// Runs to the end, calling `progress` every 65,536 events.
    pub fn run_with(mut self, progress: &mut dyn FnMut(&Progress)) -> Report {
        let wall = WallClock::start();
        let limit = Instant::ZERO + self.sc.duration;
        while self.remaining > 0 {
            if !self.step(limit) {
                break;
            }
            if self.events & 0xFFFF == 0 {
                progress(&Progress {
                    sim_time: self.now.saturating_duration_since(Instant::ZERO),
                    limit: self.sc.duration,
                    complete: self.sc.peers - self.remaining,
                    peers: self.sc.peers,
                    events: self.events,
                });
            }
        }
        self.take_sample();
        self.finish(wall.elapsed_s())
    }

    /// Processes the next event if it is due no later than `limit`; returns whether it did.
    pub fn step(&mut self, limit: Instant) -> bool {
        match self.queue.peek_key() {
            Some(key) if (key >> 64) as u64 <= limit.as_micros() => {}
            _ => return false,
        }
        let (key, ev) = self.queue.pop().expect("peeked");
        let at = Instant::from_micros((key >> 64) as u64);
        debug_assert!(at >= self.now);
        self.now = at;
        if self.stream.is_some() {
            if let Some(c) = &mut self.log.lock().expect("single-threaded").live_clock {
                c.now_us = at.as_micros();
            }
        }
        self.events += 1;
        match ev {
            Ev::Wake { node, generation } => self.on_wake(node, generation),
            Ev::Arrive { to, from, data } => self.on_arrive(to, from, data),
            Ev::Deliver { to, from, data } => self.on_deliver(to, from, data),
            Ev::Join(n) => self.join(n),
            Ev::Leave { node, forever } => self.leave(node, forever),
            Ev::Crash(n) => self.crash(n),
            Ev::PartitionStart(i) => self.partition(i),
            Ev::PartitionEnd => self.net.set_partitioned(false),
            Ev::Heal => self.heal(),
            Ev::Tracker => self.tracker(),
            Ev::Sample => {
                self.take_sample();
                self.check_stream_complete();
                let t = self.now + self.sc.sample_interval;
                self.schedule(t, Ev::Sample);
            }
            Ev::Inject => self.inject(),
            Ev::View => self.view(),
            Ev::OriginAnswer {
                node,
                incarnation,
                id,
                answer,
            } => self.on_origin_answer(node, incarnation, id, answer),
        }
        true
    }

    // ---- events ---------------------------------------------------------------------------

    fn on_wake(&mut self, i: u32, generation: u32) {
        let now = self.now;
        let n = &mut self.nodes[i as usize];
        if n.wake_gen != generation || n.ep.is_none() {
            return;
        }
        n.wake_at = None;
        if n.last_wake == now {
            n.same_instant_wakes += 1;
        } else {
            n.last_wake = now;
            n.same_instant_wakes = 0;
        }
        if n.same_instant_wakes == 10_000 {
            self.violation(
                ViolationKind::Livelock,
                Some(i),
                "the endpoint asked for 10,000 timeouts at the same instant".into(),
            );
        }
        let mut ep = self.nodes[i as usize].ep.take().expect("checked");
        ep.handle_timeout(now);
        self.drain(i, &mut ep);
        self.nodes[i as usize].ep = Some(ep);
    }

    fn on_arrive(&mut self, to: u32, from: u32, data: Bytes) {
        if self.nodes[to as usize].ep.is_none() {
            self.drop_dgram(DropReason::NodeDown);
            return;
        }
        if !self.net.reachable(from, to) {
            self.drop_dgram(DropReason::Partition);
            return;
        }
        match self.net.receive(self.now, to, data.len()) {
            Ok(at) => self.schedule(at, Ev::Deliver { to, from, data }),
            Err(r) => self.drop_dgram(r),
        }
    }

    fn on_deliver(&mut self, to: u32, from: u32, data: Bytes) {
        let Some(mut ep) = self.nodes[to as usize].ep.take() else {
            self.drop_dgram(DropReason::NodeDown);
            return;
        };
        self.counters.delivered += 1;
        self.counters.delivered_bytes += data.len() as u64;
        self.trace.word(self.now.as_micros());
        self.trace.word((u64::from(from) << 32) | u64::from(to));
        self.trace.bytes(&data);
        if let Some(tap) = &mut self.tap {
            tap(self.now, from, to, &data);
        }
        ep.handle_datagram(self.now, node_addr(from), data);
        self.drain(to, &mut ep);
        self.nodes[to as usize].ep = Some(ep);
    }

    fn on_origin_answer(
        &mut self,
        i: u32,
        incarnation: u32,
        id: u64,
        answer: Result<Bytes, ppspp_core::OriginFailure>,
    ) {
        // An answer to an earlier incarnation's fetch is lost with the connection.
        if self.nodes[i as usize].incarnation != incarnation {
            return;
        }
        let Some(mut ep) = self.nodes[i as usize].ep.take() else {
            return;
        };
        match answer {
            Ok(b) => ep.origin_data(self.now, id, &b),
            Err(e) => ep.origin_failed(self.now, id, e),
        }
        self.drain(i, &mut ep);
        self.nodes[i as usize].ep = Some(ep);
    }

    fn drop_dgram(&mut self, r: DropReason) {
        self.counters.dropped[r as usize] += 1;
    }

    fn join(&mut self, i: u32) {
        let now = self.now;
        let sc = &self.sc;
        let n = &mut self.nodes[i as usize];
        if n.gone || n.ep.is_some() {
            return;
        }
        n.incarnation += 1;
        let mut cfg =
            EndpointConfig::new(derive_seed(sc.seed, i, Purpose::Endpoint, n.incarnation));
        cfg.unix_time_at_zero(UNIX_TIME_AT_ZERO)
            .max_datagram_size(sc.max_datagram_size);
        let mut ep = Box::new(Endpoint::new(cfg, now));
        let stream = self.stream.as_ref().map(|st| (st.key.clone(), st.params));
        let (mut scfg, store): (SwarmConfig, Box<dyn ChunkStore>) =
            if let Some((key, params)) = stream {
                if n.seeder {
                    (
                        SwarmConfig::live_source(params, key),
                        Box::new(SyntheticStore::new(self.content, n.counters.clone())),
                    )
                } else {
                    let id = key.swarm_id();
                    let v = ppspp_core::live::verifier(&id).expect("our own key");
                    (
                        SwarmConfig::live(id, params, v),
                        Box::new(VerifyingStore::new(
                            i,
                            self.content,
                            n.held.clone(),
                            n.counters.clone(),
                            self.log.clone(),
                        )),
                    )
                }
            } else if n.seeder {
                (
                    SwarmConfig::seed(self.tree.clone()),
                    Box::new(SyntheticStore::new(self.content, n.counters.clone())),
                )
            } else {
                let held = n.held.lock().expect("single-threaded");
                let cfg = if held.count() == 0 {
                    SwarmConfig::leech(self.tree.root_hash(), sc.hash, sc.chunk_size)
                } else {
                    SwarmConfig::new(
                        self.tree.root_hash(),
                        sc.hash,
                        sc.chunk_size,
                        SwarmContent::Partial {
                            size: Some(self.content.len),
                            verified: held.ranges(self.content.chunk_count()),
                            hashes: n.saved_hashes.clone(),
                        },
                    )
                };
                drop(held);
                let store = VerifyingStore::new(
                    i,
                    self.content,
                    n.held.clone(),
                    n.counters.clone(),
                    self.log.clone(),
                );
                (cfg, Box::new(store))
            };
        scfg.upload_slots(sc.upload_slots as usize)
            .max_peers(sc.max_peers as usize);
        if let Some(k) = self.member_key {
            let mut m = ppspp_core::membership::Membership::new(
                ppspp_core::membership::TrackerKey::from_bytes(k),
            );
            m.require(true);
            scfg.membership(Some(m));
        }
        let h = match ep.add_swarm(now, scfg, store) {
            Ok(h) => h,
            Err(e) => {
                self.violation(
                    ViolationKind::EngineError,
                    Some(i),
                    format!("add_swarm failed on (re)join: {e}"),
                );
                return;
            }
        };
        if self.origin.is_some() && !self.nodes[i as usize].seeder {
            let _ = ep.add_origin(now, h);
        }
        let n = &mut self.nodes[i as usize];
        n.swarm = Some(h);
        n.joined_at.get_or_insert(now);
        if !n.seeder && n.completed_at.is_none() && ep.swarm(h).is_some_and(|s| s.is_complete()) {
            n.completed_at = Some(now);
            self.remaining -= 1;
        }
        self.live_add(i);
        if let (Some(v), false) = (self.sc.viewing, self.nodes[i as usize].seeder) {
            // A viewer (re)joining plays on from where it was.
            let p =
                self.players[i as usize].get_or_insert_with(|| crate::viewer::Player::new(now, &v));
            let at = p.chunk(self.sc.chunk_size);
            if v.tell_engine {
                ep.set_playback(now, h, ppspp_core::Playback::at(at).with_bitrate(v.bitrate));
            }
        }
        if self.ppstp.is_some() {
            self.ask_tracker(i, &mut ep, true);
        } else if !self.nodes[i as usize].seeder {
            self.give_contacts(i, &mut ep);
        }
        self.drain(i, &mut ep);
        self.nodes[i as usize].ep = Some(ep);
    }

    /// PPSTP mode: node `i` announces what is due (with its progress) and connects to the
    /// peers the tracker names.
    fn ask_tracker(&mut self, i: u32, ep: &mut Endpoint, want_peers: bool) {
        let n = &self.nodes[i as usize];
        let Some(h) = n.swarm else { return };
        let complete = n.seeder || n.completed_at.is_some();
        let chunks = n.held.lock().expect("single-threaded").count();
        let progress = ppspp_tracker::Progress {
            uploaded: 0,
            downloaded: chunks * u64::from(self.sc.chunk_size),
            links: ep.swarm(h).map_or(0, |s| s.connected_peers() as u64),
            complete,
        };
        let inc = n.incarnation;
        let Some(t) = self.ppstp.as_mut() else { return };
        let (peers, cert) = t.announce(self.now, i, inc, node_addr(i), progress, want_peers);
        // The certificate first: it rides with the handshakes to the peers just named.
        if let Some(c) = cert {
            ep.set_membership_cert(self.now, h, Bytes::from(c));
        }
        for p in peers {
            let _ = ep.connect(self.now, h, p);
        }
    }

    /// Like a tracker: the seeders (some of them) and random live peers.
    fn give_contacts(&mut self, i: u32, ep: &mut Endpoint) {
        let Some(h) = self.nodes[i as usize].swarm else {
            return;
        };
        let seeders = self.sc.seeders.max(1);
        let mut picks = Vec::with_capacity((self.sc.contacts + self.sc.seeder_contacts) as usize);
        let rng = &mut self.nodes[i as usize].rng;
        for _ in 0..self.sc.seeder_contacts.max(1) {
            picks.push(rng.below(u64::from(seeders)) as u32);
        }
        for _ in 0..self.sc.contacts {
            if self.live.len() <= 1 {
                break;
            }
            let j = self.live[rng.below(self.live.len() as u64) as usize];
            if j != i {
                picks.push(j);
            }
        }
        for j in picks {
            let _ = ep.connect(self.now, h, node_addr(j));
        }
    }

    fn take_down(&mut self, i: u32, graceful: bool) {
        let Some(mut ep) = self.nodes[i as usize].ep.take() else {
            return;
        };
        if let Some(t) = self.ppstp.as_mut() {
            t.leave(self.now, i, node_addr(i), graceful);
        }
        if let Some(h) = self.nodes[i as usize].swarm {
            if let Some(s) = ep.swarm(h) {
                self.nodes[i as usize].saved_hashes = s.verified_hashes();
            }
            if graceful {
                ep.remove_swarm(self.now, h);
                self.drain(i, &mut ep);
            }
        }
        self.dead_stats.add(&ep.stats());
        let n = &mut self.nodes[i as usize];
        n.swarm = None;
        n.wake_gen += 1;
        n.wake_at = None;
        self.live_remove(i);
    }

    fn leave(&mut self, i: u32, forever: bool) {
        if self.nodes[i as usize].ep.is_none() {
            return;
        }
        self.take_down(i, true);
        if forever {
            let n = &mut self.nodes[i as usize];
            n.gone = true;
            if n.completed_at.is_none() {
                self.remaining -= 1;
            }
        }
    }

    fn crash(&mut self, i: u32) {
        if self.healed {
            return;
        }
        self.take_down(i, false);
    }

    fn partition(&mut self, idx: usize) {
        if self.healed {
            return;
        }
        let total = self.nodes.len() as u32;
        let seeders = self.sc.seeders.max(1);
        match self.sc.partitions[idx].mode {
            PartitionMode::Split { groups } => {
                for i in 0..total {
                    let g = self.scen_rng.below(u64::from(groups.max(2))) as u16;
                    self.net.set_group(i, g);
                }
            }
            PartitionMode::Isolate { count } => {
                for i in 0..total {
                    self.net.set_group(i, 0);
                }
                for k in 0..count {
                    let i = self.scen_rng.below(u64::from(total)) as u32;
                    self.net
                        .set_group(i, (k + 1).min(u32::from(u16::MAX)) as u16);
                }
            }
            PartitionMode::IsolateSeeders => {
                for i in 0..total {
                    self.net.set_group(i, u16::from(i < seeders));
                }
            }
        }
        self.net.set_partitioned(true);
    }

    fn heal(&mut self) {
        self.healed = true;
        self.net.set_partitioned(false);
        self.net.set_loss(LossModel::None);
        if let Some(mtu) = self.sc.healed_mtu {
            self.net.set_mtu(mtu);
        }
        for i in 0..self.nodes.len() as u32 {
            let n = &self.nodes[i as usize];
            if n.ep.is_none() && !n.gone && n.joined_at.is_some() {
                self.join(i);
            }
        }
    }

    fn tracker(&mut self) {
        if self.ppstp.is_some() {
            // Every live node re-announces; those with fewer than 2 peers ask for more.
            for i in 0..self.nodes.len() as u32 {
                let Some(mut ep) = self.nodes[i as usize].ep.take() else {
                    continue;
                };
                let few = self.nodes[i as usize]
                    .swarm
                    .and_then(|h| ep.swarm(h))
                    .is_some_and(|s| s.connected_peers() < 2);
                self.ask_tracker(i, &mut ep, few);
                self.drain(i, &mut ep);
                self.nodes[i as usize].ep = Some(ep);
            }
            let t = self.now + self.sc.tracker_interval;
            self.schedule(t, Ev::Tracker);
            return;
        }
        let seeders = self.sc.seeders.max(1);
        for i in seeders..self.nodes.len() as u32 {
            let n = &self.nodes[i as usize];
            let (Some(h), true) = (n.swarm, n.completed_at.is_none()) else {
                continue;
            };
            let Some(mut ep) = self.nodes[i as usize].ep.take() else {
                continue;
            };
            if ep.swarm(h).is_some_and(|s| s.connected_peers() < 2) {
                self.give_contacts(i, &mut ep);
                self.drain(i, &mut ep);
            }
            self.nodes[i as usize].ep = Some(ep);
        }
        let t = self.now + self.sc.tracker_interval;
        self.schedule(t, Ev::Tracker);
    }

    /// Players advance by what their engines verified; a player that moved on or sought tells
    /// its engine (which then fetches from there first).
    fn view(&mut self) {
        let Some(v) = self.sc.viewing else { return };
        let now = self.now;
        let len = self.content.len;
        let cs = self.sc.chunk_size;
        let seeders = self.sc.seeders.max(1);
        let mut playing = false;
        for i in seeders..self.nodes.len() as u32 {
            let Some(h) = self.nodes[i as usize].swarm else {
                continue;
            };
            let Some(mut ep) = self.nodes[i as usize].ep.take() else {
                continue;
            };
            if let Some(p) = self.players[i as usize].as_mut() {
                let before = p.chunk(cs);
                let available = ep.swarm(h).map_or(0, |s| {
                    let end = (before + s.verified_run(before)) * u64::from(cs);
                    end.min(len).saturating_sub(p.pos())
                });
                p.advance(now, &v, len, available);
                if !p.done() {
                    playing = true;
                }
                let after = p.chunk(cs);
                if after != before && !p.done() && v.tell_engine {
                    ep.set_playback(
                        now,
                        h,
                        ppspp_core::Playback::at(after).with_bitrate(v.bitrate),
                    );
                    self.drain(i, &mut ep);
                }
            }
            self.nodes[i as usize].ep = Some(ep);
        }
        // Until every viewer played to the end (the run stops earlier when every download
        // completes: nothing can stall after that).
        let joining = self.players.len() - self.players.iter().flatten().count() > seeders as usize;
        if playing || joining {
            let t = now + v.tick;
            self.schedule(t, Ev::View);
        }
    }

    fn take_sample(&mut self) {
        let seeders = self.sc.seeders.max(1) as usize;
        let held: u64 = self.nodes[seeders..]
            .iter()
            .map(|n| n.held.lock().expect("single-threaded").count())
            .sum();
        let total = u64::from(self.sc.peers) * self.content.chunk_count();
        let t = self.now.as_micros() as f64 / 1e6;
        if self.samples.last().is_some_and(|s| s.t_s == t) {
            self.samples.pop();
        }
        self.samples.push(Sample {
            t_s: t,
            progress: if total == 0 {
                1.0
            } else {
                held as f64 / total as f64
            },
            complete: self.sc.peers - self.remaining,
            live: self.live.len() as u32,
        });
    }

    // ---- draining -------------------------------------------------------------------------

    fn drain(&mut self, i: u32, ep: &mut Endpoint) {
        let mut sent = 0u64;
        while let Some(t) = ep.poll_transmit(self.now, &mut self.buf) {
            let data = Bytes::copy_from_slice(&self.buf[..t.size]);
            if self.sc.check_invariants {
                self.check_datagram(i, ep, &data);
            }
            self.send(i, t.destination, data);
            sent += 1;
            if sent == 1_000_000 {
                self.violation(
                    ViolationKind::Livelock,
                    Some(i),
                    "a million datagrams from one input".into(),
                );
                break;
            }
        }
        if self.origin.is_some() {
            let incarnation = self.nodes[i as usize].incarnation;
            while let Some(f) = ep.poll_origin_fetch() {
                let Some(o) = &mut self.origin else { break };
                let (at, answer) = o.answer(self.now, &f);
                let answer = answer.map(Bytes::from);
                self.schedule(
                    at,
                    Ev::OriginAnswer {
                        node: i,
                        incarnation,
                        id: f.id,
                        answer,
                    },
                );
            }
        }
        let t = ep.poll_timeout();
        let now = self.now;
        let n = &mut self.nodes[i as usize];
        // Only an earlier deadline schedules a new wake-up. A later one (or none) keeps the
        // wake-up already queued: it fires early, which `handle_timeout` allows, and then
        // schedules the real deadline. Re-scheduling on every change filled the event heap
        // with superseded wake-ups (one per delivered datagram, at 10,000 peers).
        if let Some(t) = t {
            if n.wake_at.is_none_or(|w| t < w) {
                n.wake_gen = n.wake_gen.wrapping_add(1);
                n.wake_at = Some(t);
                let generation = n.wake_gen;
                self.schedule(
                    t.max(now),
                    Ev::Wake {
                        node: i,
                        generation,
                    },
                );
            }
        }
        while let Some(e) = ep.poll_event() {
            self.on_event(i, e);
        }
    }

    /// Whether node `i` is a PEX poisoner ([`Scenario::poisoners`]): the last leechers.
    fn is_poisoner(&self, i: u32) -> bool {
        let n = self.nodes.len() as u32;
        let p = self.sc.poisoners.min(self.sc.peers);
        p > 0 && i >= n - p && !self.nodes[i as usize].seeder
    }

    /// A poisoner's datagram with PEX_RESv4 messages put first: two non-existent addresses
    /// and two other poisoners. Only small datagrams on open channels (a HANDSHAKE must come
    /// first; DATA runs to the end, so nothing can follow it, and big ones would pass the MTU).
    fn poison(&mut self, from: u32, data: Bytes) -> Bytes {
        if data.len() < 5 || data.len() > 1000 || data[..4] == [0; 4] || data[4] == 0 {
            return data;
        }
        let n = self.nodes.len() as u32;
        let p = self.sc.poisoners.min(self.sc.peers).max(1);
        let k = self.counters.pex_injected;
        // 9.0.x.y: no node's (nodes are 10.x.y.z), and sorted before them, so a victim's
        // PEX candidates (tried in address order) reach them first.
        let fake = |j: u64| {
            let j = (j % 4096) as u16;
            SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::new(9, 0, (j >> 8) as u8, j as u8),
                PORT,
            ))
        };
        let mate = |j: u64| node_addr(n - p + ((u64::from(from) + j) % u64::from(p)) as u32);
        let addrs = [fake(k), fake(k + 1), mate(1), mate(2)];
        let mut out = Vec::with_capacity(data.len() + 7 * addrs.len());
        out.extend_from_slice(&data[..4]);
        for a in addrs {
            if let SocketAddr::V4(v4) = a {
                out.push(0x05);
                out.extend_from_slice(&v4.ip().octets());
                out.extend_from_slice(&v4.port().to_be_bytes());
            }
        }
        out.extend_from_slice(&data[4..]);
        self.counters.pex_injected += addrs.len() as u64;
        self.counters.injected_bytes += (out.len() - data.len()) as u64;
        Bytes::from(out)
    }

    fn send(&mut self, from: u32, dest: SocketAddr, data: Bytes) {
        let data = if self.sc.poisoners > 0 && self.is_poisoner(from) {
            self.poison(from, data)
        } else {
            data
        };
        self.counters.sent += 1;
        self.counters.sent_bytes += data.len() as u64;
        let Some(to) = addr_node(dest).filter(|&t| (t as usize) < self.nodes.len()) else {
            if self.sc.poisoners > 0 && !self.is_poisoner(from) {
                // Every node of the simulation registers with the tracker (and in a private
                // run holds a certificate): an address outside them is no member.
                self.counters.uncertified_contacts += 1;
            }
            self.drop_dgram(DropReason::NoRoute);
            return;
        };
        match self.net.send(self.now, from, to, data.len()) {
            Ok(d) => {
                if let Some(t) = d.duplicate {
                    self.counters.duplicated += 1;
                    let data = data.clone();
                    self.schedule(t, Ev::Arrive { to, from, data });
                }
                self.schedule(d.arrive, Ev::Arrive { to, from, data });
            }
            Err(r) => self.drop_dgram(r),
        }
    }

    /// Invariant: a node never announces (HAVE) a chunk it has not verified; what it sends
    /// decodes.
    fn check_datagram(&mut self, i: u32, ep: &Endpoint, data: &Bytes) {
        let Some(h) = self.nodes[i as usize].swarm else {
            return;
        };
        let Some(sw) = ep.swarm(h) else { return };
        let Ok((_, msgs)) = decode_datagram(data.clone(), &self.wire) else {
            self.violation(
                ViolationKind::MalformedOutput,
                Some(i),
                "short datagram".into(),
            );
            return;
        };
        let cs = u64::from(self.sc.chunk_size);
        let mut bad = None;
        for m in msgs {
            match m {
                Ok(Message::Have(spec)) => {
                    if let Some((a, b)) = spec.to_chunks(cs) {
                        if !sw.verified().contains_range(a..b + 1) {
                            bad = Some(format!("HAVE {a}..={b} without holding it"));
                            break;
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    bad = Some(format!("sent an undecodable message: {e}"));
                    break;
                }
            }
        }
        if let Some(why) = bad {
            let kind = if why.starts_with("HAVE") {
                ViolationKind::HaveWithoutChunk
            } else {
                ViolationKind::MalformedOutput
            };
            self.violation(kind, Some(i), why);
        }
    }

    fn on_event(&mut self, i: u32, e: Event) {
        let now = self.now;
        self.trace.word(now.as_micros());
        self.trace.word(u64::from(i));
        let kind = match &e {
            Event::PeerConnected { remote, .. } => {
                self.trace
                    .word(u64::from(addr_node(*remote).unwrap_or(u32::MAX)));
                0
            }
            Event::PeerClosed { remote, .. } => {
                self.trace
                    .word(u64::from(addr_node(*remote).unwrap_or(u32::MAX)));
                1
            }
            Event::ChunksVerified { range, .. } => {
                self.trace.word(range.start);
                self.trace.word(range.end);
                2
            }
            Event::SizeKnown { chunks, .. } => {
                self.trace.word(*chunks);
                3
            }
            Event::SwarmComplete { .. } => {
                let n = &mut self.nodes[i as usize];
                if !n.seeder && n.completed_at.is_none() {
                    n.completed_at = Some(now);
                    if !n.gone {
                        self.remaining -= 1;
                    }
                }
                4
            }
            Event::IntegrityFailure {
                bin, error, remote, ..
            } => {
                let from = addr_node(*remote);
                let from_seeder =
                    from.is_some_and(|f| self.nodes.get(f as usize).is_some_and(|n| n.seeder));
                self.violation(
                    ViolationKind::IntegrityFailure,
                    Some(i),
                    format!(
                        "integrity failure among honest peers at {bin:?}: {error:?}; sent by node {from:?} (seeder: {from_seeder})"
                    ),
                );
                5
            }
            Event::StoreFailure { error, .. } => {
                self.violation(ViolationKind::StoreFailure, Some(i), format!("{error}"));
                6
            }
            _ => 7,
        };
        self.trace.word(kind);
        self.event_counts[kind as usize] += 1;
    }

    fn violation(&mut self, kind: ViolationKind, node: Option<u32>, detail: String) {
        self.violation_count += 1;
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(Violation {
                kind,
                at_s: self.now.as_micros() as f64 / 1e6,
                node,
                detail,
            });
        }
    }

    fn live_add(&mut self, i: u32) {
        if self.live_pos[i as usize] == u32::MAX {
            self.live_pos[i as usize] = self.live.len() as u32;
            self.live.push(i);
        }
    }

    fn live_remove(&mut self, i: u32) {
        let p = self.live_pos[i as usize];
        if p == u32::MAX {
            return;
        }
        let last = *self.live.last().expect("non-empty");
        self.live.swap_remove(p as usize);
        if last != i {
            self.live_pos[last as usize] = p;
        }
        self.live_pos[i as usize] = u32::MAX;
    }

    // ---- the report -----------------------------------------------------------------------

    fn finish(mut self, wall_time_s: f64) -> Report {
        let mut protocol = self.dead_stats;
        for n in &self.nodes {
            if let Some(ep) = &n.ep {
                protocol.add(&ep.stats());
            }
        }
        // Byte accounting: what the endpoints say they sent and received equals what the
        // network took from them and handed to them.
        if protocol.datagrams_out != self.counters.sent
            || protocol.bytes_out + self.counters.injected_bytes != self.counters.sent_bytes
        {
            let d = format!(
                "endpoints sent {} datagrams / {} bytes; the network took {} / {}",
                protocol.datagrams_out,
                protocol.bytes_out,
                self.counters.sent,
                self.counters.sent_bytes
            );
            self.violation(ViolationKind::ByteAccounting, None, d);
        }
        if protocol.datagrams_in != self.counters.delivered
            || protocol.bytes_in != self.counters.delivered_bytes
        {
            let d = format!(
                "endpoints received {} datagrams / {} bytes; the network delivered {} / {}",
                protocol.datagrams_in,
                protocol.bytes_in,
                self.counters.delivered,
                self.counters.delivered_bytes
            );
            self.violation(ViolationKind::ByteAccounting, None, d);
        }
        let log = std::mem::take(&mut *self.log.lock().expect("single-threaded"));
        let live_lags = log.live_lags_ms;
        for (node, chunk) in log.bad_writes {
            self.violation(
                ViolationKind::BadWrite,
                Some(node),
                format!("stored chunk {chunk} whose bytes differ from the content"),
            );
        }
        for (node, chunk) in log.duplicate_writes {
            self.violation(
                ViolationKind::DuplicateWrite,
                Some(node),
                format!("chunk {chunk} written twice by one endpoint"),
            );
        }
        for (node, chunk) in log.bad_reads {
            self.violation(
                ViolationKind::BadRead,
                Some(node),
                format!("read chunk {chunk}, which it does not hold"),
            );
        }
        let seeders = self.sc.seeders.max(1) as usize;
        let start = Instant::ZERO;
        let completion: Vec<f64> = self.nodes[seeders..]
            .iter()
            .filter_map(|n| {
                let c = n.completed_at?;
                let j = n.joined_at.unwrap_or(start);
                Some(c.saturating_duration_since(j).as_micros() as f64 / 1e6)
            })
            .collect();
        let uploads: Vec<(bool, u64, u64)> = self
            .nodes
            .iter()
            .map(|n| {
                let c = n.counters.lock().expect("single-threaded");
                (n.seeder, c.bytes_read, c.bytes_written)
            })
            .collect();
        let live_incomplete = self.nodes[seeders..]
            .iter()
            .filter(|n| !n.gone && n.completed_at.is_none())
            .count() as u32;
        let gone = self.nodes.iter().filter(|n| n.gone).count() as u32;
        let now = self.now;
        let viewing = self.sc.viewing.map(|v| {
            let per_viewer = self.players[seeders..]
                .iter_mut()
                .flatten()
                .map(|p| p.finish(now))
                .collect();
            crate::viewer::ViewingReport::build(v.bitrate, per_viewer)
        });
        let honest_complete = (0..self.nodes.len() as u32)
            .filter(|&i| {
                let n = &self.nodes[i as usize];
                !n.seeder && !self.is_poisoner(i) && n.completed_at.is_some()
            })
            .count() as u32;
        Report::build(crate::report::Inputs {
            scenario: self.sc,
            trace_hash: self.trace.value(),
            completion,
            uploads,
            net: self.counters,
            protocol,
            events: self.events,
            sim_time_s: self.now.as_micros() as f64 / 1e6,
            wall_time_s,
            samples: self.samples,
            violations: self.violations,
            violation_count: self.violation_count,
            live_incomplete,
            gone,
            event_counts: self.event_counts,
            stream: self.stream.as_ref().map(|st| (st.injected, live_lags)),
            viewing,
            origin: self.origin.take().map(crate::origin::OriginModel::finish),
            honest_complete,
        })
    }
}

/// The only wall clock of the crate: how long a run took, for the report.
struct WallClock(std::time::Instant);

impl WallClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "wall time is reported, never fed to the simulation"
    )]
    fn start() -> Self {
        Self(std::time::Instant::now())
    }

    fn elapsed_s(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        for id in [0, 1, 255, 256, 65_535, 70_000] {
            assert_eq!(addr_node(node_addr(id)), Some(id));
        }
    }
}
