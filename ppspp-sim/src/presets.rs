//! The wide-area bench's links (`benches/wan.sh`) as simulator scenarios, so that a congestion
//! controller can be tuned in seconds, deterministically, and confirmed on real sockets.
//!
//! Every host has the same egress path ([`LinkPreset::path`]): what `ppspp-netem` applies to
//! each namespace's outgoing packets, and what a scenario from [`LinkPreset::scenario`] gives
//! every node's uplink (rate and queue) and the core (one-way delay; loss split evenly between
//! uplink and downlink so that one end-to-end direction loses the preset's share; reordering on
//! the uplink). Downlinks have no rate limit, as in the emulator.
//!
//! ```
//! use ppspp_sim::presets::LinkPreset;
//! let sc = LinkPreset::B.scenario(1, 1 << 20, 1024, 1);
//! assert_eq!(sc.peers, 1);
//! assert_eq!(sc.net.base_latency.as_millis(), 50);
//! ```

use std::fmt;
use std::str::FromStr;

use ppspp_core::time::Duration;

use crate::Report;
use crate::net::{LinkSpec, LossModel, Reorder};
use crate::path::PathSpec;
use crate::scenario::{Access, Scenario};

/// Datagrams (of up to 1,500 bytes) a rate-limited egress queue holds: netem's default limit.
pub const QUEUE_PACKETS: u64 = 1000;

/// A link of the wide-area bench.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkPreset {
    /// 50 ms each way (RTT 100 ms), 100 Mbit/s, a 1,000-datagram drop-tail queue, no loss.
    B,
    /// 20 ms each way (RTT 40 ms), 1% random loss each way, no rate limit.
    A,
    /// Link B with 2% of datagrams held back by up to 10 ms (reordered, none lost).
    Reorder,
}

impl LinkPreset {
    /// Every preset.
    pub const ALL: [Self; 3] = [Self::B, Self::A, Self::Reorder];

    /// The name on the command line: `B`, `A` or `reorder`.
    pub fn name(self) -> &'static str {
        match self {
            Self::B => "B",
            Self::A => "A",
            Self::Reorder => "reorder",
        }
    }

    /// What one host's egress does (each direction of a two-host path crosses one).
    pub fn path(self) -> PathSpec {
        let b = PathSpec {
            delay: Duration::from_millis(50),
            rate: PathSpec::rate_mbit(100.0),
            queue: QUEUE_PACKETS * 1500,
            loss: LossModel::None,
            reorder: Reorder::NONE,
        };
        match self {
            Self::B => b,
            Self::A => PathSpec {
                delay: Duration::from_millis(20),
                loss: LossModel::Bernoulli { p: 0.01 },
                ..PathSpec::ideal()
            },
            Self::Reorder => PathSpec {
                reorder: Reorder {
                    p: 0.02,
                    max: Duration::from_millis(10),
                },
                ..b
            },
        }
    }

    /// One seeder and `leechers` leechers on this link, `content_size` bytes in `chunk_size`
    /// chunks; everyone joins at time 0, each leecher is told about the seeder and (through
    /// random contacts and PEX) the other leechers; no churn, no duplication; invariant checks
    /// off (speed).
    pub fn scenario(
        self,
        leechers: u32,
        content_size: u64,
        chunk_size: u32,
        seed: u64,
    ) -> Scenario {
        let p = self.path();
        let access = Access {
            up: LinkSpec {
                rate: p.rate,
                queue: p.queue,
            },
            down: LinkSpec {
                rate: LinkSpec::UNLIMITED,
                queue: 0,
            },
        };
        let loss = match p.loss {
            LossModel::Bernoulli { p } => LossModel::per_direction(p),
            other => other,
        };
        Scenario::builder()
            .seed(seed)
            .peers(leechers)
            .seeders(1)
            .content_size(content_size)
            .chunk_size(chunk_size)
            .leecher_access(access)
            .seeder_access(access)
            .latency(p.delay, Duration::ZERO)
            .jitter(Duration::ZERO)
            .loss_model(loss)
            .reorder(p.reorder)
            .duplicate(0.0)
            .mtu(1500)
            .join_window(Duration::ZERO)
            .contacts(leechers.saturating_sub(1) * 2)
            .churn(None)
            .duration(Duration::from_secs(900))
            .check_invariants(false)
            .build()
    }
}

