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
