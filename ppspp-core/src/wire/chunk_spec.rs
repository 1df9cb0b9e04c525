//! Chunk specifications (RFC 7574 §4, §8.5): how messages name chunks.

use core::fmt;

use super::{ChunkAddressing, EncodeError};
use crate::bin::Bin;

/// A chunk specification as it appears in a message. Its shape follows the swarm's chunk
/// addressing method; [`ChunkSpec::fits`] says whether a value can be written under one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChunkSpec {
    /// A bin (32- or 64-bit bin addressing). [`Bin::NONE`] and [`Bin::ALL`] are the special
    /// values of §4.2.
    Bin(Bin),
    /// Chunks `start..=end` (32- or 64-bit chunk ranges); `start <= end`.
    Chunks {
        /// The first chunk.
        start: u64,
        /// The last chunk (inclusive).
        end: u64,
    },
    /// Bytes `start..=end` of the content (64-bit byte ranges); `start <= end`.
    Bytes {
        /// The first byte.
        start: u64,
        /// The last byte (inclusive).
        end: u64,
    },
}

impl ChunkSpec {
    /// A single chunk under `addressing`, for content chunked in `chunk_size`-byte chunks
    /// (needed only for byte ranges). `None` if it cannot be expressed.
    pub fn chunk(addressing: ChunkAddressing, index: u64, chunk_size: u64) -> Option<Self> {
        Self::chunk_range(addressing, index, index, chunk_size)
    }

    /// The chunks `first..=last` under `addressing`; `None` if it cannot be expressed as one
    /// specification (a bin that is not aligned, or values too wide for a 32-bit method).
    pub fn chunk_range(
        addressing: ChunkAddressing,
        first: u64,
        last: u64,
        chunk_size: u64,
    ) -> Option<Self> {
        if last < first {
            return None;
        }
        let spec = match addressing {
            ChunkAddressing::Bin32 | ChunkAddressing::Bin64 => {
                Self::Bin(Bin::from_chunk_range(first, last)?)
            }
            ChunkAddressing::ChunkRange32 | ChunkAddressing::ChunkRange64 => Self::Chunks {
                start: first,
                end: last,
            },
            ChunkAddressing::ByteRange64 => Self::Bytes {
                start: first.checked_mul(chunk_size)?,
                end: last
                    .checked_add(1)?
                    .checked_mul(chunk_size)?
                    .checked_sub(1)?,
            },
        };
        spec.fits(addressing).then_some(spec)
    }

    /// The specification of Merkle tree node `bin` under `addressing`: the bin itself under
    /// bin addressing, otherwise the node's full aligned chunk range (not clipped to the
    /// content's end, as RFC 7574 §5.3's uncle hashes name whole subtrees). `None` if it cannot
    /// be expressed.
    pub fn node(addressing: ChunkAddressing, bin: Bin, chunk_size: u64) -> Option<Self> {
        match addressing {
            ChunkAddressing::Bin32 | ChunkAddressing::Bin64 => {
                let s = Self::Bin(bin);
                s.fits(addressing).then_some(s)
            }
            _ => Self::chunk_range(
                addressing,
                bin.first_chunk()?,
                bin.last_chunk()?,
                chunk_size,
            ),
        }
    }

    /// The chunks named, as an inclusive `(first, last)` pair; `None` for [`Bin::NONE`]. Byte
    /// ranges are mapped to the chunks they touch using `chunk_size`.
    pub fn to_chunks(self, chunk_size: u64) -> Option<(u64, u64)> {
        match self {
            Self::Bin(b) => Some((b.first_chunk()?, b.last_chunk()?)),
            Self::Chunks { start, end } => Some((start, end)),
            Self::Bytes { start, end } => {
                let cs = chunk_size.max(1);
                Some((start / cs, end / cs))
            }
        }
    }

    /// Whether this specification can be written under `addressing`.
    pub fn fits(self, addressing: ChunkAddressing) -> bool {
        match (self, addressing) {
            (Self::Bin(b), ChunkAddressing::Bin32) => b.to_u32().is_some(),
            (Self::Bin(_), ChunkAddressing::Bin64) => true,
            (Self::Chunks { start, end }, ChunkAddressing::ChunkRange32) => {
                start <= end && end <= u64::from(u32::MAX)
            }
            (Self::Chunks { start, end }, ChunkAddressing::ChunkRange64)
            | (Self::Bytes { start, end }, ChunkAddressing::ByteRange64) => start <= end,
            _ => false,
        }
    }

    /// Decodes a specification from the first [`ChunkAddressing::spec_len`] bytes of `b`; the
    /// caller has checked the length. `None` for an inverted range.
    #[inline]
    pub(crate) fn read(addressing: ChunkAddressing, b: &[u8]) -> Option<Self> {
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_be_bytes(a)
        };
        let spec = match addressing {
            ChunkAddressing::Bin32 => Self::Bin(Bin::from_u32(u32_at(0))),
            ChunkAddressing::Bin64 => Self::Bin(Bin::from_raw(u64_at(0))),
            ChunkAddressing::ChunkRange32 => Self::Chunks {
                start: u64::from(u32_at(0)),
                end: u64::from(u32_at(4)),
            },
            ChunkAddressing::ChunkRange64 => Self::Chunks {
                start: u64_at(0),
                end: u64_at(8),
            },
            ChunkAddressing::ByteRange64 => Self::Bytes {
                start: u64_at(0),
                end: u64_at(8),
            },
        };
        match spec {
            Self::Chunks { start, end } | Self::Bytes { start, end } if start > end => None,
            s => Some(s),
        }
    }

    /// Writes the specification into `out`, which is exactly [`ChunkAddressing::spec_len`]
    /// bytes long.
    pub(crate) fn write(
        self,
        addressing: ChunkAddressing,
        out: &mut [u8],
    ) -> Result<(), EncodeError> {
        if !self.fits(addressing) {
            return Err(EncodeError::ChunkSpecMismatch {
                spec: self,
                addressing,
            });
        }
        match self {
            Self::Bin(b) => match addressing {
                ChunkAddressing::Bin32 => {
                    let raw = b.to_u32().ok_or(EncodeError::ChunkSpecMismatch {
                        spec: self,
                        addressing,
                    })?;
                    out.copy_from_slice(&raw.to_be_bytes());
                }
                _ => out.copy_from_slice(&b.raw().to_be_bytes()),
            },
            Self::Chunks { start, end } | Self::Bytes { start, end } => {
                if addressing == ChunkAddressing::ChunkRange32 {
                    // `fits` checked both values are below 2^32.
                    out[..4].copy_from_slice(&(start as u32).to_be_bytes());
                    out[4..].copy_from_slice(&(end as u32).to_be_bytes());
                } else {
                    out[..8].copy_from_slice(&start.to_be_bytes());
                    out[8..].copy_from_slice(&end.to_be_bytes());
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for ChunkSpec {
    /// `bin N`, `start..end` for chunk ranges (inclusive end, as on the wire) and
    /// `bytes start..end` for byte ranges.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bin(b) if b.is_none() => f.write_str("bin NONE"),
            Self::Bin(b) if b.is_all() => f.write_str("bin ALL"),
            Self::Bin(b) => write!(f, "bin {}", b.raw()),
            Self::Chunks { start, end } => write!(f, "{start}..{end}"),
            Self::Bytes { start, end } => write!(f, "bytes {start}..{end}"),
        }
    }
}
