//! Codec tests: byte-exact vectors, round trips and malformed input.

use alloc::vec;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::bin::Bin;
use crate::hash::{HashAlgorithm, HashValue};

fn unhex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    s.chunks(2)
        .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn decode_all(bytes: &[u8], params: &WireParams) -> (ChannelId, Vec<Message>, Option<DecodeError>) {
    let (chan, iter) = decode_datagram(Bytes::copy_from_slice(bytes), params).unwrap();
    let mut msgs = Vec::new();
    let mut err = None;
    for m in iter {
        match m {
            Ok(m) => msgs.push(m),
            Err(e) => err = Some(e),
        }
    }
    (chan, msgs, err)
}

fn encode_all(chan: ChannelId, msgs: &[Message], params: &WireParams) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let n = encode_datagram(chan, msgs, params, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// Decodes a vector, checks there is no error, and checks it re-encodes to the same bytes.
fn vector(hex: &str, params: &WireParams) -> (ChannelId, Vec<Message>) {
    let bytes = unhex(hex);
    let (chan, msgs, err) = decode_all(&bytes, params);
    assert_eq!(err, None, "vector {hex}");
    assert_eq!(encode_all(chan, &msgs, params), bytes, "re-encoding {hex}");
    (chan, msgs)
}

const HELLO_SWARM: &str = "47a013e660d408619d894b20806b1d5086aab03b";

fn chunks(start: u64, end: u64) -> ChunkSpec {
    ChunkSpec::Chunks { start, end }
}

/// RFC 7574 §8.16, datagram 1: the leecher's opening handshake (VECTORS-IDEAS.md §1).
#[test]
fn rfc_8_16_datagram_1_handshake() {
    let (chan, msgs) = vector(
        "00000000 00 00000001 0001 0101 020014 47a013e660d408619d894b20806b1d5086aab03b 0301 0402 0602 0900000400 ff",
        &WireParams::default(),
    );
    assert_eq!(chan, ChannelId::ZERO);
    let expected = Message::Handshake(Handshake {
        source_channel: ChannelId(1),
        options: ProtocolOptions {
            version: Some(1),
            min_version: Some(1),
            swarm_id: Some(Bytes::from(unhex(HELLO_SWARM))),
            integrity: Some(ContentIntegrity::MerkleTree),
            merkle_hash: Some(HashAlgorithm::Sha256),
            addressing: Some(ChunkAddressing::ChunkRange32),
            chunk_size: Some(1024),
            ..ProtocolOptions::default()
        },
    });
    assert_eq!(msgs, [expected]);
}

/// RFC 7574 §8.16, datagram 2: the seeder's reply with a HAVE.
#[test]
fn rfc_8_16_datagram_2_reply_with_have() {
    let (chan, msgs) = vector(
        "00000001 00 00000008 0001 0301 0402 0602 0900000400 ff 03 00000000 00000000",
        &WireParams::default(),
    );
    assert_eq!(chan, ChannelId(1));
    assert_eq!(msgs.len(), 2);
    let Message::Handshake(h) = &msgs[0] else {
        panic!("not a handshake")
    };
    assert_eq!(h.source_channel, ChannelId(8));
    assert_eq!(h.options.min_version, None);
    assert_eq!(h.options.swarm_id, None);
    assert_eq!(msgs[1], Message::Have(chunks(0, 0)));
}

/// RFC 7574 §8.16, datagrams 3–6: REQUEST + PEX_REQ, DATA, ACK + HAVE, closing handshake.
#[test]
fn rfc_8_16_datagrams_3_to_6() {
    let p = WireParams::new(ChunkAddressing::ChunkRange32, HashAlgorithm::Sha256);
    let (chan, msgs) = vector("00000008 08 00000000 00000000 06", &p);
    assert_eq!(chan, ChannelId(8));
    assert_eq!(msgs, [Message::Request(chunks(0, 0)), Message::PexReq]);

    let (_, msgs) = vector(
        "00000001 01 00000000 00000000 0004e94180b7db44 48656c6c6f20776f726c64210a",
        &p,
    );
    assert_eq!(
        msgs,
        [Message::Data(Data {
            spec: chunks(0, 0),
            timestamp: 0x0004_e941_80b7_db44,
            payload: Bytes::from_static(b"Hello world!\n"),
        })]
    );

    let (_, msgs) = vector(
        "00000008 02 00000000 00000000 0000000000000064 03 00000000 00000000",
        &p,
    );
    assert_eq!(
        msgs,
        [
            Message::Ack(Ack {
                spec: chunks(0, 0),
                delay: 100
            }),
            Message::Have(chunks(0, 0))
        ]
    );

    let (chan, msgs) = vector("00000008 00 00000000 ff", &p);
    assert_eq!(chan, ChannelId(8));
    let Message::Handshake(h) = &msgs[0] else {
        panic!("not a handshake")
    };
    assert!(h.is_closing());
    assert!(h.options.is_empty());
}

/// RFC 7574 §8.2: HAVE of bin 1 with 32-bit bins is `03 00000001`.
#[test]
fn rfc_8_2_have_bin_1() {
    let p = WireParams::new(ChunkAddressing::Bin32, HashAlgorithm::Sha1);
    let (_, msgs) = vector("00000005 03 00000001", &p);
    assert_eq!(msgs, [Message::Have(ChunkSpec::Bin(Bin::from_raw(1)))]);
}

/// RFC 7574 §7.10: everything but ACK and the PEX types is bitmap `d9 f0`.
#[test]
fn rfc_7_10_supported_messages_example() {
    use MessageType::*;
    let set = SupportedMessages::from_types([
        Handshake,
        Data,
        Have,
        Integrity,
        SignedIntegrity,
        Request,
        Cancel,
        Choke,
        Unchoke,
    ]);
    assert_eq!(set.wire_bytes(), [0xd9, 0xf0]);
    let (_, msgs) = vector(
        "00000000 00 00000001 0001 0802d9f0 ff",
        &WireParams::default(),
    );
    let Message::Handshake(h) = &msgs[0] else {
        panic!()
    };
    assert_eq!(h.options.supported_messages, Some(set));
    assert!(!set.contains(Ack) && !set.contains(PexReq) && set.contains(Unchoke));
    // Padding: a 32-byte bitmap decodes; trailing zero bytes are equal to their absence.
    let mut long = unhex("00000000 00 00000001 0820");
    long.extend_from_slice(&[0xd9, 0xf0]);
    long.extend_from_slice(&[0; 30]);
    long.push(0xff);
    let (_, msgs, err) = decode_all(&long, &WireParams::default());
    assert_eq!(err, None);
    let Message::Handshake(h) = &msgs[0] else {
        panic!()
    };
    assert_eq!(h.options.supported_messages, Some(set));
}

/// RFC 7574 §7.1: an empty option list is the single byte `ff`; §8.12–§8.14 small messages.
#[test]
fn rfc_small_messages() {
    let p = WireParams::default();
    let (_, msgs) = vector("00000008 0a 0b 06", &p);
    assert_eq!(msgs, [Message::Choke, Message::Unchoke, Message::PexReq]);
    // §8.14: a keep-alive is the channel ID alone.
    let (chan, msgs) = vector("00000008", &p);
    assert_eq!((chan, msgs.len()), (ChannelId(8), 0));
}

/// Handshakes captured from libswift (VECTORS-IDEAS.md §5): SHA-1, no Chunk Size option.
#[test]
fn libswift_captured_handshakes() {
    for (src, hex) in [
        (
            0xef19_61d4,
            "00000000 00 ef1961d4 0001 0101 020014 c89800bfc82ed01ed6e3bfd5408c51274491f7d4 0301 0400 0602 ff",
        ),
        (
            0x8ba5_7ecb,
            "00000000 00 8ba57ecb 0001 0101 020014 c89800bfc82ed01ed6e3bfd5408c51274491f7d4 0301 0400 0602 ff",
        ),
    ] {
        let (_, msgs) = vector(hex, &WireParams::default());
        let Message::Handshake(h) = &msgs[0] else {
            panic!()
        };
        assert_eq!(h.source_channel, ChannelId(src));
        assert_eq!(h.options.merkle_hash, Some(HashAlgorithm::Sha1));
        assert_eq!(h.options.addressing, Some(ChunkAddressing::ChunkRange32));
        assert_eq!(h.options.chunk_size, None);
        assert_eq!(h.options.supported_messages, None);
        assert_eq!(
            h.options.swarm_id.as_deref(),
            Some(&unhex("c89800bfc82ed01ed6e3bfd5408c51274491f7d4")[..])
        );
    }
}

/// HAVE vectors from swirl's libswift traces (VECTORS-IDEAS.md §6).
#[test]
fn swirl_have_vectors() {
    let p = WireParams::default();
    for (hex, s, e) in [
        ("03 00000000 0000000f", 0, 15),
        ("03 00000010 00000017", 16, 23),
        ("03 00000018 00000019", 24, 25),
        ("03 00000000 00000000", 0, 0),
        ("03 00000000 00000004", 0, 4),
        ("03 00000000 00000010", 0, 16),
        ("03 00000000 00000018", 0, 24),
    ] {
        let (_, msgs) = vector(&alloc::format!("00000001 {hex}"), &p);
        assert_eq!(msgs, [Message::Have(chunks(s, e))]);
    }
}

/// The special bin values of §4.2 under 32- and 64-bit bins.
#[test]
fn special_bins_on_the_wire() {
    let p32 = WireParams::new(ChunkAddressing::Bin32, HashAlgorithm::Sha1);
    let p64 = WireParams::new(ChunkAddressing::Bin64, HashAlgorithm::Sha1);
    let (_, m) = vector("00000001 03 ffffffff 03 7fffffff", &p32);
    assert_eq!(
        m,
        [
            Message::Have(ChunkSpec::Bin(Bin::NONE)),
            Message::Have(ChunkSpec::Bin(Bin::ALL))
        ]
    );
    let (_, m) = vector("00000001 03 ffffffffffffffff 03 7fffffffffffffff", &p64);
    assert_eq!(
        m,
        [
            Message::Have(ChunkSpec::Bin(Bin::NONE)),
            Message::Have(ChunkSpec::Bin(Bin::ALL))
        ]
    );
    // A 64-bit bin too wide for 32 bits cannot be encoded as one.
    let wide = Message::Have(ChunkSpec::Bin(Bin::from_layer_offset(40, 18).unwrap()));
    let mut buf = [0u8; 64];
    assert!(matches!(
        wide.encode(&p32, &mut buf),
        Err(EncodeError::ChunkSpecMismatch { .. })
    ));
}

/// Every message type and every protocol option, each under every addressing method.
#[test]
fn every_message_and_option_round_trips() {
    for addressing in ChunkAddressing::ALL {
        for hash in HashAlgorithm::ALL {
            let p = WireParams::new(addressing, hash).with_signature_len(64);
            let spec = match addressing {
                ChunkAddressing::Bin32 | ChunkAddressing::Bin64 => ChunkSpec::Bin(Bin::from_raw(3)),
                ChunkAddressing::ByteRange64 => ChunkSpec::Bytes {
                    start: 0,
                    end: 4095,
                },
                _ => chunks(2, 9),
            };
            let hs = Message::Handshake(Handshake {
                source_channel: ChannelId(0xdead_beef),
                options: ProtocolOptions {
                    version: Some(1),
                    min_version: Some(1),
                    swarm_id: Some(Bytes::from(vec![7u8; 33])),
                    integrity: Some(ContentIntegrity::UnifiedMerkleTree),
                    merkle_hash: Some(hash),
                    live_signature: Some(SignatureAlgorithm::ECDSAP256SHA256),
                    addressing: Some(addressing),
                    live_discard_window: Some(1000),
                    supported_messages: Some(SupportedMessages::all()),
                    chunk_size: Some(VARIABLE_CHUNK_SIZE),
                },
            });
            let msgs = vec![
                hs,
                Message::Have(spec),
                Message::Ack(Ack { spec, delay: -5 }),
                Message::Integrity(Integrity {
                    spec,
                    hash: hash.digest(b"x"),
                }),
                Message::PexResV4(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 6778)),
                Message::PexReq,
                Message::SignedIntegrity(SignedIntegrity {
                    spec,
                    timestamp: 0xe000_0000_8000_0000,
                    signature: Bytes::from(vec![9u8; 64]),
                }),
                Message::Request(spec),
                Message::Cancel(spec),
                Message::Choke,
                Message::Unchoke,
                Message::PexResV6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 1, 0, 0)),
                Message::PexResCert(Bytes::from_static(b"\x30\x03\x02\x01\x00")),
                Message::Data(Data {
                    spec,
                    timestamp: 42,
                    payload: Bytes::from(vec![1u8; 1024]),
                }),
            ];
            let bytes = encode_all(ChannelId(9), &msgs, &p);
            let total: usize = 4 + msgs.iter().map(|m| m.encoded_len(&p)).sum::<usize>();
            assert_eq!(bytes.len(), total);
            let (chan, back, err) = decode_all(&bytes, &p);
            assert_eq!(err, None, "{addressing:?} {hash:?}");
            assert_eq!(chan, ChannelId(9));
            assert_eq!(back, msgs);
        }
    }
}

