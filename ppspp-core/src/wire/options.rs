//! Protocol options of a HANDSHAKE (RFC 7574 §7).

use core::fmt;

use bytes::Bytes;

use super::{ChunkAddressing, DecodeErrorKind, EncodeError, MessageType};
use crate::hash::HashAlgorithm;

/// The Chunk Size option value meaning "chunks vary in size" (§7.11).
pub const VARIABLE_CHUNK_SIZE: u32 = 0xFFFF_FFFF;

pub(crate) const OPT_VERSION: u8 = 0;
pub(crate) const OPT_MIN_VERSION: u8 = 1;
pub(crate) const OPT_SWARM_ID: u8 = 2;
pub(crate) const OPT_INTEGRITY: u8 = 3;
pub(crate) const OPT_MERKLE_HASH: u8 = 4;
pub(crate) const OPT_LIVE_SIGNATURE: u8 = 5;
pub(crate) const OPT_ADDRESSING: u8 = 6;
pub(crate) const OPT_LIVE_DISCARD_WINDOW: u8 = 7;
pub(crate) const OPT_SUPPORTED_MESSAGES: u8 = 8;
pub(crate) const OPT_CHUNK_SIZE: u8 = 9;
pub(crate) const OPT_END: u8 = 0xFF;

/// A content integrity protection method (§7.5, Table 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ContentIntegrity {
    /// No integrity protection (code 0; benign networks only).
    None = 0,
    /// Merkle Hash Tree (code 1): the default for static content.
    MerkleTree = 1,
    /// Sign All (code 2), for live content.
    SignAll = 2,
    /// Unified Merkle Tree (code 3): the default for live content.
    UnifiedMerkleTree = 3,
}

impl ContentIntegrity {
    /// The method with wire code `code`, if assigned.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::None,
            1 => Self::MerkleTree,
            2 => Self::SignAll,
            3 => Self::UnifiedMerkleTree,
            _ => return None,
        })
    }

    /// The wire code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// A short name for printing.
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::MerkleTree => "merkle",
            Self::SignAll => "sign-all",
            Self::UnifiedMerkleTree => "unified-merkle",
        }
    }
}

/// A live signature algorithm (§7.7): a DNSSEC algorithm number. RFC 7574 makes RSASHA1 (5),
/// RSASHA256 (8), ECDSAP256SHA256 (13) and ECDSAP384SHA384 (14) mandatory; other DNSSEC numbers
/// are carried as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignatureAlgorithm(pub u8);

impl SignatureAlgorithm {
    /// RSASHA1 (5).
    pub const RSASHA1: Self = Self(5);
    /// RSASHA256 (8).
    pub const RSASHA256: Self = Self(8);
    /// ECDSAP256SHA256 (13): the default.
    pub const ECDSAP256SHA256: Self = Self(13);
    /// ECDSAP384SHA384 (14).
    pub const ECDSAP384SHA384: Self = Self(14);
    /// Ed25519 (15), from RFC 8080.
    pub const ED25519: Self = Self(15);

    /// The DNSSEC mnemonic, if known.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            5 => "RSASHA1",
            8 => "RSASHA256",
            13 => "ECDSAP256SHA256",
            14 => "ECDSAP384SHA384",
            15 => "ED25519",
            _ => return None,
        })
    }

    /// The fixed signature length in bytes, for algorithms that have one (RSA signatures are
    /// as long as the key's modulus).
    pub const fn fixed_signature_len(self) -> Option<usize> {
        match self.0 {
            13 => Some(64),
            14 => Some(96),
            15 => Some(64),
            _ => None,
        }
    }
}

/// The Supported Messages bitmap (§7.10): bit X set means message type X is supported.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SupportedMessages([u8; 32]);

impl SupportedMessages {
    /// No messages.
    pub const NONE: Self = Self([0; 32]);

    /// Every message type RFC 7574 defines (0x00–0x0d).
    pub const fn all() -> Self {
        let mut bits = [0u8; 32];
        bits[0] = 0xFF;
        bits[1] = 0xFC;
        Self(bits)
    }

    /// The set holding the given types.
    pub fn from_types(types: impl IntoIterator<Item = MessageType>) -> Self {
        let mut s = Self::NONE;
        for t in types {
            s.insert_code(t.code());
        }
        s
    }

