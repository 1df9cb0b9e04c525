//! Protocol tests: N endpoints in memory with virtual time (the shared kit's [`Mesh`], the
//! quinn-proto `Pair` pattern generalised to a mesh), latency, loss, duplication and
//! reordering.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::Cell;
use core::cmp::Reverse;
use core::net::SocketAddr;

use crate::wire::Message;
use bytes::Bytes;

use crate::Endpoint;
use crate::config::SwarmConfig;
use crate::congestion::FixedWindowConfig;
use crate::event::{CloseReason, Event, SwarmHandle};
use crate::hash::HashAlgorithm;
use crate::merkle::MerkleTree;
use crate::store::{ChunkStore, StoreError};
use crate::testing::{
    CheckingStore, Datagram, Filter, Mesh, Verdict, addr, content, leecher, leecher_with, seeder,
    seeder_with,
};
use crate::time::{Duration, Instant};

/// A filter for node `node`'s datagrams: each one that ends in a DATA message holding a full
/// chunk of `chunk_size` bytes is held back and packed with the next one to the same peer, so
/// one datagram carries two DATA messages (RFC 7574 §8.6 allows it for fixed-size chunks;
/// libswift never does it).
struct PackData {
    node: usize,
    chunk_size: u32,
}

impl Filter for PackData {
    fn filter(&mut self, _now: Instant, _d: &mut Datagram) -> Verdict {
        Verdict::Pass
    }

    fn burst(&mut self, _now: Instant, from: usize, burst: &mut Vec<Datagram>) {
        if from != self.node {
            return;
        }
        let mut out = Vec::new();
        // A datagram held back to be packed with the next one.
        let mut held: Option<Datagram> = None;
        for d in burst.drain(..) {
            match held.take() {
                // R-8.6-c: append this datagram's messages to the held one.
                Some(mut h) if h.dst == d.dst => {
                    h.bytes.extend_from_slice(&d.bytes[4..]);
                    out.push(h);
                }
                earlier => {
                    out.extend(earlier);
                    if ends_with_full_data(&d.bytes, self.chunk_size) {
                        held = Some(d);
                    } else {
                        out.push(d);
                    }
                }
            }
        }
        out.extend(held);
        *burst = out;
    }
}

/// A filter that gives node `node`'s handshakes the Supported Messages option `s` (RFC 7574
/// §7.10), as a peer supporting only a subset of the messages would send.
fn declare_supported(
    node: usize,
    s: crate::wire::SupportedMessages,
) -> impl FnMut(&mut Datagram) -> Verdict {
    move |d| {
        if d.from == node {
            d.bytes = with_supported_messages(&d.bytes, s);
        }
        Verdict::Pass
    }
}

/// A filter that corrupts node `node`'s outgoing DATA payloads and/or INTEGRITY hashes (a
/// malicious peer).
fn corrupting(node: usize, data: bool, hashes: bool) -> impl FnMut(&mut Datagram) -> Verdict {
    move |d| {
        if d.from == node {
            corrupt(&mut d.bytes, data, hashes);
        }
        Verdict::Pass
    }
}

/// A filter that loses the next `left` datagrams from node `node` for which `which` holds;
/// `left` counts down.
fn lose(
    node: usize,
    left: Rc<Cell<u32>>,
    which: impl Fn(&Datagram) -> bool,
) -> impl FnMut(&mut Datagram) -> Verdict {
    move |d| {
        if d.from == node && left.get() > 0 && which(d) {
            left.set(left.get() - 1);
            return Verdict::Drop;
        }
        Verdict::Pass
    }
}

/// Whether the last message of datagram `d` (32-bit chunk ranges, SHA-1) is a DATA message
/// holding a full chunk of `chunk_size` bytes.
fn ends_with_full_data(d: &[u8], chunk_size: u32) -> bool {
    let params = crate::wire::WireParams::default();
    crate::wire::decode_datagram(Bytes::copy_from_slice(d), &params).is_ok_and(|(_, it)| {
        matches!(it.flatten().last(),
            Some(Message::Data(x)) if x.payload.len() == chunk_size as usize)
    })
}

/// Datagram `d` (32-bit chunk ranges, SHA-1) with `s` as the Supported Messages option of its
/// HANDSHAKE, if it opens or answers one.
fn with_supported_messages(d: &[u8], s: crate::wire::SupportedMessages) -> Vec<u8> {
    use crate::wire::{Message, WireParams, decode_datagram, encode_datagram};
    let params = WireParams::default();
    let Ok((chan, it)) = decode_datagram(Bytes::copy_from_slice(d), &params) else {
        return d.to_vec();
    };
    let mut msgs: Vec<Message> = it.flatten().collect();
    match msgs.first_mut() {
        Some(Message::Handshake(h)) if !h.is_closing() => h.options.supported_messages = Some(s),
        _ => return d.to_vec(),
    }
    let mut out = vec![0u8; d.len() + 64];
    let n = encode_datagram(chan, &msgs, &params, &mut out).expect("re-encodes");
    out.truncate(n);
    out
}

/// Flips a byte of DATA payloads and/or INTEGRITY hashes in a datagram (32-bit chunk ranges,
/// SHA-1), walking the messages the way the decoder does.
fn corrupt(d: &mut [u8], data: bool, hashes: bool) {
    let params = crate::wire::WireParams::default();
    let Ok((_, iter)) = crate::wire::decode_datagram(Bytes::copy_from_slice(d), &params) else {
        return;
    };
    let mut pos = 4;
    for m in iter {
        let Ok(m) = m else { break };
        let len = m.encoded_len(&params);
        match m {
            Message::Data(_) if data => {
                let last = pos + len - 1;
                d[last] ^= 0x5a;
            }
            Message::Integrity(_) if hashes => {
                d[pos + 9] ^= 0x01;
            }
            _ => {}
        }
        pos += len;
    }
}

fn transfer(
    len: usize,
    chunk: u32,
    alg: HashAlgorithm,
    loss: f64,
    seed: u64,
) -> (Mesh, CheckingStore, Vec<u8>) {
    let mut mesh = Mesh::new(seed);
    mesh.link.loss = loss;
    transfer_on(mesh, len, chunk, alg, seed)
}

/// A seeder (node 0) of `len` bytes of content and a leecher (node 1) that has just asked it
/// to connect, on `mesh`: returns the leecher's swarm, its store and the content.
fn seeder_and_leecher(
    mesh: &mut Mesh,
    len: usize,
    chunk: u32,
    alg: HashAlgorithm,
    seed: u64,
) -> (SwarmHandle, CheckingStore, Vec<u8>) {
    let data = content(len, seed);
    let s = mesh.add_node();
    let l = mesh.add_node();
    let (_, tree) = seeder(mesh, s, &data, chunk, alg);
    let (lh, rec) = leecher(mesh, l, &tree, &data);
    let sa = mesh.nodes[s].addr;
    mesh.nodes[l].ep.connect(mesh.now, lh, sa).unwrap();
    (lh, rec, data)
}

/// One seeder and one leecher on `mesh` (as its caller set it up); the leecher must complete.
fn transfer_on(
    mut mesh: Mesh,
    len: usize,
    chunk: u32,
    alg: HashAlgorithm,
    seed: u64,
) -> (Mesh, CheckingStore, Vec<u8>) {
    let (lh, rec, data) = seeder_and_leecher(&mut mesh, len, chunk, alg, seed);
    let l = 1;
    let ok = mesh.run_until(Duration::from_secs(600), |m| m.complete(l, lh));
    assert!(
        ok,
        "transfer of {len} bytes did not complete; stats {:?}",
        mesh.nodes[l].ep.stats()
    );
    (mesh, rec, data)
}

#[test]
fn one_byte() {
    let (_, rec, data) = transfer(1, 1024, HashAlgorithm::Sha1, 0.0, 1);
    assert_eq!(rec.assembled(), data);
}

#[test]
fn one_chunk() {
    let (_, rec, data) = transfer(1024, 1024, HashAlgorithm::Sha256, 0.0, 2);
    assert_eq!(rec.assembled(), data);
}

