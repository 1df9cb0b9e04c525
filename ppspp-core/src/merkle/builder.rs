//! Streaming construction of a Merkle hash tree (RFC 7574 §5.1).

use alloc::vec::Vec;
use core::fmt;

use sha1::Digest;

use super::MAX_CHUNKS;
use super::hasher::{Buf, ZERO, leaf, parent, with_digest};
use super::tree::MerkleTree;
use crate::hash::{HashAlgorithm, HashValue};

/// Builds the root hash (and optionally the whole tree) of content fed in pieces.
///
/// Content is cut into chunks of `chunk_size` bytes; the last chunk may be shorter and is not
/// padded. Leaf `i` is `H(chunk i)`; the tree is as wide as the next power of two; leaves past
/// the end are all-zero; a parent of two all-zero (empty) subtrees is all-zero without hashing;
/// any other parent is `H(left ‖ right)` (RFC 7574 §5.1).
///
/// The builder keeps one pending hash per one bit of the chunk count (`O(log n)` memory, like
/// a binary counter: pushing a leaf merges equal-sized subtrees as a carry propagates), plus a
/// partial chunk of at most `chunk_size` bytes. Built with [`MerkleBuilder::with_tree`], it
/// also keeps every node hash so that [`MerkleBuilder::finish_tree`] can return the seeder's
/// [`MerkleTree`].
///
/// ```
/// use ppspp_core::hash::HashAlgorithm;
/// use ppspp_core::merkle::MerkleBuilder;
///
/// let mut b = MerkleBuilder::new(HashAlgorithm::Sha1, 1024)?;
/// b.update(b"Hello ")?;
/// b.update(b"world!\n")?;
/// let root = b.finish()?;
/// assert_eq!(root.hash.to_string(), "47a013e660d408619d894b20806b1d5086aab03b");
/// assert_eq!((root.chunk_count, root.content_len), (1, 13));
/// # Ok::<(), ppspp_core::merkle::BuildError>(())
/// ```
#[derive(Clone)]
pub struct MerkleBuilder {
    alg: HashAlgorithm,
    hlen: usize,
    chunk_size: u32,
    /// Bytes of the chunk being filled by [`MerkleBuilder::update`].
    partial: Vec<u8>,
    /// A chunk shorter than `chunk_size` was pushed: it must be the last.
    closed: bool,
    chunks: u64,
    content_len: u64,
    /// `levels[l]` is the complete subtree of layer `l` waiting for its right sibling; it is
    /// meaningful exactly when bit `l` of `chunks` is set.
    levels: [Buf; 64],
    /// Every node hash so far, `hlen` bytes per bin, indexed by bin number (when keeping the
    /// tree).
    nodes: Option<Vec<u8>>,
}

/// The root of content built by a [`MerkleBuilder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MerkleRoot {
    /// The root hash: the swarm ID of static content.
    pub hash: HashValue,
    /// The number of chunks `N`.
    pub chunk_count: u64,
    /// The content length in bytes.
    pub content_len: u64,
}

/// Why a tree could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// A chunk shorter than the chunk size was pushed, so it had to be the last one.
    AfterShortChunk,
    /// A chunk longer than the chunk size, or an empty chunk, was pushed.
    BadChunkLength {
        /// Its length.
        len: usize,
        /// The chunk size.
        chunk_size: u32,
    },
    /// A leaf hash of the wrong length was pushed.
    BadHashLength {
        /// Its length.
        len: usize,
        /// The algorithm's output length.
        expected: usize,
    },
    /// The content is empty: a Merkle tree needs at least one byte.
    EmptyContent,
    /// [`MerkleBuilder::push_chunk`] or [`MerkleBuilder::push_leaf_hash`] was called while
    /// [`MerkleBuilder::update`] had a partial chunk pending.
    PartialChunkPending,
    /// [`MerkleBuilder::finish_tree`] on a builder made without [`MerkleBuilder::with_tree`].
    TreeNotKept,
    /// More than [`MAX_CHUNKS`] chunks.
    TooManyChunks,
    /// The chunk size is zero.
    ZeroChunkSize,
}

impl MerkleBuilder {
    /// A builder that computes the root only, in `O(log n)` memory.
    pub fn new(alg: HashAlgorithm, chunk_size: u32) -> Result<Self, BuildError> {
        if chunk_size == 0 {
            return Err(BuildError::ZeroChunkSize);
        }
        Ok(Self {
            alg,
            hlen: alg.output_len(),
            chunk_size,
            partial: Vec::new(),
            closed: false,
            chunks: 0,
            content_len: 0,
            levels: [ZERO; 64],
            nodes: None,
        })
    }

    /// A builder that also keeps every node hash, for [`MerkleBuilder::finish_tree`].
    pub fn with_tree(alg: HashAlgorithm, chunk_size: u32) -> Result<Self, BuildError> {
        let mut b = Self::new(alg, chunk_size)?;
        b.nodes = Some(Vec::new());
        Ok(b)
    }

