//! Protocol engine benchmarks.
//!
//! - `engine/transfer_64MiB`: a seeder and a leecher `Endpoint` in memory move 64 MiB in
//!   1 KiB chunks (handshake, INTEGRITY, DATA, ACK, HAVE, LEDBAT, verification, store
//!   writes). The baseline, `engine/sha1_64MiB`, is raw SHA-1 over the same 64 Ki chunks in
//!   the same run: the leecher must do at least that much hashing.
//! - `engine/transfer_64MiB_{leecher,seeder}_side`: the same transfer, timing only the calls
//!   into one endpoint (each side's cost on a core of its own).
//! - `engine/transfer_64MiB_two_threads`: the same transfer with each endpoint on a thread of
//!   its own (two cores, as two hosts), datagrams handed over 64 at a time in one shared
//!   buffer like the UDP driver's GSO/GRO buffers, on the wall clock: the throughput the
//!   protocol delivers when each side has a core.
//! - `engine/datagram_roundtrip`: `handle_datagram` + `poll_transmit` cost per DATA datagram
//!   and its ACK, in steady state.
//! - memory: bytes per idle established channel and for an endpoint with 10,000 channels,
//!   counted with a counting global allocator; printed at the end.
//!
//! Run: `cargo bench -p ppspp-benches --bench engine`.
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group};
use ppspp_benches::transfer::{
    CHUNK, LEECHER, SEEDER, SIZE, config, content, pair, transfer, transfer_split,
    transfer_threaded,
};
use ppspp_core::hash::HashAlgorithm;
use ppspp_core::merkle::MerkleTree;
use ppspp_core::testing::drain;
use ppspp_core::{Endpoint, Instant, MemoryStore, SwarmConfig};

/// Counts live heap bytes, to measure what channels cost.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates to the system allocator and only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn bench_engine(c: &mut Criterion) {
    let data = content();
    let tree = Arc::new(MerkleTree::build(HashAlgorithm::Sha1, CHUNK, &data).unwrap());
    let mut g = c.benchmark_group("engine");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.bench_function("sha1_64MiB", |b| {
        b.iter(|| {
            for chunk in data.chunks(CHUNK as usize) {
                black_box(HashAlgorithm::Sha1.digest(chunk));
            }
        })
    });
    let datagrams = transfer(&tree, &data);
    println!("transfer_64MiB: {datagrams} datagrams per transfer");
    g.bench_function("transfer_64MiB", |b| b.iter(|| transfer(&tree, &data)));
    // The same transfer, counting only the time spent inside one side's calls: what each
    // endpoint costs on a core of its own (in a real transfer, the slower side bounds the
    // throughput).
    g.bench_function("transfer_64MiB_leecher_side", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| transfer_split(&tree, &data).leecher)
                .sum()
        })
    });
    g.bench_function("transfer_64MiB_seeder_side", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| transfer_split(&tree, &data).seeder)
                .sum()
        })
    });
    // Each endpoint on a thread (a core) of its own, datagrams handed over in batches of 64
    // sharing one buffer (as the UDP driver's GSO/GRO buffers), on the wall clock.
    g.bench_function("transfer_64MiB_two_threads", |b| {
        b.iter(|| transfer_threaded(&tree, &data))
    });
    g.finish();
}