/// R-8.6-c: a sender may put several DATA messages in one datagram when chunks are fixed-size
/// (libswift never does). A seeder whose datagrams are packed in pairs — a full chunk's DATA
/// followed by the next datagram's INTEGRITY and DATA — is understood: every chunk verifies,
/// nothing counts as an integrity failure, and the content is correct.
#[test]
fn several_data_messages_in_one_datagram_are_each_verified() {
    let mut mesh = Mesh::new(31);
    let (chunk, len) = (256u32, 40 * 256 + 100);
    let (lh, rec, data) = seeder_and_leecher(&mut mesh, len, chunk, HashAlgorithm::Sha1, 31);
    mesh.add_filter(PackData {
        node: 0,
        chunk_size: chunk,
    });
    let ok = mesh.run_until(Duration::from_secs(60), |m| m.complete(1, lh));
    let (sent, got) = (mesh.nodes[0].ep.stats(), mesh.nodes[1].ep.stats());
    assert!(ok, "incomplete: {got:?}");
    assert_eq!(got.integrity_failures, 0);
    assert_eq!(got.drops.malformed, 0);
    assert_only_real_chunks(&rec, &data, chunk as usize);
    // The datagrams really were packed: fewer arrived than the seeder wrote.
    assert!(
        got.datagrams_in + 10 <= sent.datagrams_out,
        "{} datagrams in, {} out",
        got.datagrams_in,
        sent.datagrams_out
    );
}

/// R-7.10-a: a peer that supports only a subset of the messages says so in its handshake,
/// and gets none of the others. A seeder declaring every message but the PEX ones (RFC
/// 7574 §7.10's example without ACK, which a seeder over UDP needs) gets no PEX_REQ from the
/// leecher, which otherwise asks every peer it connects to; the transfer is unaffected. A
/// seeder declaring no ACK gets none, though it is sent DATA.
#[test]
fn messages_a_peer_does_not_support_are_not_sent_to_it() {
    use crate::wire::{MessageType, SupportedMessages};
    let pex = [
        MessageType::PexReq,
        MessageType::PexResV4,
        MessageType::PexResV6,
        MessageType::PexResCert,
    ];
    let all_but = |skip: &[MessageType]| {
        SupportedMessages::from_types(
            (0..=13u8)
                .filter_map(MessageType::from_code)
                .filter(|t| !skip.contains(t)),
        )
    };
    let leecher_sent = |declare: Option<SupportedMessages>, t: MessageType| {
        let mut mesh = Mesh::new(5);
        let (lh, _rec, _) = seeder_and_leecher(&mut mesh, 20 * 1024, 1024, HashAlgorithm::Sha1, 5);
        if let Some(declare) = declare {
            mesh.add_filter(declare_supported(0, declare));
        }
        let done = mesh.run_until(Duration::from_secs(30), |m| m.complete(1, lh));
        let st = mesh.nodes[1].ep.stats();
        (
            done,
            st.messages_out.get(t),
            st.messages_in.get(MessageType::Data),
        )
    };
    // As things are, the leecher asks its seeder for peers.
    let (done, pex_reqs, _) = leecher_sent(None, MessageType::PexReq);
    assert!(done && pex_reqs >= 1, "{done} {pex_reqs}");
    let (done, pex_reqs, _) = leecher_sent(Some(all_but(&pex)), MessageType::PexReq);
    assert!(done, "the transfer completes without PEX");
    assert_eq!(pex_reqs, 0);
    let (_, acks, data) = leecher_sent(Some(all_but(&[MessageType::Ack])), MessageType::Ack);
    assert!(data > 0);
    assert_eq!(acks, 0);
    // With ACK accepted, DATA is acknowledged.
    let (_, acks, _) = leecher_sent(None, MessageType::Ack);
    assert!(acks > 0);
}

/// R-8.1-a: datagrams to IPv6 peers fit a 1500-byte packet with IPv6's longer header (1452
/// bytes of payload): a transfer whose first datagrams carry many hashes, over a path that
/// drops anything longer, loses nothing and needs no path-MTU fallback.
#[test]
fn datagrams_to_ipv6_peers_fit_the_ipv6_mtu() {
    let mut mesh = Mesh::new(44);
    mesh.link.mtu = 1452;
    // 1,200-byte chunks with SHA-1: a DATA datagram with 8 INTEGRITY messages is 1,453 bytes.
    let data = content(1024 * 1200, 44);
    let (s, l) = (mesh.add_node(), mesh.add_node());
    for (n, last) in [(s, 1u16), (l, 2)] {
        mesh.nodes[n].addr = SocketAddr::new(
            core::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last).into(),
            6778,
        );
    }
    let (_, tree) = seeder(&mut mesh, s, &data, 1200, HashAlgorithm::Sha1);
    let (lh, rec) = leecher(&mut mesh, l, &tree, &data);
    let sa = mesh.nodes[s].addr;
    mesh.nodes[l].ep.connect(mesh.now, lh, sa).unwrap();
    assert!(mesh.run_until(Duration::from_secs(120), |m| m.complete(l, lh)));
    assert_eq!(mesh.dropped, 0, "datagrams over 1452 bytes were sent");
    assert_eq!(mesh.nodes[s].ep.stats().pmtu_fallbacks, 0);
    assert_only_real_chunks(&rec, &data, 1200);
}

#[test]
fn thousand_chunks() {
    let (mesh, rec, data) = transfer(1000 * 1024 - 100, 1024, HashAlgorithm::Sha1, 0.0, 3);
    assert_eq!(rec.assembled(), data);
    let events = &mesh.nodes[1].events;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::SwarmComplete { .. }))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::SizeKnown { chunks: 1000, .. }))
    );
    assert_eq!(rec.writes(), 1000, "each chunk written once");
}

/// A path that drops every datagram bigger than a DATA alone (channel, type, 32-bit chunk
/// range, timestamp, 1 KiB) swallows the first DATA datagrams, which carry hashes too. Their
/// retransmissions go with the hashes ahead in datagrams of their own, and after three big
/// datagrams lost with small ones getting through, the channel caps its datagrams: the
/// transfer takes 3.3 s longer than over a clean path (7.3 s longer when the fallback waited
/// for three timeouts in a row; 30 s with small retransmissions but no cap).
#[test]
fn path_mtu_black_hole_retransmits_hashes_ahead() {
    let size = 300 * 1024 + 77;
    let mut mesh = Mesh::new(21);
    mesh.link.mtu = 4 + 1 + 8 + 8 + 1024;
    let (mesh, rec, data) = transfer_on(mesh, size, 1024, HashAlgorithm::Sha1, 21);
    assert_eq!(rec.assembled(), data);
    assert!(mesh.dropped > 0, "the MTU never bit");
    // Node 0 is the seeder.
    assert_eq!(mesh.nodes[0].ep.stats().pmtu_fallbacks, 1);
    let clean = transfer_on(Mesh::new(21), size, 1024, HashAlgorithm::Sha1, 21).0;
    assert!(
        mesh.now.saturating_duration_since(clean.now) < Duration::from_secs(4),
        "{:?} vs {:?} over a clean path",
        mesh.now,
        clean.now
    );
}

#[test]
fn ten_percent_loss_with_reordering() {
    let mut mesh = Mesh::new(4);
    mesh.link.loss = 0.10;
    mesh.link.jitter = Duration::from_millis(8);
    mesh.link.duplicate = 0.02;
    let data = content(300 * 1024, 4);
    let s = mesh.add_node();
    let l = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, s, &data, 1024, HashAlgorithm::Sha1);
    let (lh, rec) = leecher(&mut mesh, l, &tree, &data);
    let a = mesh.nodes[s].addr;
    mesh.nodes[l].ep.connect(mesh.now, lh, a).unwrap();
    let ok = mesh.run_until(Duration::from_secs(600), |m| m.complete(l, lh));
    let sw = mesh.nodes[l].ep.swarm(lh).unwrap();
    assert!(
        ok,
        "have {:?} of {:?}; leecher events {:?}",
        sw.verified().count_in(0..1000),
        sw.chunk_count(),
        &mesh.nodes[l].events
    );
    assert_eq!(rec.assembled(), data);
    assert!(mesh.nodes[s].ep.stats().data_retransmissions > 0);
}

