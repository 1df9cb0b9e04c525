//! Unit and property tests of the Merkle module.

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::bin::Bin;
use crate::binmap::Binmap;
use crate::hash::{HashAlgorithm, HashValue};

const M74: &[u8] = include_bytes!("../../tests/data/m74.jpg");

fn b(raw: u64) -> Bin {
    Bin::from_raw(raw)
}

fn hex(h: &HashValue) -> alloc::string::String {
    h.to_string()
}

/// A direct transcription of RFC 7574 §5.1, for comparison: the hash of `bin` over `data`.
fn naive_node(alg: HashAlgorithm, cs: usize, data: &[u8], bin: Bin) -> HashValue {
    let n = data.len().div_ceil(cs) as u64;
    let first = bin.first_chunk().unwrap();
    if first >= n {
        return alg.empty();
    }
    match bin.children() {
        None => {
            let start = first as usize * cs;
            alg.digest(&data[start..(start + cs).min(data.len())])
        }
        Some((l, r)) => {
            alg.digest_pair(&naive_node(alg, cs, data, l), &naive_node(alg, cs, data, r))
        }
    }
}

/// The root a buggy implementation gets when it hashes two empty children instead of
/// keeping the parent all-zero.
fn shortcut_bug_root(alg: HashAlgorithm, cs: usize, data: &[u8]) -> HashValue {
    fn node(alg: HashAlgorithm, cs: usize, data: &[u8], n: u64, bin: Bin) -> HashValue {
        match bin.children() {
            None => {
                let c = bin.first_chunk().unwrap();
                if c >= n {
                    return alg.empty();
                }
                let start = c as usize * cs;
                alg.digest(&data[start..(start + cs).min(data.len())])
            }
            Some((l, r)) => alg.digest_pair(&node(alg, cs, data, n, l), &node(alg, cs, data, n, r)),
        }
    }
    let n = data.len().div_ceil(cs) as u64;
    node(alg, cs, data, n, Bin::root_covering(n).unwrap())
}

fn bins_of<I: Iterator<Item = (Bin, HashValue)>>(it: I) -> Vec<u64> {
    it.map(|(bin, _)| bin.raw()).collect()
}

#[test]
fn root_of_123_newline_sha1_is_the_libswift_vector() {
    let root = root_hash(HashAlgorithm::Sha1, 1024, b"123\n").unwrap();
    assert_eq!(hex(&root), "a8fdc205a9f19cc1c7507a60c4f01b13d11d7fd0");
}

#[test]
fn root_of_1028_dollars_sha1_is_the_libswift_vector() {
    let data = [b'$'; 1028];
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 1024, &data).unwrap();
    assert_eq!(
        hex(&tree.hash(b(0)).unwrap()),
        "4d38c7459a659d769bb956c2d758d266008199a4"
    );
    assert_eq!(
        hex(&tree.hash(b(2)).unwrap()),
        "a923e4b60d2a2a2a5ede87479e0314b028e3ae60"
    );
    assert_eq!(
        hex(&tree.root_hash()),
        "5b53677d3a695f29f1b4e18ab6d705312ef7f8c3"
    );
    assert_eq!(tree.root_bin(), b(1));
}

#[test]
fn hello_world_roots() {
    let cases = [
        (
            HashAlgorithm::Sha1,
            &b"Hello world!\n"[..],
            "47a013e660d408619d894b20806b1d5086aab03b",
        ),
        (
            HashAlgorithm::Sha256,
            b"Hello world!\n",
            "0ba904eae8773b70c75333db4de2f3ac45a8ad4ddba1b242f0b3cfc199391dd8",
        ),
        (
            HashAlgorithm::Sha256,
            b"Hello world!",
            "c0535e4be2b79ffd93291305436bf889314e4a3faec05ecffcbb7df31ad9e51a",
        ),
    ];
    for (alg, data, root) in cases {
        assert_eq!(hex(&root_hash(alg, 1024, data).unwrap()), root);
    }
}

#[test]
fn m74_roots_and_not_the_shortcut_bug_roots() {
    assert_eq!(M74.len(), 26121);
    let sha1 = MerkleTree::build(HashAlgorithm::Sha1, 1024, M74).unwrap();
    assert_eq!((sha1.chunk_count(), sha1.chunk_len(25)), (26, Some(521)));
    assert_eq!(
        hex(&sha1.root_hash()),
        "c89800bfc82ed01ed6e3bfd5408c51274491f7d4"
    );
    let sha256 = root_hash(HashAlgorithm::Sha256, 1024, M74).unwrap();
    assert_eq!(
        hex(&sha256),
        "12d0e382fc4a5a8bfca5c693355872fa69d30304ea01fb1c973dc8bad95ce177"
    );
    // The reference for the bug gives the published wrong roots, and ours differ.
    let bug1 = shortcut_bug_root(HashAlgorithm::Sha1, 1024, M74);
    assert_eq!(hex(&bug1), "30cb359402fb00b9111a90c9d45c2a2ea48d4db0");
    let bug256 = shortcut_bug_root(HashAlgorithm::Sha256, 1024, M74);
    assert_eq!(
        hex(&bug256),
        "ad80ef847b8d617e109376f45f1e2b91ee8a2e1b9ed17d9ef2824fa962842c49"
    );
    assert_ne!(sha1.root_hash(), bug1);
    assert_ne!(sha256, bug256);
}

