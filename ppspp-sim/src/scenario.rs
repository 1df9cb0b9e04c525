//! Scenarios: what to simulate. Build one with [`Scenario::builder`].

use serde::Serialize;

use ppspp_core::hash::HashAlgorithm;
use ppspp_core::time::Duration;

use crate::net::{LinkSpec, LossModel, NetConfig, Reorder};

/// The access link of a kind of node: rates in bytes per second and queue sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Access {
    /// Uplink.
    pub up: LinkSpec,
    /// Downlink.
    pub down: LinkSpec,
}

impl Access {
    /// Links of `up` and `down` bytes/s whose drop-tail queues hold `queue_ms` of traffic
    /// (at least 16 KiB).
    pub fn with_rates(up: u64, down: u64, queue_ms: u64) -> Self {
        let q = |r: u64| (r.saturating_mul(queue_ms) / 1000).max(16 * 1024);
        Self {
            up: LinkSpec {
                rate: up.max(1),
                queue: q(up),
            },
            down: LinkSpec {
                rate: down.max(1),
                queue: q(down),
            },
        }
    }
}

/// Leechers that leave during the run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Churn {
    /// Share of leechers that leave once (0..=1).
    pub fraction: f64,
    /// Leave times are uniform in `[from, to]` after the start.
    pub from: Duration,
    /// See `from`.
    pub to: Duration,
    /// How long a leaver stays away (its store is kept); `None`: it never returns.
    pub offline: Option<Duration>,
}

/// How a partition splits the nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PartitionMode {
    /// Every node goes to one of `groups` groups at random.
    Split {
        /// Number of groups (at least 2).
        groups: u16,
    },
    /// `count` random nodes are each cut off from everyone.
    Isolate {
        /// How many nodes.
        count: u32,
    },
    /// The seeders are cut off from every leecher.
    IsolateSeeders,
}

/// A partition from `at` until `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// When it starts.
    pub at: Duration,
    /// When it heals.
    pub until: Duration,
    /// How the nodes are split.
    pub mode: PartitionMode,
}

/// Random crashes: `count` nodes (leechers, or any node with `include_seeders`) crash at
/// uniform times in `[from, to]` and restart after `down` (a fresh endpoint, the store kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Crashes {
    /// How many crashes.
    pub count: u32,
    /// Crash times are uniform in `[from, to]`.
    pub from: Duration,
    /// See `from`.
    pub to: Duration,
    /// How long a crashed node stays down.
    pub down: Duration,
    /// Whether seeders may crash too.
    pub include_seeders: bool,
}

