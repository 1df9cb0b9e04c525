//! The receiver's side: a partial tree built incrementally from a trusted anchor.

use alloc::vec::Vec;
use core::fmt;

use arrayvec::ArrayVec;
use sha1::Digest;

use super::MAX_CHUNKS;
use super::hasher::{Buf, ZERO, leaf, parent, with_digest};
use super::integrity::{
    Integrity, IntegrityError, NodeHashes, Peaks, integrity, is_empty, is_peak,
};
use super::store::NodeStore;
use crate::bin::Bin;
use crate::hash::{HashAlgorithm, HashValue};

/// The most candidate hashes a [`PartialTree`] holds before they are verified. A chunk needs
/// at most 64 peaks and 63 uncles, so this leaves room for a few chunks whose hashes came in
/// earlier datagrams (RFC 7574 §5.3 R-5.3-c); past it, the oldest candidate is dropped.
pub const MAX_PENDING: usize = 256;

/// What the receiver knows about the content's size when it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContentSize {
    /// The exact length in bytes (from metadata): every chunk's length is checked.
    Bytes(u64),
    /// The number of chunks `N`; the last chunk's length is learnt when it verifies.
    Chunks(u64),
    /// Nothing: automatic size detection (RFC 7574 §5.6). `N` is learnt from the peak hashes
    /// and the exact length from the last chunk.
    Unknown,
}

/// Why a [`PartialTree`] could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The trusted hash's length is not the hash function's output length.
    BadHashLength {
        /// Its length.
        len: usize,
        /// The expected length.
        expected: usize,
    },
    /// The trusted subtree is [`Bin::NONE`].
    BadAnchor,
    /// The content size is zero, or more than [`MAX_CHUNKS`] chunks.
    BadContentSize,
    /// The chunk size is zero.
    ZeroChunkSize,
}

/// Why a hash or a chunk was not accepted. Nothing unverified is ever recorded, so after any
/// of these the tree is as it was (minus, for the mismatches, the candidate hashes involved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The chunk's length is impossible at its position: zero, more than the chunk size, a
    /// short chunk that is not the last one, or a last chunk whose length differs from the
    /// known content size.
    BadLength {
        /// The chunk index.
        chunk: u64,
        /// Its length.
        len: usize,
    },
    /// A hash's length is not the hash function's output length.
    BadHashLength {
        /// The node.
        bin: Bin,
        /// The hash's length.
        len: usize,
    },
    /// The node is outside the tree (past its root, or [`Bin::NONE`]).
    BinOutOfRange {
        /// The node.
        bin: Bin,
    },
    /// The chunk's hash, combined only with verified hashes, does not reach the trusted
    /// value: the chunk data is wrong.
    ChunkMismatch {
        /// The chunk index.
        chunk: u64,
    },
    /// Folding the chunk up through candidate hashes did not reach the verified hash of
    /// `bin`: the chunk or one of the candidates below `bin` is wrong. The candidates used
    /// are dropped.
    FoldMismatch {
        /// The chunk index.
        chunk: u64,
        /// The verified node the fold failed to match.
        bin: Bin,
    },
    /// The hash of `bin` contradicts what is verified (a different verified value, a
    /// non-zero hash for a node past the end of the content, or a parent it does not fold
    /// into): it is rejected.
    HashMismatch {
        /// The node.
        bin: Bin,
    },
    /// The chunk cannot be checked yet: the hash of `bin` is neither verified nor among the
    /// candidates (the lowest such node is named). Candidates are kept.
    MissingHashes {
        /// The node whose hash is needed.
        bin: Bin,
    },
    /// The chunk is past the end of the content (or outside the tree).
    OutOfRange {
        /// The chunk index.
        chunk: u64,
    },
    /// Candidate peak hashes did not fold into the root (RFC 7574 §5.6.1): they are dropped.
    PeaksMismatch,
    /// The number of chunks is unknown and no complete set of candidate peaks is there yet
    /// (automatic size detection needs the peaks first, RFC 7574 §5.6.2).
    SizeUnknown,
}

/// What became of a candidate hash given to [`PartialTree::add_hash`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashStatus {
    /// The node was already verified with this very hash (or is an all-zero node past the
    /// end of the content).
    Known,
    /// Kept as a candidate until a chunk's fold uses it.
    Pending,
    /// Verified at once: its sibling and parent were verified and it folds into the parent.
    Verified,
}

