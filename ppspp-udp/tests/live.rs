//! `ppspp live` over loopback: a source and a peer, and (with `LIBSWIFT_BIN` set) libswift's
//! live source and client on either side. Every run checks the peer's output byte for byte
//! against the injected stream from the peer's tune-in point.

mod common;
use common::{Killed, file_server, free_port, libswift, tmpdir};

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ppspp");

/// A stream of `chunks` 1 KiB chunks, each different.
fn stream(chunks: usize) -> Vec<u8> {
    (0..chunks * 1024)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ (i / 1024) as u8)
        .collect()
}

/// Starts `ppspp live source` reading `input`; returns it and the swarm ID it printed.
fn ppspp_source(input: &Path, port: u16, extra: &[&str]) -> (Killed, String) {
    let mut child = Command::new(BIN)
        .args(["live", "source", "--input"])
        .arg(input)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let swarm = lines
        .next()
        .unwrap()
        .unwrap()
        .strip_prefix("swarm ")
        .unwrap()
        .to_string();
    (Killed(child), swarm)
}

/// Runs `ppspp live get` until it wrote `chunks` chunks; returns the output and the tune-in
/// chunk it reported.
fn ppspp_get(d: &Path, swarm: &str, port: u16, chunks: u64, extra: &[&str]) -> (Vec<u8>, u64) {
    let peer = format!("127.0.0.1:{port}");
    let n = chunks.to_string();
    let mut args = vec![swarm, "--peer", &peer, "--chunks", &n, "--duration", "30"];
    args.extend_from_slice(extra);
    let (got, tune_in, _) = live_get(d, "out.bin", &args);
    (got, tune_in)
}

fn check(data: &[u8], got: &[u8], tune_in: u64, chunks: u64) {
    assert_eq!(got.len() as u64, chunks * 1024);
    let from = (tune_in * 1024) as usize;
    assert!(
        got == &data[from..from + got.len()],
        "the output differs from the stream at tune-in {tune_in}"
    );
}

/// A source paced at 400 KB/s and a peer that joins after a second: it tunes in at a munro
/// boundary past the start and writes 300 chunks identical to the stream from there.
#[test]
fn live_source_and_get_over_loopback() {
    let d = tmpdir("live", "loopback");
    let data = stream(2000);
    let input = d.join("in.bin");
    std::fs::write(&input, &data).unwrap();
    let port = free_port();
    let (_src, swarm) = ppspp_source(&input, port, &["--rate", "400000"]);
    std::thread::sleep(Duration::from_secs(1));
    let (got, tune_in) = ppspp_get(&d, &swarm, port, 300, &[]);
    assert_eq!(tune_in % 32, 0);
    assert!(
        tune_in > 0,
        "tuned in at the start of the stream, not its newest munro"
    );
    check(&data, &got, tune_in, 300);
    let _ = std::fs::remove_dir_all(&d);
}

/// A peer of the wrong swarm (another key) gets nothing: the source does not answer it.
#[test]
fn live_get_with_a_wrong_swarm_id_gets_nothing() {
    let d = tmpdir("live", "wrong");
    let input = d.join("in.bin");
    std::fs::write(&input, stream(200)).unwrap();
    let port = free_port();
    let (_src, swarm) = ppspp_source(&input, port, &[]);
    // Same algorithm, another key: flip a byte of the public key.
    let mut wrong = swarm.into_bytes();
    wrong[10] = if wrong[10] == b'0' { b'1' } else { b'0' };
    let res = Command::new(BIN)
        .args(["live", "get", std::str::from_utf8(&wrong).unwrap()])
        .args(["--peer", &format!("127.0.0.1:{port}"), "-o"])
        .arg(d.join("out.bin"))
        .args(["--duration", "2"])
        .output()
        .unwrap();
    // A public key that is not on the curve is refused at once; one that is gets silence.
    assert!(!res.status.success());
    let _ = std::fs::remove_dir_all(&d);
}

