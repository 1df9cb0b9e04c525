//! The network model: every node has an access link (an uplink and a downlink, each with a
//! rate and a drop-tail queue in bytes); between access links the core adds a latency derived
//! from the two nodes' coordinates, plus per-packet jitter (which reorders). Loss (Bernoulli or
//! Gilbert-Elliott bursts) is drawn per link direction from that direction's own random stream;
//! duplication, an MTU and partitions complete the model. State is O(nodes): no per-pair
//! tables.
//!
//! One direction of a link (rate, drop-tail queue, loss) is also the building block of
//! [`crate::path::Path`], the point-to-point model that `ppspp-netem` applies to real packets,
//! so simulation and the wide-area bench share one model of a link.

use serde::Serialize;

use ppspp_core::time::{Duration, Instant};

use crate::rng::{Purpose, SimRng};

/// Loss on one link direction.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LossModel {
    /// No loss.
    None,
    /// Each datagram is lost independently with probability `p`.
    Bernoulli {
        /// Loss probability.
        p: f64,
    },
    /// Gilbert-Elliott: a two-state Markov chain (good, bad), stepped once per datagram, with a
    /// loss probability in each state: bursty loss.
    GilbertElliott {
        /// Probability of moving from good to bad.
        p_good_to_bad: f64,
        /// Probability of moving from bad to good.
        p_bad_to_good: f64,
        /// Loss probability in the good state.
        loss_good: f64,
        /// Loss probability in the bad state.
        loss_bad: f64,
    },
}

impl LossModel {
    /// Bernoulli loss on each of two directions such that the end-to-end loss is `p`.
    pub fn per_direction(p: f64) -> Self {
        if p <= 0.0 {
            Self::None
        } else {
            Self::Bernoulli {
                p: 1.0 - (1.0 - p.min(1.0)).sqrt(),
            }
        }
    }

    /// Bursty loss with mean burst length `burst` datagrams and long-run loss about `p` per
    /// direction (bad state loses everything).
    pub fn bursty(p: f64, burst: f64) -> Self {
        if p <= 0.0 {
            return Self::None;
        }
        let p = p.min(0.9);
        let p_bad_to_good = 1.0 / burst.max(1.0);
        // Stationary share of the bad state = p: g2b / (g2b + b2g) = p.
        let p_good_to_bad = p * p_bad_to_good / (1.0 - p);
        Self::GilbertElliott {
            p_good_to_bad,
            p_bad_to_good,
            loss_good: 0.0,
            loss_bad: 1.0,
        }
    }
}

/// Reordering: a share of datagrams is held back by an extra delay, uniform in `[0, max]`, so
/// later datagrams overtake it (netem's "x% delayed by up to y ms"). Unlike
/// [`NetConfig::jitter`], which delays every datagram, it leaves the others alone.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Reorder {
    /// Probability that a datagram is held back.
    pub p: f64,
    /// The largest extra delay.
    pub max: Duration,
}

impl Reorder {
    /// No reordering (draws no random numbers, so traces without it do not change).
    pub const NONE: Self = Self {
        p: 0.0,
        max: Duration::ZERO,
    };

    /// The extra delay of one datagram; draws from `rng` only when reordering is on.
    pub fn extra(&self, rng: &mut SimRng) -> Duration {
        if self.p <= 0.0 {
            return Duration::ZERO;
        }
        if rng.chance(self.p) {
            Duration::from_micros(rng.range(0, self.max.as_micros() as u64))
        } else {
            Duration::ZERO
        }
    }
}

/// One direction of an access link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LinkSpec {
    /// Rate in bytes per second.
    pub rate: u64,
    /// Drop-tail queue capacity in bytes.
    pub queue: u64,
}

impl LinkSpec {
    /// A rate meaning "no rate limit": datagrams are never serialized nor queued.
    pub const UNLIMITED: u64 = u64::MAX;
}

