//! The sender's side: which hashes go in the INTEGRITY messages before a chunk's DATA.

use core::fmt;

use crate::bin::{Bin, Cover};
use crate::binmap::Binmap;
use crate::hash::{HashAlgorithm, HashValue};

/// A source of node hashes: a seeder's [`super::MerkleTree`] or a leecher's
/// [`super::PartialTree`] (which can serve the chunks it has verified).
pub trait NodeHashes {
    /// The hash function.
    fn algorithm(&self) -> HashAlgorithm;

    /// The number of chunks `N`, if known.
    fn chunk_count(&self) -> Option<u64>;

    /// The hash of `bin` if this source has it (all-zero for a node wholly past the end of
    /// the content).
    fn node_hash(&self, bin: Bin) -> Option<HashValue>;

    /// Whether [`NodeHashes::node_hash`] would return a hash for `bin` (without copying it).
    fn has_node(&self, bin: Bin) -> bool {
        self.node_hash(bin).is_some()
    }

    /// Copies the hash of `bin` to the start of `out` and returns its length; `None` if this
    /// source lacks it or `out` is too short. (A sender writes hashes straight into datagrams.)
    fn copy_node_hash(&self, bin: Bin, out: &mut [u8]) -> Option<usize> {
        let h = self.node_hash(bin)?;
        out.get_mut(..h.len())?.copy_from_slice(h.as_bytes());
        Some(h.len())
    }
}

/// [`NodeHashes::copy_node_hash`] for sources that hold hashes as byte slices.
pub(super) fn copy_hash_bytes(hash: Option<&[u8]>, out: &mut [u8]) -> Option<usize> {
    let h = hash?;
    out.get_mut(..h.len())?.copy_from_slice(h);
    Some(h.len())
}

/// Why no INTEGRITY list could be produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IntegrityError {
    /// The source lacks a hash the receiver needs (a leecher serving a chunk it has not
    /// verified).
    MissingHash {
        /// The node whose hash is missing.
        bin: Bin,
    },
    /// The chunk is past the end of the content.
    OutOfRange {
        /// The chunk index.
        chunk: u64,
    },
    /// The source does not know the number of chunks yet.
    SizeUnknown,
}

impl fmt::Display for IntegrityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHash { bin } => write!(f, "the hash of bin {bin} is not available"),
            Self::OutOfRange { chunk } => write!(f, "chunk {chunk} is past the end"),
            Self::SizeUnknown => f.write_str("the number of chunks is not known yet"),
        }
    }
}

impl core::error::Error for IntegrityError {}

/// The INTEGRITY messages, as (bin, hash) pairs, that must precede the DATA of chunk `chunk`.
///
/// - With `with_peaks`, the peak hashes come first, left to right (RFC 7574 §5.6.2: on the
///   first DATA to a peer, when automatic size detection is used and the peer has not
///   acknowledged any chunk). A receiver checks them against the root and then knows every
///   node above them, so the uncles then stop at the chunk's peak.
/// - Then the uncle hashes the receiver needs, highest first (§5.4): walking up from the chunk,
///   the walk stops at the first node the receiver already knows; the siblings of the nodes
///   below it are sent from the top down.
/// - A hash for which `known(bin)` holds is left out (§5.3 R-5.3-e). [`AckedHashes`] derives
///   `known` from the chunks the receiver acknowledged.
/// - All-zero hashes of nodes past the end of the content are never sent: a
///   receiver that knows `N` supplies them itself.
///
/// The list is produced lazily, without allocating; it holds at most `64 + 64` entries.
pub fn integrity<T, F>(
    tree: &T,
    chunk: u64,
    with_peaks: bool,
    mut known: F,
) -> Result<Integrity<'_, T, F>, IntegrityError>
where
    T: NodeHashes + ?Sized,
    F: FnMut(Bin) -> bool,
{
    let n = tree.chunk_count().ok_or(IntegrityError::SizeUnknown)?;
    let leaf = Bin::leaf(chunk)
        .filter(|_| chunk < n)
        .ok_or(IntegrityError::OutOfRange { chunk })?;
    let root_layer = n.next_power_of_two().trailing_zeros();
    // The walk up stops at the first node the receiver knows (the root at the latest).
    let mut stop = root_layer;
    for layer in 0..root_layer {
        let Some(node) = leaf.ancestor_at(layer) else {
            break;
        };
        if (with_peaks && is_peak(node, n)) || known(node) {
            stop = layer;
            break;
        }
    }
    // Check up front that every hash to send is there, so the iterator cannot fail.
    for layer in 0..stop {
        if let Some(uncle) = leaf.ancestor_at(layer).and_then(Bin::sibling) {
            if !is_empty(uncle, n) && !tree.has_node(uncle) {
                return Err(IntegrityError::MissingHash { bin: uncle });
            }
        }
    }
    if with_peaks {
        if let Some(bin) = Bin::peaks(n).find(|&p| !tree.has_node(p)) {
            return Err(IntegrityError::MissingHash { bin });
        }
    }
    Ok(Integrity {
        tree,
        known,
        chunks: n,
        leaf,
        peaks: with_peaks.then(|| Bin::peaks(n)),
        layer: stop,
    })
}

/// Iterator over the (bin, hash) pairs of the INTEGRITY messages for one chunk; see
/// [`integrity`](integrity()).
pub struct Integrity<'a, T: ?Sized, F> {
    tree: &'a T,
    known: F,
    chunks: u64,
    leaf: Bin,
    peaks: Option<Cover>,
    /// Uncles remain for the layers below this one.
    layer: u32,
}

