//! Round-trip time estimation in the style of RFC 6298.
//!
//! [`RttEstimator`] keeps the latest, smoothed and minimum round-trip times of one channel, the
//! RTT variation, and derives the retransmission timeout (RTO). LEDBAT uses the RTO as its
//! congestion timeout (CTO, RFC 6817 §2.4.2), and the channel uses it for
//! its resend timers.
//!
//! The mapping onto RFC 6298:
//!
//! | RFC 6298 | here |
//! |---|---|
//! | §2.1 RTO = 1 s before the first sample | [`RttConfig::initial_rto`] (default 1 s) |
//! | §2.2 first sample: SRTT = R, RTTVAR = R/2 | [`RttEstimator::update`] |
//! | §2.3 RTTVAR = ¾·RTTVAR + ¼·\|SRTT − R\|, SRTT = ⅞·SRTT + ⅛·R | [`RttEstimator::update`] |
//! | RTO = SRTT + max(G, 4·RTTVAR) | [`RttEstimator::rto`], G = [`RttConfig::granularity`] |
//! | §2.4 RTO below 1 s SHOULD be rounded up to 1 s | [`RttConfig::min_rto`] (default 1 s) |
//! | §2.5 a maximum MAY be placed, at least 60 s | [`RttConfig::max_rto`] (default 60 s, never less) |
//! | §5.5 back off: RTO = 2·RTO on expiry | [`RttEstimator::on_timeout`] |
//! | §5.7 / Karn: keep the backed-off RTO until a valid sample | a sample clears the backoff |
//!
//! **Karn's algorithm is the caller's duty**: feed [`RttEstimator::update`] only samples from
//! DATA that was sent exactly once (never retransmitted), because the ACK of a retransmitted
//! chunk cannot tell which transmission it answers.
//!
//! All arithmetic is in integer microseconds; a sample's sub-microsecond part is dropped.

use crate::time::{Duration, duration_micros};

/// Parameters of an [`RttEstimator`].
///
/// The defaults follow RFC 6298 literally (1 s initial and minimum RTO, 60 s maximum, 1 ms
/// clock granularity). A deployment on fast paths may lower [`RttConfig::min_rto`]; many TCP
/// stacks use 200 ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RttConfig {
    initial_rto: Duration,
    min_rto: Duration,
    max_rto: Duration,
    granularity: Duration,
}

impl RttConfig {
    /// The default configuration (same as [`Default::default`]).
    pub const fn new() -> Self {
        Self {
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_secs(1),
            max_rto: Duration::from_secs(60),
            granularity: Duration::from_millis(1),
        }
    }

    /// The RTO before any sample (RFC 6298 §2.1; default 1 s). Zero is raised to 1 µs.
    pub fn initial_rto(&mut self, value: Duration) -> &mut Self {
        self.initial_rto = value.max(Duration::from_micros(1));
        self
    }

    /// The smallest RTO computed from samples (RFC 6298 §2.4; default 1 s).
    pub fn min_rto(&mut self, value: Duration) -> &mut Self {
        self.min_rto = value;
        self
    }

    /// The largest RTO, backoff included (RFC 6298 §2.5; default 60 s). Values below 60 s are
    /// raised to 60 s, the smallest cap the RFC (and RFC 6817 §2.4.2 for the CTO) allows.
    pub fn max_rto(&mut self, value: Duration) -> &mut Self {
        self.max_rto = value.max(MIN_MAX_RTO);
        self
    }

    /// The clock granularity G of RFC 6298 (default 1 ms): the RTO is at least SRTT + G.
    pub fn granularity(&mut self, value: Duration) -> &mut Self {
        self.granularity = value;
        self
    }
}

impl Default for RttConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// An RFC 6298 round-trip time estimator for one channel.
///
/// ```
/// use ppspp_core::rtt::RttEstimator;
/// use ppspp_core::time::Duration;
///
/// let mut rtt = RttEstimator::default();
/// assert_eq!(rtt.rto(), Duration::from_secs(1)); // no sample yet
/// rtt.update(Duration::from_millis(100));
/// assert_eq!(rtt.smoothed(), Some(Duration::from_millis(100)));
/// assert_eq!(rtt.rto(), Duration::from_secs(1)); // 100 ms + 4·50 ms, raised to min_rto
/// ```
#[derive(Clone, Debug)]
pub struct RttEstimator {
    config: RttConfig,
    /// All in µs; `None` until the first sample.
    latest: Option<u64>,
    smoothed: Option<u64>,
    var: u64,
    min: Option<u64>,
    samples: u64,
    /// RTO doublings since the last sample (RFC 6298 §5.5), at most [`MAX_BACKOFF_EXPONENT`].
    backoff: u32,
    /// [`RttEstimator::rto`] in µs, recomputed whenever an input changes (it is read for every
    /// datagram sent and received, and changes only with a sample or a timeout).
    rto: u64,
}

