//! Per-peer totals of a transfer and its summary, printed as a table on stderr or as JSON
//! (`--json`) on stdout.
//!
//! A peer's **efficiency** is the share of the bytes exchanged with it (both directions, UDP
//! payload) that were content: `(content_in + content_out) / (bytes_in + bytes_out)`. The
//! rest is protocol: handshakes, hashes, HAVE, ACK, requests, retransmissions.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ppspp_core::{ChannelStats, SwarmHandle};
use serde::Serialize;

use crate::driver::Driver;

/// Totals for one peer address over the whole run (its channels may come and go).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PeerTotals {
    /// The peer's address.
    pub address: String,
    /// Content bytes received from it.
    pub downloaded: u64,
    /// Content bytes sent to it.
    pub uploaded: u64,
    /// All bytes received from it (UDP payload).
    pub bytes_in: u64,
    /// All bytes sent to it (UDP payload).
    pub bytes_out: u64,
    /// Seconds it was connected.
    pub connected_secs: f64,
    /// Mean download rate while connected, bytes per second.
    pub download_rate: f64,
    /// Mean upload rate while connected, bytes per second.
    pub upload_rate: f64,
    /// Content share of the bytes exchanged (see the module docs); 0 when nothing was.
    pub efficiency: f64,
    /// The last round-trip time measured, in milliseconds.
    pub rtt_ms: Option<f64>,
}

#[derive(Debug, Default)]
struct Tally {
    /// Totals of channels that closed.
    closed: ChannelStats,
    /// The live channel's latest counters.
    live: Option<ChannelStats>,
    connected: Duration,
    since: Option<Instant>,
    rtt: Option<Duration>,
}

fn add(a: &mut ChannelStats, b: &ChannelStats) {
    a.bytes_in += b.bytes_in;
    a.bytes_out += b.bytes_out;
    a.content_in += b.content_in;
    a.content_out += b.content_out;
}

/// Per-peer counters, refreshed from the engine while the transfer runs.
#[derive(Debug, Default)]
pub struct PeerBook {
    peers: BTreeMap<SocketAddr, Tally>,
}

impl PeerBook {
    /// Reads the counters of every channel of `swarm`.
    pub fn refresh(&mut self, driver: &Driver, swarm: SwarmHandle) {
        let Some(s) = driver.endpoint().swarm(swarm) else {
            return;
        };
        for p in s.peers() {
            if let Some(pr) = driver.endpoint().peer(p) {
                let st = pr.stats();
                let t = self.peers.entry(pr.remote()).or_default();
                if st.rtt.is_some() {
                    t.rtt = st.rtt;
                }
                t.live = Some(st);
            }
        }
    }

    /// A channel to `remote` opened.
    pub fn connected(&mut self, remote: SocketAddr) {
        let t = self.peers.entry(remote).or_default();
        t.since.get_or_insert_with(Instant::now);
    }

    /// The channel to `remote` closed: its last counters join the totals.
    pub fn closed(&mut self, remote: SocketAddr) {
        if let Some(t) = self.peers.get_mut(&remote) {
            if let Some(l) = t.live.take() {
                add(&mut t.closed, &l);
            }
            if let Some(s) = t.since.take() {
                t.connected += s.elapsed();
            }
        }
    }

    /// Peers that sent content.
    pub fn sources(&self) -> Vec<SocketAddr> {
        self.totals()
            .into_iter()
            .filter(|p| p.downloaded > 0)
            .filter_map(|p| p.address.parse().ok())
            .collect()
    }

    /// The totals, one per peer address, in address order.
    pub fn totals(&self) -> Vec<PeerTotals> {
        self.peers
            .iter()
            // Addresses that never answered have nothing to report.
            .filter(|(_, t)| {
                t.since.is_some()
                    || !t.connected.is_zero()
                    || t.live.is_some_and(|l| l.bytes_in > 0)
            })
            .map(|(addr, t)| {
                let mut s = t.closed;
                if let Some(l) = &t.live {
                    add(&mut s, l);
                }
                let secs =
                    (t.connected + t.since.map_or(Duration::ZERO, |s| s.elapsed())).as_secs_f64();
                let per = |b: u64| if secs > 0.0 { b as f64 / secs } else { 0.0 };
                let all = s.bytes_in + s.bytes_out;
                PeerTotals {
                    address: addr.to_string(),
                    downloaded: s.content_in,
                    uploaded: s.content_out,
                    bytes_in: s.bytes_in,
                    bytes_out: s.bytes_out,
                    connected_secs: secs,
                    download_rate: per(s.content_in),
                    upload_rate: per(s.content_out),
                    efficiency: if all == 0 {
                        0.0
                    } else {
                        (s.content_in + s.content_out) as f64 / all as f64
                    },
                    rtt_ms: t.rtt.map(|r| r.as_secs_f64() * 1e3),
                }
            })
            .collect()
    }
}

/// A finished (or stopped) transfer, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// `complete`, `interrupted`, `failed`.
    pub status: &'static str,
    /// The error, when not complete.
    pub error: Option<String>,
    /// The output file.
    pub output: String,
    /// The swarm ID (hex).
    pub swarm: String,
    /// Content length in bytes, if known.
    pub size: Option<u64>,
    /// Content bytes verified when the run ended.
    pub verified: u64,
    /// Content bytes received in this run.
    pub downloaded: u64,
    /// Content bytes sent in this run.
    pub uploaded: u64,
    /// Content bytes kept from an earlier run.
    pub resumed: u64,
    /// Content bytes the resume state claimed (`resumed` is what re-verified).
    pub resume_claimed: u64,
    /// uploaded / downloaded (0 when nothing was downloaded).
    pub ratio: f64,
    /// Wall time of this run, seconds.
    pub seconds: f64,
    /// Mean download rate of this run, bytes per second.
    pub rate: f64,
    /// Per-peer totals.
    pub peers: Vec<PeerTotals>,
    /// Content bytes from HTTP origins in this run.
    pub origin_bytes: u64,
    /// Bytes from peers / all content bytes received (1 when no origin contributed).
    pub peer_efficiency: f64,
    /// Origin answers that ignored `Range` (the bytes were cut out of the whole file).
    pub origin_range_ignored: u64,
}

impl Summary {
    /// The JSON text (one line).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// The per-peer table for stderr, one line per peer.
pub fn peer_table(peers: &[PeerTotals]) -> Vec<String> {
    use crate::cli::progress::{human_bytes, human_rate};
    peers
        .iter()
        .map(|p| {
            format!(
                "  peer {}: down {} ({}), up {} ({}), efficiency {:.0}%{}",
                p.address,
                human_bytes(p.downloaded),
                human_rate(p.download_rate),
                human_bytes(p.uploaded),
                human_rate(p.upload_rate),
                p.efficiency * 100.0,
                p.rtt_ms
                    .map_or(String::new(), |r| format!(", rtt {r:.1} ms"))
            )
        })
        .collect()
}