/// A receiver's Merkle tree, built incrementally from a trusted root down (RFC 7574 §5.2,
/// §5.3 R-5.3-i).
///
/// Roles: the engine hands it every INTEGRITY message ([`PartialTree::add_hash`]) and every
/// DATA payload ([`PartialTree::verify_chunk`]) that arrive for a swarm, in datagram order;
/// [`PartialTree::verify_chunk_with`] does both for the messages of one datagram.
///
/// - **Trust.** Only hashes that hash-chain to a trusted node are ever *verified*: the root
///   (the swarm ID of static content), or a trusted subtree root such as a signed munro for
///   live content ([`PartialTree::with_trusted_subtree`], [`PartialTree::add_trusted`]).
/// - **Candidates.** Hashes from INTEGRITY messages are held as candidates, at most
///   [`MAX_PENDING`] (the oldest is dropped first), and become verified only when a chunk's
///   fold through them ends at a verified node with the right value, or when they fold
///   directly into a verified parent. A wrong hash therefore never poisons the tree.
/// - **Verification** of chunk `c` hashes the chunk, then hashes one sibling pair per level
///   going up, and stops at the first verified node, which is compared. With the uncles
///   already verified (in-order download), that is the chunk's hash plus about one pair.
/// - **Size.** With [`ContentSize::Unknown`] (automatic size detection, §5.6), `N` is learnt
///   from candidate peaks that fold into the root ([`PartialTree::resolve_size`]); the exact
///   length from the last chunk. Once `N` is known, all-zero nodes past the end are implied
///   and need never be sent.
/// - **Invariant.** The verified set is closed under parent and under sibling (up to the
///   trusted nodes): a receiver that acknowledged chunk `c` knows `c`'s whole uncle chain,
///   which is what a sender assumes ([`super::AckedHashes`]).
///
/// A leecher serves the chunks it has verified with [`PartialTree::integrity`], like a seeder.
///
/// Caveat (RFC 7574 design): nodes and leaves are hashed alike, so a root hash does not fix
/// the tree's height. With [`ContentSize::Unknown`], a malicious peer can claim `N = 2^k` for
/// a smaller tree and pass inner node hashes off as a short last chunk of `2·hlen` bytes. Use
/// [`ContentSize::Bytes`] when the size is known from a trusted source.
#[derive(Clone)]
pub struct PartialTree {
    alg: HashAlgorithm,
    hlen: usize,
    chunk_size: u32,
    /// The trusted root of static content; `None` when anchored at trusted subtrees.
    root: Option<HashValue>,
    /// `N`, once known.
    chunks: Option<u64>,
    /// The root's bin, once `N` is known.
    root_bin: Option<Bin>,
    /// The last chunk's length, once known.
    last_len: Option<usize>,
    store: NodeStore,
    /// Candidate hashes, oldest first.
    pending: Vec<Pending>,
}

/// A candidate hash.
#[derive(Clone, Copy)]
struct Pending {
    bin: Bin,
    hash: Buf,
}

impl PartialTree {
    /// A receiver for static content with the trusted root hash `root` (the swarm ID).
    pub fn new(
        alg: HashAlgorithm,
        chunk_size: u32,
        root: HashValue,
        size: ContentSize,
    ) -> Result<Self, ConfigError> {
        let mut t = Self::empty(alg, chunk_size, &root)?;
        t.root = Some(root);
        let cs = u64::from(chunk_size);
        let (chunks, last_len) = match size {
            ContentSize::Bytes(len) => {
                let n = len.div_ceil(cs);
                (Some(n), Some((len - (n.max(1) - 1) * cs) as usize))
            }
            ContentSize::Chunks(n) => (Some(n), None),
            ContentSize::Unknown => (None, None),
        };
        if let Some(n) = chunks {
            if n == 0 || n > MAX_CHUNKS {
                return Err(ConfigError::BadContentSize);
            }
            t.set_chunks(n);
        }
        t.last_len = last_len;
        Ok(t)
    }

    /// A receiver anchored at a trusted subtree `bin` with hash `hash` (for example a signed
    /// munro of a live stream, RFC 7574 §6.1.2): chunks under it verify against it. The
    /// content size is unknown, no node is implied all-zero, and every chunk may be
    /// `1..=chunk_size` bytes long. More anchors can be added with
    /// [`PartialTree::add_trusted`].
    pub fn with_trusted_subtree(
        alg: HashAlgorithm,
        chunk_size: u32,
        bin: Bin,
        hash: HashValue,
    ) -> Result<Self, ConfigError> {
        let mut t = Self::empty(alg, chunk_size, &hash)?;
        if bin.is_none() {
            return Err(ConfigError::BadAnchor);
        }
        t.store.insert(bin, hash.as_bytes());
        Ok(t)
    }

    /// A receiver with no anchor yet: nothing verifies until trusted subtrees are added with
    /// [`PartialTree::add_trusted`] (a live stream's signed munros, which arrive over time).
    pub fn anchored(alg: HashAlgorithm, chunk_size: u32) -> Result<Self, ConfigError> {
        Self::empty(alg, chunk_size, &alg.empty())
    }

    fn empty(alg: HashAlgorithm, chunk_size: u32, hash: &HashValue) -> Result<Self, ConfigError> {
        if chunk_size == 0 {
            return Err(ConfigError::ZeroChunkSize);
        }
        let hlen = alg.output_len();
        if hash.len() != hlen {
            return Err(ConfigError::BadHashLength {
                len: hash.len(),
                expected: hlen,
            });
        }
        Ok(Self {
            alg,
            hlen,
            chunk_size,
            root: None,
            chunks: None,
            root_bin: None,
            last_len: None,
            store: NodeStore::new(hlen),
            pending: Vec::new(),
        })
    }