impl RttEstimator {
    /// An estimator with no samples yet.
    pub fn new(config: RttConfig) -> Self {
        let mut e = Self {
            config,
            latest: None,
            smoothed: None,
            var: 0,
            min: None,
            samples: 0,
            backoff: 0,
            rto: 0,
        };
        e.rto = duration_micros(e.compute_rto());
        e
    }

    /// Feeds one RTT measurement (RFC 6298 §2.2–§2.3) and clears any timeout backoff.
    ///
    /// Only feed samples from sends that were never retransmitted (Karn's algorithm): the
    /// caller knows which chunks it resent, the estimator does not.
    pub fn update(&mut self, sample: Duration) {
        let r = duration_micros(sample);
        self.latest = Some(r);
        self.min = Some(self.min.map_or(r, |m| m.min(r)));
        self.samples = self.samples.saturating_add(1);
        self.backoff = 0;
        match self.smoothed {
            None => {
                // §2.2: SRTT <- R, RTTVAR <- R/2.
                self.smoothed = Some(r);
                self.var = r / 2;
            }
            Some(srtt) => {
                // §2.3, in this order: RTTVAR uses the old SRTT. u128 keeps 3·x and 7·x exact.
                let delta = srtt.abs_diff(r);
                self.var = ((3 * u128::from(self.var) + u128::from(delta)) / 4) as u64;
                self.smoothed = Some(((7 * u128::from(srtt) + u128::from(r)) / 8) as u64);
            }
        }
        self.rto = duration_micros(self.compute_rto());
    }

    /// Doubles the RTO after a timer expiry (RFC 6298 §5.5), up to [`RttConfig::max_rto`].
    ///
    /// The backoff holds until the next sample (§5.7 and Karn's algorithm).
    pub fn on_timeout(&mut self) {
        self.backoff = (self.backoff + 1).min(MAX_BACKOFF_EXPONENT);
        self.rto = duration_micros(self.compute_rto());
    }

    /// The most recent sample, if any.
    pub fn latest(&self) -> Option<Duration> {
        self.latest.map(Duration::from_micros)
    }

    /// The smoothed RTT (SRTT), if there has been a sample.
    pub fn smoothed(&self) -> Option<Duration> {
        self.smoothed.map(Duration::from_micros)
    }

    /// The RTT variation (RTTVAR), if there has been a sample.
    pub fn variation(&self) -> Option<Duration> {
        self.smoothed.map(|_| Duration::from_micros(self.var))
    }

    /// The smallest sample ever seen, if any.
    pub fn min(&self) -> Option<Duration> {
        self.min.map(Duration::from_micros)
    }

    /// How many samples have been fed.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// How many times the RTO has been doubled since the last sample.
    pub fn backoff_exponent(&self) -> u32 {
        self.backoff
    }

    /// The retransmission timeout without backoff: SRTT + max(G, 4·RTTVAR), within
    /// `[min_rto, max_rto]`, or the initial RTO before the first sample.
    pub fn base_rto(&self) -> Duration {
        let us = match self.smoothed {
            None => duration_micros(self.config.initial_rto),
            Some(srtt) => {
                let spread =
                    duration_micros(self.config.granularity).max(self.var.saturating_mul(4));
                srtt.saturating_add(spread)
                    .max(duration_micros(self.config.min_rto))
            }
        };
        Duration::from_micros(us).min(self.config.max_rto)
    }

    /// The retransmission timeout: [`RttEstimator::base_rto`] doubled once per
    /// [`RttEstimator::on_timeout`] since the last sample, capped at [`RttConfig::max_rto`].
    pub fn rto(&self) -> Duration {
        Duration::from_micros(self.rto)
    }

    fn compute_rto(&self) -> Duration {
        let base = duration_micros(self.base_rto());
        let backed_off = base.saturating_mul(1u64 << self.backoff);
        Duration::from_micros(backed_off).min(self.config.max_rto)
    }

    /// The smoothed RTT, or `default` before the first sample.
    pub fn smoothed_or(&self, default: Duration) -> Duration {
        self.smoothed().unwrap_or(default)
    }

    /// The configuration.
    pub fn config(&self) -> &RttConfig {
        &self.config
    }
}

impl Default for RttEstimator {
    fn default() -> Self {
        Self::new(RttConfig::new())
    }
}

/// RFC 6298 §2.5 and RFC 6817 §2.4.2: a cap on the RTO/CTO must be at least 60 s.
const MIN_MAX_RTO: Duration = Duration::from_secs(60);

