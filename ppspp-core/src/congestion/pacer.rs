//! Pacing: spreading a congestion window over a round trip instead of bursting it out.
//!
//! A window-based controller says *how much* may be in flight, not *when* to send it. Sending a
//! whole window back to back fills the bottleneck queue in one burst, which inflates exactly
//! the one-way delay LEDBAT tries to keep at its target and causes needless drops at small
//! buffers. [`Pacer`] is a token bucket in front of the window:
//!
//! - tokens (bytes) accrue at the pacing [`Rate`], `gain × cwnd / SRTT`, with a gain above 1
//!   ([`PacerConfig::gain_percent`], default 125 %; 200 % in slow start so that pacing never
//!   holds back the doubling) so that pacing alone never keeps the window from being used;
//! - the bucket holds [`PacerConfig::burst_datagrams`] datagrams (default 10), or what the
//!   rate earns in [`PacerConfig::burst_interval`] (default 2 ms) if that is more, so a short
//!   burst goes out at once but an idle period does not accumulate unlimited credit;
//! - before the first RTT sample there is no rate and nothing is paced.
//!
//! Why the bucket grows with the rate: a driver's timer is coarse (epoll sleeps in whole
//! milliseconds) and waking up costs a system call or two. At hundreds of MB/s, 10 datagrams
//! are earned in tens of microseconds, so a 10-datagram bucket would make the driver either
//! spin until each next datagram is due or oversleep and lose the credit it earned meanwhile
//! (capping the rate at 10 datagrams per timer tick). A bucket of 2 ms at the pacing rate lets
//! a driver sleep a whole tick, then send what accrued in one batch (one GSO system call);
//! the added burst is at most 2 ms of queue at a bottleneck running at the pacing rate, far
//! below LEDBAT's 100 ms target. This is the same trade-off as TCP's TSO autosizing (about
//! 1 ms of data per burst).
//!
//! The pacer is a pure function of its inputs: it never reads a clock, and
//! [`Pacer::next_send_time`] returns an absolute [`Instant`] the driver can put in its timer
//! heap. Token arithmetic is fixed-point (1/65536 byte), so rounding never drifts the rate.

use crate::time::{Duration, Instant, duration_micros};

/// How a [`Pacer`] behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PacerConfig {
    burst_datagrams: u64,
    burst_interval: Duration,
    gain_percent: u32,
    slow_start_gain_percent: u32,
}

impl PacerConfig {
    /// The default: bursts of up to 10 datagrams or 2 ms at the pacing rate, whichever is
    /// more; pacing gain 125 %, 200 % in slow start.
    pub const fn new() -> Self {
        Self {
            burst_datagrams: 10,
            burst_interval: Duration::from_millis(2),
            gain_percent: 125,
            slow_start_gain_percent: 200,
        }
    }

    /// How many full-size datagrams may leave back to back (the bucket size). At least 1.
    pub fn burst_datagrams(&mut self, datagrams: u64) -> &mut Self {
        self.burst_datagrams = datagrams.max(1);
        self
    }

    /// At high rates the bucket holds what the pacing rate earns in this long, if that is
    /// more than [`PacerConfig::burst_datagrams`] (default 2 ms; at most 100 ms). It should
    /// exceed the driver's timer granularity (see the module docs); zero keeps the bucket at
    /// `burst_datagrams`.
    pub fn burst_interval(&mut self, interval: Duration) -> &mut Self {
        self.burst_interval = interval.min(Duration::from_millis(100));
        self
    }

    /// The pacing rate as a percentage of `cwnd / SRTT` outside slow start (default 125).
    /// Values below 100 would keep the window from ever being used and are raised to 100.
    pub fn gain_percent(&mut self, percent: u32) -> &mut Self {
        self.gain_percent = percent.max(100);
        self
    }

    /// The pacing rate as a percentage of `cwnd / SRTT` during slow start (default 200, so
    /// the window can double in one round trip). At least 100.
    pub fn slow_start_gain_percent(&mut self, percent: u32) -> &mut Self {
        self.slow_start_gain_percent = percent.max(100);
        self
    }
}