    /// Adds a message type code.
    pub fn insert_code(&mut self, code: u8) {
        self.0[usize::from(code / 8)] |= 0x80 >> (code % 8);
    }

    /// Whether message type code `code` is in the set.
    pub const fn contains_code(&self, code: u8) -> bool {
        self.0[(code / 8) as usize] & (0x80 >> (code % 8)) != 0
    }

    /// Whether `t` is in the set.
    pub const fn contains(&self, t: MessageType) -> bool {
        self.contains_code(t.code())
    }

    /// The bitmap as sent: trailing zero bytes cut off.
    pub fn wire_bytes(&self) -> &[u8] {
        let len = self.0.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        &self.0[..len]
    }

    fn from_wire(bytes: &[u8]) -> Self {
        let mut bits = [0u8; 32];
        bits[..bytes.len()].copy_from_slice(bytes);
        Self(bits)
    }
}

impl fmt::Debug for SupportedMessages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SupportedMessages(")?;
        fmt::Display::fmt(self, f)?;
        f.write_str(")")
    }
}

impl fmt::Display for SupportedMessages {
    /// The supported types by name, separated by `|`; unassigned codes as numbers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for code in 0..=255u8 {
            if self.contains_code(code) {
                if !first {
                    f.write_str("|")?;
                }
                first = false;
                match MessageType::from_code(code) {
                    Some(t) => f.write_str(t.name())?,
                    None => write!(f, "{code}")?,
                }
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// The protocol options of a HANDSHAKE (§7). Every option is optional on the wire; which ones a
/// handshake must carry is the protocol engine's check, not the codec's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ProtocolOptions {
    /// Version (code 0): the highest version the sender supports. 1 is RFC 7574.
    pub version: Option<u8>,
    /// Minimum Version (code 1).
    pub min_version: Option<u8>,
    /// Swarm Identifier (code 2): a Merkle root hash, or a live public key.
    pub swarm_id: Option<Bytes>,
    /// Content Integrity Protection Method (code 3).
    pub integrity: Option<ContentIntegrity>,
    /// Merkle Hash Tree Function (code 4).
    pub merkle_hash: Option<HashAlgorithm>,
    /// Live Signature Algorithm (code 5).
    pub live_signature: Option<SignatureAlgorithm>,
    /// Chunk Addressing Method (code 6).
    pub addressing: Option<ChunkAddressing>,
    /// Live Discard Window (code 7), in chunks (bytes under byte ranges); all ones for a peer
    /// that does not discard. 32 or 64 bits on the wire, as wide as the addressing method.
    pub live_discard_window: Option<u64>,
    /// Supported Messages (code 8).
    pub supported_messages: Option<SupportedMessages>,
    /// Chunk Size (code 9) in bytes; [`VARIABLE_CHUNK_SIZE`] for variable-size chunks.
    pub chunk_size: Option<u32>,
}

impl ProtocolOptions {
    /// Whether no option is set (the option list is the single End byte).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The addressing used to size the Live Discard Window: this list's own option if present,
    /// otherwise the channel's.
    fn ldw_is_64(&self, channel: ChunkAddressing) -> bool {
        self.addressing.unwrap_or(channel).is_64bit()
    }

    /// Bytes the option list takes on the wire, End byte included.
    pub fn encoded_len(&self, channel: ChunkAddressing) -> usize {
        let mut n = 1;
        n += self.version.map_or(0, |_| 2);
        n += self.min_version.map_or(0, |_| 2);
        n += self.swarm_id.as_ref().map_or(0, |id| 3 + id.len());
        n += self.integrity.map_or(0, |_| 2);
        n += self.merkle_hash.map_or(0, |_| 2);
        n += self.live_signature.map_or(0, |_| 2);
        n += self.addressing.map_or(0, |_| 2);
        n += self
            .live_discard_window
            .map_or(0, |_| if self.ldw_is_64(channel) { 9 } else { 5 });
        n += self
            .supported_messages
            .map_or(0, |s| 2 + s.wire_bytes().len());
        n += self.chunk_size.map_or(0, |_| 5);
        n
    }

