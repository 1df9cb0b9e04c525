//! One direction of a point-to-point path: a rate-limited drop-tail queue, random loss, a
//! one-way delay and reordering. It is the simulator's link model ([`crate::net`]) without the
//! map of nodes, in nanoseconds of any clock, so that `ppspp-netem` can apply to real packets
//! exactly what [`crate::Simulation`] applies to simulated ones.
//!
//! ```
//! use ppspp_core::time::Duration;
//! use ppspp_sim::path::{Path, PathSpec};
//! use ppspp_sim::rng::SimRng;
//! let spec = PathSpec {
//!     delay: Duration::from_millis(50),
//!     ..PathSpec::ideal()
//! };
//! let mut p = Path::new(spec, SimRng::from_seed([7; 32]));
//! assert_eq!(p.transmit(1_000, 1200), Ok(1_000 + 50_000_000));
//! ```

use serde::Serialize;

use ppspp_core::time::Duration;

use crate::net::{DropReason, Link, LinkSpec, LossModel, Reorder};
use crate::rng::SimRng;

/// What one direction of a path does to datagrams.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PathSpec {
    /// One-way propagation delay, added after serialization.
    pub delay: Duration,
    /// Rate in bytes per second ([`LinkSpec::UNLIMITED`]: no limit, no queue).
    pub rate: u64,
    /// Drop-tail queue capacity in bytes (what waits for the rate limit).
    pub queue: u64,
    /// Random loss.
    pub loss: LossModel,
    /// Reordering.
    pub reorder: Reorder,
}

impl PathSpec {
    /// No delay, no rate limit, no loss, no reordering.
    pub fn ideal() -> Self {
        Self {
            delay: Duration::ZERO,
            rate: LinkSpec::UNLIMITED,
            queue: 0,
            loss: LossModel::None,
            reorder: Reorder::NONE,
        }
    }

    /// A rate of `mbit` Mbit/s (10^6 bits per second; 0 means unlimited).
    pub fn rate_mbit(mbit: f64) -> u64 {
        if mbit <= 0.0 {
            LinkSpec::UNLIMITED
        } else {
            (mbit * 1e6 / 8.0) as u64
        }
    }
}

/// Counters of one path direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PathStats {
    /// Datagrams offered.
    pub offered: u64,
    /// Datagrams accepted (to be delivered).
    pub accepted: u64,
    /// Dropped because the queue was full.
    pub queue_drops: u64,
    /// Dropped by random loss.
    pub lost: u64,
    /// Held back by the reordering model.
    pub reordered: u64,
}

/// The state of one path direction.
#[derive(Clone, Debug)]
pub struct Path {
    spec: PathSpec,
    link: Link,
    stats: PathStats,
}

impl Path {
    /// A path with its own random stream.
    pub fn new(spec: PathSpec, rng: SimRng) -> Self {
        let link = Link::new(
            LinkSpec {
                rate: spec.rate,
                queue: spec.queue,
            },
            rng,
        );
        Self {
            spec,
            link,
            stats: PathStats::default(),
        }
    }

    /// The settings.
    pub fn spec(&self) -> &PathSpec {
        &self.spec
    }

    /// The counters.
    pub fn stats(&self) -> PathStats {
        self.stats
    }

