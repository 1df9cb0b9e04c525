//! An N-node in-memory network of [`Endpoint`]s on a virtual clock (quinn-proto's test `Pair`,
//! generalised to a mesh): per-link delay, jitter (reordering), loss, duplication and MTU
//! drawn from one seeded generator, and datagram filters that observe, alter or drop what a
//! node sends, in place of per-test knobs on nodes.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BinaryHeap};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::fmt;
use core::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;

use super::endpoint_config;
use crate::config::EndpointConfig;
use crate::endpoint::Endpoint;
use crate::endpoint::OriginFailure;
use crate::event::{Event, OriginHandle, SwarmHandle};
use crate::rand::Rng;
use crate::time::{Duration, Instant};
use crate::wire::{Message, WireParams, decode_datagram};

/// An origin's answer on its way: the node, the fetch, and the body or failure.
type OriginAnswer = (usize, u64, Result<Vec<u8>, OriginFailure>);

/// The address of node `i` of a [`Mesh`]: `10.0.x.y:6778` with `x = i / 256`, `y = i % 256`.
pub fn addr(i: usize) -> SocketAddr {
    SocketAddr::new(Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8).into(), 6778)
}

/// Drains `ep` after an input, as its contract asks: every datagram (`poll_transmit` until
/// `None`, each handed to `on_datagram` with its destination), then its next timeout, then
/// every event (to `on_event`). Returns the next timeout (it may already be due).
///
/// # Panics
/// If the endpoint offers more than 100,000 datagrams in one drain (it would never stop),
/// naming the messages of the last one.
pub fn drain(
    ep: &mut Endpoint,
    now: Instant,
    buf: &mut [u8],
    mut on_datagram: impl FnMut(SocketAddr, &[u8]),
    mut on_event: impl FnMut(Event),
) -> Option<Instant> {
    let mut guard = 0;
    while let Some(t) = ep.poll_transmit(now, buf) {
        guard += 1;
        if guard > 100_000 {
            let msgs = messages(&buf[..t.size]);
            panic!("the endpoint transmits forever: {msgs:?}");
        }
        on_datagram(t.destination, &buf[..t.size]);
    }
    let next = ep.poll_timeout();
    while let Some(e) = ep.poll_event() {
        on_event(e);
    }
    next
}

/// The messages of datagram `d`, decoded with the default [`WireParams`] (32-bit chunk
/// ranges, SHA-1); messages that fail to decode are left out, and a datagram too short to
/// decode gives none.
pub fn messages(d: &[u8]) -> Vec<Message> {
    let params = WireParams::default();
    decode_datagram(Bytes::copy_from_slice(d), &params)
        .map(|(_, it)| it.flatten().collect())
        .unwrap_or_default()
}

/// One endpoint of a [`Mesh`] and what the mesh knows of it.
pub struct Node {
    /// The endpoint (replace it to restart the node).
    pub ep: Endpoint,
    /// Its address: where datagrams to it are sent, and the source of what it sends.
    pub addr: SocketAddr,
    /// A node that is not alive neither sends, receives nor runs its timers.
    pub alive: bool,
    /// Every event it has produced, in order.
    pub events: Vec<Event>,
}

/// One link's behaviour. Random draws come from the mesh's generator, in this order for each
/// datagram: loss, duplication, then the jitter of each copy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConfig {
    /// One-way delay.
    pub latency: Duration,
    /// Extra delay drawn uniformly from `[0, jitter)` for each datagram: datagrams overtake
    /// each other (reordering).
    pub jitter: Duration,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram arrives twice.
    pub duplicate: f64,
    /// Datagrams longer than this are dropped (a path MTU).
    pub mtu: usize,
}

impl Default for LinkConfig {
    /// 10 ms, no jitter, loss or duplication, no MTU.
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            mtu: usize::MAX,
        }
    }
}

