//! `ppspp seed` → `ppspp get` over loopback with the built binary: byte-identical downloads,
//! resumption after a kill, clear failures.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::content;

const BIN: &str = env!("CARGO_BIN_EXE_ppspp");

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ppspp-udp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Seeder {
    child: Child,
    swarm: String,
    link: String,
    addr: String,
    stderr: PathBuf,
}

impl Seeder {
    fn start(file: &Path, listen: &str, extra: &[&str]) -> Self {
        let stderr = file.with_extension("seed-stderr");
        let mut child = Command::new(BIN)
            .arg("seed")
            .arg(file)
            .args(["--listen", listen])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = |prefix: &str| {
            let l = lines.next().expect("seeder printed a line").unwrap();
            l.strip_prefix(prefix)
                .unwrap_or_else(|| panic!("expected {prefix:?}, got {l:?}"))
                .to_owned()
        };
        let swarm = next("swarm ");
        let addr = next("listening ");
        let link = next("link ");
        Self {
            child,
            swarm,
            link,
            addr,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Seeder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(args: &[&str]) -> Output {
    Command::new(BIN).arg("get").args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Seeds `len` bytes and downloads them with the link, checking the output byte for byte.
fn round_trip(name: &str, len: usize, chunk_size: u32, listen: &str) {
    let d = tmpdir(name);
    let src = d.join("content");
    let data = content(len, len as u64 + 1);
    std::fs::write(&src, &data).unwrap();
    let cs = chunk_size.to_string();
    let seeder = Seeder::start(&src, listen, &["--chunk-size", &cs]);
    let out = d.join("out");
    let o = get(&[
        &seeder.link,
        "-o",
        out.to_str().unwrap(),
        "--timeout",
        "20",
        "--quiet",
    ]);
    assert!(
        o.status.success(),
        "get failed: {}\n{}",
        text(&o.stderr),
        seeder.stderr()
    );
    let summary = text(&o.stdout);
    assert!(
        summary.starts_with(&format!(
            "complete {}: {len} bytes ({len} downloaded, 0 resumed)",
            out.display()
        )),
        "{summary}"
    );
    assert!(summary.contains("from 1 peer(s)"), "{summary}");
    assert!(
        std::fs::read(&out).unwrap() == data,
        "output differs from the content"
    );
    assert!(!d.join("out.ppspp-state").exists());
    assert!(!d.join("out.ppspp-part").exists());
    drop(seeder);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn one_byte() {
    round_trip("one-byte", 1, 1024, "127.0.0.1:0");
}

#[test]
fn a_few_chunks_with_a_short_last_one() {
    round_trip("few-chunks", 5 * 1024 + 17, 1024, "127.0.0.1:0");
}

#[test]
fn a_few_mebibytes() {
    round_trip("few-mib", 3 << 20, 1024, "127.0.0.1:0");
}

#[test]
fn over_ipv6_with_larger_chunks() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        println!("skipped: no IPv6 loopback");
        return;
    }
    round_trip("ipv6", 200_000, 4096, "[::1]:0");
}

#[test]
fn hex_id_and_peer_flags() {
    let d = tmpdir("hex");
    let src = d.join("content");
    let data = content(50_000, 9);
    std::fs::write(&src, &data).unwrap();
    let seeder = Seeder::start(&src, "127.0.0.1:0", &["--hash", "sha256"]);
    assert_eq!(seeder.swarm.len(), 64);
    let out = d.join("out");
    let o = get(&[
        &seeder.swarm,
        "--peer",
        &seeder.addr,
        "-o",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        std::fs::read(&out).unwrap() == data,
        "output differs from the content"
    );
    // A second run finds the content already there.
    let o = get(&[
        &seeder.swarm,
        "--peer",
        &seeder.addr,
        "-o",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success());
    assert!(
        text(&o.stdout).contains("already present"),
        "{}",
        text(&o.stdout)
    );
    drop(seeder);
    std::fs::remove_dir_all(d).unwrap();
}

/// `downloaded` and `resumed` byte counts from a summary line.
fn counts(summary: &str) -> (u64, u64) {
    let inner = summary.split('(').nth(1).unwrap();
    let mut it = inner.split(' ');
    let downloaded = it.next().unwrap().parse().unwrap();
    let resumed = inner
        .split(", ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (downloaded, resumed)
}

/// Starts a download from a rate-limited seeder, kills it (SIGKILL) once it has saved some
/// state, then runs the same command against a fresh seeder. Returns the second run's
/// (downloaded, resumed) byte counts and the content length.
fn kill_and_restart(name: &str) -> (u64, u64, u64) {
    let d = tmpdir(name);
    let src = d.join("content");
    let len = 2 << 20;
    let data = content(len, 77);
    std::fs::write(&src, &data).unwrap();
    // A slow seeder, so the download is still running when it is killed.
    let slow = Seeder::start(&src, "127.0.0.1:0", &["--max-rate", "500000"]);
    let out = d.join("out");
    let state = d.join("out.ppspp-state");
    let mut getter = Command::new(BIN)
        .args(["get", &slow.link, "-o", out.to_str().unwrap(), "--quiet"])
        .args(["--state-interval", "100ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !state.exists() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(state.exists(), "no state file appeared");
    std::thread::sleep(Duration::from_millis(600));
    getter.kill().unwrap(); // SIGKILL: no chance to save anything more.
    getter.wait().unwrap();
    assert!(!out.exists(), "an unfinished download must not sit at OUT");
    assert!(d.join("out.ppspp-part").exists());
    drop(slow);

    // A fresh, fast seeder (its tree comes from the cache).
    let fast = Seeder::start(&src, "127.0.0.1:0", &[]);
    let o = get(&[&fast.link, "-o", out.to_str().unwrap(), "--timeout", "20"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("resuming:"), "{}", text(&o.stderr));
    let (downloaded, resumed) = counts(&text(&o.stdout));
    assert!(
        std::fs::read(&out).unwrap() == data,
        "output differs from the content"
    );
    assert!(!state.exists() && !d.join("out.ppspp-part").exists());
    assert!(fast.stderr().contains("loaded from"), "{}", fast.stderr());
    drop(fast);
    std::fs::remove_dir_all(d).unwrap();
    (downloaded, resumed, len as u64)
}

#[test]
fn killed_download_restarts_and_completes() {
    let (downloaded, resumed, len) = kill_and_restart("restart");
    assert!(downloaded > 0 && downloaded + resumed == len);
}

#[test]
fn resumed_download_fetches_less() {
    let (downloaded, resumed, len) = kill_and_restart("resume");
    assert!(
        resumed > 0 && downloaded < len,
        "downloaded {downloaded} of {len}"
    );
    assert_eq!(downloaded + resumed, len);
}

#[test]
fn bad_swarm_id_fails_within_the_timeout() {
    let d = tmpdir("bad-id");
    let src = d.join("content");
    std::fs::write(&src, content(10_000, 3)).unwrap();
    let seeder = Seeder::start(&src, "127.0.0.1:0", &[]);
    let wrong = "0123456789abcdef0123456789abcdef01234567";
    assert_ne!(seeder.swarm, wrong);
    let out = d.join("out");
    let t = Instant::now();
    let o = get(&[
        wrong,
        "--peer",
        &seeder.addr,
        "-o",
        out.to_str().unwrap(),
        "--timeout",
        "1.5",
    ]);
    let took = t.elapsed();
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("no peer answered within 1.5 s"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(!out.exists());
    drop(seeder);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn malformed_arguments_exit_2() {
    let o = get(&["xyz", "--peer", "127.0.0.1:1", "-o", "/tmp/never"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("not a hex string"),
        "{}",
        text(&o.stderr)
    );
    let o = get(&["abcd", "--peer", "127.0.0.1:1", "-o", "/tmp/never"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("2-byte swarm ID"),
        "{}",
        text(&o.stderr)
    );
    let o = get(&[&"ab".repeat(20), "-o", "/tmp/never"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("no peer"), "{}", text(&o.stderr));
}

#[test]
fn unwritable_output_is_a_clear_error() {
    let d = tmpdir("readonly");
    let ro = d.join("ro");
    std::fs::create_dir(&ro).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root ignores directory permissions; sysfs refuses new files even to root.
    let target = if std::fs::File::create(ro.join("probe")).is_err() {
        ro.join("out")
    } else if std::fs::File::create("/sys/ppspp-probe").is_err() && Path::new("/sys").exists() {
        PathBuf::from("/sys/ppspp-out")
    } else {
        println!("skipped: no unwritable directory available");
        return;
    };
    let o = get(&[
        &"ab".repeat(20),
        "--peer",
        "127.0.0.1:9",
        "-o",
        target.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("permission denied while creating"), "{err}");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn seeder_stops_serving_a_file_changed_under_it() {
    let d = tmpdir("changed");
    let src = d.join("content");
    std::fs::write(&src, content(100_000, 5)).unwrap();
    let mut seeder = Seeder::start(&src, "127.0.0.1:0", &["--no-cache"]);
    std::thread::sleep(Duration::from_millis(700));
    std::fs::write(&src, content(90_000, 6)).unwrap();
    let out = d.join("out");
    let o = get(&[
        &seeder.link,
        "-o",
        out.to_str().unwrap(),
        "--timeout",
        "2",
        "--quiet",
    ]);
    assert!(!o.status.success());
    let status = seeder.child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let err = seeder.stderr();
    assert!(err.contains("changed since it was hashed"), "{err}");
    assert!(!out.exists());
    drop(seeder);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn ctrl_c_closes_the_seeder_cleanly() {
    let d = tmpdir("sigint");
    let src = d.join("content");
    std::fs::write(&src, content(1000, 8)).unwrap();
    let mut seeder = Seeder::start(&src, "127.0.0.1:0", &[]);
    let pid = seeder.child.id().to_string();
    let k = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(k.success());
    let status = seeder.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        seeder.stderr().contains("interrupted; closed"),
        "{}",
        seeder.stderr()
    );
    drop(seeder);
    std::fs::remove_dir_all(d).unwrap();
}

/// `--congestion rfc6817` (LEDBAT as specified) moves content like the default, and an
/// unknown controller is a usage error.
#[test]
fn the_specified_ledbat_is_a_command_line_choice() {
    let d = tmpdir("rfc6817");
    let src = d.join("content");
    let data = content(300_000, 6817);
    std::fs::write(&src, &data).unwrap();
    let seeder = Seeder::start(&src, "127.0.0.1:0", &["--congestion", "rfc6817"]);
    let out = d.join("out");
    let o = get(&[
        &seeder.link,
        "-o",
        out.to_str().unwrap(),
        "--congestion",
        "rfc6817",
        "--timeout",
        "20",
        "--quiet",
    ]);
    assert!(
        o.status.success(),
        "{}\n{}",
        text(&o.stderr),
        seeder.stderr()
    );
    assert!(std::fs::read(&out).unwrap() == data, "output differs");
    let bad = get(&[&seeder.link, "-o", "-", "--congestion", "cubic"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    assert!(text(&bad.stderr).contains("cubic"), "{}", text(&bad.stderr));
    drop(seeder);
    std::fs::remove_dir_all(d).unwrap();
}
