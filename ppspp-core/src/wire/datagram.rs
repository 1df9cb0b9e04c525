//! Datagrams: the destination channel ID followed by messages (§8.3).

use bytes::Bytes;

use super::message::{Ack, Data, Handshake, Integrity, SignedIntegrity};
use super::options::ProtocolOptions;
use super::{
    ChannelId, ChunkSpec, DecodeError, DecodeErrorKind, EncodeError, Message, MessageType,
    WireParams,
};
use crate::hash::HashValue;

/// Reads the destination channel of `datagram` and returns an iterator over its messages.
///
/// A datagram of exactly 4 bytes is a KEEPALIVE: the iterator yields nothing.
#[inline]
pub fn decode_datagram(
    datagram: Bytes,
    params: &WireParams,
) -> Result<(ChannelId, MessageIter), DecodeError> {
    if datagram.len() < 4 {
        return Err(DecodeError {
            offset: 0,
            kind: DecodeErrorKind::ShortDatagram {
                len: datagram.len(),
            },
        });
    }
    let channel = ChannelId(u32::from_be_bytes([
        datagram[0],
        datagram[1],
        datagram[2],
        datagram[3],
    ]));
    Ok((
        channel,
        MessageIter {
            data: datagram,
            pos: 4,
            params: *params,
            failed: false,
            error_at: None,
        },
    ))
}

/// Iterator over the messages of one datagram, made by [`decode_datagram`].
///
/// Yields each message in order; at the first invalid one it yields the error and then ends
/// (RFC 7574 §3: everything from the first invalid message on is dropped).
#[derive(Clone, Debug)]
pub struct MessageIter {
    data: Bytes,
    pos: usize,
    params: WireParams,
    failed: bool,
    error_at: Option<usize>,
}

impl MessageIter {
    /// The parameters the next message will be decoded with (a HANDSHAKE earlier in the
    /// datagram may have changed the addressing method or hash length).
    pub const fn params(&self) -> &WireParams {
        &self.params
    }

    /// The byte offset of the next message in the datagram.
    pub const fn offset(&self) -> usize {
        self.pos
    }

    #[inline(always)]
    fn decode_one(&mut self) -> Result<Message, DecodeErrorKind> {
        let start = self.pos;
        let code = self.data[start];
        let mtype =
            MessageType::from_code(code).ok_or(DecodeErrorKind::UnknownMessageType(code))?;
        let body = start + 1;
        let avail = self.data.len() - body;
        let cs = self.params.addressing.spec_len();
        let need = |field: &'static str, n: usize| {
            if avail < n {
                Err(DecodeErrorKind::Truncated {
                    message: mtype,
                    field,
                    needed: n,
                    available: avail,
                })
            } else {
                Ok(())
            }
        };
        let spec = |this: &Self| {
            need("chunk specification", cs)?;
            ChunkSpec::read(this.params.addressing, &this.data[body..body + cs])
                .ok_or(DecodeErrorKind::InvertedRange { message: mtype })
        };
        let u64_at = |this: &Self, at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&this.data[at..at + 8]);
            u64::from_be_bytes(a)
        };
        let (msg, len) = match mtype {
            MessageType::Handshake => {
                if start != 4 {
                    return Err(DecodeErrorKind::HandshakeNotFirst);
                }
                need("source channel", 4)?;
                let d = &self.data;
                let src = ChannelId(u32::from_be_bytes([
                    d[body],
                    d[body + 1],
                    d[body + 2],
                    d[body + 3],
                ]));
                let (options, used) =
                    match ProtocolOptions::read(&self.data, body + 4, self.params.addressing) {
                        Ok(v) => v,
                        Err((rel, kind)) => {
                            self.error_at = Some(body + 4 + rel);
                            return Err(kind);
                        }
                    };
                // Later messages of this datagram are read as the handshake says (§7.8, §7.6).
                if let Some(a) = options.addressing {
                    self.params.addressing = a;
                }
                if let Some(h) = options.merkle_hash {
                    self.params.hash_len = h.output_len();
                }
                if let Some(c) = options.chunk_size {
                    self.params.chunk_size = c;
                }
                (
                    Message::Handshake(Handshake {
                        source_channel: src,
                        options,
                    }),
                    4 + used,
                )
            }
            MessageType::Data => {
                let s = spec(self)?;
                need("timestamp", cs + 8)?;
                let timestamp = u64_at(self, body + cs);
                // R-8.6-c: with a fixed chunk size, a full chunk may be followed by more
                // messages (another DATA); otherwise the chunk runs to the end.
                let n = self.params.data_len(s, avail - cs - 8);
                let payload = self.data.slice(body + cs + 8..body + cs + 8 + n);
                (
                    Message::Data(Data {
                        spec: s,
                        timestamp,
                        payload,
                    }),
                    cs + 8 + n,
                )
            }
            MessageType::Ack => {
                let s = spec(self)?;
                need("one-way delay sample", cs + 8)?;
                let delay = u64_at(self, body + cs) as i64;
                (Message::Ack(Ack { spec: s, delay }), cs + 8)
            }
            MessageType::Have => (Message::Have(spec(self)?), cs),
            MessageType::Request => (Message::Request(spec(self)?), cs),
            MessageType::Cancel => (Message::Cancel(spec(self)?), cs),
            MessageType::Integrity => {
                let s = spec(self)?;
                let hl = self.params.hash_len;
                need("hash", cs + hl)?;
                let hash = HashValue::from_slice(&self.data[body + cs..body + cs + hl]).ok_or(
                    DecodeErrorKind::Truncated {
                        message: mtype,
                        field: "hash",
                        needed: hl,
                        available: avail - cs,
                    },
                )?;
                (Message::Integrity(Integrity { spec: s, hash }), cs + hl)
            }
            MessageType::SignedIntegrity => {
                if self.params.signature_len == 0 {
                    return Err(DecodeErrorKind::NoSignatureLength);
                }
                let s = spec(self)?;
                need("timestamp", cs + 8)?;
                let timestamp = u64_at(self, body + cs);
                let sl = self.params.signature_len;
                need("signature", cs + 8 + sl)?;
                let signature = self.data.slice(body + cs + 8..body + cs + 8 + sl);
                (
                    Message::SignedIntegrity(SignedIntegrity {
                        spec: s,
                        timestamp,
                        signature,
                    }),
                    cs + 8 + sl,
                )
            }
            MessageType::PexResV4 => {
                need("IPv4 address and port", 6)?;
                (Message::pex_v4(&self.data[body..body + 6]), 6)
            }
            MessageType::PexResV6 => {
                need("IPv6 address and port", 18)?;
                (Message::pex_v6(&self.data[body..body + 18]), 18)
            }
            MessageType::PexResCert => {
                need("certificate length", 2)?;
                let n = usize::from(u16::from_be_bytes([self.data[body], self.data[body + 1]]));
                need("certificate", 2 + n)?;
                (
                    Message::PexResCert(self.data.slice(body + 2..body + 2 + n)),
                    2 + n,
                )
            }
            MessageType::PexReq => (Message::PexReq, 0),
            MessageType::Choke => (Message::Choke, 0),
            MessageType::Unchoke => (Message::Unchoke, 0),
        };
        self.pos = body + len;
        Ok(msg)
    }
}