/// A datagram a node sends, as a [`Filter`] sees it before it enters the link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// The sending node's index.
    pub from: usize,
    /// The sender's address.
    pub src: SocketAddr,
    /// The destination.
    pub dst: SocketAddr,
    /// The bytes (a filter may change them).
    pub bytes: Vec<u8>,
}

impl Datagram {
    /// Its messages (see [`messages`]).
    pub fn messages(&self) -> Vec<Message> {
        messages(&self.bytes)
    }

    /// Whether it carries a message for which `f` is true.
    pub fn carries(&self, f: impl Fn(&Message) -> bool) -> bool {
        self.messages().iter().any(f)
    }
}

impl fmt::Display for Datagram {
    /// `n0 -> 10.0.0.1:6778 [channel] [message, …]`, each message cut to 40 characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let channel = self
            .bytes
            .get(..4)
            .map_or(0, |c| u32::from_be_bytes(c.try_into().expect("four bytes")));
        let msgs: Vec<String> = self
            .messages()
            .iter()
            .map(|m| alloc::format!("{m}").chars().take(40).collect())
            .collect();
        write!(f, "n{} -> {} [{channel:08x}] {msgs:?}", self.from, self.dst)
    }
}

/// What happens to a datagram after a [`Filter`] saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It goes on (to the next filter, then the link).
    Pass,
    /// It is lost (counted in [`Mesh::dropped`]).
    Drop,
}

/// Sees every datagram a node sends before the link does: to observe traffic, tamper with it
/// (a malicious or non-conforming peer) or lose chosen datagrams. A closure
/// `FnMut(&mut Datagram) -> Verdict` is a filter.
pub trait Filter {
    /// Sees one datagram (bytes may be changed) and says whether it goes on.
    fn filter(&mut self, now: Instant, d: &mut Datagram) -> Verdict;

    /// Sees all the datagrams node `from` sent in one drain, in order, before
    /// [`filter`](Self::filter) sees them one by one: they may be merged, split, reordered,
    /// added or removed (what is removed here is not counted as dropped). Nothing by default.
    fn burst(&mut self, now: Instant, from: usize, burst: &mut Vec<Datagram>) {
        let _ = (now, from, burst);
    }
}

impl<F: FnMut(&mut Datagram) -> Verdict> Filter for F {
    fn filter(&mut self, _now: Instant, d: &mut Datagram) -> Verdict {
        self(d)
    }
}

/// A datagram on the wire: arrival time, sequence (tie break), destination, source, bytes.
type InFlight = (Instant, u64, usize, SocketAddr, Vec<u8>);

/// N endpoints joined by an in-memory network on a virtual clock.
///
/// [`step`](Self::step) drains every node (transmits into the network, events into its log),
/// jumps to the next delivery or timer and processes it; [`run_until`](Self::run_until) steps
/// until a condition holds. Everything random (links, the endpoints' seeds from
/// [`config`](Self::config)) comes from one generator seeded by [`new`](Self::new): the same
/// seed gives the same run.
pub struct Mesh {
    /// The nodes, by index.
    pub nodes: Vec<Node>,
    /// The virtual time.
    pub now: Instant,
    /// Every link's behaviour, unless [`set_link`](Self::set_link) says otherwise.
    pub link: LinkConfig,
    /// The generator of every random draw.
    pub(crate) rng: Rng,
    /// Datagrams delivered to a live node.
    pub delivered: u64,
    /// Datagrams lost: by a filter, the link's loss or its MTU.
    pub dropped: u64,
    links: BTreeMap<(usize, usize), LinkConfig>,
    filters: Vec<Box<dyn Filter>>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    buf: Vec<u8>,
    /// HTTP origin models, by the index [`Mesh::add_origin_server`] returned.
    pub origins: Vec<super::TestOrigin>,
    /// Which origin model answers each node's origin.
    origin_links: BTreeMap<(usize, OriginHandle), usize>,
    /// Origin answers on their way: (arrival, sequence) → (node, fetch, answer).
    origin_answers: BTreeMap<(Instant, u64), OriginAnswer>,
}