#[test]
fn m74_peaks_and_uncles_of_chunk_0() {
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 1024, M74).unwrap();
    let peaks: Vec<(u64, alloc::string::String)> =
        tree.peaks().map(|(bin, h)| (bin.raw(), hex(&h))).collect();
    assert_eq!(
        peaks,
        [
            (15, "6870507a7fe10bfefe32607afab84ebeef89c2c4".into()),
            (39, "cf0517c9ab6e0ea4ff1a1aeb2f1ba4b30aa7643a".into()),
            (49, "5efa332788423d6ccb23bf752acb6482ce88161b".into()),
        ]
    );
    // Highest first (§5.4).
    let uncles: Vec<(u64, alloc::string::String)> = tree
        .uncles(0)
        .unwrap()
        .map(|(bin, h)| (bin.raw(), hex(&h)))
        .collect();
    assert_eq!(
        uncles,
        [
            (47, "2e3b458e83c65ac9d6046b7626178fac2f041f57".into()),
            (23, "3e38cc39eb89a0d976a5f21214eeea741f865412".into()),
            (11, "802dca0fe2e38f526bbfd4bb26894c57b0aedf51".into()),
            (5, "c8be9c67071ee63dbd0188516f8dfd508ffdea64".into()),
            (2, "50feeff275debdb023548910fec0fbcfcca142d0".into()),
        ]
    );
    // With the peaks (first DATA, §5.6.2): peaks, then the uncles below C0's peak (bin 15);
    // 47 is left out, the receiver computes it from peaks 39 and 49.
    let first = bins_of(tree.integrity(0, true, |_| false).unwrap());
    assert_eq!(first, [15, 39, 49, 23, 11, 5, 2]);
}

#[test]
fn peaks_of_seven_chunks_are_bins_3_9_12() {
    // RFC 7574 Figure 4: 7162 bytes in 1 KiB chunks.
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 1024, &[1u8; 7162]).unwrap();
    assert_eq!(bins_of(tree.peaks()), [3, 9, 12]);
    assert_eq!(tree.chunk_len(6), Some(1018));
    for p in [3, 9, 12] {
        assert!(is_peak(b(p), 7));
    }
    assert!(!is_peak(b(7), 7) && !is_peak(b(1), 7) && !is_peak(b(11), 7));
    assert!(is_peak(b(7), 8));
}

#[test]
fn uncles_of_chunk_4_in_an_8_chunk_tree_are_10_13_3() {
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 1024, &[2u8; 8 * 1024]).unwrap();
    let mut up = bins_of(tree.uncles(4).unwrap());
    up.reverse();
    assert_eq!(up, [10, 13, 3]);
    // Figure 3 has N = 7: same uncles, the empty leaf 14 is not one of them.
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 1024, &[2u8; 7 * 1024]).unwrap();
    assert_eq!(bins_of(tree.uncles(4).unwrap()), [3, 13, 10]);
    // But chunk 6's sibling is the empty leaf 14: never sent.
    assert_eq!(bins_of(tree.uncles(6).unwrap()), [3, 9]);
}

