//! Merkle hashing and verification against raw hashing of the same chunks, and availability
//! map operations at a million chunks.
//!
//! Run with `cargo bench -p ppspp-benches --bench merkle`. Each group measures a baseline in
//! the same run: `raw_*` hashes every chunk of the same 64 MiB buffer with
//! the bare `sha1`/`sha2` crates, so `tree_*`/`root_*`/`verify_*` divided by it (in
//! throughput) is the cost of the tree on top of the unavoidable leaf hashing.
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ppspp_core::Bin;
use ppspp_core::binmap::Binmap;
use ppspp_core::hash::{HashAlgorithm, HashValue};
use ppspp_core::merkle::{AckedHashes, ContentSize, MerkleBuilder, MerkleTree, PartialTree};
use ppspp_core::testing::content;
use sha1::Digest;

/// The content size for the hashing benchmarks.
const CONTENT: usize = 64 << 20;
/// Chunks in the availability map benchmarks.
const MAP_CHUNKS: u64 = 1 << 20;

/// Hashes every chunk with the bare RustCrypto digest: the baseline.
fn raw_hash<D: Digest>(data: &[u8], chunk_size: usize) {
    for chunk in data.chunks(chunk_size) {
        black_box(D::digest(chunk));
    }
}

fn raw(alg: HashAlgorithm, data: &[u8], chunk_size: usize) {
    match alg {
        HashAlgorithm::Sha1 => raw_hash::<sha1::Sha1>(data, chunk_size),
        HashAlgorithm::Sha256 => raw_hash::<sha2::Sha256>(data, chunk_size),
        _ => unimplemented!("only SHA-1 and SHA-256 are benchmarked"),
    }
}

/// The least hashing any tree needs: every chunk's hash plus `N − 1` parent hashes of two
/// digests, through the same `Digest` API and with no bookkeeping. The gap between this and
/// `raw` is the cost of the parent compressions themselves (for SHA-256 a 64-byte parent
/// input takes two compression calls); the gap between `tree`/`verify` and this is ours.
fn floor_hash<D: Digest>(data: &[u8], chunk_size: usize) {
    let mut prev = D::digest(b"");
    for (i, chunk) in data.chunks(chunk_size).enumerate() {
        let leaf = D::digest(chunk);
        if i > 0 {
            prev = D::new().chain_update(&prev).chain_update(&leaf).finalize();
        } else {
            prev = leaf;
        }
    }
    black_box(prev);
}

fn floor(alg: HashAlgorithm, data: &[u8], chunk_size: usize) {
    match alg {
        HashAlgorithm::Sha1 => floor_hash::<sha1::Sha1>(data, chunk_size),
        HashAlgorithm::Sha256 => floor_hash::<sha2::Sha256>(data, chunk_size),
        _ => unimplemented!("only SHA-1 and SHA-256 are benchmarked"),
    }
}

const ALGS: [HashAlgorithm; 2] = [HashAlgorithm::Sha1, HashAlgorithm::Sha256];
const CHUNK_SIZES: [(u32, &str); 2] = [(1024, "1KiB"), (8192, "8KiB")];

fn build(c: &mut Criterion) {
    let data = content(CONTENT, 1);
    for (cs, name) in CHUNK_SIZES {
        let mut g = c.benchmark_group(format!("build_{name}"));
        g.throughput(Throughput::Bytes(CONTENT as u64));
        for alg in ALGS {
            g.bench_function(format!("raw_{alg}"), |b| {
                b.iter(|| raw(alg, &data, cs as usize));
            });
            g.bench_function(format!("floor_{alg}"), |b| {
                b.iter(|| floor(alg, &data, cs as usize));
            });
            g.bench_function(format!("root_{alg}"), |b| {
                b.iter(|| {
                    let mut m = MerkleBuilder::new(alg, cs).unwrap();
                    m.update(&data).unwrap();
                    black_box(m.finish().unwrap())
                });
            });
            g.bench_function(format!("tree_{alg}"), |b| {
                b.iter(|| black_box(MerkleTree::build(alg, cs, &data).unwrap()));
            });
        }
        g.finish();
    }
}

/// The INTEGRITY lists of a download, back to back (as they would sit in the received
/// datagrams), with each chunk's range in the flat list.
struct Lists {
    flat: Vec<(Bin, HashValue)>,
    ranges: Vec<(usize, usize)>,
}