/// libswift's live source (`swift -i -`, ECDSA P-256, 32 chunks per munro, fed 10 KiB every
/// 100 ms) and `ppspp live get --form libswift`: the peer tunes in at libswift's newest
/// munro and its output equals libswift's stored stream from there.
#[test]
fn ppspp_joins_a_libswift_live_source() {
    let Some(swift) = libswift() else { return };
    let d = tmpdir("live", "from-libswift");
    let port = free_port();
    let storage = d.join("storage.dat");
    let url = d.join("url.txt");
    let mut child = Command::new(&swift)
        .arg("-i")
        .arg("-")
        .arg("-f")
        .arg(&storage)
        .args(["-l", &format!("127.0.0.1:{port}")])
        .arg("-r")
        .arg(&url)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _src = Killed(child);
    let data = stream(2000);
    let feeder = std::thread::spawn(move || {
        for block in data.chunks(10 * 1024) {
            if stdin.write_all(block).is_err() {
                return;
            }
            let _ = stdin.flush();
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let start = Instant::now();
    let swarm = loop {
        if let Ok(s) = std::fs::read_to_string(&url) {
            if let Some(id) = s.trim().strip_prefix("tswift:/") {
                break id.to_string();
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "libswift printed no swarm ID"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_secs(3));
    let (got, tune_in) = ppspp_get(&d, &swarm, port, 200, &["--form", "libswift"]);
    let stored = std::fs::read(&storage).unwrap();
    check(&stored, &got, tune_in, 200);
    drop(_src);
    let _ = feeder.join();
    let _ = std::fs::remove_dir_all(&d);
}

/// `ppspp live source --form libswift` and libswift's live client (`swift -k`): libswift
/// accepts our handshake and signed munros, hooks in, and every chunk it stored from there is
/// the injected one.
#[test]
fn libswift_joins_a_ppspp_live_source() {
    let Some(swift) = libswift() else { return };
    let d = tmpdir("live", "to-libswift");
    let data = stream(3000);
    let input = d.join("in.bin");
    std::fs::write(&input, &data).unwrap();
    let port = free_port();
    let (_src, swarm) = ppspp_source(&input, port, &["--rate", "200000", "--form", "libswift"]);
    std::thread::sleep(Duration::from_secs(2));
    let out = d.join("live.dat");
    std::fs::write(&out, b"").unwrap();
    let mut child = Command::new(&swift)
        .args(["-k", "-h", &swarm, "-t", &format!("127.0.0.1:{port}"), "-f"])
        .arg(&out)
        .args(["-l", &format!("127.0.0.1:{}", free_port())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(6));
    let _ = child.kill();
    let _ = child.wait();
    let got = std::fs::read(&out).unwrap();
    let (mut good, mut bad) = (0, 0);
    for (i, c) in got.chunks_exact(1024).enumerate() {
        if c.iter().all(|&b| b == 0) {
            continue; // before libswift's hook-in (a sparse file) or not yet received
        }
        if c == &data[i * 1024..(i + 1) * 1024] {
            good += 1;
        } else {
            bad += 1;
        }
    }
    assert_eq!(bad, 0, "libswift stored chunks that differ from the stream");
    assert!(good >= 200, "libswift stored only {good} chunks");
    let _ = std::fs::remove_dir_all(&d);
}

/// `--key FILE` keeps the signing key: a restarted source has the same swarm ID, and the key
/// file is private to its owner.
#[test]
fn live_source_key_file_keeps_the_swarm_id() {
    let d = tmpdir("live", "key");
    let input = d.join("in.bin");
    std::fs::write(&input, stream(64)).unwrap();
    let key = d.join("stream.key");
    let key_arg = key.to_str().unwrap().to_string();
    let first = {
        let (_src, swarm) = ppspp_source(&input, free_port(), &["--key", &key_arg]);
        swarm
    };
    let second = {
        let (_src, swarm) = ppspp_source(&input, free_port(), &["--key", &key_arg]);
        swarm
    };
    assert_eq!(first, second);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "key file readable by others: {mode:o}");
    }
    // Without a key file, each run has a new key.
    let (_a, x) = ppspp_source(&input, free_port(), &[]);
    let (_b, y) = ppspp_source(&input, free_port(), &[]);
    assert_ne!(x, y);
    // A garbled key file is refused with a message, not a panic.
    std::fs::write(&key, "13:zz\n").unwrap();
    let res = Command::new(BIN)
        .args(["live", "source", "--input"])
        .arg(&input)
        .args([
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--key",
            &key_arg,
        ])
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr).contains("key file"));
    let _ = std::fs::remove_dir_all(&d);
}

/// A reader slower than the stream: `live get -o -` into a pipe nobody reads for three seconds
/// blocks, and falls more than `--keep` chunks behind; it then skips to what it still holds
/// (saying so) and keeps following the stream instead of stalling, and every chunk it writes
/// is a stream chunk, in order. Also a small window (`--keep 128`).
#[test]
fn a_slow_reader_skips_ahead_instead_of_stalling() {
    let d = tmpdir("live", "slow");
    let data = stream(4000);
    let input = d.join("in.bin");
    std::fs::write(&input, &data).unwrap();
    let port = free_port();
    let (_src, swarm) = ppspp_source(&input, port, &["--rate", "400000"]);
    let mut child = Command::new(BIN)
        .args([
            "live",
            "get",
            &swarm,
            "--peer",
            &format!("127.0.0.1:{port}"),
        ])
        .args([
            "-o",
            "-",
            "--keep",
            "128",
            "--chunks",
            "600",
            "--duration",
            "30",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let mut out = Vec::new();
    std::io::Read::read_to_end(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    let res = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{err}");
    assert!(err.contains("fell behind"), "{err}");
    assert_eq!(out.len(), 600 * 1024, "{err}");
    let index: std::collections::BTreeMap<&[u8], usize> =
        data.chunks(1024).enumerate().map(|(i, c)| (c, i)).collect();
    let mut last = None;
    for c in out.chunks(1024) {
        let i = *index.get(c).expect("a chunk that is not in the stream");
        assert!(last.is_none_or(|l| i > l), "chunk {i} out of order");
        last = Some(i);
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// Bad arguments end with a one-line error and status 1 or 2, never a panic: a swarm ID that
/// is not hex or too short, a munro width that is not a power of two, an unknown algorithm.
#[test]
fn live_refuses_malformed_arguments() {
    let port = format!("127.0.0.1:{}", free_port());
    for args in [
        vec!["live", "get", "zz", "--peer", &port, "-o", "-"],
        vec!["live", "get", "0d", "--peer", &port, "-o", "-"],
        vec![
            "live",
            "get",
            "0d01",
            "--peer",
            &port,
            "-o",
            "-",
            "--chunks-per-sig",
            "3",
        ],
        vec!["live", "source", "--algorithm", "rsa", "--listen", &port],
        vec!["live", "source", "--form", "other", "--listen", &port],
    ] {
        let res = Command::new(BIN)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(
            matches!(res.status.code(), Some(1 | 2)),
            "{args:?}: {:?} {err}",
            res.status
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.trim().is_empty(), "{args:?}: no message");
    }
}

/// Runs `ppspp live get` with `args`; returns its output file, the tune-in chunk and stderr.
fn live_get(d: &Path, name: &str, args: &[&str]) -> (Vec<u8>, u64, String) {
    let out = d.join(name);
    let res = Command::new(BIN)
        .args(["live", "get"])
        .args(args)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr).to_string();
    assert!(res.status.success(), "live get failed: {err}");
    let tune_in = err
        .lines()
        .find_map(|l| l.strip_prefix("tune-in "))
        .unwrap_or_else(|| panic!("no tune-in line: {err}"))
        .trim()
        .parse()
        .unwrap();
    (std::fs::read(&out).unwrap(), tune_in, err)
}

/// `ppspp live source --publish DIR` writes the stream and its munro log as it injects; a
/// plain file server over DIR is then an origin: a viewer with no peer plays the stream from
/// it alone (every chunk checked against the signed log), and one beside the source takes
/// what the source sends and the origin the rest; both outputs match the stream.
#[test]
fn a_published_live_stream_plays_from_a_plain_file_server() {
    let d = tmpdir("live", "publish");
    let data = stream(4000);
    let input = d.join("in.bin");
    std::fs::write(&input, &data).unwrap();
    let www = d.join("www");
    let port = free_port();
    let (_src, swarm) = ppspp_source(
        &input,
        port,
        &["--rate", "400000", "--publish", www.to_str().unwrap()],
    );
    let (_rt, http) = file_server(&www);
    std::thread::sleep(Duration::from_secs(1));
    let url = format!("http://{http}/stream");
    let (got, tune_in, err) = live_get(
        &d,
        "alone.bin",
        &[
            &swarm,
            "--origin",
            &url,
            "--chunks",
            "300",
            "--duration",
            "30",
        ],
    );
    assert_eq!(tune_in % 32, 0);
    check(&data, &got, tune_in, 300);
    assert!(
        err.contains("peer efficiency 0.000"),
        "everything came from the origin: {err}"
    );
    let peer = format!("127.0.0.1:{port}");
    let (got, tune_in, err) = live_get(
        &d,
        "both.bin",
        &[
            &swarm,
            "--peer",
            &peer,
            "--origin",
            &url,
            "--chunks",
            "300",
            "--duration",
            "30",
        ],
    );
    check(&data, &got, tune_in, 300);
    assert!(err.contains("peer efficiency"), "{err}");
    // The log on disk: a header, then one record per signed munro.
    let log = std::fs::read(www.join("stream.munros")).unwrap();
    assert_eq!(&log[..8], b"PPSPPML1");
    let _ = std::fs::remove_dir_all(&d);
}

/// A viewer whose only origin has no stream there (404) says so when it gives up.
#[test]
fn a_live_origin_without_the_stream_is_reported() {
    let d = tmpdir("live", "no-stream");
    let input = d.join("in.bin");
    std::fs::write(&input, stream(64)).unwrap();
    // A real stream's ID (its source publishes nothing).
    let (_src, swarm) = ppspp_source(&input, free_port(), &[]);
    let (_rt, http) = file_server(&d);
    let res = Command::new(BIN)
        .args(["live", "get", &swarm, "--origin"])
        .arg(format!("http://{http}/nothing"))
        .args(["-o", "-", "--timeout", "3"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success());
    assert!(err.contains("404"), "names the origin's answer: {err}");
    let _ = std::fs::remove_dir_all(&d);
}