#[test]
fn fixed_window_controller_is_pluggable() {
    let mut mesh = Mesh::new(5);
    let data = content(50 * 1024, 5);
    let mut cfg = mesh.config();
    cfg.congestion(Arc::new(*FixedWindowConfig::new(8 * 1500).window(8 * 1500)));
    let s = mesh.add(cfg);
    let l = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, s, &data, 1024, HashAlgorithm::Sha1);
    let (lh, rec) = leecher(&mut mesh, l, &tree, &data);
    let a = mesh.nodes[s].addr;
    mesh.nodes[l].ep.connect(mesh.now, lh, a).unwrap();
    assert!(mesh.run_until(Duration::from_secs(60), |m| m.complete(l, lh)));
    assert_eq!(rec.assembled(), data);
}

#[test]
fn unknown_swarm_gets_silence() {
    let mut mesh = Mesh::new(6);
    let data = content(4096, 6);
    let s = mesh.add_node();
    let l = mesh.add_node();
    seeder(&mut mesh, s, &data, 1024, HashAlgorithm::Sha1);
    let other = MerkleTree::build(HashAlgorithm::Sha1, 1024, b"something else").unwrap();
    let (lh, _) = leecher(&mut mesh, l, &other, b"something else");
    let a = mesh.nodes[s].addr;
    mesh.nodes[l].ep.connect(mesh.now, lh, a).unwrap();
    mesh.run_until(Duration::from_secs(120), |_| false);
    assert_eq!(
        mesh.nodes[s].ep.stats().datagrams_out,
        0,
        "R-3.1.1-h: no reply at all"
    );
    assert!(mesh.nodes[s].ep.stats().drops.handshake_rejected > 0);
    assert!(mesh.nodes[l].events.iter().any(|e| matches!(
        e,
        Event::PeerClosed {
            reason: CloseReason::HandshakeTimeout,
            ..
        }
    )));
}

/// How long (virtual) a transfer takes, for regression tracking: printed, never asserted.
fn timed_transfer(len: usize, loss: f64, jitter_ms: u64, seed: u64) -> Duration {
    let mut mesh = Mesh::new(seed);
    mesh.link.loss = loss;
    mesh.link.jitter = Duration::from_millis(jitter_ms);
    let data = content(len, seed);
    let s = mesh.add_node();
    let l = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, s, &data, 1024, HashAlgorithm::Sha1);
    let (lh, rec) = leecher(&mut mesh, l, &tree, &data);
    let a = mesh.nodes[s].addr;
    let start = mesh.now;
    mesh.nodes[l].ep.connect(mesh.now, lh, a).unwrap();
    assert!(mesh.run_until(Duration::from_secs(3600), |m| m.complete(l, lh)));
    assert_eq!(rec.assembled(), data);
    mesh.now.saturating_duration_since(start)
}

#[test]
fn transfers_under_loss_and_jitter_complete() {
    for (len, loss, jitter) in [
        (300 * 1024, 0.0, 0),
        (300 * 1024, 0.1, 8),
        (2000 * 1024, 0.0, 0),
        (2000 * 1024, 0.02, 2),
    ] {
        let t = timed_transfer(len, loss, jitter, 9);
        std::eprintln!(
            "virtual transfer time: {len} bytes, loss {loss}, jitter {jitter} ms: {t:?}"
        );
    }
}

/// Checks that every chunk the recorder holds is the real content (nothing unverified stored).
fn assert_only_real_chunks(rec: &CheckingStore, data: &[u8], chunk: usize) {
    assert_eq!(
        rec.refused(),
        0,
        "chunks differing from the content were written"
    );
    for (i, c) in rec.held().into_iter().map(|i| (i, rec.chunk(i).unwrap())) {
        let start = i as usize * chunk;
        assert_eq!(
            &data[start..start + c.len()],
            &c[..],
            "chunk {i} stored corrupted"
        );
    }
}

#[test]
fn seeder_and_twenty_leechers_all_complete_and_share() {
    let mut mesh = Mesh::new(20);
    mesh.link.latency = Duration::from_millis(15);
    let data = content(200 * 1024, 20);
    let s = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, s, &data, 1024, HashAlgorithm::Sha1);
    let mut leechers = Vec::new();
    for _ in 0..20 {
        let n = mesh.add_node();
        let (h, rec) = leecher(&mut mesh, n, &tree, &data);
        leechers.push((n, h, rec));
    }
    // Everyone knows the seeder and three random other leechers (a tracker's answer).
    for k in 0..leechers.len() {
        let (n, h, _) = &leechers[k];
        let (n, h) = (*n, *h);
        let sa = mesh.nodes[s].addr;
        mesh.nodes[n].ep.connect(mesh.now, h, sa).unwrap();
        for _ in 0..3 {
            let o = leechers[mesh.rng.gen_range(0..leechers.len() as u64) as usize].0;
            let oa = mesh.nodes[o].addr;
            if o != n {
                let _ = mesh.nodes[n].ep.connect(mesh.now, h, oa);
            }
        }
    }
    let all = |m: &Mesh| leechers.iter().all(|(n, h, _)| m.complete(*n, *h));
    assert!(mesh.run_until(Duration::from_secs(600), all));
    let mut from_leechers = 0;
    for (n, _, rec) in &leechers {
        assert_eq!(rec.assembled(), data);
        for ch in mesh.nodes[*n].ep.channels.iter().flatten() {
            from_leechers += ch.stats.content_out;
        }
    }
    let from_seeder: u64 = mesh.nodes[s]
        .ep
        .channels
        .iter()
        .flatten()
        .map(|c| c.stats.content_out)
        .sum();
    std::eprintln!("content served: seeder {from_seeder} bytes, leechers {from_leechers} bytes");
    assert!(from_leechers > 0, "leechers upload to each other");
}

#[test]
fn seeder_dies_mid_transfer_and_the_second_takes_over() {
    let mut mesh = Mesh::new(21);
    let data = content(400 * 1024, 21);
    let a = mesh.add_node();
    let b = mesh.add_node();
    let l = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, a, &data, 1024, HashAlgorithm::Sha1);
    seeder(&mut mesh, b, &data, 1024, HashAlgorithm::Sha1);
    let (lh, rec) = leecher(&mut mesh, l, &tree, &data);
    let aa = mesh.nodes[a].addr;
    mesh.nodes[l].ep.connect(mesh.now, lh, aa).unwrap();
    // Let part of the content arrive from A alone, then kill A and point the leecher at B.
    assert!(mesh.run_until(Duration::from_secs(60), |m| {
        m.nodes[l].ep.swarm(lh).unwrap().verified().count_in(0..400) >= 100
    }));
    mesh.nodes[a].alive = false;
    let ba = mesh.nodes[b].addr;
    mesh.nodes[l].ep.connect(mesh.now, lh, ba).unwrap();
    assert!(mesh.run_until(Duration::from_secs(600), |m| m.complete(l, lh)));
    assert_eq!(rec.assembled(), data);
    let served_by_b: u64 = mesh.nodes[b]
        .ep
        .channels
        .iter()
        .flatten()
        .map(|c| c.stats.content_out)
        .sum();
    assert!(served_by_b > 0);
    // A is eventually declared dead (R-3.12-b).
    mesh.run_until(Duration::from_secs(400), |m| {
        m.nodes[l].events.iter().any(|e| {
            matches!(
                e,
                Event::PeerClosed {
                    reason: CloseReason::Dead,
                    ..
                }
            )
        })
    });
    assert!(mesh.nodes[l].events.iter().any(|e| matches!(
        e,
        Event::PeerClosed {
            reason: CloseReason::Dead,
            ..
        }
    )));
}