    /// A datagram of `len` bytes enters the path at `now_ns` (nanoseconds on any monotonic
    /// clock; calls must not go back in time). Returns when it leaves the far end, or why it is
    /// dropped: the queue ([`DropReason::UplinkQueue`]) or random loss ([`DropReason::Loss`]).
    /// The same order of draws as [`crate::net::Network::send`]: queue, loss, reordering.
    pub fn transmit(&mut self, now_ns: u64, len: usize) -> Result<u64, DropReason> {
        self.stats.offered += 1;
        let Some(left_ns) = self.link.enqueue(now_ns, len) else {
            self.stats.queue_drops += 1;
            return Err(DropReason::UplinkQueue);
        };
        if self.link.lost(&self.spec.loss) {
            self.stats.lost += 1;
            return Err(DropReason::Loss);
        }
        let extra = self.spec.reorder.extra(&mut self.link.rng);
        if extra > Duration::ZERO {
            self.stats.reordered += 1;
        }
        self.stats.accepted += 1;
        Ok(left_ns + (self.spec.delay + extra).as_micros() as u64 * 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Purpose;

    fn rng() -> SimRng {
        SimRng::stream(3, 0, Purpose::Uplink)
    }

    #[test]
    fn delay_only() {
        let mut p = Path::new(
            PathSpec {
                delay: Duration::from_millis(20),
                ..PathSpec::ideal()
            },
            rng(),
        );
        for i in 0..1000u64 {
            assert_eq!(p.transmit(i, 1500), Ok(i + 20_000_000));
        }
        assert_eq!(p.stats().accepted, 1000);
    }

    #[test]
    fn rate_serializes_and_queue_drops_tail() {
        // 1,000 bytes at 1 MB/s: 1 ms each; the queue holds 3,000 bytes.
        let mut p = Path::new(
            PathSpec {
                delay: Duration::from_millis(10),
                rate: 1_000_000,
                queue: 3000,
                ..PathSpec::ideal()
            },
            rng(),
        );
        assert_eq!(p.transmit(0, 1000), Ok(11_000_000));
        assert_eq!(p.transmit(0, 1000), Ok(12_000_000));
        assert_eq!(p.transmit(0, 1000), Ok(13_000_000));
        assert_eq!(p.transmit(0, 1000), Err(DropReason::UplinkQueue));
        // Once the first has left there is room for one more, behind the others.
        assert_eq!(p.transmit(1_000_000, 1000), Ok(14_000_000));
        // An idle link sends at once.
        assert_eq!(p.transmit(100_000_000, 1000), Ok(111_000_000));
        assert_eq!(p.stats().queue_drops, 1);
    }

    #[test]
    fn rate_mbit_converts() {
        assert_eq!(PathSpec::rate_mbit(100.0), 12_500_000);
        assert_eq!(PathSpec::rate_mbit(0.0), LinkSpec::UNLIMITED);
    }

    #[test]
    fn bernoulli_loss_rate_and_determinism() {
        let spec = PathSpec {
            loss: LossModel::Bernoulli { p: 0.01 },
            ..PathSpec::ideal()
        };
        let run = || {
            let mut p = Path::new(spec, rng());
            let v: Vec<bool> = (0..100_000).map(|i| p.transmit(i, 100).is_err()).collect();
            (v, p.stats())
        };
        let (a, sa) = run();
        let (b, _) = run();
        assert_eq!(a, b, "same seed, same losses");
        assert!((800..1200).contains(&sa.lost), "{sa:?}");
        assert_eq!(sa.lost + sa.accepted, 100_000);
    }

    #[test]
    fn gilbert_elliott_is_bursty() {
        let mut p = Path::new(
            PathSpec {
                loss: LossModel::bursty(0.02, 5.0),
                ..PathSpec::ideal()
            },
            rng(),
        );
        let lost: Vec<bool> = (0..200_000).map(|i| p.transmit(i, 100).is_err()).collect();
        let n = lost.iter().filter(|l| **l).count();
        let runs = lost.windows(2).filter(|w| w[1] && !w[0]).count();
        assert!((3_000..5_000).contains(&n), "{n}");
        // Mean burst length about 5.
        let mean = n as f64 / runs as f64;
        assert!((4.0..6.0).contains(&mean), "{mean}");
    }

    #[test]
    fn reordering_holds_back_a_share_by_at_most_max() {
        let mut p = Path::new(
            PathSpec {
                delay: Duration::from_millis(50),
                reorder: Reorder {
                    p: 0.02,
                    max: Duration::from_millis(10),
                },
                ..PathSpec::ideal()
            },
            rng(),
        );
        let step = 100_000; // one datagram every 100 µs
        let mut overtaken = 0;
        let mut last = 0;
        for i in 0..100_000u64 {
            let sent = i * step;
            let at = p.transmit(sent, 1200).unwrap();
            let extra = at - sent - 50_000_000;
            assert!(extra <= 10_000_000);
            if at < last {
                overtaken += 1;
            }
            last = last.max(at);
        }
        let held = p.stats().reordered;
        assert!((1_700..2_300).contains(&held), "{held}");
        // Nearly every datagram held back by more than 100 µs is overtaken by the next one.
        assert!(overtaken > held * 9 / 10, "{overtaken} of {held}");
    }
}
