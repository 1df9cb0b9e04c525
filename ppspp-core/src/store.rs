//! Chunk storage: the core never does I/O, so content lives behind the [`ChunkStore`] trait.
//!
//! The endpoint reads chunks it serves straight into the outgoing datagram buffer, and writes
//! a chunk only after it verified it against the Merkle tree (RFC 7574 §5), so a store never
//! sees unverified bytes. [`MemoryStore`] keeps content in memory; `ppspp-udp` provides a
//! file-backed store and `ppspp-sim` a synthetic one.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

/// Where a swarm's chunks are kept. `Send`, so an endpoint can move between threads (a
/// multi-threaded async runtime).
pub trait ChunkStore: fmt::Debug + Send {
    /// Copies chunk `index` into the start of `buf` and returns its length. `buf` holds at least
    /// the swarm's chunk size. Only called for chunks the endpoint holds (a seeder's content or
    /// chunks it verified and wrote).
    fn read_chunk(&mut self, index: u64, buf: &mut [u8]) -> Result<usize, StoreError>;

    /// Stores chunk `index`, which has been verified. Called at most once per chunk.
    fn write_chunk(&mut self, index: u64, data: &[u8]) -> Result<(), StoreError>;

    /// The swarm completed: every chunk has been written. A file store may flush and sync.
    fn complete(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

impl<S: ChunkStore + ?Sized> ChunkStore for Box<S> {
    fn read_chunk(&mut self, index: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        (**self).read_chunk(index, buf)
    }

    fn write_chunk(&mut self, index: u64, data: &[u8]) -> Result<(), StoreError> {
        (**self).write_chunk(index, data)
    }

    fn complete(&mut self) -> Result<(), StoreError> {
        (**self).complete()
    }
}

/// A storage failure.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The chunk is not in the store.
    Missing {
        /// The chunk index.
        chunk: u64,
    },
    /// The underlying storage failed (disk full, permission denied, content changed, …).
    Io {
        /// What failed, for people.
        message: alloc::string::String,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { chunk } => write!(f, "chunk {chunk} is not in the store"),
            Self::Io { message } => write!(f, "storage failed: {message}"),
        }
    }
}

impl core::error::Error for StoreError {}

/// Content held in memory: a seeder's bytes, or a download assembled chunk by chunk.
#[derive(Clone, Default)]
pub struct MemoryStore {
    chunk_size: usize,
    data: Vec<u8>,
    present: Vec<bool>,
    len: u64,
}

impl MemoryStore {
    /// A store holding the whole of `content`.
    pub fn with_content(chunk_size: u32, content: Vec<u8>) -> Self {
        let cs = chunk_size.max(1) as usize;
        let chunks = content.len().div_ceil(cs);
        Self {
            chunk_size: cs,
            len: content.len() as u64,
            data: content,
            present: alloc::vec![true; chunks],
        }
    }

    /// An empty store for a download; it grows as chunks arrive.
    pub fn new(chunk_size: u32) -> Self {
        Self {
            chunk_size: chunk_size.max(1) as usize,
            ..Self::default()
        }
    }

    /// The content assembled so far (chunks not yet written are zero).
    pub fn data(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }

    /// Whether chunk `index` has been written.
    pub fn has(&self, index: u64) -> bool {
        self.present.get(index as usize).copied().unwrap_or(false)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("chunk_size", &self.chunk_size)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl ChunkStore for MemoryStore {
    fn read_chunk(&mut self, index: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        if !self.has(index) {
            return Err(StoreError::Missing { chunk: index });
        }
        let start = index as usize * self.chunk_size;
        let end = (start + self.chunk_size).min(self.len as usize);
        let n = end - start;
        buf[..n].copy_from_slice(&self.data[start..end]);
        Ok(n)
    }

    fn write_chunk(&mut self, index: u64, data: &[u8]) -> Result<(), StoreError> {
        let start = usize::try_from(index)
            .ok()
            .and_then(|i| i.checked_mul(self.chunk_size))
            .ok_or(StoreError::Missing { chunk: index })?;
        let end = start + data.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[start..end].copy_from_slice(data);
        self.len = self.len.max(end as u64);
        let i = index as usize;
        if self.present.len() <= i {
            self.present.resize(i + 1, false);
        }
        self.present[i] = true;
        Ok(())
    }
}

/// A store that keeps nothing: reads fail, writes are dropped. Useful for measuring the
/// protocol alone, or for a simulated leecher that only needs the verified-chunk map.
#[derive(Clone, Copy, Debug, Default)]
pub struct NullStore;

impl ChunkStore for NullStore {
    fn read_chunk(&mut self, index: u64, _buf: &mut [u8]) -> Result<usize, StoreError> {
        Err(StoreError::Missing { chunk: index })
    }

    fn write_chunk(&mut self, _index: u64, _data: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }
}
