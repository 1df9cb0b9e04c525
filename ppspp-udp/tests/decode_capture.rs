//! `ppspp decode --pcap` on a real capture: tcpdump records a `ppspp seed` → `ppspp get`
//! exchange on loopback (SHA-256 and 32-bit bins, so nothing decodes unless the dissector
//! follows the handshakes), and every datagram of it must decode.
//!
//! Capturing needs root and tcpdump; without them the test prints why and passes.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_ppspp");

/// Kills (SIGKILL) and reaps a child process when dropped, so a failed assertion leaves
/// nothing running.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tmpdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("ppspp-capture-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn can_capture() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root".into());
    }
    match Command::new("tcpdump").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("tcpdump is not installed (apt-get install tcpdump)".into()),
    }
}

#[test]
fn decodes_a_real_seed_and_get_capture() {
    if let Err(why) = can_capture() {
        eprintln!("skipping decodes_a_real_seed_and_get_capture: {why}");
        return;
    }
    let d = tmpdir();
    let src = d.join("content");
    let data: Vec<u8> = (0..40_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(&src, &data).unwrap();

    let mut seeder = Reaper(
        Command::new(BIN)
            .arg("seed")
            .arg(&src)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--hash",
                "sha256",
                "--cam",
                "bin32",
            ])
            .args(["--no-cache", "--quiet"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(seeder.0.stdout.take().unwrap()).lines();
    let mut line = |prefix: &str| {
        let l = lines.next().expect("seeder printed a line").unwrap();
        l.strip_prefix(prefix)
            .unwrap_or_else(|| panic!("expected {prefix:?}, got {l:?}"))
            .to_owned()
    };
    let _swarm = line("swarm ");
    let addr = line("listening ");
    let link = line("link ");
    let port = addr.rsplit(':').next().unwrap().to_owned();

    // A marker datagram between two sockets of our own, sent once the transfer is over:
    // tcpdump reads packets in the order `lo` carried them, so once the marker is in the file,
    // every datagram of the exchange is too. (Stopping tcpdump as soon as `get` exits loses
    // whatever it has not read yet when the machine is busy.)
    let marker_rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let marker_port = marker_rx.local_addr().unwrap().port().to_string();
    let pcap = d.join("exchange.pcap");
    // In immediate mode libpcap sizes each ring frame to the snapshot length (256 KiB with
    // `-s 0`), so the default 2 MiB buffer holds 8 packets and a busy machine drops the rest;
    // `-B 65536` (KiB) gives it room for a few hundred.
    let mut tcpdump = Reaper(
        Command::new("tcpdump")
            .args([
                "-i",
                "lo",
                "-n",
                "-U",
                "--immediate-mode",
                "-B",
                "65536",
                "-s",
                "0",
                "-w",
            ])
            .arg(&pcap)
            .args([
                "udp",
                "and",
                "(",
                "port",
                &port,
                "or",
                "port",
                &marker_port,
                ")",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // tcpdump says "listening on lo, …" once the capture is running.
    let mut err = BufReader::new(tcpdump.0.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(first.contains("listening on"), "tcpdump: {first}");

    let out = d.join("out");
    let got = Command::new(BIN)
        .arg("get")
        .arg(&link)
        .arg("-o")
        .arg(&out)
        .args(["--timeout", "20", "--quiet"])
        .output()
        .unwrap();
    assert!(
        got.status.success(),
        "get failed: {}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(std::fs::read(&out).unwrap(), data);

    let token = format!("ppspp-capture-marker-{}", std::process::id());
    let marker_tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let captured = |path: &PathBuf| {
        std::fs::read(path).is_ok_and(|b| b.windows(token.len()).any(|w| w == token.as_bytes()))
    };
    loop {
        marker_tx
            .send_to(token.as_bytes(), marker_rx.local_addr().unwrap())
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        if captured(&pcap) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tcpdump did not record the marker within 60 s"
        );
    }
    // SIGINT makes tcpdump flush and close the file.
    // SAFETY: kill with a valid pid of our own child and a valid signal number.
    unsafe { libc::kill(tcpdump.0.id() as libc::pid_t, libc::SIGINT) };
    let status = tcpdump.0.wait().unwrap();
    assert!(status.success() || status.code().is_none(), "{status}");
    drop(seeder);

    let dec = Command::new(BIN)
        .args(["decode", "--port", &port, "--pcap"])
        .arg(&pcap)
        .output()
        .unwrap();
    let stdout = String::from_utf8(dec.stdout).unwrap();
    let stderr = String::from_utf8(dec.stderr).unwrap();
    assert_eq!(dec.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains("error:"), "{stdout}");
    // The leecher's handshake, the seeder's answer, and the transfer in 32-bit bins with
    // 32-byte hashes.
    assert!(
        stdout.contains(&format!("-> 127.0.0.1:{port} (")),
        "{stdout}"
    );
    assert!(
        stdout.contains("\nchannel 00000000\nHANDSHAKE "),
        "{stdout}"
    );
    assert!(stdout.contains("hash=sha256"), "{stdout}");
    assert!(stdout.contains("addressing=bin32"), "{stdout}");
    assert!(stdout.contains("\nDATA bin "), "{stdout}");
    assert!(stdout.contains("\nINTEGRITY bin "), "{stdout}");
    assert!(stdout.contains("\nACK bin "), "{stdout}");
    // Every datagram decoded, including those the seeder sent as one GSO buffer (which the
    // capture on `lo` records unsegmented), and every chunk went by in a DATA of at most one
    // chunk.
    let datagrams = stdout.lines().filter(|l| l.starts_with("channel ")).count();
    assert!(datagrams >= 40, "only {datagrams} datagrams captured");
    assert!(
        stderr.contains(&format!("{datagrams} datagrams decoded, 0 malformed")),
        "{stderr}"
    );
    let mut chunks = std::collections::BTreeSet::new();
    for l in stdout.lines().filter(|l| l.starts_with("DATA bin ")) {
        let bin: u64 = l.split(' ').nth(2).unwrap().parse().unwrap();
        let len: usize = l.rsplit("len=").next().unwrap().parse().unwrap();
        assert!(bin % 2 == 0 && len <= 1024, "{l}");
        chunks.insert(bin / 2);
    }
    assert_eq!(chunks.len(), data.len().div_ceil(1024), "{chunks:?}");
    let _ = std::fs::remove_dir_all(d);
}
