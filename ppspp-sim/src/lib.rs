//! `ppspp-sim`: a deterministic in-process network simulator for PPSPP swarms.
//!
//! It will run thousands of real [`ppspp_core`] endpoints over a simulated network with
//! access-link bandwidth and queues, latency, loss, partitions and churn, in virtual time,
//! reproducible to the byte from one seed. It arrives with the protocol engine; today the crate
//! only reserves its place in the workspace.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