/// Backoff doublings beyond this change nothing (2^32 × 1 µs is over an hour, past any cap
/// that makes sense) and could overflow the shift.
const MAX_BACKOFF_EXPONENT: u32 = 32;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ms(x: u64) -> Duration {
        Duration::from_millis(x)
    }

    fn fast() -> RttEstimator {
        let mut cfg = RttConfig::new();
        cfg.min_rto(Duration::ZERO);
        RttEstimator::new(cfg)
    }

    #[test]
    fn no_sample_uses_initial_rto() {
        let rtt = RttEstimator::default();
        assert_eq!(rtt.latest(), None);
        assert_eq!(rtt.smoothed(), None);
        assert_eq!(rtt.variation(), None);
        assert_eq!(rtt.min(), None);
        assert_eq!(rtt.samples(), 0);
        assert_eq!(rtt.rto(), Duration::from_secs(1));
        assert_eq!(rtt.smoothed_or(ms(300)), ms(300));
    }

    #[test]
    fn first_sample_sets_srtt_and_half_var() {
        let mut rtt = fast();
        rtt.update(ms(100));
        assert_eq!(rtt.latest(), Some(ms(100)));
        assert_eq!(rtt.smoothed(), Some(ms(100)));
        assert_eq!(rtt.variation(), Some(ms(50)));
        assert_eq!(rtt.min(), Some(ms(100)));
        // 100 + 4·50
        assert_eq!(rtt.rto(), ms(300));
    }

    #[test]
    fn later_samples_follow_rfc6298_weights() {
        let mut rtt = fast();
        rtt.update(ms(100));
        rtt.update(ms(200));
        // RTTVAR = ¾·50 + ¼·|100 − 200| = 62.5 ms; SRTT = ⅞·100 + ⅛·200 = 112.5 ms.
        assert_eq!(rtt.variation(), Some(Duration::from_micros(62_500)));
        assert_eq!(rtt.smoothed(), Some(Duration::from_micros(112_500)));
        assert_eq!(rtt.latest(), Some(ms(200)));
        assert_eq!(rtt.min(), Some(ms(100)));
        assert_eq!(rtt.rto(), Duration::from_micros(112_500 + 250_000));
        rtt.update(ms(50));
        assert_eq!(rtt.min(), Some(ms(50)));
        assert_eq!(rtt.samples(), 3);
    }

    #[test]
    fn steady_samples_converge_and_granularity_floors_spread() {
        let mut rtt = fast();
        for _ in 0..200 {
            rtt.update(ms(40));
        }
        assert_eq!(rtt.smoothed(), Some(ms(40)));
        assert_eq!(rtt.variation(), Some(Duration::ZERO));
        // SRTT + G
        assert_eq!(rtt.rto(), ms(41));
    }

    #[test]
    fn min_rto_applies_by_default() {
        let mut rtt = RttEstimator::default();
        rtt.update(ms(10));
        assert_eq!(rtt.rto(), Duration::from_secs(1));
    }

    #[test]
    fn backoff_doubles_until_cap_and_sample_clears_it() {
        let mut rtt = RttEstimator::default();
        let mut expected = 1;
        for _ in 0..10 {
            assert_eq!(rtt.rto(), Duration::from_secs(expected.min(60)));
            rtt.on_timeout();
            expected *= 2;
        }
        assert_eq!(rtt.rto(), Duration::from_secs(60));
        for _ in 0..100 {
            rtt.on_timeout();
        }
        assert_eq!(rtt.rto(), Duration::from_secs(60));
        assert_eq!(rtt.backoff_exponent(), MAX_BACKOFF_EXPONENT);
        rtt.update(ms(100));
        assert_eq!(rtt.backoff_exponent(), 0);
        assert_eq!(rtt.rto(), Duration::from_secs(1));
    }

    #[test]
    fn max_rto_cannot_go_below_sixty_seconds() {
        let mut cfg = RttConfig::new();
        cfg.max_rto(Duration::from_secs(5));
        assert_eq!(cfg.max_rto, Duration::from_secs(60));
        cfg.max_rto(Duration::from_secs(120));
        assert_eq!(cfg.max_rto, Duration::from_secs(120));
        let mut rtt = RttEstimator::new(cfg);
        rtt.update(Duration::from_secs(100));
        assert_eq!(rtt.rto(), Duration::from_secs(120));
    }

    #[test]
    fn config_setters() {
        let mut cfg = RttConfig::default();
        cfg.initial_rto(Duration::ZERO)
            .min_rto(ms(200))
            .granularity(ms(2));
        assert_eq!(cfg.initial_rto, Duration::from_micros(1));
        assert_eq!(cfg.min_rto, ms(200));
        assert_eq!(cfg.granularity, ms(2));
        let rtt = RttEstimator::new(cfg);
        assert_eq!(rtt.config(), &cfg);
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_bounded(samples in proptest::collection::vec(any::<u64>(), 1..64), timeouts in 0u32..80) {
            let mut rtt = RttEstimator::default();
            for &s in &samples {
                rtt.update(Duration::from_micros(s));
                let rto = rtt.rto();
                prop_assert!(rto >= Duration::from_secs(1) && rto <= Duration::from_secs(60));
                prop_assert!(rtt.min() <= rtt.latest());
            }
            for _ in 0..timeouts {
                rtt.on_timeout();
                prop_assert!(rtt.rto() <= Duration::from_secs(60));
            }
            let lo = samples.iter().min().copied().unwrap_or(0);
            let hi = samples.iter().max().copied().unwrap_or(0);
            let srtt = rtt.smoothed().map(duration_micros).unwrap_or(0);
            prop_assert!(lo <= srtt && srtt <= hi);
        }
    }
}