impl Mesh {
    /// An empty mesh at time 1,000 s whose draws come from `seed`, with default links.
    pub fn new(seed: u64) -> Self {
        Self {
            nodes: Vec::new(),
            now: Instant::from_secs(1_000),
            link: LinkConfig::default(),
            rng: Rng::seed_from_u64(seed),
            delivered: 0,
            dropped: 0,
            links: BTreeMap::new(),
            filters: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            buf: vec![0u8; 2048],
            origins: Vec::new(),
            origin_links: BTreeMap::new(),
            origin_answers: BTreeMap::new(),
        }
    }

    /// A test configuration ([`endpoint_config`]) whose seed is drawn from the mesh's generator.
    pub fn config(&mut self) -> EndpointConfig {
        let mut seed = [0u8; 32];
        self.rng.fill(&mut seed);
        endpoint_config(seed)
    }

    /// Adds a node with an endpoint made from `cfg`, at [`addr`]`(index)`; returns its index.
    pub fn add(&mut self, cfg: EndpointConfig) -> usize {
        let i = self.nodes.len();
        self.nodes.push(Node {
            ep: Endpoint::new(cfg, self.now),
            addr: addr(i),
            alive: true,
            events: Vec::new(),
        });
        i
    }

    /// Adds a node with a fresh [`config`](Self::config); returns its index.
    pub fn add_node(&mut self) -> usize {
        let cfg = self.config();
        self.add(cfg)
    }

    /// Adds an HTTP origin model; returns its index in [`Mesh::origins`].
    pub fn add_origin_server(&mut self, origin: super::TestOrigin) -> usize {
        self.origins.push(origin);
        self.origins.len() - 1
    }

    /// Makes origin model `server` a source of node `node`'s swarm `swarm`
    /// ([`Endpoint::add_origin`]); returns the node's handle of it.
    ///
    /// # Panics
    /// If the endpoint refuses the origin.
    pub fn add_origin(&mut self, node: usize, swarm: SwarmHandle, server: usize) -> OriginHandle {
        let h = self.nodes[node]
            .ep
            .add_origin(self.now, swarm)
            .expect("origin");
        self.origin_links.insert((node, h), server);
        h
    }

    /// Sets the behaviour of the link from node `from` to node `to` (one direction).
    pub fn set_link(&mut self, from: usize, to: usize, link: LinkConfig) -> &mut Self {
        self.links.insert((from, to), link);
        self
    }

    /// Adds a filter; every datagram passes the filters in the order they were added.
    pub fn add_filter(&mut self, f: impl Filter + 'static) -> &mut Self {
        self.filters.push(Box::new(f));
        self
    }

    /// Hands node `node` a datagram from `from` and drains it; returns what it sent at once
    /// (which is not put on the network). Its events go to its log.
    pub fn inject(&mut self, node: usize, from: SocketAddr, d: Bytes) -> Vec<Vec<u8>> {
        let n = &mut self.nodes[node];
        n.ep.handle_datagram(self.now, from, d);
        let mut out = Vec::new();
        drain(
            &mut n.ep,
            self.now,
            &mut self.buf,
            |_, d| out.push(d.to_vec()),
            |e| n.events.push(e),
        );
        out
    }

    /// Drains every live node: its transmits through the filters into the network, its events
    /// into its log.
    pub fn drain(&mut self) {
        for i in 0..self.nodes.len() {
            if !self.nodes[i].alive {
                continue;
            }
            let node = &mut self.nodes[i];
            let src = node.addr;
            let mut burst = Vec::new();
            drain(
                &mut node.ep,
                self.now,
                &mut self.buf,
                |dst, d| {
                    burst.push(Datagram {
                        from: i,
                        src,
                        dst,
                        bytes: d.to_vec(),
                    })
                },
                |e| node.events.push(e),
            );
            // Origin fetches go to their models (unknown origins fail at once).
            while let Some(f) = node.ep.poll_origin_fetch() {
                let answer = match self.origin_links.get(&(i, f.origin)) {
                    Some(&s) => self.origins[s].answer(self.now, &f),
                    None => (self.now, Err(OriginFailure::Unreachable)),
                };
                self.seq += 1;
                self.origin_answers
                    .insert((answer.0, self.seq), (i, f.id, answer.1));
            }
            for f in &mut self.filters {
                f.burst(self.now, i, &mut burst);
            }
            for d in burst {
                self.send(d);
            }
        }
    }