#[test]
fn live_discard_window_width_follows_addressing() {
    // 32-bit width when the handshake says chunk32, all ones = "no discard".
    let (_, m) = vector(
        "00000000 00 00000001 0602 07ffffffff ff",
        &WireParams::default(),
    );
    let Message::Handshake(h) = &m[0] else {
        panic!()
    };
    assert_eq!(h.options.live_discard_window, Some(u64::MAX));
    // 64-bit width from the handshake's own CAM, whatever the channel default.
    let (_, m) = vector(
        "00000000 00 00000001 0604 070000000000000400 ff",
        &WireParams::default(),
    );
    let Message::Handshake(h) = &m[0] else {
        panic!()
    };
    assert_eq!(h.options.live_discard_window, Some(1024));
    // A window of exactly 2^32 − 1 chunks cannot be told apart from "no discard" in 32 bits.
    let o = ProtocolOptions {
        addressing: Some(ChunkAddressing::Bin32),
        live_discard_window: Some(u64::from(u32::MAX)),
        ..Default::default()
    };
    let hs = Message::Handshake(Handshake {
        source_channel: ChannelId(1),
        options: o,
    });
    assert_eq!(
        hs.encode(&WireParams::default(), &mut [0u8; 64]),
        Err(EncodeError::DiscardWindowTooWide)
    );
}