    /// Writes the option list into `out`, which holds at least
    /// [`encoded_len`](Self::encoded_len) bytes; returns the bytes written.
    pub(crate) fn write(
        &self,
        channel: ChunkAddressing,
        out: &mut [u8],
    ) -> Result<usize, EncodeError> {
        let mut w = 0;
        let mut put = |bytes: &[u8]| {
            out[w..w + bytes.len()].copy_from_slice(bytes);
            w += bytes.len();
        };
        if let Some(v) = self.version {
            put(&[OPT_VERSION, v]);
        }
        if let Some(v) = self.min_version {
            put(&[OPT_MIN_VERSION, v]);
        }
        if let Some(id) = &self.swarm_id {
            let len = u16::try_from(id.len()).map_err(|_| EncodeError::FieldTooLong {
                field: "swarm ID",
                len: id.len(),
            })?;
            put(&[OPT_SWARM_ID]);
            put(&len.to_be_bytes());
            put(id);
        }
        if let Some(v) = self.integrity {
            put(&[OPT_INTEGRITY, v.code()]);
        }
        if let Some(v) = self.merkle_hash {
            put(&[OPT_MERKLE_HASH, v.code()]);
        }
        if let Some(v) = self.live_signature {
            put(&[OPT_LIVE_SIGNATURE, v.0]);
        }
        if let Some(v) = self.addressing {
            put(&[OPT_ADDRESSING, v.code()]);
        }
        if let Some(v) = self.live_discard_window {
            put(&[OPT_LIVE_DISCARD_WINDOW]);
            if self.ldw_is_64(channel) {
                put(&v.to_be_bytes());
            } else {
                // All ones ("no discard") maps to the 32-bit all ones.
                // and a real window must stay below it so it is not read back as "no discard".
                let v32 = match v {
                    u64::MAX => u32::MAX,
                    v if v < u64::from(u32::MAX) => v as u32,
                    _ => return Err(EncodeError::DiscardWindowTooWide),
                };
                put(&v32.to_be_bytes());
            }
        }
        if let Some(s) = &self.supported_messages {
            let bits = s.wire_bytes();
            // `wire_bytes` is at most 32 bytes long.
            put(&[OPT_SUPPORTED_MESSAGES, bits.len() as u8]);
            put(bits);
        }
        if let Some(v) = self.chunk_size {
            put(&[OPT_CHUNK_SIZE]);
            put(&v.to_be_bytes());
        }
        put(&[OPT_END]);
        Ok(w)
    }

