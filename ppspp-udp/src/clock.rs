//! The real clock, as the engine sees it.

use std::time::{SystemTime, UNIX_EPOCH};

use ppspp_core::time::Instant;

/// Maps the monotonic operating-system clock onto the engine's [`Instant`] (microseconds
/// since the moment the clock was made), and remembers the wall-clock time of that moment
/// for [`EndpointConfig::unix_time_at_zero`](ppspp_core::EndpointConfig::unix_time_at_zero).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: std::time::Instant,
    unix_at_start: u64,
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        let start = std::time::Instant::now();
        let unix_at_start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        Self {
            start,
            unix_at_start,
        }
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        self.to_instant(std::time::Instant::now())
    }

    /// The engine instant of an operating-system instant (the epoch if it is earlier).
    pub fn to_instant(&self, t: std::time::Instant) -> Instant {
        let us = t.saturating_duration_since(self.start).as_micros();
        Instant::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
    }

    /// The operating-system instant of an engine instant.
    pub fn to_std(&self, t: Instant) -> std::time::Instant {
        let far = std::time::Duration::from_secs(365 * 24 * 3600);
        self.start
            .checked_add(std::time::Duration::from_micros(t.as_micros()))
            .unwrap_or(self.start + far)
    }

    /// Microseconds since the Unix epoch at this clock's epoch.
    pub fn unix_micros_at_zero(&self) -> u64 {
        self.unix_at_start
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
