use alloc::sync::Arc;
use alloc::vec::Vec;

use bytes::Bytes;

use super::*;
use crate::hash::HashAlgorithm;
use crate::merkle::MerkleTree;
use crate::testing::{Content, PatternContent};
use crate::wire::{Message, WireParams, decode_datagram};

const NOW: u64 = 1_795_350_094_837_653;

fn params(n: u64, form: SignedForm) -> LiveParams {
    LiveParams {
        chunk_size: 64,
        nchunks_per_sig: n,
        addressing: ChunkAddressing::ChunkRange32,
        hash: HashAlgorithm::Sha256,
        form,
    }
}

/// The stream's chunks: 64 bytes, byte `j` of chunk `i` being `i·7 + j`.
const STREAM: PatternContent = PatternContent {
    chunk_size: 64,
    chunks: u64::MAX,
    byte: |i, j| (i * 7 + j) as u8,
};

fn chunk(i: u64) -> Vec<u8> {
    STREAM.chunk(i)
}

#[test]
fn ntp_timestamps() {
    assert_eq!(ntp_from_unix_micros(0), 2_208_988_800u64 << 32);
    assert_eq!(
        ntp_from_unix_micros(500_000),
        (2_208_988_800u64 << 32) | 0x8000_0000
    );
    // NTP era 0 ends in 2036; the timestamps wrap there, as NTP's do.
    for t in [0, 1, 999_999, NOW, 2_000_000_000_000_000] {
        let back = unix_micros_from_ntp(ntp_from_unix_micros(t));
        assert!(t - back <= 1, "{t} -> {back}");
    }
    assert_eq!(unix_micros_from_ntp(0), 0);
}

#[test]
fn swarm_id_round_trip() {
    let id = LiveSwarmId::from_hex("0d0102").unwrap();
    assert_eq!(id.algorithm(), SignatureAlgorithm::ECDSAP256SHA256);
    assert_eq!(id.key(), [1, 2]);
    assert_eq!(id.to_bytes(), [13, 1, 2]);
    assert_eq!(alloc::format!("{id}"), "0d0102");
    assert_eq!(LiveSwarmId::from_hex("0d"), Err(LiveError::BadSwarmId));
    assert_eq!(LiveSwarmId::from_hex("0d0"), Err(LiveError::BadSwarmId));
    assert_eq!(LiveSwarmId::from_hex("0dzz"), Err(LiveError::BadSwarmId));
    assert_eq!(LiveSwarmId::from_bytes(&[]), Err(LiveError::BadSwarmId));
}

#[test]
fn chunks_per_signature_must_be_a_power_of_two_of_at_least_two() {
    let key = Arc::new(KeyPair::from_seed(SignatureAlgorithm::ED25519, &[1; 32]).unwrap());
    for n in [0, 1, 3, 6] {
        assert_eq!(
            LiveSource::new(params(n, SignedForm::Rfc7574), key.clone()).err(),
            Some(LiveError::BadChunksPerSignature(n))
        );
    }
    assert!(LiveSource::new(params(2, SignedForm::Rfc7574), key).is_ok());
}

/// The injector's munro hashes are the static tree's subtree hashes over the same chunks.
#[test]
fn munro_hashes_match_the_static_tree() {
    let key = Arc::new(KeyPair::from_seed(SignatureAlgorithm::ED25519, &[2; 32]).unwrap());
    let p = params(4, SignedForm::Rfc7574);
    let mut src = LiveSource::new(p, key).unwrap();
    let mut data = Vec::new();
    let mut munros = Vec::new();
    for i in 0..16 {
        data.extend_from_slice(&chunk(i));
        munros.extend(src.push_chunk(&chunk(i), NOW).unwrap());
        // Nothing is announceable before its munro is signed (§6.1.2.3).
        assert_eq!(src.signed_end(), (i + 1) / 4 * 4);
    }
    let tree = MerkleTree::build(HashAlgorithm::Sha256, 64, &data).unwrap();
    let bins: Vec<u64> = munros.iter().map(|m| m.bin.raw()).collect();
    assert_eq!(bins, [3, 11, 19, 27]);
    for m in &munros {
        assert_eq!(Some(m.hash), tree.hash(m.bin));
        assert_eq!(src.munro_for(m.bin.first_chunk().unwrap()), Some(m));
    }
    for b in 0..31 {
        let b = Bin::from_raw(b);
        if b.layer() <= 2 {
            assert_eq!(src.hash(b), tree.hash(b), "bin {b}");
        }
    }
    assert_eq!(src.latest_munro(), munros.last());
}