/// RFC 7574 §5.5 Table 1: a progressive download of the 8-leaf tree of Figure 3 needs only
/// 7 hashes when the sender leaves out what the receiver's acknowledgements imply.
#[test]
fn table_1_progressive_download_sends_seven_hashes() {
    let content = [9u8; 8 * 1024];
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 1024, &content).unwrap();
    let mut rx = PartialTree::new(
        HashAlgorithm::Sha1,
        1024,
        tree.root_hash(),
        ContentSize::Chunks(8),
    )
    .unwrap();
    let mut acked = Binmap::new();
    let mut sent = Vec::new();
    for c in 0..8u64 {
        let known = AckedHashes::new(&acked);
        let list: Vec<_> = tree
            .integrity(c, false, |x| known.knows(x))
            .unwrap()
            .collect();
        let mut bins = bins_of(list.iter().copied());
        bins.sort_unstable();
        sent.push(bins);
        let data = &content[c as usize * 1024..][..1024];
        assert_eq!(rx.verify_chunk_with(c, data, &list), Ok(()));
        acked.insert(c);
    }
    let expect: [&[u64]; 8] = [&[2, 5, 11], &[], &[6], &[], &[10, 13], &[], &[14], &[]];
    assert_eq!(sent, expect);
    assert_eq!(sent.iter().map(Vec::len).sum::<usize>(), 7);
    assert_eq!(rx.pending_count(), 0);
    // With N = 7 the empty leaf 14 is never sent: 6 hashes.
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 1024, &content[..7 * 1024]).unwrap();
    let mut acked = Binmap::new();
    let mut total = 0;
    for c in 0..7u64 {
        let known = AckedHashes::new(&acked);
        total += tree
            .integrity(c, false, |x| known.knows(x))
            .unwrap()
            .count();
        acked.insert(c);
    }
    assert_eq!(total, 6);
}

#[test]
fn builder_streams_in_any_split_and_rejects_bad_input() {
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    let expect = root_hash(HashAlgorithm::Sha256, 333, &data).unwrap();
    for split in [1usize, 2, 332, 333, 334, 1000, 9999] {
        let mut bld = MerkleBuilder::new(HashAlgorithm::Sha256, 333).unwrap();
        for piece in data.chunks(split) {
            bld.update(piece).unwrap();
        }
        assert_eq!(bld.content_len(), 10_000);
        let root = bld.finish().unwrap();
        assert_eq!(
            (root.hash, root.chunk_count, root.content_len),
            (expect, 31, 10_000)
        );
    }
    let mut bld = MerkleBuilder::with_tree(HashAlgorithm::Sha256, 333).unwrap();
    for chunk in data.chunks(333) {
        bld.push_chunk(chunk).unwrap();
    }
    assert_eq!(bld.push_chunk(b"x"), Err(BuildError::AfterShortChunk));
    assert_eq!(bld.finish_tree().unwrap().root_hash(), expect);
    let mut bld = MerkleBuilder::new(HashAlgorithm::Sha1, 4).unwrap();
    for chunk in [&b"abcd"[..], b"efgh", b"ij"] {
        bld.push_leaf_hash(&HashAlgorithm::Sha1.digest(chunk), chunk.len())
            .unwrap();
    }
    assert_eq!(
        bld.finish().unwrap().hash,
        root_hash(HashAlgorithm::Sha1, 4, b"abcdefghij").unwrap()
    );

    assert_eq!(
        MerkleBuilder::new(HashAlgorithm::Sha1, 0).err(),
        Some(BuildError::ZeroChunkSize)
    );
    assert_eq!(
        root_hash(HashAlgorithm::Sha1, 1024, b"").err(),
        Some(BuildError::EmptyContent)
    );
    let mut bld = MerkleBuilder::new(HashAlgorithm::Sha1, 4).unwrap();
    bld.update(b"ab").unwrap();
    assert_eq!(
        bld.push_chunk(b"cdef"),
        Err(BuildError::PartialChunkPending)
    );
    assert_eq!(
        bld.clone().finish_tree().err(),
        Some(BuildError::TreeNotKept)
    );
    let mut bld = MerkleBuilder::new(HashAlgorithm::Sha1, 4).unwrap();
    assert!(matches!(
        bld.push_chunk(b"abcde"),
        Err(BuildError::BadChunkLength { .. })
    ));
    assert!(matches!(
        bld.push_chunk(b""),
        Err(BuildError::BadChunkLength { .. })
    ));
    assert!(matches!(
        bld.push_leaf_hash(&HashAlgorithm::Sha256.digest(b"x"), 4),
        Err(BuildError::BadHashLength { .. })
    ));
}

#[test]
fn power_of_two_chunk_count_has_the_root_as_single_peak() {
    let data = [3u8; 16 * 64];
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 64, &data).unwrap();
    assert_eq!(bins_of(tree.peaks()), [15]);
    let mut rx = PartialTree::new(
        HashAlgorithm::Sha1,
        64,
        tree.root_hash(),
        ContentSize::Unknown,
    )
    .unwrap();
    assert_eq!(
        rx.verify_chunk(0, &data[..64]),
        Err(VerifyError::SizeUnknown)
    );
    let list: Vec<_> = tree.integrity(3, true, |_| false).unwrap().collect();
    assert_eq!(list[0].0, b(15));
    assert_eq!(rx.verify_chunk_with(3, &data[..64], &list), Ok(()));
    assert_eq!(rx.chunk_count(), Some(16));
    assert_eq!(rx.content_len(), None);
    assert_eq!(
        rx.verify_chunk_with(15, &data[..63], &[]),
        Err(VerifyError::MissingHashes { bin: b(28) })
    );
}

