//! A peer's side of the Unified Merkle Tree (RFC 7574 §6.1.2): signed munros as trust anchors.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::{LiveError, LiveParams, SharedVerifier, SignedMunro, check_signature_len};
use crate::bin::Bin;
use crate::hash::HashValue;
use crate::merkle::{HashStatus, PartialTree, VerifyError};

/// What [`LiveReceiver::add_signed_munro`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MunroStatus {
    /// The signature verified; chunks under the munro now verify against it.
    New,
    /// The same munro and hash were already trusted (no signature check was needed).
    Known,
}

/// A peer's verifier for a live stream: signed munros are checked against the swarm's public
/// key (and their age), and chunks are checked against their munro with uncle hashes, as for
/// static content (§6.1.2.1). A peer must check the signature before forwarding chunks
/// (§6.1.2.1): only chunks that pass [`LiveReceiver::verify_chunk_with`] are
/// verified.
///
/// Bounded memory: munros and hashes wholly before the discard window
/// ([`LiveReceiver::set_discard_window`]) are forgotten as newer munros arrive.
#[derive(Debug)]
pub struct LiveReceiver {
    params: LiveParams,
    layer: u32,
    verifier: SharedVerifier,
    tree: PartialTree,
    /// Trusted munros by first chunk.
    munros: BTreeMap<u64, SignedMunro>,
    /// Chunks before this are forgotten.
    floor: u64,
    window: Option<u64>,
    max_age_micros: Option<u64>,
}

impl LiveReceiver {
    /// A receiver that checks signatures with `verifier` (built from the swarm ID, e.g. by
    /// [`super::verifier`]).
    pub fn new(params: LiveParams, verifier: SharedVerifier) -> Result<Self, LiveError> {
        let layer = params.munro_layer()?;
        // No anchor yet: munros become anchors as their signatures verify.
        let tree = PartialTree::anchored(params.hash, params.chunk_size)
            .map_err(|_| LiveError::BadChunkLength { chunk: 0, len: 0 })?;
        Ok(Self {
            params,
            layer,
            verifier,
            tree,
            munros: BTreeMap::new(),
            floor: 0,
            window: None,
            max_age_micros: None,
        })
    }

    /// Keeps only the last `chunks` chunks behind the newest trusted munro (§6.2); `None`
    /// keeps everything.
    pub fn set_discard_window(&mut self, chunks: Option<u64>) {
        self.window = chunks;
        self.apply_window();
    }

    /// Rejects signed munros whose timestamp is more than `micros` before the `now` passed to
    /// [`LiveReceiver::add_signed_munro`] (§6.1.2.4: "too old" is discarded); `None` accepts
    /// any age.
    pub fn set_max_age(&mut self, micros: Option<u64>) {
        self.max_age_micros = micros;
    }

    /// The parameters.
    pub const fn params(&self) -> &LiveParams {
        &self.params
    }

    /// Checks a signed munro received in INTEGRITY + SIGNED_INTEGRITY messages at
    /// `now_unix_micros` and, if it verifies, trusts it.
    pub fn add_signed_munro(
        &mut self,
        m: &SignedMunro,
        now_unix_micros: u64,
    ) -> Result<MunroStatus, LiveError> {
        if m.bin.layer() != self.layer || m.bin.is_all() || m.bin.is_none() {
            return Err(LiveError::NotAMunro(m.bin));
        }
        if m.hash.len() != self.params.hash.output_len() {
            return Err(LiveError::BadHashLength(m.hash.len()));
        }
        let first = m.bin.first_chunk().ok_or(LiveError::NotAMunro(m.bin))?;
        if first < self.floor {
            return Err(LiveError::Discarded(m.bin));
        }
        if let Some(known) = self.munros.get(&first) {
            if known.hash == m.hash {
                return Ok(MunroStatus::Known);
            }
            return Err(LiveError::Verify(VerifyError::HashMismatch { bin: m.bin }));
        }
        if let Some(max) = self.max_age_micros {
            let signed_at = self.params.unix_micros_of(m.timestamp);
            if signed_at.saturating_add(max) < now_unix_micros {
                return Err(LiveError::TooOld(m.bin));
            }
        }
        check_signature_len(&*self.verifier, &m.signature)?;
        let msg = self.params.munro_message(m.bin, m.timestamp, &m.hash)?;
        if !self.verifier.verify(&msg, &m.signature) {
            return Err(LiveError::BadSignature(m.bin));
        }
        self.tree.add_trusted(m.bin, &m.hash)?;
        self.munros.insert(first, m.clone());
        self.apply_window();
        Ok(MunroStatus::New)
    }