/// The INTEGRITY lists a seeder sends for an in-order download where every chunk is
/// acknowledged before the next is sent.
fn in_order_lists(tree: &MerkleTree) -> Lists {
    let mut acked = Binmap::new();
    let mut flat = Vec::new();
    let mut ranges = Vec::new();
    for c in 0..tree.chunk_count() {
        let known = AckedHashes::new(&acked);
        let start = flat.len();
        flat.extend(tree.integrity(c, false, |b| known.knows(b)).unwrap());
        ranges.push((start, flat.len()));
        acked.insert(c);
    }
    Lists { flat, ranges }
}

fn verify(c: &mut Criterion) {
    let data = content(CONTENT, 2);
    for (cs, name) in CHUNK_SIZES {
        let mut g = c.benchmark_group(format!("verify_{name}"));
        g.throughput(Throughput::Bytes(CONTENT as u64));
        for alg in ALGS {
            let tree = MerkleTree::build(alg, cs, &data).unwrap();
            let Lists { flat, ranges } = in_order_lists(&tree);
            let hashes = flat.len();
            eprintln!(
                "verify_{name} {alg}: {} chunks, {hashes} INTEGRITY hashes sent",
                tree.chunk_count()
            );
            g.bench_function(format!("raw_{alg}"), |b| {
                b.iter(|| raw(alg, &data, cs as usize));
            });
            g.bench_function(format!("verify_{alg}"), |b| {
                b.iter(|| {
                    let size = ContentSize::Bytes(CONTENT as u64);
                    let mut rx = PartialTree::new(alg, cs, tree.root_hash(), size).unwrap();
                    for (i, (chunk, &(a, z))) in data.chunks(cs as usize).zip(&ranges).enumerate() {
                        rx.verify_chunk_with(i as u64, chunk, &flat[a..z]).unwrap();
                    }
                    black_box(rx.verified_count())
                });
            });
        }
        g.finish();
    }
}

/// A map of `MAP_CHUNKS` chunks with about 1% of them missing, at random.
fn holey_map(seed: u64) -> Binmap {
    let mut map = Binmap::from_range(0..MAP_CHUNKS);
    let mut x = seed | 1;
    for _ in 0..MAP_CHUNKS / 100 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        map.remove((x >> 33) % MAP_CHUNKS);
    }
    map
}

/// `0..n` in a pseudo-random order.
fn shuffled(n: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).collect();
    let mut x = 7u64;
    for i in (1..v.len()).rev() {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        v.swap(i, (x >> 33) as usize % (i + 1));
    }
    v
}

fn binmap(c: &mut Criterion) {
    let mut g = c.benchmark_group("binmap_1M");
    g.throughput(Throughput::Elements(MAP_CHUNKS));
    let order = shuffled(MAP_CHUNKS);
    let holey = holey_map(3);
    let other = holey_map(4);
    eprintln!(
        "binmap: {} chunks, 1% holes -> {} runs",
        holey.count(),
        holey.run_count()
    );
    g.bench_function("insert_in_order", |b| {
        b.iter(|| {
            let mut m = Binmap::new();
            for i in 0..MAP_CHUNKS {
                m.insert(i);
            }
            black_box(m.run_count())
        });
    });
    g.bench_function("insert_random_order", |b| {
        b.iter(|| {
            let mut m = Binmap::new();
            for &i in &order {
                m.insert(i);
            }
            black_box(m.run_count())
        });
    });
    g.bench_function("contains_1pct_holes", |b| {
        b.iter(|| order.iter().filter(|&&i| holey.contains(i)).count());
    });
    g.bench_function("largest_complete_bin_1pct_holes", |b| {
        b.iter(|| {
            order
                .iter()
                .filter_map(|&i| holey.largest_complete_bin(i))
                .count()
        });
    });
    g.bench_function("first_missing_scan_1pct_holes", |b| {
        b.iter(|| {
            let (mut at, mut gaps) = (0, 0u64);
            while at < MAP_CHUNKS {
                at = holey.first_missing(at) + 1;
                gaps += 1;
            }
            black_box(gaps)
        });
    });
    g.bench_function("difference_ranges_1pct_holes", |b| {
        b.iter(|| holey.difference_ranges(&other).count());
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = build, verify, binmap
}
criterion_main!(benches);