fn bad_peer_case(corrupt_data: bool, corrupt_hashes: bool, seed: u64) {
    let mut mesh = Mesh::new(seed);
    let data = content(100 * 1024, seed);
    let bad = mesh.add_node();
    let good = mesh.add_node();
    let l = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, bad, &data, 1024, HashAlgorithm::Sha1);
    seeder(&mut mesh, good, &data, 1024, HashAlgorithm::Sha1);
    mesh.add_filter(corrupting(bad, corrupt_data, corrupt_hashes));
    let (lh, rec) = leecher(&mut mesh, l, &tree, &data);
    let (ba, ga) = (mesh.nodes[bad].addr, mesh.nodes[good].addr);
    mesh.nodes[l].ep.connect(mesh.now, lh, ba).unwrap();
    mesh.nodes[l].ep.connect(mesh.now, lh, ga).unwrap();
    assert!(mesh.run_until(Duration::from_secs(600), |m| m.complete(l, lh)));
    assert_eq!(rec.assembled(), data);
    assert_only_real_chunks(&rec, &data, 1024);
    let ev = &mesh.nodes[l].events;
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::IntegrityFailure { remote, .. } if *remote == ba)),
        "{ev:?}"
    );
    assert!(ev.iter().any(|e| matches!(e, Event::PeerClosed { remote, reason: CloseReason::IntegrityFailure, .. } if *remote == ba)));
    assert!(mesh.nodes[l].ep.stats().integrity_failures > 0);
}

#[test]
fn peer_sending_corrupt_chunks_is_detected_and_content_stays_correct() {
    bad_peer_case(true, false, 22);
}

#[test]
fn peer_sending_wrong_hashes_is_detected_and_content_stays_correct() {
    bad_peer_case(false, true, 23);
}

/// Sends one raw datagram to a fresh seeder and returns how many datagrams it answered with.
fn answer_count(hex: &str, check: impl FnOnce(&crate::EndpointStats)) -> usize {
    let mut mesh = Mesh::new(24);
    let data = content(4096, 24);
    let s = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, s, &data, 1024, HashAlgorithm::Sha1);
    let hex = hex.replace("{id}", &alloc::format!("{}", tree.root_hash()));
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let from = addr(99);
    let n = mesh.inject(s, from, Bytes::from(bytes)).len();
    check(&mesh.nodes[s].ep.stats());
    n
}

#[test]
fn every_handshake_rejection_is_silent() {
    // A valid opening handshake is answered (the baseline for the cases below).
    let ok = "00000000 00 00000001 0001 0101 020014{id} 0301 0400 0602 ff";
    assert_eq!(answer_count(&ok.replace(' ', ""), |_| {}), 1);
    let rejected: &[(&str, &str)] = &[
        (
            "unknown swarm",
            "00000000 00 00000001 0001 0101 020014 c89800bfc82ed01ed6e3bfd5408c51274491f7d4 0301 0400 0602 ff",
        ),
        (
            "no swarm ID",
            "00000000 00 00000001 0001 0101 0301 0400 0602 ff",
        ),
        (
            "version too new",
            "00000000 00 00000001 0002 0102 020014{id} 0301 0400 0602 ff",
        ),
        (
            "no version",
            "00000000 00 00000001 020014{id} 0301 0400 0602 ff",
        ),
        (
            "wrong hash function",
            "00000000 00 00000001 0001 0101 020014{id} 0301 0402 0602 ff",
        ),
        (
            "default hash (SHA-256) differs",
            "00000000 00 00000001 0001 0101 020014{id} 0301 0602 ff",
        ),
        (
            "wrong addressing",
            "00000000 00 00000001 0001 0101 020014{id} 0301 0400 0603 ff",
        ),
        (
            "wrong chunk size",
            "00000000 00 00000001 0001 0101 020014{id} 0301 0400 0602 0900000800 ff",
        ),
        (
            "no integrity",
            "00000000 00 00000001 0001 0101 020014{id} 0300 0400 0602 ff",
        ),
        ("closing handshake to channel 0", "00000000 00 00000000 ff"),
        ("not a handshake first", "00000000 0a"),
        ("malformed options", "00000000 00 00000001 0001 0001 ff"),
        ("unknown channel", "12345678 0a"),
        ("short datagram", "000000"),
    ];
    for (what, hex) in rejected {
        let n = answer_count(&hex.replace(' ', ""), |s| {
            let d = s.drops;
            assert!(
                d.handshake_rejected + d.malformed + d.not_handshake + d.unknown_channel > 0,
                "{what}: not counted"
            );
        });
        assert_eq!(n, 0, "{what}: R-3.1.1-h wants silence");
    }
}

#[test]
fn ten_thousand_spoofed_handshakes_leave_memory_bounded() {
    let mut mesh = Mesh::new(25);
    let data = content(64 * 1024, 25);
    let s = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, s, &data, 1024, HashAlgorithm::Sha1);
    let mut hs = Vec::new();
    hs.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1, 2, 0, 20]);
    hs.extend_from_slice(tree.root_hash().as_bytes());
    hs.extend_from_slice(&[3, 1, 4, 0, 6, 2, 0xff]);
    let mut out_bytes = 0;
    for i in 0..10_000u32 {
        let from = SocketAddr::new(
            core::net::Ipv4Addr::from(0x0a00_0000 + i).into(),
            1000 + (i % 50_000) as u16,
        );
        hs[5..9].copy_from_slice(&(i + 1).to_be_bytes());
        for t in mesh.inject(s, from, Bytes::copy_from_slice(&hs)) {
            // Anti-amplification: never more than 3× what the spoofed source sent.
            assert!(
                t.len() <= 3 * hs.len(),
                "reply of {} bytes to {} bytes",
                t.len(),
                hs.len()
            );
            out_bytes += t.len();
        }
    }
    let stats = mesh.nodes[s].ep.stats();
    assert!(stats.channels <= 1024, "{} channels held", stats.channels);
    assert!(stats.drops.evicted_half_open >= 10_000 - 1024);
    assert!(out_bytes <= 10_000 * 3 * hs.len());
    // Half-open channels expire when nobody confirms them.
    mesh.now += Duration::from_secs(30);
    mesh.nodes[s].ep.handle_timeout(mesh.now);
    assert_eq!(mesh.nodes[s].ep.stats().channels, 0);
}

/// A 1 GiB content (2^20 chunks of 1 KiB) whose chunks are all zero, so its tree is built from
/// leaf hashes without materialising the content.
#[derive(Debug)]
struct ZeroStore;

impl ChunkStore for ZeroStore {
    fn read_chunk(&mut self, _index: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        buf[..1024].fill(0);
        Ok(1024)
    }

    fn write_chunk(&mut self, _index: u64, data: &[u8]) -> Result<(), StoreError> {
        assert!(
            data.iter().all(|&b| b == 0),
            "only verified (zero) content is written"
        );
        Ok(())
    }
}

#[test]
fn gibibyte_tree_chunks_anywhere_verify() {
    let chunks = 1u64 << 20;
    let mut b = crate::merkle::MerkleBuilder::with_tree(HashAlgorithm::Sha1, 1024).unwrap();
    let leaf = HashAlgorithm::Sha1.digest(&[0u8; 1024]);
    for _ in 0..chunks {
        b.push_leaf_hash(&leaf, 1024).unwrap();
    }
    let tree = Arc::new(b.finish_tree().unwrap());
    let mut mesh = Mesh::new(26);
    let s = mesh.add_node();
    let l = mesh.add_node();
    mesh.nodes[s]
        .ep
        .add_swarm(
            mesh.now,
            SwarmConfig::seed(tree.clone()),
            Box::new(ZeroStore),
        )
        .unwrap();
    let mut cfg = SwarmConfig::leech(tree.root_hash(), HashAlgorithm::Sha1, 1024);
    cfg.picker(crate::config::PickerMode::InOrder { lookahead: 32 });
    let lh = mesh.nodes[l]
        .ep
        .add_swarm(mesh.now, cfg, Box::new(ZeroStore))
        .unwrap();
    let sa = mesh.nodes[s].addr;
    mesh.nodes[l].ep.connect(mesh.now, lh, sa).unwrap();
    // Stream from three places: the start, the middle and the end of the content.
    for start in [0, chunks / 2, chunks - 32] {
        mesh.nodes[l].ep.seek(mesh.now, lh, start);
        let ok = mesh.run_until(Duration::from_secs(120), |m| {
            m.nodes[l]
                .ep
                .swarm(lh)
                .unwrap()
                .verified()
                .count_in(start..start + 32)
                == 32
        });
        assert!(ok, "chunks from {start} did not arrive");
    }
    let sw = mesh.nodes[l].ep.swarm(lh).unwrap();
    assert_eq!(sw.chunk_count(), Some(chunks));
    assert_eq!(sw.content_len(), Some(chunks * 1024));
}

