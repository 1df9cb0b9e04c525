//! Configuration of an [`Endpoint`](crate::Endpoint) and of the swarms it serves.

use alloc::sync::Arc;

use crate::congestion::{ControllerFactory, LedbatConfig};
use crate::hash::{HashAlgorithm, HashValue};
use crate::merkle::MerkleTree;
use crate::time::Duration;
use crate::wire::ChunkAddressing;

/// Endpoint-wide settings. Build with [`EndpointConfig::new`] and the `&mut self` setters.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    pub(crate) rng_seed: [u8; 32],
    pub(crate) max_datagram_size: usize,
    pub(crate) unix_time_at_zero: u64,
    pub(crate) congestion: Arc<dyn ControllerFactory>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) handshake_attempts: u32,
    pub(crate) chunk_size_fallback_after: u32,
    pub(crate) keepalive_interval: Duration,
    pub(crate) dead_peer_timeout: Duration,
    pub(crate) max_channels: usize,
    pub(crate) max_half_open: usize,
    pub(crate) amplification_factor: usize,
}

impl EndpointConfig {
    /// Defaults, with the seed of the endpoint's random generator (channel IDs, tie breaks,
    /// picking). Seed it from the operating system in production and from the simulation seed
    /// in a simulator.
    pub fn new(rng_seed: [u8; 32]) -> Self {
        Self {
            rng_seed,
            max_datagram_size: 1472,
            unix_time_at_zero: 0,
            congestion: Arc::new(LedbatConfig::default()),
            handshake_timeout: Duration::from_millis(300),
            handshake_attempts: 8,
            chunk_size_fallback_after: 1,
            keepalive_interval: Duration::from_secs(55),
            dead_peer_timeout: Duration::from_secs(180),
            max_channels: 60_000,
            max_half_open: 1024,
            amplification_factor: 3,
        }
    }

    /// The largest UDP payload the endpoint sends (default 1472: a 1500-byte Ethernet MTU
    /// less IPv4 and UDP headers), 20 bytes less to IPv6 peers (the longer IPv6 header: 1452
    /// by default). DATA with its INTEGRITY messages is fitted into it, and hashes that do not
    /// fit go in an earlier datagram (RFC 7574 §5.3).
    pub fn max_datagram_size(&mut self, bytes: usize) -> &mut Self {
        self.max_datagram_size = bytes.clamp(256, 65_507);
        self
    }

    /// Microseconds since the Unix epoch at [`Instant::ZERO`](crate::time::Instant::ZERO):
    /// DATA timestamps are wall-clock microseconds (RFC 7574 §8.6 as its example decodes), and
    /// the core never reads a clock, so the driver says what its epoch is.
    pub fn unix_time_at_zero(&mut self, micros: u64) -> &mut Self {
        self.unix_time_at_zero = micros;
        self
    }

    /// The congestion controller of each channel (default: LEDBAT, RFC 6817).
    pub fn congestion(&mut self, factory: Arc<dyn ControllerFactory>) -> &mut Self {
        self.congestion = factory;
        self
    }

    /// The first retransmission timeout of an unanswered handshake; it doubles on every retry
    /// (default 300 ms).
    pub fn handshake_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.handshake_timeout = timeout;
        self
    }

    /// How many times an unanswered handshake is sent before the peer is given up (default 8).
    pub fn handshake_attempts(&mut self, attempts: u32) -> &mut Self {
        self.handshake_attempts = attempts.max(1);
        self
    }

    /// After this many unanswered handshakes carrying the Chunk Size option, the initiator
    /// retries without it: libswift silently drops handshakes that carry option 9
    /// (docs/conformance.md, deviations). Default 1 (the first handshake carries it, the retries do not); 0 never
    /// sends the option.
    pub fn chunk_size_fallback_after(&mut self, attempts: u32) -> &mut Self {
        self.chunk_size_fallback_after = attempts;
        self
    }

    /// How long a channel may stay silent before a KEEPALIVE is sent (default 55 s; RFC 7574
    /// §3.12 leaves it open, libswift uses 58 s at most).
    pub fn keepalive_interval(&mut self, interval: Duration) -> &mut Self {
        self.keepalive_interval = interval;
        self
    }

    /// A peer from which nothing arrived for this long, while at least 3 datagrams were sent
    /// to it, is dead (RFC 7574 §3.12; default 3 minutes).
    pub fn dead_peer_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.dead_peer_timeout = timeout;
        self
    }

    /// The most channels the endpoint holds (default 60,000; at most 65,535).
    pub fn max_channels(&mut self, channels: usize) -> &mut Self {
        self.max_channels = channels.clamp(1, 65_535);
        self
    }

    /// The most channels whose peer has not yet proven its address (responder side). Past it,
    /// the oldest half-open channel is dropped, so spoofed handshakes cannot exhaust memory
    /// (default 1024).
    pub fn max_half_open(&mut self, channels: usize) -> &mut Self {
        self.max_half_open = channels.max(1);
        self
    }

    /// Until a peer proves its address, never send it more than this many times the bytes
    /// received from it (default 3).
    pub fn amplification_factor(&mut self, factor: usize) -> &mut Self {
        self.amplification_factor = factor.max(1);
        self
    }
}

