//! The Merkle tree sidecar: a file an HTTP origin hosts next to the content, holding every node
//! hash of its tree, so that a client fetching content from the origin can verify each chunk
//! exactly as one received from a peer (a peer sends the hashes with its DATA; a plain file
//! server sends only bytes). `ppspp hash --tree FILE.mhash` writes it; see `docs/origin.md`.
//!
//! # Layout
//!
//! All integers big-endian.
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `PPSPPMT1` |
//! | 1 | hash function wire code (RFC 7574 §7.6: 0 SHA-1 … 4 SHA-512) |
//! | 3 | zero |
//! | 4 | chunk size in bytes |
//! | 8 | content length in bytes (≥ 1) |
//! | 8 | zero |
//! | `p·h` | the peak hashes of the `N` chunks, left to right (RFC 7574 §5.6.1) |
//! | … | the layers, root layer first, leaves last: layer `j` holds `⌈N / 2^j⌉` hashes, node `i` of the layer being bin (`j`, `i`); nodes wholly past the end (all-zero) are left out |
//!
//! `h` is the hash length and `p` the number of peaks. The peaks come first so that one short
//! range at the start of the file gives the content's size checked against the root hash; the
//! layers come top down so that a prefix of the file holds whole upper layers, which check
//! against the root as one fold: a client fetches a prefix once, then, for each part of the
//! content it fetches, the slice of the leaf layer under one node of the lowest layer it has.
//! Nothing in the file is trusted: every hash is checked against the swarm ID before use.

use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use super::MAX_CHUNKS;
use super::tree::MerkleTree;
use crate::bin::Bin;
use crate::hash::HashAlgorithm;

/// The magic bytes a sidecar starts with.
pub const SIDECAR_MAGIC: [u8; 8] = *b"PPSPPMT1";
/// The length of the sidecar's header.
pub const SIDECAR_HEADER_LEN: u64 = 32;

/// Why a sidecar header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SidecarError {
    /// Fewer than [`SIDECAR_HEADER_LEN`] bytes.
    Short,
    /// Not a sidecar (wrong magic or non-zero reserved bytes).
    BadMagic,
    /// An unassigned hash function code.
    UnknownHash(u8),
    /// Zero chunk size, zero content length, or more than [`MAX_CHUNKS`] chunks.
    BadSize,
}

impl fmt::Display for SidecarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short => f.write_str("shorter than a tree sidecar header"),
            Self::BadMagic => f.write_str("not a ppspp tree sidecar (bad magic)"),
            Self::UnknownHash(c) => write!(f, "unknown hash function code {c}"),
            Self::BadSize => f.write_str("impossible chunk size or content length"),
        }
    }
}

impl core::error::Error for SidecarError {}

/// Where everything is in the sidecar of one content (computed from its header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SidecarLayout {
    /// The hash function.
    pub hash: HashAlgorithm,
    /// The chunk size in bytes.
    pub chunk_size: u32,
    /// The content length in bytes.
    pub content_len: u64,
}

impl SidecarLayout {
    /// The layout of a sidecar with this header.
    pub fn new(
        hash: HashAlgorithm,
        chunk_size: u32,
        content_len: u64,
    ) -> Result<Self, SidecarError> {
        if chunk_size == 0
            || content_len == 0
            || content_len.div_ceil(u64::from(chunk_size)) > MAX_CHUNKS
        {
            return Err(SidecarError::BadSize);
        }
        Ok(Self {
            hash,
            chunk_size,
            content_len,
        })
    }

    /// Reads a header (the first [`SIDECAR_HEADER_LEN`] bytes of `bytes`).
    pub fn parse(bytes: &[u8]) -> Result<Self, SidecarError> {
        let h = bytes
            .get(..SIDECAR_HEADER_LEN as usize)
            .ok_or(SidecarError::Short)?;
        if h[..8] != SIDECAR_MAGIC || h[9..12] != [0; 3] || h[24..32] != [0; 8] {
            return Err(SidecarError::BadMagic);
        }
        let hash = HashAlgorithm::from_code(h[8]).ok_or(SidecarError::UnknownHash(h[8]))?;
        let chunk_size = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
        let mut len = [0u8; 8];
        len.copy_from_slice(&h[16..24]);
        Self::new(hash, chunk_size, u64::from_be_bytes(len))
    }

