//! A constant congestion window, for tests and controlled experiments.
//!
//! [`FixedWindow`] never reacts to delay, loss or timeouts: the window is whatever it was
//! built with. It tracks bytes in flight like any controller, so a channel driven by it is
//! still window-limited, and it can optionally pace (see [`super::pacer`]) once an RTT sample
//! is known. Not for use on real networks: it does not back off under congestion.

use alloc::boxed::Box;

use super::pacer::{Pacer, PacerConfig, Rate};
use super::{Controller, ControllerFactory, ControllerMetrics};
use crate::rtt::RttEstimator;
use crate::time::{Duration, Instant};

/// Configuration of, and factory for, [`FixedWindow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FixedWindowConfig {
    window: u64,
    pacing: Option<PacerConfig>,
}

impl FixedWindowConfig {
    /// A fixed window of `window` bytes, without pacing.
    pub const fn new(window: u64) -> Self {
        Self {
            window,
            pacing: None,
        }
    }

    /// The window in bytes.
    pub fn window(&mut self, window: u64) -> &mut Self {
        self.window = window;
        self
    }

    /// Pace sending at the window per smoothed RTT (`None`, the default: no pacing).
    pub fn pacing(&mut self, pacing: Option<PacerConfig>) -> &mut Self {
        self.pacing = pacing;
        self
    }
}

impl ControllerFactory for FixedWindowConfig {
    fn build(&self, now: Instant, mss: u64) -> Box<dyn Controller> {
        Box::new(FixedWindow::with_config(self, now, mss))
    }
}

/// A controller whose window never changes.
///
/// ```
/// use ppspp_core::congestion::{Controller, FixedWindow};
/// use ppspp_core::rtt::RttEstimator;
/// use ppspp_core::time::Instant;
///
/// let mut cc = FixedWindow::new(3_000);
/// let now = Instant::ZERO;
/// cc.on_sent(now, 1_500);
/// cc.on_sent(now, 1_500);
/// assert!(!cc.can_send(1_500));
/// cc.on_loss(now, 1_500, &RttEstimator::default());
/// assert!(cc.can_send(1_500));
/// assert_eq!(cc.window(), 3_000);
/// ```
#[derive(Clone, Debug)]
pub struct FixedWindow {
    window: u64,
    flight: u64,
    pacer: Option<Pacer>,
    srtt: Option<Duration>,
}

impl FixedWindow {
    /// A window of `window` bytes, unpaced.
    pub const fn new(window: u64) -> Self {
        Self {
            window,
            flight: 0,
            pacer: None,
            srtt: None,
        }
    }

    /// A window that never limits sending.
    pub const fn unlimited() -> Self {
        Self::new(u64::MAX)
    }

    /// A controller as `config` describes, for datagrams of up to `mss` bytes.
    pub fn with_config(config: &FixedWindowConfig, now: Instant, mss: u64) -> Self {
        Self {
            pacer: config.pacing.map(|p| Pacer::new(&p, mss, now)),
            ..Self::new(config.window)
        }
    }

    fn pacing_rate(&self) -> Option<Rate> {
        self.pacer.as_ref()?.rate(self.window, self.srtt, false)
    }
}

impl Controller for FixedWindow {
    fn on_sent(&mut self, now: Instant, bytes: u64) {
        self.flight = self.flight.saturating_add(bytes);
        let rate = self.pacing_rate();
        if let Some(pacer) = &mut self.pacer {
            pacer.on_sent(now, bytes, rate);
        }
    }

    fn on_ack(&mut self, _now: Instant, bytes_acked: u64, _: Option<i64>, rtt: &RttEstimator) {
        self.srtt = rtt.smoothed().or(self.srtt);
        self.flight = self.flight.saturating_sub(bytes_acked);
    }

    fn on_loss(&mut self, _now: Instant, lost_bytes: u64, rtt: &RttEstimator) {
        self.srtt = rtt.smoothed().or(self.srtt);
        self.flight = self.flight.saturating_sub(lost_bytes);
    }

    fn on_timeout(&mut self, _now: Instant) {}

    fn window(&self) -> u64 {
        self.window
    }

    fn bytes_in_flight(&self) -> u64 {
        self.flight
    }

    fn next_send_time(&self, now: Instant, bytes: u64) -> Option<Instant> {
        if !self.can_send(bytes) {
            return None;
        }
        Some(match &self.pacer {
            Some(pacer) => pacer.next_send_time(now, bytes, self.pacing_rate()),
            None => now,
        })
    }

    fn metrics(&self) -> ControllerMetrics {
        ControllerMetrics {
            window: self.window,
            bytes_in_flight: self.flight,
            pacing_rate: self.pacing_rate().map(|r| r.bytes_per_second()),
            ..ControllerMetrics::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_never_changes() {
        let rtt = RttEstimator::default();
        let mut cc = FixedWindow::new(4_096);
        let t = Instant::ZERO;
        for _ in 0..4 {
            assert!(cc.can_send(1_024));
            cc.on_sent(t, 1_024);
        }
        assert!(!cc.can_send(1));
        assert_eq!(cc.next_send_time(t, 1_024), None);
        cc.on_loss(t, 1_024, &rtt);
        cc.on_timeout(Instant::from_secs(100));
        assert_eq!(cc.window(), 4_096);
        assert_eq!(cc.bytes_in_flight(), 3_072);
        cc.on_ack(t, 10_000, Some(-5), &rtt);
        assert_eq!(cc.bytes_in_flight(), 0);
        assert_eq!(cc.cto_deadline(), None);
        let m = cc.metrics();
        assert_eq!(
            (m.window, m.bytes_in_flight, m.pacing_rate),
            (4_096, 0, None)
        );
    }

    #[test]
    fn unlimited_never_blocks() {
        let mut cc = FixedWindow::unlimited();
        for _ in 0..1_000 {
            cc.on_sent(Instant::ZERO, u64::MAX / 2);
        }
        assert_eq!(cc.bytes_in_flight(), u64::MAX);
        assert!(cc.can_send(1));
    }

    #[test]
    fn paced_fixed_window_spreads_the_window() {
        let mut cfg = FixedWindowConfig::new(100 * 1_000);
        cfg.pacing(Some(PacerConfig::new()));
        let mut cc = FixedWindow::with_config(&cfg, Instant::ZERO, 1_000);
        let mut rtt = RttEstimator::default();
        rtt.update(Duration::from_millis(100));
        cc.on_ack(Instant::ZERO, 0, None, &rtt);
        let mut now = Instant::ZERO;
        for _ in 0..100 {
            now = cc.next_send_time(now, 1_000).unwrap().max(now);
            cc.on_sent(now, 1_000);
        }
        assert_eq!(now, Instant::from_micros(72_000));
        assert_eq!(cc.next_send_time(now, 1_000), None);
        assert_eq!(cc.metrics().pacing_rate, Some(1_250_000));
    }
}
