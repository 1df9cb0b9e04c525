//! A private swarm with the built binary (docs/membership.md): `ppspp tracker --ca-key`
//! issues membership certificates; a seeder and a leecher with `--private` and the tracker's
//! key complete through it; a peer without a certificate is refused.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

mod common;
use common::{Killed, content, tmpdir};

const BIN: &str = env!("CARGO_BIN_EXE_ppspp");

/// Starts `ppspp tracker --ca-key KEY`; returns it, its URL and the public key line.
fn tracker(key: &std::path::Path) -> (Killed, String, String) {
    let mut child = Command::new(BIN)
        .args(["tracker", "--listen", "127.0.0.1:0", "--quiet", "--ca-key"])
        .arg(key)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap();
    let url = url.strip_prefix("tracker ").unwrap().to_owned();
    let k = lines.next().unwrap().unwrap();
    let k = k
        .strip_prefix("tracker-key ")
        .unwrap_or_else(|| panic!("expected `tracker-key HEX`, got {k:?}"))
        .to_owned();
    assert_eq!(k.len(), 64, "{k}");
    (Killed(child), url, k)
}

#[test]
fn private_swarm_through_a_certifying_tracker() {
    let d = tmpdir("membership", "private");
    let data = content(200 * 1024 + 3, 21);
    let src = d.join("content");
    std::fs::write(&src, &data).unwrap();
    let ca = d.join("ca.pem");
    let (t, url, key) = tracker(&ca);
    assert!(ca.exists(), "the CA key file is created");
    // The same file gives the same key.
    drop(t);
    let (_t, url2, key2) = tracker(&ca);
    assert_eq!(key, key2);
    let url = {
        let _ = url;
        url2
    };
    // The key may also be given as a file.
    let key_file = d.join("tracker.key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();

    let mut seeder = Command::new(BIN)
        .arg("seed")
        .arg(&src)
        .args(["--listen", "127.0.0.1:0", "--quiet", "--tracker", &url])
        .args(["--tracker-key", &key, "--private"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(seeder.stdout.take().unwrap()).lines();
    let swarm = lines.next().unwrap().unwrap();
    let swarm = swarm.strip_prefix("swarm ").unwrap().to_owned();
    let listening = lines.next().unwrap().unwrap();
    let seeder_addr = listening.strip_prefix("listening ").unwrap().to_owned();
    let _seeder = Killed(seeder);

    // A certified leecher that knows only the tracker completes.
    let out = d.join("out");
    let o = Command::new(BIN)
        .args([
            "get",
            &swarm,
            "--tracker",
            &url,
            "--timeout",
            "20",
            "--quiet",
        ])
        .arg("--tracker-key")
        .arg(&key_file)
        .arg("--private")
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "certified get failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(std::fs::read(&out).unwrap() == data, "content differs");

    // A peer without a certificate gets nothing from the private seeder.
    let out2 = d.join("out2");
    let o = Command::new(BIN)
        .args([
            "get",
            &swarm,
            "--peer",
            &seeder_addr,
            "--timeout",
            "3",
            "--quiet",
        ])
        .arg("-o")
        .arg(&out2)
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "an uncertified peer downloaded from a private seeder"
    );
    assert!(!out2.exists(), "an uncertified peer wrote the content");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_tracker_keys_are_usage_errors() {
    for bad in ["zz", "/nonexistent/key/file", &"0".repeat(63)] {
        let o = Command::new(BIN)
            .args([
                "get",
                &"ab".repeat(20),
                "--peer",
                "127.0.0.1:9",
                "-o",
                "/dev/null",
            ])
            .args(["--tracker-key", bad])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("--tracker-key"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // --private needs a key.
    let o = Command::new(BIN)
        .args([
            "get",
            &"ab".repeat(20),
            "--peer",
            "127.0.0.1:9",
            "-o",
            "/dev/null",
            "--private",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

/// `ppspp serve --tracker-key --private` seeds a private swarm: a certified `get` that knows
/// only the tracker completes; an uncertified one gets nothing.
#[test]
fn serve_seeds_a_private_swarm() {
    let d = tmpdir("membership", "serve");
    let data = content(150 * 1024 + 9, 22);
    let src = d.join("content");
    std::fs::write(&src, &data).unwrap();
    let (_t, url, key) = tracker(&d.join("ca.pem"));
    let serve = common::start_serve(
        &[
            "--seed",
            src.to_str().unwrap(),
            "--tracker",
            &url,
            "--tracker-key",
            &key,
            "--private",
        ],
        1,
    );
    let udp = serve.udp.to_string();
    let swarm = serve.lines[0]
        .strip_prefix("swarm ")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let get = |out: &std::path::Path, extra: &[&str]| {
        Command::new(BIN)
            .args(["get", &swarm, "--quiet"])
            .args(extra)
            .arg("-o")
            .arg(out)
            .output()
            .unwrap()
    };
    let out = d.join("out");
    let o = get(
        &out,
        &[
            "--tracker",
            &url,
            "--tracker-key",
            &key,
            "--private",
            "--timeout",
            "20",
        ],
    );
    assert!(
        o.status.success(),
        "certified get failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(std::fs::read(&out).unwrap() == data, "content differs");
    let out2 = d.join("out2");
    let o = get(&out2, &["--peer", &udp, "--timeout", "3"]);
    // Refused (exit 1, nothing arrived), not a usage error.
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out2.exists(), "an uncertified peer wrote the content");
    let _ = std::fs::remove_dir_all(&d);
}