fn round_trip(alg: SignatureAlgorithm, form: SignedForm) {
    let key = KeyPair::from_seed(alg, &[3; 32]).unwrap();
    let id = key.swarm_id();
    assert_eq!(id.algorithm(), alg);
    let v = verifier(&id).unwrap();
    assert_eq!(v.signature_len(), Signer::signature_len(&key));
    let p = params(8, form);
    let mut src = LiveSource::new(p, Arc::new(key)).unwrap();
    let mut rx = LiveReceiver::new(p, v).unwrap();
    let mut munros = Vec::new();
    for i in 0..40 {
        munros.extend(src.push_chunk(&chunk(i), NOW + i).unwrap());
    }
    assert_eq!(munros.len(), 5);
    // A chunk before its munro: refused, naming the munro.
    assert_eq!(
        rx.verify_chunk_with(3, &chunk(3), &src.uncles(3, |_| false)),
        Err(LiveError::Verify(
            crate::merkle::VerifyError::MissingHashes { bin: munros[0].bin }
        ))
    );
    for m in &munros {
        assert_eq!(rx.add_signed_munro(m, NOW), Ok(MunroStatus::New));
        assert_eq!(rx.add_signed_munro(m, NOW), Ok(MunroStatus::Known));
    }
    // Chunks in an order that exercises known uncles: each datagram leaves out what the
    // receiver has verified.
    for i in (0..40).rev().step_by(3).chain(0..40) {
        let uncles = src.uncles(i, |b| rx.is_verified(b));
        rx.verify_chunk_with(i, &chunk(i), &uncles).unwrap();
    }
    // Once verified, a peer serves the same uncles the injector would.
    for i in 0..40 {
        assert_eq!(
            rx.uncles(i, |_| false),
            src.uncles(i, |_| false),
            "chunk {i}"
        );
    }
    assert_eq!(rx.known_end(), 40);
    // A tampered chunk fails.
    let mut rx2 = LiveReceiver::new(p, verifier(&id).unwrap()).unwrap();
    rx2.add_signed_munro(&munros[1], NOW).unwrap();
    let mut bad = chunk(9);
    bad[5] ^= 1;
    assert!(matches!(
        rx2.verify_chunk_with(9, &bad, &src.uncles(9, |_| false)),
        Err(LiveError::Verify(_))
    ));
    rx2.verify_chunk_with(9, &chunk(9), &src.uncles(9, |_| false))
        .unwrap();
}

#[test]
fn ecdsa_p256_round_trip() {
    round_trip(SignatureAlgorithm::ECDSAP256SHA256, SignedForm::Rfc7574);
    round_trip(SignatureAlgorithm::ECDSAP256SHA256, SignedForm::Libswift);
}

#[test]
fn ecdsa_p384_round_trip() {
    round_trip(SignatureAlgorithm::ECDSAP384SHA384, SignedForm::Rfc7574);
}

#[test]
fn ed25519_round_trip() {
    round_trip(SignatureAlgorithm::ED25519, SignedForm::Rfc7574);
}