    /// Records `hash` for `bin` as verified on the caller's authority (a munro whose
    /// signature the caller checked). Overrides anything stored for `bin`.
    pub fn add_trusted(&mut self, bin: Bin, hash: &HashValue) -> Result<(), VerifyError> {
        self.check_hash(bin, hash)?;
        self.store.insert(bin, hash.as_bytes());
        self.pending.retain(|p| p.bin != bin);
        Ok(())
    }

    /// Forgets the hashes of nodes wholly before chunk `chunk` (a live stream's discard
    /// window, RFC 7574 §6.2), verified or candidate, page by page: memory stays bounded on an
    /// endless stream. Chunks before `chunk` no longer verify afterwards.
    pub fn forget_before(&mut self, chunk: u64) {
        let Some(leaf) = Bin::leaf(chunk) else { return };
        self.store.remove_pages_below(leaf.raw());
        self.pending
            .retain(|p| p.bin.last_chunk().is_some_and(|last| last >= chunk));
    }

    /// Offers the hash of `bin` from an INTEGRITY message.
    ///
    /// It is compared at once when `bin` is already verified (or implied all-zero), and
    /// verified at once when its sibling and parent are; otherwise it is kept as a candidate
    /// (replacing an earlier candidate for the same bin). An error means the hash is wrong
    /// or malformed and was not kept: RFC 7574 §3 then drops the rest of the datagram.
    pub fn add_hash(&mut self, bin: Bin, hash: &HashValue) -> Result<HashStatus, VerifyError> {
        if self.check_known(bin, hash)? {
            return Ok(HashStatus::Known);
        }
        let h = hash.as_bytes();
        if let Some(status) = self.try_verify_hash(bin, h)? {
            return Ok(status);
        }
        let mut buf = ZERO;
        buf[..self.hlen].copy_from_slice(h);
        if let Some(i) = self.pending.iter().position(|p| p.bin == bin) {
            self.pending.remove(i);
        } else if self.pending.len() >= MAX_PENDING {
            self.pending.remove(0);
        }
        self.pending.push(Pending { bin, hash: buf });
        Ok(HashStatus::Pending)
    }

    /// Checks chunk `chunk` with content `data` against the trusted nodes, using verified
    /// hashes and candidates (RFC 7574 §5.2). On success the chunk's hash and every hash
    /// computed or used on the way are recorded as verified.
    ///
    /// The tree records hashes, not which chunks the caller holds: a chunk whose hash is
    /// already verified (for example as the sibling of a verified chunk) verifies with one
    /// hash and a comparison. Keep chunk possession in a [`crate::binmap::Binmap`].
    pub fn verify_chunk(&mut self, chunk: u64, data: &[u8]) -> Result<(), VerifyError> {
        self.verify_inner(chunk, data, &[]).map(|_| ())
    }

    /// [`PartialTree::add_hash`] for each hash, then [`PartialTree::verify_chunk`]: the
    /// INTEGRITY messages and the DATA of one datagram (RFC 7574 §5.3, §5.4). Stops at the
    /// first rejected hash.
    ///
    /// This is also the fast path: the fold looks the datagram's hashes up directly, and only
    /// those it does not use are kept as candidates (unless the fold failed on a mismatch, in
    /// which case the datagram's hashes are all dropped).
    pub fn verify_chunk_with(
        &mut self,
        chunk: u64,
        data: &[u8],
        hashes: &[(Bin, HashValue)],
    ) -> Result<(), VerifyError> {
        // Peaks must go through the candidate pool (resolve_size and the peak check read it).
        let via_pool = match (self.root, self.chunks) {
            (Some(_), None) => true,
            (Some(_), Some(n)) => hashes
                .iter()
                .any(|(b, _)| is_peak(*b, n) && !self.store.contains(*b)),
            (None, _) => false,
        };
        if via_pool {
            for (bin, hash) in hashes {
                self.add_hash(*bin, hash)?;
            }
            return self.verify_inner(chunk, data, &[]).map(|_| ());
        }
        let mut known = 0;
        for (i, (bin, hash)) in hashes.iter().enumerate() {
            match self.check_known(*bin, hash) {
                Ok(k) => known += usize::from(k),
                Err(e) => {
                    self.keep_candidates(&hashes[..i]);
                    return Err(e);
                }
            }
        }
        match self.verify_inner(chunk, data, hashes) {
            // Every hash was known or used: nothing is left to keep.
            Ok(used) if used + known == hashes.len() => Ok(()),
            Ok(_) => {
                self.keep_candidates(hashes);
                Ok(())
            }
            Err(e @ VerifyError::FoldMismatch { .. }) => Err(e),
            Err(e) => {
                self.keep_candidates(hashes);
                Err(e)
            }
        }
    }