/// Everything that defines a run. Same scenario (seed included), same report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scenario {
    /// The run seed: every random draw derives from it.
    pub seed: u64,
    /// A live stream (RFC 7574 §6) instead of a file: the (single) seeder injects the content
    /// as it is generated, at this many bytes per second, signing a munro every 32 chunks;
    /// leechers tune in at the newest munro and are complete once they hold every chunk from
    /// there to the end of the stream. The report then also gives the delay from injection to
    /// verification (`live`).
    pub live_rate: Option<u64>,
    /// Leechers.
    pub peers: u32,
    /// Original seeders.
    pub seeders: u32,
    /// Content length in bytes.
    pub content_size: u64,
    /// Chunk size in bytes.
    pub chunk_size: u32,
    /// The Merkle hash function.
    #[serde(serialize_with = "ser_display")]
    pub hash: HashAlgorithm,
    /// The seed of the synthetic content.
    pub content_seed: u64,
    /// Leechers' access links.
    pub leecher_access: Access,
    /// Seeders' access links.
    pub seeder_access: Access,
    /// The core network.
    pub net: NetConfig,
    /// The largest datagram endpoints send.
    pub max_datagram_size: usize,
    /// Leechers join at uniform times in `[0, join_window]` (0: all at once, a flash crowd).
    pub join_window: Duration,
    /// Initial contacts per leecher besides the seeders (as a tracker would hand out).
    pub contacts: u32,
    /// How many of the seeders each leecher is told about (at most `seeders`).
    pub seeder_contacts: u32,
    /// Every `tracker_interval`, a leecher with fewer than 2 connected peers gets new
    /// contacts (a tracker re-announce).
    pub tracker_interval: Duration,
    /// Churn.
    pub churn: Option<Churn>,
    /// Crashes.
    pub crashes: Option<Crashes>,
    /// Partitions.
    pub partitions: Vec<Partition>,
    /// From this time on the network is healed: no loss, no partition, crashed nodes back.
    pub heal_at: Option<Duration>,
    /// The MTU from `heal_at` on (`None`: `net.mtu` stays). With `net.mtu` below
    /// `max_datagram_size` and this above it, the path MTU is a fault that heals; with this
    /// `None` it is a lasting property of the path.
    pub healed_mtu: Option<usize>,
    /// Upload slots per swarm.
    pub upload_slots: u32,
    /// Peers per swarm.
    pub max_peers: u32,
    /// The run stops at this simulated time even if peers are incomplete.
    pub duration: Duration,
    /// Interval between progress samples.
    pub sample_interval: Duration,
    /// Run invariant checks (decode every datagram to check HAVEs, byte accounting).
    pub check_invariants: bool,
    /// Leechers are viewers who play the content while it downloads (static content only).
    pub viewing: Option<crate::viewer::Viewing>,
    /// Peers learn each other only from a PPSTP tracker (RFC 7846; the `ppspp-tracker`
    /// crate's tracker and announce logic) instead of being handed contacts.
    pub ppstp: bool,
    /// An HTTP origin every leecher also fetches from (hybrid delivery, issue 17).
    pub origin: Option<crate::origin::OriginSpec>,
    /// A private swarm (with [`Scenario::ppstp`]): the tracker issues membership
    /// certificates and every peer requires them (docs/membership.md).
    #[serde(skip_serializing_if = "is_false")]
    pub private: bool,
    /// The last this many leechers are PEX poisoners: they take part like others, and put
    /// PEX_RESv4 messages naming non-existent addresses and each other's into every small
    /// datagram they send.
    #[serde(skip_serializing_if = "is_zero")]
    pub poisoners: u32,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn ser_display<S: serde::Serializer, T: std::fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl Scenario {
    /// A builder starting from the default scenario.
    pub fn builder() -> ScenarioBuilder {
        ScenarioBuilder {
            s: Self::default_scenario(),
        }
    }

    /// The scenario `ppspp-sim` runs with no arguments: 200 leechers and one seeder, 1 MiB in
    /// 1 KiB chunks, a flash crowd within 2 s, 1% loss, 10% churn.
    pub fn default_scenario() -> Self {
        Self {
            seed: 1,
            live_rate: None,
            peers: 200,
            seeders: 1,
            content_size: 1 << 20,
            chunk_size: 1024,
            hash: HashAlgorithm::Sha1,
            content_seed: 0x5EED,
            leecher_access: Access::with_rates(1_000_000, 8_000_000, 200),
            seeder_access: Access::with_rates(8_000_000, 8_000_000, 200),
            net: NetConfig {
                base_latency: Duration::from_millis(10),
                spread: Duration::from_millis(60),
                jitter: Duration::from_millis(2),
                loss: LossModel::per_direction(0.01),
                duplicate: 0.001,
                mtu: 1500,
                reorder: Reorder::NONE,
            },
            max_datagram_size: 1472,
            join_window: Duration::from_secs(2),
            contacts: 5,
            seeder_contacts: 1,
            tracker_interval: Duration::from_secs(5),
            churn: Some(Churn {
                fraction: 0.1,
                from: Duration::from_secs(2),
                to: Duration::from_secs(10),
                offline: Some(Duration::from_secs(5)),
            }),
            crashes: None,
            partitions: Vec::new(),
            heal_at: None,
            healed_mtu: None,
            upload_slots: 8,
            max_peers: 30,
            duration: Duration::from_secs(600),
            sample_interval: Duration::from_millis(250),
            check_invariants: true,
            viewing: None,
            ppstp: false,
            origin: None,
            private: false,
            poisoners: 0,
        }
    }

    /// The number of chunks.
    pub fn chunk_count(&self) -> u64 {
        self.content_size.div_ceil(u64::from(self.chunk_size))
    }
}

/// Builds a [`Scenario`]; every setter has a sensible default.
#[derive(Clone, Debug)]
#[must_use]
pub struct ScenarioBuilder {
    s: Scenario,
}

