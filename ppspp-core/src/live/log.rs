//! The munro log: a live stream's integrity data published beside its bytes on a plain HTTP
//! server, so that an HTTP origin can serve a live stream (hybrid delivery).
//!
//! A file server sends bytes without hashes. For static content the tree sidecar carries
//! them ([`crate::merkle::SidecarLayout`]); a live stream's tree grows and is anchored at
//! signed munros, so its injector appends one record per munro to the log as it signs it,
//! and the stream's chunks to a growing content file (chunk `c` at byte `c · chunk_size`).
//! A receiver reads the header for the live edge, then the records of the munros it wants
//! chunks of, checks each record's signature as it would a peer's SIGNED_INTEGRITY, and
//! then the chunks against the record's leaf hashes.
//!
//! Layout (big-endian), the header then fixed-size records, so that any record is one
//! byte range away:
//!
//! | bytes | header field |
//! |---|---|
//! | 0..8 | magic `PPSPPML1` |
//! | 8..12 | chunk size |
//! | 12..20 | chunks per munro (`nchunks_per_sig`) |
//! | 20..22 | hash length |
//! | 22..24 | signature length |
//! | 24..32 | records published (`count`): rewritten after each record is appended |
//! | 32..40 | chunks in the stream once it ended, or 0 while it goes on |
//! | 40..64 | zero |
//!
//! Record `k` (the munro of chunks `k·n .. (k+1)·n`) at byte `64 + k · record_len`: the
//! SIGNED_INTEGRITY timestamp (8 bytes), the munro hash, the signature, then the `n` leaf
//! hashes (those of chunks past the end of a short last munro all-zero, as the signed hash
//! has them).

use alloc::vec::Vec;
use core::fmt;

use super::{LiveParams, SignedMunro};
use crate::bin::Bin;
use crate::hash::HashValue;

/// Bytes of the log's header.
pub const MUNRO_LOG_HEADER_LEN: u64 = 64;
const MAGIC: &[u8; 8] = b"PPSPPML1";

/// Why a munro log's header or record was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MunroLogError {
    /// Fewer bytes than the header or record needs.
    Short,
    /// Not a munro log (wrong magic).
    BadMagic,
    /// A log of another chunk size, munro size, hash or signature length than the swarm's.
    Mismatch,
    /// The record's munro does not exist (past the addressable chunks).
    Unaddressable,
}

impl fmt::Display for MunroLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Short => "munro log truncated",
            Self::BadMagic => "not a munro log",
            Self::Mismatch => "munro log of other live parameters",
            Self::Unaddressable => "munro log record beyond the addressable chunks",
        })
    }
}

impl core::error::Error for MunroLogError {}

/// A munro log's header: the stream's shape and its published extent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MunroLogHeader {
    /// Chunk size in bytes.
    pub chunk_size: u32,
    /// Chunks per munro.
    pub nchunks_per_sig: u64,
    /// Length of every hash.
    pub hash_len: usize,
    /// Length of every signature.
    pub signature_len: usize,
    /// Records (munros) published.
    pub count: u64,
    /// The stream's length in chunks once it ended (`None` while it goes on).
    pub end: Option<u64>,
}

impl MunroLogHeader {
    /// The header of an empty log for a stream with `params`, signed with signatures of
    /// `signature_len` bytes.
    pub fn new(params: &LiveParams, signature_len: usize) -> Self {
        Self {
            chunk_size: params.chunk_size,
            nchunks_per_sig: params.nchunks_per_sig,
            hash_len: params.hash.output_len(),
            signature_len,
            count: 0,
            end: None,
        }
    }

    /// Parses a header (the first [`MUNRO_LOG_HEADER_LEN`] bytes of a log; more are ignored).
    pub fn parse(b: &[u8]) -> Result<Self, MunroLogError> {
        let b = b
            .get(..MUNRO_LOG_HEADER_LEN as usize)
            .ok_or(MunroLogError::Short)?;
        if &b[..8] != MAGIC {
            return Err(MunroLogError::BadMagic);
        }
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        let u16_at = |i: usize| usize::from(u16::from_be_bytes([b[i], b[i + 1]]));
        let end = u64_at(32);
        let h = Self {
            chunk_size: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            nchunks_per_sig: u64_at(12),
            hash_len: u16_at(20),
            signature_len: u16_at(22),
            count: u64_at(24),
            end: (end > 0).then_some(end),
        };
        if h.chunk_size == 0 || h.nchunks_per_sig < 2 || !h.nchunks_per_sig.is_power_of_two() {
            return Err(MunroLogError::Mismatch);
        }
        Ok(h)
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; MUNRO_LOG_HEADER_LEN as usize] {
        let mut b = [0u8; MUNRO_LOG_HEADER_LEN as usize];
        b[..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&self.chunk_size.to_be_bytes());
        b[12..20].copy_from_slice(&self.nchunks_per_sig.to_be_bytes());
        b[20..22].copy_from_slice(&(self.hash_len as u16).to_be_bytes());
        b[22..24].copy_from_slice(&(self.signature_len as u16).to_be_bytes());
        b[24..32].copy_from_slice(&self.count.to_be_bytes());
        b[32..40].copy_from_slice(&self.end.unwrap_or(0).to_be_bytes());
        b
    }

    /// Whether the log is for a stream with `params` and signatures of `signature_len`
    /// bytes.
    pub fn matches(&self, params: &LiveParams, signature_len: usize) -> bool {
        self.chunk_size == params.chunk_size
            && self.nchunks_per_sig == params.nchunks_per_sig
            && self.hash_len == params.hash.output_len()
            && self.signature_len == signature_len
    }