#[test]
fn bad_munros_are_rejected() {
    let key = KeyPair::from_seed(SignatureAlgorithm::ECDSAP256SHA256, &[4; 32]).unwrap();
    let other = KeyPair::from_seed(SignatureAlgorithm::ECDSAP256SHA256, &[5; 32]).unwrap();
    let p = params(4, SignedForm::Rfc7574);
    let mut src = LiveSource::new(p, Arc::new(key.clone())).unwrap();
    let mut forged = LiveSource::new(p, Arc::new(other)).unwrap();
    let mut m = None;
    let mut f = None;
    for i in 0..4 {
        m = src.push_chunk(&chunk(i), NOW).unwrap().or(m);
        f = forged.push_chunk(&chunk(i), NOW).unwrap().or(f);
    }
    let (m, f) = (m.unwrap(), f.unwrap());
    let mut rx = LiveReceiver::new(p, verifier(&key.swarm_id()).unwrap()).unwrap();
    // Signed by another key.
    assert_eq!(
        rx.add_signed_munro(&f, NOW),
        Err(LiveError::BadSignature(m.bin))
    );
    // A different hash under a genuine signature.
    let mut wrong = m.clone();
    wrong.hash = HashAlgorithm::Sha256.digest(b"x");
    assert_eq!(
        rx.add_signed_munro(&wrong, NOW),
        Err(LiveError::BadSignature(m.bin))
    );
    // Another timestamp under the same signature (the timestamp is signed, §6.1.2.2).
    let mut retimed = m.clone();
    retimed.timestamp += 1;
    assert_eq!(
        rx.add_signed_munro(&retimed, NOW),
        Err(LiveError::BadSignature(m.bin))
    );
    // Not munro-sized.
    let mut narrow = m.clone();
    narrow.bin = Bin::from_raw(1);
    assert_eq!(
        rx.add_signed_munro(&narrow, NOW),
        Err(LiveError::NotAMunro(narrow.bin))
    );
    // A truncated signature.
    let mut short = m.clone();
    short.signature = m.signature.slice(..10);
    assert_eq!(
        rx.add_signed_munro(&short, NOW),
        Err(LiveError::BadSignatureLength {
            len: 10,
            expected: 64
        })
    );
    // Too old, when an age limit is set.
    rx.set_max_age(Some(30_000_000));
    assert_eq!(
        rx.add_signed_munro(&m, NOW + 31_000_000),
        Err(LiveError::TooOld(m.bin))
    );
    assert_eq!(
        rx.add_signed_munro(&m, NOW + 29_000_000),
        Ok(MunroStatus::New)
    );
    // Nothing untrusted got in: the chunks verify only against the genuine munro.
    assert_eq!(rx.munros().count(), 1);
    assert_eq!(rx.hash(m.bin), Some(m.hash));
    // A second, different hash for a trusted munro is refused even if validly signed.
    assert_eq!(
        rx.add_signed_munro(&wrong, NOW),
        Err(LiveError::Verify(
            crate::merkle::VerifyError::HashMismatch { bin: m.bin }
        ))
    );
    // Keys that do not parse.
    assert_eq!(
        verifier(&LiveSwarmId::new(
            SignatureAlgorithm::ECDSAP256SHA256,
            alloc::vec![4; 64]
        ))
        .err(),
        Some(LiveError::BadPublicKey)
    );
    assert_eq!(
        verifier(&LiveSwarmId::new(
            SignatureAlgorithm(200),
            alloc::vec![4; 64]
        ))
        .err(),
        Some(LiveError::UnsupportedAlgorithm(SignatureAlgorithm(200)))
    );
    assert_eq!(
        verifier(&LiveSwarmId::new(
            SignatureAlgorithm::RSASHA1,
            alloc::vec![0]
        ))
        .err(),
        Some(LiveError::BadPublicKey)
    );
}

/// On an endless stream, the receiver's memory stays bounded by its discard window.
#[test]
fn discard_window_bounds_memory() {
    let key = KeyPair::from_seed(SignatureAlgorithm::ED25519, &[6; 32]).unwrap();
    let p = params(16, SignedForm::Rfc7574);
    let mut src = LiveSource::new(p, Arc::new(key.clone())).unwrap();
    src.set_discard_window(Some(256));
    let mut rx = LiveReceiver::new(p, verifier(&key.swarm_id()).unwrap()).unwrap();
    rx.set_discard_window(Some(256));
    let (mut early, mut late) = (0, 0);
    for i in 0..40_000u64 {
        if let Some(m) = src.push_chunk(&chunk(i), NOW).unwrap() {
            rx.add_signed_munro(&m, NOW).unwrap();
            let first = m.bin.first_chunk().unwrap();
            for c in first..first + 16 {
                let u = src.uncles(c, |b| rx.is_verified(b));
                rx.verify_chunk_with(c, &chunk(c), &u).unwrap();
            }
        }
        // Memory in the second half of the stream never exceeds the first half's.
        if (2_000..20_000).contains(&i) {
            early = early.max(rx.heap_bytes());
        } else if i >= 20_000 {
            late = late.max(rx.heap_bytes());
        }
    }
    assert!(late <= early, "{late} > {early}");
    assert!(rx.munros().count() <= 256 / 16 + 1);
    assert_eq!(rx.floor(), 40_000 - 256);
    assert_eq!(src.first_kept(), 40_000 - 256);
    // Forgotten chunks and munros are refused, not re-verified.
    let old = src.munro_for(40_000 - 256).unwrap().clone();
    assert_eq!(
        rx.verify_chunk_with(5, &chunk(5), &[]),
        Err(LiveError::Discarded(Bin::leaf(5).unwrap()))
    );
    assert_eq!(src.munro_for(5), None);
    assert_eq!(rx.add_signed_munro(&old, NOW), Ok(MunroStatus::Known));
}

