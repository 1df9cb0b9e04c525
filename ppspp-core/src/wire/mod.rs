//! The PPSPP datagram codec (RFC 7574 §7–§8).
//!
//! This module knows bytes and the negotiated [`WireParams`] and nothing else: it holds no
//! state. A datagram is a 4-byte destination channel ID followed by zero or more messages
//! (none at all is a KEEPALIVE, §8.14). Message lengths are not on the wire: each message's
//! length follows from its type and the negotiated chunk addressing method, hash length and
//! signature length, so decoding needs those parameters (§8.2).
//!
//! # Decoding
//!
//! [`decode_datagram`] reads the channel ID and returns a [`MessageIter`] over the rest. The
//! iterator makes one pass over the bytes, yields DATA payloads, swarm IDs, signatures and
//! certificates as zero-copy [`Bytes`](bytes::Bytes) slices of the datagram, and never allocates. At the first
//! invalid message it yields a [`DecodeError`] naming what was wrong and at which byte offset,
//! and then stops: the messages before it stay valid (RFC 7574 §3, R-3-e).
//!
//! A HANDSHAKE that carries the Chunk Addressing Method or Merkle Hash Tree Function options
//! changes how the messages after it *in the same datagram* are decoded, as a receiver that
//! applies the handshake's options would decode them.
//!
//! # Encoding
//!
//! [`Message::encoded_len`] says exactly how many bytes a message needs, and [`Message::encode`]
//! writes it into a caller buffer. [`DatagramWriter`] assembles a datagram in a caller `&mut
//! [u8]` (usually an MTU-sized buffer) and refuses a message that does not fit, so the caller
//! can start the next datagram.

mod chunk_spec;
mod datagram;
mod error;
mod message;
mod options;
#[cfg(test)]
mod tests;

pub use chunk_spec::ChunkSpec;
pub use datagram::{DatagramWriter, MessageIter, decode_datagram, encode_datagram};
pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use message::{Ack, Data, Handshake, Integrity, Message, SignedIntegrity};
pub use options::{
    ContentIntegrity, ProtocolOptions, SignatureAlgorithm, SupportedMessages, VARIABLE_CHUNK_SIZE,
};

use core::fmt;

use crate::hash::HashAlgorithm;

/// A channel ID (RFC 7574 §3.11, §8.3). 0 is reserved for the datagram that opens a handshake
/// and, as a source channel, for the closing handshake.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelId(pub u32);

impl ChannelId {
    /// Channel 0: the destination of a handshake's first datagram, and the source channel of a
    /// closing handshake.
    pub const ZERO: Self = Self(0);

    /// Whether this is channel 0.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Debug for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChannelId({:#010x})", self.0)
    }
}

impl fmt::Display for ChannelId {
    /// Eight lowercase hex digits, as on the wire.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// A chunk addressing method (RFC 7574 §4, §7.8, Table 6), by its wire code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ChunkAddressing {
    /// 32-bit bins (code 0).
    Bin32 = 0,
    /// 64-bit byte ranges (code 1).
    ByteRange64 = 1,
    /// 32-bit chunk ranges (code 2): the RFC default and what libswift speaks.
    ChunkRange32 = 2,
    /// 64-bit bins (code 3).
    Bin64 = 3,
    /// 64-bit chunk ranges (code 4).
    ChunkRange64 = 4,
}

impl ChunkAddressing {
    /// Every method, in code order.
    pub const ALL: [Self; 5] = [
        Self::Bin32,
        Self::ByteRange64,
        Self::ChunkRange32,
        Self::Bin64,
        Self::ChunkRange64,
    ];

    /// The method with wire code `code`, if assigned.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Bin32,
            1 => Self::ByteRange64,
            2 => Self::ChunkRange32,
            3 => Self::Bin64,
            4 => Self::ChunkRange64,
            _ => return None,
        })
    }

    /// The wire code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// Bytes one chunk specification takes on the wire.
    pub const fn spec_len(self) -> usize {
        match self {
            Self::Bin32 => 4,
            Self::Bin64 => 8,
            Self::ChunkRange32 => 8,
            Self::ByteRange64 | Self::ChunkRange64 => 16,
        }
    }

    /// Whether integers of this method are 64 bits wide (which also sets the width of the Live
    /// Discard Window option, §7.9).
    pub const fn is_64bit(self) -> bool {
        !matches!(self, Self::Bin32 | Self::ChunkRange32)
    }

    /// The command-line name: `bin32`, `bytes64`, `chunk32`, `bin64`, `chunk64`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Bin32 => "bin32",
            Self::ByteRange64 => "bytes64",
            Self::ChunkRange32 => "chunk32",
            Self::Bin64 => "bin64",
            Self::ChunkRange64 => "chunk64",
        }
    }
}

impl fmt::Display for ChunkAddressing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for ChunkAddressing {
    type Err = UnknownChunkAddressing;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
            .ok_or(UnknownChunkAddressing)
    }
}

/// The error of parsing a [`ChunkAddressing`] name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownChunkAddressing;

impl fmt::Display for UnknownChunkAddressing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown chunk addressing (expected chunk32, chunk64, bin32, bin64 or bytes64)")
    }
}