    /// Verifies a chunk with `extra` hashes looked up before the candidate pool; returns how
    /// many of them the fold used.
    fn verify_inner(
        &mut self,
        chunk: u64,
        data: &[u8],
        extra: &[(Bin, HashValue)],
    ) -> Result<usize, VerifyError> {
        let n = if self.root.is_some() {
            Some(self.resolve_size_at_least(chunk.saturating_add(1))?)
        } else {
            None
        };
        if let Some(n) = n {
            if chunk >= n {
                return Err(VerifyError::OutOfRange { chunk });
            }
            self.verify_pending_peaks(n)?;
        }
        let leaf_bin = Bin::leaf(chunk).ok_or(VerifyError::OutOfRange { chunk })?;
        self.check_len(chunk, data.len(), n)?;
        let used = with_digest!(self.alg, D => self.fold::<D>(chunk, leaf_bin, data, extra))?;
        if n == Some(chunk + 1) && self.last_len.is_none() {
            // RFC 7574 §5.6.1: only the verified last chunk gives the exact size.
            self.last_len = Some(data.len());
        }
        Ok(used)
    }

    /// The number of chunks `N`, learning it from candidate peak hashes if needed (RFC 7574
    /// §5.6.2: "the receiver checks the peak hashes against the root hash to determine the
    /// approximate content size").
    ///
    /// Each run of candidates that forms the peak list of some `N` (bins tiling `0..N` from
    /// chunk 0 with strictly decreasing sizes) is folded into a root, largest `N` first; the
    /// first that matches the trusted root is verified. If candidate peak lists exist but none
    /// matches, their candidates are dropped ([`VerifyError::PeaksMismatch`]), so each
    /// candidate costs at most one failed attempt.
    pub fn resolve_size(&mut self) -> Result<u64, VerifyError> {
        self.resolve_size_at_least(0)
    }

    /// [`PartialTree::resolve_size`], considering only sizes of at least `min` chunks (a chunk
    /// being verified proves the content reaches past it). Uncles on the left spine look like
    /// the whole peak list of a power-of-two size (bin `0..=2^k-1` is the single peak of
    /// `N = 2^k`): when they arrive without the real peaks (a lost datagram, hashes split over
    /// several datagrams), they must not count as a failed peak list and brand an honest
    /// sender — a chunk at index `c ≥ 2^k` already rules that size out.
    pub fn resolve_size_at_least(&mut self, min: u64) -> Result<u64, VerifyError> {
        if let Some(n) = self.chunks {
            return Ok(n);
        }
        let Some(root) = self.root else {
            return Err(VerifyError::SizeUnknown);
        };
        // A candidate is the smallest peak of N = (its last chunk + 1) iff it is a left child;
        // N is a candidate when all of its peaks are candidates.
        let mut sorted: Vec<Bin> = self.pending.iter().map(|p| p.bin).collect();
        sorted.sort_unstable();
        let mut ns: Vec<u64> = Vec::new();
        for &bin in &sorted {
            let Some(n) = bin.last_chunk().and_then(|l| l.checked_add(1)) else {
                continue;
            };
            if n <= MAX_CHUNKS
                && n >= min
                && is_peak(bin, n)
                && Bin::peaks(n).all(|p| sorted.binary_search(&p).is_ok())
            {
                ns.push(n);
            }
        }
        if ns.is_empty() {
            return Err(VerifyError::SizeUnknown);
        }
        ns.sort_unstable_by(|a, b| b.cmp(a));
        ns.dedup();
        for &n in &ns {
            if self.try_peaks(n, &root) {
                self.set_chunks(n);
                self.after_size_known();
                return Ok(n);
            }
        }
        // Every candidate list failed: at least one hash of each is wrong. Drop them all.
        self.pending
            .retain(|p| !ns.iter().any(|&n| Bin::peaks(n).any(|q| q == p.bin)));
        Err(VerifyError::PeaksMismatch)
    }