impl Iterator for MessageIter {
    type Item = Result<Message, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let offset = self.pos;
        match self.decode_one() {
            Ok(m) => Some(Ok(m)),
            Err(kind) => {
                self.failed = true;
                let offset = self.error_at.unwrap_or(offset);
                Some(Err(DecodeError { offset, kind }))
            }
        }
    }
}

impl core::iter::FusedIterator for MessageIter {}

/// Assembles one datagram in a caller buffer.
///
/// ```
/// use ppspp_core::wire::{ChannelId, ChunkSpec, DatagramWriter, Message, WireParams};
/// let mut buf = [0u8; 1500];
/// let params = WireParams::default();
/// let mut w = DatagramWriter::new(&mut buf, ChannelId(8), params).unwrap();
/// w.push(&Message::Request(ChunkSpec::Chunks { start: 0, end: 0 })).unwrap();
/// w.push(&Message::PexReq).unwrap();
/// assert_eq!(w.finish(), 14);
/// ```
#[derive(Debug)]
pub struct DatagramWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    params: WireParams,
    messages: usize,
    data_written: bool,
}

impl<'a> DatagramWriter<'a> {
    /// Starts a datagram to `channel` in `buf` (which must hold at least the 4-byte channel
    /// ID). Messages are encoded with `params`.
    pub fn new(
        buf: &'a mut [u8],
        channel: ChannelId,
        params: WireParams,
    ) -> Result<Self, EncodeError> {
        if buf.len() < 4 {
            return Err(EncodeError::BufferTooSmall {
                needed: 4,
                available: buf.len(),
            });
        }
        buf[..4].copy_from_slice(&channel.0.to_be_bytes());
        Ok(Self {
            buf,
            len: 4,
            params,
            messages: 0,
            data_written: false,
        })
    }

