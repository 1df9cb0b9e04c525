//! The injector's side of the Unified Merkle Tree (RFC 7574 §6.1.2): a tree that grows on the
//! right, one signed munro every `nchunks_per_sig` chunks.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use bytes::Bytes;

use super::{LiveError, LiveParams, SharedSigner, SignedMunro};
use crate::bin::Bin;
use crate::hash::HashValue;
use crate::merkle::NodeHashes;

/// One signed munro and every node hash of its subtree, indexed by `bin − first bin`.
#[derive(Clone, Debug)]
struct MunroTree {
    signed: SignedMunro,
    /// The lowest bin number in the subtree (its leftmost leaf).
    base: u64,
    nodes: Vec<HashValue>,
}

impl MunroTree {
    fn get(&self, bin: Bin) -> Option<&HashValue> {
        if !self.signed.bin.contains(bin) {
            return None;
        }
        self.nodes
            .get(usize::try_from(bin.raw().checked_sub(self.base)?).ok()?)
    }
}

/// The live injector's content integrity: it hashes each new chunk, and once
/// `nchunks_per_sig` chunks are in, computes their subtree, signs the munro (§6.1.2.2) and
/// makes those chunks announceable. Chunks before the discard window are forgotten (§6.2).
///
/// It keeps hashes only; the chunk bytes belong in a [`crate::ChunkStore`].
///
/// ```
/// # #[cfg(feature = "live-crypto")] {
/// use std::sync::Arc;
/// use ppspp_core::live::{KeyPair, LiveParams, LiveReceiver, LiveSource, SignedForm, verifier};
/// use ppspp_core::hash::HashAlgorithm;
/// use ppspp_core::wire::{ChunkAddressing, SignatureAlgorithm};
///
/// let key = KeyPair::from_seed(SignatureAlgorithm::ECDSAP256SHA256, &[7; 32]).unwrap();
/// let params = LiveParams {
///     chunk_size: 1024,
///     nchunks_per_sig: 4,
///     addressing: ChunkAddressing::ChunkRange32,
///     hash: HashAlgorithm::Sha1,
///     form: SignedForm::Rfc7574,
/// };
/// let mut source = LiveSource::new(params, Arc::new(key.clone())).unwrap();
/// let swarm_id = key.swarm_id();
/// let mut rx = LiveReceiver::new(params, verifier(&swarm_id).unwrap()).unwrap();
/// let now = 1_700_000_000_000_000; // µs since the Unix epoch
/// let mut munro = None;
/// for i in 0..4u8 {
///     munro = source.push_chunk(&[i; 1024], now).unwrap().or(munro);
/// }
/// let munro = munro.expect("4 chunks close a munro");
/// rx.add_signed_munro(&munro, now).unwrap();
/// let uncles = source.uncles(2, |_| false);
/// rx.verify_chunk_with(2, &[2; 1024], &uncles).unwrap();
/// # }
/// ```
#[derive(Debug)]
pub struct LiveSource {
    params: LiveParams,
    layer: u32,
    signer: SharedSigner,
    /// Leaf hashes of the chunks after the last signed munro.
    pending: Vec<HashValue>,
    /// Chunks pushed so far.
    next: u64,
    /// Chunks under signed munros (the next munro starts here).
    signed: u64,
    /// Signed munros kept, oldest first.
    munros: VecDeque<MunroTree>,
    /// Chunks kept behind the newest signed chunk (`None`: all).
    window: Option<u64>,
    ended: bool,
}

impl LiveSource {
    /// An injector for a new stream signed by `signer`.
    pub fn new(params: LiveParams, signer: SharedSigner) -> Result<Self, LiveError> {
        let layer = params.munro_layer()?;
        if params.chunk_size == 0 {
            return Err(LiveError::BadChunkLength { chunk: 0, len: 0 });
        }
        Ok(Self {
            params,
            layer,
            signer,
            pending: Vec::new(),
            next: 0,
            signed: 0,
            munros: VecDeque::new(),
            window: None,
            ended: false,
        })
    }

    /// Keeps only munros whose chunks reach into the last `chunks` chunks signed (the live
    /// discard window, §6.2, §7.9); `None` keeps everything. The newest munro is always kept.
    pub fn set_discard_window(&mut self, chunks: Option<u64>) {
        self.window = chunks;
        self.apply_window();
    }

    /// The parameters.
    pub const fn params(&self) -> &LiveParams {
        &self.params
    }

    /// Adds the next chunk (`1..=chunk_size` bytes) at `unix_micros`; returns the signed munro
    /// when this chunk completes one. Its chunks may be announced (HAVE) from then on, not
    /// before (§6.1.2.3).
    pub fn push_chunk(
        &mut self,
        data: &[u8],
        unix_micros: u64,
    ) -> Result<Option<SignedMunro>, LiveError> {
        if self.ended || data.is_empty() || data.len() > self.params.chunk_size as usize {
            return Err(LiveError::BadChunkLength {
                chunk: self.next,
                len: data.len(),
            });
        }
        self.pending.push(self.params.hash.digest(data));
        self.next += 1;
        if self.pending.len() as u64 == self.params.nchunks_per_sig {
            return self.sign_pending(unix_micros).map(Some);
        }
        Ok(None)
    }

