//! Viewers who play: each leecher plays the content at a bitrate while it downloads, from a
//! playback buffer, as a media player would, and may seek. The engine is told where the
//! player is ([`ppspp_core::Endpoint::set_playback`]), so it fetches what the player needs
//! first. Measured per viewer: the startup delay (join to first frame), stalls (the buffer ran
//! dry) and their duration, and the latency of each seek.

use ppspp_core::time::{Duration, Instant};
use serde::Serialize;

use crate::report::Percentiles;

/// How viewers play (see [`crate::Scenario::viewing`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Viewing {
    /// The media's bitrate, bytes per second.
    pub bitrate: u64,
    /// Media time buffered ahead of the position before playback starts, or resumes after a
    /// stall or a seek (capped by what is left of the content).
    pub start_buffer: Duration,
    /// A seek: this long after playback started, the viewer jumps to this fraction of the
    /// content (0..1).
    pub seek: Option<(Duration, f64)>,
    /// How often players advance (the resolution of the measurements).
    pub tick: Duration,
    /// Players tell their engine where they are ([`ppspp_core::Endpoint::set_playback`]);
    /// without it the engine picks as it would for a download (the baseline).
    pub tell_engine: bool,
}

impl Viewing {
    /// Plays at `bitrate` bytes per second from a 1 s buffer, no seek, 50 ms ticks.
    pub fn at(bitrate: u64) -> Self {
        Self {
            bitrate,
            start_buffer: Duration::from_secs(1),
            seek: None,
            tick: Duration::from_millis(50),
            tell_engine: true,
        }
    }
}

/// Where a player is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Buffering before the first frame, or after a seek (since when).
    Buffering { since: Instant, seek: bool },
    /// Playing.
    Playing,
    /// The buffer ran dry (since when).
    Stalled { since: Instant },
    /// Played to the end.
    Done,
}

/// One viewer's player.
#[derive(Clone, Debug)]
pub(crate) struct Player {
    state: State,
    /// The next byte to play.
    pos: u64,
    /// When playback first started.
    started: Option<Instant>,
    joined: Instant,
    /// The seek is still to come.
    seek_pending: bool,
    stalls: u32,
    stalled_for: Duration,
    seek_latencies: Vec<Duration>,
    last: Instant,
}

impl Player {
    /// A viewer who joins at `now`, from the start of the content.
    pub(crate) fn new(now: Instant, v: &Viewing) -> Self {
        Self {
            state: State::Buffering {
                since: now,
                seek: false,
            },
            pos: 0,
            started: None,
            joined: now,
            seek_pending: v.seek.is_some(),
            stalls: 0,
            stalled_for: Duration::ZERO,
            seek_latencies: Vec::new(),
            last: now,
        }
    }

    /// The chunk the player reads next.
    pub(crate) fn chunk(&self, chunk_size: u32) -> u64 {
        self.pos / u64::from(chunk_size.max(1))
    }

    /// The next byte to play.
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// Whether it played to the end.
    pub(crate) fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Advances the player to `now`, with `available` bytes playable from its position (the
    /// verified run there). Returns whether the position jumped (a seek): the engine must be
    /// told at once.
    pub(crate) fn advance(&mut self, now: Instant, v: &Viewing, len: u64, available: u64) -> bool {
        let dt = now.saturating_duration_since(self.last);
        self.last = now;
        let left = len.saturating_sub(self.pos);
        let need = bytes_for(v.bitrate, v.start_buffer).min(left);
        match self.state {
            State::Done => return false,
            State::Buffering { since, seek } => {
                if available >= need {
                    self.state = State::Playing;
                    if seek {
                        self.seek_latencies
                            .push(now.saturating_duration_since(since));
                    } else {
                        self.started.get_or_insert(now);
                    }
                }
            }
            State::Stalled { since } => {
                if available >= need {
                    self.stalled_for += now.saturating_duration_since(since);
                    self.state = State::Playing;
                }
            }
            State::Playing => {
                let step = bytes_for(v.bitrate, dt);
                if available >= step.min(left) {
                    self.pos += step.min(left);
                } else {
                    // The buffer ran dry within this tick.
                    self.pos += available;
                    self.stalls += 1;
                    self.state = State::Stalled { since: now };
                }
                if self.pos >= len {
                    self.state = State::Done;
                    return false;
                }
            }
        }
        if let (true, Some((after, to)), Some(started), State::Playing) =
            (self.seek_pending, v.seek, self.started, self.state)
        {
            if now.saturating_duration_since(started) >= after {
                self.seek_pending = false;
                self.pos = ((len as f64 * to.clamp(0.0, 1.0)) as u64).min(len.saturating_sub(1));
                self.state = State::Buffering {
                    since: now,
                    seek: true,
                };
                return true;
            }
        }
        false
    }

    /// Ends a run at `now`: a stall still on counts until now; a viewer still buffering its
    /// first frame counts as started now (its startup is the whole wait).
    pub(crate) fn finish(&mut self, now: Instant) -> ViewerStats {
        if let State::Stalled { since } = self.state {
            self.stalled_for += now.saturating_duration_since(since);
        }
        let started = self.started.unwrap_or(now);
        ViewerStats {
            startup_s: secs(started.saturating_duration_since(self.joined)),
            started: self.started.is_some(),
            stalls: self.stalls,
            stalled_s: secs(self.stalled_for),
            seek_latency_s: self.seek_latencies.iter().map(|&d| secs(d)).collect(),
        }
    }
}

/// Bytes played in `d` at `bitrate` bytes per second.
fn bytes_for(bitrate: u64, d: Duration) -> u64 {
    (u128::from(bitrate) * d.as_micros() / 1_000_000).min(u128::from(u64::MAX)) as u64
}

fn secs(d: Duration) -> f64 {
    (d.as_micros() as f64 / 1e3).round() / 1e3
}

/// One viewer's measurements.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ViewerStats {
    /// Join to first frame, seconds.
    pub startup_s: f64,
    /// Whether playback started before the run ended.
    pub started: bool,
    /// Times the buffer ran dry.
    pub stalls: u32,
    /// Time spent stalled, seconds.
    pub stalled_s: f64,
    /// Seek to first frame at the new position, seconds, per seek.
    pub seek_latency_s: Vec<f64>,
}