#[test]
fn handshake_options_govern_later_messages() {
    // Channel default chunk32/SHA-1, but the handshake says 64-bit bins and SHA-256: the
    // INTEGRITY after it has an 8-byte bin and a 32-byte hash.
    let mut d = unhex("00000001 00 00000002 0402 0603 ff 04 0000000000000003");
    d.extend_from_slice(&[0xaa; 32]);
    let (_, msgs, err) = decode_all(&d, &WireParams::default());
    assert_eq!(err, None);
    assert_eq!(
        msgs[1],
        Message::Integrity(Integrity {
            spec: ChunkSpec::Bin(Bin::from_raw(3)),
            hash: HashValue::from_slice(&[0xaa; 32]).unwrap()
        })
    );
}

fn first_error(hex: &str, p: &WireParams) -> (usize, DecodeError) {
    let (_, msgs, err) = decode_all(&unhex(hex), p);
    (msgs.len(), err.expect("an error"))
}

#[test]
fn malformed_short_datagram() {
    for len in 0..4 {
        let e = decode_datagram(Bytes::from(vec![0u8; len]), &WireParams::default()).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::ShortDatagram { len });
    }
}

#[test]
fn malformed_unknown_message_types_keep_earlier_messages() {
    for t in 14..=255u8 {
        let (n, e) = first_error(
            &alloc::format!("00000001 0a {t:02x} 0b"),
            &WireParams::default(),
        );
        assert_eq!(n, 1, "CHOKE before the bad message is kept");
        assert_eq!(
            e,
            DecodeError {
                offset: 5,
                kind: DecodeErrorKind::UnknownMessageType(t)
            }
        );
    }
}