#[test]
fn finish_signs_a_short_last_group() {
    let key = Arc::new(KeyPair::from_seed(SignatureAlgorithm::ED25519, &[7; 32]).unwrap());
    let p = params(8, SignedForm::Rfc7574);
    let mut src = LiveSource::new(p, key.clone()).unwrap();
    for i in 0..10 {
        src.push_chunk(&chunk(i), NOW).unwrap();
    }
    let last = src.finish(NOW).unwrap().unwrap();
    assert_eq!(src.signed_end(), 10);
    assert_eq!(src.finish(NOW), Ok(None));
    assert!(src.push_chunk(&chunk(10), NOW).is_err());
    let mut rx = LiveReceiver::new(p, verifier(&key.swarm_id()).unwrap()).unwrap();
    rx.add_signed_munro(&last, NOW).unwrap();
    for c in 8..10 {
        rx.verify_chunk_with(c, &chunk(c), &src.uncles(c, |_| false))
            .unwrap();
    }
}

#[test]
fn sign_all() {
    let key = KeyPair::from_seed(SignatureAlgorithm::ECDSAP384SHA384, &[8; 32]).unwrap();
    let v = verifier(&key.swarm_id()).unwrap();
    let p = params(2, SignedForm::Rfc7574);
    let s = sign_chunk(&key, &p, 5, NOW, &chunk(5)).unwrap();
    assert_eq!(s.signature.len(), 96);
    assert_eq!(s.timestamp, ntp_from_unix_micros(NOW));
    assert_eq!(verify_signed_chunk(&*v, &p, 5, &s, &chunk(5)), Ok(()));
    let bin5 = Bin::leaf(5).unwrap();
    assert_eq!(
        verify_signed_chunk(&*v, &p, 6, &s, &chunk(5)),
        Err(LiveError::BadSignature(Bin::leaf(6).unwrap()))
    );
    assert_eq!(
        verify_signed_chunk(&*v, &p, 5, &s, &chunk(6)),
        Err(LiveError::BadSignature(bin5))
    );
    assert_eq!(
        verify_signed_chunk(&*v, &p, 5, &s, &[]),
        Err(LiveError::BadChunkLength { chunk: 5, len: 0 })
    );
}

/// Keys survive a save and load, and the same seed gives the same key.
#[test]
fn keys_are_reproducible() {
    for alg in [
        SignatureAlgorithm::ECDSAP256SHA256,
        SignatureAlgorithm::ECDSAP384SHA384,
        SignatureAlgorithm::ED25519,
    ] {
        let a = KeyPair::from_seed(alg, &[9; 32]).unwrap();
        let b = KeyPair::from_secret(alg, &a.secret_bytes()).unwrap();
        assert_eq!(a.swarm_id(), b.swarm_id());
        assert_eq!(
            a.swarm_id(),
            KeyPair::from_seed(alg, &[9; 32]).unwrap().swarm_id()
        );
        assert_ne!(
            a.swarm_id(),
            KeyPair::from_seed(alg, &[10; 32]).unwrap().swarm_id()
        );
    }
    assert_eq!(
        KeyPair::from_seed(SignatureAlgorithm::RSASHA1, &[9; 32]).err(),
        Some(LiveError::UnsupportedAlgorithm(SignatureAlgorithm::RSASHA1))
    );
    assert_eq!(
        KeyPair::from_secret(SignatureAlgorithm::ED25519, &[1; 31]).err(),
        Some(LiveError::BadSecretKey)
    );
}