    /// Puts datagram `d` on the network: filters, then the link's loss, MTU, duplication and
    /// delay.
    fn send(&mut self, mut d: Datagram) {
        for f in &mut self.filters {
            if f.filter(self.now, &mut d) == Verdict::Drop {
                self.dropped += 1;
                return;
            }
        }
        let to = self.nodes.iter().position(|n| n.addr == d.dst);
        let link = to
            .and_then(|to| self.links.get(&(d.from, to)))
            .copied()
            .unwrap_or(self.link);
        if self.rng.gen_bool(link.loss) || d.bytes.len() > link.mtu {
            self.dropped += 1;
            return;
        }
        let copies = if self.rng.gen_bool(link.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let extra = if link.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_micros(self.rng.gen_range(0..link.jitter.as_micros() as u64))
            };
            self.seq += 1;
            if let Some(to) = to {
                self.queue.push(Reverse((
                    self.now + link.latency + extra,
                    self.seq,
                    to,
                    d.src,
                    d.bytes.clone(),
                )));
            }
        }
    }

    /// One step: drain, then jump to the next delivery or timer and process it. `false` when
    /// there is nothing left to do (no datagram in flight, no timer).
    pub fn step(&mut self) -> bool {
        self.drain();
        let next_packet = self.queue.peek().map(|Reverse((t, ..))| *t);
        let next_timer = self
            .nodes
            .iter()
            .filter(|n| n.alive)
            .filter_map(|n| n.ep.poll_timeout())
            .min();
        let next_origin = self.origin_answers.keys().next().map(|k| k.0);
        let Some(next) = [next_packet, next_timer, next_origin]
            .into_iter()
            .flatten()
            .min()
        else {
            return false;
        };
        self.now = self.now.max(next);
        while let Some(entry) = self.origin_answers.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let (node, id, answer) = entry.remove();
            if self.nodes[node].alive {
                let ep = &mut self.nodes[node].ep;
                match answer {
                    Ok(body) => ep.origin_data(self.now, id, &body),
                    Err(e) => ep.origin_failed(self.now, id, e),
                }
            }
        }
        while let Some(Reverse((t, ..))) = self.queue.peek() {
            if *t > self.now {
                break;
            }
            let Reverse((_, _, to, from, d)) = self.queue.pop().expect("peeked");
            if self.nodes[to].alive {
                self.delivered += 1;
                self.nodes[to]
                    .ep
                    .handle_datagram(self.now, from, Bytes::from(d));
            }
        }
        for n in &mut self.nodes {
            if n.alive && n.ep.poll_timeout().is_some_and(|t| t <= self.now) {
                n.ep.handle_timeout(self.now);
            }
        }
        true
    }

    /// Runs until `done` holds or `limit` of virtual time passes; returns whether it held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                self.drain();
                return true;
            }
            if !self.step() {
                break;
            }
        }
        self.drain();
        done(self)
    }

    /// Whether node `node`'s swarm `swarm` is complete.
    pub fn complete(&self, node: usize, swarm: SwarmHandle) -> bool {
        self.nodes[node]
            .ep
            .swarm(swarm)
            .is_some_and(|s| s.is_complete())
    }
}