#[test]
fn interrupted_download_resumes_from_verified_state() {
    let mut mesh = Mesh::new(27);
    let data = content(300 * 1024 - 7, 27);
    let s = mesh.add_node();
    let l = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, s, &data, 1024, HashAlgorithm::Sha1);
    let (lh, rec) = leecher(&mut mesh, l, &tree, &data);
    let sa = mesh.nodes[s].addr;
    mesh.nodes[l].ep.connect(mesh.now, lh, sa).unwrap();
    assert!(mesh.run_until(Duration::from_secs(60), |m| {
        m.nodes[l].ep.swarm(lh).unwrap().verified().count() >= 100
    }));
    // "Interrupt": save what a driver persists, then start a new endpoint from it.
    let sw = mesh.nodes[l].ep.swarm(lh).unwrap();
    let verified: Vec<core::ops::Range<u64>> = sw.verified().ranges().collect();
    let held = sw.verified().count();
    let mut hashes = sw.verified_hashes();
    let writes_before = rec.writes();
    let cfg_for = |hashes: Vec<(crate::bin::Bin, crate::hash::HashValue)>| {
        SwarmConfig::new(
            tree.root_hash(),
            HashAlgorithm::Sha1,
            1024,
            crate::config::SwarmContent::Partial {
                size: Some(data.len() as u64),
                verified: verified.clone(),
                hashes,
            },
        )
    };
    // A tampered state resumes nothing it cannot prove: flip one saved hash.
    let mut bad = hashes.clone();
    let first = crate::bin::Bin::leaf(verified[0].start).unwrap();
    let i = bad.iter().position(|(b, _)| *b == first).unwrap();
    bad[i].1 = HashAlgorithm::Sha1.digest(b"tampered");
    let mut probe = Endpoint::new(mesh.config(), mesh.now);
    let ph = probe
        .add_swarm(mesh.now, cfg_for(bad), Box::new(rec.clone()))
        .unwrap();
    assert!(probe.swarm(ph).unwrap().verified().count() < held);
    // The real state resumes every held chunk.
    mesh.nodes[l].ep = Endpoint::new(mesh.config(), mesh.now);
    hashes.sort_unstable_by_key(|(b, _)| Reverse(b.layer()));
    let lh = mesh.nodes[l]
        .ep
        .add_swarm(mesh.now, cfg_for(hashes), Box::new(rec.clone()))
        .unwrap();
    assert_eq!(mesh.nodes[l].ep.swarm(lh).unwrap().verified().count(), held);
    mesh.nodes[l].ep.connect(mesh.now, lh, sa).unwrap();
    assert!(mesh.run_until(Duration::from_secs(60), |m| m.complete(l, lh)));
    assert_eq!(rec.assembled(), data);
    let writes = rec.writes() - writes_before;
    assert_eq!(
        writes,
        300 - held,
        "only the missing chunks are fetched again"
    );
}

/// A seeder and `n` leechers, each leecher connected to the seeder only.
fn star(
    seed: u64,
    n: usize,
    len: usize,
) -> (Mesh, usize, Vec<(usize, SwarmHandle)>, Arc<MerkleTree>) {
    let mut mesh = Mesh::new(seed);
    let data = content(len, seed);
    let s = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, s, &data, 1024, HashAlgorithm::Sha1);
    let mut ls = Vec::new();
    for _ in 0..n {
        let l = mesh.add_node();
        let (h, _) = leecher(&mut mesh, l, &tree, &data);
        let sa = mesh.nodes[s].addr;
        mesh.nodes[l].ep.connect(mesh.now, h, sa).unwrap();
        ls.push((l, h));
    }
    (mesh, s, ls, tree)
}

#[test]
fn closing_handshake_closes_the_other_side() {
    // R-3.1.1-p, R-3.1.1-q, R-3.1.1-w, R-8.4-d.
    let (mut mesh, s, ls, _) = star(30, 1, 8 * 1024);
    let (l, lh) = ls[0];
    assert!(mesh.run_until(Duration::from_secs(10), |m| m.complete(l, lh)));
    let peer = mesh.nodes[l].ep.swarm(lh).unwrap().peers().next().unwrap();
    mesh.nodes[l].ep.close(mesh.now, peer);
    mesh.run_until(Duration::from_secs(1), |_| false);
    assert!(mesh.nodes[s].events.iter().any(|e| matches!(
        e,
        Event::PeerClosed {
            reason: CloseReason::RemoteClosed,
            ..
        }
    )));
    assert_eq!(mesh.nodes[s].ep.stats().channels, 0);
}

#[test]
fn keepalives_hold_an_idle_channel_open_and_silence_kills_it() {
    // R-3.12-a/b, R-8.14-a: idle for 10 minutes, the channel survives on keep-alives.
    let (mut mesh, s, ls, _) = star(31, 1, 4 * 1024);
    let (l, lh) = ls[0];
    assert!(mesh.run_until(Duration::from_secs(10), |m| m.complete(l, lh)));
    mesh.run_until(Duration::from_secs(600), |_| false);
    assert!(mesh.nodes[l].ep.stats().keepalives_out >= 10);
    assert_eq!(mesh.nodes[l].ep.stats().channels, 1);
    assert_eq!(mesh.nodes[s].ep.stats().channels, 1);
    // The seeder vanishes: after 3 minutes with 3+ datagrams unanswered, it is dead.
    mesh.nodes[s].alive = false;
    mesh.run_until(Duration::from_secs(400), |_| false);
    assert!(mesh.nodes[l].events.iter().any(|e| matches!(
        e,
        Event::PeerClosed {
            reason: CloseReason::Dead,
            ..
        }
    )));
}

/// A mesh with a seeder of `len` random bytes that serves one peer at a time: (mesh, seeder,
/// tree, content).
fn one_slot_seeder(seed: u64, len: usize) -> (Mesh, usize, Arc<MerkleTree>, Vec<u8>) {
    let mut mesh = Mesh::new(seed);
    let data = content(len, seed);
    let s = mesh.add_node();
    let (_, tree) = seeder_with(&mut mesh, s, &data, 1024, HashAlgorithm::Sha1, |c| {
        c.upload_slots(1);
    });
    (mesh, s, tree, data)
}

#[test]
fn upload_slots_choke_and_unchoke_peers() {
    // R-3.9-a/b/c: one slot; the second requester is choked, then served when the first is done.
    let (mut mesh, s, tree, data) = one_slot_seeder(32, 64 * 1024);
    let mut ls = Vec::new();
    for _ in 0..2 {
        let l = mesh.add_node();
        let (h, _) = leecher_with(&mut mesh, l, &tree, &data, |c| {
            c.pex(false);
        });
        let sa = mesh.nodes[s].addr;
        mesh.nodes[l].ep.connect(mesh.now, h, sa).unwrap();
        ls.push((l, h));
    }
    assert!(mesh.run_until(Duration::from_secs(120), |m| {
        ls.iter().all(|&(l, h)| m.complete(l, h))
    }));
    let chokes = mesh.nodes[s]
        .ep
        .stats()
        .messages_out
        .get(crate::wire::MessageType::Choke);
    let unchokes = mesh.nodes[s]
        .ep
        .stats()
        .messages_out
        .get(crate::wire::MessageType::Unchoke);
    assert!(chokes >= 1, "the second peer was choked");
    assert!(unchokes >= 1, "and unchoked later");
}