    /// Allocates the node hashes of content of `content_len` bytes up front (a hint that
    /// saves reallocations when keeping the tree; no effect otherwise). The hint is capped at
    /// 2^30 chunks; a wrong hint only costs memory or reallocations.
    pub fn reserve_for(&mut self, content_len: u64) {
        if let Some(nodes) = &mut self.nodes {
            let chunks = content_len
                .div_ceil(u64::from(self.chunk_size))
                .min(1 << 30);
            let bins = (2 * chunks).saturating_sub(1) as usize;
            if nodes.len() < bins * self.hlen {
                nodes.resize(bins * self.hlen, 0);
            }
        }
    }

    /// Feeds the next bytes of the content; they are cut into chunks of `chunk_size` bytes.
    ///
    /// Whole chunks are hashed straight from `data` (no copy); only a chunk split across calls
    /// is buffered.
    pub fn update(&mut self, data: &[u8]) -> Result<(), BuildError> {
        if data.is_empty() {
            return Ok(());
        }
        if self.closed {
            return Err(BuildError::AfterShortChunk);
        }
        with_digest!(self.alg, D => self.update_impl::<D>(data))
    }

    /// Pushes one whole chunk: `1..=chunk_size` bytes; only the last chunk may be shorter than
    /// `chunk_size`. Cannot be mixed with a partial chunk from [`MerkleBuilder::update`].
    pub fn push_chunk(&mut self, chunk: &[u8]) -> Result<(), BuildError> {
        self.check_push(chunk.len())?;
        with_digest!(self.alg, D => {
            let mut h = ZERO;
            leaf::<D>(chunk, &mut h);
            self.push_leaf::<D>(&h, chunk.len())
        })
    }

    /// Pushes the hash of the next chunk, computed elsewhere, with the chunk's length (used
    /// by the simulator, whose synthetic content is never materialised).
    pub fn push_leaf_hash(&mut self, hash: &HashValue, len: usize) -> Result<(), BuildError> {
        if hash.len() != self.hlen {
            return Err(BuildError::BadHashLength {
                len: hash.len(),
                expected: self.hlen,
            });
        }
        self.check_push(len)?;
        let mut h = ZERO;
        h[..self.hlen].copy_from_slice(hash.as_bytes());
        with_digest!(self.alg, D => self.push_leaf::<D>(&h, len))
    }

    /// The number of whole chunks hashed so far (a pending partial chunk is not counted).
    pub const fn chunk_count(&self) -> u64 {
        self.chunks
    }

    /// The number of content bytes fed so far.
    pub fn content_len(&self) -> u64 {
        self.content_len + self.partial.len() as u64
    }

    /// The hash function.
    pub const fn algorithm(&self) -> HashAlgorithm {
        self.alg
    }

    /// The chunk size.
    pub const fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Ends the content and returns the root.
    pub fn finish(self) -> Result<MerkleRoot, BuildError> {
        Ok(self.finish_parts()?.root)
    }

    /// Ends the content and returns the whole tree (only for a builder made with
    /// [`MerkleBuilder::with_tree`]).
    pub fn finish_tree(self) -> Result<MerkleTree, BuildError> {
        if self.nodes.is_none() {
            return Err(BuildError::TreeNotKept);
        }
        let (alg, chunk_size) = (self.alg, self.chunk_size);
        let done = self.finish_parts()?;
        Ok(MerkleTree::from_parts(
            alg,
            chunk_size,
            done.root,
            done.nodes.unwrap_or_default(),
            done.spine,
        ))
    }

    fn check_push(&self, len: usize) -> Result<(), BuildError> {
        if !self.partial.is_empty() {
            return Err(BuildError::PartialChunkPending);
        }
        if self.closed {
            return Err(BuildError::AfterShortChunk);
        }
        if len == 0 || len > self.chunk_size as usize {
            return Err(BuildError::BadChunkLength {
                len,
                chunk_size: self.chunk_size,
            });
        }
        Ok(())
    }

    fn update_impl<D: Digest>(&mut self, mut data: &[u8]) -> Result<(), BuildError> {
        let cs = self.chunk_size as usize;
        let mut h = ZERO;
        if !self.partial.is_empty() {
            let take = (cs - self.partial.len()).min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() < cs {
                return Ok(());
            }
            leaf::<D>(&self.partial, &mut h);
            self.partial.clear();
            self.push_leaf::<D>(&h, cs)?;
        }
        while data.len() >= cs {
            let (chunk, rest) = data.split_at(cs);
            leaf::<D>(chunk, &mut h);
            self.push_leaf::<D>(&h, cs)?;
            data = rest;
        }
        if !data.is_empty() {
            if self.partial.capacity() < cs {
                self.partial.reserve_exact(cs);
            }
            self.partial.extend_from_slice(data);
        }
        Ok(())
    }

