//! The complete Merkle tree a seeder holds.

use alloc::vec::Vec;
use core::fmt;

use super::builder::{BuildError, MerkleBuilder, MerkleRoot};
use super::hasher::ZERO;
use super::integrity::{Integrity, IntegrityError, NodeHashes, Peaks, integrity};
use crate::bin::Bin;
use crate::hash::{HashAlgorithm, HashValue};

/// Every node hash of a content's Merkle tree (RFC 7574 §5.1): what a seeder needs to send
/// the INTEGRITY messages for any chunk.
///
/// Built by [`MerkleBuilder::with_tree`] and [`MerkleBuilder::finish_tree`], or at once by
/// [`MerkleTree::build`]. Storage is about `2·N` hashes for `N` chunks: one flat array indexed
/// by bin number for the nodes wholly inside the content, plus one hash per layer for the
/// nodes that straddle its end; nodes wholly past the end are all-zero and not stored.
///
/// ```
/// use ppspp_core::Bin;
/// use ppspp_core::hash::HashAlgorithm;
/// use ppspp_core::merkle::MerkleTree;
///
/// // 7 chunks of 1 KiB (RFC 7574 Figure 3): the uncles of chunk 4 are bins 10, 13 and 3;
/// // they are sent highest first.
/// let tree = MerkleTree::build(HashAlgorithm::Sha256, 1024, &[7u8; 7 * 1024])?;
/// let bins: Vec<Bin> = tree.uncles(4)?.map(|(bin, _)| bin).collect();
/// assert_eq!(bins, [Bin::from_raw(3), Bin::from_raw(13), Bin::from_raw(10)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MerkleTree {
    alg: HashAlgorithm,
    hlen: usize,
    chunk_size: u32,
    chunks: u64,
    content_len: u64,
    root: HashValue,
    root_bin: Bin,
    /// `hlen` bytes per bin for bins `0..2N−1`; only nodes wholly inside the content are
    /// meaningful.
    nodes: Vec<u8>,
    /// `hlen` bytes per layer: the ancestor of the last leaf at that layer, for the layers
    /// where it straddles the end of the content.
    spine: Vec<u8>,
}

impl MerkleTree {
    /// Builds the tree of `data` cut into chunks of `chunk_size` bytes.
    pub fn build(alg: HashAlgorithm, chunk_size: u32, data: &[u8]) -> Result<Self, BuildError> {
        let mut b = MerkleBuilder::with_tree(alg, chunk_size)?;
        b.reserve_for(data.len() as u64);
        b.update(data)?;
        b.finish_tree()
    }

    pub(super) fn from_parts(
        alg: HashAlgorithm,
        chunk_size: u32,
        root: MerkleRoot,
        nodes: Vec<u8>,
        spine: Vec<u8>,
    ) -> Self {
        let mut nodes = nodes;
        nodes.shrink_to_fit();
        Self {
            alg,
            hlen: alg.output_len(),
            chunk_size,
            chunks: root.chunk_count,
            content_len: root.content_len,
            root: root.hash,
            // The builder never produces zero or more than MAX_CHUNKS chunks.
            root_bin: Bin::root_covering(root.chunk_count).unwrap_or(Bin::NONE),
            nodes,
            spine,
        }
    }

    /// The hash function.
    pub const fn algorithm(&self) -> HashAlgorithm {
        self.alg
    }

    /// The chunk size in bytes.
    pub const fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// The number of chunks `N`.
    pub const fn chunk_count(&self) -> u64 {
        self.chunks
    }

    /// The content length in bytes.
    pub const fn content_len(&self) -> u64 {
        self.content_len
    }

    /// The root hash: the swarm ID of static content.
    pub const fn root_hash(&self) -> HashValue {
        self.root
    }

    /// The root's bin: the tree is `2^layer` chunks wide.
    pub const fn root_bin(&self) -> Bin {
        self.root_bin
    }

    /// The length of chunk `chunk` in bytes, or `None` past the end.
    pub fn chunk_len(&self, chunk: u64) -> Option<usize> {
        if chunk >= self.chunks {
            return None;
        }
        let start = chunk * u64::from(self.chunk_size);
        let len = (self.content_len - start).min(u64::from(self.chunk_size));
        Some(len as usize)
    }

    /// The hash of `bin` as bytes: all-zero for a node wholly past the end of the content,
    /// `None` for a bin outside the tree.
    pub fn hash_bytes(&self, bin: Bin) -> Option<&[u8]> {
        if !self.root_bin.contains(bin) {
            return None;
        }
        let hlen = self.hlen;
        let (first, last) = (bin.first_chunk()?, bin.last_chunk()?);
        if first >= self.chunks {
            Some(&ZERO[..hlen])
        } else if last < self.chunks {
            let i = usize::try_from(bin.raw()).ok()?;
            self.nodes.get(i * hlen..(i + 1) * hlen)
        } else {
            let l = bin.layer() as usize;
            self.spine.get(l * hlen..(l + 1) * hlen)
        }
    }

    /// The hash of `bin`, as [`MerkleTree::hash_bytes`].
    pub fn hash(&self, bin: Bin) -> Option<HashValue> {
        self.hash_bytes(bin).and_then(HashValue::from_slice)
    }

    /// The peak hashes, left to right (RFC 7574 §5.6.1).
    pub fn peaks(&self) -> Peaks<'_, Self> {
        Peaks::new(self, self.chunks)
    }

    /// The INTEGRITY messages (bin, hash) to send with chunk `chunk` (RFC 7574 §5.3–§5.6.2);
    /// see [`integrity`](super::integrity()).
    pub fn integrity<F: FnMut(Bin) -> bool>(
        &self,
        chunk: u64,
        with_peaks: bool,
        known: F,
    ) -> Result<Integrity<'_, Self, F>, IntegrityError> {
        integrity(self, chunk, with_peaks, known)
    }

    /// Every uncle hash of chunk `chunk` that is not all-zero, highest first: what a receiver
    /// that knows only the root and `N` needs.
    pub fn uncles(
        &self,
        chunk: u64,
    ) -> Result<impl Iterator<Item = (Bin, HashValue)> + '_, IntegrityError> {
        integrity(self, chunk, false, |_| false)
    }

    /// Bytes of heap the tree holds.
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() + self.spine.capacity()
    }
}

impl NodeHashes for MerkleTree {
    fn algorithm(&self) -> HashAlgorithm {
        self.alg
    }

    fn chunk_count(&self) -> Option<u64> {
        Some(self.chunks)
    }

    fn node_hash(&self, bin: Bin) -> Option<HashValue> {
        self.hash(bin)
    }

    fn has_node(&self, bin: Bin) -> bool {
        self.hash_bytes(bin).is_some()
    }

    fn copy_node_hash(&self, bin: Bin, out: &mut [u8]) -> Option<usize> {
        super::integrity::copy_hash_bytes(self.hash_bytes(bin), out)
    }
}

impl fmt::Debug for MerkleTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerkleTree")
            .field("alg", &self.alg)
            .field("chunk_size", &self.chunk_size)
            .field("chunks", &self.chunks)
            .field("content_len", &self.content_len)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}
