//! Interoperability with libswift, the reference implementation (deviations in docs/conformance.md).
//!
//! Runs only when `LIBSWIFT_BIN` names a libswift `swift` binary; otherwise each test prints
//! `skipped: LIBSWIFT_BIN not set` and passes. Both directions use SHA-1, 1 KiB chunks and
//! 32-bit chunk ranges (what libswift speaks). libswift's command line: `-f FILE` (content),
//! `-h HEX` (root hash), `-l ADDR` (listen), `-t ADDR` (peer to contact), `-w SECS` (how
//! long to run, with a unit: `0s` exits when complete), `-z N` (chunk size, default 1024). The
//! matrix is both directions × 1 byte, a few chunks and 64 MiB, plus a mixed swarm (one
//! seeder, both kinds of leechers), 1 KiB and 8 KiB chunks × sizes on chunk boundaries both
//! ways, and `ppspp get` from two libswift seeders at once.

mod common;
use common::{Killed, free_port, libswift, tmpdir};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ppspp_core::hash::HashAlgorithm;
use ppspp_core::merkle::MerkleTree;

const BIN: &str = env!("CARGO_BIN_EXE_ppspp");

fn content(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[1])
        .collect()
}

fn log(dir: &Path, name: &str) -> std::fs::File {
    std::fs::File::create(dir.join(name)).unwrap()
}

/// libswift's option for a chunk size other than its default 1 KiB (it is not signalled on the
/// wire: both sides must be told).
fn libswift_chunk_args(chunk: u32) -> Vec<String> {
    if chunk == 1024 {
        Vec::new()
    } else {
        vec!["-z".into(), chunk.to_string()]
    }
}

/// libswift seeding `data` in `chunk`-byte chunks: returns the process, its address and the
/// root hash it printed.
fn libswift_seed(swift: &Path, d: &Path, data: &[u8], chunk: u32) -> (Killed, String, String) {
    let src = d.join("content");
    std::fs::write(&src, data).unwrap();
    let port = free_port();
    let mut child = Command::new(swift)
        .arg("-f")
        .arg(&src)
        .args(libswift_chunk_args(chunk))
        .args(["-l", &format!("127.0.0.1:{port}"), "-w", "300s"])
        .current_dir(d)
        .stdout(Stdio::piped())
        .stderr(log(d, "libswift-seed.err"))
        .spawn()
        .unwrap();
    // libswift prints "Root hash: <hex>" once it has hashed the file.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let root = loop {
        let line = lines
            .next()
            .expect("libswift printed its root hash")
            .unwrap();
        if let Some(h) = line.strip_prefix("Root hash: ") {
            break h.trim().to_owned();
        }
    };
    (Killed(child), format!("127.0.0.1:{port}"), root)
}