    /// Bytes of one record.
    pub fn record_len(&self) -> u64 {
        8 + self.hash_len as u64 * (self.nchunks_per_sig + 1) + self.signature_len as u64
    }

    /// The bytes of records `munros` (half open, munro `k` being chunks `k·n .. (k+1)·n`).
    pub fn record_bytes(&self, munros: core::ops::Range<u64>) -> core::ops::Range<u64> {
        let at = |k: u64| MUNRO_LOG_HEADER_LEN.saturating_add(k.saturating_mul(self.record_len()));
        at(munros.start)..at(munros.end)
    }

    /// One past the last chunk published: under the records written, and within the stream's
    /// end once it ended.
    pub fn published_end(&self) -> u64 {
        let end = self.count.saturating_mul(self.nchunks_per_sig);
        self.end.map_or(end, |e| e.min(end))
    }

    /// Record `k` for the signed munro `m`, `leaves` being the hashes of its chunks in order
    /// (fewer than `n` for a short last munro: the rest are written all-zero).
    pub fn encode_record(&self, m: &SignedMunro, leaves: &[HashValue]) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.record_len() as usize);
        v.extend_from_slice(&m.timestamp.to_be_bytes());
        put(&mut v, m.hash.as_bytes(), self.hash_len);
        put(&mut v, &m.signature, self.signature_len);
        for k in 0..self.nchunks_per_sig as usize {
            put(
                &mut v,
                leaves.get(k).map_or(&[][..], HashValue::as_bytes),
                self.hash_len,
            );
        }
        v
    }

    /// Record `k` from its bytes: the signed munro (signature not checked here) and the
    /// concatenated leaf hashes under it.
    pub fn parse_record<'a>(
        &self,
        k: u64,
        b: &'a [u8],
    ) -> Result<(SignedMunro, &'a [u8]), MunroLogError> {
        let b = b
            .get(..self.record_len() as usize)
            .ok_or(MunroLogError::Short)?;
        let layer = self.nchunks_per_sig.trailing_zeros();
        let bin = Bin::from_layer_offset(layer, k).ok_or(MunroLogError::Unaddressable)?;
        let (ts, rest) = b.split_at(8);
        let (hash, rest) = rest.split_at(self.hash_len);
        let (sig, leaves) = rest.split_at(self.signature_len);
        let m = SignedMunro {
            bin,
            hash: HashValue::from_slice(hash).ok_or(MunroLogError::Mismatch)?,
            timestamp: u64::from_be_bytes(ts.try_into().unwrap_or([0; 8])),
            signature: bytes::Bytes::copy_from_slice(sig),
        };
        Ok((m, leaves))
    }
}

/// Appends `bytes` as a field of exactly `len` bytes (cut or zero-padded).
fn put(v: &mut Vec<u8>, bytes: &[u8], len: usize) {
    let n = bytes.len().min(len);
    v.extend_from_slice(&bytes[..n]);
    v.resize(v.len() + (len - n), 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::HashAlgorithm;
    use crate::wire::ChunkAddressing;

    fn params() -> LiveParams {
        LiveParams {
            chunk_size: 1024,
            nchunks_per_sig: 4,
            addressing: ChunkAddressing::ChunkRange32,
            hash: HashAlgorithm::Sha256,
            form: super::super::SignedForm::Rfc7574,
        }
    }

    #[test]
    fn a_header_and_a_record_read_back_as_written() {
        let mut h = MunroLogHeader::new(&params(), 64);
        h.count = 7;
        let back = MunroLogHeader::parse(&h.encode()).unwrap();
        assert_eq!(back, h);
        assert!(back.matches(&params(), 64));
        assert!(!back.matches(&params(), 96));
        assert_eq!(back.published_end(), 28);
        h.end = Some(26);
        assert_eq!(
            MunroLogHeader::parse(&h.encode()).unwrap().published_end(),
            26
        );

        let alg = HashAlgorithm::Sha256;
        let leaves = [alg.digest(b"a"), alg.digest(b"b"), alg.digest(b"c")];
        let m = SignedMunro {
            bin: Bin::from_layer_offset(2, 5).unwrap(),
            hash: alg.digest(b"munro"),
            timestamp: 0x0102_0304_0506_0708,
            signature: bytes::Bytes::from(alloc::vec![9u8; 64]),
        };
        let rec = h.encode_record(&m, &leaves);
        assert_eq!(rec.len() as u64, h.record_len());
        let (got, l) = h.parse_record(5, &rec).unwrap();
        assert_eq!(got, m);
        assert_eq!(&l[..32], leaves[0].as_bytes());
        assert_eq!(&l[64..96], leaves[2].as_bytes());
        assert!(l[96..].iter().all(|&b| b == 0), "the missing leaf is zero");
        assert_eq!(h.parse_record(5, &rec[..10]), Err(MunroLogError::Short));
        assert_eq!(
            h.record_bytes(2..3),
            64 + 2 * h.record_len()..64 + 3 * h.record_len()
        );
    }

    #[test]
    fn a_header_that_is_not_a_log_is_refused() {
        assert_eq!(MunroLogHeader::parse(&[0u8; 10]), Err(MunroLogError::Short));
        assert_eq!(
            MunroLogHeader::parse(&[0u8; 64]),
            Err(MunroLogError::BadMagic)
        );
        let mut b = MunroLogHeader::new(&params(), 64).encode();
        b[12..20].copy_from_slice(&3u64.to_be_bytes());
        assert_eq!(MunroLogHeader::parse(&b), Err(MunroLogError::Mismatch));
    }
}