impl core::error::Error for UnknownChunkAddressing {}

/// The message type codes of RFC 7574 §8.2, Table 7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// HANDSHAKE (0x00).
    Handshake = 0x00,
    /// DATA (0x01).
    Data = 0x01,
    /// ACK (0x02).
    Ack = 0x02,
    /// HAVE (0x03).
    Have = 0x03,
    /// INTEGRITY (0x04).
    Integrity = 0x04,
    /// PEX_RESv4 (0x05).
    PexResV4 = 0x05,
    /// PEX_REQ (0x06).
    PexReq = 0x06,
    /// SIGNED_INTEGRITY (0x07).
    SignedIntegrity = 0x07,
    /// REQUEST (0x08).
    Request = 0x08,
    /// CANCEL (0x09).
    Cancel = 0x09,
    /// CHOKE (0x0a).
    Choke = 0x0a,
    /// UNCHOKE (0x0b).
    Unchoke = 0x0b,
    /// PEX_RESv6 (0x0c).
    PexResV6 = 0x0c,
    /// PEX_REScert (0x0d).
    PexResCert = 0x0d,
}

impl MessageType {
    /// Every message type, in code order.
    pub const ALL: [Self; 14] = [
        Self::Handshake,
        Self::Data,
        Self::Ack,
        Self::Have,
        Self::Integrity,
        Self::PexResV4,
        Self::PexReq,
        Self::SignedIntegrity,
        Self::Request,
        Self::Cancel,
        Self::Choke,
        Self::Unchoke,
        Self::PexResV6,
        Self::PexResCert,
    ];

    /// The type with code `code`, if assigned (14–255 are not).
    pub const fn from_code(code: u8) -> Option<Self> {
        if (code as usize) < Self::ALL.len() {
            Some(Self::ALL[code as usize])
        } else {
            None
        }
    }

    /// The wire code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The RFC's name in capitals (`HANDSHAKE`, `PEX_RESv4`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Handshake => "HANDSHAKE",
            Self::Data => "DATA",
            Self::Ack => "ACK",
            Self::Have => "HAVE",
            Self::Integrity => "INTEGRITY",
            Self::PexResV4 => "PEX_RESv4",
            Self::PexReq => "PEX_REQ",
            Self::SignedIntegrity => "SIGNED_INTEGRITY",
            Self::Request => "REQUEST",
            Self::Cancel => "CANCEL",
            Self::Choke => "CHOKE",
            Self::Unchoke => "UNCHOKE",
            Self::PexResV6 => "PEX_RESv6",
            Self::PexResCert => "PEX_REScert",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The parameters negotiated for a channel that decoding and encoding depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WireParams {
    /// The chunk addressing method: sets the shape and width of every chunk specification.
    pub addressing: ChunkAddressing,
    /// The length of a hash in INTEGRITY messages (the Merkle hash function's output length).
    pub hash_len: usize,
    /// The length of a signature in SIGNED_INTEGRITY messages (set by the live signature
    /// algorithm and key; 0 when the swarm has none, which makes SIGNED_INTEGRITY undecodable).
    pub signature_len: usize,
    /// The swarm's fixed chunk size in bytes, or 0 when not known. With it, a DATA message for
    /// one chunk whose datagram goes on past a full chunk ends after `chunk_size` bytes and
    /// the next message follows (RFC 7574 §8.6: a datagram MAY carry several DATA messages
    /// when chunks are fixed-size and none is a short last chunk). Without it, a DATA message
    /// runs to the end of the datagram.
    pub chunk_size: u32,
}

impl WireParams {
    /// Parameters for a static swarm with the given addressing and Merkle hash function.
    pub const fn new(addressing: ChunkAddressing, hash: HashAlgorithm) -> Self {
        Self {
            addressing,
            hash_len: hash.output_len(),
            signature_len: 0,
            chunk_size: 0,
        }
    }

    /// Sets the signature length of SIGNED_INTEGRITY messages.
    pub const fn with_signature_len(mut self, len: usize) -> Self {
        self.signature_len = len;
        self
    }

    /// Sets the fixed chunk size (see [`WireParams::chunk_size`]; 0: unknown).
    pub const fn with_chunk_size(mut self, chunk_size: u32) -> Self {
        self.chunk_size = chunk_size;
        self
    }

    /// The payload length of a DATA message for `spec` with `avail` bytes left in the
    /// datagram after its header: one full chunk when [`WireParams::chunk_size`] is known,
    /// `spec` names a single chunk and more than a chunk is left; else everything left.
    pub(crate) fn data_len(&self, spec: ChunkSpec, avail: usize) -> usize {
        let cs = self.chunk_size as usize;
        let single = spec
            .to_chunks(u64::from(self.chunk_size))
            .is_some_and(|(a, b)| a == b);
        if cs > 0 && single && avail > cs {
            cs
        } else {
            avail
        }
    }
}

impl Default for WireParams {
    /// 32-bit chunk ranges with 20-byte (SHA-1) hashes: what libswift sends.
    fn default() -> Self {
        Self::new(ChunkAddressing::ChunkRange32, HashAlgorithm::Sha1)
    }
}
