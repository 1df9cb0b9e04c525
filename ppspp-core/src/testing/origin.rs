//! A model of an HTTP origin for in-memory tests and the simulator: it answers the endpoint's
//! byte-range fetches ([`crate::OriginFetch`]) from the content and its tree sidecar, after a
//! latency and at a bandwidth (one response at a time, as one HTTP connection), and can
//! corrupt chunks or be down for windows of time. A live stream's origin
//! ([`TestOrigin::live`]) grows as the injector publishes munros and serves their munro log.

use alloc::collections::BTreeSet;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::Range;

use crate::endpoint::{OriginFailure, OriginFetch, OriginResource};
use crate::live::{MUNRO_LOG_HEADER_LEN, MunroLogHeader};
use crate::merkle::{MerkleTree, sidecar_bytes};
use crate::time::{Duration, Instant};

/// An HTTP origin serving one content and its tree sidecar.
#[derive(Clone, Debug)]
pub struct TestOrigin {
    content: Vec<u8>,
    sidecar: Arc<[u8]>,
    /// A live stream's munro log (empty for static content).
    log: Vec<u8>,
    chunk_size: u32,
    /// One-way latency added to every answer (a request's round trip is twice this).
    pub latency: Duration,
    /// Bytes per second of the origin's uplink (`0`: unlimited); answers queue behind each
    /// other.
    pub bandwidth: u64,
    /// Chunks whose bytes are served corrupted (one byte flipped).
    pub corrupt: BTreeSet<u64>,
    /// Windows of time when every fetch fails ([`OriginFailure::Unreachable`]).
    pub down: Vec<Range<Instant>>,
    /// Whether it ignores the sidecar (answers fetches of it with HTTP 404).
    pub no_sidecar: bool,
    /// Time added before content (not sidecar) answers: an origin whose tree is quick and
    /// whose content is slow.
    pub content_delay: Duration,
    /// Content bytes served.
    pub content_served: u64,
    /// Sidecar bytes served.
    pub tree_served: u64,
    /// Fetches answered, failures included.
    pub fetches: u64,
    busy_until: Instant,
}

impl TestOrigin {
    /// An origin of `data`, whose tree is `tree`, with no latency and unlimited bandwidth.
    pub fn new(data: impl Into<Arc<[u8]>>, tree: &MerkleTree) -> Self {
        Self::with(
            data.into().to_vec(),
            sidecar_bytes(tree).into(),
            tree.chunk_size(),
        )
    }

    /// The origin of a live stream with chunks of `chunk_size` bytes, empty until the
    /// injector publishes ([`TestOrigin::publish`]).
    pub fn live(chunk_size: u32) -> Self {
        Self::with(Vec::new(), Arc::from(Vec::new()), chunk_size)
    }

    /// A live stream's next munro: its chunks (`chunks`, concatenated) appended to the
    /// content, its record to the munro log, then the log's header rewritten (`header` with
    /// the new count), in the order an injector publishing to a file server keeps.
    pub fn publish(&mut self, header: &MunroLogHeader, chunks: &[u8], record: &[u8]) {
        self.content.extend_from_slice(chunks);
        if self.log.is_empty() {
            self.log.extend_from_slice(&header.encode());
        }
        self.log.extend_from_slice(record);
        self.log[..MUNRO_LOG_HEADER_LEN as usize].copy_from_slice(&header.encode());
    }

    /// Overwrites the munro log's first bytes with `header` (a log that lies about itself).
    pub fn publish_raw_header(&mut self, header: &[u8]) {
        if self.log.len() < header.len() {
            self.log.resize(header.len(), 0);
        }
        self.log[..header.len()].copy_from_slice(header);
    }

    fn with(content: Vec<u8>, sidecar: Arc<[u8]>, chunk_size: u32) -> Self {
        Self {
            content,
            sidecar,
            log: Vec::new(),
            chunk_size,
            latency: Duration::ZERO,
            bandwidth: 0,
            corrupt: BTreeSet::new(),
            down: Vec::new(),
            no_sidecar: false,
            content_delay: Duration::ZERO,
            content_served: 0,
            tree_served: 0,
            fetches: 0,
            busy_until: Instant::ZERO,
        }
    }

    /// The answer to `fetch` asked at `now`, and when it arrives.
    pub fn answer(
        &mut self,
        now: Instant,
        fetch: &OriginFetch,
    ) -> (Instant, Result<Vec<u8>, OriginFailure>) {
        self.fetches += 1;
        let at = now + self.latency;
        if self.down.iter().any(|w| w.contains(&now)) {
            return (at + self.latency, Err(OriginFailure::Unreachable));
        }
        let (file, is_tree): (&[u8], bool) = match fetch.resource {
            OriginResource::Tree if self.no_sidecar => {
                return (at + self.latency, Err(OriginFailure::Status(404)));
            }
            OriginResource::Tree => (&self.sidecar, true),
            OriginResource::MunroLog => (&self.log, true),
            _ => (&self.content, false),
        };
        let len = file.len() as u64;
        if fetch.bytes.start >= len || fetch.bytes.start >= fetch.bytes.end {
            return (at + self.latency, Err(OriginFailure::Status(416)));
        }
        let (a, b) = (
            fetch.bytes.start as usize,
            fetch.bytes.end.min(len) as usize,
        );
        let mut body = file[a..b].to_vec();
        if is_tree {
            self.tree_served += body.len() as u64;
        } else {
            self.content_served += body.len() as u64;
            let cs = u64::from(self.chunk_size);
            for &c in &self.corrupt {
                let off = c * cs;
                if off >= a as u64 && off < b as u64 {
                    body[(off - a as u64) as usize] ^= 0x5A;
                }
            }
        }
        // Serialised at the origin's uplink: the body leaves when the previous one has.
        let send = (body.len() as u64 * 1_000_000)
            .checked_div(self.bandwidth)
            .map_or(Duration::ZERO, Duration::from_micros);
        let ready = if is_tree { at } else { at + self.content_delay };
        let start = ready.max(self.busy_until);
        self.busy_until = start + send;
        (self.busy_until + self.latency, Ok(body))
    }
}