impl ScenarioBuilder {
    /// The run seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.s.seed = seed;
        self
    }
    /// Number of leechers.
    pub fn peers(mut self, n: u32) -> Self {
        self.s.peers = n;
        self
    }
    /// Number of original seeders (at least 1).
    pub fn seeders(mut self, n: u32) -> Self {
        self.s.seeders = n.max(1);
        self
    }
    /// Content length in bytes (at least 1).
    pub fn content_size(mut self, bytes: u64) -> Self {
        self.s.content_size = bytes.max(1);
        self
    }
    /// Chunk size in bytes.
    pub fn chunk_size(mut self, bytes: u32) -> Self {
        self.s.chunk_size = bytes.max(1);
        self
    }
    /// The Merkle hash function.
    pub fn hash(mut self, alg: HashAlgorithm) -> Self {
        self.s.hash = alg;
        self
    }
    /// Leechers' access link rates (bytes/s), queues holding 200 ms.
    pub fn leecher_rates(mut self, up: u64, down: u64) -> Self {
        self.s.leecher_access = Access::with_rates(up, down, 200);
        self
    }
    /// Seeders' access link rates (bytes/s), queues holding 200 ms.
    pub fn seeder_rates(mut self, up: u64, down: u64) -> Self {
        self.s.seeder_access = Access::with_rates(up, down, 200);
        self
    }
    /// Leechers' access links.
    pub fn leecher_access(mut self, a: Access) -> Self {
        self.s.leecher_access = a;
        self
    }
    /// Seeders' access links.
    pub fn seeder_access(mut self, a: Access) -> Self {
        self.s.seeder_access = a;
        self
    }
    /// One-way base latency and the extra latency across the whole map.
    pub fn latency(mut self, base: Duration, spread: Duration) -> Self {
        self.s.net.base_latency = base;
        self.s.net.spread = spread;
        self
    }
    /// Per-packet jitter (reordering).
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.s.net.jitter = jitter;
        self
    }
    /// Reordering on every uplink.
    pub fn reorder(mut self, r: Reorder) -> Self {
        self.s.net.reorder = r;
        self
    }
    /// End-to-end Bernoulli loss probability.
    pub fn loss(mut self, p: f64) -> Self {
        self.s.net.loss = LossModel::per_direction(p);
        self
    }
    /// Any loss model, applied on every link direction.
    pub fn loss_model(mut self, m: LossModel) -> Self {
        self.s.net.loss = m;
        self
    }
    /// Duplication probability.
    pub fn duplicate(mut self, p: f64) -> Self {
        self.s.net.duplicate = p;
        self
    }
    /// Network MTU (UDP payload bytes).
    pub fn mtu(mut self, bytes: usize) -> Self {
        self.s.net.mtu = bytes;
        self
    }
    /// The largest datagram endpoints send.
    pub fn max_datagram_size(mut self, bytes: usize) -> Self {
        self.s.max_datagram_size = bytes;
        self
    }
    /// A live stream injected at `rate` bytes per second (see [`Scenario::live_rate`]).
    pub fn live(mut self, rate: Option<u64>) -> Self {
        self.s.live_rate = rate;
        self
    }
    /// Leechers join within this window (0: a flash crowd at time 0).
    pub fn join_window(mut self, d: Duration) -> Self {
        self.s.join_window = d;
        self
    }
    /// Initial random contacts per leecher (besides seeders).
    pub fn contacts(mut self, n: u32) -> Self {
        self.s.contacts = n;
        self
    }
    /// Churn (or none).
    pub fn churn(mut self, c: Option<Churn>) -> Self {
        self.s.churn = c;
        self
    }
    /// Crashes (or none).
    pub fn crashes(mut self, c: Option<Crashes>) -> Self {
        self.s.crashes = c;
        self
    }
    /// Adds a partition.
    pub fn partition(mut self, p: Partition) -> Self {
        self.s.partitions.push(p);
        self
    }
    /// Heal the network at this time.
    pub fn heal_at(mut self, t: Option<Duration>) -> Self {
        self.s.heal_at = t;
        self
    }

    /// The MTU once the network heals (`None`: the MTU does not change).
    pub fn healed_mtu(mut self, bytes: Option<usize>) -> Self {
        self.s.healed_mtu = bytes;
        self
    }
    /// Upload slots per swarm.
    pub fn upload_slots(mut self, n: u32) -> Self {
        self.s.upload_slots = n.max(1);
        self
    }
    /// Peers per swarm.
    pub fn max_peers(mut self, n: u32) -> Self {
        self.s.max_peers = n.max(1);
        self
    }
    /// The simulated time limit.
    pub fn duration(mut self, d: Duration) -> Self {
        self.s.duration = d;
        self
    }
    /// Interval between progress samples.
    pub fn sample_interval(mut self, d: Duration) -> Self {
        self.s.sample_interval = d.max(Duration::from_millis(1));
        self
    }
    /// Whether to run the invariant checks.
    pub fn check_invariants(mut self, on: bool) -> Self {
        self.s.check_invariants = on;
        self
    }
    /// Leechers play the content as they download it (see [`Scenario::viewing`]).
    pub fn viewing(mut self, v: Option<crate::viewer::Viewing>) -> Self {
        self.s.viewing = v;
        self
    }
    /// Peers learn each other only from a PPSTP tracker.
    pub fn ppstp(mut self, on: bool) -> Self {
        self.s.ppstp = on;
        self
    }
    /// A private swarm: certificates from the tracker, required by every peer (see
    /// [`Scenario::private`]).
    pub fn private(mut self, on: bool) -> Self {
        self.s.private = on;
        self
    }
    /// PEX poisoners among the leechers (see [`Scenario::poisoners`]).
    pub fn poisoners(mut self, n: u32) -> Self {
        self.s.poisoners = n;
        self
    }
    /// Leechers also fetch from an HTTP origin (see [`Scenario::origin`]).
    pub fn origin(mut self, o: Option<crate::origin::OriginSpec>) -> Self {
        self.s.origin = o;
        self
    }
    /// The scenario.
    pub fn build(mut self) -> Scenario {
        self.s.seeder_contacts = self.s.seeder_contacts.clamp(1, self.s.seeders.max(1));
        self.s
    }
}