/// Memory of idle established channels on a responder: `n` peers handshake and prove their
/// address; returns live heap bytes added.
fn channel_memory(n: u32) -> usize {
    let data = vec![7u8; 64 * 1024];
    let tree = Arc::new(MerkleTree::build(HashAlgorithm::Sha1, CHUNK, &data).unwrap());
    let now = Instant::from_secs(1);
    let mut cfg = config(3);
    cfg.max_half_open(100_000);
    let mut server = Endpoint::new(cfg, now);
    server
        .add_swarm(
            now,
            SwarmConfig::seed(tree.clone()),
            Box::new(MemoryStore::with_content(CHUNK, data)),
        )
        .unwrap();
    let mut hs = vec![0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1, 2, 0, 20];
    hs.extend_from_slice(tree.root_hash().as_bytes());
    hs.extend_from_slice(&[3, 1, 4, 0, 6, 2, 0xff]);
    let mut buf = vec![0u8; 2048];
    let before = LIVE.load(Ordering::Relaxed);
    for i in 0..n {
        let from = SocketAddr::new(std::net::Ipv4Addr::from(0x0a00_0000 + i).into(), 7000);
        hs[5..9].copy_from_slice(&(i + 1).to_be_bytes());
        server.handle_datagram(now, from, Bytes::copy_from_slice(&hs));
        let mut chan_q = None;
        let reply = |_, d: &[u8]| {
            // The reply's HANDSHAKE carries the server's channel ID at bytes 5..9.
            if d[4] == 0 && d.len() >= 9 {
                chan_q = Some([d[5], d[6], d[7], d[8]]);
            }
        };
        drain(&mut server, now, &mut buf, reply, drop);
        // The third datagram (a keep-alive to chanQ) proves the address.
        let q = chan_q.expect("handshake answered");
        server.handle_datagram(now, from, Bytes::copy_from_slice(&q));
        drain(&mut server, now, &mut buf, |_, _| {}, drop);
    }
    assert_eq!(server.stats().channels, u64::from(n));
    let after = LIVE.load(Ordering::Relaxed);
    drop(black_box(server));
    after - before
}

fn bench_datagram(c: &mut Criterion) {
    // Steady state: one DATA datagram through the leecher and one ACK back through the seeder.
    let data = vec![5u8; 4 << 20];
    let tree = Arc::new(MerkleTree::build(HashAlgorithm::Sha1, CHUNK, &data).unwrap());
    let mut g = c.benchmark_group("engine");
    g.bench_function("datagram_roundtrip", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let sa: SocketAddr = SEEDER.parse().unwrap();
                let la: SocketAddr = LEECHER.parse().unwrap();
                let mut now = Instant::from_secs(1);
                let store = Box::new(MemoryStore::with_content(CHUNK, data.clone()));
                let (mut seeder, mut leecher, _) = pair(now, &tree, store, None);
                let mut buf = vec![0u8; 2048];
                let start = std::time::Instant::now();
                let mut moved = 0u64;
                while moved < 4096 && done < iters {
                    while let Some(t) = leecher.poll_transmit(now, &mut buf) {
                        seeder.handle_datagram(now, la, Bytes::copy_from_slice(&buf[..t.size]));
                    }
                    while let Some(t) = seeder.poll_transmit(now, &mut buf) {
                        leecher.handle_datagram(now, sa, Bytes::copy_from_slice(&buf[..t.size]));
                        moved += 1;
                        done += 1;
                    }
                    now += std::time::Duration::from_micros(100);
                    seeder.handle_timeout(now);
                    leecher.handle_timeout(now);
                    while seeder.poll_event().is_some() {}
                    while leecher.poll_event().is_some() {}
                }
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench_engine, bench_datagram);

/// Runs the benchmarks, then prints the ratios measured in this run.
fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    ppspp_benches::print_ratio(
        "sha1(64 MiB) / transfer(64 MiB) (throughput ratio, target >= 0.5)",
        "engine/sha1_64MiB",
        "engine/transfer_64MiB",
    );
    ppspp_benches::print_ratio(
        "sha1(64 MiB) / leecher side of the transfer",
        "engine/sha1_64MiB",
        "engine/transfer_64MiB_leecher_side",
    );
    ppspp_benches::print_ratio(
        "sha1(64 MiB) / seeder side of the transfer",
        "engine/sha1_64MiB",
        "engine/transfer_64MiB_seeder_side",
    );
    ppspp_benches::print_ratio(
        "sha1(64 MiB) / transfer(64 MiB) with each endpoint on its own thread (throughput ratio)",
        "engine/sha1_64MiB",
        "engine/transfer_64MiB_two_threads",
    );
    let one = channel_memory(1_000);
    let ten = channel_memory(10_000);
    println!(
        "memory: {} bytes per idle channel (1,000 channels: {one} bytes)",
        one / 1_000
    );
    println!(
        "memory: endpoint with 10,000 channels: {ten} bytes ({} per channel)",
        ten / 10_000
    );
}
