//! Time as the protocol engine sees it: an [`Instant`] handed in by the driver.
//!
//! `ppspp-core` never reads a clock. Every input and every command takes `now: Instant`, and
//! every timeout the core reports is an absolute `Instant` (compare smoltcp's `time.rs` and
//! s2n-quic's `Timestamp`). The rules for drivers:
//!
//! - **Time is an argument.** The driver picks an arbitrary epoch (process start, simulation
//!   start, …) and passes microseconds since that epoch. Only differences between instants
//!   carry meaning; the epoch itself never does. Minute boundaries used by LEDBAT's base-delay
//!   history ([`crate::congestion::ledbat`]) are minutes of this clock, so they are offset from
//!   wall-clock minutes by the epoch, which is harmless.
//! - **Time never decreases.** Consecutive calls must pass non-decreasing instants. The core
//!   does not panic if a driver breaks this rule: every difference below saturates at zero.
//! - **Spans are [`core::time::Duration`]** (re-exported here as [`Duration`]). Arithmetic
//!   between the two saturates at [`Instant::ZERO`] and [`Instant::MAX`] instead of panicking
//!   or wrapping, so a driver feeding extreme values gets extreme but well-defined results.
//!
//! A `u64` of microseconds covers about 584,000 years, so saturation is never reached by a
//! real clock.

use core::ops::{Add, AddAssign, Sub, SubAssign};

pub use core::time::Duration;

/// A point in time: microseconds since an arbitrary epoch chosen by the driver.
///
/// Create one with [`Instant::from_micros`] (or the `from_millis`/`from_secs` helpers). The
/// default value is [`Instant::ZERO`], the epoch itself.
///
/// ```
/// use ppspp_core::time::{Duration, Instant};
///
/// let t0 = Instant::from_millis(1_500);
/// let t1 = t0 + Duration::from_millis(250);
/// assert_eq!(t1.as_micros(), 1_750_000);
/// assert_eq!(t1 - t0, Duration::from_millis(250));
/// assert_eq!(t0 - t1, Duration::ZERO); // saturates, never panics
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The epoch (0 µs).
    pub const ZERO: Self = Self(0);
    /// The latest representable instant. Useful as "never" in timer comparisons.
    pub const MAX: Self = Self(u64::MAX);

    /// The instant `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// The instant `millis` milliseconds after the epoch (saturating at [`Instant::MAX`]).
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis.saturating_mul(1_000))
    }

    /// The instant `secs` seconds after the epoch (saturating at [`Instant::MAX`]).
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// `self + d`, or `None` if that is past [`Instant::MAX`].
    pub const fn checked_add(self, d: Duration) -> Option<Self> {
        match self.0.checked_add(duration_micros(d)) {
            Some(us) => Some(Self(us)),
            None => None,
        }
    }

    /// `self - d`, or `None` if that is before the epoch.
    pub const fn checked_sub(self, d: Duration) -> Option<Self> {
        match self.0.checked_sub(duration_micros(d)) {
            Some(us) => Some(Self(us)),
            None => None,
        }
    }

    /// `self + d`, saturating at [`Instant::MAX`].
    pub const fn saturating_add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(duration_micros(d)))
    }

    /// `self - d`, saturating at [`Instant::ZERO`].
    pub const fn saturating_sub(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(duration_micros(d)))
    }

    /// The time elapsed from `earlier` to `self`, or `None` if `earlier` is later than `self`.
    pub const fn checked_duration_since(self, earlier: Self) -> Option<Duration> {
        match self.0.checked_sub(earlier.0) {
            Some(us) => Some(Duration::from_micros(us)),
            None => None,
        }
    }

    /// The time elapsed from `earlier` to `self`, or zero if `earlier` is later than `self`.
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

/// Saturating `Instant + Duration`.
impl Add<Duration> for Instant {
    type Output = Self;

    fn add(self, rhs: Duration) -> Self {
        self.saturating_add(rhs)
    }
}