/// VECTORS-IDEAS.md §7: given only the peaks {15, 39, 49} and the root, derive N = 26, then
/// accept the last chunk at 521 bytes and reject 520 and 522.
#[test]
fn automatic_size_detection_on_m74() {
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 1024, M74).unwrap();
    let mut rx = receiver_of_unknown_size(&tree);
    assert_eq!(rx.resolve_size(), Err(VerifyError::SizeUnknown));
    for (bin, h) in tree.peaks() {
        assert_eq!(rx.add_hash(bin, &h), Ok(HashStatus::Pending));
    }
    assert_eq!(rx.resolve_size(), Ok(26));
    assert_eq!(rx.root_bin(), Some(b(31)));
    assert_eq!(bins_of(rx.peaks().unwrap()), [15, 39, 49]);
    // Computed from the peaks: 47 = H(39 ‖ 55), 55 = H(51 ‖ 0), 51 = H(49 ‖ 0).
    assert_eq!(rx.hash(b(47)), tree.hash(b(47)));
    assert!(rx.is_verified(b(60)), "empty subtree is implied");
    let last = &M74[25 * 1024..];
    assert_eq!(last.len(), 521);
    let sibling = [(b(48), tree.hash(b(48)).unwrap())];
    for len in [520, 522] {
        let mut data = M74[25 * 1024..].to_vec();
        data.resize(len, 0);
        assert!(
            rx.verify_chunk_with(25, &data, &sibling).is_err(),
            "{len} bytes"
        );
    }
    assert_eq!(rx.content_len(), None);
    assert_eq!(rx.verify_chunk_with(25, last, &sibling), Ok(()));
    assert_eq!(rx.content_len(), Some(26121));
    // Now the exact length is known: a wrong length is refused before hashing.
    assert_eq!(
        rx.verify_chunk(25, &M74[25 * 1024..][..520]),
        Err(VerifyError::BadLength {
            chunk: 25,
            len: 520
        })
    );
    assert_eq!(rx.verify_chunk(25, last), Ok(()));
}

/// Uncles on the left spine without the peaks (the datagram carrying the peaks was lost):
/// bin 3 (chunks 0..=3) is also the whole peak list of a 4-chunk content, but a chunk at
/// index 5 rules that size out, so the chunk waits for the peaks instead of failing as a
/// peak mismatch (which would brand an honest sender).
#[test]
fn spine_uncles_without_peaks_are_not_a_peak_mismatch() {
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 1024, M74).unwrap();
    let mut rx = receiver_of_unknown_size(&tree);
    let chunk5 = &M74[5 * 1024..6 * 1024];
    let uncles: Vec<_> = tree.integrity(5, false, |_| false).unwrap().collect();
    assert!(
        uncles.iter().any(|(bin, _)| *bin == b(3)),
        "bin 3 is an uncle of chunk 5"
    );
    assert_eq!(
        rx.verify_chunk_with(5, chunk5, &uncles),
        Err(VerifyError::SizeUnknown)
    );
    // The peaks arrive; the same chunk now verifies.
    let peaks: Vec<_> = tree.peaks().collect();
    assert_eq!(
        rx.verify_chunk_with(5, chunk5, &[peaks, uncles].concat()),
        Ok(())
    );
    assert_eq!(rx.chunk_count(), Some(26));
}

/// A receiver that knows only `tree`'s root (SHA-1, 1 KiB chunks), not the content size.
fn receiver_of_unknown_size(tree: &MerkleTree) -> PartialTree {
    PartialTree::new(
        HashAlgorithm::Sha1,
        1024,
        tree.root_hash(),
        ContentSize::Unknown,
    )
    .unwrap()
}

#[test]
fn wrong_peaks_are_rejected_and_dropped() {
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 1024, M74).unwrap();
    let mut rx = receiver_of_unknown_size(&tree);
    let mut peaks: Vec<_> = tree.peaks().collect();
    peaks[1].1 = HashAlgorithm::Sha1.digest(b"forged");
    for (bin, h) in &peaks {
        rx.add_hash(*bin, h).unwrap();
    }
    assert_eq!(rx.resolve_size(), Err(VerifyError::PeaksMismatch));
    assert_eq!(rx.chunk_count(), None);
    // The honest peaks still work afterwards.
    let list: Vec<_> = tree.integrity(0, true, |_| false).unwrap().collect();
    assert_eq!(rx.verify_chunk_with(0, &M74[..1024], &list), Ok(()));
    assert_eq!(rx.chunk_count(), Some(26));
}

