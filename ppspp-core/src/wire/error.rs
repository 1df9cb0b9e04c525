//! Codec errors.

use core::fmt;

use super::{ChunkAddressing, ChunkSpec, MessageType};

/// Why a datagram could not be decoded past some point, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset in the datagram (counting the 4-byte channel ID) of the invalid message or,
    /// inside a HANDSHAKE, of the invalid protocol option.
    pub offset: usize,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

/// What was wrong with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The datagram is shorter than the 4-byte destination channel ID.
    ShortDatagram {
        /// The datagram's length.
        len: usize,
    },
    /// A message type code that RFC 7574 does not assign (14–255).
    UnknownMessageType(u8),
    /// A message ends before one of its fields is complete.
    Truncated {
        /// The message being decoded.
        message: MessageType,
        /// The field that is cut short.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the datagram.
        available: usize,
    },
    /// A HANDSHAKE that is not the first message of its datagram (§3.1, R-3.1-b).
    HandshakeNotFirst,
    /// A protocol option code that RFC 7574 does not assign. Unknown options have no known
    /// length, so nothing after one can be parsed.
    UnknownOption(u8),
    /// A protocol option that repeats or comes after a higher code (§7: ascending order).
    OptionOutOfOrder {
        /// The option found.
        option: u8,
        /// The option before it.
        previous: u8,
    },
    /// A known option with a value RFC 7574 does not assign.
    InvalidOptionValue {
        /// The option code.
        option: u8,
        /// The value found.
        value: u64,
    },
    /// A Supported Messages option longer than the 32 bytes that 256 message types need.
    SupportedMessagesTooLong {
        /// The length byte found.
        len: u8,
    },
    /// A chunk range whose start is after its end.
    InvertedRange {
        /// The message being decoded.
        message: MessageType,
    },
    /// A SIGNED_INTEGRITY on a channel with no signature length (no live signature algorithm
    /// negotiated).
    NoSignatureLength,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: ", self.offset)?;
        match self.kind {
            DecodeErrorKind::ShortDatagram { len } => {
                write!(
                    f,
                    "datagram of {len} bytes is shorter than a channel ID (4 bytes)"
                )
            }
            DecodeErrorKind::UnknownMessageType(t) => write!(f, "unknown message type {t:#04x}"),
            DecodeErrorKind::Truncated {
                message,
                field,
                needed,
                available,
            } => write!(
                f,
                "{message} truncated: {field} needs {needed} bytes, {available} left"
            ),
            DecodeErrorKind::HandshakeNotFirst => {
                f.write_str("HANDSHAKE is not the first message of the datagram")
            }
            DecodeErrorKind::UnknownOption(o) => write!(f, "unknown protocol option {o}"),
            DecodeErrorKind::OptionOutOfOrder { option, previous } if option == previous => {
                write!(f, "protocol option {option} given twice")
            }
            DecodeErrorKind::OptionOutOfOrder { option, previous } => write!(
                f,
                "protocol option {option} after option {previous} (options must ascend)"
            ),
            DecodeErrorKind::InvalidOptionValue { option, value } => {
                write!(f, "protocol option {option} has unassigned value {value}")
            }
            DecodeErrorKind::SupportedMessagesTooLong { len } => {
                write!(f, "supported messages bitmap of {len} bytes (at most 32)")
            }
            DecodeErrorKind::InvertedRange { message } => {
                write!(f, "{message} names a range whose start is after its end")
            }
            DecodeErrorKind::NoSignatureLength => {
                f.write_str("SIGNED_INTEGRITY but no live signature algorithm is negotiated")
            }
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why a message could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is too small.
    BufferTooSmall {
        /// Bytes the message needs.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The chunk specification's shape or width does not fit the addressing method.
    ChunkSpecMismatch {
        /// The specification.
        spec: ChunkSpec,
        /// The addressing method.
        addressing: ChunkAddressing,
    },
    /// A hash whose length differs from the negotiated hash length.
    HashLength {
        /// The hash's length.
        len: usize,
        /// The negotiated length.
        expected: usize,
    },
    /// A signature whose length differs from the negotiated signature length.
    SignatureLength {
        /// The signature's length.
        len: usize,
        /// The negotiated length.
        expected: usize,
    },
    /// A variable-length field longer than its 16-bit length prefix allows.
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// A Live Discard Window that does not fit the 32-bit width of the addressing method.
    DiscardWindowTooWide,
    /// A HANDSHAKE placed after other messages in a datagram.
    HandshakeNotFirst,
    /// A DATA message followed by another message (DATA runs to the end of the datagram).
    DataNotLast,
    /// The payload a caller was to write in place (a hash, a chunk) was not available.
    PayloadUnavailable,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BufferTooSmall { needed, available } => {
                write!(f, "buffer too small: need {needed} bytes, have {available}")
            }
            Self::ChunkSpecMismatch { spec, addressing } => {
                write!(
                    f,
                    "chunk specification {spec} cannot be written as {addressing}"
                )
            }
            Self::HashLength { len, expected } => {
                write!(f, "hash of {len} bytes where {expected} are negotiated")
            }
            Self::SignatureLength { len, expected } => {
                write!(
                    f,
                    "signature of {len} bytes where {expected} are negotiated"
                )
            }
            Self::FieldTooLong { field, len } => {
                write!(f, "{field} of {len} bytes exceeds its 16-bit length field")
            }
            Self::DiscardWindowTooWide => {
                f.write_str("live discard window does not fit 32-bit addressing")
            }
            Self::HandshakeNotFirst => f.write_str("HANDSHAKE must be the first message"),
            Self::DataNotLast => f.write_str("nothing can follow a DATA message"),
            Self::PayloadUnavailable => {
                f.write_str("the payload to write in place was unavailable")
            }
        }
    }
}

impl core::error::Error for EncodeError {}