    /// Adds leaf `chunks` with hash `h` and merges completed subtrees (binary-counter carry).
    #[inline]
    fn push_leaf<D: Digest>(&mut self, h: &Buf, len: usize) -> Result<(), BuildError> {
        let c = self.chunks;
        if c >= MAX_CHUNKS {
            return Err(BuildError::TooManyChunks);
        }
        let hlen = self.hlen;
        if let Some(nodes) = &mut self.nodes {
            // Leaf c is bin 2c; every node completed by this leaf has a smaller bin number.
            let end = (2 * c as usize + 1) * hlen;
            if nodes.len() < end {
                nodes.resize(end.max(2 * nodes.len()), 0);
            }
            nodes[end - hlen..end].copy_from_slice(&h[..hlen]);
        }
        let mut cur = *h;
        let mut layer = 0;
        while (c >> layer) & 1 == 1 {
            let mut up = ZERO;
            parent::<D>(&self.levels[layer][..hlen], &cur[..hlen], &mut up);
            cur = up;
            layer += 1;
            if let Some(nodes) = &mut self.nodes {
                // The ancestor of leaf c at `layer`: (2·(c >> layer) + 1)·2^layer − 1.
                let bin = (((c >> layer) << (layer + 1)) | ((1 << layer) - 1)) as usize;
                nodes[bin * hlen..(bin + 1) * hlen].copy_from_slice(&cur[..hlen]);
            }
        }
        self.levels[layer] = cur;
        self.chunks = c + 1;
        self.content_len += len as u64;
        if len < self.chunk_size as usize {
            self.closed = true;
        }
        Ok(())
    }

    /// Flushes the partial chunk and folds the pending subtrees into the root.
    ///
    /// Returns the root, the flat node array (when kept) and the hashes of the nodes that
    /// straddle the end of the content (ancestors of the last leaf whose range reaches past
    /// it), indexed by layer.
    fn finish_parts(mut self) -> Result<Finished, BuildError> {
        with_digest!(self.alg, D => {
            if !self.partial.is_empty() {
                let mut h = ZERO;
                leaf::<D>(&self.partial, &mut h);
                let len = self.partial.len();
                self.partial = Vec::new();
                self.push_leaf::<D>(&h, len)?;
            }
            let n = self.chunks;
            if n == 0 {
                return Err(BuildError::EmptyContent);
            }
            let hlen = self.hlen;
            let root_layer = n.next_power_of_two().trailing_zeros();
            let low = n.trailing_zeros();
            let mut spine = alloc::vec![0u8; (root_layer as usize + 1) * hlen];
            let mut acc = self.levels[low as usize];
            for k in low..root_layer {
                // `acc` is the ancestor of the last leaf at layer k. At k = low it is the
                // rightmost complete subtree, a left child whose sibling is all empty; above,
                // it is a right child exactly when bit k of n is set, and then its left
                // sibling is the complete subtree waiting in levels[k].
                let mut up = ZERO;
                if k > low && (n >> k) & 1 == 1 {
                    parent::<D>(&self.levels[k as usize][..hlen], &acc[..hlen], &mut up);
                } else {
                    parent::<D>(&acc[..hlen], &ZERO[..hlen], &mut up);
                }
                acc = up;
                let at = (k as usize + 1) * hlen;
                spine[at..at + hlen].copy_from_slice(&acc[..hlen]);
            }
            let root = MerkleRoot {
                hash: HashValue::from_slice(&acc[..hlen]).unwrap_or(HashValue::zero(0)),
                chunk_count: n,
                content_len: self.content_len,
            };
            let mut nodes = self.nodes.take();
            if let Some(nodes) = &mut nodes {
                nodes.truncate((2 * n as usize - 1) * hlen);
            }
            Ok(Finished { root, nodes, spine })
        })
    }
}

/// What [`MerkleBuilder::finish_parts`] produces.
struct Finished {
    root: MerkleRoot,
    /// The flat node array, when kept.
    nodes: Option<Vec<u8>>,
    /// The straddling ancestors of the last leaf, `hlen` bytes per layer.
    spine: Vec<u8>,
}

impl fmt::Debug for MerkleBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerkleBuilder")
            .field("alg", &self.alg)
            .field("chunk_size", &self.chunk_size)
            .field("chunks", &self.chunks)
            .field("content_len", &self.content_len())
            .field("keeps_tree", &self.nodes.is_some())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AfterShortChunk => {
                f.write_str("a chunk shorter than the chunk size must be the last one")
            }
            Self::BadChunkLength { len, chunk_size } => {
                write!(f, "chunk of {len} bytes with a chunk size of {chunk_size}")
            }
            Self::BadHashLength { len, expected } => {
                write!(f, "leaf hash of {len} bytes, expected {expected}")
            }
            Self::EmptyContent => {
                f.write_str("empty content: a Merkle tree needs at least one byte")
            }
            Self::PartialChunkPending => f.write_str("a partial chunk is pending"),
            Self::TreeNotKept => f.write_str("the builder was not asked to keep the tree"),
            Self::TooManyChunks => write!(f, "more than {MAX_CHUNKS} chunks"),
            Self::ZeroChunkSize => f.write_str("the chunk size must be at least 1 byte"),
        }
    }
}

impl core::error::Error for BuildError {}

/// The root hash of `data` cut into chunks of `chunk_size` bytes.
pub fn root_hash(
    alg: HashAlgorithm,
    chunk_size: u32,
    data: &[u8],
) -> Result<HashValue, BuildError> {
    let mut b = MerkleBuilder::new(alg, chunk_size)?;
    b.update(data)?;
    Ok(b.finish()?.hash)
}