#[test]
fn known_size_receiver_rejects_bad_input_with_typed_errors() {
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 1024, M74).unwrap();
    let root = tree.root_hash();
    let mut rx =
        PartialTree::new(HashAlgorithm::Sha1, 1024, root, ContentSize::Bytes(26121)).unwrap();
    assert_eq!(rx.chunk_count(), Some(26));
    assert_eq!(
        rx.verify_chunk(26, b"x"),
        Err(VerifyError::OutOfRange { chunk: 26 })
    );
    assert_eq!(
        rx.verify_chunk(3, &M74[..1000]),
        Err(VerifyError::BadLength {
            chunk: 3,
            len: 1000
        })
    );
    assert_eq!(
        rx.verify_chunk(25, &M74[..522]),
        Err(VerifyError::BadLength {
            chunk: 25,
            len: 522
        })
    );
    assert_eq!(
        rx.verify_chunk(0, &M74[..1024]),
        Err(VerifyError::MissingHashes { bin: b(2) })
    );
    let sha256 = HashAlgorithm::Sha256.digest(b"x");
    assert_eq!(
        rx.add_hash(b(2), &sha256),
        Err(VerifyError::BadHashLength { bin: b(2), len: 32 })
    );
    assert_eq!(
        rx.add_hash(b(63), &tree.root_hash()),
        Err(VerifyError::BinOutOfRange { bin: b(63) })
    );
    assert_eq!(
        rx.add_hash(Bin::NONE, &root),
        Err(VerifyError::BinOutOfRange { bin: Bin::NONE })
    );
    // The empty region is implied all-zero: a non-zero hash there is wrong, zero is known.
    assert_eq!(
        rx.add_hash(b(53), &root),
        Err(VerifyError::HashMismatch { bin: b(53) })
    );
    assert_eq!(
        rx.add_hash(b(53), &HashAlgorithm::Sha1.empty()),
        Ok(HashStatus::Known)
    );
    assert_eq!(rx.add_hash(b(31), &root), Ok(HashStatus::Known));
    // A lone hash whose sibling and parent are verified is checked at once.
    assert_eq!(
        rx.add_hash(b(15), &tree.hash(b(15)).unwrap()),
        Ok(HashStatus::Pending)
    );
    assert_eq!(
        rx.add_hash(b(47), &tree.hash(b(23)).unwrap()),
        Ok(HashStatus::Pending)
    );
    // 15 and the wrong 47 fold into a wrong root.
    let uncles: Vec<_> = tree.uncles(0).unwrap().skip(1).collect();
    assert_eq!(
        rx.verify_chunk_with(0, &M74[..1024], &uncles),
        Err(VerifyError::FoldMismatch {
            chunk: 0,
            bin: b(31)
        })
    );
    // Nothing was recorded; with the right hashes it verifies.
    assert!(!rx.is_verified(b(0)) && !rx.is_verified(b(15)));
    let uncles: Vec<_> = tree.uncles(0).unwrap().collect();
    assert_eq!(rx.verify_chunk_with(0, &M74[..1024], &uncles), Ok(()));
    assert_eq!(
        rx.add_hash(b(47), &tree.hash(b(23)).unwrap()),
        Err(VerifyError::HashMismatch { bin: b(47) })
    );
    // Chunk 1's hash is verified (sibling of chunk 0): a corrupt chunk 1 is certainly bad.
    let mut bad = M74[1024..2048].to_vec();
    bad[7] ^= 1;
    assert_eq!(
        rx.verify_chunk(1, &bad),
        Err(VerifyError::ChunkMismatch { chunk: 1 })
    );
    assert_eq!(rx.verify_chunk(1, &M74[1024..2048]), Ok(()));
    assert_eq!(rx.verify_chunk(1, &M74[1024..2048]), Ok(()));
    // Candidates for chunk 4 that do not fold into verified bin 11.
    assert_eq!(
        rx.add_hash(b(13), &tree.hash(b(13)).unwrap()),
        Ok(HashStatus::Pending)
    );
    assert_eq!(rx.add_hash(b(10), &root), Ok(HashStatus::Pending));
    assert_eq!(
        rx.verify_chunk(4, &M74[4096..5120]),
        Err(VerifyError::FoldMismatch {
            chunk: 4,
            bin: b(11)
        })
    );
}

#[test]
fn pending_candidates_are_bounded() {
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 16, &[5u8; 16 * 1000]).unwrap();
    let mut rx = PartialTree::new(
        HashAlgorithm::Sha1,
        16,
        tree.root_hash(),
        ContentSize::Chunks(1000),
    )
    .unwrap();
    let junk = HashAlgorithm::Sha1.digest(b"junk");
    for c in 0..1000 {
        rx.add_hash(Bin::leaf(c).unwrap(), &junk).unwrap();
    }
    assert_eq!(rx.pending_count(), MAX_PENDING);
    // Junk never stops an honest chunk with its own hashes.
    let list: Vec<_> = tree.uncles(999).unwrap().collect();
    assert_eq!(rx.verify_chunk_with(999, &[5u8; 16], &list), Ok(()));
    rx.clear_pending();
    assert_eq!(rx.pending_count(), 0);
}

