//! VOPR-style randomized testing (after TigerBeetle's VOPR): a seed draws a whole scenario —
//! sizes, link rates, loss, latency, path MTU, partitions, crashes, churn — which runs a fault
//! phase,
//! then heals the network (no loss, no partitions, crashed nodes restarted) and requires every
//! leecher still in the swarm to complete within a bound. Safety checks run throughout: no
//! store receives bytes that differ from the content, no HAVE for a chunk the sender lacks,
//! what endpoints send decodes, and byte counters balance.

use std::panic::{AssertUnwindSafe, catch_unwind};

use ppspp_core::time::Duration;

use crate::net::LossModel;
use crate::report::Report;
use crate::rng::{Purpose, SimRng};
use crate::scenario::{Access, Churn, Crashes, Partition, PartitionMode, Scenario};
use crate::sim::Simulation;

/// How long after healing every live leecher must be complete.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(300);

/// The MTU of a healthy path (Ethernet), above every datagram size VOPR draws.
pub const HEALTHY_MTU: usize = 1500;

/// A path MTU fault drawn for a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MtuFault {
    /// No fault: the MTU is [`HEALTHY_MTU`] throughout.
    None,
    /// The MTU is this (below the endpoints' datagram size) until the network heals, then
    /// [`HEALTHY_MTU`].
    Transient(usize),
    /// The MTU is this for the whole run: below the endpoints' datagram size but above a
    /// DATA datagram without INTEGRITY, so an engine that kept its datagrams under the path
    /// MTU could complete; one that does not is a liveness finding.
    Lasting(usize),
}

/// Draws the MTU fault of `seed` for a scenario whose endpoints send datagrams of up to
/// `max_dgram` bytes and chunks of `chunk_size`. A stream of its own, so adding it did not
/// change the other options drawn for a seed.
pub fn mtu_fault(seed: u64, chunk_size: u32, max_dgram: usize) -> MtuFault {
    let mut r = SimRng::stream(seed, 1, Purpose::Vopr);
    // A DATA datagram alone: channel, type, a 32-bit chunk range, timestamp, one chunk.
    let data_alone = 4 + 1 + 8 + 8 + chunk_size as usize;
    let draw = r.next_f64();
    if draw < 0.25 {
        MtuFault::Transient(r.range(576, max_dgram as u64 - 1) as usize)
    } else if draw < 0.35 && data_alone + 1 < max_dgram {
        MtuFault::Lasting(r.range(data_alone as u64, max_dgram as u64 - 1) as usize)
    } else {
        MtuFault::None
    }
}

/// Draws whether `seed` runs a live stream (one in five seeds) and at what rate for content of
/// `chunks` chunks of `chunk_size`: the stream lasts 5 to 30 s. A stream of its own, so adding
/// it did not change the other options drawn for a seed.
pub fn live_draw(seed: u64, chunks: u64, chunk_size: u32) -> Option<u64> {
    let mut r = SimRng::stream(seed, 2, Purpose::Vopr);
    if !r.chance(0.2) {
        return None;
    }
    let secs = r.range(5, 30);
    Some((chunks * u64::from(chunk_size) / secs).max(u64::from(chunk_size)))
}

/// The outcome of one VOPR seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Safe, and every live leecher completed in time.
    Pass,
    /// A safety check failed (or the engine panicked).
    Safety(String),
    /// A live leecher did not complete within the bound after healing.
    Liveness(String),
}

impl Verdict {
    /// The process exit code: 0 pass, 1 safety, 2 liveness.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Pass => 0,
            Self::Safety(_) => 1,
            Self::Liveness(_) => 2,
        }
    }
}

fn ms(rng: &mut SimRng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(rng.range(lo, hi))
}

