//! Congestion control: how much DATA a channel may have in flight, and when the next datagram
//! may leave.
//!
//! RFC 7574 §8 says PPSPP over UDP MUST use LEDBAT (RFC 6817), a "less than best effort"
//! delay-based controller that yields to TCP; DATA carries the sender's timestamp (§3.3) and
//! ACK the one-way delay computed from it (§3.4) for that purpose. The RFC also
//! foresees other controllers in future versions, so this module makes the controller pluggable
//! (the shape follows quinn's `congestion.rs`, trimmed for LEDBAT's one-way delay samples):
//!
//! - [`Controller`]: the per-channel state machine the channel drives;
//! - [`ControllerFactory`]: builds one controller per channel;
//! - [`ledbat::Ledbat`] ([`LedbatConfig`] is its factory): RFC 6817 with optional slow start;
//! - [`fixed::FixedWindow`] ([`FixedWindowConfig`]): a constant window, for tests;
//! - [`pacer::Pacer`]: the token bucket controllers use to spread a window over an RTT.
//!
//! # How a channel drives a controller
//!
//! Only DATA (heavy payload) counts: handshakes, keep-alives, HAVE and ACK are not limited by
//! the window. Byte counts are datagram payload sizes; the MSS passed to the
//! factory is the largest DATA datagram the channel sends.
//!
//! 1. Before sending a DATA datagram of `n` bytes, ask [`Controller::next_send_time`]:
//!    `None` means the window is full (wait for an ACK, a loss or a timeout); `Some(t)` with
//!    `t <= now` means send now; a later `t` means arm a timer for `t` (pacing).
//! 2. After sending it, call [`Controller::on_sent`]. A retransmission is a new send.
//! 3. Once per received datagram that acknowledges DATA, call [`Controller::on_ack`] with
//!    the bytes its ACK messages newly acknowledge together (each chunk counted once) and the
//!    delay sample of its last ACK (RFC 7574 §8.7), after feeding the datagram's newest
//!    Karn-safe RTT sample to the [`RttEstimator`]. One call per datagram, not per ACK message:
//!    RFC 6817 §2.4.2 clamps the window to the flight before the acknowledgement plus
//!    `ALLOWED_INCREASE`; fed message by message, the second ACK of a datagram would be
//!    clamped to what the first left in flight.
//! 4. When DATA is declared lost (by timeout or by reordering threshold), call
//!    [`Controller::on_loss`]; those bytes leave the flight. An ECN mark is a loss of zero
//!    bytes (RFC 6817 §2.4.2).
//! 5. Report [`Controller::cto_deadline`] from the endpoint's `poll_timeout`, and call
//!    [`Controller::on_timeout`] once it has passed (RFC 6817 §2.4.2). Early calls are
//!    ignored.
//!
//! Time is always an argument: a controller never reads a clock.

pub mod fixed;
pub mod ledbat;
pub mod pacer;

use alloc::boxed::Box;
use core::fmt;

use crate::rtt::RttEstimator;
use crate::time::{Duration, Instant};

pub use fixed::{FixedWindow, FixedWindowConfig};
pub use ledbat::{DelayFilter, Ledbat, LedbatConfig};
pub use pacer::{Pacer, PacerConfig, Rate};

/// A per-channel congestion controller (see the module docs for the calling protocol).
///
/// Object safe and `Send` (an endpoint may move between threads), but not `Sync`: the core is
/// single-threaded.
pub trait Controller: fmt::Debug + Send {
    /// `bytes` of DATA left at `now`.
    fn on_sent(&mut self, now: Instant, bytes: u64);

    /// An ACK newly acknowledged `bytes_acked` bytes and carried `one_way_delay` (µs, the
    /// receiver's clock minus the sender's timestamp, so it may be negative; only differences
    /// between samples matter). `rtt` is the channel's estimator, already updated with any RTT
    /// sample this ACK produced.
    fn on_ack(
        &mut self,
        now: Instant,
        bytes_acked: u64,
        one_way_delay: Option<i64>,
        rtt: &RttEstimator,
    );

    /// Data was waiting to be sent when the next ACK arrived: the window or pacing held it
    /// back, so the sender is not application-limited (RFC 7661). The engine calls it just
    /// before [`Controller::on_ack`] while its upload queue to the peer is not empty. A
    /// controller that holds an application-limited window to what the sender used (RFC 6817's
    /// `cwnd ≤ flightsize + ALLOWED_INCREASE·MSS`) lets a window-limited one grow. The default
    /// ignores it.
    fn on_data_waiting(&mut self, now: Instant) {
        let _ = now;
    }

    /// `lost_bytes` of DATA were declared lost at `now` and leave the flight (a resend is a new
    /// [`Controller::on_sent`]). Zero bytes signals congestion without loss (an ECN mark).
    fn on_loss(&mut self, now: Instant, lost_bytes: u64, rtt: &RttEstimator);