/// What the viewers saw (see [`crate::Scenario::viewing`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ViewingReport {
    /// The bitrate, bytes per second.
    pub bitrate: u64,
    /// Viewers.
    pub viewers: u32,
    /// Viewers whose playback never started.
    pub never_started: u32,
    /// Startup delay percentiles, seconds.
    pub startup_s: Percentiles,
    /// Stalls, all viewers together.
    pub stalls: u64,
    /// Viewers who stalled at least once.
    pub viewers_stalled: u32,
    /// Stalled time per viewer, seconds (percentiles).
    pub stalled_s: Percentiles,
    /// Seek latency percentiles, seconds (over every seek).
    pub seek_latency_s: Percentiles,
    /// Per viewer, in node order.
    pub per_viewer: Vec<ViewerStats>,
}

impl ViewingReport {
    pub(crate) fn build(bitrate: u64, per_viewer: Vec<ViewerStats>) -> Self {
        let pct = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            crate::report::percentiles(&v)
        };
        Self {
            bitrate,
            viewers: per_viewer.len() as u32,
            never_started: per_viewer.iter().filter(|v| !v.started).count() as u32,
            startup_s: pct(per_viewer.iter().map(|v| v.startup_s).collect()),
            stalls: per_viewer.iter().map(|v| u64::from(v.stalls)).sum(),
            viewers_stalled: per_viewer.iter().filter(|v| v.stalls > 0).count() as u32,
            stalled_s: pct(per_viewer.iter().map(|v| v.stalled_s).collect()),
            seek_latency_s: pct(per_viewer
                .iter()
                .flat_map(|v| v.seek_latency_s.iter().copied())
                .collect()),
            per_viewer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Viewing = Viewing {
        bitrate: 1000,
        start_buffer: Duration::from_secs(1),
        seek: None,
        tick: Duration::from_millis(100),
        tell_engine: true,
    };

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    #[test]
    fn starts_when_the_buffer_holds_and_stalls_when_it_runs_dry() {
        let mut p = Player::new(at(0), &V);
        // 500 bytes: half the start buffer.
        p.advance(at(100), &V, 10_000, 500);
        assert_eq!(
            p.state,
            State::Buffering {
                since: at(0),
                seek: false
            }
        );
        p.advance(at(200), &V, 10_000, 1000);
        assert_eq!(p.state, State::Playing);
        // 100 bytes a tick; 150 available: one tick plays, the next runs dry.
        p.advance(at(300), &V, 10_000, 150);
        assert_eq!(p.pos, 100);
        p.advance(at(400), &V, 10_000, 50);
        assert_eq!(p.pos, 150);
        assert_eq!(p.state, State::Stalled { since: at(400) });
        p.advance(at(900), &V, 10_000, 1000);
        assert_eq!(p.state, State::Playing);
        let s = p.finish(at(900));
        assert_eq!((s.startup_s, s.stalls, s.stalled_s), (0.2, 1, 0.5));
    }

    #[test]
    fn a_seek_jumps_and_is_timed() {
        let v = Viewing {
            seek: Some((Duration::from_millis(200), 0.5)),
            ..V
        };
        let mut p = Player::new(at(0), &v);
        assert!(!p.advance(at(100), &v, 10_000, 10_000));
        assert!(!p.advance(at(200), &v, 10_000, 10_000));
        assert!(p.advance(at(300), &v, 10_000, 10_000));
        assert_eq!(p.pos, 5000);
        p.advance(at(400), &v, 10_000, 0);
        p.advance(at(700), &v, 10_000, 1000);
        let s = p.finish(at(700));
        assert_eq!(s.seek_latency_s, vec![0.4]);
        assert_eq!(s.stalls, 0);
    }

    #[test]
    fn the_end_of_the_content_needs_no_full_buffer() {
        let mut p = Player::new(at(0), &V);
        // 300 bytes of content: 300 are enough to start.
        p.advance(at(100), &V, 300, 300);
        assert_eq!(p.state, State::Playing);
        for t in 2..6 {
            p.advance(at(t * 100), &V, 300, 300 - p.pos);
        }
        assert!(p.done());
    }
}
