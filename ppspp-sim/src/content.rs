//! Synthetic content: chunk `i` of a swarm is computed from `(content_seed, i)`, so thousands
//! of nodes never hold thousands of copies. Seeders read it from a [`SyntheticStore`];
//! leechers write into a [`VerifyingStore`] that keeps only a bitmap and checks every written
//! chunk against the synthetic bytes (a safety invariant: nothing unverified is stored).

use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;

use ppspp_core::store::{ChunkStore, StoreError};

/// The description of a swarm's content: its length, chunk size, hash and seed (the shared
/// test kit's generator).
pub use ppspp_core::testing::SyntheticContent;

/// Counters and violations shared by all stores of a run (the simulation is single-threaded).
#[derive(Debug, Default)]
pub struct StoreLog {
    /// Writes whose bytes differed from the synthetic content: `(node, chunk)`.
    pub bad_writes: Vec<(u32, u64)>,
    /// Writes of a chunk already written by the same store incarnation: `(node, chunk)`.
    pub duplicate_writes: Vec<(u32, u64)>,
    /// Reads of chunks the store does not hold: `(node, chunk)`.
    pub bad_reads: Vec<(u32, u64)>,
    /// Live runs: the simulated time (µs) and chunk `i`'s injection time `start + i·interval`,
    /// so a write can be timed; delays from injection to verification, ms.
    pub live_clock: Option<LiveClock>,
    /// See `live_clock`.
    pub live_lags_ms: Vec<u32>,
}

/// When live chunks were injected, and the current time, for timing writes.
#[derive(Debug, Default, Clone, Copy)]
pub struct LiveClock {
    /// Now, µs.
    pub now_us: u64,
    /// Chunk 0's injection time, µs.
    pub start_us: u64,
    /// Time between chunks, µs.
    pub interval_us: u64,
}

/// A shared handle to the run's [`StoreLog`].
pub type SharedLog = Arc<Mutex<StoreLog>>;

/// Per-node store counters, shared between the store (inside the endpoint) and the simulator.
#[derive(Debug, Default, Clone, Copy)]
pub struct StoreCounters {
    /// Content bytes read to be sent (DATA payloads, retransmissions included).
    pub bytes_read: u64,
    /// Content bytes written (verified chunks).
    pub bytes_written: u64,
    /// Chunks written.
    pub chunks_written: u64,
}

/// A seeder's store: every chunk exists and is computed on read.
pub struct SyntheticStore {
    content: SyntheticContent,
    counters: Arc<Mutex<StoreCounters>>,
}

impl SyntheticStore {
    /// A store serving `content`, counting into `counters`.
    pub fn new(content: SyntheticContent, counters: Arc<Mutex<StoreCounters>>) -> Self {
        Self { content, counters }
    }
}

impl fmt::Debug for SyntheticStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyntheticStore")
            .field("content", &self.content)
            .finish_non_exhaustive()
    }
}

impl ChunkStore for SyntheticStore {
    fn read_chunk(&mut self, index: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        if index >= self.content.chunk_count() {
            return Err(StoreError::Missing { chunk: index });
        }
        let n = self.content.fill_chunk(index, buf);
        self.counters.lock().expect("single-threaded").bytes_read += n as u64;
        Ok(n)
    }

    fn write_chunk(&mut self, _index: u64, _data: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The persistent part of a leecher's store: which chunks it holds. Survives a crash of its
/// node's endpoint (the disk outlives the process).
#[derive(Debug, Default, Clone)]
pub struct Bitmap {
    words: Vec<u64>,
    count: u64,
}

impl Bitmap {
    /// An empty map for `n` chunks.
    pub fn new(n: u64) -> Self {
        Self {
            words: vec![0; n.div_ceil(64) as usize],
            count: 0,
        }
    }

    /// Whether chunk `i` is set.
    pub fn get(&self, i: u64) -> bool {
        self.words
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Sets chunk `i`; returns whether it was newly set.
    pub fn set(&mut self, i: u64) -> bool {
        let Some(w) = self.words.get_mut((i / 64) as usize) else {
            return false;
        };
        let bit = 1 << (i % 64);
        if *w & bit != 0 {
            return false;
        }
        *w |= bit;
        self.count += 1;
        true
    }

    /// How many chunks are set.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The set chunks as half-open ranges.
    pub fn ranges(&self, n: u64) -> Vec<std::ops::Range<u64>> {
        let mut out = Vec::new();
        let mut start = None;
        for i in 0..n {
            match (self.get(i), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    out.push(s..i);
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            out.push(s..n);
        }
        out
    }
}

/// A leecher's store: keeps only the bitmap of written chunks, checks each write against the
/// synthetic content, and serves reads by recomputing the bytes.
pub struct VerifyingStore {
    node: u32,
    content: SyntheticContent,
    held: Arc<Mutex<Bitmap>>,
    written_now: Bitmap,
    counters: Arc<Mutex<StoreCounters>>,
    log: SharedLog,
}

impl VerifyingStore {
    /// A store for `node` over the persistent bitmap `held`.
    pub fn new(
        node: u32,
        content: SyntheticContent,
        held: Arc<Mutex<Bitmap>>,
        counters: Arc<Mutex<StoreCounters>>,
        log: SharedLog,
    ) -> Self {
        Self {
            node,
            content,
            held,
            written_now: Bitmap::new(content.chunk_count()),
            counters,
            log,
        }
    }
}

impl fmt::Debug for VerifyingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingStore")
            .field("node", &self.node)
            .field("held", &self.held.lock().expect("single-threaded").count())
            .finish_non_exhaustive()
    }
}

impl ChunkStore for VerifyingStore {
    fn read_chunk(&mut self, index: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        if !self.held.lock().expect("single-threaded").get(index) {
            self.log
                .lock()
                .expect("single-threaded")
                .bad_reads
                .push((self.node, index));
            return Err(StoreError::Missing { chunk: index });
        }
        let n = self.content.fill_chunk(index, buf);
        self.counters.lock().expect("single-threaded").bytes_read += n as u64;
        Ok(n)
    }

    fn write_chunk(&mut self, index: u64, data: &[u8]) -> Result<(), StoreError> {
        if !self.content.matches(index, data) {
            self.log
                .lock()
                .expect("single-threaded")
                .bad_writes
                .push((self.node, index));
            return Err(StoreError::Io {
                message: format!("chunk {index} differs from the content"),
            });
        }
        if !self.written_now.set(index) {
            self.log
                .lock()
                .expect("single-threaded")
                .duplicate_writes
                .push((self.node, index));
        }
        self.held.lock().expect("single-threaded").set(index);
        {
            let mut log = self.log.lock().expect("single-threaded");
            if let Some(c) = log.live_clock {
                let injected = c.start_us + index * c.interval_us;
                let lag = c.now_us.saturating_sub(injected) / 1000;
                log.live_lags_ms
                    .push(u32::try_from(lag).unwrap_or(u32::MAX));
            }
        }
        let mut c = self.counters.lock().expect("single-threaded");
        c.bytes_written += data.len() as u64;
        c.chunks_written += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_ranges() {
        let mut m = Bitmap::new(200);
        for i in [0, 1, 2, 5, 64, 65, 199] {
            m.set(i);
        }
        assert_eq!(m.ranges(200), vec![0..3, 5..6, 64..66, 199..200]);
        assert_eq!(m.count(), 7);
    }
}