    /// Appends a message. On error (including [`EncodeError::BufferTooSmall`] when the message
    /// does not fit) the datagram is unchanged.
    pub fn push(&mut self, message: &Message) -> Result<(), EncodeError> {
        if self.data_written {
            return Err(EncodeError::DataNotLast);
        }
        if matches!(message, Message::Handshake(_)) && self.messages > 0 {
            return Err(EncodeError::HandshakeNotFirst);
        }
        let n = message.encode(&self.params, &mut self.buf[self.len..])?;
        self.len += n;
        self.messages += 1;
        if let Message::Handshake(h) = message {
            // As the decoder does: later messages follow the handshake's options.
            if let Some(a) = h.options.addressing {
                self.params.addressing = a;
            }
            if let Some(m) = h.options.merkle_hash {
                self.params.hash_len = m.output_len();
            }
            if let Some(c) = h.options.chunk_size {
                self.params.chunk_size = c;
            }
        }
        // A DATA message ends the datagram, unless it carries one full chunk of a known fixed
        // size (R-8.6-c): then the decoder knows where it stops.
        self.data_written = match message {
            Message::Data(d) => {
                let cs = self.params.chunk_size as usize;
                !(cs > 0 && d.payload.len() == cs && self.params.data_len(d.spec, cs + 1) == cs)
            }
            _ => false,
        };
        Ok(())
    }

    /// Caps the datagram at `max_len` bytes in all (never below what is written already): a
    /// sender that wants a smaller datagram than its buffer, for example under a path MTU.
    pub fn cap(&mut self, max_len: usize) {
        let n = max_len.clamp(self.len, self.buf.len());
        let buf = core::mem::take(&mut self.buf);
        self.buf = &mut buf[..n];
    }

    /// Appends an INTEGRITY message (§8.5) whose hash `fill` writes straight into the
    /// datagram (no copy through a [`HashValue`](crate::hash::HashValue)): `fill` gets exactly
    /// the negotiated hash length and returns whether it wrote a hash there. When it does not,
    /// or the message does not fit, the datagram is unchanged.
    pub fn push_integrity_with(
        &mut self,
        spec: ChunkSpec,
        fill: impl FnOnce(&mut [u8]) -> bool,
    ) -> Result<(), EncodeError> {
        let sl = self.params.addressing.spec_len();
        let total = 1 + sl + self.params.hash_len;
        self.check_room(total)?;
        let msg = &mut self.buf[self.len..self.len + total];
        spec.write(self.params.addressing, &mut msg[1..1 + sl])?;
        if !fill(&mut msg[1 + sl..]) {
            return Err(EncodeError::PayloadUnavailable);
        }
        msg[0] = MessageType::Integrity.code();
        self.len += total;
        self.messages += 1;
        Ok(())
    }

    /// Appends a DATA message (§8.6) whose payload `fill` reads straight into the datagram
    /// (zero-copy from a chunk store): `fill` gets room for up to `max_len` bytes (less when
    /// the datagram has less left) and returns how many it wrote, or `None` to leave the
    /// datagram unchanged ([`EncodeError::PayloadUnavailable`]). Returns the payload length.
    pub fn push_data_with(
        &mut self,
        spec: ChunkSpec,
        timestamp: u64,
        max_len: usize,
        fill: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Result<usize, EncodeError> {
        let sl = self.params.addressing.spec_len();
        let header = 1 + sl + 8;
        self.check_room(header)?;
        let room = (self.buf.len() - self.len - header).min(max_len);
        let msg = &mut self.buf[self.len..self.len + header + room];
        spec.write(self.params.addressing, &mut msg[1..1 + sl])?;
        msg[1 + sl..header].copy_from_slice(&timestamp.to_be_bytes());
        let Some(k) = fill(&mut msg[header..]).filter(|&k| k <= room) else {
            return Err(EncodeError::PayloadUnavailable);
        };
        msg[0] = MessageType::Data.code();
        self.len += header + k;
        self.messages += 1;
        let cs = self.params.chunk_size as usize;
        self.data_written = !(cs > 0 && k == cs && self.params.data_len(spec, cs + 1) == cs);
        Ok(k)
    }

    fn check_room(&self, needed: usize) -> Result<(), EncodeError> {
        if self.data_written {
            return Err(EncodeError::DataNotLast);
        }
        if self.remaining() < needed {
            return Err(EncodeError::BufferTooSmall {
                needed,
                available: self.remaining(),
            });
        }
        Ok(())
    }

    /// Bytes still free in the buffer.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.len
    }

    /// Whether `message` would fit in what is left.
    pub fn fits(&self, message: &Message) -> bool {
        !self.data_written && message.encoded_len(&self.params) <= self.remaining()
    }

    /// Messages written so far.
    pub const fn message_count(&self) -> usize {
        self.messages
    }

    /// The datagram's length so far, channel ID included.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no message has been written (the datagram would be a KEEPALIVE).
    pub const fn is_empty(&self) -> bool {
        self.messages == 0
    }

    /// Ends the datagram and returns its length in bytes.
    pub fn finish(self) -> usize {
        self.len
    }
}

/// Encodes a whole datagram into `buf` and returns its length.
pub fn encode_datagram<'m>(
    channel: ChannelId,
    messages: impl IntoIterator<Item = &'m Message>,
    params: &WireParams,
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    let mut w = DatagramWriter::new(buf, channel, *params)?;
    for m in messages {
        w.push(m)?;
    }
    Ok(w.finish())
}