/// What a swarm starts with.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SwarmContent {
    /// The whole content, with its Merkle tree: the endpoint seeds it.
    Complete(Arc<MerkleTree>),
    /// Nothing yet: the endpoint downloads it, learning its size from the peak hashes
    /// (automatic size detection, RFC 7574 §5.6) unless `size` is given.
    Empty {
        /// The content length in bytes, if known from metadata.
        size: Option<u64>,
    },
    /// Some chunks already verified (a resumed download): their indices, the hashes verified
    /// with them (bin, hash) and the content length if known.
    Partial {
        /// The content length in bytes, if known.
        size: Option<u64>,
        /// Verified chunks, as half-open ranges.
        verified: alloc::vec::Vec<core::ops::Range<u64>>,
        /// Verified tree nodes `(bin, hash)`: enough to re-verify the chunks above.
        hashes: alloc::vec::Vec<(crate::bin::Bin, HashValue)>,
    },
}

/// How a downloading swarm picks chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PickerMode {
    /// Rarest first among the chunks a peer has (video-on-demand downloads, file sharing).
    RarestFirst,
    /// In order from a playback position, within a lookahead window (streaming); move the
    /// position with [`Endpoint::seek`](crate::Endpoint::seek).
    InOrder {
        /// Chunks ahead of the playback position that may be requested.
        lookahead: u64,
    },
}

/// Settings of one swarm.
#[derive(Clone, Debug)]
pub struct SwarmConfig {
    pub(crate) swarm_id: HashValue,
    pub(crate) hash: HashAlgorithm,
    pub(crate) chunk_size: u32,
    pub(crate) addressing: ChunkAddressing,
    pub(crate) content: SwarmContent,
    pub(crate) picker: PickerMode,
    pub(crate) upload_slots: usize,
    pub(crate) max_requests_per_peer: usize,
    pub(crate) pex: bool,
    pub(crate) max_peers: usize,
    pub(crate) seed_when_complete: bool,
    pub(crate) live: Option<LiveConfig>,
    pub(crate) membership: Option<crate::membership::Membership>,
}

/// The default live discard window: chunks kept behind the newest signed munro (8 MiB of
/// 1 KiB chunks).
pub const DEFAULT_LIVE_WINDOW: u64 = 8192;

/// A live swarm's settings (RFC 7574 §6).
#[derive(Clone, Debug)]
pub(crate) struct LiveConfig {
    /// The swarm ID: the injector's public key.
    pub(crate) id: crate::live::LiveSwarmId,
    pub(crate) params: crate::live::LiveParams,
    /// The injector's key (only the injector has one).
    pub(crate) signer: Option<crate::live::SharedSigner>,
    /// Checks munro signatures (peers other than the injector).
    pub(crate) verifier: Option<crate::live::SharedVerifier>,
    /// Signed munros older than this are dropped (§6.1.2.4).
    pub(crate) max_age: Option<Duration>,
    /// Chunks kept behind the newest munro (the live discard window, §6.2); `None`: all.
    pub(crate) window: Option<u64>,
    /// How long after its munro was signed a chunk still missing comes from an origin.
    pub(crate) origin_grace: Duration,
}

impl LiveConfig {
    /// The length of every signature in this swarm.
    pub(crate) fn signature_len(&self) -> usize {
        match (&self.signer, &self.verifier) {
            (Some(s), _) => s.signature_len(),
            (None, Some(v)) => v.signature_len(),
            (None, None) => 0,
        }
    }
}

