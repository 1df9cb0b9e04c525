//! Progress reports for `ppspp get`: a bar on a terminal, plain periodic lines otherwise,
//! nothing with `--quiet`. Everything goes to stderr; stdout carries only results.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(2);

/// How progress is shown.
#[derive(Debug)]
pub struct Progress {
    kind: Kind,
    total: Option<u64>,
    done: u64,
    peers: usize,
    start: Instant,
    /// Rate estimate: (time, bytes) samples over the last few seconds.
    samples: std::collections::VecDeque<(Instant, u64)>,
}

#[derive(Debug)]
enum Kind {
    Quiet,
    Plain { last: Instant },
    Bar(ProgressBar),
}

/// `n` bytes for people: `12.3 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A rate in mebibytes per second (the unit every `ppspp` message uses).
pub fn mib_per_s(bytes: u64, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s <= 0.0 {
        0.0
    } else {
        bytes as f64 / s / MIB
    }
}

/// A rate in bytes per second for people: `1.2 MiB/s`.
pub fn human_rate(bytes_per_s: f64) -> String {
    if !bytes_per_s.is_finite() || bytes_per_s <= 0.0 {
        return "0 B/s".into();
    }
    format!("{}/s", human_bytes(bytes_per_s as u64))
}

const MIB: f64 = 1024.0 * 1024.0;

impl Progress {
    /// Progress on stderr: a bar if stderr is a terminal, plain lines if not, or nothing.
    pub fn new(quiet: bool, already: u64) -> Self {
        let kind = if quiet {
            Kind::Quiet
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(spinner_style());
            // The rate and the estimate are ours (see `message`): indicatif's own would count
            // resumed bytes as if they had arrived in the first instant.
            bar.set_position(already);
            bar.enable_steady_tick(Duration::from_millis(200));
            Kind::Bar(bar)
        } else {
            Kind::Plain {
                last: Instant::now(),
            }
        };
        let now = Instant::now();
        Self {
            kind,
            total: None,
            done: already,
            peers: 0,
            start: now,
            samples: [(now, already)].into_iter().collect(),
        }
    }

    /// The content length became known.
    pub fn set_total(&mut self, total: u64) {
        if self.total == Some(total) {
            return;
        }
        self.total = Some(total);
        if let Kind::Bar(b) = &self.kind {
            b.set_length(total);
            b.set_style(bar_style());
        }
    }

    /// Updates the verified byte count and the number of connected peers.
    pub fn update(&mut self, done: u64, peers: usize) {
        self.done = done;
        self.peers = peers;
        let now = Instant::now();
        if self
            .samples
            .back()
            .is_none_or(|(t, _)| now.duration_since(*t) >= Duration::from_millis(250))
        {
            self.samples.push_back((now, done));
            while self.samples.len() > 2
                && now.duration_since(self.samples[0].0) > Duration::from_secs(5)
            {
                self.samples.pop_front();
            }
        }
        let rate = self.rate();
        match &mut self.kind {
            Kind::Quiet => {}
            Kind::Bar(b) => {
                b.set_position(done);
                b.set_message(message(rate, self.total, done, peers));
            }
            Kind::Plain { last } => {
                if now.duration_since(*last) >= PLAIN_EVERY {
                    *last = now;
                    eprintln!("{}", self.line());
                }
            }
        }
    }

    /// The current rate in bytes per second (over the last few seconds).
    pub fn rate(&self) -> f64 {
        let (Some(a), Some(b)) = (self.samples.front(), self.samples.back()) else {
            return 0.0;
        };
        let dt = b.0.duration_since(a.0).as_secs_f64();
        if dt <= 0.0 {
            0.0
        } else {
            b.1.saturating_sub(a.1) as f64 / dt
        }
    }

    /// A plain progress line.
    pub fn line(&self) -> String {
        let rate = self.rate();
        let mut s = format!("progress {}", human_bytes(self.done));
        if let Some(t) = self.total {
            let pct = if t == 0 {
                100.0
            } else {
                self.done as f64 * 100.0 / t as f64
            };
            s.push_str(&format!(" / {} ({pct:.1}%)", human_bytes(t)));
        }
        s.push_str(", ");
        s.push_str(&message(rate, self.total, self.done, self.peers));
        s.push_str(&format!(
            ", {:.0} s elapsed",
            self.start.elapsed().as_secs_f64()
        ));
        s
    }

    /// Removes the bar (before the final summary or an error).
    pub fn finish(&mut self) {
        if let Kind::Bar(b) = &self.kind {
            b.finish_and_clear();
        }
    }

    /// Prints a notice without garbling the bar (nothing when quiet).
    pub fn note(&self, msg: &str) {
        match &self.kind {
            Kind::Quiet => {}
            Kind::Bar(b) => b.suspend(|| eprintln!("{msg}")),
            Kind::Plain { .. } => eprintln!("{msg}"),
        }
    }
}

/// The rate (measured on this run's bytes only), peers and time left.
fn message(rate: f64, total: Option<u64>, done: u64, peers: usize) -> String {
    let mut s = format!("{}, {peers} peer(s)", human_rate(rate));
    if let Some(t) = total {
        if rate > 0.0 && t > done {
            let eta = (t - done) as f64 / rate;
            s.push_str(&format!(", eta {eta:.0} s"));
        }
    }
    s
}

fn spinner_template() -> &'static str {
    "{spinner} {bytes} verified, {msg}, {elapsed}"
}

fn bar_template() -> &'static str {
    "{bar:30.cyan/blue} {bytes}/{total_bytes} {msg}"
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template(spinner_template())
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(bar_template())
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(human_bytes(1), "1 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(64 << 20), "64.0 MiB");
        assert!((mib_per_s(2 << 20, Duration::from_secs(2)) - 1.0).abs() < 1e-9);
        assert_eq!(mib_per_s(5, Duration::ZERO), 0.0);
        assert_eq!(human_rate(1536.0), "1.5 KiB/s");
    }

    #[test]
    fn plain_line_has_rate_peers_and_eta() {
        let mut p = Progress::new(true, 0);
        p.set_total(1000);
        p.update(500, 2);
        let l = p.line();
        assert!(l.contains("50.0%") && l.contains("2 peer(s)"), "{l}");
    }

    /// Issue 18: after a resume the bar showed 2.34 TiB/s and `eta 0s` (indicatif counted the
    /// resumed bytes as just arrived). The rate counts this run's bytes only.
    #[test]
    fn resumed_bytes_are_not_a_rate() {
        let mut p = Progress::new(true, 100 << 20);
        p.set_total(200 << 20);
        p.update(100 << 20, 1);
        assert_eq!(p.rate(), 0.0);
        let l = p.line();
        assert!(l.contains("0 B/s") && !l.contains("eta"), "{l}");
        assert!(!spinner_template().contains("bytes_per_sec") && !bar_template().contains("eta"));
    }
}