/// Network-wide settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct NetConfig {
    /// One-way core latency between two nodes at the same place.
    pub base_latency: Duration,
    /// Extra one-way latency between nodes at opposite corners of the unit square.
    pub spread: Duration,
    /// Per-packet extra delay, uniform in `[0, jitter]` (reorders datagrams).
    pub jitter: Duration,
    /// Loss on every uplink and every downlink.
    pub loss: LossModel,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
    /// Datagrams larger than this are dropped.
    pub mtu: usize,
    /// Reordering on every uplink ([`Reorder::NONE`] for none).
    pub reorder: Reorder,
}

/// Why the network dropped a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropReason {
    /// Larger than the MTU.
    Mtu,
    /// The two nodes are in different partitions.
    Partition,
    /// The sender's uplink queue was full.
    UplinkQueue,
    /// The receiver's downlink queue was full.
    DownlinkQueue,
    /// Random loss (Bernoulli or Gilbert-Elliott).
    Loss,
    /// The destination node is down (crashed or left).
    NodeDown,
    /// The destination address is no node of the simulation.
    NoRoute,
}

impl DropReason {
    /// Every reason, in report order.
    pub const ALL: [Self; 7] = [
        Self::Mtu,
        Self::Partition,
        Self::UplinkQueue,
        Self::DownlinkQueue,
        Self::Loss,
        Self::NodeDown,
        Self::NoRoute,
    ];

    /// A short snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mtu => "mtu",
            Self::Partition => "partition",
            Self::UplinkQueue => "uplink_queue",
            Self::DownlinkQueue => "downlink_queue",
            Self::Loss => "loss",
            Self::NodeDown => "node_down",
            Self::NoRoute => "no_route",
        }
    }
}

/// The state of one link direction.
#[derive(Clone, Debug)]
pub(crate) struct Link {
    spec: LinkSpec,
    /// When the link finishes sending everything queued, in ns.
    free_at_ns: u64,
    bad: bool,
    pub(crate) rng: SimRng,
}

impl Link {
    pub(crate) fn new(spec: LinkSpec, rng: SimRng) -> Self {
        Self {
            spec,
            free_at_ns: 0,
            bad: false,
            rng,
        }
    }

    /// Enqueues `len` bytes at `now_ns`; returns when the last bit leaves, or `None` when the
    /// queue is full.
    pub(crate) fn enqueue(&mut self, now_ns: u64, len: usize) -> Option<u64> {
        if self.spec.rate == LinkSpec::UNLIMITED {
            return Some(now_ns);
        }
        let start = self.free_at_ns.max(now_ns);
        let backlog_ns = start - now_ns;
        let backlog = u128::from(backlog_ns) * u128::from(self.spec.rate) / 1_000_000_000;
        if backlog as u64 + len as u64 > self.spec.queue.max(len as u64) {
            return None;
        }
        let tx_ns = (len as u64 * 1_000_000_000).div_ceil(self.spec.rate.max(1));
        self.free_at_ns = start + tx_ns;
        Some(self.free_at_ns)
    }

    pub(crate) fn lost(&mut self, model: &LossModel) -> bool {
        match *model {
            LossModel::None => false,
            LossModel::Bernoulli { p } => self.rng.chance(p),
            LossModel::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_good,
                loss_bad,
            } => {
                let flip = if self.bad {
                    p_bad_to_good
                } else {
                    p_good_to_bad
                };
                if self.rng.chance(flip) {
                    self.bad = !self.bad;
                }
                self.rng.chance(if self.bad { loss_bad } else { loss_good })
            }
        }
    }
}

/// The network: access links, coordinates, partitions.
#[derive(Debug)]
pub struct Network {
    cfg: NetConfig,
    up: Vec<Link>,
    down: Vec<Link>,
    coords: Vec<(f64, f64)>,
    group: Vec<u16>,
    partitioned: bool,
}

/// Where a datagram that left its sender goes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Departure {
    /// When it reaches the receiver's downlink.
    pub arrive: Instant,
    /// When a duplicate reaches it, if the datagram was duplicated.
    pub duplicate: Option<Instant>,
}

