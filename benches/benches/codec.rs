//! Codec benchmarks: decoding and encoding realistic datagrams, against SHA-1 over the same
//! 1 KiB chunk as the baseline measured in the same run.
//!
//! Run: `cargo bench -p ppspp-benches --bench codec`. The last lines print the ratio
//! decode(DATA datagram) / SHA-1(1 KiB), which must stay well under 0.10.
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use ppspp_core::hash::HashAlgorithm;
use ppspp_core::wire::{
    Ack, ChannelId, ChunkAddressing, ChunkSpec, ContentIntegrity, Data, Handshake, Integrity,
    Message, ProtocolOptions, SupportedMessages, WireParams, decode_datagram, encode_datagram,
};

fn params() -> WireParams {
    WireParams::new(ChunkAddressing::ChunkRange32, HashAlgorithm::Sha1)
}

fn handshake(src: u32, swarm: bool) -> Message {
    Message::Handshake(Handshake {
        source_channel: ChannelId(src),
        options: ProtocolOptions {
            version: Some(1),
            min_version: Some(1),
            swarm_id: swarm.then(|| Bytes::from(vec![0x47; 20])),
            integrity: Some(ContentIntegrity::MerkleTree),
            merkle_hash: Some(HashAlgorithm::Sha1),
            addressing: Some(ChunkAddressing::ChunkRange32),
            supported_messages: Some(SupportedMessages::all()),
            chunk_size: Some(1024),
            ..ProtocolOptions::default()
        },
    })
}

fn chunks(start: u64, end: u64) -> ChunkSpec {
    ChunkSpec::Chunks { start, end }
}

/// The datagrams benchmarked, by name.
fn datagrams() -> Vec<(&'static str, Vec<Message>)> {
    let h = HashAlgorithm::Sha1;
    let chunk = vec![0x5a; 1024];
    vec![
        (
            "data1k",
            vec![Message::Data(Data {
                spec: chunks(26, 26),
                timestamp: 1_700_000_000_000_000,
                payload: Bytes::from(vec![0x5a; 1024]),
            })],
        ),
        ("handshake_open", vec![handshake(0x1234_5678, true)]),
        (
            "handshake_reply",
            vec![
                handshake(0x9abc_def0, false),
                Message::Have(chunks(0, 65535)),
            ],
        ),
        (
            "integrity3_data1k",
            vec![
                Message::Integrity(Integrity {
                    spec: chunks(0, 15),
                    hash: h.digest(b"a"),
                }),
                Message::Integrity(Integrity {
                    spec: chunks(16, 23),
                    hash: h.digest(b"b"),
                }),
                Message::Integrity(Integrity {
                    spec: chunks(24, 25),
                    hash: h.digest(b"c"),
                }),
                Message::Data(Data {
                    spec: chunks(26, 26),
                    timestamp: 1_700_000_000_000_000,
                    payload: Bytes::from(chunk),
                }),
            ],
        ),
        (
            "have_ack_50",
            (0..50u64)
                .map(|i| {
                    if i % 2 == 0 {
                        Message::Have(chunks(i * 4, i * 4 + 3))
                    } else {
                        Message::Ack(Ack {
                            spec: chunks(i, i),
                            delay: 25_000,
                        })
                    }
                })
                .collect(),
        ),
    ]
}

/// Reads the fields of a decoded message, as the protocol engine does.
fn consume(m: &Message) -> u64 {
    let spec = match m.chunk_spec() {
        Some(ChunkSpec::Chunks { start, end }) | Some(ChunkSpec::Bytes { start, end }) => {
            start ^ end
        }
        Some(ChunkSpec::Bin(b)) => b.raw(),
        None => 0,
    };
    let extra = match m {
        Message::Data(d) => d.timestamp ^ d.payload.len() as u64,
        Message::Integrity(i) => u64::from(i.hash.as_bytes()[0]),
        Message::Ack(a) => a.delay as u64,
        Message::Handshake(h) => {
            u64::from(h.source_channel.0) ^ h.options.chunk_size.map_or(0, u64::from)
        }
        _ => 1,
    };
    spec.wrapping_add(extra)
}

fn bench_codec(c: &mut Criterion) {
    let p = params();
    let mut g = c.benchmark_group("codec");
    for (name, msgs) in datagrams() {
        let mut buf = vec![0u8; 2048];
        let n = encode_datagram(ChannelId(7), &msgs, &p, &mut buf).expect("encode");
        let wire = Bytes::copy_from_slice(&buf[..n]);
        g.throughput(Throughput::Bytes(n as u64));
        // The receiver owns each datagram (the driver hands over its buffer), so the clone
        // that gives each iteration its own handle is set-up, not measured.
        g.bench_function(format!("decode/{name}"), |b| {
            b.iter_batched(
                || wire.clone(),
                |wire| {
                    let (ch, it) = decode_datagram(black_box(wire), &p).expect("decode");
                    // Consume every message the way a receiver does: match it and read its fields.
                    let mut acc = 0u64;
                    for m in it {
                        acc = acc.wrapping_add(consume(&m.expect("valid")));
                    }
                    black_box((ch, acc))
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| {
                encode_datagram(ChannelId(7), black_box(&msgs), &p, black_box(&mut buf))
                    .expect("encode")
            })
        });
    }
    let chunk = vec![0x5a; 1024];
    g.throughput(Throughput::Bytes(1024));
    g.bench_function("sha1_1k", |b| {
        b.iter(|| HashAlgorithm::Sha1.digest(black_box(&chunk)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = bench_codec
}

/// Runs the benchmarks, then prints the ratios measured in this run.
fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    ppspp_benches::print_ratio(
        "decode(DATA 1 KiB datagram) / SHA-1(1 KiB)",
        "codec/decode_data1k",
        "codec/sha1_1k",
    );
    ppspp_benches::print_ratio(
        "decode(INTEGRITY x3 + DATA 1 KiB datagram) / SHA-1(1 KiB)",
        "codec/decode_integrity3_data1k",
        "codec/sha1_1k",
    );
    ppspp_benches::print_ratio(
        "encode(INTEGRITY x3 + DATA 1 KiB datagram) / SHA-1(1 KiB)",
        "codec/encode_integrity3_data1k",
        "codec/sha1_1k",
    );
}
