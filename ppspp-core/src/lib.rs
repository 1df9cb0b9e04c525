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
pub mod merkle;
pub mod rand;
pub mod rtt;
pub mod stats;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod wire;

pub use bin::Bin;
pub use config::{DEFAULT_LIVE_WINDOW, EndpointConfig, PickerMode, SwarmConfig, SwarmContent};
pub use endpoint::{
    ConnectError, Endpoint, LiveChunkError, PeerRef, SwarmError, SwarmRef, Transmit,
};
pub use event::{CloseReason, Event, PeerHandle, SwarmHandle};
pub use stats::{ChannelStats, EndpointStats};
pub use store::{ChunkStore, MemoryStore, NullStore, StoreError};
pub use time::{Duration, Instant};