impl Default for PacerConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// A sending rate: `bytes` per `per`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rate {
    bytes: u64,
    per_micros: u64,
}

impl Rate {
    /// `bytes` per `per`, or `None` if either is zero (below one microsecond for `per`).
    pub fn new(bytes: u64, per: Duration) -> Option<Self> {
        let per_micros = duration_micros(per);
        (bytes > 0 && per_micros > 0).then_some(Self { bytes, per_micros })
    }

    /// `gain_percent`% of `window` per `srtt`: the pacing rate of a window-based controller.
    pub fn from_window(window: u64, srtt: Duration, gain_percent: u32) -> Option<Self> {
        let bytes = mul_div(u128::from(window), u128::from(gain_percent), 100);
        Self::new(u64::try_from(bytes).unwrap_or(u64::MAX), srtt)
    }

    /// The bytes this rate earns in `span` (saturating, rounded down).
    pub fn bytes_in(&self, span: Duration) -> u64 {
        let b = mul_div(
            u128::from(self.bytes),
            u128::from(duration_micros(span)),
            u128::from(self.per_micros),
        );
        u64::try_from(b).unwrap_or(u64::MAX)
    }

    /// The rate in bytes per second (saturating).
    pub fn bytes_per_second(&self) -> u64 {
        let bps = mul_div(
            u128::from(self.bytes),
            1_000_000,
            u128::from(self.per_micros),
        );
        u64::try_from(bps).unwrap_or(u64::MAX)
    }
}

/// A token-bucket pacer (see the module docs).
///
/// ```
/// use ppspp_core::congestion::pacer::{Pacer, PacerConfig, Rate};
/// use ppspp_core::time::{Duration, Instant};
///
/// let mss = 1_000;
/// let mut pacer = Pacer::new(&PacerConfig::new(), mss, Instant::ZERO);
/// // 100 datagrams per 100 ms: one every millisecond once the burst of 10 is spent.
/// let rate = Rate::new(100 * mss, Duration::from_millis(100));
/// let mut now = Instant::ZERO;
/// for _ in 0..10 {
///     assert_eq!(pacer.next_send_time(now, mss, rate), now);
///     pacer.on_sent(now, mss, rate);
/// }
/// now = pacer.next_send_time(now, mss, rate);
/// assert_eq!(now, Instant::from_millis(1));
/// ```
#[derive(Clone, Debug)]
pub struct Pacer {
    config: PacerConfig,
    /// The smallest bucket size in bytes (`burst_datagrams` of `mss`).
    capacity: u64,
    /// Current tokens as of `last`, in 1/65536 bytes.
    tokens: u128,
    last: Instant,
}

impl Pacer {
    /// A pacer for datagrams of up to `mss` bytes; the bucket starts full.
    pub fn new(config: &PacerConfig, mss: u64, now: Instant) -> Self {
        let capacity = config.burst_datagrams.saturating_mul(mss.max(1));
        Self {
            config: *config,
            capacity,
            tokens: u128::from(capacity) << FRACTION_BITS,
            last: now,
        }
    }

    /// Records that `bytes` left at `now`, spending tokens (never below zero).
    ///
    /// With `rate` `None` (no RTT sample yet) nothing is paced and the bucket stays full.
    pub fn on_sent(&mut self, now: Instant, bytes: u64, rate: Option<Rate>) {
        let available = match rate {
            Some(rate) => self.tokens_at(now, rate),
            None => self.full(None),
        };
        self.tokens = available.saturating_sub(u128::from(bytes) << FRACTION_BITS);
        self.last = self.last.max(now);
    }