#[test]
fn pex_introduces_leechers_to_each_other() {
    // R-3.10-b/c: leechers that know only the seeder learn of each other and connect. The
    // seeder serves one peer at a time, so the others must find their content elsewhere.
    let (mut mesh, s, tree, data) = one_slot_seeder(33, 1024 * 1024);
    let mut ls = Vec::new();
    for _ in 0..3 {
        let l = mesh.add_node();
        let (h, _) = leecher(&mut mesh, l, &tree, &data);
        let sa = mesh.nodes[s].addr;
        mesh.nodes[l].ep.connect(mesh.now, h, sa).unwrap();
        ls.push((l, h));
    }
    assert!(mesh.run_until(Duration::from_secs(120), |m| {
        ls.iter().all(|&(l, h)| m.complete(l, h))
    }));
    let discovered = ls
        .iter()
        .filter(|&&(l, _)| {
            mesh.nodes[l]
                .events
                .iter()
                .any(|e| matches!(e, Event::PeerDiscovered { .. }))
        })
        .count();
    assert!(discovered >= 2, "PEX answers reached the leechers");
    // Each address is reported once per leecher, however often PEX repeats it.
    for &(l, _) in &ls {
        let mut seen = alloc::collections::BTreeSet::new();
        for e in &mesh.nodes[l].events {
            if let Event::PeerDiscovered { remote, .. } = e {
                assert!(seen.insert(*remote), "{remote} reported twice");
            }
        }
    }
    let leecher_links = ls
        .iter()
        .map(|&(l, h)| mesh.nodes[l].ep.swarm(h).unwrap().connected_peers())
        .sum::<usize>();
    assert!(
        leecher_links > ls.len(),
        "leechers connected to each other, not only to the seeder"
    );
}

/// A mesh with one seeder of 4 KiB (node `s`) and the bytes of an opening handshake for its
/// swarm (source channel 7; SHA-1, 32-bit chunk ranges, no Chunk Size): (mesh, s, datagram).
fn seeder_and_opening_handshake(seed: u64) -> (Mesh, usize, Vec<u8>) {
    let mut mesh = Mesh::new(seed);
    let data = content(4096, seed);
    let s = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, s, &data, 1024, HashAlgorithm::Sha1);
    let mut hs = alloc::vec![0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 1, 1, 1, 2, 0, 20];
    hs.extend_from_slice(tree.root_hash().as_bytes());
    hs.extend_from_slice(&[3, 1, 4, 0, 6, 2, 0xff]);
    (mesh, s, hs)
}

#[test]
fn duplicate_opening_handshake_gets_the_same_channel() {
    // R-8.2-d: a repeated opening handshake (our reply was lost) does not create a second
    // channel; it is answered again with the same channel ID.
    let (mut mesh, s, hs) = seeder_and_opening_handshake(34);
    let from = addr(77);
    let mut replies = Vec::new();
    for _ in 0..2 {
        replies.extend(mesh.inject(s, from, Bytes::copy_from_slice(&hs)));
    }
    assert_eq!(mesh.nodes[s].ep.stats().channels, 1);
    let chan = |d: &[u8]| d[5..9].to_vec();
    assert_eq!(replies.len(), 2);
    assert_eq!(
        chan(&replies[0]),
        chan(&replies[1]),
        "same chanQ both times"
    );
    assert_eq!(
        &replies[0][..4],
        &[0, 0, 0, 7],
        "R-3.1.1-k: reply goes to chanP"
    );
    // R-3.1.1-h: a repeat passes the same checks as the first: one with a wrong swarm ID or
    // version 0 from the same address and chanP gets silence.
    let mut wrong_swarm = hs.clone();
    wrong_swarm[16] ^= 1;
    let mut version_0 = hs.clone();
    version_0[10] = 0;
    for bad in [wrong_swarm, version_0] {
        let rejected = mesh.nodes[s].ep.stats().drops.handshake_rejected;
        assert!(mesh.inject(s, from, Bytes::from(bad)).is_empty());
        assert_eq!(
            mesh.nodes[s].ep.stats().drops.handshake_rejected,
            rejected + 1
        );
    }
    // R-12.1-a, RFC 7574 §12.1: the channel's datagrams from another address are dropped.
    let mut keepalive = chan(&replies[0]);
    keepalive.truncate(4);
    mesh.nodes[s]
        .ep
        .handle_datagram(mesh.now, addr(78), Bytes::from(keepalive));
    assert_eq!(mesh.nodes[s].ep.stats().drops.wrong_address, 1);
}

/// R-12.1.2-a, R-3.1.1-s: an initiator answers the reply at once, proving its address, even
/// when it has nothing to say: two empty leechers without PEX — a keep-alive goes out, and the
/// responder's channel is proven by it.
#[test]
fn initiator_answers_the_reply_at_once_even_with_nothing_to_say() {
    let mut mesh = Mesh::new(41);
    let data = content(4096, 41);
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 1024, &data).unwrap();
    let (a, b) = (mesh.add_node(), mesh.add_node());
    let mut handles = Vec::new();
    for n in [a, b] {
        let (h, _) = leecher_with(&mut mesh, n, &tree, &data, |c| {
            c.pex(false);
        });
        handles.push(h);
    }
    let bb = mesh.nodes[b].addr;
    mesh.nodes[a].ep.connect(mesh.now, handles[0], bb).unwrap();
    // Handshake, reply, and whatever answers it: three datagrams, well within a second.
    mesh.run_until(Duration::from_millis(100), |_| false);
    assert_eq!(mesh.nodes[a].ep.stats().keepalives_out, 1);
    assert_eq!(mesh.nodes[b].ep.stats().datagrams_in, 2);
    assert_eq!(mesh.nodes[b].ep.stats().drops.amplification_limited, 0);
}

/// R-8.3-a, RFC 7574 §12.1: the channel IDs a responder hands out are unpredictable — no
/// counter shows in them (internally the low 16 bits index a slot).
#[test]
fn channel_ids_on_the_wire_are_unpredictable() {
    let (mut mesh, s, hs) = seeder_and_opening_handshake(35);
    let mut ids = Vec::new();
    for i in 0..64 {
        for buf in mesh.inject(s, addr(100 + i), Bytes::copy_from_slice(&hs)) {
            if buf[4] == 0 && buf.len() >= 9 {
                ids.push(u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]));
            }
        }
    }
    assert_eq!(ids.len(), 64);
    let distinct: alloc::collections::BTreeSet<u32> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), 64);
    assert!(!distinct.contains(&0));
    let sequential = ids
        .windows(2)
        .filter(|w| w[1] & 0xFFFF == (w[0] & 0xFFFF) + 1)
        .count();
    assert!(
        sequential < 3,
        "{sequential} of 63 consecutive pairs count up: {ids:08x?}"
    );
    let flipped: u32 = ids.windows(2).map(|w| (w[0] ^ w[1]).count_ones()).sum();
    assert!(
        (63 * 12..63 * 20).contains(&flipped),
        "{flipped} bits flip over 63 pairs"
    );
}

