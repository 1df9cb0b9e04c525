//! Same seed and scenario → byte-identical JSON report (apart from `wall_time_s`).

use ppspp_core::time::Duration;
use ppspp_sim::scenario::{Churn, Crashes, Partition, PartitionMode};
use ppspp_sim::{Scenario, Simulation};

/// The seed under test: `PPSPP_SIM_SEED` or a fixed default.
fn seed() -> u64 {
    std::env::var("PPSPP_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(42)
}

fn small(seed: u64) -> Scenario {
    Scenario::builder()
        .seed(seed)
        .peers(12)
        .seeders(1)
        .content_size(40 * 1024 + 123)
        .loss(0.03)
        .duplicate(0.01)
        .jitter(Duration::from_millis(5))
        .join_window(Duration::from_secs(1))
        .churn(Some(Churn {
            fraction: 0.2,
            from: Duration::from_millis(200),
            to: Duration::from_secs(2),
            offline: Some(Duration::from_secs(1)),
        }))
        .crashes(Some(Crashes {
            count: 2,
            from: Duration::from_millis(300),
            to: Duration::from_secs(2),
            down: Duration::from_millis(700),
            include_seeders: false,
        }))
        .partition(Partition {
            at: Duration::from_millis(500),
            until: Duration::from_millis(1500),
            mode: PartitionMode::Split { groups: 2 },
        })
        .duration(Duration::from_secs(300))
        .build()
}

/// The report's JSON without the wall time.
fn json_without_wall_time(sc: Scenario) -> (String, ppspp_sim::Report) {
    let report = Simulation::new(sc).expect("content builds").run();
    let mut v: serde_json::Value = serde_json::from_str(&report.to_json()).expect("valid JSON");
    v.as_object_mut().expect("object").remove("wall_time_s");
    (
        serde_json::to_string_pretty(&v).expect("serializes"),
        report,
    )
}

#[test]
fn same_seed_same_report() {
    let seed = seed();
    let (a, ra) = json_without_wall_time(small(seed));
    let (b, _) = json_without_wall_time(small(seed));
    assert!(
        a == b,
        "non-determinism: two runs of seed {seed} differ; re-run with PPSPP_SIM_SEED={seed} \
         cargo test -p ppspp-sim --test determinism\n--- first\n{a}\n--- second\n{b}"
    );
    assert!(ra.safe(), "seed {seed}: safety violations:\n{ra}");
    assert!(ra.events > 0);
}

#[test]
fn different_seed_different_trace() {
    let seed = seed();
    let (_, a) = json_without_wall_time(small(seed));
    let (_, b) = json_without_wall_time(small(seed + 1));
    assert_ne!(
        a.trace_hash,
        b.trace_hash,
        "seeds {seed} and {} gave the same trace",
        seed + 1
    );
}

#[test]
fn json_has_the_contract_keys() {
    let (json, _) = json_without_wall_time(
        Scenario::builder()
            .seed(seed())
            .peers(3)
            .content_size(5000)
            .churn(None)
            .build(),
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    for k in [
        "seed",
        "trace_hash",
        "peers_total",
        "peers_complete",
        "completion_time_s",
        "peer_efficiency",
        "events",
        "sim_time_s",
    ] {
        assert!(v.get(k).is_some(), "missing key {k}");
    }
    for k in ["p50", "p90", "p99", "max"] {
        assert!(
            v["completion_time_s"].get(k).is_some(),
            "missing completion_time_s.{k}"
        );
    }
}
