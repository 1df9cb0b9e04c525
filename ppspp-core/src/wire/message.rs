//! The messages of RFC 7574 §8 and their encoding.

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use bytes::Bytes;

use super::{ChannelId, ChunkSpec, EncodeError, MessageType, ProtocolOptions, WireParams};
use crate::hash::HashValue;

/// A HANDSHAKE (§8.4): the sender's channel ID and its protocol options. A source channel of 0
/// closes the channel (§3.1.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Handshake {
    /// The channel ID the sender chose for this channel (0 to close it).
    pub source_channel: ChannelId,
    /// The protocol options.
    pub options: ProtocolOptions,
}

impl Handshake {
    /// Whether this is a closing handshake (source channel 0).
    pub const fn is_closing(&self) -> bool {
        self.source_channel.is_zero()
    }
}

/// A DATA message (§8.6): a chunk and the sender's timestamp.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Data {
    /// The chunk(s) carried.
    pub spec: ChunkSpec,
    /// The sender's clock in microseconds (since the Unix epoch, as the §8.16 example and
    /// libswift use), for LEDBAT's one-way delay.
    pub timestamp: u64,
    /// The chunk bytes: a zero-copy slice of the received datagram.
    pub payload: Bytes,
}

/// An ACK (§8.7): chunks received and verified, with a one-way delay sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ack {
    /// The chunks acknowledged.
    pub spec: ChunkSpec,
    /// Local receive time minus the DATA's timestamp, in microseconds. Signed: it is negative
    /// when the receiver's clock is behind the sender's, and only differences matter.
    pub delay: i64,
}

/// An INTEGRITY message (§8.8): the hash of a Merkle tree node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Integrity {
    /// The node, named by the chunks under it.
    pub spec: ChunkSpec,
    /// Its hash.
    pub hash: HashValue,
}

/// A SIGNED_INTEGRITY message (§8.9), for live content.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SignedIntegrity {
    /// The chunks (or munro) signed.
    pub spec: ChunkSpec,
    /// The signing time as a 64-bit NTP timestamp (RFC 5905).
    pub timestamp: u64,
    /// The raw signature (DNSSEC RRSIG signature field format).
    pub signature: Bytes,
}

/// One PPSPP message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// HANDSHAKE (0x00).
    Handshake(Handshake),
    /// DATA (0x01).
    Data(Data),
    /// ACK (0x02).
    Ack(Ack),
    /// HAVE (0x03): chunks the sender has verified.
    Have(ChunkSpec),
    /// INTEGRITY (0x04).
    Integrity(Integrity),
    /// PEX_RESv4 (0x05): one IPv4 peer.
    PexResV4(SocketAddrV4),
    /// PEX_REQ (0x06).
    PexReq,
    /// SIGNED_INTEGRITY (0x07).
    SignedIntegrity(SignedIntegrity),
    /// REQUEST (0x08).
    Request(ChunkSpec),
    /// CANCEL (0x09).
    Cancel(ChunkSpec),
    /// CHOKE (0x0a).
    Choke,
    /// UNCHOKE (0x0b).
    Unchoke,
    /// PEX_RESv6 (0x0c): one IPv6 peer.
    PexResV6(SocketAddrV6),
    /// PEX_REScert (0x0d): a DER-encoded membership certificate.
    PexResCert(Bytes),
}

impl Message {
    /// The message's type.
    pub const fn message_type(&self) -> MessageType {
        match self {
            Self::Handshake(_) => MessageType::Handshake,
            Self::Data(_) => MessageType::Data,
            Self::Ack(_) => MessageType::Ack,
            Self::Have(_) => MessageType::Have,
            Self::Integrity(_) => MessageType::Integrity,
            Self::PexResV4(_) => MessageType::PexResV4,
            Self::PexReq => MessageType::PexReq,
            Self::SignedIntegrity(_) => MessageType::SignedIntegrity,
            Self::Request(_) => MessageType::Request,
            Self::Cancel(_) => MessageType::Cancel,
            Self::Choke => MessageType::Choke,
            Self::Unchoke => MessageType::Unchoke,
            Self::PexResV6(_) => MessageType::PexResV6,
            Self::PexResCert(_) => MessageType::PexResCert,
        }
    }

    /// The chunk specification the message carries, if any.
    pub const fn chunk_spec(&self) -> Option<ChunkSpec> {
        match self {
            Self::Data(d) => Some(d.spec),
            Self::Ack(a) => Some(a.spec),
            Self::Have(s) | Self::Request(s) | Self::Cancel(s) => Some(*s),
            Self::Integrity(i) => Some(i.spec),
            Self::SignedIntegrity(s) => Some(s.spec),
            _ => None,
        }
    }

    /// Exactly how many bytes [`encode`](Self::encode) writes under `params`.
    pub fn encoded_len(&self, params: &WireParams) -> usize {
        let cs = params.addressing.spec_len();
        1 + match self {
            Self::Handshake(h) => 4 + h.options.encoded_len(params.addressing),
            Self::Data(d) => cs + 8 + d.payload.len(),
            Self::Ack(_) => cs + 8,
            Self::Have(_) | Self::Request(_) | Self::Cancel(_) => cs,
            Self::Integrity(_) => cs + params.hash_len,
            Self::PexResV4(_) => 6,
            Self::PexReq | Self::Choke | Self::Unchoke => 0,
            Self::SignedIntegrity(s) => cs + 8 + s.signature.len(),
            Self::PexResV6(_) => 18,
            Self::PexResCert(c) => 2 + c.len(),
        }
    }