    /// Checks the hashes of every node at layer `layer` under the verified node `bin` (nodes
    /// wholly past the end of the content left out), `hashes` being their concatenation left
    /// to right, by folding them up to `bin`; on a match records every node of the fold as
    /// verified. A whole upper layer from an origin's tree sidecar (`bin` the root), or the
    /// leaf hashes under one of its nodes: afterwards chunks under `bin` verify on their own.
    ///
    /// Needs `N` (or a tree anchored at trusted subtrees, with no size). Errors:
    /// [`VerifyError::SizeUnknown`]; [`VerifyError::BinOutOfRange`] when
    /// `bin` is outside the tree or below `layer`; [`VerifyError::MissingHashes`] when `bin`
    /// is not verified; [`VerifyError::BadHashLength`] when `hashes` is not exactly that many
    /// hashes; [`VerifyError::HashMismatch`] when the fold does not reach `bin`'s hash
    /// (nothing is recorded then).
    pub fn add_layer_under(
        &mut self,
        bin: Bin,
        layer: u32,
        hashes: &[u8],
    ) -> Result<(), VerifyError> {
        // A tree anchored at trusted subtrees (a live stream) has no size: nothing in it is
        // implied empty.
        let n = match (self.chunks, self.root) {
            (Some(n), _) => n,
            (None, None) => u64::MAX,
            (None, Some(_)) => return Err(VerifyError::SizeUnknown),
        };
        if !self.in_tree(bin) || bin.layer() < layer || bin.is_none() {
            return Err(VerifyError::BinOutOfRange { bin });
        }
        let target: Buf = {
            let mut b = ZERO;
            let known = self
                .known_hash(bin)
                .ok_or(VerifyError::MissingHashes { bin })?;
            b[..self.hlen].copy_from_slice(known);
            b
        };
        let first = bin
            .first_chunk()
            .ok_or(VerifyError::BinOutOfRange { bin })?;
        let last = bin.last_chunk().ok_or(VerifyError::BinOutOfRange { bin })?;
        if first >= n {
            // Wholly past the end: all-zero, nothing to check or record.
            return Ok(());
        }
        let lo = first >> layer;
        let hi = (last.min(n - 1) >> layer) + 1;
        let count = usize::try_from(hi - lo).map_err(|_| VerifyError::BinOutOfRange { bin })?;
        if hashes.len() != count.saturating_mul(self.hlen) {
            return Err(VerifyError::BadHashLength {
                bin,
                len: hashes.len(),
            });
        }
        let hlen = self.hlen;
        // Every node of the fold, layer by layer, to record once the top matches.
        let mut levels: Vec<(u32, u64, Vec<u8>)> = Vec::new();
        let mut cur: Vec<u8> = hashes.to_vec();
        let mut cur_lo = lo;
        let mut j = layer;
        while j < bin.layer() {
            let len = cur.len() / hlen;
            let up_lo = cur_lo >> 1;
            let up_hi = (cur_lo + len as u64 - 1) / 2 + 1;
            let mut up = Vec::with_capacity((up_hi - up_lo) as usize * hlen);
            for p in up_lo..up_hi {
                let child = |i: u64| -> &[u8] {
                    match i.checked_sub(cur_lo) {
                        Some(k) if k < len as u64 => &cur[k as usize * hlen..][..hlen],
                        _ => &ZERO[..hlen],
                    }
                };
                let (l, r) = (child(2 * p), child(2 * p + 1));
                let mut out = ZERO;
                if l.iter().chain(r).all(|&x| x == 0) {
                    // Two empty children: an all-zero parent, not hashed (RFC 7574 §5.1 as
                    // libswift).
                } else {
                    with_digest!(self.alg, D => parent::<D>(l, r, &mut out));
                }
                up.extend_from_slice(&out[..hlen]);
            }
            levels.push((j, cur_lo, core::mem::replace(&mut cur, up)));
            cur_lo = up_lo;
            j += 1;
        }
        if cur.len() != hlen || cur[..] != target[..hlen] {
            return Err(VerifyError::HashMismatch { bin });
        }
        for (layer, lo, hs) in levels {
            for (k, h) in hs.chunks_exact(hlen).enumerate() {
                if let Some(b) = Bin::from_layer_offset(layer, lo + k as u64) {
                    if !is_empty(b, n) {
                        self.store.insert(b, h);
                    }
                }
            }
        }
        Ok(())
    }

    /// Drops every candidate hash.
    pub fn clear_pending(&mut self) {
        self.pending.clear();
    }

    /// The hash function.
    pub const fn algorithm(&self) -> HashAlgorithm {
        self.alg
    }

    /// The chunk size in bytes.
    pub const fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// The number of chunks `N`, once known.
    pub const fn chunk_count(&self) -> Option<u64> {
        self.chunks
    }

    /// The exact content length, once known (from [`ContentSize::Bytes`] or after the last
    /// chunk verified).
    pub fn content_len(&self) -> Option<u64> {
        let n = self.chunks?;
        let last = self.last_len? as u64;
        Some((n - 1) * u64::from(self.chunk_size) + last)
    }

    /// The trusted root hash (static content).
    pub const fn root_hash(&self) -> Option<HashValue> {
        self.root
    }

    /// The root's bin, once `N` is known.
    pub const fn root_bin(&self) -> Option<Bin> {
        self.root_bin
    }

    /// Whether the hash of `bin` is verified (or implied all-zero).
    pub fn is_verified(&self, bin: Bin) -> bool {
        self.known_hash(bin).is_some()
    }

    /// The verified hash of `bin` (all-zero for a node past the end of the content).
    pub fn hash(&self, bin: Bin) -> Option<HashValue> {
        self.known_hash(bin).and_then(HashValue::from_slice)
    }

    /// The number of candidate hashes held.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// The number of verified hashes stored.
    pub const fn verified_count(&self) -> u64 {
        self.store.len()
    }

    /// Bytes of heap held (verified hashes and candidates).
    pub fn heap_bytes(&self) -> usize {
        self.store.heap_bytes() + self.pending.capacity() * size_of::<Pending>()
    }