/// Live content: verification against a trusted subtree root (a signed munro).
#[test]
fn anchored_at_a_trusted_subtree() {
    let data: Vec<u8> = (0..64 * 100).map(|i| (i % 251) as u8).collect();
    let tree = MerkleTree::build(HashAlgorithm::Sha256, 100, &data).unwrap();
    // Munro: bin 23 = chunks 8..=15.
    let mut rx = PartialTree::with_trusted_subtree(
        HashAlgorithm::Sha256,
        100,
        b(23),
        tree.hash(b(23)).unwrap(),
    )
    .unwrap();
    assert_eq!(rx.chunk_count(), None);
    let chunk = |c: usize| &data[c * 100..(c + 1) * 100];
    // Only the uncles below the munro are needed.
    let list: Vec<_> = tree.integrity(9, false, |x| x == b(23)).unwrap().collect();
    assert_eq!(bins_of(list.iter().copied()), [27, 21, 16]);
    assert_eq!(rx.verify_chunk_with(9, chunk(9), &list), Ok(()));
    // Outside the munro nothing verifies, whatever hashes are offered.
    let list: Vec<_> = tree.uncles(0).unwrap().collect();
    assert!(matches!(
        rx.verify_chunk_with(0, chunk(0), &list),
        Err(VerifyError::MissingHashes { .. })
    ));
    rx.add_trusted(b(7), &tree.hash(b(7)).unwrap()).unwrap();
    let list: Vec<_> = tree.integrity(0, false, |x| x == b(7)).unwrap().collect();
    assert_eq!(rx.verify_chunk_with(0, chunk(0), &list), Ok(()));
    assert_eq!(
        rx.verify_chunk(9, &chunk(9)[..50]),
        Err(VerifyError::ChunkMismatch { chunk: 9 })
    );
    // A lone hash whose sibling and parent are verified is checked at once.
    rx.add_trusted(b(47), &tree.hash(b(47)).unwrap()).unwrap();
    rx.add_trusted(b(39), &tree.hash(b(39)).unwrap()).unwrap();
    assert_eq!(
        rx.add_hash(b(55), &tree.hash(b(39)).unwrap()),
        Err(VerifyError::HashMismatch { bin: b(55) })
    );
    assert_eq!(
        rx.add_hash(b(55), &tree.hash(b(55)).unwrap()),
        Ok(HashStatus::Verified)
    );
    assert_eq!(
        rx.add_hash(b(55), &tree.hash(b(55)).unwrap()),
        Ok(HashStatus::Known)
    );
    assert!(matches!(
        PartialTree::with_trusted_subtree(HashAlgorithm::Sha256, 100, Bin::NONE, tree.root_hash()),
        Err(ConfigError::BadAnchor)
    ));
}

#[test]
fn config_errors() {
    let root = HashAlgorithm::Sha1.digest(b"x");
    let new = |cs, size| PartialTree::new(HashAlgorithm::Sha1, cs, root, size).err();
    assert_eq!(
        new(0, ContentSize::Unknown),
        Some(ConfigError::ZeroChunkSize)
    );
    assert_eq!(
        new(1024, ContentSize::Bytes(0)),
        Some(ConfigError::BadContentSize)
    );
    assert_eq!(
        new(1024, ContentSize::Chunks(0)),
        Some(ConfigError::BadContentSize)
    );
    assert_eq!(
        new(1, ContentSize::Chunks(MAX_CHUNKS + 1)),
        Some(ConfigError::BadContentSize)
    );
    assert!(new(1, ContentSize::Chunks(MAX_CHUNKS)).is_none());
    assert!(matches!(
        PartialTree::new(HashAlgorithm::Sha256, 1024, root, ContentSize::Unknown),
        Err(ConfigError::BadHashLength {
            len: 20,
            expected: 32
        })
    ));
}