#[test]
fn malformed_truncated_fields() {
    let p = WireParams::default();
    let cases: &[(&str, MessageType, &str)] = &[
        (
            "00000001 03 000000",
            MessageType::Have,
            "chunk specification",
        ),
        (
            "00000001 08 00000000 000000",
            MessageType::Request,
            "chunk specification",
        ),
        ("00000001 09", MessageType::Cancel, "chunk specification"),
        (
            "00000001 01 00000000 00000000 00000000",
            MessageType::Data,
            "timestamp",
        ),
        (
            "00000001 02 00000000 00000000 00",
            MessageType::Ack,
            "one-way delay sample",
        ),
        (
            "00000001 04 00000000 00000000 0102",
            MessageType::Integrity,
            "hash",
        ),
        (
            "00000001 05 7f000001 00",
            MessageType::PexResV4,
            "IPv4 address and port",
        ),
        (
            "00000001 0c 00000000",
            MessageType::PexResV6,
            "IPv6 address and port",
        ),
        (
            "00000001 0d 00",
            MessageType::PexResCert,
            "certificate length",
        ),
        (
            "00000001 0d 0005 0102",
            MessageType::PexResCert,
            "certificate",
        ),
        (
            "00000000 00 000001",
            MessageType::Handshake,
            "source channel",
        ),
        (
            "00000000 00 00000001 0001",
            MessageType::Handshake,
            "End option",
        ),
        ("00000000 00 00000001 00", MessageType::Handshake, "version"),
        (
            "00000000 00 00000001 0200",
            MessageType::Handshake,
            "swarm ID length",
        ),
        (
            "00000000 00 00000001 02ffff 00",
            MessageType::Handshake,
            "swarm ID",
        ),
        (
            "00000000 00 00000001 0900",
            MessageType::Handshake,
            "chunk size",
        ),
        (
            "00000000 00 00000001 0602 0700",
            MessageType::Handshake,
            "live discard window",
        ),
        (
            "00000000 00 00000001 08",
            MessageType::Handshake,
            "supported messages length",
        ),
        (
            "00000000 00 00000001 0804 01",
            MessageType::Handshake,
            "supported messages bitmap",
        ),
    ];
    for (hex, message, field) in cases {
        let (_, e) = first_error(hex, &p);
        match e.kind {
            DecodeErrorKind::Truncated {
                message: m,
                field: f,
                needed,
                available,
            } => {
                assert_eq!((m, f), (*message, *field), "{hex}");
                assert!(needed > available, "{hex}");
            }
            k => panic!("{hex}: {k:?}"),
        }
    }
    // SIGNED_INTEGRITY truncated in its signature.
    let ps = p.with_signature_len(64);
    let (_, e) = first_error("00000001 07 00000000 00000000 0000000000000000 0102", &ps);
    assert!(matches!(
        e.kind,
        DecodeErrorKind::Truncated {
            field: "signature",
            ..
        }
    ));
}