#[test]
fn initiator_falls_back_to_no_chunk_size_for_peers_that_ignore_it() {
    // libswift drops handshakes carrying option 9; the retry omits it.
    let mut mesh = Mesh::new(35);
    let data = content(16 * 1024, 35);
    let s = mesh.add_node();
    let l = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, s, &data, 1024, HashAlgorithm::Sha1);
    let (lh, rec) = leecher(&mut mesh, l, &tree, &data);
    let sa = mesh.nodes[s].addr;
    mesh.nodes[l].ep.connect(mesh.now, lh, sa).unwrap();
    // Play libswift: drop every opening handshake that carries the Chunk Size option.
    let (dropped, delivered) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let (dr, de) = (dropped.clone(), delivered.clone());
    mesh.add_filter(move |d: &mut Datagram| {
        if d.from != l {
            return Verdict::Pass;
        }
        let opening = d.bytes[..4] == [0, 0, 0, 0];
        let has_cs =
            d.carries(|m| matches!(m, Message::Handshake(h) if h.options.chunk_size.is_some()));
        if opening && has_cs {
            dr.set(dr.get() + 1);
            return Verdict::Drop;
        }
        de.set(de.get() + 1);
        Verdict::Pass
    });
    mesh.run_until(Duration::from_secs(10), |m| m.complete(l, lh));
    let (dropped, delivered) = (dropped.get(), delivered.get());
    assert!(dropped >= 1 && delivered > 0);
    assert!(mesh.complete(l, lh));
    assert_eq!(rec.assembled(), data);
    assert!(mesh.nodes[l].ep.stats().handshake_retransmissions >= 1);
}

#[test]
fn endpoint_is_send() {
    // Users move endpoints into multi-threaded runtimes; this fails to compile otherwise.
    fn assert_send<T: Send>() {}
    assert_send::<Endpoint>();
}

#[test]
fn transient_mtu_below_a_data_datagram_recovers_after_it_heals() {
    // Until the path heals, nothing bigger than 885 bytes gets through: no DATA at all.
    let mut mesh = Mesh::new(478);
    mesh.link.mtu = 885;
    let (lh, rec, data) =
        seeder_and_leecher(&mut mesh, 404 * 1024 - 333, 1024, HashAlgorithm::Sha1, 478);
    let (s, l) = (0, 1);
    assert!(!mesh.run_until(Duration::from_secs(25), |m| m.complete(l, lh)));
    mesh.link.mtu = usize::MAX;
    let ok = mesh.run_until(Duration::from_secs(120), |m| m.complete(l, lh));
    assert!(
        ok,
        "no recovery after the MTU healed: seeder {:?} leecher {:?}",
        mesh.nodes[s].ep.stats(),
        mesh.nodes[l].ep.stats()
    );
    assert_eq!(rec.assembled(), data);
}

#[test]
fn leecher_reconnects_to_a_seeder_that_restarted() {
    // The only seeder restarts (a new endpoint at the same address, channels gone) after part
    // of the content arrived. The leecher's channel to the old instance goes silent and is
    // declared dead; the leecher must then find the seeder again by itself.
    let mut mesh = Mesh::new(31);
    let data = content(400 * 1024, 31);
    let s = mesh.add_node();
    let l = mesh.add_node();
    seeder(&mut mesh, s, &data, 1024, HashAlgorithm::Sha1);
    let tree = Arc::new(MerkleTree::build(HashAlgorithm::Sha1, 1024, &data).unwrap());
    let (lh, rec) = leecher(&mut mesh, l, &tree, &data);
    let sa = mesh.nodes[s].addr;
    mesh.nodes[l].ep.connect(mesh.now, lh, sa).unwrap();
    assert!(mesh.run_until(Duration::from_secs(60), |m| {
        m.nodes[l].ep.swarm(lh).unwrap().verified().count_in(0..400) >= 100
    }));
    let cfg = mesh.config();
    mesh.nodes[s].ep = Endpoint::new(cfg, mesh.now);
    seeder(&mut mesh, s, &data, 1024, HashAlgorithm::Sha1);
    assert!(
        mesh.run_until(Duration::from_secs(600), |m| m.complete(l, lh)),
        "never reconnected: {:?}",
        mesh.nodes[l].ep.stats()
    );
    assert_eq!(rec.assembled(), data);
    let closed_dead = mesh.nodes[l].events.iter().any(|e| {
        matches!(
            e,
            Event::PeerClosed {
                reason: CloseReason::Dead,
                ..
            }
        )
    });
    assert!(closed_dead, "the old channel was never declared dead");
}

#[test]
fn a_lost_handshake_reply_is_repeated_with_the_map() {
    // The seeder's reply (which carries its HAVE map) is lost; the leecher's repeated
    // handshake must get the map again, or it never learns there is anything to request.
    let mut mesh = Mesh::new(55);
    let (lh, rec, data) = seeder_and_leecher(&mut mesh, 50 * 1024, 1024, HashAlgorithm::Sha1, 55);
    let l = 1;
    // The opening handshake goes out; the leecher is unreachable while the reply arrives.
    mesh.drain();
    mesh.nodes[l].alive = false;
    mesh.run_until(Duration::from_millis(200), |_| false);
    mesh.nodes[l].alive = true;
    assert!(
        mesh.run_until(Duration::from_secs(60), |m| m.complete(l, lh)),
        "the repeated reply did not carry the map: {:?}",
        mesh.nodes[l].ep.stats()
    );
    assert_eq!(rec.assembled(), data);
}

/// An UNCHOKE is never acknowledged, and a choked peer must not ask (R-3.9-c). A seeder with
/// one upload slot chokes the second leecher while the first downloads, then gives it the
/// slot when the first completes; that UNCHOKE is lost. The seeder sends it again when no
/// REQUEST follows, and the leecher completes. Without the repeat it waited for good (VOPR
/// seed 3747); and while choked it sent no REQUEST.
#[test]
fn a_lost_unchoke_is_sent_again() {
    let mut mesh = Mesh::new(31);
    let data = content(200 * 1024, 31);
    let s = mesh.add_node();
    let a = mesh.add_node();
    let b = mesh.add_node();
    let (_, tree) = seeder_with(&mut mesh, s, &data, 1024, HashAlgorithm::Sha1, |c| {
        c.upload_slots(1).pex(false);
    });
    let unchokes_to_lose = Rc::new(Cell::new(1));
    mesh.add_filter(lose(s, unchokes_to_lose.clone(), |d| {
        d.carries(|m| matches!(m, Message::Unchoke))
    }));
    let leech = |mesh: &mut Mesh, node: usize| {
        leecher_with(mesh, node, &tree, &data, |c| {
            c.pex(false);
        })
    };
    let (ah, _) = leech(&mut mesh, a);
    let (bh, brec) = leech(&mut mesh, b);
    let sa = mesh.nodes[s].addr;
    mesh.nodes[a].ep.connect(mesh.now, ah, sa).unwrap();
    assert!(mesh.run_until(Duration::from_secs(30), |m| {
        m.nodes[a].ep.swarm(ah).unwrap().verified().count() >= 10
    }));
    mesh.nodes[b].ep.connect(mesh.now, bh, sa).unwrap();
    // B is choked while A holds the only slot.
    assert!(mesh.run_until(Duration::from_secs(30), |m| {
        m.nodes[b]
            .ep
            .swarm(bh)
            .unwrap()
            .peers()
            .any(|p| m.nodes[b].ep.peer(p).is_some_and(|p| p.choking().0))
    }));
    let requests_when_choked = b_requests(&mesh, b);
    assert!(mesh.run_until(Duration::from_secs(120), |m| m.complete(a, ah)));
    // R-3.9-c: no REQUEST while choked (A downloaded everything meanwhile).
    let choked = mesh.nodes[b]
        .ep
        .swarm(bh)
        .unwrap()
        .peers()
        .all(|p| mesh.nodes[b].ep.peer(p).is_some_and(|p| p.choking().0));
    if choked {
        assert_eq!(b_requests(&mesh, b), requests_when_choked);
    }
    assert!(mesh.run_until(Duration::from_secs(120), |m| m.complete(b, bh)));
    assert_eq!(unchokes_to_lose.get(), 0, "no UNCHOKE was lost");
    assert!(mesh.nodes[s].ep.stats().unchoke_resends > 0);
    assert_eq!(brec.assembled(), data);
}