impl SwarmConfig {
    /// A swarm of static content named by its Merkle root `swarm_id` (hash function `hash`,
    /// chunks of `chunk_size` bytes), with `content`. Addressing defaults to 32-bit chunk
    /// ranges (the RFC default, and what libswift speaks).
    pub fn new(
        swarm_id: HashValue,
        hash: HashAlgorithm,
        chunk_size: u32,
        content: SwarmContent,
    ) -> Self {
        Self {
            swarm_id,
            hash,
            chunk_size: chunk_size.max(1),
            addressing: ChunkAddressing::ChunkRange32,
            content,
            picker: PickerMode::RarestFirst,
            upload_slots: 8,
            max_requests_per_peer: 4096,
            pex: true,
            max_peers: 50,
            seed_when_complete: true,
            live: None,
            membership: None,
        }
    }

    /// Membership certificates (RFC 7574 §3.10, §12.2; docs/membership.md): the tracker key
    /// they are checked against, whether they are required, and our own. `None` (the
    /// default): PEX_REScert is ignored and none is sent.
    pub fn membership(&mut self, m: Option<crate::membership::Membership>) -> &mut Self {
        self.membership = m;
        self
    }

    /// The injector of a live stream (RFC 7574 §6) signed by `signer`, with the Unified Merkle
    /// Tree: chunks go in with [`Endpoint::push_live_chunk`](crate::Endpoint::push_live_chunk)
    /// and are announced once their munro is signed.
    pub fn live_source(params: crate::live::LiveParams, signer: crate::live::SharedSigner) -> Self {
        let id = signer.swarm_id();
        Self::live_swarm(id, params, Some(signer), None)
    }

    /// A live swarm's settings with everything but the keys at their defaults.
    fn live_swarm(
        id: crate::live::LiveSwarmId,
        params: crate::live::LiveParams,
        signer: Option<crate::live::SharedSigner>,
        verifier: Option<crate::live::SharedVerifier>,
    ) -> Self {
        let mut cfg = Self::new(
            HashValue::zero(0),
            params.hash,
            params.chunk_size,
            SwarmContent::Empty { size: None },
        );
        cfg.addressing = params.addressing;
        cfg.picker = PickerMode::InOrder { lookahead: 256 };
        cfg.live = Some(LiveConfig {
            id,
            params,
            signer,
            verifier,
            max_age: None,
            window: Some(DEFAULT_LIVE_WINDOW),
            origin_grace: crate::endpoint::LIVE_GRACE,
        });
        cfg
    }

    /// A peer of the live stream `id` (the injector's public key), checking munro signatures
    /// with `verifier` (for example [`crate::live::verifier`]). It tunes in at the newest
    /// signed munro it hears of and downloads in order from there (§6.1.2.4); chunks go to
    /// the store as they verify, and are served to other peers.
    pub fn live(
        id: crate::live::LiveSwarmId,
        params: crate::live::LiveParams,
        verifier: crate::live::SharedVerifier,
    ) -> Self {
        Self::live_swarm(id, params, None, Some(verifier))
    }

    /// For a live swarm: drop signed munros older than `age` when they arrive (RFC 7574
    /// §6.1.2.4; the RFC sets no bound, libswift uses 30 s for tuning in). `None` (the
    /// default) accepts any age.
    pub fn live_max_age(&mut self, age: Option<Duration>) -> &mut Self {
        if let Some(l) = &mut self.live {
            l.max_age = age;
        }
        self
    }

    /// For a live swarm with HTTP origins: how long after its munro was signed a chunk peers
    /// have not delivered is fetched from an origin (default [`crate::LIVE_GRACE`], 2 s). The
    /// stream's delay behind the source is bounded by this plus one answer of the origin;
    /// longer gives peers more time (less from the origin), shorter a lower delay.
    pub fn live_origin_grace(&mut self, grace: Duration) -> &mut Self {
        if let Some(l) = &mut self.live {
            l.origin_grace = grace;
        }
        self
    }