#[test]
fn malformed_options() {
    let p = WireParams::default();
    let (_, e) = first_error("00000000 00 00000001 0a01 ff", &p);
    assert_eq!(
        e,
        DecodeError {
            offset: 9,
            kind: DecodeErrorKind::UnknownOption(10)
        }
    );
    let (_, e) = first_error("00000000 00 00000001 0001 0001 ff", &p);
    assert_eq!(
        e,
        DecodeError {
            offset: 11,
            kind: DecodeErrorKind::OptionOutOfOrder {
                option: 0,
                previous: 0
            }
        }
    );
    let (_, e) = first_error("00000000 00 00000001 0301 0001 ff", &p);
    assert_eq!(
        e.kind,
        DecodeErrorKind::OptionOutOfOrder {
            option: 0,
            previous: 3
        }
    );
    let (_, e) = first_error("00000000 00 00000001 0307 ff", &p);
    assert_eq!(
        e.kind,
        DecodeErrorKind::InvalidOptionValue {
            option: 3,
            value: 7
        }
    );
    let (_, e) = first_error("00000000 00 00000001 0405 ff", &p);
    assert_eq!(
        e.kind,
        DecodeErrorKind::InvalidOptionValue {
            option: 4,
            value: 5
        }
    );
    let (_, e) = first_error("00000000 00 00000001 0605 ff", &p);
    assert_eq!(
        e.kind,
        DecodeErrorKind::InvalidOptionValue {
            option: 6,
            value: 5
        }
    );
    let (_, e) = first_error("00000000 00 00000001 0821 ff", &p);
    assert_eq!(
        e.kind,
        DecodeErrorKind::SupportedMessagesTooLong { len: 33 }
    );
}

#[test]
fn malformed_handshake_not_first() {
    let (n, e) = first_error("00000001 0a 00 00000002 ff", &WireParams::default());
    assert_eq!(n, 1);
    assert_eq!(
        e,
        DecodeError {
            offset: 5,
            kind: DecodeErrorKind::HandshakeNotFirst
        }
    );
}

#[test]
fn malformed_inverted_range_and_missing_signature_length() {
    let (_, e) = first_error("00000001 08 00000005 00000004", &WireParams::default());
    assert_eq!(
        e.kind,
        DecodeErrorKind::InvertedRange {
            message: MessageType::Request
        }
    );
    let (_, e) = first_error("00000001 07 00000000 00000000", &WireParams::default());
    assert_eq!(e.kind, DecodeErrorKind::NoSignatureLength);
}

#[test]
fn trailing_junk_after_keepalive_or_messages() {
    let (n, e) = first_error("00000008 ff", &WireParams::default());
    assert_eq!((n, e.kind), (0, DecodeErrorKind::UnknownMessageType(0xff)));
    let (n, e) = first_error("00000008 03 00000000 00000001 0300", &WireParams::default());
    assert_eq!(n, 1);
    assert!(matches!(
        e.kind,
        DecodeErrorKind::Truncated {
            message: MessageType::Have,
            ..
        }
    ));
}

#[test]
fn errors_display_what_and_where() {
    let (_, e) = first_error("00000001 0a 0e", &WireParams::default());
    assert_eq!(
        alloc::format!("{e}"),
        "at byte 5: unknown message type 0x0e"
    );
}

