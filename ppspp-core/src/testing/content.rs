//! Deterministic content: bytes computed from a seed, so a test, a fuzz target, a benchmark and
//! the simulator can each say what a swarm holds without shipping files, and a store can check
//! a written chunk against what it should be.
//!
//! Three sources implement [`Content`]:
//! - [`FixedContent`]: bytes held in memory (for example [`content`]'s output), cut into chunks;
//! - [`SyntheticContent`]: chunk `i` computed from `(seed, i)` on demand, so thousands of nodes
//!   never hold thousands of copies (the simulator's content);
//! - [`PatternContent`]: a live stream whose byte `j` of chunk `i` is a function of `(i, j)`.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::hash::HashAlgorithm;
use crate::merkle::{BuildError, MerkleBuilder, MerkleTree};
use crate::rand::Rng;

/// `len` bytes of the seeded generator's output for `seed` (the crate's seeded ChaCha generator): the same
/// bytes on every run and every platform, and incompressible.
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng::seed_from_u64(seed);
    let mut v = vec![0u8; len];
    r.fill(&mut v);
    v
}

/// The SplitMix64 mixing function: a bijection on `u64` whose outputs look random.
#[inline]
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What a swarm holds, chunk by chunk: what a seeder serves and what a leecher must end up
/// with. Used by [`CheckingStore`](super::CheckingStore) to serve reads and check writes.
pub trait Content: fmt::Debug + Send + Sync {
    /// The chunk size in bytes.
    fn chunk_size(&self) -> u32;

    /// How many chunks there are (for a stream: how many may be written).
    fn chunk_count(&self) -> u64;

    /// Writes chunk `index` into the start of `buf` (at least a chunk long) and returns its
    /// length: 0 past the end.
    fn fill_chunk(&self, index: u64, buf: &mut [u8]) -> usize;

    /// Whether `data` is exactly chunk `index`.
    fn matches(&self, index: u64, data: &[u8]) -> bool {
        let mut buf = vec![0u8; self.chunk_size() as usize];
        let n = self.fill_chunk(index, &mut buf);
        index < self.chunk_count() && buf[..n] == *data
    }

    /// Chunk `index` as a vector (empty past the end).
    fn chunk(&self, index: u64) -> Vec<u8> {
        let mut buf = vec![0u8; self.chunk_size() as usize];
        let n = self.fill_chunk(index, &mut buf);
        buf.truncate(n);
        buf
    }
}

/// Content held in memory, cut into chunks of `chunk_size` bytes (the last may be short).
#[derive(Clone)]
pub struct FixedContent {
    data: Arc<[u8]>,
    chunk_size: u32,
}

impl FixedContent {
    /// The content `data` in chunks of `chunk_size` bytes (not 0).
    pub fn new(data: impl Into<Arc<[u8]>>, chunk_size: u32) -> Self {
        assert!(chunk_size > 0, "a chunk size of 0");
        Self {
            data: data.into(),
            chunk_size,
        }
    }

    /// All the bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The bytes of chunk `index` (empty past the end).
    pub fn chunk_bytes(&self, index: u64) -> &[u8] {
        let cs = self.chunk_size as usize;
        let Some(start) = usize::try_from(index)
            .ok()
            .and_then(|i| i.checked_mul(cs))
            .filter(|&s| s < self.data.len())
        else {
            return &[];
        };
        &self.data[start..(start + cs).min(self.data.len())]
    }
}

impl fmt::Debug for FixedContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedContent")
            .field("len", &self.data.len())
            .field("chunk_size", &self.chunk_size)
            .finish()
    }
}

impl Content for FixedContent {
    fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    fn chunk_count(&self) -> u64 {
        (self.data.len() as u64).div_ceil(u64::from(self.chunk_size))
    }

    fn fill_chunk(&self, index: u64, buf: &mut [u8]) -> usize {
        let c = self.chunk_bytes(index);
        buf[..c.len()].copy_from_slice(c);
        c.len()
    }

    fn matches(&self, index: u64, data: &[u8]) -> bool {
        index < self.chunk_count() && self.chunk_bytes(index) == data
    }
}

/// Synthetic content: chunk `i` of a swarm is computed from `(seed, i)` (SplitMix64 words), so
/// thousands of nodes never hold thousands of copies and the content is never materialised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyntheticContent {
    /// The seed the bytes are computed from.
    pub seed: u64,
    /// Length in bytes (at least 1).
    pub len: u64,
    /// Chunk size in bytes.
    pub chunk_size: u32,
    /// The Merkle hash function.
    pub hash: HashAlgorithm,
}

impl SyntheticContent {
    /// The number of chunks.
    pub fn chunk_count(&self) -> u64 {
        self.len.div_ceil(u64::from(self.chunk_size))
    }

    /// The length of chunk `index` (0 past the end).
    pub fn chunk_len(&self, index: u64) -> usize {
        let cs = u64::from(self.chunk_size);
        let start = index.saturating_mul(cs);
        if start >= self.len {
            return 0;
        }
        (self.len - start).min(cs) as usize
    }

    /// Writes chunk `index` into the start of `buf` and returns its length.
    #[inline]
    pub fn fill_chunk(&self, index: u64, buf: &mut [u8]) -> usize {
        let n = self.chunk_len(index).min(buf.len());
        let key = splitmix64(self.seed ^ splitmix64(index));
        let mut words = buf[..n].chunks_exact_mut(8);
        let mut i = 0u64;
        for w in &mut words {
            w.copy_from_slice(&splitmix64(key.wrapping_add(i)).to_le_bytes());
            i += 1;
        }
        let rest = words.into_remainder();
        if !rest.is_empty() {
            let last = splitmix64(key.wrapping_add(i)).to_le_bytes();
            let k = rest.len();
            rest.copy_from_slice(&last[..k]);
        }
        n
    }