    /// For a live swarm: how many chunks behind the newest signed munro are kept (the live
    /// discard window, RFC 7574 §6.2, announced in the handshake, §7.9). Older chunks are
    /// forgotten — no longer served, their hashes and munros dropped — so memory stays
    /// bounded on an endless stream. A peer that has fallen behind keeps what it has not
    /// fetched yet, up to four windows, before it skips ahead. Default [`DEFAULT_LIVE_WINDOW`]; `None` keeps
    /// everything (announced as all ones: memory then grows with the stream).
    pub fn live_discard_window(&mut self, chunks: Option<u64>) -> &mut Self {
        if let Some(l) = &mut self.live {
            l.window = chunks.map(|c| c.max(l.params.nchunks_per_sig));
        }
        self
    }

    /// The live swarm ID, for a live swarm.
    pub fn live_swarm_id(&self) -> Option<&crate::live::LiveSwarmId> {
        self.live.as_ref().map(|l| &l.id)
    }

    /// A seeder of `tree`'s content.
    pub fn seed(tree: Arc<MerkleTree>) -> Self {
        Self::new(
            tree.root_hash(),
            tree.algorithm(),
            tree.chunk_size(),
            SwarmContent::Complete(tree),
        )
    }

    /// A leecher of the content named `swarm_id`.
    pub fn leech(swarm_id: HashValue, hash: HashAlgorithm, chunk_size: u32) -> Self {
        Self::new(
            swarm_id,
            hash,
            chunk_size,
            SwarmContent::Empty { size: None },
        )
    }

    /// The chunk addressing method (RFC 7574 §4, §7.8).
    pub fn addressing(&mut self, addressing: ChunkAddressing) -> &mut Self {
        self.addressing = addressing;
        self
    }

    /// How chunks are picked (default [`PickerMode::RarestFirst`]; streaming uses
    /// [`PickerMode::InOrder`] with [`Endpoint::seek`](crate::Endpoint::seek)).
    pub fn picker(&mut self, mode: PickerMode) -> &mut Self {
        self.picker = mode;
        self
    }

    /// How many peers are served at once (plus one optimistic unchoke); the rest are choked
    /// (RFC 7574 §3.9). Default 8.
    pub fn upload_slots(&mut self, slots: usize) -> &mut Self {
        self.upload_slots = slots.max(1);
        self
    }

    /// The most chunks requested from one peer at once (the queue is sized from that peer's
    /// delivery rate up to this bound). Default 4096: a 100 Mbit/s, 100 ms path needs about
    /// 1,250 1-KiB chunks in flight, and the pipeline refills at half its target. A peer
    /// serving us queues at most 4× its own bound of our requests.
    pub fn max_requests_per_peer(&mut self, chunks: usize) -> &mut Self {
        self.max_requests_per_peer = chunks.max(1);
        self
    }

    /// Whether to exchange peers (PEX, RFC 7574 §3.10) and connect to peers learnt that way
    /// (default true). Either way, a peer lost while the download is incomplete (dead, closed
    /// by it, or a handshake that timed out) is reconnected to with backoff: 30 s, doubling up
    /// to 32 min, at most 256 such peers remembered; one that sent bad content or broke the
    /// protocol, or that we closed, is not.
    pub fn pex(&mut self, enabled: bool) -> &mut Self {
        self.pex = enabled;
        self
    }

    /// The most peers of this swarm to hold channels with (default 50). PEX and reconnections
    /// stop at this bound; channels opened with [`Endpoint::connect`](crate::Endpoint::connect)
    /// or by peers are not refused for it (the endpoint-wide bound is
    /// [`EndpointConfig::max_channels`]).
    pub fn max_peers(&mut self, peers: usize) -> &mut Self {
        self.max_peers = peers.max(1);
        self
    }

    /// Whether a completed download keeps serving (default true).
    pub fn seed_when_complete(&mut self, seed: bool) -> &mut Self {
        self.seed_when_complete = seed;
        self
    }

    /// The swarm ID.
    pub fn swarm_id(&self) -> &HashValue {
        &self.swarm_id
    }
}

/// The setters take and return `&mut Self`, so a configuration built inline (`SwarmConfig::leech(..).pex(true)`)
/// is a `&mut SwarmConfig`; the endpoint takes it as it is (a copy is made).
impl From<&mut Self> for SwarmConfig {
    fn from(cfg: &mut Self) -> Self {
        cfg.clone()
    }
}

/// As for [`SwarmConfig`]: `Endpoint::new(EndpointConfig::new(seed).max_channels(64), now)`.
impl From<&mut Self> for EndpointConfig {
    fn from(cfg: &mut Self) -> Self {
        cfg.clone()
    }
}