/// R-8.6-c: with a fixed chunk size known, several DATA messages (full chunks) share a
/// datagram, a short last chunk ends it; without it, a DATA message runs to the end (libswift).
#[test]
fn several_data_messages_share_a_datagram_when_the_chunk_size_is_fixed() {
    let p = WireParams::default().with_chunk_size(4);
    let d = |c: u64, payload: &'static [u8]| {
        Message::Data(Data {
            spec: chunks(c, c),
            timestamp: 7 + c,
            payload: Bytes::from_static(payload),
        })
    };
    let msgs = vec![
        Message::Integrity(Integrity {
            spec: chunks(1, 1),
            hash: HashValue::zero(20),
        }),
        d(0, b"abcd"),
        d(1, b"efgh"),
        Message::Have(chunks(0, 1)),
        d(2, b"ij"),
    ];
    let bytes = encode_all(ChannelId(9), &msgs, &p);
    let (chan, back, err) = decode_all(&bytes, &p);
    assert_eq!((chan, err), (ChannelId(9), None));
    assert_eq!(back, msgs);
    // The same bytes without the chunk size: the first DATA takes the rest of the datagram.
    let (_, one, err) = decode_all(&bytes, &WireParams::default());
    assert_eq!(err, None);
    assert_eq!(one.len(), 2);
    let Message::Data(first) = &one[1] else {
        panic!("{:?}", one[1]);
    };
    assert_eq!(
        first.payload.len(),
        bytes.len() - (4 + 9 + 20) - (1 + 8 + 8)
    );
    // A short chunk, a chunk range or an unknown size ends the datagram.
    let mut buf = [0u8; 128];
    let mut w = DatagramWriter::new(&mut buf, ChannelId(1), p).unwrap();
    w.push(&d(3, b"xy")).unwrap();
    assert_eq!(w.push(&Message::Choke), Err(EncodeError::DataNotLast));
    let mut w = DatagramWriter::new(&mut buf, ChannelId(1), p).unwrap();
    w.push(&Message::Data(Data {
        spec: chunks(4, 5),
        timestamp: 0,
        payload: Bytes::from_static(b"12345678"),
    }))
    .unwrap();
    assert_eq!(w.push(&Message::Choke), Err(EncodeError::DataNotLast));
    let mut w = DatagramWriter::new(&mut buf, ChannelId(1), WireParams::default()).unwrap();
    w.push(&d(0, b"abcd")).unwrap();
    assert_eq!(w.push(&Message::Choke), Err(EncodeError::DataNotLast));
    // A handshake's Chunk Size option sets it for the rest of its datagram.
    let hs = Message::Handshake(Handshake {
        source_channel: ChannelId(2),
        options: ProtocolOptions {
            chunk_size: Some(4),
            ..ProtocolOptions::default()
        },
    });
    let msgs = vec![hs, d(0, b"abcd"), d(1, b"efgh")];
    let bytes = encode_all(ChannelId(0), &msgs, &WireParams::default());
    let (_, back, err) = decode_all(&bytes, &WireParams::default());
    assert_eq!(err, None);
    assert_eq!(back, msgs);
    // Bytes after a full chunk that are no message: the DATA is kept, the rest is an error at
    // its offset (R-3-c), never a longer chunk.
    let mut bad = encode_all(ChannelId(9), &[d(0, b"abcd")], &p);
    let at = bad.len();
    bad.extend_from_slice(&[0xee, 1, 2]);
    let (_, back, err) = decode_all(&bad, &p);
    assert_eq!(back, vec![d(0, b"abcd")]);
    let err = err.expect("the trailing bytes do not decode");
    assert_eq!(err.offset, at);
    // A variable chunk size (0xffffffff) never splits.
    let var = WireParams::default().with_chunk_size(u32::MAX);
    let (_, back, err) = decode_all(&bad, &var);
    assert_eq!(err, None);
    assert!(matches!(&back[..], [Message::Data(x)] if x.payload.len() == 7));
}

#[test]
fn encoder_rules() {
    let p = WireParams::default();
    let mut buf = [0u8; 64];
    let mut w = DatagramWriter::new(&mut buf, ChannelId(1), p).unwrap();
    w.push(&Message::Choke).unwrap();
    let hs = Message::Handshake(Handshake {
        source_channel: ChannelId(2),
        options: ProtocolOptions::default(),
    });
    assert_eq!(w.push(&hs), Err(EncodeError::HandshakeNotFirst));
    let data = Message::Data(Data {
        spec: chunks(0, 0),
        timestamp: 0,
        payload: Bytes::from_static(b"ab"),
    });
    w.push(&data).unwrap();
    assert_eq!(w.push(&Message::Choke), Err(EncodeError::DataNotLast));
    assert_eq!(w.finish(), 4 + 1 + 1 + 8 + 8 + 2);
    // Too small: reports what it needs and leaves the datagram unchanged.
    let mut small = [0u8; 8];
    let mut w = DatagramWriter::new(&mut small, ChannelId(1), p).unwrap();
    assert_eq!(
        w.push(&Message::Have(chunks(0, 0))),
        Err(EncodeError::BufferTooSmall {
            needed: 9,
            available: 4
        })
    );
    assert_eq!(w.len(), 4);
    // Wrong hash length.
    let i = Message::Integrity(Integrity {
        spec: chunks(0, 0),
        hash: HashValue::zero(32),
    });
    assert_eq!(
        i.encode(&p, &mut buf),
        Err(EncodeError::HashLength {
            len: 32,
            expected: 20
        })
    );
    // Shape mismatch: a bin under chunk ranges.
    let h = Message::Have(ChunkSpec::Bin(Bin::from_raw(1)));
    assert!(matches!(
        h.encode(&p, &mut buf),
        Err(EncodeError::ChunkSpecMismatch { .. })
    ));
    assert!(DatagramWriter::new(&mut [0u8; 3], ChannelId(1), p).is_err());
}

#[test]
fn display_lines() {
    let (_, msgs) = vector(
        "00000000 00 00000001 0001 0101 020014 47a013e660d408619d894b20806b1d5086aab03b 0301 0402 0602 0900000400 ff",
        &WireParams::default(),
    );
    assert_eq!(
        alloc::format!("{}", msgs[0]),
        "HANDSHAKE src=00000001 version=1 min_version=1 swarm_id=47a013e660d408619d894b20806b1d5086aab03b integrity=merkle hash=sha256 addressing=chunk32 chunk_size=1024"
    );
    assert_eq!(
        alloc::format!("{}", Message::Have(chunks(0, 15))),
        "HAVE 0..15"
    );
    assert_eq!(
        alloc::format!("{}", Message::Request(ChunkSpec::Bin(Bin::from_raw(7)))),
        "REQUEST bin 7"
    );
}