/// `ppspp get` of `root` (in `chunk`-byte chunks) from `peers`; returns the bytes written.
fn ppspp_get(d: &Path, name: &str, root: &str, peers: &[&str], chunk: u32) -> Vec<u8> {
    let out = d.join(name);
    let o = Command::new(BIN)
        .args(["get", root, "--chunk-size", &chunk.to_string()])
        .args(peers.iter().flat_map(|p| ["--peer", p]))
        .arg("-o")
        .arg(&out)
        .args(["--timeout", "60", "--quiet"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ppspp get failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(&out).unwrap()
}

/// `ppspp seed` of `data` in `chunk`-byte chunks: returns the process, the swarm ID and its
/// address.
fn ppspp_seed(d: &Path, data: &[u8], chunk: u32) -> (Killed, String, String) {
    let src = d.join("content");
    std::fs::write(&src, data).unwrap();
    let mut seeder = Command::new(BIN)
        .arg("seed")
        .arg(&src)
        .args(["--listen", "127.0.0.1:0", "--quiet"])
        .args(["--chunk-size", &chunk.to_string()])
        .stdout(Stdio::piped())
        .stderr(log(d, "ppspp-seed.err"))
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(seeder.stdout.take().unwrap()));
    let swarm = lines
        .next()
        .unwrap()
        .unwrap()
        .strip_prefix("swarm ")
        .unwrap()
        .to_owned();
    let addr = lines
        .next()
        .unwrap()
        .unwrap()
        .strip_prefix("listening ")
        .unwrap()
        .to_owned();
    (Killed(seeder), swarm, addr)
}

/// libswift downloading `swarm` (in `chunk`-byte chunks) from `peer` into a fresh file;
/// returns the bytes once complete.
fn libswift_get(
    swift: &Path,
    d: &Path,
    name: &str,
    (swarm, chunk): (&str, u32),
    peer: &str,
    expect: &[u8],
) -> Vec<u8> {
    let out = d.join(name);
    // libswift wants the output file to exist, and exits on completion only when `-w 0s`
    // comes after `-l`.
    std::fs::write(&out, b"").unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut getter = Killed(
        Command::new(swift)
            .args(["-h", swarm, "-t", peer, "-l", &listen, "-w", "0s"])
            .args(libswift_chunk_args(chunk))
            .arg("-f")
            .arg(&out)
            .current_dir(d)
            .stdout(log(d, &format!("{name}.out")))
            .stderr(log(d, &format!("{name}.err")))
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        if let Ok(Some(status)) = getter.0.try_wait() {
            assert!(status.success(), "libswift exited with {status}");
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = std::fs::read(&out).unwrap();
    assert!(
        got.len() == expect.len(),
        "libswift wrote {} of {} bytes; logs in {}",
        got.len(),
        expect.len(),
        d.display()
    );
    got
}

const SIZES: [(&str, usize); 3] = [("1B", 1), ("5chunks", 5 * 1024 + 3), ("64MiB", 64 << 20)];

#[test]
fn ppspp_downloads_from_libswift() {
    let Some(swift) = libswift() else { return };
    for (name, len) in SIZES {
        let d = tmpdir("interop", &format!("from-libswift-{name}"));
        let data = content(len);
        let (_seeder, addr, root) = libswift_seed(&swift, &d, &data, 1024);
        let expect = MerkleTree::build(HashAlgorithm::Sha1, 1024, &data)
            .unwrap()
            .root_hash();
        assert_eq!(
            root,
            expect.to_string(),
            "libswift and ppspp agree on the swarm ID"
        );
        let start = Instant::now();
        let got = ppspp_get(&d, "out", &root, &[&addr], 1024);
        assert!(got == data, "{name}: output differs");
        println!(
            "libswift -> ppspp {name}: identical, {:.2} s",
            start.elapsed().as_secs_f64()
        );
    }
}

#[test]
fn libswift_downloads_from_ppspp() {
    let Some(swift) = libswift() else { return };
    for (name, len) in SIZES {
        let d = tmpdir("interop", &format!("to-libswift-{name}"));
        let data = content(len);
        let (_seeder, swarm, addr) = ppspp_seed(&d, &data, 1024);
        let start = Instant::now();
        let got = libswift_get(&swift, &d, "out", (&swarm, 1024), &addr, &data);
        assert!(got == data, "{name}: output differs");
        println!(
            "ppspp -> libswift {name}: identical, {:.2} s",
            start.elapsed().as_secs_f64()
        );
    }
}

#[test]
fn mixed_swarm_one_seeder_both_kinds_of_leechers() {
    let Some(swift) = libswift() else { return };
    for seeder_kind in ["ppspp", "libswift"] {
        let d = tmpdir("interop", &format!("mixed-{seeder_kind}"));
        let data = content(3 << 20);
        let (_seeder, swarm, addr) = if seeder_kind == "ppspp" {
            ppspp_seed(&d, &data, 1024)
        } else {
            let (k, a, r) = libswift_seed(&swift, &d, &data, 1024);
            (k, r, a)
        };
        let d2 = d.clone();
        let (sw, ad, dt, bin) = (swarm.clone(), addr.clone(), data.clone(), swift.clone());
        let theirs = std::thread::spawn(move || {
            libswift_get(&bin, &d2, "libswift-out", (&sw, 1024), &ad, &dt)
        });
        let ours = ppspp_get(&d, "ppspp-out", &swarm, &[&addr], 1024);
        let theirs = theirs.join().unwrap();
        assert!(
            ours == data && theirs == data,
            "{seeder_kind} seeder: outputs differ"
        );
        println!("mixed swarm, {seeder_kind} seeder: both leechers identical");
    }
}

/// Chunk sizes other than libswift's default (told to both sides: libswift does not signal it)
/// and content sizes on chunk and tree boundaries, both directions.
#[test]
fn other_chunk_sizes_and_boundary_sizes_both_ways() {
    let Some(swift) = libswift() else { return };
    for chunk in [1024u32, 8192] {
        for len in [1023, 1024, 1025, 8192, 8193, 65_536, (1 << 20) + 7] {
            let data = content(len);
            let d = tmpdir("interop", &format!("sizes-from-libswift-{chunk}-{len}"));
            let (seeder, addr, root) = libswift_seed(&swift, &d, &data, chunk);
            let expect = MerkleTree::build(HashAlgorithm::Sha1, chunk, &data)
                .unwrap()
                .root_hash();
            assert_eq!(
                root,
                expect.to_string(),
                "swarm ID, {chunk} B chunks, {len} B"
            );
            let got = ppspp_get(&d, "out", &root, &[&addr], chunk);
            assert!(
                got == data,
                "libswift -> ppspp, {chunk} B chunks, {len} B differs"
            );
            drop(seeder);
            let d = tmpdir("interop", &format!("sizes-to-libswift-{chunk}-{len}"));
            let (_seeder, swarm, addr) = ppspp_seed(&d, &data, chunk);
            let got = libswift_get(&swift, &d, "out", (&swarm, chunk), &addr, &data);
            assert!(
                got == data,
                "ppspp -> libswift, {chunk} B chunks, {len} B differs"
            );
            println!("{chunk} B chunks, {len} B: identical both ways");
        }
    }
}

/// `ppspp get` from two libswift seeders at once: both are used, the output is identical.
#[test]
fn ppspp_downloads_from_two_libswift_seeders() {
    let Some(swift) = libswift() else { return };
    let data = content(3 << 20);
    let (da, db) = (
        tmpdir("interop", "two-seeders-a"),
        tmpdir("interop", "two-seeders-b"),
    );
    let (_a, addr_a, root_a) = libswift_seed(&swift, &da, &data, 1024);
    let (_b, addr_b, root_b) = libswift_seed(&swift, &db, &data, 1024);
    assert_eq!(root_a, root_b);
    let out = da.join("out");
    let o = Command::new(BIN)
        .args(["get", &root_a, "--peer", &addr_a, "--peer", &addr_b])
        .arg("-o")
        .arg(&out)
        .args(["--timeout", "60"])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "ppspp get failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(std::fs::read(&out).unwrap() == data, "output differs");
    assert!(
        summary.contains("from 2 peer(s)"),
        "both libswift seeders served: {summary}"
    );
    println!(
        "two libswift seeders -> ppspp: identical; {}",
        summary.trim()
    );
}
