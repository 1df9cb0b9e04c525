//! A real multi-host swarm: `tests/netns/run.sh` puts a seeder and 5 leechers in their own
//! network namespaces on a bridge (10.77.0.0/24), shapes every leecher's link to 50 Mbit/s
//! with `tc tbf`, drops 1% of received datagrams with nftables, and checks that every
//! leecher's download is byte-identical to the original.
//!
//! It needs root and working `ip netns`; otherwise (or with `PPSPP_NETNS=0`) the test prints
//! `skipped: <why>` and passes. Run it on its own, with its output, as root:
//! `cargo test -p ppspp-udp --test netns -- --nocapture`.

use std::path::Path;
use std::process::Command;

/// The `ppspp` binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_ppspp");

/// The script's exit status for "prerequisites missing" (it prints `skipped: <why>`).
const SKIP: i32 = 77;

/// Why the namespace test cannot run here, or `None` when it can.
fn unavailable() -> Option<String> {
    if std::env::var("PPSPP_NETNS").is_ok_and(|v| v == "0") {
        return Some("PPSPP_NETNS=0".into());
    }
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root (network namespaces need CAP_NET_ADMIN)".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`ip netns list` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run `ip`: {e}")),
    }
}

/// Runs `tests/netns/run.sh` against the built `ppspp` and requires it to pass.
#[test]
fn swarm_of_six_namespaces_over_shaped_lossy_links() {
    if let Some(why) = unavailable() {
        println!("skipped: {why}");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/netns/run.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script).env("PPSPP_BIN", BIN);
    let out = cmd.output().expect("run tests/netns/run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    if out.status.code() == Some(SKIP) {
        // The script already printed "skipped: <why>".
        return;
    }
    assert!(
        out.status.success(),
        "tests/netns/run.sh failed ({})",
        out.status
    );
    assert!(
        stdout.contains("PASS:"),
        "no PASS line in the script's output"
    );
}