/// A lost HAVE is repaired: the seeder opens the channel, so its map travels in a datagram of
/// its own, which the network loses. The leecher then knows of no chunk to ask for until the
/// seeder announces its map again (`refresh_haves`): without that it would wait for good.
#[test]
fn a_lost_have_is_announced_again() {
    let mut mesh = Mesh::new(32);
    let data = content(50 * 1024, 32);
    let (s, l) = (mesh.add_node(), mesh.add_node());
    let (sh, tree) = seeder(&mut mesh, s, &data, 1024, HashAlgorithm::Sha1);
    let (lh, rec) = leecher(&mut mesh, l, &tree, &data);
    // Datagrams carrying HAVE (and no HANDSHAKE) from the seeder to lose on purpose.
    let haves_to_lose = Rc::new(Cell::new(1));
    mesh.add_filter(lose(s, haves_to_lose.clone(), |d| {
        d.carries(|m| matches!(m, Message::Have(_)))
            && !d.carries(|m| matches!(m, Message::Handshake(_)))
    }));
    let la = mesh.nodes[l].addr;
    mesh.nodes[s].ep.connect(mesh.now, sh, la).unwrap();
    assert!(mesh.run_until(Duration::from_secs(60), |m| m.complete(l, lh)));
    assert_eq!(haves_to_lose.get(), 0, "no HAVE was lost");
    assert!(mesh.nodes[s].ep.stats().have_refreshes > 0);
    assert_eq!(rec.assembled(), data);
}

/// REQUEST messages node `n` has sent so far.
fn b_requests(mesh: &Mesh, n: usize) -> u64 {
    mesh.nodes[n]
        .ep
        .stats()
        .messages_out
        .get(crate::wire::MessageType::Request)
}

#[test]
fn spurious_losses_widen_the_reordering_window() {
    // Jitter of up to 20 ms each way on a 40 ms round trip: DATA overtakes DATA by more than
    // the initial reordering window (a quarter of the minimum RTT); nothing is lost.
    let mut mesh = Mesh::new(47);
    mesh.link = crate::testing::LinkConfig {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(20),
        ..crate::testing::LinkConfig::default()
    };
    let data = content(3000 * 1024, 47);
    let s = mesh.add_node();
    let l = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, s, &data, 1024, HashAlgorithm::Sha1);
    let (lh, _) = leecher(&mut mesh, l, &tree, &data);
    let a = mesh.nodes[s].addr;
    mesh.nodes[l].ep.connect(mesh.now, lh, a).unwrap();
    assert!(mesh.run_until(Duration::from_secs(60), |m| m.complete(l, lh)));
    let st = mesh.nodes[s].ep.stats();
    assert!(st.spurious_losses > 0, "no spurious loss seen: {st:?}");
    let ch = mesh.nodes[s].ep.channels.iter().flatten().next().unwrap();
    // Each spurious loss widened the window by a quarter of the minimum RTT; fewer than 16
    // recoveries since the last one, so it was not reset.
    assert!(
        ch.flight.reo_mult > 1,
        "window not widened: {}",
        ch.flight.reo_mult
    );
}

/// A chunk still asked of the seeder when another leecher announces it is asked of that
/// leecher instead, with a CANCEL to the seeder: the seeder's upload is kept for chunks new to
/// the swarm. Here the seeder is far from leecher `b` (its requests wait a long round trip)
/// and near leecher `a`, which is near `b`.
#[test]
fn requests_move_from_the_seeder_to_a_leecher_that_announces_the_chunk() {
    use crate::testing::LinkConfig;
    let data = content(256 * 1024, 21);
    let mut mesh = Mesh::new(21);
    let s = mesh.add_node();
    let a = mesh.add_node();
    let b = mesh.add_node();
    let (_, tree) = seeder(&mut mesh, s, &data, 1024, HashAlgorithm::Sha1);
    let (ah, astore) = leecher(&mut mesh, a, &tree, &data);
    let (bh, bstore) = leecher(&mut mesh, b, &tree, &data);
    let far = LinkConfig {
        latency: Duration::from_millis(300),
        ..LinkConfig::default()
    };
    mesh.set_link(s, b, far).set_link(b, s, far);
    let (sa, aa) = (mesh.nodes[s].addr, mesh.nodes[a].addr);
    let now = mesh.now;
    mesh.nodes[a].ep.connect(now, ah, sa).unwrap();
    mesh.nodes[b].ep.connect(now, bh, sa).unwrap();
    mesh.nodes[b].ep.connect(now, bh, aa).unwrap();
    assert!(
        mesh.run_until(Duration::from_secs(120), |m| m.complete(a, ah)
            && m.complete(b, bh))
    );
    assert_eq!(astore.assembled(), data);
    assert_eq!(bstore.assembled(), data);
    let moved = mesh.nodes[b].ep.stats().requests_moved;
    assert!(moved > 0, "no request moved");
    // The seeder gets CANCELs from b for what it moved (a far round trip later).
    mesh.run_until(Duration::from_secs(1), |_| false);
    let cancels = mesh.nodes[s].ep.stats().messages_in;
    assert!(cancels.get(crate::wire::MessageType::Cancel) > 0);
}

#[test]
fn peers_that_open_channels_to_each_other_at_once_keep_one() {
    let mut mesh = Mesh::new(41);
    let (lh, rec, data) = seeder_and_leecher(&mut mesh, 64 * 1024, 1024, HashAlgorithm::Sha256, 41);
    let (s, l) = (0, 1);
    let sh = mesh.nodes[s].ep.swarms().next().unwrap();
    let la = mesh.nodes[l].addr;
    mesh.nodes[s].ep.connect(mesh.now, sh, la).unwrap();
    assert!(mesh.run_until(Duration::from_secs(60), |m| m.complete(l, lh)));
    assert_eq!(rec.assembled(), data);
    mesh.run_until(Duration::from_secs(1), |_| false);
    let duplicates = |n: usize| {
        mesh.nodes[n]
            .events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::PeerClosed {
                        reason: CloseReason::Duplicate,
                        ..
                    }
                )
            })
            .count()
    };
    // Both ends closed the same one of the two channels (or heard the other end close it).
    assert_eq!((duplicates(s), duplicates(l)), (1, 1));
    assert_eq!(mesh.nodes[s].ep.swarm(sh).unwrap().peers().count(), 1);
    assert_eq!(mesh.nodes[l].ep.swarm(lh).unwrap().peers().count(), 1);
    let (ps, pl) = (
        mesh.nodes[s].ep.swarm(sh).unwrap().peers().next().unwrap(),
        mesh.nodes[l].ep.swarm(lh).unwrap().peers().next().unwrap(),
    );
    let (ids_s, ids_l) = (
        mesh.nodes[s].ep.peer(ps).unwrap().channel_ids(),
        mesh.nodes[l].ep.peer(pl).unwrap().channel_ids(),
    );
    // The same channel: one end's (ours, theirs) is the other's (theirs, ours).
    assert_eq!((ids_s.0, ids_s.1), (ids_l.1, ids_l.0));
}

#[test]
fn the_first_chunk_is_verified_two_round_trips_after_connecting() {
    // 50 ms each way: the handshake and its reply (with HAVE), then REQUEST and DATA.
    let mut mesh = Mesh::new(43);
    mesh.link.latency = Duration::from_millis(50);
    let start = mesh.now;
    let (lh, _rec, _data) =
        seeder_and_leecher(&mut mesh, 256 * 1024, 1024, HashAlgorithm::Sha256, 43);
    let l = 1;
    let verified = |m: &Mesh| {
        m.nodes[l]
            .events
            .iter()
            .any(|e| matches!(e, Event::ChunksVerified { .. }))
    };
    // Events are collected as each step drains the nodes: the first one with the chunk.
    while !verified(&mesh) && mesh.now < start + Duration::from_secs(5) {
        mesh.step();
        mesh.drain();
    }
    assert!(verified(&mesh));
    let first = mesh.now.saturating_duration_since(start);
    assert!(
        first >= Duration::from_millis(200) && first <= Duration::from_millis(205),
        "first chunk after {first:?}"
    );
    assert!(mesh.run_until(Duration::from_secs(30), |m| m.complete(l, lh)));
}
