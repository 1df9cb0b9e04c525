//! Why a command was refused.

use core::fmt;

/// Why a swarm could not be added.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SwarmError {
    /// A swarm with this ID is already on the endpoint.
    Duplicate,
    /// The swarm's settings are inconsistent (hash length, chunk size, content).
    InvalidConfig(&'static str),
}

impl fmt::Display for SwarmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duplicate => f.write_str("a swarm with this ID already exists"),
            Self::InvalidConfig(why) => write!(f, "invalid swarm configuration: {why}"),
        }
    }
}

impl core::error::Error for SwarmError {}

/// Why [`Endpoint::push_live_chunk`](crate::Endpoint::push_live_chunk) refused a chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LiveChunkError {
    /// The swarm is not a live injector's (or does not exist).
    NotLiveSource,
    /// The chunk is not exactly the swarm's chunk size (its length is given).
    Length(usize),
    /// The store could not take the chunk.
    Store(crate::store::StoreError),
    /// The live tree refused it (see the inner error).
    Live(crate::live::LiveError),
}

impl fmt::Display for LiveChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotLiveSource => f.write_str("not a live injector's swarm"),
            Self::Length(n) => write!(f, "a live chunk of {n} bytes is not the chunk size"),
            Self::Store(e) => write!(f, "store: {e}"),
            Self::Live(e) => write!(f, "live: {e}"),
        }
    }
}

impl core::error::Error for LiveChunkError {}

/// Why a connection could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// No such swarm.
    UnknownSwarm,
    /// The endpoint holds as many channels as it may.
    TooManyChannels,
    /// A channel with this peer already exists in this swarm.
    AlreadyConnected,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownSwarm => "no such swarm",
            Self::TooManyChannels => "too many channels",
            Self::AlreadyConnected => "already connected to that peer in this swarm",
        })
    }
}

impl core::error::Error for ConnectError {}