    /// Writes the message at the start of `out` and returns the bytes written. Nothing useful
    /// is left in `out` on error.
    pub fn encode(&self, params: &WireParams, out: &mut [u8]) -> Result<usize, EncodeError> {
        let len = self.encoded_len(params);
        if out.len() < len {
            return Err(EncodeError::BufferTooSmall {
                needed: len,
                available: out.len(),
            });
        }
        let out = &mut out[..len];
        out[0] = self.message_type().code();
        let cs = params.addressing.spec_len();
        let body = &mut out[1..];
        match self {
            Self::Handshake(h) => {
                body[..4].copy_from_slice(&h.source_channel.0.to_be_bytes());
                h.options.write(params.addressing, &mut body[4..])?;
            }
            Self::Data(d) => {
                d.spec.write(params.addressing, &mut body[..cs])?;
                body[cs..cs + 8].copy_from_slice(&d.timestamp.to_be_bytes());
                body[cs + 8..].copy_from_slice(&d.payload);
            }
            Self::Ack(a) => {
                a.spec.write(params.addressing, &mut body[..cs])?;
                body[cs..].copy_from_slice(&a.delay.to_be_bytes());
            }
            Self::Have(s) | Self::Request(s) | Self::Cancel(s) => {
                s.write(params.addressing, body)?;
            }
            Self::Integrity(i) => {
                if i.hash.len() != params.hash_len {
                    return Err(EncodeError::HashLength {
                        len: i.hash.len(),
                        expected: params.hash_len,
                    });
                }
                i.spec.write(params.addressing, &mut body[..cs])?;
                body[cs..].copy_from_slice(i.hash.as_bytes());
            }
            Self::PexResV4(a) => {
                body[..4].copy_from_slice(&a.ip().octets());
                body[4..].copy_from_slice(&a.port().to_be_bytes());
            }
            Self::PexReq | Self::Choke | Self::Unchoke => {}
            Self::SignedIntegrity(s) => {
                if s.signature.len() != params.signature_len || params.signature_len == 0 {
                    return Err(EncodeError::SignatureLength {
                        len: s.signature.len(),
                        expected: params.signature_len,
                    });
                }
                s.spec.write(params.addressing, &mut body[..cs])?;
                body[cs..cs + 8].copy_from_slice(&s.timestamp.to_be_bytes());
                body[cs + 8..].copy_from_slice(&s.signature);
            }
            Self::PexResV6(a) => {
                body[..16].copy_from_slice(&a.ip().octets());
                body[16..].copy_from_slice(&a.port().to_be_bytes());
            }
            Self::PexResCert(c) => {
                let n = u16::try_from(c.len()).map_err(|_| EncodeError::FieldTooLong {
                    field: "certificate",
                    len: c.len(),
                })?;
                body[..2].copy_from_slice(&n.to_be_bytes());
                body[2..].copy_from_slice(c);
            }
        }
        Ok(len)
    }

    pub(crate) fn pex_v4(b: &[u8]) -> Self {
        Self::PexResV4(SocketAddrV4::new(
            Ipv4Addr::new(b[0], b[1], b[2], b[3]),
            u16::from_be_bytes([b[4], b[5]]),
        ))
    }

    pub(crate) fn pex_v6(b: &[u8]) -> Self {
        let mut ip = [0u8; 16];
        ip.copy_from_slice(&b[..16]);
        Self::PexResV6(SocketAddrV6::new(
            Ipv6Addr::from(ip),
            u16::from_be_bytes([b[16], b[17]]),
            0,
            0,
        ))
    }
}

impl fmt::Display for Message {
    /// One line: the RFC's message name in capitals, then the fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.message_type().name();
        match self {
            Self::Handshake(h) if h.is_closing() => {
                write!(f, "{name} src=00000000 (closing) {}", h.options)
            }
            Self::Handshake(h) => write!(f, "{name} src={} {}", h.source_channel, h.options),
            Self::Data(d) => write!(
                f,
                "{name} {} timestamp={} len={}",
                d.spec,
                d.timestamp,
                d.payload.len()
            ),
            Self::Ack(a) => write!(f, "{name} {} delay={}us", a.spec, a.delay),
            Self::Have(s) | Self::Request(s) | Self::Cancel(s) => write!(f, "{name} {s}"),
            Self::Integrity(i) => write!(f, "{name} {} hash={}", i.spec, i.hash),
            Self::PexResV4(a) => write!(f, "{name} {a}"),
            Self::PexResV6(a) => write!(f, "{name} {a}"),
            Self::SignedIntegrity(s) => {
                write!(
                    f,
                    "{name} {} timestamp={:#018x} signature=",
                    s.spec, s.timestamp
                )?;
                for b in s.signature.iter() {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
            Self::PexResCert(c) => write!(f, "{name} certificate_len={}", c.len()),
            Self::PexReq | Self::Choke | Self::Unchoke => f.write_str(name),
        }
    }
}