    /// No ACK arrived for one congestion timeout. Call it when `now` has reached
    /// [`Controller::cto_deadline`]; calls before the deadline, or when none is set, are
    /// ignored (like a spurious timer).
    fn on_timeout(&mut self, now: Instant);

    /// When [`Controller::on_timeout`] is due: one CTO after the last ACK (or after the first
    /// send into an empty pipe), while data is in flight. `None` if no timeout is pending.
    fn cto_deadline(&self) -> Option<Instant> {
        None
    }

    /// The congestion window: bytes allowed in flight.
    fn window(&self) -> u64;

    /// Bytes sent and neither acknowledged nor declared lost.
    fn bytes_in_flight(&self) -> u64;

    /// Whether the window has room for `bytes` more. A datagram may always leave when
    /// nothing is in flight, so a window smaller than one datagram cannot stall a channel.
    fn can_send(&self, bytes: u64) -> bool {
        let in_flight = self.bytes_in_flight();
        in_flight == 0 || in_flight.saturating_add(bytes) <= self.window()
    }

    /// When a datagram of `bytes` may leave: `None` while the window is full, otherwise the
    /// earliest instant allowed by pacing (`now` or earlier: right away). The default has no
    /// pacing.
    fn next_send_time(&self, now: Instant, bytes: u64) -> Option<Instant> {
        self.can_send(bytes).then_some(now)
    }

    /// A snapshot of the controller's state, for statistics and tests.
    fn metrics(&self) -> ControllerMetrics;
}

/// Builds a [`Controller`] for each new channel.
pub trait ControllerFactory: fmt::Debug + Send + Sync {
    /// A controller for a channel created at `now` whose DATA datagrams are at most `mss`
    /// bytes.
    fn build(&self, now: Instant, mss: u64) -> Box<dyn Controller>;
}

/// A snapshot of a controller's state.
///
/// Fields a controller does not have stay at their default (`None`, `false`, 0). Construct it
/// outside this crate with `ControllerMetrics::default()` and assign fields.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControllerMetrics {
    /// The congestion window in bytes.
    pub window: u64,
    /// Bytes in flight.
    pub bytes_in_flight: u64,
    /// Whether the controller is in slow start.
    pub slow_start: bool,
    /// The latest filtered queuing delay (LEDBAT: FILTER(current_delays) − MIN(base_delays)).
    pub queuing_delay: Option<Duration>,
    /// The base (minimum) one-way delay in µs, in the peer's clock offset (may be negative).
    pub base_delay_micros: Option<i64>,
    /// The current congestion timeout.
    pub congestion_timeout: Option<Duration>,
    /// The pacing rate in bytes per second, if pacing is active.
    pub pacing_rate: Option<u64>,
    /// How many losses reduced the window (at most one per RTT).
    pub loss_reductions: u64,
    /// How many congestion timeouts fired.
    pub timeouts: u64,
}

#[cfg(test)]
mod tests {
    use alloc::boxed::Box;
    use alloc::vec::Vec;

    use super::*;

    /// Every controller is usable through `Box<dyn Controller>` from a factory.
    #[test]
    fn factories_build_trait_objects() {
        let factories: Vec<Box<dyn ControllerFactory>> = alloc::vec![
            Box::new(LedbatConfig::new()),
            Box::new(FixedWindowConfig::new(10_000)),
        ];
        let rtt = RttEstimator::default();
        for f in &factories {
            let mut c = f.build(Instant::ZERO, 1_000);
            assert!(c.can_send(1_000));
            assert_eq!(c.next_send_time(Instant::ZERO, 1_000), Some(Instant::ZERO));
            c.on_sent(Instant::ZERO, 1_000);
            assert_eq!(c.bytes_in_flight(), 1_000);
            c.on_ack(Instant::from_millis(50), 1_000, Some(7), &rtt);
            assert_eq!(c.bytes_in_flight(), 0);
            assert!(c.window() >= 1_000);
            assert_eq!(c.metrics().window, c.window());
        }
    }

    #[derive(Debug)]
    struct Tiny;

    impl Controller for Tiny {
        fn on_sent(&mut self, _: Instant, _: u64) {}
        fn on_ack(&mut self, _: Instant, _: u64, _: Option<i64>, _: &RttEstimator) {}
        fn on_loss(&mut self, _: Instant, _: u64, _: &RttEstimator) {}
        fn on_timeout(&mut self, _: Instant) {}
        fn window(&self) -> u64 {
            100
        }
        fn bytes_in_flight(&self) -> u64 {
            80
        }
        fn metrics(&self) -> ControllerMetrics {
            ControllerMetrics::default()
        }
    }

    #[test]
    fn default_methods() {
        let t = Tiny;
        assert!(t.can_send(20));
        assert!(!t.can_send(21));
        assert_eq!(t.next_send_time(Instant::ZERO, 20), Some(Instant::ZERO));
        assert_eq!(t.next_send_time(Instant::ZERO, 21), None);
        assert_eq!(t.cto_deadline(), None);
    }
}