    /// Ends the stream: a partly filled last group is signed with empty (all-zero) leaves in
    /// place of the missing chunks, as a static tree's are. No chunk can be added after.
    pub fn finish(&mut self, unix_micros: u64) -> Result<Option<SignedMunro>, LiveError> {
        if self.ended {
            return Ok(None);
        }
        self.ended = true;
        if self.pending.is_empty() {
            return Ok(None);
        }
        let empty = self.params.hash.empty();
        while (self.pending.len() as u64) < self.params.nchunks_per_sig {
            self.pending.push(empty);
        }
        self.sign_pending(unix_micros).map(Some)
    }

    fn sign_pending(&mut self, unix_micros: u64) -> Result<SignedMunro, LiveError> {
        let n = self.params.nchunks_per_sig;
        let first = self.signed;
        let leaf0 = Bin::leaf(first).ok_or(LiveError::Unaddressable(Bin::NONE))?;
        let munro = leaf0
            .ancestor_at(self.layer)
            .ok_or(LiveError::Unaddressable(leaf0))?;
        let base = leaf0.raw();
        let alg = self.params.hash;
        let empty = alg.empty();
        let mut nodes = alloc::vec![empty; (2 * n - 1) as usize];
        for (i, h) in self.pending.drain(..).enumerate() {
            nodes[2 * i] = h;
        }
        for layer in 1..=self.layer {
            let step = 1u64 << layer;
            // Bins of this layer inside the subtree: base + step − 1, then every 2·step.
            let mut raw = base + step - 1;
            while raw < base + 2 * n - 1 {
                let half = step >> 1;
                let (l, r) = (
                    &nodes[(raw - half - base) as usize],
                    &nodes[(raw + half - base) as usize],
                );
                nodes[(raw - base) as usize] = if l.is_zero() && r.is_zero() {
                    empty
                } else {
                    alg.digest_pair(l, r)
                };
                raw += 2 * step;
            }
        }
        let hash = nodes[(munro.raw() - base) as usize];
        let timestamp = self.params.timestamp_at(unix_micros);
        let sig = self
            .signer
            .sign(&self.params.munro_message(munro, timestamp, &hash)?);
        let signed = SignedMunro {
            bin: munro,
            hash,
            timestamp,
            signature: Bytes::from(sig),
        };
        self.signed += n;
        self.munros.push_back(MunroTree {
            signed: signed.clone(),
            base,
            nodes,
        });
        self.apply_window();
        Ok(signed)
    }

    fn apply_window(&mut self) {
        let Some(w) = self.window else { return };
        let end = self.signed_end();
        while self.munros.len() > 1 {
            let last = self.munros[0].signed.bin.last_chunk().unwrap_or(0);
            if last + w >= end {
                break;
            }
            self.munros.pop_front();
        }
    }

    /// Chunks pushed so far (signed or not).
    pub const fn chunks_pushed(&self) -> u64 {
        self.next
    }

    /// One past the last chunk under a signed munro: the chunks peers may be told about.
    pub fn signed_end(&self) -> u64 {
        self.signed.min(self.next)
    }

    /// The first chunk still kept (0 until the discard window drops something).
    pub fn first_kept(&self) -> u64 {
        self.munros
            .front()
            .and_then(|m| m.signed.bin.first_chunk())
            .unwrap_or(0)
    }

    /// The newest signed munro (what a peer sends at tune-in, §6.1.2.4).
    pub fn latest_munro(&self) -> Option<&SignedMunro> {
        self.munros.back().map(|m| &m.signed)
    }

    /// The signed munro covering `chunk`, if kept.
    pub fn munro_for(&self, chunk: u64) -> Option<&SignedMunro> {
        self.tree_for(chunk).map(|m| &m.signed)
    }

    fn tree_for(&self, chunk: u64) -> Option<&MunroTree> {
        let front = self.munros.front()?.signed.bin.first_chunk()?;
        let i = (chunk.checked_sub(front)? / self.params.nchunks_per_sig) as usize;
        self.munros.get(i)
    }

    /// The uncle hashes that verify `chunk` against its munro, highest first, leaving out the
    /// nodes for which `known` is true (the receiver has them): what goes between the signed
    /// munro and the DATA (§6.1.2.3). Empty if the chunk is not under a kept munro.
    pub fn uncles(&self, chunk: u64, known: impl FnMut(Bin) -> bool) -> Vec<(Bin, HashValue)> {
        match self.tree_for(chunk) {
            Some(t) => super::uncles_below(t.signed.bin, chunk, known, |b| t.get(b).copied()),
            None => Vec::new(),
        }
    }

    /// The hash of `bin` if it lies under a kept munro (or is one).
    pub fn hash(&self, bin: Bin) -> Option<HashValue> {
        let t = self.tree_for(bin.first_chunk()?)?;
        t.get(bin).copied()
    }
}

/// The injector serves hashes under its kept munros; the tree has no fixed size.
impl NodeHashes for LiveSource {
    fn algorithm(&self) -> crate::hash::HashAlgorithm {
        self.params.hash
    }

    fn chunk_count(&self) -> Option<u64> {
        None
    }

    fn node_hash(&self, bin: Bin) -> Option<HashValue> {
        self.hash(bin)
    }
}
