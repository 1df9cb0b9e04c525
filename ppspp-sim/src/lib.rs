//! `ppspp-sim`: a deterministic in-process network simulator for PPSPP swarms.
//!
//! It runs thousands of real [`ppspp_core::Endpoint`]s over a simulated network in virtual
//! time, reproducible to the byte from one seed:
//!
//! - **Time** is next-event: a binary heap of `(time, sequence, event)`; the sequence number
//!   breaks ties deterministically. Each endpoint has at most one live wake-up; a stale one is
//!   skipped (lazy deletion). No wall clock, no threads, no hash-map iteration.
//! - **Network** ([`net`]): every node has an access link (uplink and downlink, each a rate and
//!   a drop-tail queue in bytes, so queueing delay is real and LEDBAT sees it); the core adds a
//!   latency from the nodes' coordinates plus per-packet jitter; loss (Bernoulli or
//!   Gilbert-Elliott) per link direction; reordering; duplication; an MTU; partitions;
//!   crashes and restarts; churn. Memory grows with nodes, not nodes².
//! - **Paths** ([`path`]): one direction of a point-to-point link on the same model, for
//!   `ppspp-netem`, the user-space link emulator of the wide-area bench.
//! - **Presets** ([`presets`]): the wide-area bench's links (B, A, reordering) as scenarios.
//! - **Content** ([`content`]): computed from a seed; seeders read it from a
//!   [`content::SyntheticStore`]; leechers keep a bitmap in a [`content::VerifyingStore`] that
//!   checks every written chunk. The Merkle tree is built once and shared.
//! - **Randomness** ([`rng`]): one stream per node and purpose, derived from the run seed.
//! - **Reports** ([`report`]): completion percentiles, upload shares, drops, protocol
//!   counters and a `trace_hash` over every delivered datagram and event; JSON and SVG.
//! - **Viewers** ([`viewer`]): leechers that play the content at a bitrate while it
//!   downloads, telling the engine where they are; startup delay, stalls and seek latency per
//!   viewer.
//! - **VOPR** ([`vopr`]): scenarios drawn from a seed, a fault phase, healing, and a liveness
//!   bound, with safety checks throughout.
//!
//! ```
//! use ppspp_sim::{Scenario, Simulation};
//! let sc = Scenario::builder().peers(4).content_size(20_000).churn(None).loss(0.0).build();
//! let report = Simulation::new(sc).unwrap().run();
//! assert_eq!(report.peers_complete, 4);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod content;
pub mod net;
pub mod origin;
pub mod path;
mod ppstp;
pub mod presets;
mod radix;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod sim;
pub mod viewer;
pub mod vopr;

pub use report::Report;
pub use scenario::{Scenario, ScenarioBuilder};
pub use sim::{Progress, Simulation};
