//! What the endpoint tells its driver, drained with
//! [`Endpoint::poll_event`](crate::Endpoint::poll_event).

use core::net::SocketAddr;
use core::ops::Range;

use crate::bin::Bin;
use crate::merkle::VerifyError;
use crate::store::StoreError;

/// A swarm held by an endpoint. Handles are never reused: once the swarm is removed, its handle
/// names nothing (every command and view taking it does nothing or returns `None`), even when
/// a new swarm takes the same slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SwarmHandle {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

/// A peer (one channel) of a swarm. A handle names one channel for its whole life: after the
/// channel closes it names nothing, and a later channel in the same slot gets a handle with
/// other random bits (16 random bits above the slot).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerHandle(pub(crate) u32);

/// An HTTP origin of a swarm (see [`Endpoint::add_origin`](crate::Endpoint::add_origin)).
/// Never reused, as [`SwarmHandle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OriginHandle {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

impl OriginHandle {
    /// A number identifying the origin within its endpoint (for logs).
    pub const fn index(self) -> u32 {
        self.slot
    }
}

impl SwarmHandle {
    /// A number identifying the swarm within its endpoint (for logs).
    pub const fn index(self) -> u32 {
        self.slot
    }
}

impl PeerHandle {
    /// The local channel ID of this peer's channel (for logs; unique within the endpoint).
    pub const fn channel_id(self) -> u32 {
        self.0
    }
}

/// Something that happened, for the driver or the application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A handshake completed: the channel can carry content.
    PeerConnected {
        /// The swarm.
        swarm: SwarmHandle,
        /// The peer.
        peer: PeerHandle,
        /// Its address.
        remote: SocketAddr,
    },
    /// A channel closed.
    PeerClosed {
        /// The swarm.
        swarm: SwarmHandle,
        /// The peer.
        peer: PeerHandle,
        /// Its address.
        remote: SocketAddr,
        /// Why.
        reason: CloseReason,
        /// The channel's final counters ([`Endpoint::peer`](crate::Endpoint::peer) names
        /// nothing once the channel is closed).
        stats: alloc::boxed::Box<crate::stats::ChannelStats>,
    },
    /// Chunks were received, verified and written to the store (coalesced: one event per run
    /// of consecutive chunks verified within one input).
    ChunksVerified {
        /// The swarm.
        swarm: SwarmHandle,
        /// The chunks, half open.
        range: Range<u64>,
    },
    /// The content's size became known (from the peak hashes or the last chunk).
    SizeKnown {
        /// The swarm.
        swarm: SwarmHandle,
        /// Number of chunks.
        chunks: u64,
        /// Length in bytes, once the last chunk verified.
        bytes: Option<u64>,
    },
    /// Every chunk is verified and stored.
    SwarmComplete {
        /// The swarm.
        swarm: SwarmHandle,
    },
    /// A peer sent a chunk or hash that failed verification; its channel is closed and the
    /// chunk will be fetched from someone else.
    IntegrityFailure {
        /// The swarm.
        swarm: SwarmHandle,
        /// The peer that sent it.
        peer: PeerHandle,
        /// Its address.
        remote: SocketAddr,
        /// The chunk or node concerned.
        bin: Bin,
        /// What failed.
        error: VerifyError,
    },
    /// The chunk store failed; the swarm stops serving what it cannot read.
    StoreFailure {
        /// The swarm.
        swarm: SwarmHandle,
        /// The failure.
        error: StoreError,
    },
    /// An origin served a chunk or tree hashes that failed verification: nothing of it was
    /// stored; the origin is backed off, and disabled after repeated offences.
    OriginIntegrityFailure {
        /// The swarm.
        swarm: SwarmHandle,
        /// The origin.
        origin: OriginHandle,
        /// The chunk that failed (`None`: the tree sidecar).
        chunk: Option<u64>,
    },
    /// An origin is no longer asked for anything: it lied too often, failed permanently (an
    /// HTTP 4xx), or serves another content's tree.
    OriginDisabled {
        /// The swarm.
        swarm: SwarmHandle,
        /// The origin.
        origin: OriginHandle,
    },
    /// An address new to the swarm, learnt through PEX (RFC 7574 §3.10): reported once, and not
    /// for peers already connected or tried. With PEX on, the endpoint connects to it itself
    /// while the swarm has room ([`SwarmConfig::max_peers`](crate::SwarmConfig::max_peers)).
    PeerDiscovered {
        /// The swarm.
        swarm: SwarmHandle,
        /// The address.
        remote: SocketAddr,
    },
}

/// Why a channel closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer sent a closing handshake.
    RemoteClosed,
    /// The application closed it (or removed the swarm).
    LocalClosed,
    /// No answer to our handshakes.
    HandshakeTimeout,
    /// Nothing heard for the dead-peer timeout after at least 3 datagrams (RFC 7574 §3.12).
    Dead,
    /// The peer's handshake reply failed a check (swarm, version, options).
    HandshakeRejected,
    /// The peer sent content that failed verification.
    IntegrityFailure,
    /// The peer sent an invalid message (RFC 7574 §3: stop talking to it).
    ProtocolViolation,
    /// The endpoint needed the channel slot (too many half-open channels).
    Evicted,
    /// A second channel to a peer of the swarm, opened by both ends at once: one of the two
    /// was closed (by either end), the peer stays connected through the other.
    Duplicate,
}