fn vector(name: &str) -> Vec<u8> {
    let line = include_str!("vectors/libswift-live.txt")
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap();
    let hex = line.split_whitespace().nth(1).unwrap();
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// What the captured libswift source used: 1 KiB chunks, 32 per munro, 32-bit chunk ranges,
/// SHA-1.
fn libswift_params() -> LiveParams {
    LiveParams {
        chunk_size: 1024,
        nchunks_per_sig: 32,
        addressing: ChunkAddressing::ChunkRange32,
        hash: HashAlgorithm::Sha1,
        form: SignedForm::Libswift,
    }
}

fn messages(name: &str, wp: &WireParams) -> Vec<Message> {
    let (_, it) = decode_datagram(Bytes::from(vector(name)), wp).unwrap();
    it.collect::<Result<Vec<_>, _>>().unwrap()
}

/// The signed munro in a datagram: the INTEGRITY directly before the SIGNED_INTEGRITY.
fn signed_munro(p: &LiveParams, msgs: &[Message]) -> SignedMunro {
    let i = msgs
        .iter()
        .position(|m| matches!(m, Message::SignedIntegrity(_)))
        .unwrap();
    let (Message::Integrity(int), Message::SignedIntegrity(sig)) = (&msgs[i - 1], &msgs[i]) else {
        panic!("no INTEGRITY before the SIGNED_INTEGRITY");
    };
    SignedMunro::from_messages(p, int, sig).unwrap()
}

/// Datagrams captured from a libswift live source verify: its P-256 munro signature (over
/// the munro hash alone, with a Unix-µs timestamp) and two chunks under it, with the uncle
/// hashes of their datagrams.
#[test]
fn libswift_live_capture_verifies() {
    let id = LiveSwarmId::from_bytes(&vector("p256_swarm_id")).unwrap();
    assert_eq!(id.algorithm(), SignatureAlgorithm::ECDSAP256SHA256);
    let p = libswift_params();
    let wp = WireParams::new(p.addressing, p.hash)
        .with_signature_len(64)
        .with_chunk_size(1024);
    let m = signed_munro(&p, &messages("p256_signed_munro", &wp));
    assert_eq!(m.bin.first_chunk(), Some(384));
    assert_eq!(m.bin.last_chunk(), Some(415));
    assert_eq!(p.unix_micros_of(m.timestamp), m.timestamp);
    // The RFC's signed bytes do not verify: libswift signs the hash alone.
    let rfc = LiveParams {
        form: SignedForm::Rfc7574,
        ..p
    };
    let mut strict = LiveReceiver::new(rfc, verifier(&id).unwrap()).unwrap();
    assert_eq!(
        strict.add_signed_munro(&m, m.timestamp),
        Err(LiveError::BadSignature(m.bin))
    );
    let mut rx = LiveReceiver::new(p, verifier(&id).unwrap()).unwrap();
    rx.set_max_age(Some(30_000_000));
    assert_eq!(
        rx.add_signed_munro(&m, m.timestamp + 1_000),
        Ok(MunroStatus::New)
    );
    for (name, chunk) in [("p256_chunk_384", 384), ("p256_chunk_385", 385)] {
        let msgs = messages(name, &wp);
        let mut hashes = Vec::new();
        let mut data = None;
        for msg in msgs {
            match msg {
                Message::Integrity(i) => {
                    let (a, b) = i.spec.to_chunks(1024).unwrap();
                    hashes.push((Bin::from_chunk_range(a, b).unwrap(), i.hash));
                }
                Message::Data(d) => data = Some(d),
                _ => {}
            }
        }
        let d = data.unwrap();
        assert_eq!(d.spec.to_chunks(1024), Some((chunk, chunk)));
        // Flip a byte: refused. Then the real chunk verifies.
        let mut bad = d.payload.to_vec();
        bad[100] ^= 0x80;
        assert!(rx.verify_chunk_with(chunk, &bad, &hashes).is_err());
        assert_eq!(rx.verify_chunk_with(chunk, &d.payload, &hashes), Ok(()));
    }
}

/// A libswift RSASHA1 munro signature (RFC 3110 key in the swarm ID, PKCS#1 v1.5).
#[test]
fn libswift_rsa_munro_verifies() {
    let id = LiveSwarmId::from_bytes(&vector("rsa_swarm_id")).unwrap();
    assert_eq!(id.algorithm(), SignatureAlgorithm::RSASHA1);
    let v = verifier(&id).unwrap();
    assert_eq!(v.signature_len(), 128);
    let p = libswift_params();
    let wp = WireParams::new(p.addressing, p.hash).with_signature_len(128);
    let m = signed_munro(&p, &messages("rsa_signed_munro", &wp));
    let mut rx = LiveReceiver::new(p, v).unwrap();
    assert_eq!(rx.add_signed_munro(&m, m.timestamp), Ok(MunroStatus::New));
    let mut bad = m.clone();
    let mut sig = bad.signature.to_vec();
    sig[0] ^= 1;
    bad.signature = Bytes::from(sig);
    let mut rx = LiveReceiver::new(p, verifier(&id).unwrap()).unwrap();
    assert_eq!(
        rx.add_signed_munro(&bad, m.timestamp),
        Err(LiveError::BadSignature(m.bin))
    );
}