    /// The peak hashes, once `N` is known and they are verified.
    pub fn peaks(&self) -> Option<Peaks<'_, Self>> {
        let n = self.chunks?;
        Bin::peaks(n)
            .all(|p| self.is_verified(p))
            .then(|| Peaks::new(self, n))
    }

    /// The INTEGRITY messages to send with chunk `chunk` when serving it to another peer;
    /// see [`integrity`](super::integrity()).
    pub fn integrity<F: FnMut(Bin) -> bool>(
        &self,
        chunk: u64,
        with_peaks: bool,
        known: F,
    ) -> Result<Integrity<'_, Self, F>, IntegrityError> {
        integrity(self, chunk, with_peaks, known)
    }

    fn set_chunks(&mut self, n: u64) {
        self.chunks = Some(n);
        self.root_bin = Bin::root_covering(n);
        if let Some(root_bin) = self.root_bin {
            if let Some(max) = root_bin.base_right() {
                self.store.reserve_dense(max);
            }
            if let Some(root) = self.root {
                self.store.insert(root_bin, root.as_bytes());
            }
        }
    }

    /// Drops candidates that `N` makes pointless (outside the tree, or already verified) or
    /// wrong (contradicting a verified or all-zero node).
    fn after_size_known(&mut self) {
        let mut pending = core::mem::take(&mut self.pending);
        pending.retain(|p| self.in_tree(p.bin) && self.known_hash(p.bin).is_none());
        self.pending = pending;
    }

    fn check_hash(&self, bin: Bin, hash: &HashValue) -> Result<(), VerifyError> {
        if hash.len() != self.hlen {
            return Err(VerifyError::BadHashLength {
                bin,
                len: hash.len(),
            });
        }
        if !self.in_tree(bin) {
            return Err(VerifyError::BinOutOfRange { bin });
        }
        Ok(())
    }

    /// Whether `bin` can be part of the tree (anything but NONE while the width is unknown).
    fn in_tree(&self, bin: Bin) -> bool {
        match self.root_bin {
            Some(root) => root.contains(bin),
            None => !bin.is_none(),
        }
    }

    /// Checks a hash's form and, if its node is verified, its value. `Ok(true)` when known.
    fn check_known(&self, bin: Bin, hash: &HashValue) -> Result<bool, VerifyError> {
        if hash.len() != self.hlen {
            return Err(VerifyError::BadHashLength {
                bin,
                len: hash.len(),
            });
        }
        let known = match (self.root_bin, self.chunks) {
            (Some(root), Some(n)) => {
                if !root.contains(bin) {
                    return Err(VerifyError::BinOutOfRange { bin });
                }
                if is_empty(bin, n) {
                    Some(&ZERO[..self.hlen])
                } else {
                    self.store.get(bin)
                }
            }
            _ if bin.is_none() => return Err(VerifyError::BinOutOfRange { bin }),
            _ => self.store.get(bin),
        };
        match known {
            Some(known) if known == hash.as_bytes() => Ok(true),
            Some(_) => Err(VerifyError::HashMismatch { bin }),
            None => Ok(false),
        }
    }

    /// Keeps the hashes that are still unverified as candidates.
    fn keep_candidates(&mut self, hashes: &[(Bin, HashValue)]) {
        for (bin, hash) in hashes {
            if !self.is_verified(*bin) {
                // Already checked: it cannot be rejected.
                let _ = self.add_hash(*bin, hash);
            }
        }
    }

    fn check_len(&self, chunk: u64, len: usize, n: Option<u64>) -> Result<(), VerifyError> {
        let cs = self.chunk_size as usize;
        let bad = Err(VerifyError::BadLength { chunk, len });
        if len == 0 || len > cs {
            return bad;
        }
        if let Some(n) = n {
            if chunk + 1 < n && len != cs {
                // Only the last chunk may be short (fixed-size chunks, RFC 7574 §5.6).
                return bad;
            }
            if chunk + 1 == n && self.last_len.is_some_and(|l| l != len) {
                return bad;
            }
        }
        Ok(())
    }

    /// The verified hash of `bin`, or the all-zero hash for a node past the end.
    #[inline]
    fn known_hash(&self, bin: Bin) -> Option<&[u8]> {
        if let (Some(n), Some(root)) = (self.chunks, self.root_bin) {
            if is_empty(bin, n) && root.contains(bin) {
                return Some(&ZERO[..self.hlen]);
            }
        }
        self.store.get(bin)
    }

    /// Verifies a lone hash whose sibling and parent are verified. `Ok(None)` when it cannot
    /// be decided yet.
    fn try_verify_hash(&mut self, bin: Bin, h: &[u8]) -> Result<Option<HashStatus>, VerifyError> {
        let (Some(sib), Some(par)) = (bin.sibling(), bin.parent()) else {
            return Ok(None);
        };
        if !self.in_tree(par) {
            return Ok(None);
        }
        let (Some(sh), Some(ph)) = (self.known_hash(sib), self.known_hash(par)) else {
            return Ok(None);
        };
        let mut up = ZERO;
        with_digest!(self.alg, D => {
            if bin.is_left() {
                parent::<D>(h, sh, &mut up);
            } else {
                parent::<D>(sh, h, &mut up);
            }
        });
        if up[..self.hlen] != *ph {
            return Err(VerifyError::HashMismatch { bin });
        }
        self.store.insert(bin, h);
        self.pending.retain(|p| p.bin != bin);
        Ok(Some(HashStatus::Verified))
    }

    /// With `N` known: if candidates include unverified peaks and every peak is available,
    /// checks them against the root (so that uncles above the chunk's peak are not needed).
    fn verify_pending_peaks(&mut self, n: u64) -> Result<(), VerifyError> {
        let Some(root) = self.root else {
            return Ok(());
        };
        if !self
            .pending
            .iter()
            .any(|p| is_peak(p.bin, n) && !self.store.contains(p.bin))
        {
            return Ok(());
        }
        let all_there = Bin::peaks(n)
            .all(|p| self.store.contains(p) || self.pending.iter().any(|c| c.bin == p));
        if !all_there {
            return Ok(());
        }
        if self.try_peaks(n, &root) {
            self.after_size_known();
            Ok(())
        } else {
            let store = &self.store;
            self.pending
                .retain(|p| !is_peak(p.bin, n) || store.contains(p.bin));
            Err(VerifyError::PeaksMismatch)
        }
    }

    /// Folds the peaks of `n` (verified or candidates) into a root (the Lemma of RFC 7574
    /// §5.6.1) and, if it equals `root`, records the peaks and every node computed on the way
    /// as verified. Returns whether it matched.
    fn try_peaks(&mut self, n: u64, root: &HashValue) -> bool {
        let mut peaks: ArrayVec<(Bin, Buf), 64> = ArrayVec::new();
        for p in Bin::peaks(n) {
            let hash = if let Some(h) = self.store.get(p) {
                let mut b = ZERO;
                b[..self.hlen].copy_from_slice(h);
                b
            } else if let Some(c) = self.pending.iter().find(|c| c.bin == p) {
                c.hash
            } else {
                return false;
            };
            if peaks.try_push((p, hash)).is_err() {
                return false;
            }
        }
        let Some(root_bin) = Bin::root_covering(n) else {
            return false;
        };
        let mut computed: ArrayVec<(Bin, Buf), 64> = ArrayVec::new();
        let folded = with_digest!(self.alg, D => {
            fold_peaks::<D>(&peaks, root_bin, self.hlen, &mut computed)
        });
        if folded.is_none_or(|r| r[..self.hlen] != *root.as_bytes()) {
            return false;
        }
        for (bin, h) in peaks.iter().chain(computed.iter()) {
            self.store.insert(*bin, &h[..self.hlen]);
        }
        true
    }

    /// Hashes the chunk and folds it up to the first verified node. Returns how many `extra`
    /// hashes were used.
    fn fold<D: Digest>(
        &mut self,
        chunk: u64,
        leaf_bin: Bin,
        data: &[u8],
        extra: &[(Bin, HashValue)],
    ) -> Result<usize, VerifyError> {
        let hlen = self.hlen;
        // Nodes whose first chunk is at or past this are all-zero (static content, N known).
        let empty_from = self.chunks.unwrap_or(u64::MAX);
        let mut cur = ZERO;
        leaf::<D>(data, &mut cur);
        let mut node = leaf_bin;
        // Nodes computed on the way (not yet verified) and the unverified siblings used.
        let mut path: ArrayVec<(Bin, Buf), 64> = ArrayVec::new();
        let mut used: ArrayVec<(Bin, Source), 64> = ArrayVec::new();
        loop {
            if let Some(v) = self.store.get(node) {
                if same_hash(v, &cur[..hlen]) {
                    break;
                }
                if used.is_empty() {
                    return Err(VerifyError::ChunkMismatch { chunk });
                }
                self.pending.retain(|p| !used.iter().any(|u| u.0 == p.bin));
                return Err(VerifyError::FoldMismatch { chunk, bin: node });
            }
            let (Some(sib), Some(par)) = (node.sibling(), node.parent()) else {
                return Err(VerifyError::MissingHashes { bin: node });
            };
            // The sibling is inside the tree, since `node` is below a verified node or the root.
            let sh: &[u8] = if sib.first_chunk().is_some_and(|f| f >= empty_from) {
                &ZERO[..hlen]
            } else if let Some(h) = self.store.get(sib) {
                h
            } else if let Some(i) = extra.iter().position(|(b, _)| *b == sib) {
                if used.try_push((sib, Source::Extra(i))).is_err() {
                    return Err(VerifyError::MissingHashes { bin: sib });
                }
                extra[i].1.as_bytes()
            } else if let Some(i) = self.pending.iter().position(|p| p.bin == sib) {
                if used.try_push((sib, Source::Pending(i))).is_err() {
                    return Err(VerifyError::MissingHashes { bin: sib });
                }
                &self.pending[i].hash[..hlen]
            } else {
                return Err(VerifyError::MissingHashes { bin: sib });
            };
            let mut up = ZERO;
            if node.is_left() {
                parent::<D>(&cur[..hlen], sh, &mut up);
            } else {
                parent::<D>(sh, &cur[..hlen], &mut up);
            }
            if path.try_push((node, cur)).is_err() {
                return Err(VerifyError::MissingHashes { bin: sib });
            }
            cur = up;
            node = par;
        }
        let mut from_extra = 0;
        for (bin, h) in &path {
            self.store.insert(*bin, &h[..hlen]);
        }
        for (bin, src) in &used {
            let h = match *src {
                Source::Extra(i) => {
                    from_extra += 1;
                    extra[i].1.as_bytes()
                }
                Source::Pending(i) => &self.pending[i].hash[..hlen],
            };
            self.store.insert(*bin, h);
        }
        if !self.pending.is_empty() && !path.is_empty() {
            let store = &self.store;
            self.pending.retain(|p| !store.contains(p.bin));
        }
        Ok(from_extra)
    }
}