// ---- property tests -------------------------------------------------------------------

fn any_params() -> impl Strategy<Value = WireParams> {
    (0usize..5, 0usize..5, 1usize..200).prop_map(|(a, h, s)| {
        WireParams::new(ChunkAddressing::ALL[a], HashAlgorithm::ALL[h]).with_signature_len(s)
    })
}

fn any_spec(a: ChunkAddressing) -> BoxedStrategy<ChunkSpec> {
    match a {
        ChunkAddressing::Bin32 => any::<u32>()
            .prop_map(|v| ChunkSpec::Bin(Bin::from_u32(v)))
            .boxed(),
        ChunkAddressing::Bin64 => any::<u64>()
            .prop_map(|v| ChunkSpec::Bin(Bin::from_raw(v)))
            .boxed(),
        ChunkAddressing::ChunkRange32 => (any::<u32>(), any::<u32>())
            .prop_map(|(x, y)| chunks(x.min(y).into(), x.max(y).into()))
            .boxed(),
        ChunkAddressing::ChunkRange64 => (any::<u64>(), any::<u64>())
            .prop_map(|(x, y)| chunks(x.min(y), x.max(y)))
            .boxed(),
        ChunkAddressing::ByteRange64 => (any::<u64>(), any::<u64>())
            .prop_map(|(x, y)| ChunkSpec::Bytes {
                start: x.min(y),
                end: x.max(y),
            })
            .boxed(),
    }
}

fn any_options(a: ChunkAddressing) -> impl Strategy<Value = ProtocolOptions> {
    let ldw = if a.is_64bit() {
        any::<u64>().boxed()
    } else {
        (0..u64::from(u32::MAX)).boxed()
    };
    (
        (
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<u8>()),
        ),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80)),
        proptest::option::of(0u8..4),
        proptest::option::of(any::<u8>()),
        proptest::option::of(ldw),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..=32)),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(
            move |((v, mv), id, cipm, lsa, ldw, sm, cs)| ProtocolOptions {
                version: v,
                min_version: mv,
                swarm_id: id.map(Bytes::from),
                integrity: cipm.and_then(ContentIntegrity::from_code),
                merkle_hash: None,
                live_signature: lsa.map(SignatureAlgorithm),
                addressing: None,
                live_discard_window: ldw,
                supported_messages: sm.map(|b| {
                    let mut s = SupportedMessages::NONE;
                    for (i, byte) in b.iter().enumerate() {
                        for bit in 0..8 {
                            if byte & (0x80 >> bit) != 0 {
                                s.insert_code((i * 8 + bit) as u8);
                            }
                        }
                    }
                    s
                }),
                chunk_size: cs,
            },
        )
}

fn any_message(p: WireParams) -> impl Strategy<Value = Message> {
    let a = p.addressing;
    let spec = any_spec(a);
    let hl = p.hash_len;
    let sl = p.signature_len;
    prop_oneof![
        (any::<u32>(), any_options(a)).prop_map(|(c, options)| Message::Handshake(Handshake {
            source_channel: ChannelId(c),
            options
        })),
        (spec.clone(), any::<i64>()).prop_map(|(spec, delay)| Message::Ack(Ack { spec, delay })),
        spec.clone().prop_map(Message::Have),
        spec.clone().prop_map(Message::Request),
        spec.clone().prop_map(Message::Cancel),
        (
            spec.clone(),
            proptest::collection::vec(any::<u8>(), hl..=hl)
        )
            .prop_map(|(spec, h)| {
                Message::Integrity(Integrity {
                    spec,
                    hash: HashValue::from_slice(&h).unwrap(),
                })
            }),
        (
            spec.clone(),
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), sl..=sl)
        )
            .prop_map(
                |(spec, timestamp, s)| Message::SignedIntegrity(SignedIntegrity {
                    spec,
                    timestamp,
                    signature: Bytes::from(s)
                })
            ),
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| Message::PexResV4(SocketAddrV4::new(ip.into(), port))),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| Message::PexResV6(SocketAddrV6::new(ip.into(), port, 0, 0))),
        proptest::collection::vec(any::<u8>(), 0..300)
            .prop_map(|c| Message::PexResCert(Bytes::from(c))),
        Just(Message::PexReq),
        Just(Message::Choke),
        Just(Message::Unchoke),
    ]
}