/// Saturating `Instant += Duration`.
impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = self.saturating_add(rhs);
    }
}

/// Saturating `Instant - Duration` (never before the epoch).
impl Sub<Duration> for Instant {
    type Output = Self;

    fn sub(self, rhs: Duration) -> Self {
        self.saturating_sub(rhs)
    }
}

/// Saturating `Instant -= Duration` (never before the epoch).
impl SubAssign<Duration> for Instant {
    fn sub_assign(&mut self, rhs: Duration) {
        *self = self.saturating_sub(rhs);
    }
}

/// `later - earlier`: the span between two instants, zero if `earlier` is the later one.
impl Sub<Self> for Instant {
    type Output = Duration;

    fn sub(self, rhs: Self) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

/// A duration in whole microseconds (sub-microsecond parts are dropped), saturating at
/// `u64::MAX` for durations longer than about 584,000 years.
pub const fn duration_micros(d: Duration) -> u64 {
    let us = d.as_micros();
    if us > u64::MAX as u128 {
        u64::MAX
    } else {
        us as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_and_accessors() {
        assert_eq!(Instant::ZERO.as_micros(), 0);
        assert_eq!(Instant::default(), Instant::ZERO);
        assert_eq!(Instant::MAX.as_micros(), u64::MAX);
        assert_eq!(Instant::from_micros(42).as_micros(), 42);
        assert_eq!(Instant::from_millis(3).as_micros(), 3_000);
        assert_eq!(Instant::from_secs(2).as_micros(), 2_000_000);
        assert_eq!(Instant::from_secs(u64::MAX), Instant::MAX);
        assert_eq!(Instant::from_millis(u64::MAX), Instant::MAX);
    }

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_micros(1_000);
        assert_eq!(t + Duration::from_micros(500), Instant::from_micros(1_500));
        assert_eq!(t - Duration::from_micros(500), Instant::from_micros(500));
        assert_eq!(t - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(Instant::MAX + Duration::from_micros(1), Instant::MAX);
        assert_eq!(t + Duration::MAX, Instant::MAX);
        assert_eq!(t.checked_add(Duration::MAX), None);
        assert_eq!(t.checked_sub(Duration::from_micros(1_001)), None);
        assert_eq!(
            t.checked_sub(Duration::from_micros(1_000)),
            Some(Instant::ZERO)
        );
        let mut u = t;
        u += Duration::from_millis(1);
        assert_eq!(u, Instant::from_micros(2_000));
        u -= Duration::from_millis(5);
        assert_eq!(u, Instant::ZERO);
    }

    #[test]
    fn sub_nanos_are_truncated() {
        let t = Instant::from_micros(10);
        assert_eq!(t + Duration::from_nanos(1_999), Instant::from_micros(11));
    }

    #[test]
    fn durations_between_instants() {
        let a = Instant::from_micros(100);
        let b = Instant::from_micros(350);
        assert_eq!(b - a, Duration::from_micros(250));
        assert_eq!(a - b, Duration::ZERO);
        assert_eq!(
            b.checked_duration_since(a),
            Some(Duration::from_micros(250))
        );
        assert_eq!(a.checked_duration_since(b), None);
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
        assert_eq!(
            Instant::MAX - Instant::ZERO,
            Duration::from_micros(u64::MAX)
        );
    }

    #[test]
    fn ordering_follows_micros() {
        assert!(Instant::from_micros(1) < Instant::from_micros(2));
        assert!(Instant::ZERO < Instant::MAX);
        assert_eq!(
            Instant::from_micros(7).max(Instant::from_micros(3)),
            Instant::from_micros(7)
        );
    }

    #[test]
    fn duration_micros_saturates() {
        assert_eq!(duration_micros(Duration::from_millis(2)), 2_000);
        assert_eq!(duration_micros(Duration::MAX), u64::MAX);
        assert_eq!(duration_micros(Duration::from_nanos(999)), 0);
    }
}