/// Whether two hashes are equal; inlined and branch-free (no `memcmp` call on the hot path).
#[inline]
fn same_hash(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Where a fold found an unverified sibling hash.
#[derive(Clone, Copy)]
enum Source {
    /// In the hashes passed with the chunk, at this index.
    Extra(usize),
    /// In the candidate pool, at this index.
    Pending(usize),
}

/// Folds peaks (left to right) into the root of `root_bin`: from the rightmost peak upward, a
/// left child is paired with an all-zero sibling, a right child with the next peak to its
/// left. Pushes every node computed. `None` if the bins are not a peak list for `root_bin`.
fn fold_peaks<D: Digest>(
    peaks: &[(Bin, Buf)],
    root_bin: Bin,
    hlen: usize,
    computed: &mut ArrayVec<(Bin, Buf), 64>,
) -> Option<Buf> {
    let (mut idx, &(mut node, mut acc)) = (peaks.len().checked_sub(1)?, peaks.last()?);
    while node != root_bin {
        let par = node.parent()?;
        let mut up = ZERO;
        if node.is_left() {
            parent::<D>(&acc[..hlen], &ZERO[..hlen], &mut up);
        } else {
            idx = idx.checked_sub(1)?;
            let (left_bin, left) = &peaks[idx];
            if Some(*left_bin) != node.sibling() {
                return None;
            }
            parent::<D>(&left[..hlen], &acc[..hlen], &mut up);
        }
        acc = up;
        node = par;
        computed.try_push((node, acc)).ok()?;
    }
    (idx == 0).then_some(acc)
}

impl NodeHashes for PartialTree {
    fn algorithm(&self) -> HashAlgorithm {
        self.alg
    }

    fn chunk_count(&self) -> Option<u64> {
        self.chunks
    }

    fn node_hash(&self, bin: Bin) -> Option<HashValue> {
        self.hash(bin)
    }

    fn has_node(&self, bin: Bin) -> bool {
        self.known_hash(bin).is_some()
    }

    fn copy_node_hash(&self, bin: Bin, out: &mut [u8]) -> Option<usize> {
        super::integrity::copy_hash_bytes(self.known_hash(bin), out)
    }
}

impl fmt::Debug for PartialTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartialTree")
            .field("alg", &self.alg)
            .field("chunk_size", &self.chunk_size)
            .field("root", &self.root)
            .field("chunks", &self.chunks)
            .field("content_len", &self.content_len())
            .field("verified", &self.store.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadHashLength { len, expected } => {
                write!(f, "trusted hash of {len} bytes, expected {expected}")
            }
            Self::BadAnchor => f.write_str("the trusted subtree is the empty bin"),
            Self::BadContentSize => write!(f, "content size must be 1 to {MAX_CHUNKS} chunks"),
            Self::ZeroChunkSize => f.write_str("the chunk size must be at least 1 byte"),
        }
    }
}

impl core::error::Error for ConfigError {}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadLength { chunk, len } => {
                write!(f, "chunk {chunk} cannot be {len} bytes long")
            }
            Self::BadHashLength { bin, len } => {
                write!(f, "hash of bin {bin} has the wrong length ({len} bytes)")
            }
            Self::BinOutOfRange { bin } => write!(f, "bin {bin} is outside the tree"),
            Self::ChunkMismatch { chunk } => {
                write!(f, "chunk {chunk} does not match its verified hashes")
            }
            Self::FoldMismatch { chunk, bin } => write!(
                f,
                "chunk {chunk} with the hashes supplied does not fold into verified bin {bin}"
            ),
            Self::HashMismatch { bin } => {
                write!(f, "hash of bin {bin} contradicts the verified tree")
            }
            Self::MissingHashes { bin } => write!(f, "the hash of bin {bin} is needed"),
            Self::OutOfRange { chunk } => write!(f, "chunk {chunk} is past the end"),
            Self::PeaksMismatch => f.write_str("the peak hashes do not fold into the root"),
            Self::SizeUnknown => f.write_str("content size unknown: the peak hashes are needed"),
        }
    }
}

impl core::error::Error for VerifyError {}
