//! `ppspp-core`: the Peer-to-Peer Streaming Peer Protocol (RFC 7574) as a pure state machine.
//!
//! This crate is *sans-IO*: it never opens a socket, never reads a clock, never spawns a thread
//! and never asks the operating system for randomness. It consumes datagrams and timer ticks and
//! produces datagrams and events. The `ppspp-udp` crate drives it with real UDP sockets; the
//! `ppspp-sim` crate drives thousands of instances in a deterministic simulated network.
//!
//! The crate is `#![no_std]` and needs only `alloc`. The `std` feature (on by default) merely
//! enables the `std` features of the dependencies.
//!
//! # Modules
//!
//! - [`bin`]: bin numbers (RFC 7574 §4.2) and their algebra.
//! - [`wire`]: the complete datagram codec: every message, protocol option and chunk
//!   specification of RFC 7574 §7–§8. It knows bytes and the negotiated [`wire::WireParams`],
//!   and holds no state.
//! - [`merkle`]: content integrity: hash functions, Merkle hash trees, peaks, uncles and
//!   verification (RFC 7574 §5).
//! - [`binmap`]: availability maps: compact sets of chunks for millions of chunks.
//! - `testing` (feature `testing`): the shared test kit: an in-memory network of endpoints on
//!   a virtual clock, deterministic content, a checking store.
//! - [`live`]: live streaming integrity (RFC 7574 §6): public-key swarm IDs, signed munros
//!   (Unified Merkle Tree), Sign All, the injector's growing tree and a peer's verifier.
//!
//! - [`Endpoint`]: the protocol engine for one socket, every swarm and channel on it.
//! - [`congestion`]: pluggable congestion control; LEDBAT (RFC 6817) by default.
//!
//! # The run loop
//!
//! The endpoint does nothing by itself. A driver feeds it datagrams and timer ticks and, after
//! every input or command, drains its outputs: datagrams to send, the next deadline, events.
//!
//! ```no_run
//! use std::net::UdpSocket;
//! use std::time::{Duration as StdDuration, Instant as StdInstant};
//!
//! use ppspp_core::hash::HashAlgorithm;
//! use ppspp_core::{Endpoint, EndpointConfig, Event, Instant, MemoryStore, SwarmConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let root = ppspp_core::hash::HashValue::from_slice(&[0; 32]).unwrap();
//! let socket = UdpSocket::bind("0.0.0.0:6778")?;
//! let start = StdInstant::now();
//! let now = || Instant::from_micros(start.elapsed().as_micros() as u64);
//! // Seed the endpoint's random generator from the OS in a real program.
//! let mut ep = Endpoint::new(EndpointConfig::new([7; 32]), now());
//! let swarm = ep.add_swarm(
//!     now(),
//!     SwarmConfig::leech(root, HashAlgorithm::Sha256, 1024),
//!     Box::new(MemoryStore::new(1024)),
//! )?;
//! ep.connect(now(), swarm, "192.0.2.1:6778".parse()?)?;
//! let mut buf = [0u8; 65_536];
//! loop {
//!     // Outputs: every datagram, then the next deadline, then the events.
//!     while let Some(t) = ep.poll_transmit(now(), &mut buf) {
//!         socket.send_to(&buf[..t.size], t.destination)?;
//!     }
//!     let wait = ep.poll_timeout().map_or(StdDuration::from_secs(1), |at| {
//!         StdDuration::from_micros(at.saturating_duration_since(now()).as_micros() as u64)
//!     });
//!     while let Some(event) = ep.poll_event() {
//!         if let Event::SwarmComplete { .. } = event {
//!             return Ok(());
//!         }
//!     }
//!     // Inputs: a datagram, or the deadline passing.
//!     socket.set_read_timeout(Some(wait.max(StdDuration::from_micros(100))))?;
//!     match socket.recv_from(&mut buf) {
//!         Ok((n, from)) => ep.handle_datagram(now(), from, buf[..n].to_vec()),
//!         Err(_) => ep.handle_timeout(now()),
//!     }
//! }
//! # }
//! ```
//!
//! `poll_timeout` may name an instant that is already due after a drain (a pacing or ACK
//! deadline reached while datagrams were being written): call `handle_timeout` then, and
//! drain again. [`Endpoint::timeout_reason`] says which timer it is.
//!
//! # Handles
//!
//! A [`SwarmHandle`] names one swarm until [`Endpoint::remove_swarm`] (which gives the store
//! back); a [`PeerHandle`] names one channel until it closes ([`Event::PeerClosed`] carries its
//! final counters). Neither is ever reused: a stale handle names nothing.
//!
//! # Where each behaviour lives
//!
//! Inside the engine (`src/endpoint/`), each RFC behaviour has one module that owns its state:
//!
//! | concept | module |
//! |---|---|
//! | datagram demultiplexing, message dispatch | `input.rs` |
//! | handshake, protocol options, half-open bound (§3.1, §7) | `handshake.rs` |
//! | HAVE and ACK out, the HAVE log, map refreshes (§3.2, §3.4, §4.3) | `announce.rs` |
//! | REQUEST in, upload queue, DATA + INTEGRITY out (§3.6, §3.7, §5) | `upload.rs` |
//! | ACK in, in-flight DATA, loss detection (§3.4, RFC 6817) | `loss.rs` |
//! | request pipeline, expiry, CANCEL (§3.7, §3.8) | `download.rs` |
//! | chunk picking, availability (§3.7 policy) | `picker.rs` |
//! | verification, held chunks, completion (§5) | `verify.rs` |
//! | resume from saved state | `resume.rs` |
//! | CHOKE/UNCHOKE, upload slots, reciprocity (§3.9) | `choke.rs` |
//! | PEX and reconnection (§3.10) | `pex.rs` |
//! | path MTU fallback (§5.3, RFC 4821) | `mtu.rs` |
//! | live streams: injector, signed munros, tune-in (§6) | `live_swarm.rs` |
//! | datagram assembly | `output.rs` |
//! | timers (a typed table) and the swarm-wide tick | `timer.rs` |
//!
//! # Rules every caller can rely on
//!
//! - Time is an argument, never read; it never decreases.
//! - Bad input from the network is never a panic and never allocates from an unchecked length
//!   field: decoding returns a typed error naming what was wrong and where.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(not(fuzzing), warn(missing_docs))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod bin;
pub mod binmap;
pub mod config;
pub mod congestion;
mod endpoint;
pub mod event;
pub mod hash;
pub mod live;
pub mod membership;
pub mod merkle;
mod rand;
pub mod rtt;
pub mod stats;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod wire;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

pub use bin::Bin;
/// The byte buffer type of received datagrams and DATA payloads (zero-copy slices).
pub use bytes::Bytes;
pub use config::{DEFAULT_LIVE_WINDOW, EndpointConfig, PickerMode, SwarmConfig, SwarmContent};
/// The connection manager: which candidate peers to connect to (see its module docs).
pub use endpoint::connmgr;
pub use endpoint::{
    CRITICAL_HORIZON, CRITICAL_WINDOW, ConnectError, Endpoint, LIVE_GRACE, LiveChunkError,
    MAX_LIES, OriginError, OriginFailure, OriginFetch, OriginResource, OriginStats,
    PEX_MAX_PER_BLOCK, PEX_MAX_SHARE, PeerRef, Playback, SwarmError, SwarmRef, TREE_PREFIX, Timer,
    Transmit,
};
pub use event::{CloseReason, Event, OriginHandle, PeerHandle, SwarmHandle};
pub use stats::{ChannelStats, EndpointStats};
pub use store::{ChunkStore, MemoryStore, NullStore, StoreError};
pub use time::{Duration, Instant};
