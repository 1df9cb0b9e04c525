//! The `ppspp-sim` command line: `run` writes a JSON report with the contract keys and an SVG.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ppspp-sim"))
}

#[test]
fn run_writes_json_and_svg() {
    let dir = std::env::temp_dir().join(format!("ppspp-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("r.json");
    let svg = dir.join("r.svg");
    let out = bin()
        .args([
            "run",
            "--peers",
            "4",
            "--content-size",
            "8K",
            "--churn",
            "0",
        ])
        .args(["--loss", "0.02", "--seed", "9", "--json"])
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("PPSPP_SIM_SEED=9"), "{stdout}");
    assert!(stdout.contains("peers complete"), "{stdout}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["seed"], 9);
    assert_eq!(v["peers_total"], 4);
    assert_eq!(v["peers_complete"], 4);
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg"), "not an SVG");
    assert!(svg.contains("completion time CDF"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_arguments_fail() {
    let out = bin().args(["run", "--peers", "many"]).output().unwrap();
    assert!(!out.status.success());
}

/// Partitions, crashes and a small MTU from the command line: each shows in the drop counts,
/// and every peer still completes. Malformed fault flags are refused with a usage error.
#[test]
fn run_takes_partitions_crashes_and_mtu() {
    let dir = std::env::temp_dir().join(format!("ppspp-sim-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("r.json");
    let out = bin()
        .args([
            "run",
            "--peers",
            "12",
            "--content-size",
            "64K",
            "--churn",
            "0",
        ])
        .args(["--partition", "0.5:3:seeders", "--partition", "4:6:split=2"])
        .args([
            "--crashes",
            "3:1:5:2",
            "--mtu",
            "1100",
            "--seed",
            "5",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["peers_complete"], 12, "{v}");
    let dropped = &v["datagrams"]["dropped"];
    for reason in ["partition", "mtu", "node_down"] {
        assert!(dropped[reason].as_u64().unwrap() > 0, "{reason}: {dropped}");
    }
    for bad in [
        ["--partition", "3:1:seeders"],
        ["--partition", "1:3:split=1"],
        ["--partition", "1:3:everyone"],
        ["--crashes", "3:1:5"],
        ["--crashes", "3:5:1:2"],
    ] {
        let out = bin().arg("run").args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?} was accepted");
    }
    std::fs::remove_dir_all(&dir).ok();
}