    /// The header's bytes.
    pub fn header(&self) -> [u8; SIDECAR_HEADER_LEN as usize] {
        let mut h = [0u8; SIDECAR_HEADER_LEN as usize];
        h[..8].copy_from_slice(&SIDECAR_MAGIC);
        h[8] = self.hash.code();
        h[12..16].copy_from_slice(&self.chunk_size.to_be_bytes());
        h[16..24].copy_from_slice(&self.content_len.to_be_bytes());
        h
    }

    /// The number of chunks `N`.
    pub fn chunks(&self) -> u64 {
        self.content_len.div_ceil(u64::from(self.chunk_size))
    }

    /// The root's layer (the tree is `2^root_layer` chunks wide).
    pub fn root_layer(&self) -> u32 {
        Bin::root_covering(self.chunks()).map_or(0, Bin::layer)
    }

    fn hlen(&self) -> u64 {
        self.hash.output_len() as u64
    }

    /// The bytes of the peak hashes.
    pub fn peaks(&self) -> Range<u64> {
        let p = u64::from(self.chunks().count_ones());
        SIDECAR_HEADER_LEN..SIDECAR_HEADER_LEN + p * self.hlen()
    }

    /// The number of hashes in layer `layer`.
    pub fn layer_len(&self, layer: u32) -> u64 {
        if layer >= 64 {
            return 1;
        }
        self.chunks().div_ceil(1 << layer)
    }

    /// The bytes of the hashes of layer `layer`'s nodes `nodes` (clamped to the layer).
    pub fn layer_bytes(&self, layer: u32, nodes: Range<u64>) -> Range<u64> {
        let mut off = self.peaks().end;
        let mut j = self.root_layer();
        while j > layer {
            off += self.layer_len(j) * self.hlen();
            j -= 1;
        }
        let n = self.layer_len(layer);
        let (a, b) = (nodes.start.min(n), nodes.end.min(n));
        off + a * self.hlen()..off + b.max(a) * self.hlen()
    }

    /// The sidecar's total length in bytes.
    pub fn total_len(&self) -> u64 {
        self.layer_bytes(0, 0..u64::MAX).end
    }

    /// The lowest layer whose hashes all lie within the first `prefix` bytes (`None`: not
    /// even the root's).
    pub fn lowest_layer_within(&self, prefix: u64) -> Option<u32> {
        let mut found = None;
        for j in (0..=self.root_layer()).rev() {
            if self.layer_bytes(j, 0..u64::MAX).end <= prefix {
                found = Some(j);
            } else {
                break;
            }
        }
        found
    }

    /// The bytes of chunks `chunks` in the content (clamped to it).
    pub fn content_bytes(&self, chunks: Range<u64>) -> Range<u64> {
        let cs = u64::from(self.chunk_size);
        let a = chunks.start.saturating_mul(cs).min(self.content_len);
        let b = chunks.end.saturating_mul(cs).min(self.content_len);
        a..b.max(a)
    }
}

/// The whole sidecar of `tree` (what `ppspp hash --tree` writes), in layout order.
///
/// # Panics
/// Never for a tree built by this crate (every node inside the content has a hash).
pub fn sidecar_bytes(tree: &MerkleTree) -> Vec<u8> {
    let layout = SidecarLayout {
        hash: tree.algorithm(),
        chunk_size: tree.chunk_size(),
        content_len: tree.content_len(),
    };
    let mut out = Vec::with_capacity(layout.total_len() as usize);
    out.extend_from_slice(&layout.header());
    for p in tree.peaks() {
        out.extend_from_slice(p.1.as_bytes());
    }
    for j in (0..=layout.root_layer()).rev() {
        for i in 0..layout.layer_len(j) {
            let bin = Bin::from_layer_offset(j, i).expect("node inside the tree");
            out.extend_from_slice(tree.hash_bytes(bin).expect("node inside the tree"));
        }
    }
    out
}
