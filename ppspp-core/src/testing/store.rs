//! A checking store: it knows what a swarm holds ([`Content`]), refuses and counts every write
//! that differs from it, records which chunks were written and how often, and gives the bytes
//! back. It keeps no copy of the bytes: every write it accepted equalled the expected chunk, so
//! the expected chunk *is* what was written.
//!
//! Clones share one record (atomics, so the store is `Send` and needs neither `std` nor a
//! lock): give a clone to the endpoint and keep one to look at.

use alloc::boxed::Box;
use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::content::Content;
use crate::store::{ChunkStore, StoreError};

/// A [`ChunkStore`] that checks every write against the expected [`Content`].
///
/// - A write whose bytes differ from the expected chunk (or past its end) is refused with
///   [`StoreError::Io`] and counted in [`refused`](Self::refused); nothing is stored.
/// - A chunk written twice is counted in [`duplicates`](Self::duplicates) (the engine writes
///   each verified chunk once).
/// - Reads serve the chunks held: those written, or all of them for a store made with
///   [`full`](Self::full) (a seeder's).
#[derive(Clone)]
pub struct CheckingStore {
    shared: Arc<Shared>,
}

struct Shared {
    expected: Box<dyn Content>,
    /// Per chunk: how many accepted writes (`usize::MAX`: held from the start).
    written: Vec<AtomicUsize>,
    writes: AtomicUsize,
    refused: AtomicUsize,
    duplicates: AtomicUsize,
    reads: AtomicUsize,
}

impl CheckingStore {
    /// An empty store (a leecher's) that expects `expected`.
    pub fn new(expected: impl Content + 'static) -> Self {
        Self::with(Box::new(expected), 0)
    }

    /// A store holding all of `expected` from the start (a seeder's); writes are still checked.
    pub fn full(expected: impl Content + 'static) -> Self {
        Self::with(Box::new(expected), usize::MAX)
    }

    fn with(expected: Box<dyn Content>, initial: usize) -> Self {
        let n = usize::try_from(expected.chunk_count()).expect("chunk count fits in memory");
        Self {
            shared: Arc::new(Shared {
                written: (0..n).map(|_| AtomicUsize::new(initial)).collect(),
                expected,
                writes: AtomicUsize::new(0),
                refused: AtomicUsize::new(0),
                duplicates: AtomicUsize::new(0),
                reads: AtomicUsize::new(0),
            }),
        }
    }

    /// Every call to `write_chunk` so far, refused ones included.
    pub fn writes(&self) -> u64 {
        self.shared.writes.load(Ordering::Relaxed) as u64
    }

    /// Writes refused because their bytes differed from the expected content (0 when only
    /// verified content reached the store).
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed) as u64
    }

    /// Accepted writes of a chunk already written.
    pub fn duplicates(&self) -> u64 {
        self.shared.duplicates.load(Ordering::Relaxed) as u64
    }

    /// Successful reads (chunks served).
    pub fn reads(&self) -> u64 {
        self.shared.reads.load(Ordering::Relaxed) as u64
    }

    /// Whether chunk `index` is held.
    pub fn holds(&self, index: u64) -> bool {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.shared.written.get(i))
            .is_some_and(|w| w.load(Ordering::Relaxed) > 0)
    }

    /// The indices of the chunks held, in order.
    pub fn held(&self) -> Vec<u64> {
        (0u64..)
            .zip(&self.shared.written)
            .filter(|(_, w)| w.load(Ordering::Relaxed) > 0)
            .map(|(i, _)| i)
            .collect()
    }

    /// Chunk `index`'s bytes, if held.
    pub fn chunk(&self, index: u64) -> Option<Vec<u8>> {
        self.holds(index).then(|| self.shared.expected.chunk(index))
    }

    /// The chunks held, concatenated in index order (the whole content once a download is
    /// complete).
    pub fn assembled(&self) -> Vec<u8> {
        self.held()
            .into_iter()
            .flat_map(|i| self.shared.expected.chunk(i))
            .collect()
    }

    /// The expected content.
    pub fn expected(&self) -> &dyn Content {
        &*self.shared.expected
    }
}

impl fmt::Debug for CheckingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckingStore")
            .field("expected", &self.shared.expected)
            .field("writes", &self.writes())
            .field("refused", &self.refused())
            .finish_non_exhaustive()
    }
}

impl ChunkStore for CheckingStore {
    fn read_chunk(&mut self, index: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        if !self.holds(index) {
            return Err(StoreError::Missing { chunk: index });
        }
        self.shared.reads.fetch_add(1, Ordering::Relaxed);
        Ok(self.shared.expected.fill_chunk(index, buf))
    }

    fn write_chunk(&mut self, index: u64, data: &[u8]) -> Result<(), StoreError> {
        let s = &self.shared;
        s.writes.fetch_add(1, Ordering::Relaxed);
        let slot = usize::try_from(index).ok().and_then(|i| s.written.get(i));
        let Some(slot) = slot.filter(|_| s.expected.matches(index, data)) else {
            s.refused.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::Io {
                message: format!("chunk {index} differs from the expected content"),
            });
        };
        if slot.load(Ordering::Relaxed) > 0 {
            s.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        // Saturating: a full store's chunks stay at `usize::MAX`.
        let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
            Some(w.saturating_add(1))
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::*;
    use crate::testing::{FixedContent, content};

    #[test]
    fn refuses_wrong_bytes_and_gives_the_right_ones_back() {
        let data = content(2500, 7);
        let mut s = CheckingStore::new(FixedContent::new(data.clone(), 1024));
        let handle = s.clone();
        let mut buf = vec![0u8; 1024];
        assert_eq!(
            s.read_chunk(0, &mut buf),
            Err(StoreError::Missing { chunk: 0 })
        );
        assert!(s.write_chunk(1, &data[..1024]).is_err());
        assert!(s.write_chunk(3, &[]).is_err());
        s.write_chunk(2, &data[2048..]).unwrap();
        s.write_chunk(0, &data[..1024]).unwrap();
        s.write_chunk(0, &data[..1024]).unwrap();
        assert_eq!(
            (handle.writes(), handle.refused(), handle.duplicates()),
            (5, 2, 1)
        );
        assert_eq!(handle.held(), [0, 2]);
        assert_eq!(s.read_chunk(2, &mut buf), Ok(452));
        assert_eq!(&buf[..452], &data[2048..]);
        let mut want = data[..1024].to_vec();
        want.extend_from_slice(&data[2048..]);
        assert_eq!(handle.assembled(), want);
        let full = CheckingStore::full(FixedContent::new(data.clone(), 1024));
        assert_eq!(full.assembled(), data);
    }
}