fn any_datagram() -> impl Strategy<Value = (WireParams, u32, Vec<Message>, Option<Data>)> {
    any_params().prop_flat_map(|p| {
        (
            Just(p),
            any::<u32>(),
            proptest::collection::vec(any_message(p), 0..12),
            proptest::option::of(
                (
                    any_spec(p.addressing),
                    any::<u64>(),
                    proptest::collection::vec(any::<u8>(), 0..1100),
                )
                    .prop_map(|(spec, timestamp, d)| Data {
                        spec,
                        timestamp,
                        payload: Bytes::from(d),
                    }),
            ),
        )
    })
}

proptest! {
    /// decode(encode(m)) == m for every message under every addressing method and hash and
    /// signature length (a HANDSHAKE only first; DATA only last).
    #[test]
    fn round_trip_datagrams((p, chan, msgs, data) in any_datagram()) {
        // A handshake may only open a datagram: keep the first one generated, at the front.
        let mut msgs: Vec<Message> = msgs;
        let hs = msgs.iter().position(|m| matches!(m, Message::Handshake(_))).map(|i| msgs[i].clone());
        msgs.retain(|m| !matches!(m, Message::Handshake(_)));
        if let Some(hs) = hs {
            msgs.insert(0, hs);
        }
        if let Some(d) = data {
            msgs.push(Message::Data(d));
        }
        let bytes = encode_all(ChannelId(chan), &msgs, &p);
        prop_assert_eq!(bytes.len(), 4 + msgs.iter().map(|m| m.encoded_len(&p)).sum::<usize>());
        let (c, back, err) = decode_all(&bytes, &p);
        prop_assert_eq!(err, None);
        prop_assert_eq!(c, ChannelId(chan));
        prop_assert_eq!(back, msgs);
    }

    /// Runs of full-chunk DATA messages, then an optional short last one, round-trip under
    /// any addressing once the chunk size is known (R-8.6-c).
    #[test]
    fn round_trip_several_data_messages(p in any_params(), cs in 1u32..64, n in 1usize..6, last in 0usize..64, first in 0u64..1000) {
        let p = p.with_chunk_size(cs);
        let spec = |c: u64| ChunkSpec::chunk(p.addressing, c, u64::from(cs)).unwrap();
        let mut msgs: Vec<Message> = (0..n as u64)
            .map(|i| Message::Data(Data {
                spec: spec(first + i),
                timestamp: i,
                payload: Bytes::from(vec![i as u8; cs as usize]),
            }))
            .collect();
        let last = last % cs as usize;
        if last > 0 {
            msgs.push(Message::Data(Data {
                spec: spec(first + n as u64),
                timestamp: 99,
                payload: Bytes::from(vec![0xee; last]),
            }));
        }
        let bytes = encode_all(ChannelId(3), &msgs, &p);
        let (_, back, err) = decode_all(&bytes, &p);
        prop_assert_eq!(err, None);
        prop_assert_eq!(back, msgs);
    }

    /// Handshakes with arbitrary options round-trip, and their options govern what follows.
    #[test]
    fn round_trip_handshakes(p in any_params(), chan in any::<u32>(), o in any_options(ChunkAddressing::Bin64), a in 0usize..5, h in 0usize..5) {
        let mut o = o;
        o.addressing = Some(ChunkAddressing::ALL[a]);
        o.merkle_hash = Some(HashAlgorithm::ALL[h]);
        if !ChunkAddressing::ALL[a].is_64bit() {
            o.live_discard_window = o.live_discard_window.map(|v| if v == u64::MAX { v } else { v % u64::from(u32::MAX) });
        }
        let after = WireParams { addressing: ChunkAddressing::ALL[a], hash_len: HashAlgorithm::ALL[h].output_len(), signature_len: p.signature_len, chunk_size: o.chunk_size.unwrap_or(p.chunk_size) };
        let msgs = vec![
            Message::Handshake(Handshake { source_channel: ChannelId(chan), options: o }),
            Message::Integrity(Integrity { spec: ChunkSpec::chunk(after.addressing, 0, 1024).unwrap(), hash: HashAlgorithm::ALL[h].digest(b"") }),
        ];
        let bytes = encode_all(ChannelId(0), &msgs, &p);
        let (_, back, err) = decode_all(&bytes, &p);
        prop_assert_eq!(err, None);
        prop_assert_eq!(back, msgs);
    }

    /// Arbitrary bytes never panic; whatever decodes re-encodes to the same bytes.
    #[test]
    fn arbitrary_bytes_never_panic(p in any_params(), bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok((chan, iter)) = decode_datagram(Bytes::from(bytes.clone()), &p) {
            let mut ok = Vec::new();
            for m in iter {
                match m {
                    Ok(m) => ok.push(m),
                    Err(e) => {
                        prop_assert!(e.offset >= 4 && e.offset <= bytes.len());
                        break;
                    }
                }
            }
            // Re-encoding and decoding again gives the same messages.
            let re = encode_all(chan, &ok, &p);
            let (_, again, err) = decode_all(&re, &p);
            prop_assert_eq!(err, None);
            prop_assert_eq!(again, ok);
        }
    }
}
