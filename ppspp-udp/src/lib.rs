//! `ppspp-udp`: the thin adapter that drives a [`ppspp_core`] endpoint with real UDP sockets,
//! a real clock, operating-system randomness and file I/O, and the `ppspp` command-line
//! program.
//!
//! - [`Driver`]: one endpoint on one non-blocking UDP socket (IPv4 or IPv6), run on the
//!   calling thread: batched receive (`recvmmsg`, GRO) and send (GSO) through `quinn-udp`,
//!   large socket buffers, kernel drop counting, an optional send rate limit.
//! - `tokio` feature: `tokio_driver::AsyncDriver`, the same loop on a tokio runtime (both
//!   drivers are one skeleton: only the waiting differs).
//! - [`store`]: the file-backed chunk stores (a seeder's file; a download's file with a
//!   resumable state sidecar) and the seeder's tree cache.
//! - [`link`]: swarm links, `ppspp://HEX?cs=…&peer=…&origin=…`, carrying what a downloader needs.
//! - [`origin`]: the HTTP client of origins (byte-range GETs off the network thread).
//! - [`cli`]: the subcommands of the `ppspp` program.
#![warn(missing_docs)]

pub mod cli;
pub mod clock;
pub mod driver;
pub mod http_input;
pub mod link;
pub mod live_link;
pub mod origin;
mod skeleton;
pub mod socket;
pub mod store;
#[cfg(feature = "tokio")]
pub mod tokio_driver;

pub use clock::Clock;
pub use driver::{Driver, DriverConfig, DriverStats, StopHandle, WakeHandle, os_seed};
pub use link::SwarmLink;
pub use socket::{SocketConfig, SocketStats};