/// A leecher serves what it verified: its INTEGRITY lists equal the seeder's.
#[test]
fn leecher_serves_integrity_like_a_seeder() {
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 1024, M74).unwrap();
    let mut rx = PartialTree::new(
        HashAlgorithm::Sha1,
        1024,
        tree.root_hash(),
        ContentSize::Unknown,
    )
    .unwrap();
    let list: Vec<_> = tree.integrity(5, true, |_| false).unwrap().collect();
    rx.verify_chunk_with(5, &M74[5 * 1024..6 * 1024], &list)
        .unwrap();
    let served: Vec<_> = rx.integrity(5, true, |_| false).unwrap().collect();
    assert_eq!(served, list);
    assert_eq!(
        rx.integrity(20, false, |_| false).err(),
        Some(IntegrityError::MissingHash { bin: b(42) })
    );
    assert_eq!(
        tree.integrity(26, false, |_| false).err(),
        Some(IntegrityError::OutOfRange { chunk: 26 })
    );
}

fn content_and_chunk_size() -> impl Strategy<Value = (Vec<u8>, u32)> {
    (1usize..3000, 1u32..200, any::<u64>()).prop_map(|(len, cs, seed)| {
        let mut x = seed | 1;
        let data = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        (data, cs)
    })
}

fn algorithm() -> impl Strategy<Value = HashAlgorithm> {
    prop_oneof![Just(HashAlgorithm::Sha1), Just(HashAlgorithm::Sha256)]
}

fn size_mode() -> impl Strategy<Value = u8> {
    0u8..3
}

fn size_for(mode: u8, len: usize, cs: u32) -> ContentSize {
    match mode {
        0 => ContentSize::Unknown,
        1 => ContentSize::Chunks(len.div_ceil(cs as usize) as u64),
        _ => ContentSize::Bytes(len as u64),
    }
}

/// Chunk `c` of `data`.
fn chunk_of(data: &[u8], cs: u32, c: u64) -> &[u8] {
    let start = c as usize * cs as usize;
    &data[start..(start + cs as usize).min(data.len())]
}