/// Draws a scenario from `seed` (options swarm-testing style: every knob random).
pub fn scenario(seed: u64) -> Scenario {
    let mut r = SimRng::stream(seed, 0, Purpose::Vopr);
    let peers = r.range(2, 30) as u32;
    let seeders = r.range(1, 2) as u32;
    let chunk_size = if r.chance(0.5) { 512 } else { 1024 };
    let max_dgram = if chunk_size == 512 {
        r.range(800, 1472) as usize
    } else {
        r.range(1300, 1472) as usize
    };
    let chunks = if r.chance(0.2) {
        r.range(1, 20)
    } else {
        r.range(20, 1500)
    };
    let content_size =
        ((chunks - 1) * u64::from(chunk_size) + r.range(1, u64::from(chunk_size))).max(1);
    let fault_end = Duration::from_secs(r.range(10, 40));
    let p_loss = r.next_f64() * 0.15;
    let loss = if r.chance(0.3) {
        LossModel::bursty(p_loss / 2.0, 1.0 + r.next_f64() * 6.0)
    } else {
        LossModel::per_direction(p_loss)
    };
    let up = r.range(30_000, 1_000_000);
    let down = up * r.range(1, 8);
    let queue_ms = r.range(30, 400);
    let seeder_up = up * r.range(1, 8);
    let (mtu, healed_mtu) = match mtu_fault(seed, chunk_size, max_dgram) {
        MtuFault::None => (HEALTHY_MTU, None),
        MtuFault::Transient(m) => (m, Some(HEALTHY_MTU)),
        MtuFault::Lasting(m) => (m, None),
    };
    let mut b = Scenario::builder()
        .seed(seed)
        .mtu(mtu)
        .healed_mtu(healed_mtu)
        .peers(peers)
        .seeders(seeders)
        .chunk_size(chunk_size)
        .content_size(content_size)
        .max_datagram_size(max_dgram)
        .latency(ms(&mut r, 1, 50), ms(&mut r, 0, 150))
        .jitter(ms(&mut r, 0, 20))
        .loss_model(loss)
        .duplicate(if r.chance(0.5) {
            r.next_f64() * 0.05
        } else {
            0.0
        })
        .leecher_access(Access::with_rates(up, down, queue_ms))
        .seeder_access(Access::with_rates(seeder_up, seeder_up, queue_ms))
        .join_window(ms(&mut r, 0, 10_000))
        .contacts(r.range(1, 5) as u32)
        .heal_at(Some(fault_end))
        .duration(fault_end + LIVENESS_BOUND)
        .sample_interval(Duration::from_secs(1))
        .check_invariants(true)
        .churn(None)
        .crashes(None);
    if r.chance(0.5) {
        b = b.churn(Some(Churn {
            fraction: r.next_f64() * 0.4,
            from: Duration::from_secs(1),
            to: fault_end,
            offline: if r.chance(0.25) {
                None
            } else {
                Some(ms(&mut r, 500, 20_000))
            },
        }));
    }
    if r.chance(0.5) {
        b = b.crashes(Some(Crashes {
            count: r.range(1, 6) as u32,
            from: Duration::from_secs(1),
            to: fault_end,
            down: ms(&mut r, 200, 20_000),
            include_seeders: r.chance(0.3),
        }));
    }
    if r.chance(0.5) {
        for _ in 0..r.range(1, 3) {
            let end = fault_end.as_millis() as u64;
            let a = r.range(0, end / 2);
            let z = r.range(a, end);
            let mode = match r.below(3) {
                0 => PartitionMode::Split {
                    groups: r.range(2, 3) as u16,
                },
                1 => PartitionMode::Isolate {
                    count: r.range(1, 3) as u32,
                },
                _ => PartitionMode::IsolateSeeders,
            };
            b = b.partition(Partition {
                at: Duration::from_millis(a),
                until: Duration::from_millis(z),
                mode,
            });
        }
    }
    // An HTTP origin beside the peers (one seed in four), possibly down for a while: its
    // fetches, verification and the hybrid switch under every other fault.
    if r.chance(0.25) {
        let mut o = crate::origin::OriginSpec::new(r.range(50_000, 5_000_000));
        o.latency = ms(&mut r, 5, 100);
        if r.chance(0.5) {
            let end = fault_end.as_millis() as u64;
            let a = r.range(0, end / 2);
            o.down = Some(Duration::from_millis(a)..Duration::from_millis(r.range(a, end)));
        }
        b = b.origin(Some(o));
    }
    let mut sc = b.build();
    // A live stream: one injector (which never crashes: a restarted injector would start
    // another stream), full-size chunks only; leechers must end with every chunk from their
    // tune-in point.
    if let Some(rate) = live_draw(seed, chunks, chunk_size) {
        sc.live_rate = Some(rate);
        sc.seeders = 1;
        sc.content_size = chunks * u64::from(chunk_size);
        if let Some(c) = &mut sc.crashes {
            c.include_seeders = false;
        }
    }
    sc
}

