//! Every numeric flag of `ppspp-sim` refuses negative, zero (where zero means nothing),
//! NaN, infinite, huge and malformed values with exit 2 and one line, before simulating
//! anything; a run where nobody completes exits 1 (issue 18).

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ppspp-sim");

/// Runs `ppspp-sim ARGS`, killing it (and failing) past `limit`: a bound against hangs.
#[expect(
    clippy::disallowed_methods,
    reason = "the test bounds a child process in wall time; nothing simulated reads it"
)]
fn run(args: &[&str], limit: Duration) -> (Option<i32>, String, String) {
    let dir = std::env::temp_dir();
    let tag =
        format!("{}-{:?}", std::process::id(), std::thread::current().id()).replace(['(', ')'], "");
    let (o, e) = (
        dir.join(format!("ppspp-sim-args-{tag}.out")),
        dir.join(format!("ppspp-sim-args-{tag}.err")),
    );
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + limit;
    let status: ExitStatus = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ppspp-sim {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = std::fs::read_to_string(&o).unwrap_or_default();
    let err = std::fs::read_to_string(&e).unwrap_or_default();
    let _ = std::fs::remove_file(o);
    let _ = std::fs::remove_file(e);
    (status.code(), out, err)
}

#[test]
fn every_numeric_flag_refuses_bad_values_with_exit_2_and_one_line() {
    // (flag, whether 0 is a meaningful value for it)
    let run_flags = [
        ("--peers", false),
        ("--content-size", false),
        ("--chunk-size", false),
        ("--seeders", false),
        ("--loss", true),
        ("--burst", false),
        ("--latency", true),
        ("--latency-spread", true),
        ("--jitter", true),
        ("--duplicate", true),
        ("--up-rate", false),
        ("--down-rate", false),
        ("--seeder-rate", false),
        ("--churn", true),
        ("--join-window", true),
        ("--contacts", false),
        ("--partition", false),
        ("--crashes", false),
        ("--mtu", false),
        ("--live-rate", false),
        ("--duration", false),
        ("--seed", true),
    ];
    let vopr_flags = [("--seed", true), ("--count", false)];
    let bad = [
        "-1",
        "0",
        "nan",
        "inf",
        "-inf",
        "1e20",
        "99999999999999999999999",
        "abc",
        "",
    ];
    let mut runs = 0;
    for (sub, flags) in [("run", &run_flags[..]), ("vopr", &vopr_flags[..])] {
        for &(flag, zero_ok) in flags {
            for v in bad {
                if v == "0" && zero_ok {
                    continue;
                }
                let args = [sub, flag, v];
                let (code, out, err) = run(&args, Duration::from_secs(20));
                assert_eq!(code, Some(2), "{args:?} accepted: {out}{err}");
                assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
                assert!(!err.contains("panicked"), "{args:?}: {err}");
                runs += 1;
            }
        }
    }
    // Values out of their range.
    for args in [
        ["run", "--loss", "1.5"],
        ["run", "--duplicate", "2"],
        ["run", "--chunk-size", "70000"],
        ["run", "--mtu", "100"],
        ["run", "--burst", "0.5"],
        ["run", "--churn", "1.5:5"],
    ] {
        let (code, _, err) = run(&args, Duration::from_secs(20));
        assert_eq!(code, Some(2), "{args:?} accepted: {err}");
        runs += 1;
    }
    assert!(runs > 200, "{runs}");
}

#[test]
fn a_run_where_nobody_completes_exits_1() {
    // Issue 18: 0/3 complete, exit 0. One simulated second is too short for 4 MiB at 1 MB/s.
    let (code, _, err) = run(
        &[
            "run",
            "--peers",
            "3",
            "--content-size",
            "4M",
            "--churn",
            "0",
            "--duration",
            "1",
            "--seed",
            "3",
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no leecher completed"), "{err}");
}

#[test]
fn messages_carry_no_debug_formatting() {
    // Issue 18: `GilbertElliott { … }` in the VOPR's scenario line.
    for seed in 1..=4 {
        let (_, out, err) = run(
            &["vopr", "--seed", &seed.to_string(), "--count", "1"],
            Duration::from_secs(300),
        );
        let all = out + &err;
        assert!(
            !all.contains("GilbertElliott {") && !all.contains("Bernoulli {"),
            "{all}"
        );
    }
}

#[test]
fn loss_models_print_in_words() {
    let s = ppspp_sim::net::LossModel::bursty(0.01, 4.0).to_string();
    assert!(s.starts_with("bursty(") && !s.contains('{'), "{s}");
}

#[test]
fn violations_print_in_words() {
    use ppspp_sim::report::{Violation, ViolationKind};
    let v = Violation {
        kind: ViolationKind::BadWrite,
        at_s: 1.5,
        node: Some(3),
        detail: "x".into(),
    };
    assert_eq!(v.to_string(), "bad_write at 1.500000s node 3: x");
}