impl Network {
    /// An empty network.
    pub fn new(cfg: NetConfig) -> Self {
        Self {
            cfg,
            up: Vec::new(),
            down: Vec::new(),
            coords: Vec::new(),
            group: Vec::new(),
            partitioned: false,
        }
    }

    /// The settings.
    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// Replaces the MTU (for healing an MTU fault).
    pub fn set_mtu(&mut self, mtu: usize) {
        self.cfg.mtu = mtu;
    }

    /// Replaces the loss model (for healing).
    pub fn set_loss(&mut self, loss: LossModel) {
        self.cfg.loss = loss;
    }

    /// Adds node `id` (the next index) with its links; its coordinates come from `place`.
    pub fn add_node(&mut self, run_seed: u64, up: LinkSpec, down: LinkSpec, place: &mut SimRng) {
        let id = self.up.len() as u32;
        self.up
            .push(Link::new(up, SimRng::stream(run_seed, id, Purpose::Uplink)));
        self.down.push(Link::new(
            down,
            SimRng::stream(run_seed, id, Purpose::Downlink),
        ));
        self.coords.push((place.next_f64(), place.next_f64()));
        self.group.push(0);
    }

    /// The core's one-way latency between `a` and `b`, without jitter.
    pub fn latency(&self, a: u32, b: u32) -> Duration {
        let (xa, ya) = self.coords[a as usize];
        let (xb, yb) = self.coords[b as usize];
        let d = ((xa - xb).powi(2) + (ya - yb).powi(2)).sqrt() / std::f64::consts::SQRT_2;
        let extra = (self.cfg.spread.as_micros() as f64 * d) as u64;
        self.cfg.base_latency + Duration::from_micros(extra)
    }

    /// Puts node `i` in partition group `g` (0 is the default group).
    pub fn set_group(&mut self, i: u32, g: u16) {
        self.group[i as usize] = g;
    }

    /// Turns partitions on (groups apply) or off.
    pub fn set_partitioned(&mut self, on: bool) {
        self.partitioned = on;
        if !on {
            self.group.iter_mut().for_each(|g| *g = 0);
        }
    }

    /// Whether `a` and `b` can reach each other now.
    pub fn reachable(&self, a: u32, b: u32) -> bool {
        !self.partitioned || self.group[a as usize] == self.group[b as usize]
    }

    /// A datagram of `len` bytes leaves `from` for `to` at `now`: MTU, partition, uplink queue
    /// (serialization delay), uplink loss, core latency and jitter, duplication.
    pub fn send(
        &mut self,
        now: Instant,
        from: u32,
        to: u32,
        len: usize,
    ) -> Result<Departure, DropReason> {
        if len > self.cfg.mtu {
            return Err(DropReason::Mtu);
        }
        if !self.reachable(from, to) {
            return Err(DropReason::Partition);
        }
        let latency = self.latency(from, to);
        let jitter_us = self.cfg.jitter.as_micros() as u64;
        let loss = self.cfg.loss;
        let dup = self.cfg.duplicate;
        let link = &mut self.up[from as usize];
        let left_ns = link
            .enqueue(now.as_micros() * 1000, len)
            .ok_or(DropReason::UplinkQueue)?;
        if link.lost(&loss) {
            return Err(DropReason::Loss);
        }
        let left = Instant::from_micros(left_ns.div_ceil(1000));
        let j = link.rng.range(0, jitter_us);
        let arrive =
            left + latency + Duration::from_micros(j) + self.cfg.reorder.extra(&mut link.rng);
        let duplicate = if link.rng.chance(dup) {
            let j2 = link.rng.range(0, jitter_us);
            Some(left + latency + Duration::from_micros(j2))
        } else {
            None
        };
        Ok(Departure { arrive, duplicate })
    }