impl fmt::Display for LinkPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LinkPreset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s) || (s == "R" && *p == Self::Reorder))
            .ok_or_else(|| format!("unknown link {s:?}: B, A or reorder"))
    }
}

/// Per-leecher throughput of a finished run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Throughput {
    /// Leechers that completed.
    pub complete: u32,
    /// Leechers in all.
    pub leechers: u32,
    /// The slowest leecher's throughput, Mbit/s (0 when one did not complete).
    pub min_mbit: f64,
    /// The median leecher's throughput, Mbit/s.
    pub median_mbit: f64,
    /// The fastest leecher's throughput, Mbit/s.
    pub max_mbit: f64,
    /// Data retransmissions, summed over the endpoints.
    pub retransmissions: u64,
    /// Losses found spurious, summed over the endpoints.
    pub spurious: u64,
}

impl Throughput {
    /// Reads the completion times of `report` (every leecher joined at 0).
    pub fn of(report: &Report) -> Self {
        let size = report.scenario.content_size as f64;
        let mbit = |t: f64| if t > 0.0 { size * 8.0 / t / 1e6 } else { 0.0 };
        let t = &report.completion_times;
        let complete = report.peers_complete;
        let leechers = report.peers_total;
        let (min_mbit, median_mbit, max_mbit) = if t.is_empty() {
            (0.0, 0.0, 0.0)
        } else {
            let slowest = if complete < leechers {
                0.0
            } else {
                mbit(t[t.len() - 1])
            };
            (slowest, mbit(t[(t.len() - 1) / 2]), mbit(t[0]))
        };
        Self {
            complete,
            leechers,
            min_mbit,
            median_mbit,
            max_mbit,
            retransmissions: report.protocol.data_retransmissions,
            spurious: report.protocol.spurious_losses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Simulation;

    #[test]
    fn names_round_trip() {
        for p in LinkPreset::ALL {
            assert_eq!(p.name().parse::<LinkPreset>(), Ok(p));
        }
        assert_eq!("b".parse::<LinkPreset>(), Ok(LinkPreset::B));
        assert_eq!("R".parse::<LinkPreset>(), Ok(LinkPreset::Reorder));
        assert!("C".parse::<LinkPreset>().is_err());
    }

    #[test]
    fn links_are_what_the_bench_says() {
        let b = LinkPreset::B.path();
        assert_eq!(b.delay, Duration::from_millis(50));
        assert_eq!(b.rate, 12_500_000);
        assert_eq!(b.loss, LossModel::None);
        let a = LinkPreset::A.path();
        assert_eq!(a.delay, Duration::from_millis(20));
        assert_eq!(a.rate, LinkSpec::UNLIMITED);
        assert_eq!(a.loss, LossModel::Bernoulli { p: 0.01 });
        let r = LinkPreset::Reorder.path();
        assert_eq!(r.reorder.p, 0.02);
        assert_eq!(r.reorder.max, Duration::from_millis(10));
        let sc = LinkPreset::A.scenario(4, 1 << 20, 1024, 1);
        assert_eq!(sc.peers, 4);
        assert_eq!(sc.seeders, 1);
        // Uplink and downlink each lose so that one direction end to end loses 1%.
        let LossModel::Bernoulli { p } = sc.net.loss else {
            panic!("{:?}", sc.net.loss)
        };
        assert!(((1.0 - (1.0 - p) * (1.0 - p)) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn small_transfers_complete_deterministically_on_every_link() {
        for link in LinkPreset::ALL {
            let run = || {
                Simulation::new(link.scenario(2, 256 * 1024, 1024, 5))
                    .unwrap()
                    .run()
            };
            let (r1, r2) = (run(), run());
            assert_eq!(r1.trace_hash, r2.trace_hash, "{link}");
            let t = Throughput::of(&r1);
            assert_eq!((t.complete, t.leechers), (2, 2), "{link}");
            assert!(
                t.min_mbit > 0.0 && t.min_mbit <= t.median_mbit,
                "{link} {t:?}"
            );
            // Nothing beats the link: 256 KiB take at least one RTT plus serialization.
            assert!(t.max_mbit < 100.0, "{link} {t:?}");
        }
    }
}
