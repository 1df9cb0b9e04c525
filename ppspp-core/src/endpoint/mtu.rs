//! Path MTU fallback (RFC 7574 §5.3, RFC 4821 §3 coarsely): a channel whose full-size
//! datagrams keep vanishing caps its datagrams at what is known to pass, and tries full size
//! again after a while.

use crate::time::{Duration, Instant};

/// Retransmission timeouts in a row after which a channel caps its datagrams (path MTU black
/// hole).
const PMTU_RTO_STREAK: u8 = 3;
/// How long the cap lasts before full-size datagrams are tried again.
const PMTU_RETRY: Duration = Duration::from_secs(60);

/// One channel's view of its path MTU.
#[derive(Debug)]
pub(crate) struct PathMtu {
    /// Retransmission timeouts in a row without an ACK in between.
    rto_streak: u8,
    /// DATA datagrams bigger than any acknowledged so far declared lost, since a datagram as
    /// big as the smallest of them was last acknowledged: a path that keeps dropping only
    /// those has an MTU below ours.
    big_loss_streak: u8,
    /// The smallest datagram counted in `big_loss_streak` (`u16::MAX`: none).
    big_loss_min: u16,
    /// The biggest DATA datagram acknowledged (a size the path carries).
    max_acked_size: u16,
    /// A datagram size cap for this peer: set when full-size datagrams kept vanishing (a path
    /// MTU black hole), so DATA goes alone and INTEGRITY in datagrams of its own.
    dgram_cap: Option<usize>,
    /// When `dgram_cap` was set.
    dgram_cap_at: Instant,
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

    /// A DATA datagram of `size` bytes was acknowledged: the path carries datagrams that big,
    /// so losses of datagrams no bigger were not its MTU.
    pub(crate) fn on_acked(&mut self, size: u16) {
        self.max_acked_size = self.max_acked_size.max(size);
        if size >= self.big_loss_min {
            self.big_loss_streak = 0;
            self.big_loss_min = u16::MAX;
        }
    }

    /// A DATA datagram of `size` bytes was declared lost.
    pub(crate) fn on_lost(&mut self, size: u16) {
        if size > self.max_acked_size {
            self.big_loss_streak = self.big_loss_streak.saturating_add(1);
            self.big_loss_min = self.big_loss_min.min(size);
        }
    }

    /// Something the peer answered (an ACK, a delivered chunk): the path is not black.
    pub(crate) fn on_answered(&mut self) {
        self.rto_streak = 0;
    }

    /// Full-size datagrams are tried again once the cap is old (the path may have changed).
    pub(crate) fn expire(&mut self, now: Instant) {
        if self.dgram_cap.is_some()
            && now.saturating_duration_since(self.dgram_cap_at) >= PMTU_RETRY
        {
            self.dgram_cap = None;
            self.big_loss_streak = 0;
            self.big_loss_min = u16::MAX;
        }
    }

    /// Path MTU below ours, seen from sizes: datagrams bigger than any acknowledged keep
    /// vanishing while smaller ones arrive (retransmissions go small, see `add_data`). Caps at
    /// the biggest size known to pass, at least `alone` (a DATA alone). Once full-size
    /// datagrams have been acknowledged, random loss never triggers this. Returns whether it
    /// capped.
    pub(crate) fn check_sizes(&mut self, now: Instant, alone: usize) -> bool {
        if self.big_loss_streak < PMTU_RTO_STREAK || self.dgram_cap.is_some() {
            return false;
        }
        self.dgram_cap = Some(alone.max(usize::from(self.max_acked_size)).max(256));
        self.dgram_cap_at = now;
        true
    }

    /// A retransmission timeout (or, on the downloading side, requests that went unanswered
    /// for as long): a path MTU black hole (RFC 4821 §3's fallback, coarsely) after repeated
    /// ones with nothing answered in between. No datagram bigger than `alone` (a DATA alone)
    /// is sent then; the hashes a chunk needs travel in datagrams of their own (R-5.3-c).
    /// Returns whether it capped.
    pub(crate) fn on_timeout(&mut self, now: Instant, alone: usize) -> bool {
        self.rto_streak = self.rto_streak.saturating_add(1);
        if self.rto_streak < PMTU_RTO_STREAK || self.dgram_cap.is_some() {
            return false;
        }
        self.dgram_cap = Some(alone.max(256));
        self.dgram_cap_at = now;
        true
    }

    /// The largest datagram this channel may send (`usize::MAX`: no cap of its own).
    pub(crate) fn cap(&self) -> usize {
        self.dgram_cap.unwrap_or(usize::MAX)
    }
}
