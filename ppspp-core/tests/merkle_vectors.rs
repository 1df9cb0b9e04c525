//! Published Merkle test vectors (shared/spec/VECTORS-IDEAS.md §3–§4, RFC 7574 §5) through
//! the public API: roots, peaks, uncles, the progressive download of Table 1, automatic size
//! detection, and a full verified download of `m74.jpg`.

use ppspp_core::Bin;
use ppspp_core::binmap::Binmap;
use ppspp_core::hash::{HashAlgorithm, HashValue};
use ppspp_core::merkle::{
    AckedHashes, ContentSize, MerkleBuilder, MerkleTree, PartialTree, VerifyError, root_hash,
};

/// A copy of `shared/spec/vectors/m74.jpg` (a public-domain Hubble image, from swirl).
const M74: &[u8] = include_bytes!("data/m74.jpg");

fn b(raw: u64) -> Bin {
    Bin::from_raw(raw)
}

fn h(hex: &str) -> HashValue {
    HashValue::from_hex(hex).unwrap()
}

fn bins(list: &[(Bin, HashValue)]) -> Vec<u64> {
    list.iter().map(|(bin, _)| bin.raw()).collect()
}

#[test]
fn m74_sha1_root_is_the_libswift_swarm_id() {
    let root = root_hash(HashAlgorithm::Sha1, 1024, M74).unwrap();
    assert_eq!(root, h("c89800bfc82ed01ed6e3bfd5408c51274491f7d4"));
    // Not the root of an implementation that hashes two empty children.
    assert_ne!(root, h("30cb359402fb00b9111a90c9d45c2a2ea48d4db0"));
}

#[test]
fn m74_sha256_root() {
    let root = root_hash(HashAlgorithm::Sha256, 1024, M74).unwrap();
    assert_eq!(
        root,
        h("12d0e382fc4a5a8bfca5c693355872fa69d30304ea01fb1c973dc8bad95ce177")
    );
    assert_ne!(
        root,
        h("ad80ef847b8d617e109376f45f1e2b91ee8a2e1b9ed17d9ef2824fa962842c49")
    );
}

#[test]
fn m74_streamed_in_odd_pieces_gives_the_same_root() {
    let mut builder = MerkleBuilder::new(HashAlgorithm::Sha1, 1024).unwrap();
    for piece in M74.chunks(777) {
        builder.update(piece).unwrap();
    }
    let root = builder.finish().unwrap();
    assert_eq!(root.hash, h("c89800bfc82ed01ed6e3bfd5408c51274491f7d4"));
    assert_eq!((root.chunk_count, root.content_len), (26, 26121));
}

#[test]
fn single_chunk_roots_are_the_plain_hash() {
    let cases: [(&[u8], HashAlgorithm, &str); 4] = [
        (
            b"123\n",
            HashAlgorithm::Sha1,
            "a8fdc205a9f19cc1c7507a60c4f01b13d11d7fd0",
        ),
        (
            b"Hello world!\n",
            HashAlgorithm::Sha1,
            "47a013e660d408619d894b20806b1d5086aab03b",
        ),
        (
            b"Hello world!\n",
            HashAlgorithm::Sha256,
            "0ba904eae8773b70c75333db4de2f3ac45a8ad4ddba1b242f0b3cfc199391dd8",
        ),
        (
            b"Hello world!",
            HashAlgorithm::Sha256,
            "c0535e4be2b79ffd93291305436bf889314e4a3faec05ecffcbb7df31ad9e51a",
        ),
    ];
    for (data, alg, expect) in cases {
        assert_eq!(root_hash(alg, 1024, data).unwrap(), h(expect));
        assert_eq!(alg.digest(data), h(expect));
    }
    // A whole chunk of exactly the chunk size is a single chunk too.
    for alg in HashAlgorithm::ALL {
        assert_eq!(
            root_hash(alg, 1024, &M74[..1024]).unwrap(),
            alg.digest(&M74[..1024])
        );
    }
}

#[test]
fn dollars_1028_leaves_and_root() {
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 1024, &[b'$'; 1028]).unwrap();
    assert_eq!(
        tree.hash(b(0)),
        Some(h("4d38c7459a659d769bb956c2d758d266008199a4"))
    );
    assert_eq!(
        tree.hash(b(2)),
        Some(h("a923e4b60d2a2a2a5ede87479e0314b028e3ae60"))
    );
    assert_eq!(
        tree.root_hash(),
        h("5b53677d3a695f29f1b4e18ab6d705312ef7f8c3")
    );
}

#[test]
fn m74_peak_hashes_are_bins_15_39_49() {
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 1024, M74).unwrap();
    let peaks: Vec<(Bin, HashValue)> = tree.peaks().collect();
    assert_eq!(
        peaks,
        [
            (b(15), h("6870507a7fe10bfefe32607afab84ebeef89c2c4")),
            (b(39), h("cf0517c9ab6e0ea4ff1a1aeb2f1ba4b30aa7643a")),
            (b(49), h("5efa332788423d6ccb23bf752acb6482ce88161b")),
        ]
    );
}

#[test]
fn m74_uncles_of_chunk_0_highest_first() {
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 1024, M74).unwrap();
    let uncles: Vec<(Bin, HashValue)> = tree.uncles(0).unwrap().collect();
    assert_eq!(
        uncles,
        [
            (b(47), h("2e3b458e83c65ac9d6046b7626178fac2f041f57")),
            (b(23), h("3e38cc39eb89a0d976a5f21214eeea741f865412")),
            (b(11), h("802dca0fe2e38f526bbfd4bb26894c57b0aedf51")),
            (b(5), h("c8be9c67071ee63dbd0188516f8dfd508ffdea64")),
            (b(2), h("50feeff275debdb023548910fec0fbcfcca142d0")),
        ]
    );
}

