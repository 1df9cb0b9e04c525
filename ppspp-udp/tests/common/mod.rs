//! What the process-level tests share: scratch directories, free ports, child processes that
//! die with the test, and the libswift binary to test against.

#![allow(dead_code)] // each test crate uses its own subset

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Child;

/// A fresh scratch directory `ppspp-<suite>-<pid>-<name>` under the system's temporary one.
pub(crate) fn tmpdir(suite: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ppspp-{suite}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed (and reaped) when dropped.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The libswift `swift` binary named by `LIBSWIFT_BIN`; `None` (after printing that the test
/// is skipped) when it is not set.
pub(crate) fn libswift() -> Option<PathBuf> {
    match std::env::var_os("LIBSWIFT_BIN") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            println!("skipped: LIBSWIFT_BIN not set");
            None
        }
    }
}

/// Deterministic incompressible bytes (xorshift64 from `seed`).
pub(crate) fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A child process stopped with SIGTERM when dropped (so it cleans up after itself, as
/// `ppspp serve` removes its temporary data directory), killed if it has not exited within
/// 5 s, and reaped.
pub(crate) struct Terminated(pub(crate) Child);

impl Drop for Terminated {
    fn drop(&mut self) {
        // Already reaped (its id may name another process by now): nothing to stop.
        if let Ok(Some(_)) = self.0.try_wait() {
            return;
        }
        // SAFETY: signalling our own child process, not yet reaped.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        // A clean shutdown may take several seconds on a loaded machine (the HTTP side gets
        // 3 s, the state writer 5 s): killing it sooner loses the state a test then reads.
        let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < end {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `ppspp serve` (stopped with SIGTERM when dropped) and what it printed.
pub(crate) struct ServeProc {
    pub(crate) child: Terminated,
    /// Its UDP address (`listening …`).
    pub(crate) udp: std::net::SocketAddr,
    /// Its HTTP address (`http http://…/`).
    pub(crate) http: std::net::SocketAddr,
    /// The `swarm …`/`link …` lines asked for, in order.
    pub(crate) lines: Vec<String>,
}

/// Starts `ppspp serve` on free loopback ports with `args`, and reads the two address lines
/// and then `pairs` pairs of `swarm`/`link` lines.
pub(crate) fn start_serve(args: &[&str], pairs: usize) -> ServeProc {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ppspp"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().expect("a line").expect("readable");
    let l = next();
    let udp = l.strip_prefix("listening ").expect(&l).parse().unwrap();
    let l = next();
    let http = l
        .strip_prefix("http http://")
        .and_then(|s| s.strip_suffix('/'))
        .expect(&l)
        .parse()
        .unwrap();
    let printed = (0..2 * pairs).map(|_| next()).collect();
    ServeProc {
        child: Terminated(child),
        udp,
        http,
        lines: printed,
    }
}

/// A static file server over `dir` (tower-http's `ServeDir`, which honours `Range`), on a
/// runtime of its own (kept alive by the returned runtime): an HTTP origin.
pub(crate) fn file_server(
    dir: &std::path::Path,
) -> (tokio::runtime::Runtime, std::net::SocketAddr) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let app = axum::Router::new().fallback_service(tower_http::services::ServeDir::new(dir));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await });
    (rt, addr)
}