impl<T: NodeHashes + ?Sized, F: FnMut(Bin) -> bool> Integrity<'_, T, F> {
    /// The next node whose hash goes in the list (the source has it).
    fn next_bin(&mut self) -> Option<Bin> {
        if let Some(peaks) = &mut self.peaks {
            for peak in peaks.by_ref() {
                if !(self.known)(peak) && self.tree.has_node(peak) {
                    return Some(peak);
                }
            }
            self.peaks = None;
        }
        while self.layer > 0 {
            self.layer -= 1;
            let uncle = self.leaf.ancestor_at(self.layer)?.sibling()?;
            if is_empty(uncle, self.chunks) || (self.known)(uncle) {
                continue;
            }
            if self.tree.has_node(uncle) {
                return Some(uncle);
            }
        }
        None
    }

    /// The same list without the hashes: the nodes only, in order, for a sender that copies
    /// each hash straight into its datagram.
    pub fn bins(mut self) -> impl Iterator<Item = Bin> {
        core::iter::from_fn(move || self.next_bin())
    }
}

impl<T: NodeHashes + ?Sized, F: FnMut(Bin) -> bool> Iterator for Integrity<'_, T, F> {
    type Item = (Bin, HashValue);

    fn next(&mut self) -> Option<(Bin, HashValue)> {
        loop {
            let bin = self.next_bin()?;
            if let Some(h) = self.tree.node_hash(bin) {
                return Some((bin, h));
            }
        }
    }
}

impl<T: ?Sized, F> fmt::Debug for Integrity<'_, T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Integrity")
            .field("leaf", &self.leaf)
            .field("chunks", &self.chunks)
            .field("peaks_pending", &self.peaks.is_some())
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

/// Iterator over the peak (bin, hash) pairs of a tree, left to right (RFC 7574 §5.6.1).
pub struct Peaks<'a, T: ?Sized> {
    tree: &'a T,
    bins: Cover,
}

impl<'a, T: NodeHashes + ?Sized> Peaks<'a, T> {
    pub(super) fn new(tree: &'a T, chunks: u64) -> Self {
        Self {
            tree,
            bins: Bin::peaks(chunks),
        }
    }
}

impl<T: NodeHashes + ?Sized> Iterator for Peaks<'_, T> {
    type Item = (Bin, HashValue);

    fn next(&mut self) -> Option<(Bin, HashValue)> {
        let bin = self.bins.next()?;
        Some((bin, self.tree.node_hash(bin)?))
    }
}

impl<T: ?Sized> fmt::Debug for Peaks<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peaks")
            .field("bins", &self.bins)
            .finish_non_exhaustive()
    }
}

/// What a receiver is sure to know, derived from the chunks it acknowledged (HAVE or ACK).
///
/// RFC 7574 §5.3 (R-5.3-e): "every acknowledged chunk implies its uncle chain and all nodes
/// computed along it". A receiver that verified chunk `c` holds every ancestor of `c` and the
/// sibling of each, so it knows `bin` exactly when a chunk under `bin`, or under `bin`'s
/// sibling, was acknowledged. ([`super::PartialTree`] keeps precisely this invariant: its
/// verified set is closed under parent and sibling.)
#[derive(Clone, Copy, Debug)]
pub struct AckedHashes<'a> {
    acked: &'a Binmap,
}

impl<'a> AckedHashes<'a> {
    /// Knowledge implied by the acknowledged chunks `acked`.
    pub const fn new(acked: &'a Binmap) -> Self {
        Self { acked }
    }

    /// Whether the receiver must hold the hash of `bin`.
    pub fn knows(&self, bin: Bin) -> bool {
        self.acked.intersects_bin(bin)
            || bin.sibling().is_some_and(|s| self.acked.intersects_bin(s))
    }

    /// The lowest layer at which the receiver knows the nodes on `chunk`'s path to the root
    /// (an ancestor of the leaf, and its sibling, the uncle): it knows both at layer `L` exactly
    /// when it acknowledged a chunk in their parent, the aligned block of `2^(L+1)` chunks
    /// around `chunk`, and so at every layer above. Two lookups (the nearest acknowledged chunk
    /// on each side) instead of [`AckedHashes::knows`] at every layer. `None`: nothing known.
    pub fn lowest_known_layer(&self, chunk: u64) -> Option<u32> {
        let layer = |p: u64| (64 - (p ^ chunk).leading_zeros()).saturating_sub(1);
        let (left, right) = self.acked.present_around(chunk);
        let (left, right) = (left.map(layer), right.map(layer));
        match (left, right) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Whether `bin` is a peak of content with `chunks` chunks: a filled node whose sibling is
/// incomplete (RFC 7574 §5.6.1), i.e. one of [`Bin::peaks`]`(chunks)`.
pub fn is_peak(bin: Bin, chunks: u64) -> bool {
    let layer = bin.layer();
    if layer >= Bin::MAX_LAYER || (chunks >> layer) & 1 == 0 {
        return false;
    }
    let start = (chunks >> (layer + 1)) << (layer + 1);
    bin.first_chunk() == Some(start)
}

/// Whether `bin` lies wholly past the end of content with `chunks` chunks (all-zero hash).
pub(crate) fn is_empty(bin: Bin, chunks: u64) -> bool {
    bin.first_chunk().is_some_and(|first| first >= chunks)
}
