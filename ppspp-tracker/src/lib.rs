//! `ppspp-tracker`: PPSTP, the PPSP tracker protocol (RFC 7846), without I/O.
//!
//! - [`proto`]: the request and response messages and their JSON codec. Decoding is lenient
//!   where the RFC contradicts itself (its examples and its formal definitions disagree);
//!   encoding always produces the formal form. `docs/tracker.md` lists each choice.
//! - [`tracker`]: a tracker's state: peer registrations with soft-state expiry, swarms, FIND
//!   peer selection, statistics, bounded memory and per-source rate limits. Time is an input.
//! - [`client`]: a peer's side: when to CONNECT, FIND, STAT_REPORT and LEAVE, retries with
//!   backoff, and what a response means (the peers to try).
//!
//! Neither the tracker nor the client reads a clock, opens a socket or iterates a hash map,
//! so the simulator runs the very same logic as the `ppspp` program.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ca;
pub mod client;
pub mod proto;
pub mod tracker;

pub use client::{Announcer, AnnouncerConfig, Progress};
pub use proto::{
    Action, AddrType, DecodeError, ErrorCode, PeerAddr, PeerInfo, PeerMode, PeerNum, Request,
    RequestBody, Response, ResponseType, StreamStats, SwarmAction, SwarmResult,
};
pub use tracker::{Limits, Tracker, TrackerCounters};