    /// The earliest instant at which a datagram of `bytes` may leave; `now` if it may leave
    /// immediately. A datagram larger than the bucket waits for a full bucket.
    pub fn next_send_time(&self, now: Instant, bytes: u64, rate: Option<Rate>) -> Instant {
        let Some(rate) = rate else {
            return now;
        };
        let need = u128::from(bytes.min(self.capacity_at(Some(rate)))) << FRACTION_BITS;
        let have = self.tokens_at(now, rate);
        if have >= need {
            return now;
        }
        // Tokens accrue at rate.bytes·2^16 per rate.per_micros; round the wait up so that the
        // returned instant really has enough tokens.
        let per_micro = u128::from(rate.bytes) << FRACTION_BITS;
        let wait = mul_div_ceil(need - have, u128::from(rate.per_micros), per_micro);
        now + Duration::from_micros(u64::try_from(wait).unwrap_or(u64::MAX))
    }

    /// The tokens (bytes) available at `now` at `rate`.
    pub fn tokens(&self, now: Instant, rate: Option<Rate>) -> u64 {
        let fp = match rate {
            Some(rate) => self.tokens_at(now, rate),
            None => self.full(None),
        };
        (fp >> FRACTION_BITS) as u64
    }

    /// The smallest bucket size in bytes: [`PacerConfig::burst_datagrams`] datagrams.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The bucket size in bytes at `rate`: [`Pacer::capacity`], or what `rate` earns in
    /// [`PacerConfig::burst_interval`] if that is more.
    pub fn capacity_at(&self, rate: Option<Rate>) -> u64 {
        match rate {
            Some(r) => self.capacity.max(r.bytes_in(self.config.burst_interval)),
            None => self.capacity,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PacerConfig {
        &self.config
    }

    /// The pacing rate for `window` bytes per `srtt`, with the slow-start or the normal gain.
    pub fn rate(&self, window: u64, srtt: Option<Duration>, slow_start: bool) -> Option<Rate> {
        let gain = if slow_start {
            self.config.slow_start_gain_percent
        } else {
            self.config.gain_percent
        };
        Rate::from_window(window, srtt?, gain)
    }

    fn full(&self, rate: Option<Rate>) -> u128 {
        u128::from(self.capacity_at(rate)) << FRACTION_BITS
    }

    fn tokens_at(&self, now: Instant, rate: Rate) -> u128 {
        let elapsed = u128::from(duration_micros(now.saturating_duration_since(self.last)));
        let added = mul_div(
            elapsed,
            u128::from(rate.bytes) << FRACTION_BITS,
            u128::from(rate.per_micros),
        );
        self.tokens.saturating_add(added).min(self.full(Some(rate)))
    }
}

/// Fractional bits of the token count.
const FRACTION_BITS: u32 = 16;

/// `a · b / c` (`c > 0`; the product saturates), in 64-bit arithmetic when the operands and
/// the product fit: the same result, at a fraction of a 128-bit division's cost (the pacer
/// runs for every datagram sent).
fn mul_div(a: u128, b: u128, c: u128) -> u128 {
    if let (Ok(a), Ok(b), Ok(c)) = (u64::try_from(a), u64::try_from(b), u64::try_from(c)) {
        if let Some(p) = a.checked_mul(b) {
            return u128::from(p / c);
        }
    }
    a.saturating_mul(b) / c
}

/// `a · b / c` rounded up (`c > 0`; the product saturates); see [`mul_div`].
fn mul_div_ceil(a: u128, b: u128, c: u128) -> u128 {
    if let (Ok(a), Ok(b), Ok(c)) = (u64::try_from(a), u64::try_from(b), u64::try_from(c)) {
        if let Some(p) = a.checked_mul(b) {
            return u128::from(p.div_ceil(c));
        }
    }
    a.saturating_mul(b).div_ceil(c)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MSS: u64 = 1_024;

    proptest! {
        #[test]
        fn mul_div_matches_128_bit_arithmetic(
            a in prop_oneof![0u128..1 << 40, any::<u64>().prop_map(u128::from), any::<u128>()],
            b in prop_oneof![0u128..1 << 30, any::<u64>().prop_map(u128::from)],
            c in 1u128..u128::from(u64::MAX),
        ) {
            prop_assert_eq!(mul_div(a, b, c), a.saturating_mul(b) / c);
            prop_assert_eq!(mul_div_ceil(a, b, c), a.saturating_mul(b).div_ceil(c));
        }
    }

    /// Sends `count` datagrams as early as the pacer allows, starting at `start`; returns the
    /// instant the last one left.
    fn send_paced(pacer: &mut Pacer, start: Instant, count: u64, rate: Option<Rate>) -> Instant {
        let mut now = start;
        for _ in 0..count {
            now = now.max(pacer.next_send_time(now, MSS, rate));
            pacer.on_sent(now, MSS, rate);
        }
        now
    }

    #[test]
    fn full_window_takes_about_one_rtt() {
        let srtt = Duration::from_millis(100);
        for window_mss in [20, 64, 100, 1_000] {
            let cfg = PacerConfig::new();
            let mut pacer = Pacer::new(&cfg, MSS, Instant::ZERO);
            let rate = pacer.rate(window_mss * MSS, Some(srtt), false);
            let end = send_paced(&mut pacer, Instant::ZERO, window_mss, rate);
            // (window − burst) at 1.25·window per RTT; the bucket starts with 10 datagrams.
            let expect_us = (window_mss - 10) * 100_000 * 100 / (125 * window_mss);
            let got = end.as_micros();
            assert!(
                got.abs_diff(expect_us) <= 2,
                "{window_mss}: {got} vs {expect_us}"
            );
            assert!(end >= Instant::from_millis(40) && end <= Instant::from_millis(100));
        }
    }

    #[test]
    fn slow_start_gain_is_faster() {
        let srtt = Duration::from_millis(100);
        let mut a = Pacer::new(&PacerConfig::new(), MSS, Instant::ZERO);
        let mut b = a.clone();
        let ra = a.rate(100 * MSS, Some(srtt), false);
        let rb = b.rate(100 * MSS, Some(srtt), true);
        let ta = send_paced(&mut a, Instant::ZERO, 100, ra);
        let tb = send_paced(&mut b, Instant::ZERO, 100, rb);
        assert_eq!(ta, Instant::from_micros(72_000));
        assert_eq!(tb, Instant::from_micros(45_000));
    }

    #[test]
    fn idle_time_does_not_accumulate_unlimited_credit() {
        let mut pacer = Pacer::new(&PacerConfig::new(), MSS, Instant::ZERO);
        let rate = Rate::new(100 * MSS, Duration::from_millis(100)); // 1 datagram / ms
        let t = send_paced(&mut pacer, Instant::ZERO, 50, rate);
        // Idle for ten seconds: credit for 10 000 datagrams, but the bucket holds 10.
        let later = t + Duration::from_secs(10);
        assert_eq!(pacer.tokens(later, rate), 10 * MSS);
        let mut burst = 0;
        while pacer.next_send_time(later, MSS, rate) == later {
            pacer.on_sent(later, MSS, rate);
            burst += 1;
        }
        assert_eq!(burst, 10);
        assert_eq!(
            pacer.next_send_time(later, MSS, rate),
            later + Duration::from_millis(1)
        );
    }

    #[test]
    fn fast_rates_get_a_bucket_of_the_burst_interval() {
        let mut pacer = Pacer::new(&PacerConfig::new(), MSS, Instant::ZERO);
        // 100 MB/s: 2 ms earn 200 000 bytes, far more than 10 datagrams.
        let rate = Rate::new(100_000_000, Duration::from_secs(1));
        assert_eq!(pacer.capacity_at(rate), 200_000);
        assert_eq!(pacer.capacity_at(None), 10 * MSS);
        let t = send_paced(&mut pacer, Instant::ZERO, 500, rate);
        // A driver that oversleeps by a 1 ms timer tick loses nothing: the credit is kept.
        let later = t + Duration::from_millis(1);
        let tokens = pacer.tokens(later, rate);
        assert!((100_000..100_000 + MSS).contains(&tokens), "{tokens}");
        // An idle flow still gets at most the bucket.
        assert_eq!(pacer.tokens(later + Duration::from_secs(1), rate), 200_000);
        // Slow rates keep the 10-datagram bucket; zero interval always does.
        let slow = Rate::new(100 * MSS, Duration::from_millis(100));
        assert_eq!(pacer.capacity_at(slow), 10 * MSS);
        let mut cfg = PacerConfig::new();
        cfg.burst_interval(Duration::ZERO);
        assert_eq!(
            Pacer::new(&cfg, MSS, Instant::ZERO).capacity_at(rate),
            10 * MSS
        );
    }

    #[test]
    fn no_rate_means_no_pacing() {
        let mut pacer = Pacer::new(&PacerConfig::new(), MSS, Instant::ZERO);
        for _ in 0..1_000 {
            assert_eq!(
                pacer.next_send_time(Instant::ZERO, MSS, None),
                Instant::ZERO
            );
            pacer.on_sent(Instant::ZERO, MSS, None);
        }
        assert_eq!(pacer.tokens(Instant::ZERO, None), pacer.capacity());
        assert_eq!(pacer.rate(10 * MSS, None, false), None);
        assert_eq!(Rate::new(0, Duration::from_millis(1)), None);
        assert_eq!(Rate::new(1, Duration::ZERO), None);
    }

    #[test]
    fn oversized_datagram_waits_for_full_bucket() {
        let mut cfg = PacerConfig::new();
        cfg.burst_datagrams(2);
        let mut pacer = Pacer::new(&cfg, MSS, Instant::ZERO);
        let rate = Rate::new(MSS, Duration::from_millis(1));
        pacer.on_sent(Instant::ZERO, 2 * MSS, rate);
        let t = pacer.next_send_time(Instant::ZERO, 10 * MSS, rate);
        assert_eq!(t, Instant::from_millis(2));
    }

    #[test]
    fn config_setters_clamp() {
        let mut cfg = PacerConfig::default();
        cfg.burst_datagrams(0)
            .gain_percent(50)
            .slow_start_gain_percent(10);
        assert_eq!(cfg.burst_datagrams, 1);
        assert_eq!(cfg.gain_percent, 100);
        assert_eq!(cfg.slow_start_gain_percent, 100);
    }

    #[test]
    fn rate_conversions() {
        let r = Rate::from_window(10_000, Duration::from_millis(100), 125).unwrap();
        assert_eq!(r.bytes_per_second(), 125_000);
        let huge = Rate::from_window(u64::MAX, Duration::from_micros(1), 200).unwrap();
        assert_eq!(huge.bytes_per_second(), u64::MAX);
    }

    proptest! {
        #[test]
        fn never_panics_and_respects_rate(
            window in 1u64..1 << 40,
            srtt_us in 1u64..10_000_000,
            steps in proptest::collection::vec((0u64..200_000, 1u64..=MSS), 1..100),
        ) {
            let mut pacer = Pacer::new(&PacerConfig::new(), MSS, Instant::ZERO);
            let rate = pacer.rate(window, Some(Duration::from_micros(srtt_us)), false);
            let mut now = Instant::ZERO;
            let mut sent = 0u128;
            for (gap, bytes) in steps {
                now += Duration::from_micros(gap);
                let t = pacer.next_send_time(now, bytes, rate);
                prop_assert!(t >= now);
                now = t;
                pacer.on_sent(now, bytes, rate);
                sent += u128::from(bytes);
                prop_assert!(pacer.tokens(now, rate) <= pacer.capacity_at(rate));
            }
            // Bytes sent never exceed the bucket plus what the rate allowed.
            let r = rate.unwrap();
            let allowed = u128::from(pacer.capacity_at(rate))
                + u128::from(now.as_micros()) * u128::from(r.bytes) / u128::from(r.per_micros)
                + 1;
            prop_assert!(sent <= allowed, "{} > {}", sent, allowed);
        }
    }
}