    /// A datagram of `len` bytes reaches `to`'s downlink at `now`: downlink queue and loss.
    /// Returns when it is delivered.
    pub fn receive(&mut self, now: Instant, to: u32, len: usize) -> Result<Instant, DropReason> {
        let loss = self.cfg.loss;
        let link = &mut self.down[to as usize];
        let done_ns = link
            .enqueue(now.as_micros() * 1000, len)
            .ok_or(DropReason::DownlinkQueue)?;
        if link.lost(&loss) {
            return Err(DropReason::Loss);
        }
        Ok(Instant::from_micros(done_ns.div_ceil(1000)))
    }
}

impl std::fmt::Display for LossModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Self::None => f.write_str("none"),
            Self::Bernoulli { p } => write!(f, "{p}"),
            Self::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_bad,
                ..
            } => write!(
                f,
                "bursty(p={p_good_to_bad:.4}, mean burst {:.1}, loss in burst {loss_bad})",
                1.0 / p_bad_to_good.max(f64::MIN_POSITIVE)
            ),
        }
    }
}

/// Counters kept by the simulator itself (the network's view).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NetCounters {
    pub(crate) sent: u64,
    pub(crate) sent_bytes: u64,
    pub(crate) delivered: u64,
    pub(crate) delivered_bytes: u64,
    pub(crate) duplicated: u64,
    pub(crate) dropped: [u64; DropReason::ALL.len()],
    /// PEX_RESv4 messages the poisoners added, and their bytes (not the endpoints').
    pub(crate) pex_injected: u64,
    pub(crate) injected_bytes: u64,
    /// Datagrams honest nodes sent to an address that is no member of the swarm.
    pub(crate) uncertified_contacts: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(queue: u64) -> Network {
        let mut n = Network::new(NetConfig {
            base_latency: Duration::from_millis(10),
            spread: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: LossModel::None,
            duplicate: 0.0,
            mtu: 1500,
            reorder: Reorder::NONE,
        });
        let link = LinkSpec {
            rate: 1_000_000,
            queue,
        };
        let mut place = SimRng::stream(1, 0, Purpose::Placement);
        n.add_node(1, link, link, &mut place);
        n.add_node(1, link, link, &mut place);
        n
    }

    #[test]
    fn serialization_queueing_and_drop_tail() {
        let mut n = net(3000);
        let t0 = Instant::from_secs(1);
        // 1000 bytes at 1 MB/s take 1 ms on the uplink, then 10 ms of latency.
        let d = n.send(t0, 0, 1, 1000).unwrap();
        assert_eq!(d.arrive, t0 + Duration::from_millis(11));
        // The second waits for the first.
        let d2 = n.send(t0, 0, 1, 1000).unwrap();
        assert_eq!(d2.arrive, t0 + Duration::from_millis(12));
        n.send(t0, 0, 1, 1000).unwrap();
        // The queue holds 3000 bytes: the fourth is dropped.
        assert_eq!(n.send(t0, 0, 1, 1000), Err(DropReason::UplinkQueue));
        assert_eq!(n.send(t0, 0, 1, 2000), Err(DropReason::Mtu));
        // Downlink: delivered after its own serialization.
        assert_eq!(
            n.receive(d.arrive, 1, 1000).unwrap(),
            d.arrive + Duration::from_millis(1)
        );
    }

    #[test]
    fn partitions_block_and_heal() {
        let mut n = net(10_000);
        n.set_group(1, 1);
        n.set_partitioned(true);
        assert_eq!(n.send(Instant::ZERO, 0, 1, 100), Err(DropReason::Partition));
        n.set_partitioned(false);
        assert!(n.send(Instant::ZERO, 0, 1, 100).is_ok());
    }

    #[test]
    fn gilbert_elliott_loses_about_p() {
        let mut link = Link::new(
            LinkSpec { rate: 1, queue: 1 },
            SimRng::stream(9, 0, Purpose::Uplink),
        );
        let m = LossModel::bursty(0.1, 4.0);
        let lost = (0..100_000).filter(|_| link.lost(&m)).count();
        assert!((8_000..12_000).contains(&lost), "{lost}");
    }
}