    fn apply_window(&mut self) {
        let Some(w) = self.window else { return };
        let end = self.known_end();
        let n = self.params.nchunks_per_sig;
        // Keep whole munros that reach into the window.
        let floor = end.saturating_sub(w) / n * n;
        if floor <= self.floor {
            return;
        }
        self.floor = floor;
        self.munros = self.munros.split_off(&floor);
        self.tree.forget_before(floor);
    }

    /// Offers a hash from an INTEGRITY message (an uncle below a munro).
    pub fn add_hash(&mut self, bin: Bin, hash: &HashValue) -> Result<HashStatus, LiveError> {
        Ok(self.tree.add_hash(bin, hash)?)
    }

    /// Verifies chunk `chunk` with content `data` and the uncle hashes of its datagram
    /// against its trusted munro.
    pub fn verify_chunk_with(
        &mut self,
        chunk: u64,
        data: &[u8],
        hashes: &[(Bin, HashValue)],
    ) -> Result<(), LiveError> {
        if chunk < self.floor {
            return Err(LiveError::Discarded(Bin::leaf(chunk).unwrap_or(Bin::NONE)));
        }
        let munro = self.params.munro_of(chunk).unwrap_or(Bin::NONE);
        if !self
            .munros
            .contains_key(&munro.first_chunk().unwrap_or(u64::MAX))
        {
            return Err(LiveError::Verify(VerifyError::MissingHashes { bin: munro }));
        }
        Ok(self.tree.verify_chunk_with(chunk, data, hashes)?)
    }

    /// Whether the hash of `bin` is verified (a sender asks this to leave out hashes the
    /// receiver has).
    pub fn is_verified(&self, bin: Bin) -> bool {
        self.tree.is_verified(bin)
    }

    /// The verified hash of `bin`.
    pub fn hash(&self, bin: Bin) -> Option<HashValue> {
        self.tree.hash(bin)
    }

    /// The newest trusted munro: what this peer passes on at tune-in (§6.1.2.4).
    pub fn latest_munro(&self) -> Option<&SignedMunro> {
        self.munros.values().next_back()
    }

    /// The trusted munro covering `chunk`: what this peer sends before serving it.
    pub fn munro_for(&self, chunk: u64) -> Option<&SignedMunro> {
        let first = self.params.munro_of(chunk)?.first_chunk()?;
        self.munros.get(&first)
    }

    /// One past the last chunk under the newest trusted munro (0 before any).
    pub fn known_end(&self) -> u64 {
        self.latest_munro()
            .and_then(|m| m.bin.last_chunk())
            .map_or(0, |c| c + 1)
    }

    /// The first chunk not forgotten.
    pub const fn floor(&self) -> u64 {
        self.floor
    }

    /// The trusted munros kept, oldest first.
    pub fn munros(&self) -> impl Iterator<Item = &SignedMunro> {
        self.munros.values()
    }

    /// The uncle hashes this peer can send with `chunk` (verified ones, highest first, below
    /// the munro), leaving out those `known` says the receiver has. Empty without the munro.
    pub fn uncles(&self, chunk: u64, known: impl FnMut(Bin) -> bool) -> Vec<(Bin, HashValue)> {
        match self.munro_for(chunk) {
            Some(m) => super::uncles_below(m.bin, chunk, known, |b| self.tree.hash(b)),
            None => Vec::new(),
        }
    }

    /// Bytes of heap held by the hash tree.
    pub fn heap_bytes(&self) -> usize {
        self.tree.heap_bytes()
    }
}
