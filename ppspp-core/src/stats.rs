//! Counters: per endpoint and per channel.

use crate::time::Duration;
use crate::wire::MessageType;

/// Messages counted by type (index = RFC 7574 message type code).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageCounts(pub [u64; 14]);

impl MessageCounts {
    /// The count for `t`.
    pub fn get(&self, t: MessageType) -> u64 {
        self.0[usize::from(t.code())]
    }

    pub(crate) fn add(&mut self, t: MessageType) {
        self.0[usize::from(t.code())] += 1;
    }

    /// All messages.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// Datagrams dropped, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DropCounts {
    /// Could not be decoded at all, or its first message was invalid.
    pub malformed: u64,
    /// Addressed to a channel ID we never allocated (or closed).
    pub unknown_channel: u64,
    /// Arrived for a known channel from another address (RFC 7574 §12.1).
    pub wrong_address: u64,
    /// A destination-0 datagram that does not open with a HANDSHAKE.
    pub not_handshake: u64,
    /// A handshake that failed a check: unknown swarm, versions, options (answered with
    /// silence, R-3.1.1-h).
    pub handshake_rejected: u64,
    /// Messages after the first invalid one in a datagram (counted per datagram).
    pub truncated_processing: u64,
    /// DATA nobody asked for, or for a chunk we already have.
    pub unrequested_data: u64,
    /// REQUESTs refused: out of range, choked, unknown chunk, or too many queued.
    pub refused_requests: u64,
    /// Half-open channels evicted to bound memory.
    pub evicted_half_open: u64,
    /// Outgoing bytes withheld by the anti-amplification limit.
    pub amplification_limited: u64,
    /// Signed munros of a live stream dropped: not munro-shaped, without their INTEGRITY,
    /// too old, or conflicting with a trusted one (bad signatures count as integrity
    /// failures).
    pub live_munros: u64,
    /// In a swarm that requires membership certificates: handshakes refused because they
    /// carried no valid certificate for the sender's own address, and PEX addresses
    /// (PEX_RESv4/v6) ignored because they came without one (docs/membership.md).
    pub uncertified: u64,
    /// PEX_REScert certificates that failed a check (signature, validity, swarm, form), or
    /// were not checked because the channel had already sent too many bad ones.
    pub bad_certificates: u64,
    /// PEX addresses not connected to because the swarm already had
    /// [`PEX_MAX_PER_BLOCK`](crate::PEX_MAX_PER_BLOCK) peers in their address block (an IPv4
    /// /24, an IPv6 /48; local addresses exempt): anti-eclipse, RFC 7574 §12.2.
    pub pex_block_limited: u64,
}

/// Endpoint-wide counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// UDP payload bytes received.
    pub bytes_in: u64,
    /// UDP payload bytes sent.
    pub bytes_out: u64,
    /// Messages received, by type.
    pub messages_in: MessageCounts,
    /// Messages sent, by type.
    pub messages_out: MessageCounts,
    /// KEEPALIVE datagrams received.
    pub keepalives_in: u64,
    /// KEEPALIVE datagrams sent.
    pub keepalives_out: u64,
    /// Drops, by reason.
    pub drops: DropCounts,
    /// Chunks verified and stored.
    pub chunks_verified: u64,
    /// Chunks or hashes that failed verification.
    pub integrity_failures: u64,
    /// DATA messages sent again after being declared lost.
    pub data_retransmissions: u64,
    /// Losses found spurious: DATA declared lost whose first send was acknowledged after all
    /// (before the resend went out, or sooner after it than any round trip). Each widens the
    /// channel's reordering window.
    pub spurious_losses: u64,
    /// Handshakes sent again for lack of an answer.
    pub handshake_retransmissions: u64,
    /// Chunks requested again (timed out, or from another peer).
    pub rerequests: u64,
    /// Of [`EndpointStats::rerequests`], those given up because the peer delivered nothing
    /// for a request timeout (the rest were holes left behind later deliveries).
    pub rerequests_stalled: u64,
    /// Requests moved from a seeder to a peer that announced the chunk meanwhile (CANCEL at
    /// the seeder, REQUEST to the peer): the seeder's upload is kept for chunks new to the
    /// swarm.
    pub requests_moved: u64,
    /// Channels that capped their datagram size after repeated timeouts or repeated losses of
    /// datagrams bigger than any acknowledged (a suspected path MTU below ours).
    pub pmtu_fallbacks: u64,
    /// UNCHOKE messages sent again because the peer sent no REQUEST after the previous one
    /// (it may have been lost: nothing else would ever tell the peer).
    pub unchoke_resends: u64,
    /// Whole availability maps announced again to peers that lacked chunks we have and asked
    /// for none (a HAVE may have been lost: nothing else would ever tell them).
    pub have_refreshes: u64,
    /// Content bytes received and verified, from every peer.
    pub content_in: u64,
    /// Content bytes sent (DATA payloads, retransmissions included), to every peer.
    pub content_out: u64,
    /// Content bytes received from HTTP origins, verified and stored (not in
    /// [`EndpointStats::content_in`]).
    pub origin_content_in: u64,
    /// Origin fetches that failed (transport, HTTP status, short body).
    pub origin_failures: u64,
    /// Of [`EndpointStats::integrity_failures`], chunks or tree hashes from origins.
    pub origin_integrity_failures: u64,
    /// Calls to `poll_transmit` with a buffer smaller than the configured maximum datagram
    /// size: what did not fit stayed queued (a DATA never fits a buffer smaller than a chunk
    /// with its headers, so such a buffer stalls transfers).
    pub small_transmit_buffers: u64,
    /// Channels currently open.
    pub channels: u64,
}

impl EndpointStats {
    /// Peer efficiency: content bytes from peers / content bytes from peers and origins
    /// (`None` before any content arrived).
    pub fn peer_efficiency(&self) -> Option<f64> {
        peer_efficiency(self.content_in, self.origin_content_in)
    }
}

/// `peers / (peers + origins)`, `None` when both are zero.
pub fn peer_efficiency(peers: u64, origins: u64) -> Option<f64> {
    let all = peers.checked_add(origins)?;
    (all > 0).then(|| peers as f64 / all as f64)
}

/// Counters of one channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelStats {
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Content bytes received and verified from this peer.
    pub content_in: u64,
    /// Content bytes sent to this peer.
    pub content_out: u64,
    /// Messages received, by type.
    pub messages_in: MessageCounts,
    /// Messages sent, by type.
    pub messages_out: MessageCounts,
    /// DATA sent again.
    pub retransmissions: u64,
    /// Smoothed round-trip time, once measured.
    pub rtt: Option<Duration>,
    /// Congestion window in bytes.
    pub cwnd: u64,
    /// DATA bytes in flight.
    pub in_flight: u64,
}
