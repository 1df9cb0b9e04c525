//! Content integrity with Merkle hash trees (RFC 7574 §5).
//!
//! Static content is named by the root hash of a Merkle tree over its chunks (the swarm ID);
//! every chunk travels with the hashes needed to check it against that root. This module
//! holds both ends of that exchange.
//!
//! # The tree (§5.1)
//!
//! Content of `N ≥ 1` chunks of a fixed size (the last chunk is shorter and not padded) is
//! laid on the leaves of a binary tree `W` = next power of two ≥ `N` wide, numbered with
//! [bins](crate::bin). Leaf `i` holds `H(chunk i)`; leaves `N..W` hold the all-zero hash; a
//! parent of two all-zero (empty) children is all-zero *without hashing*; every other parent
//! is `H(left ‖ right)`. This reproduces libswift's root hashes. The hash function is any
//! [`HashAlgorithm`](crate::hash::HashAlgorithm) (SHA-1 for libswift, SHA-256 by default).
//!
//! # Roles
//!
//! - **Hashing a file** ([`MerkleBuilder`], [`root_hash`]): a streaming builder fed bytes or
//!   whole chunks; it keeps `O(log N)` pending hashes for the root alone, or every node hash
//!   when asked to keep the tree. `ppspp hash` uses it.
//! - **Seeder** ([`MerkleTree`]): every node hash, the peak hashes (§5.6.1), and the
//!   INTEGRITY list for any chunk ([`integrity`](integrity())): the peaks first when needed
//!   (§5.6.2), then the uncles from the top down (§5.4), leaving out what the receiver
//!   already knows ([`AckedHashes`] derives that from its acknowledgements, §5.3) and never
//!   sending all-zero hashes.
//! - **Receiver** ([`PartialTree`]): a tree anchored at a trusted root (or at trusted subtree
//!   roots, for live content). It takes candidate hashes from INTEGRITY messages and chunks
//!   from DATA messages, verifies each chunk by folding it up to a verified node, and records
//!   only verified hashes; a wrong chunk or hash is rejected with a [`VerifyError`] saying
//!   which, and never poisons the tree. It learns `N` from the peak hashes when the size is
//!   not known in advance (automatic size detection, §5.6.2), and a leecher serves the chunks
//!   it verified from it, as a seeder does from a [`MerkleTree`].
//!
//! # Example: a download of RFC 7574 Figure 3's content
//!
//! ```
//! use ppspp_core::binmap::Binmap;
//! use ppspp_core::hash::HashAlgorithm;
//! use ppspp_core::merkle::{AckedHashes, ContentSize, MerkleTree, PartialTree};
//!
//! let content: Vec<u8> = (0..7 * 1024 + 1018).map(|i| i as u8).collect();
//! let seeder = MerkleTree::build(HashAlgorithm::Sha256, 1024, &content)?;
//! // The leecher knows only the swarm ID.
//! let mut leecher =
//!     PartialTree::new(HashAlgorithm::Sha256, 1024, seeder.root_hash(), ContentSize::Unknown)?;
//! let mut acked = Binmap::new();
//! for (c, chunk) in content.chunks(1024).enumerate() {
//!     let c = c as u64;
//!     // Peaks go with the first DATA, until the receiver has acknowledged a chunk.
//!     let known = AckedHashes::new(&acked);
//!     let hashes: Vec<_> = seeder.integrity(c, acked.is_empty(), |b| known.knows(b))?.collect();
//!     leecher.verify_chunk_with(c, chunk, &hashes)?;
//!     acked.insert(c);
//! }
//! assert_eq!(leecher.content_len(), Some(content.len() as u64));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod builder;
mod hasher;
mod integrity;
mod sidecar;
mod store;
mod tree;
mod verify;

#[cfg(test)]
mod tests;

pub use builder::{BuildError, MerkleBuilder, MerkleRoot, root_hash};
pub use integrity::{
    AckedHashes, Integrity, IntegrityError, NodeHashes, Peaks, integrity, is_peak,
};
pub use sidecar::{SIDECAR_HEADER_LEN, SIDECAR_MAGIC, SidecarError, SidecarLayout, sidecar_bytes};
pub use tree::MerkleTree;
pub use verify::{ConfigError, ContentSize, HashStatus, MAX_PENDING, PartialTree, VerifyError};

/// The most chunks a tree may have (2^62): every bin of such a tree, and its root's parent,
/// fit in 64-bit bin numbers.
pub const MAX_CHUNKS: u64 = 1 << 62;