/// A one-line description of a scenario.
pub fn describe(sc: &Scenario) -> String {
    format!(
        "peers={} seeders={} content={}B chunk={} dgram={} mtu={} loss={} dup={:.3} up={}B/s heal_at={:.1}s churn={} crashes={} partitions={}{}{}",
        sc.peers,
        sc.seeders,
        sc.content_size,
        sc.chunk_size,
        sc.max_datagram_size,
        match sc.healed_mtu {
            Some(h) if h != sc.net.mtu => format!("{}->{h}", sc.net.mtu),
            _ => sc.net.mtu.to_string(),
        },
        sc.net.loss,
        sc.net.duplicate,
        sc.leecher_access.up.rate,
        sc.heal_at.unwrap_or_default().as_secs_f64(),
        sc.churn.map_or(0.0, |c| c.fraction),
        sc.crashes.map_or(0, |c| c.count),
        sc.partitions.len(),
        sc.live_rate
            .map_or(String::new(), |r| format!(" live={r}B/s")),
        sc.origin.as_ref().map_or(String::new(), |o| format!(
            " origin={}B/s{}",
            o.bandwidth,
            o.down.as_ref().map_or(String::new(), |d| format!(
                " down={:.1}-{:.1}s",
                d.start.as_secs_f64(),
                d.end.as_secs_f64()
            ))
        ))
    )
}

/// Runs one scenario and judges it. A panic inside the engine is a safety failure.
pub fn run(sc: Scenario) -> (Verdict, Option<Report>) {
    let res = catch_unwind(AssertUnwindSafe(|| {
        Simulation::new(sc).map(Simulation::run)
    }));
    let report = match res {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return (
                Verdict::Safety(format!("cannot build content: {e:?}")),
                None,
            );
        }
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            return (Verdict::Safety(format!("panic: {msg}")), None);
        }
    };
    let verdict = judge(&report);
    (verdict, Some(report))
}

/// The verdict on a finished report.
pub fn judge(report: &Report) -> Verdict {
    if !report.safe() {
        let first = report
            .violations
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        return Verdict::Safety(format!(
            "{} violation(s); first: {first}",
            report.violation_count
        ));
    }
    if !report.all_live_complete() {
        let sc = &report.scenario;
        let mtu = sc.healed_mtu.unwrap_or(sc.net.mtu);
        let over = report.datagrams.dropped.get("mtu").copied().unwrap_or(0);
        let why = if mtu < sc.max_datagram_size && over > 0 {
            format!(
                "; {over} datagram(s) dropped over the path MTU, which stays {mtu} after \
                 healing while endpoints send up to {} bytes",
                sc.max_datagram_size
            )
        } else if over > 0 {
            format!("; {over} datagram(s) dropped over the path MTU before healing")
        } else {
            String::new()
        };
        return Verdict::Liveness(format!(
            "{} live leecher(s) incomplete at {:.1}s (healed at {:.1}s; bound {}s){why}",
            report.peers_incomplete_live,
            report.sim_time_s,
            sc.heal_at.unwrap_or_default().as_secs_f64(),
            LIVENESS_BOUND.as_secs()
        ));
    }
    Verdict::Pass
}

/// A seed from the operating system's hasher keys (for `vopr` without `--seed`).
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x5EED);
    h.finish()
}
