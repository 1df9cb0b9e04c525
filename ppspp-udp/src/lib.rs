//! `ppspp-udp`: the thin adapter that drives a [`ppspp_core`] endpoint with real UDP sockets,
//! a real clock, operating-system randomness and file I/O, and the `ppspp` command-line
//! program.
//!
//! Today it holds the command-line tools that need no network: `ppspp decode` (a protocol
//! dissector for single datagrams) and `ppspp hash` (the swarm ID of a file). The socket
//! driver and the file-backed chunk store come with the protocol engine.
#![warn(missing_docs)]

pub mod cli;
