//! The subcommands of the `ppspp` program. Each returns the process exit code, following one
//! policy ([`ppspp_cli_args::EXIT_HELP`]): 0 done, 1 failed, 2 usage, 130 interrupted.
//!
//! Every numeric and address flag is parsed by [`ppspp_cli_args`] (shared with `ppspp-sim`),
//! so a bad value is a usage error before any work starts.

pub mod decode;
pub mod finder;
pub mod get;
pub mod hash;
pub mod interrupt;
pub mod live;
pub mod logging;
pub mod origins;
pub mod pcap;
pub mod progress;
pub mod publish;
pub mod saver;
pub mod seed;
#[cfg(feature = "serve")]
pub mod serve;
pub mod summary;
pub mod tap;
pub mod trace;
pub mod tracker;
pub mod tracker_client;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ppspp_core::CloseReason;
use ppspp_core::bin::Bin;

pub use ppspp_cli_args::{EXIT_DONE, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE};

/// The congestion controller of every channel (`--congestion`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Congestion {
    /// LEDBAT with the project's defaults for long and lossy paths (TARGET 25 ms, a
    /// proportional decrease above it, loss without a queue ×0.9, regrowth while no queue
    /// shows; `LedbatConfig::new`).
    #[default]
    Ledbat,
    /// LEDBAT exactly as RFC 6817 specifies it (TARGET 100 ms, additive decrease, every loss
    /// halves the window; `LedbatConfig::rfc6817`), for comparison.
    Rfc6817,
}

/// `--congestion`, shared by the commands that move data.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct CongestionArgs {
    /// The congestion controller: `ledbat` (the default, tuned for long and lossy paths, see
    /// docs/conformance.md) or `rfc6817` (LEDBAT exactly as specified).
    #[arg(long, value_enum, default_value_t)]
    pub congestion: Congestion,
}

impl CongestionArgs {
    /// Sets the chosen controller in `cfg`.
    pub fn apply(self, cfg: &mut crate::DriverConfig) {
        let ledbat = match self.congestion {
            Congestion::Ledbat => ppspp_core::congestion::LedbatConfig::new(),
            Congestion::Rfc6817 => ppspp_core::congestion::LedbatConfig::rfc6817(),
        };
        cfg.endpoint.congestion(std::sync::Arc::new(ledbat));
    }
}

/// The largest chunk size the `ppspp` subcommands accept: one chunk and its DATA header
/// (and a few hashes) must fit in a UDP datagram the kernel sends without trouble. Above
/// 16 KiB a datagram is fragmented into a dozen IP packets and one lost fragment loses the
/// whole chunk; 64 KiB datagrams stall on loopback.
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024;

/// A failure with its exit code and the one line that explains it.
#[derive(Debug)]
pub struct Failure {
    /// The exit code ([`EXIT_FAILED`], [`EXIT_USAGE`] or [`EXIT_INTERRUPTED`]).
    pub code: u8,
    /// What went wrong, one line.
    pub message: String,
}

impl Failure {
    /// A failure of the work itself (exit 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_FAILED,
            message: message.into(),
        }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    /// An interruption (exit 130).
    pub fn interrupted(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_INTERRUPTED,
            message: message.into(),
        }
    }

    /// Prints the message as `ppspp CMD: MESSAGE` and returns the exit code.
    pub fn report(&self, cmd: &str) -> u8 {
        eprintln!("ppspp {cmd}: {}", self.message);
        self.code
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self::failed(message)
    }
}

/// Why a channel closed, in words.
pub fn close_reason(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::RemoteClosed => "it closed the channel",
        CloseReason::LocalClosed => "closed here",
        CloseReason::HandshakeTimeout => "no answer to the handshake",
        CloseReason::Dead => "silent too long",
        CloseReason::HandshakeRejected => "its handshake was refused (swarm, version or options)",
        CloseReason::IntegrityFailure => "it sent data that failed verification",
        CloseReason::ProtocolViolation => "it broke the protocol",
        CloseReason::Evicted => "evicted to make room",
        CloseReason::Duplicate => "a second channel to the same peer (both opened at once)",
        _ => "closed",
    }
}

/// A bin as the chunks it covers: `chunk 7` or `chunks 8..=15`.
pub fn chunks_of(bin: Bin) -> String {
    match bin.chunks() {
        Some(r) if r.start() == r.end() => format!("chunk {}", r.start()),
        Some(r) => format!("chunks {}..={}", r.start(), r.end()),
        None => format!("bin {bin}"),
    }
}

/// A duration in seconds for messages: `1.5 s`, `30 s`.
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

/// The peers to contact, as addresses a socket bound to `local` can reach (IPv4 peers
/// become IPv4-mapped addresses on an IPv6 socket).
pub fn reachable(peers: &[SocketAddr], local: SocketAddr) -> Vec<SocketAddr> {
    peers
        .iter()
        .map(|p| match (local, p.ip()) {
            (SocketAddr::V6(_), IpAddr::V4(a)) => {
                SocketAddr::new(IpAddr::V6(a.to_ipv6_mapped()), p.port())
            }
            _ => *p,
        })
        .collect()
}

/// The wildcard address of the family the peers need: IPv4 if every peer is IPv4.
pub fn any_addr_for(peers: &[SocketAddr]) -> SocketAddr {
    if peers.iter().all(SocketAddr::is_ipv4) {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
    }
}

/// Prints a line on stdout without panicking when stdout is closed (a reader that went away
/// must not bring the program down); the line is simply lost.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}
pub(crate) use say;
