//! Interoperability with libswift, the reference implementation (DESIGN.md §4, §8).
//!
//! Runs only when `LIBSWIFT_BIN` names a libswift `swift` binary; otherwise each test prints
//! `skipped: LIBSWIFT_BIN not set` and passes. Both directions use SHA-1, 1 KiB chunks and
//! 32-bit chunk ranges (what libswift speaks). libswift's command line: `-f FILE` (content),
//! `-h HEX` (root hash), `-l ADDR` (listen), `-t ADDR` (peer to contact), `-w SECS` (how
//! long to run).

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

#[test]
fn ppspp_downloads_from_libswift() {
    let Some(swift) = libswift() else { return };
    let d = tmpdir("from-libswift");
    let src = d.join("content");
    let data = content(3 * 1024 * 1024 + 123);
    std::fs::write(&src, &data).unwrap();
    let root = MerkleTree::build(HashAlgorithm::Sha1, 1024, &data)
        .unwrap()
        .root_hash();
    let port = free_port();
    let _seeder = Killed(
        Command::new(&swift)
            .arg("-f")
            .arg(&src)
            .args(["-l", &format!("127.0.0.1:{port}"), "-w", "120"])
            .current_dir(&d)
            .stdout(log(&d, "libswift.out"))
            .stderr(log(&d, "libswift.err"))
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let out = d.join("out");
    let o = Command::new(BIN)
        .args([
            "get",
            &root.to_string(),
            "--peer",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("-o")
        .arg(&out)
        .args(["--timeout", "30", "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(&out).unwrap() == data, "output differs");
    println!("{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn libswift_downloads_from_ppspp() {
    let Some(swift) = libswift() else { return };
    let d = tmpdir("to-libswift");
    let src = d.join("content");
    let data = content(2 * 1024 * 1024 + 7);
    std::fs::write(&src, &data).unwrap();
    let mut seeder = Command::new(BIN)
        .arg("seed")
        .arg(&src)
        .args(["--listen", "127.0.0.1:0", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(log(&d, "ppspp.err"))
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
    let _seeder = Killed(seeder);
    let out = d.join("out");
    let _getter = Killed(
        Command::new(&swift)
            .args(["-h", &swarm, "-t", &addr, "-w", "60"])
            .arg("-f")
            .arg(&out)
            .current_dir(&d)
            .stdout(log(&d, "libswift.out"))
            .stderr(log(&d, "libswift.err"))
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if std::fs::read(&out).is_ok_and(|b| b == data) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "libswift did not download the content within 60 s; logs in {}",
        d.display()
    );
}
