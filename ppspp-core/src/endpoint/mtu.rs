//! Path MTU fallback (RFC 7574 §5.3, RFC 4821 §3 coarsely): a channel whose full-size
//! datagrams keep vanishing caps its datagrams at what is known to pass, and tries full size
//! again after a while.

use crate::time::{Duration, Instant};

/// Retransmission timeouts in a row after which a channel caps its datagrams (path MTU black
/// hole).
pub(super) const PMTU_RTO_STREAK: u8 = 3;
/// How long the cap lasts before full-size datagrams are tried again.
pub(super) const PMTU_RETRY: Duration = Duration::from_secs(60);

/// One channel's view of its path MTU.
#[derive(Debug)]
pub(crate) struct PathMtu {
    /// Retransmission timeouts in a row without an ACK in between.
    pub(crate) rto_streak: u8,
    /// DATA datagrams bigger than any acknowledged so far declared lost, since a datagram as
    /// big as the smallest of them was last acknowledged: a path that keeps dropping only
    /// those has an MTU below ours.
    pub(crate) big_loss_streak: u8,
    /// The smallest datagram counted in `big_loss_streak` (`u16::MAX`: none).
    pub(crate) big_loss_min: u16,
    /// The biggest DATA datagram acknowledged (a size the path carries).
    pub(crate) max_acked_size: u16,
    /// A datagram size cap for this peer: set when full-size datagrams kept vanishing (a path
    /// MTU black hole), so DATA goes alone and INTEGRITY in datagrams of its own.
    pub(crate) dgram_cap: Option<usize>,
    /// When `dgram_cap` was set.
    pub(crate) dgram_cap_at: Instant,
}

impl PathMtu {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            rto_streak: 0,
            big_loss_streak: 0,
            big_loss_min: u16::MAX,
            max_acked_size: 0,
            dgram_cap: None,
            dgram_cap_at: now,
        }
    }

    /// The largest datagram this channel may send (`usize::MAX`: no cap of its own).
    pub(crate) fn cap(&self) -> usize {
        self.dgram_cap.unwrap_or(usize::MAX)
    }
}
