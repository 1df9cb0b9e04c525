//! The simulator's speed on a small fixed swarm.
//!
//! - `swarm_sim/50x256KiB`: `ppspp-sim` runs 50 leechers and one seeder sharing 256 KiB in
//!   1 KiB chunks (seed 1, the default network: 1% loss, latency and jitter, 10% churn; no
//!   invariant checks), from the first join until every leecher completes. Throughput is in
//!   simulator events (datagram arrivals, timers, joins, samples), so criterion reports
//!   events per second; the run is deterministic, so every iteration handles the same events.
//! - `swarm_sim/sha1_12.5MiB`, the baseline measured in the same run: raw SHA-1 over the
//!   50 × 256 KiB the leechers must verify, chunk by chunk — hashing no simulated swarm can
//!   avoid. The ratio printed at the end is how much of a simulation is that hashing.
//!
//! Run: `cargo bench -p ppspp-benches --bench swarm_sim`.
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group};
use ppspp_sim::{Scenario, Simulation};
use sha1::Digest;

const PEERS: u32 = 50;
const CONTENT: u64 = 256 << 10;
const CHUNK: u32 = 1024;

fn scenario() -> Scenario {
    Scenario::builder()
        .seed(1)
        .peers(PEERS)
        .content_size(CONTENT)
        .chunk_size(CHUNK)
        .check_invariants(false)
        .build()
}

fn bench_swarm(c: &mut Criterion) {
    // One run up front: the event count (the same in every run of this seed) and a check
    // that the swarm completes, so the bench measures a whole download.
    let first = Simulation::new(scenario()).expect("content builds").run();
    assert_eq!(
        first.peers_complete, PEERS,
        "the benchmark swarm completes\n{first}"
    );
    let events = first.events;

    let mut g = c.benchmark_group("swarm_sim");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(events));
    g.bench_function("50x256KiB", |b| {
        b.iter(|| {
            let r = Simulation::new(scenario()).expect("content builds").run();
            assert_eq!(r.events, events, "deterministic");
            black_box(r.peers_complete)
        });
    });

    let data: Vec<u8> = (0..CONTENT).map(|i| (i * 31 + i / 997) as u8).collect();
    g.throughput(Throughput::Bytes(CONTENT * u64::from(PEERS)));
    g.bench_function("sha1_12.5MiB", |b| {
        b.iter(|| {
            let mut acc = 0u8;
            for _ in 0..PEERS {
                for chunk in data.chunks(CHUNK as usize) {
                    acc ^= sha1::Sha1::digest(black_box(chunk))[0];
                }
            }
            acc
        });
    });
    g.finish();
    println!(
        "swarm_sim: {events} events per run; {:.0} events/s in the first (untimed) run",
        first.events_per_s()
    );
}

criterion_group!(benches, bench_swarm);

/// Runs the benchmark, then prints events per second and the hashing ratio of this run.
fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    ppspp_benches::print_ratio(
        "sha1(12.5 MiB) / simulation(50 x 256 KiB) (time ratio: the share of a run that \
         leaf hashing alone would take)",
        "swarm_sim/sha1_12.5MiB",
        "swarm_sim/50x256KiB",
    );
}
