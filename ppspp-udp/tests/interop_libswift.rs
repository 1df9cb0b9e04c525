//! Interoperability with libswift, the reference implementation (DESIGN.md §4, §8).
//!
//! Runs only when `LIBSWIFT_BIN` names a libswift `swift` binary; otherwise each test prints
//! `skipped: LIBSWIFT_BIN not set` and passes. Both directions use SHA-1, 1 KiB chunks and
//! 32-bit chunk ranges (what libswift speaks). libswift's command line: `-f FILE` (content),
//! `-h HEX` (root hash), `-l ADDR` (listen), `-t ADDR` (peer to contact), `-w SECS` (how
//! long to run, with a unit: `0s` exits when complete). The matrix is both directions × 1 byte,
//! a few chunks and 64 MiB, plus a mixed swarm (one seeder, both kinds of leechers).

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ppspp_core::hash::HashAlgorithm;
use ppspp_core::merkle::MerkleTree;

const BIN: &str = env!("CARGO_BIN_EXE_ppspp");

fn libswift() -> Option<PathBuf> {
    match std::env::var_os("LIBSWIFT_BIN") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            println!("skipped: LIBSWIFT_BIN not set");
            None
        }
    }
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ppspp-interop-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn content(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[1])
        .collect()
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn log(dir: &Path, name: &str) -> std::fs::File {
    std::fs::File::create(dir.join(name)).unwrap()
}

/// libswift seeding `data`: returns the process, its address and the root hash it printed.
fn libswift_seed(swift: &Path, d: &Path, data: &[u8]) -> (Killed, String, String) {
    let src = d.join("content");
    std::fs::write(&src, data).unwrap();
    let port = free_port();
    let mut child = Command::new(swift)
        .arg("-f")
        .arg(&src)
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

/// `ppspp get` of `root` from `peer`; returns the bytes written.
fn ppspp_get(d: &Path, name: &str, root: &str, peer: &str) -> Vec<u8> {
    let out = d.join(name);
    let o = Command::new(BIN)
        .args(["get", root, "--peer", peer])
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

/// `ppspp seed` of `data`: returns the process, the swarm ID and its address.
fn ppspp_seed(d: &Path, data: &[u8]) -> (Killed, String, String) {
    let src = d.join("content");
    std::fs::write(&src, data).unwrap();
    let mut seeder = Command::new(BIN)
        .arg("seed")
        .arg(&src)
        .args(["--listen", "127.0.0.1:0", "--quiet"])
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

/// libswift downloading `swarm` from `peer` into a fresh file; returns the bytes once complete.
fn libswift_get(
    swift: &Path,
    d: &Path,
    name: &str,
    swarm: &str,
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
        let d = tmpdir(&format!("from-libswift-{name}"));
        let data = content(len);
        let (_seeder, addr, root) = libswift_seed(&swift, &d, &data);
        let expect = MerkleTree::build(HashAlgorithm::Sha1, 1024, &data)
            .unwrap()
            .root_hash();
        assert_eq!(
            root,
            expect.to_string(),
            "libswift and ppspp agree on the swarm ID"
        );
        let start = Instant::now();
        let got = ppspp_get(&d, "out", &root, &addr);
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
        let d = tmpdir(&format!("to-libswift-{name}"));
        let data = content(len);
        let (_seeder, swarm, addr) = ppspp_seed(&d, &data);
        let start = Instant::now();
        let got = libswift_get(&swift, &d, "out", &swarm, &addr, &data);
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
        let d = tmpdir(&format!("mixed-{seeder_kind}"));
        let data = content(3 << 20);
        let (_seeder, swarm, addr) = if seeder_kind == "ppspp" {
            ppspp_seed(&d, &data)
        } else {
            let (k, a, r) = libswift_seed(&swift, &d, &data);
            (k, r, a)
        };
        let d2 = d.clone();
        let (sw, ad, dt, bin) = (swarm.clone(), addr.clone(), data.clone(), swift.clone());
        let theirs =
            std::thread::spawn(move || libswift_get(&bin, &d2, "libswift-out", &sw, &ad, &dt));
        let ours = ppspp_get(&d, "ppspp-out", &swarm, &addr);
        let theirs = theirs.join().unwrap();
        assert!(
            ours == data && theirs == data,
            "{seeder_kind} seeder: outputs differ"
        );
        println!("mixed swarm, {seeder_kind} seeder: both leechers identical");
    }
}