/// A random permutation of `0..n` from a seed.
fn shuffled(n: u64, seed: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).collect();
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.swap(i, (x >> 33) as usize % (i + 1));
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every node hash of the tree equals the RFC's recursive definition, and the streaming
    /// root-only builder agrees.
    #[test]
    fn tree_matches_the_recursive_definition((data, cs) in content_and_chunk_size(), alg in algorithm()) {
        let tree = MerkleTree::build(alg, cs, &data).unwrap();
        let n = data.len().div_ceil(cs as usize) as u64;
        prop_assert_eq!(tree.chunk_count(), n);
        let root_bin = Bin::root_covering(n).unwrap();
        prop_assert_eq!(tree.root_bin(), root_bin);
        prop_assert_eq!(tree.root_hash(), naive_node(alg, cs as usize, &data, root_bin));
        for raw in 0..=root_bin.base_right().unwrap().raw() {
            let bin = Bin::from_raw(raw);
            prop_assert_eq!(tree.hash(bin), Some(naive_node(alg, cs as usize, &data, bin)));
        }
        prop_assert_eq!(tree.hash(Bin::from_raw(root_bin.raw() * 2 + 1)), None);
        prop_assert_eq!(root_hash(alg, cs, &data).unwrap(), tree.root_hash());
        let peaks: Vec<Bin> = tree.peaks().map(|(bin, _)| bin).collect();
        prop_assert_eq!(peaks, Bin::peaks(n).collect::<Vec<_>>());
    }

    /// Every chunk verifies, in random order, with the INTEGRITY lists the sender produces
    /// from the receiver's acknowledgements, for every way of knowing the size; the
    /// receiver ends up knowing the exact size and holds no candidates.
    #[test]
    fn every_chunk_verifies_in_random_order(
        (data, cs) in content_and_chunk_size(),
        alg in algorithm(),
        mode in size_mode(),
        seed in any::<u64>(),
        stale_sender in any::<bool>(),
    ) {
        let tree = MerkleTree::build(alg, cs, &data).unwrap();
        let n = tree.chunk_count();
        let mut rx = PartialTree::new(alg, cs, tree.root_hash(), size_for(mode, data.len(), cs)).unwrap();
        let mut acked = Binmap::new();
        for c in shuffled(n, seed) {
            let known = AckedHashes::new(&acked);
            let with_peaks = mode == 0 && acked.is_empty();
            // A stale sender assumes the receiver knows nothing: redundant hashes are fine.
            let list: Vec<_> = if stale_sender {
                tree.integrity(c, with_peaks, |_| false).unwrap().collect()
            } else {
                tree.integrity(c, with_peaks, |x| known.knows(x)).unwrap().collect()
            };
            let r = rx.verify_chunk_with(c, chunk_of(&data, cs, c), &list);
            prop_assert_eq!(r, Ok(()), "chunk {}", c);
            acked.insert(c);
        }
        prop_assert_eq!(rx.content_len(), Some(data.len() as u64));
        prop_assert_eq!(rx.pending_count(), 0);
        // Every node is verified now, with the seeder's values.
        for raw in (0..=tree.root_bin().base_right().unwrap().raw()).step_by(3) {
            let bin = Bin::from_raw(raw);
            prop_assert_eq!(rx.hash(bin), tree.hash(bin));
        }
    }

    /// A receiver that already verified some chunks (so holds some hashes) verifies the rest,
    /// and a flipped bit in a chunk or in any hash sent is rejected without harming the
    /// tree: the honest datagram then verifies.
    #[test]
    fn flipped_bits_are_rejected_and_the_tree_stays_usable(
        (data, cs) in content_and_chunk_size(),
        alg in algorithm(),
        mode in size_mode(),
        seed in any::<u64>(),
        prefix in 0usize..20,
        flips in proptest::collection::vec((any::<bool>(), any::<usize>(), 0u32..8), 1..4),
    ) {
        let tree = MerkleTree::build(alg, cs, &data).unwrap();
        let n = tree.chunk_count();
        let mut rx = PartialTree::new(alg, cs, tree.root_hash(), size_for(mode, data.len(), cs)).unwrap();
        let mut acked = Binmap::new();
        let order = shuffled(n, seed);
        let prefix = prefix.min(order.len());
        for &c in &order[..prefix] {
            let known = AckedHashes::new(&acked);
            let list: Vec<_> = tree.integrity(c, mode == 0 && acked.is_empty(), |x| known.knows(x)).unwrap().collect();
            rx.verify_chunk_with(c, chunk_of(&data, cs, c), &list).unwrap();
            acked.insert(c);
        }
        for &c in &order[prefix..] {
            let known = AckedHashes::new(&acked);
            let list: Vec<_> = tree.integrity(c, mode == 0 && acked.is_empty(), |x| known.knows(x)).unwrap().collect();
            let chunk = chunk_of(&data, cs, c);
            for &(in_hash, at, bit) in &flips {
                if in_hash && !list.is_empty() {
                    let mut bad = list.clone();
                    let i = at % bad.len();
                    let mut bytes = bad[i].1.as_bytes().to_vec();
                    let j = (at / bad.len()) % bytes.len();
                    bytes[j] ^= 1 << bit;
                    bad[i].1 = HashValue::from_slice(&bytes).unwrap();
                    prop_assert!(rx.verify_chunk_with(c, chunk, &bad).is_err(), "hash {} of chunk {}", i, c);
                } else {
                    let mut bad = chunk.to_vec();
                    let j = at % bad.len();
                    bad[j] ^= 1 << bit;
                    prop_assert!(rx.verify_chunk_with(c, &bad, &list).is_err(), "chunk {}", c);
                }
                // Nothing wrong was recorded along the chunk's uncle chain.
                let mut node = Bin::leaf(c).unwrap();
                while node != tree.root_bin() {
                    for bin in [node, node.sibling().unwrap()] {
                        let h = rx.hash(bin);
                        prop_assert!(h.is_none() || h == tree.hash(bin), "bin {} poisoned", bin);
                    }
                    node = node.parent().unwrap();
                }
            }
            prop_assert_eq!(rx.verify_chunk_with(c, chunk, &list), Ok(()), "chunk {}", c);
            acked.insert(c);
        }
        prop_assert_eq!(rx.content_len(), Some(data.len() as u64));
    }
}

#[test]
fn large_tree_memory_is_about_two_hashes_per_chunk() {
    let n = 1000u64;
    let data = vec![1u8; n as usize * 64];
    let tree = MerkleTree::build(HashAlgorithm::Sha1, 64, &data).unwrap();
    assert!(tree.heap_bytes() <= (2 * n as usize + 11) * 20);
}

proptest! {
    /// `lowest_known_layer` answers `knows` for every node on a chunk's path: the ancestors
    /// of its leaf and their siblings (the uncles).
    #[test]
    fn lowest_known_layer_matches_knows_on_the_path(
        runs in proptest::collection::vec((0u64..5000, 1u64..40), 0..12),
        chunk in 0u64..5000,
    ) {
        let mut acked = Binmap::new();
        for (start, len) in runs {
            acked.insert_range(start..start + len);
        }
        let view = AckedHashes::new(&acked);
        let lowest = view.lowest_known_layer(chunk);
        let leaf = Bin::leaf(chunk).unwrap();
        for layer in 0..20 {
            let node = leaf.ancestor_at(layer).unwrap();
            let expect = lowest.is_some_and(|l| layer >= l);
            prop_assert_eq!(view.knows(node), expect, "ancestor at layer {}", layer);
            let uncle = node.sibling().unwrap();
            prop_assert_eq!(view.knows(uncle), expect, "uncle at layer {}", layer);
        }
    }
}