#[test]
fn rfc_figure_4_peaks_of_7_chunks_are_3_9_12() {
    let tree = MerkleTree::build(HashAlgorithm::Sha256, 1024, &[0x5a; 7162]).unwrap();
    let peaks: Vec<u64> = tree.peaks().map(|(bin, _)| bin.raw()).collect();
    assert_eq!(peaks, [3, 9, 12]);
    assert_eq!(tree.chunk_len(6), Some(1018));
}

#[test]
fn rfc_figure_3_uncles_of_chunk_4_are_10_13_3() {
    let tree = MerkleTree::build(HashAlgorithm::Sha256, 1024, &[0xa5; 8 * 1024]).unwrap();
    let mut up: Vec<u64> = tree.uncles(4).unwrap().map(|(bin, _)| bin.raw()).collect();
    up.reverse();
    assert_eq!(up, [10, 13, 3]);
}

/// RFC 7574 §5.5 Table 1, with chunks named by bin: 0 → 2,5,11; 2 → none; 4 → 6; 6 → none;
/// 8 → 10,13; 10 → none; 12 → 14; 14 → none. 7 hashes in all.
#[test]
fn rfc_table_1_progressive_download() {
    let content: Vec<u8> = (0..8 * 1024).map(|i| (i * 31 % 256) as u8).collect();
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 1024, &content).unwrap();
    let mut rx = PartialTree::new(
        HashAlgorithm::Sha1,
        1024,
        tree.root_hash(),
        ContentSize::Chunks(8),
    )
    .unwrap();
    let mut acked = Binmap::new();
    let mut table = Vec::new();
    for c in 0..8u64 {
        let known = AckedHashes::new(&acked);
        let list: Vec<_> = tree
            .integrity(c, false, |x| known.knows(x))
            .unwrap()
            .collect();
        let mut sent = bins(&list);
        sent.sort_unstable();
        table.push((Bin::leaf(c).unwrap().raw(), sent));
        rx.verify_chunk_with(c, &content[c as usize * 1024..][..1024], &list)
            .unwrap();
        acked.insert(c);
    }
    let expect: Vec<(u64, Vec<u64>)> = vec![
        (0, vec![2, 5, 11]),
        (2, vec![]),
        (4, vec![6]),
        (6, vec![]),
        (8, vec![10, 13]),
        (10, vec![]),
        (12, vec![14]),
        (14, vec![]),
    ];
    assert_eq!(table, expect);
}

/// VECTORS-IDEAS.md §7: a verifier given only the peaks {15, 39, 49} and the root derives
/// N = 26, then accepts the last chunk at 521 bytes and rejects 520 and 522.
#[test]
fn m74_automatic_size_detection_from_peaks() {
    let root = h("c89800bfc82ed01ed6e3bfd5408c51274491f7d4");
    let mut rx = PartialTree::new(HashAlgorithm::Sha1, 1024, root, ContentSize::Unknown).unwrap();
    for (bin, hash) in [
        (15, "6870507a7fe10bfefe32607afab84ebeef89c2c4"),
        (39, "cf0517c9ab6e0ea4ff1a1aeb2f1ba4b30aa7643a"),
        (49, "5efa332788423d6ccb23bf752acb6482ce88161b"),
    ] {
        rx.add_hash(b(bin), &h(hash)).unwrap();
    }
    assert_eq!(rx.resolve_size(), Ok(26));
    assert_eq!(rx.root_bin(), Some(b(31)));
    // The last chunk (bin 50) needs its sibling, chunk 24 (bin 48).
    let sibling = [(
        b(48),
        HashAlgorithm::Sha1.digest(&M74[24 * 1024..25 * 1024]),
    )];
    let last = &M74[25 * 1024..];
    assert_eq!(last.len(), 521);
    for len in [520, 522] {
        let mut wrong = last.to_vec();
        wrong.resize(len, 0);
        assert!(
            rx.verify_chunk_with(25, &wrong, &sibling).is_err(),
            "{len} bytes"
        );
    }
    assert_eq!(rx.verify_chunk_with(25, last, &sibling), Ok(()));
    assert_eq!(rx.content_len(), Some(26121));
}

/// VECTORS-IDEAS.md §7 "Merkle round trip": every chunk of m74.jpg verifies against the root
/// with its uncle list; a flipped byte in the chunk or in any uncle is rejected.
#[test]
fn m74_every_chunk_round_trips_and_corruption_is_rejected() {
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 1024, M74).unwrap();
    for c in 0..26u64 {
        let chunk = &M74[c as usize * 1024..M74.len().min((c as usize + 1) * 1024)];
        let uncles: Vec<_> = tree.uncles(c).unwrap().collect();
        // A fresh receiver that knows only the root and the size, per chunk.
        let fresh = || {
            PartialTree::new(
                HashAlgorithm::Sha1,
                1024,
                tree.root_hash(),
                ContentSize::Bytes(26121),
            )
            .unwrap()
        };
        let mut rx = fresh();
        let mut bad = chunk.to_vec();
        bad[c as usize % chunk.len()] ^= 0x80;
        assert!(matches!(
            rx.verify_chunk_with(c, &bad, &uncles),
            Err(VerifyError::FoldMismatch { chunk, .. }) if chunk == c
        ));
        for i in 0..uncles.len() {
            let mut forged = uncles.clone();
            let mut bytes = forged[i].1.as_bytes().to_vec();
            bytes[3] ^= 1;
            forged[i].1 = HashValue::from_slice(&bytes).unwrap();
            assert!(rx.verify_chunk_with(c, chunk, &forged).is_err());
        }
        assert_eq!(rx.verify_chunk_with(c, chunk, &uncles), Ok(()));
    }
}
