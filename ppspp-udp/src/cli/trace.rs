//! Periodic transfer statistics on stderr, for finding what limits a transfer's speed.
//!
//! Set `PPSPP_STATS_MS=N` and `ppspp seed` / `ppspp get` print, every N milliseconds, one
//! line with the driver's and the socket's counters (deltas since the previous line) and,
//! per channel, the congestion window, bytes in flight and smoothed RTT.

use std::time::{Duration, Instant};

use crate::driver::{Driver, DriverStats};

/// Prints statistics lines every interval while enabled.
#[derive(Debug)]
pub struct StatsTrace {
    every: Option<Duration>,
    start: Instant,
    last: Instant,
    prev: DriverStats,
    prev_data_out: u64,
    prev_retx: u64,
    prev_bytes: (u64, u64),
}

impl StatsTrace {
    /// Enabled by the `PPSPP_STATS_MS` environment variable (milliseconds between lines).
    pub fn from_env() -> Self {
        let every = std::env::var("PPSPP_STATS_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis);
        Self {
            every,
            start: Instant::now(),
            last: Instant::now(),
            prev: DriverStats::default(),
            prev_data_out: 0,
            prev_retx: 0,
            prev_bytes: (0, 0),
        }
    }

    /// When the next line is due, if enabled.
    pub fn deadline(&self) -> Option<Instant> {
        self.every.map(|e| self.last + e)
    }

    /// Prints a line if one is due.
    pub fn tick(&mut self, driver: &mut Driver, label: &str) {
        let Some(every) = self.every else { return };
        let elapsed = self.last.elapsed();
        if elapsed < every {
            return;
        }
        self.last = Instant::now();
        let d = driver.stats();
        let s = d.socket;
        let p = self.prev.socket;
        let es = driver.endpoint().stats();
        let data_out = es.messages_out.get(ppspp_core::wire::MessageType::Data);
        let secs = elapsed.as_secs_f64();
        let mut line = format!(
            "[{label} {:.3}] turns {} short {} ratelim {} | in {} out {} dgrams, recv calls {} send \
             calls {} | kernel drops {} | data out {} retx {} | MiB/s in {:.1} out {:.1}",
            self.start.elapsed().as_secs_f64(),
            d.turns - self.prev.turns,
            d.short_waits - self.prev.short_waits,
            d.rate_limited - self.prev.rate_limited,
            s.datagrams_in - p.datagrams_in,
            s.datagrams_out - p.datagrams_out,
            s.recv_calls - p.recv_calls,
            s.send_calls - p.send_calls,
            s.kernel_drops
                .map_or_else(|| "unknown".to_string(), |n| n.to_string()),
            data_out - self.prev_data_out,
            es.data_retransmissions - self.prev_retx,
            (es.bytes_in - self.prev_bytes.0) as f64 / MIB / secs,
            (es.bytes_out - self.prev_bytes.1) as f64 / MIB / secs,
        );
        self.prev_bytes = (es.bytes_in, es.bytes_out);
        self.prev_data_out = data_out;
        self.prev_retx = es.data_retransmissions;
        self.prev = d;
        let ep = driver.endpoint();
        for sw in ep.swarms() {
            if let Some(sr) = ep.swarm(sw) {
                for peer in sr.peers() {
                    if let Some(pr) = ep.peer(peer) {
                        let cs = pr.stats();
                        let rtt = cs.rtt.map_or_else(
                            || "unmeasured".to_string(),
                            |r| format!("{:.1} ms", r.as_secs_f64() * 1e3),
                        );
                        line.push_str(&format!(
                            " | {} cwnd {} flight {} rtt {rtt}",
                            pr.remote(),
                            cs.cwnd,
                            cs.in_flight,
                        ));
                    }
                }
            }
        }
        eprintln!("{line}");
    }
}

const MIB: f64 = 1024.0 * 1024.0;