    /// Whether `data` equals chunk `index`.
    #[inline]
    pub fn matches(&self, index: u64, data: &[u8]) -> bool {
        if data.len() != self.chunk_len(index) {
            return false;
        }
        let key = splitmix64(self.seed ^ splitmix64(index));
        let words = data.chunks_exact(8);
        let rest = words.remainder();
        let n = words.len() as u64;
        // Word by word, no early exit in the loop (it vectorises); chunks are small.
        let mut diff = 0u64;
        for (i, w) in (0u64..).zip(words) {
            let got = u64::from_le_bytes(w.try_into().expect("chunks_exact(8)"));
            diff |= got ^ splitmix64(key.wrapping_add(i));
        }
        diff == 0 && rest == &splitmix64(key.wrapping_add(n)).to_le_bytes()[..rest.len()]
    }

    /// The whole content in memory (for small contents).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; usize::try_from(self.len).expect("fits in memory")];
        for (i, c) in (0u64..).zip(v.chunks_mut(self.chunk_size as usize)) {
            self.fill_chunk(i, c);
        }
        v
    }

    /// Builds the Merkle tree of the content, hashing one chunk at a time (the content is
    /// never materialised whole).
    pub fn build_tree(&self) -> Result<Arc<MerkleTree>, BuildError> {
        let mut b = MerkleBuilder::with_tree(self.hash, self.chunk_size)?;
        b.reserve_for(self.len);
        let mut buf = vec![0u8; self.chunk_size as usize];
        for i in 0..self.chunk_count() {
            let n = self.fill_chunk(i, &mut buf);
            b.push_chunk(&buf[..n])?;
        }
        Ok(Arc::new(b.finish_tree()?))
    }
}

impl Content for SyntheticContent {
    fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    fn chunk_count(&self) -> u64 {
        Self::chunk_count(self)
    }

    fn fill_chunk(&self, index: u64, buf: &mut [u8]) -> usize {
        Self::fill_chunk(self, index, buf)
    }

    fn matches(&self, index: u64, data: &[u8]) -> bool {
        Self::matches(self, index, data)
    }
}

/// A stream of `chunks` full chunks of `chunk_size` bytes whose byte `j` of chunk `i` is
/// `byte(i, j)`: recognisable live-stream content, each chunk computable on its own.
#[derive(Clone, Copy, Debug)]
pub struct PatternContent {
    /// The chunk size in bytes.
    pub chunk_size: u32,
    /// How many chunks the stream may have.
    pub chunks: u64,
    /// Byte `j` of chunk `i`.
    pub byte: fn(u64, u64) -> u8,
}

impl PatternContent {
    /// A stream of `chunks` chunks of `chunk_size` bytes, byte `j` of chunk `i` being
    /// `byte(i, j)`.
    pub fn new(chunk_size: u32, chunks: u64, byte: fn(u64, u64) -> u8) -> Self {
        Self {
            chunk_size,
            chunks,
            byte,
        }
    }
}

impl Content for PatternContent {
    fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    fn chunk_count(&self) -> u64 {
        self.chunks
    }

    fn fill_chunk(&self, index: u64, buf: &mut [u8]) -> usize {
        if index >= self.chunks {
            return 0;
        }
        let n = self.chunk_size as usize;
        for (j, b) in (0u64..).zip(&mut buf[..n]) {
            *b = (self.byte)(index, j);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_chunks_are_deterministic_and_distinct() {
        let c = SyntheticContent {
            seed: 3,
            len: 10_000,
            chunk_size: 1024,
            hash: HashAlgorithm::Sha1,
        };
        assert_eq!(c.chunk_count(), 10);
        let mut a = vec![0u8; 1024];
        let mut b = vec![0u8; 1024];
        assert_eq!(c.fill_chunk(0, &mut a), 1024);
        c.fill_chunk(1, &mut b);
        assert_ne!(a, b);
        assert!(c.matches(0, &a));
        assert!(!c.matches(1, &a));
        let n = c.fill_chunk(9, &mut b);
        assert_eq!(n, 10_000 - 9 * 1024);
        assert!(c.matches(9, &b[..n]));
        assert_eq!(&c.to_vec()[9 * 1024..], &b[..n]);
        let t = c.build_tree().unwrap();
        assert_eq!(t.chunk_count(), 10);
        assert_eq!(t.content_len(), 10_000);
    }

    #[test]
    fn fixed_and_pattern_content_match_their_own_chunks_only() {
        let f = FixedContent::new(content(2500, 1), 1024);
        assert_eq!(Content::chunk_count(&f), 3);
        assert_eq!(f.chunk(2).len(), 452);
        assert!(f.matches(2, &f.chunk(2)));
        assert!(!f.matches(1, &f.chunk(2)));
        assert!(!f.matches(3, &[]));
        let p = PatternContent::new(16, 4, |i, j| (i * 7 + j) as u8);
        assert_eq!(p.chunk(1)[..3], [7, 8, 9]);
        assert!(p.matches(3, &p.chunk(3)));
        assert!(!p.matches(4, &p.chunk(3)));
        assert!(p.chunk(4).is_empty());
    }
}