    /// Decodes an option list from the start of `data` (a slice of `whole` starting at `base`).
    /// Returns the options and the bytes consumed, End byte included. Errors carry the offset of
    /// the bad option relative to `data`.
    pub(crate) fn read(
        whole: &Bytes,
        base: usize,
        channel: ChunkAddressing,
    ) -> Result<(Self, usize), (usize, DecodeErrorKind)> {
        let data = &whole[base..];
        let mut o = Self::default();
        let mut i = 0;
        let mut previous: Option<u8> = None;
        let truncated = |field, needed, available| DecodeErrorKind::Truncated {
            message: MessageType::Handshake,
            field,
            needed,
            available,
        };
        loop {
            let Some(&code) = data.get(i) else {
                return Err((i, truncated("End option", 1, 0)));
            };
            if code == OPT_END {
                return Ok((o, i + 1));
            }
            if code > OPT_CHUNK_SIZE {
                return Err((i, DecodeErrorKind::UnknownOption(code)));
            }
            if let Some(p) = previous {
                if code <= p {
                    return Err((
                        i,
                        DecodeErrorKind::OptionOutOfOrder {
                            option: code,
                            previous: p,
                        },
                    ));
                }
            }
            previous = Some(code);
            let rest = &data[i + 1..];
            let need = |field: &'static str, n: usize| {
                if rest.len() < n {
                    Err((i, truncated(field, n, rest.len())))
                } else {
                    Ok(())
                }
            };
            let invalid = |value: u64| {
                (
                    i,
                    DecodeErrorKind::InvalidOptionValue {
                        option: code,
                        value,
                    },
                )
            };
            let used = match code {
                OPT_VERSION => {
                    need("version", 1)?;
                    o.version = Some(rest[0]);
                    1
                }
                OPT_MIN_VERSION => {
                    need("minimum version", 1)?;
                    o.min_version = Some(rest[0]);
                    1
                }
                OPT_SWARM_ID => {
                    need("swarm ID length", 2)?;
                    let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    need("swarm ID", 2 + len)?;
                    let start = base + i + 3;
                    o.swarm_id = Some(whole.slice(start..start + len));
                    2 + len
                }
                OPT_INTEGRITY => {
                    need("integrity method", 1)?;
                    o.integrity = Some(
                        ContentIntegrity::from_code(rest[0])
                            .ok_or_else(|| invalid(rest[0].into()))?,
                    );
                    1
                }
                OPT_MERKLE_HASH => {
                    need("Merkle hash function", 1)?;
                    o.merkle_hash = Some(
                        HashAlgorithm::from_code(rest[0]).ok_or_else(|| invalid(rest[0].into()))?,
                    );
                    1
                }
                OPT_LIVE_SIGNATURE => {
                    need("live signature algorithm", 1)?;
                    o.live_signature = Some(SignatureAlgorithm(rest[0]));
                    1
                }
                OPT_ADDRESSING => {
                    need("chunk addressing method", 1)?;
                    o.addressing = Some(
                        ChunkAddressing::from_code(rest[0])
                            .ok_or_else(|| invalid(rest[0].into()))?,
                    );
                    1
                }
                OPT_LIVE_DISCARD_WINDOW => {
                    if o.ldw_is_64(channel) {
                        need("live discard window", 8)?;
                        let mut a = [0u8; 8];
                        a.copy_from_slice(&rest[..8]);
                        o.live_discard_window = Some(u64::from_be_bytes(a));
                        8
                    } else {
                        need("live discard window", 4)?;
                        let v = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
                        o.live_discard_window = Some(if v == u32::MAX {
                            u64::MAX
                        } else {
                            u64::from(v)
                        });
                        4
                    }
                }
                OPT_SUPPORTED_MESSAGES => {
                    need("supported messages length", 1)?;
                    let len = rest[0];
                    if len > 32 {
                        return Err((i, DecodeErrorKind::SupportedMessagesTooLong { len }));
                    }
                    need("supported messages bitmap", 1 + usize::from(len))?;
                    o.supported_messages =
                        Some(SupportedMessages::from_wire(&rest[1..1 + usize::from(len)]));
                    1 + usize::from(len)
                }
                // OPT_CHUNK_SIZE: every other code was handled or rejected above.
                _ => {
                    need("chunk size", 4)?;
                    o.chunk_size = Some(u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]));
                    4
                }
            };
            i += 1 + used;
        }
    }
}

impl fmt::Display for ProtocolOptions {
    /// Options by name, space separated: `version=1 min_version=1 swarm_id=… integrity=merkle
    /// hash=sha1 addressing=chunk32 chunk_size=1024`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        let mut item = |f: &mut fmt::Formatter<'_>, args: fmt::Arguments<'_>| {
            let r = write!(f, "{sep}{args}");
            sep = " ";
            r
        };
        if let Some(v) = self.version {
            item(f, format_args!("version={v}"))?;
        }
        if let Some(v) = self.min_version {
            item(f, format_args!("min_version={v}"))?;
        }
        if let Some(id) = &self.swarm_id {
            item(f, format_args!("swarm_id="))?;
            for b in id.iter() {
                write!(f, "{b:02x}")?;
            }
        }
        if let Some(v) = self.integrity {
            item(f, format_args!("integrity={}", v.name()))?;
        }
        if let Some(v) = self.merkle_hash {
            item(f, format_args!("hash={v}"))?;
        }
        if let Some(v) = self.live_signature {
            match v.name() {
                Some(n) => item(f, format_args!("live_signature={n}"))?,
                None => item(f, format_args!("live_signature={}", v.0))?,
            }
        }
        if let Some(v) = self.addressing {
            item(f, format_args!("addressing={v}"))?;
        }
        if let Some(v) = self.live_discard_window {
            if v == u64::MAX {
                item(f, format_args!("live_discard_window=none"))?;
            } else {
                item(f, format_args!("live_discard_window={v}"))?;
            }
        }
        if let Some(v) = &self.supported_messages {
            item(f, format_args!("supported_messages={v}"))?;
        }
        if let Some(v) = self.chunk_size {
            if v == VARIABLE_CHUNK_SIZE {
                item(f, format_args!("chunk_size=variable"))?;
            } else {
                item(f, format_args!("chunk_size={v}"))?;
            }
        }
        if sep.is_empty() {
            f.write_str("(no options)")?;
        }
        Ok(())
    }
}