impl fmt::Debug for Mesh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mesh")
            .field("nodes", &self.nodes.len())
            .field("now", &self.now)
            .field("link", &self.link)
            .field("in_flight", &self.queue.len())
            .field("delivered", &self.delivered)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use alloc::rc::Rc;
    use core::cell::Cell;

    use super::*;
    use crate::hash::HashAlgorithm;
    use crate::testing::{content, leecher, seeder};

    /// A seeder (node 0) and a leecher (node 1) of 20 KiB that has asked it to connect.
    fn pair(mesh: &mut Mesh) -> (SwarmHandle, crate::testing::CheckingStore, Vec<u8>) {
        let data = content(20 * 1024, 3);
        let (s, l) = (mesh.add_node(), mesh.add_node());
        let (_, tree) = seeder(mesh, s, &data, 1024, HashAlgorithm::Sha1);
        let (lh, store) = leecher(mesh, l, &tree, &data);
        let sa = mesh.nodes[s].addr;
        mesh.nodes[l].ep.connect(mesh.now, lh, sa).unwrap();
        (lh, store, data)
    }

    #[test]
    fn the_same_seed_gives_the_same_run() {
        let run = || {
            let mut mesh = Mesh::new(7);
            mesh.link.loss = 0.1;
            mesh.link.jitter = Duration::from_millis(5);
            mesh.link.duplicate = 0.05;
            let (lh, store, data) = pair(&mut mesh);
            assert!(mesh.run_until(Duration::from_secs(60), |m| m.complete(1, lh)));
            assert_eq!(store.assembled(), data);
            (mesh.now, mesh.delivered, mesh.dropped)
        };
        let first = run();
        assert!(first.2 > 0, "nothing was lost");
        assert_eq!(run(), first);
    }

    #[test]
    fn a_link_override_and_a_filter_act_on_their_traffic_only() {
        let mut mesh = Mesh::new(8);
        let (lh, _, _) = pair(&mut mesh);
        // The seeder's datagrams are all lost: the leecher never gets anything.
        let lossy = LinkConfig {
            loss: 1.0,
            ..LinkConfig::default()
        };
        mesh.set_link(0, 1, lossy);
        let seen = Rc::new(Cell::new((0u32, 0u32)));
        let s = seen.clone();
        mesh.add_filter(move |d: &mut Datagram| {
            let (a, b) = s.get();
            s.set(if d.from == 0 { (a + 1, b) } else { (a, b + 1) });
            Verdict::Pass
        });
        assert!(!mesh.run_until(Duration::from_secs(5), |m| m.complete(1, lh)));
        let (from_seeder, from_leecher) = seen.get();
        assert!(from_seeder > 0 && from_leecher > 0);
        assert_eq!(mesh.dropped, u64::from(from_seeder));
        assert_eq!(mesh.nodes[1].ep.stats().datagrams_in, 0);
        // Healed, with the leecher's datagrams dropped by a filter instead: still nothing.
        mesh.set_link(0, 1, LinkConfig::default());
        mesh.add_filter(|d: &mut Datagram| {
            if d.from == 1 {
                Verdict::Drop
            } else {
                Verdict::Pass
            }
        });
        assert!(!mesh.run_until(Duration::from_secs(5), |m| m.complete(1, lh)));
        assert_eq!(mesh.nodes[0].ep.stats().datagrams_in, mesh.delivered);
        // Without the filters' drops the transfer completes.
        mesh.filters.clear();
        assert!(mesh.run_until(Duration::from_secs(60), |m| m.complete(1, lh)));
    }

    #[test]
    fn datagrams_over_the_mtu_are_dropped() {
        let mut mesh = Mesh::new(9);
        mesh.link.mtu = 200;
        let (lh, _, _) = pair(&mut mesh);
        assert!(!mesh.run_until(Duration::from_secs(5), |m| m.complete(1, lh)));
        assert!(mesh.dropped > 0);
        mesh.link.mtu = usize::MAX;
        assert!(mesh.run_until(Duration::from_secs(120), |m| m.complete(1, lh)));
    }
}
