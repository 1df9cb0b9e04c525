//! An HTTP origin (a CDN edge) beside the peers: every leecher adds it as an origin of its
//! swarm ([`ppspp_core::Endpoint::add_origin`]), so what it fetches from there is decided by
//! the same core logic as in the `ppspp` program. The origin answers byte-range fetches of
//! the content and of its tree sidecar after a latency, one answer after another at its
//! bandwidth (a shared uplink), and fails every fetch during its outage window. In a live
//! run it holds what the injector published so far: the stream's chunks and their munro log
//! ([`ppspp_core::live::MunroLogHeader`]).

use std::ops::Range;

use ppspp_core::merkle::{MerkleTree, sidecar_bytes};
use ppspp_core::testing::SyntheticContent;
use ppspp_core::time::{Duration, Instant};
use ppspp_core::{OriginFailure, OriginFetch, OriginResource};
use serde::Serialize;

/// The origin of a scenario.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OriginSpec {
    /// Its uplink, bytes per second, shared by all its answers.
    pub bandwidth: u64,
    /// One-way latency to every leecher.
    pub latency: Duration,
    /// Cost of a GB (10^9 bytes) served, for the report.
    pub cost_per_gb: f64,
    /// A window of simulated time when every fetch fails (unreachable).
    pub down: Option<Range<Duration>>,
}

impl OriginSpec {
    /// An origin with `bandwidth` bytes per second, 20 ms away, always up, at 0.02 per GB.
    pub fn new(bandwidth: u64) -> Self {
        Self {
            bandwidth,
            latency: Duration::from_millis(20),
            cost_per_gb: 0.02,
            down: None,
        }
    }
}

/// What the origin served, for the report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OriginReport {
    /// Content bytes served.
    pub bytes: u64,
    /// Sidecar bytes served.
    pub tree_bytes: u64,
    /// Fetches answered (failures included).
    pub fetches: u64,
    /// Fetches failed (the outage).
    pub failures: u64,
    /// `(bytes + tree_bytes) / 10^9 × cost_per_gb`.
    pub cost: f64,
}

/// The origin while the run goes.
pub(crate) struct OriginModel {
    spec: OriginSpec,
    content: SyntheticContent,
    sidecar: Vec<u8>,
    busy_until: Instant,
    /// A live run's munro log and the chunks it covers.
    live: Option<LiveLog>,
    pub(crate) report: OriginReport,
}

struct LiveLog {
    header: ppspp_core::live::MunroLogHeader,
    log: Vec<u8>,
    /// Leaf hashes of the chunks injected since the last munro.
    leaves: Vec<ppspp_core::hash::HashValue>,
}

impl OriginModel {
    pub(crate) fn new(spec: OriginSpec, content: SyntheticContent, tree: &MerkleTree) -> Self {
        Self {
            spec,
            content,
            sidecar: sidecar_bytes(tree),
            busy_until: Instant::ZERO,
            live: None,
            report: OriginReport::default(),
        }
    }

    /// Makes this the origin of a live stream with `params` and signatures of
    /// `signature_len` bytes: nothing is published until the injector signs.
    pub(crate) fn go_live(&mut self, params: &ppspp_core::live::LiveParams, signature_len: usize) {
        let header = ppspp_core::live::MunroLogHeader::new(params, signature_len);
        self.live = Some(LiveLog {
            header,
            log: header.encode().to_vec(),
            leaves: Vec::new(),
        });
    }

    /// The injector added `chunk`.
    pub(crate) fn injected(&mut self, chunk: &[u8]) {
        let alg = self.content.hash;
        if let Some(l) = &mut self.live {
            l.leaves.push(alg.digest(chunk));
        }
    }

    /// The injector signed `m` (`end`: the stream's length in chunks when it is the last).
    pub(crate) fn signed(&mut self, m: &ppspp_core::live::SignedMunro, end: Option<u64>) {
        let Some(l) = &mut self.live else { return };
        let n = l.header.nchunks_per_sig as usize;
        let take = l.leaves.len().min(n);
        let leaves: Vec<_> = l.leaves.drain(..take).collect();
        l.log.extend(l.header.encode_record(m, &leaves));
        l.header.count += 1;
        l.header.end = end;
        l.log[..64].copy_from_slice(&l.header.encode());
    }

    /// The answer to `f` asked at `now`, and when it reaches the leecher.
    pub(crate) fn answer(
        &mut self,
        now: Instant,
        f: &OriginFetch,
    ) -> (Instant, Result<Vec<u8>, OriginFailure>) {
        self.report.fetches += 1;
        let at = now + self.spec.latency;
        let since = now.saturating_duration_since(Instant::ZERO);
        if self.spec.down.as_ref().is_some_and(|w| w.contains(&since)) {
            self.report.failures += 1;
            return (at + self.spec.latency, Err(OriginFailure::Unreachable));
        }
        let body = match f.resource {
            OriginResource::MunroLog => {
                let log = self.live.as_ref().map_or(&[][..], |l| &l.log[..]);
                let len = log.len() as u64;
                if f.bytes.start >= len {
                    self.report.failures += 1;
                    return (at + self.spec.latency, Err(OriginFailure::Status(416)));
                }
                let (a, b) = (f.bytes.start, f.bytes.end.min(len));
                self.report.tree_bytes += b - a;
                log[a as usize..b as usize].to_vec()
            }
            OriginResource::Tree => {
                let len = self.sidecar.len() as u64;
                let (a, b) = (f.bytes.start.min(len), f.bytes.end.min(len));
                self.report.tree_bytes += b - a;
                self.sidecar[a as usize..b as usize].to_vec()
            }
            _ => {
                let cs = u64::from(self.content.chunk_size);
                // A live stream: only what was published.
                let len = self.live.as_ref().map_or(self.content.len, |l| {
                    l.header.published_end().saturating_mul(cs)
                });
                let (a, b) = (f.bytes.start, f.bytes.end.min(len));
                let mut out = Vec::with_capacity(b.saturating_sub(a) as usize);
                let mut buf = vec![0u8; cs as usize];
                let mut c = a / cs;
                while c * cs < b {
                    let n = self.content.fill_chunk(c, &mut buf) as u64;
                    let (lo, hi) = (a.max(c * cs) - c * cs, b.min(c * cs + n) - c * cs);
                    out.extend_from_slice(&buf[lo as usize..hi as usize]);
                    c += 1;
                }
                self.report.bytes += out.len() as u64;
                out
            }
        };
        let send = Duration::from_micros(
            (body.len() as u64 * 1_000_000)
                .checked_div(self.spec.bandwidth)
                .unwrap_or(0),
        );
        let start = at.max(self.busy_until);
        self.busy_until = start + send;
        (self.busy_until + self.spec.latency, Ok(body))
    }

    pub(crate) fn finish(mut self) -> OriginReport {
        let b = (self.report.bytes + self.report.tree_bytes) as f64;
        self.report.cost = b / 1e9 * self.spec.cost_per_gb;
        self.report
    }
}
