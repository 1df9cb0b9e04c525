//! Runs the engine benchmark's 64 MiB transfer a fixed number of times, each after a raw SHA-1
//! pass over the same chunks, and prints both times (median and minimum) and their ratios: a quick same-run
//! measurement, and a fixed workload to profile. Each round also runs the transfer with each
//! endpoint on a thread of its own. A last run times each endpoint's calls separately: what the
//! leecher and the seeder each cost on a core of their own.
//!
//! `cargo run --release -p ppspp-benches --example transfer -- [RUNS]` (default 5).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use ppspp_benches::transfer::{CHUNK, content, transfer, transfer_split, transfer_threaded};
use ppspp_core::hash::HashAlgorithm;
use ppspp_core::merkle::MerkleTree;

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map_or(5, |a| a.parse().expect("RUNS is a number"));
    let data = content();
    let tree = Arc::new(MerkleTree::build(HashAlgorithm::Sha1, CHUNK, &data).unwrap());
    let (mut sha, mut xfer, mut threaded) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        for chunk in data.chunks(CHUNK as usize) {
            black_box(HashAlgorithm::Sha1.digest(chunk));
        }
        sha.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        black_box(transfer(&tree, &data));
        xfer.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        black_box(transfer_threaded(&tree, &data));
        threaded.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // One more run timing each side's calls: what the leecher and the seeder each cost.
    let split = transfer_split(&tree, &data);
    let (s, x, th) = (median(&mut sha), median(&mut xfer), median(&mut threaded));
    let (s0, x0) = (sha[0], xfer[0]);
    println!(
        "{runs} runs: medians sha1 {s:.1} ms, transfer {x:.1} ms, ratio {:.3}; \
         minima {s0:.1} ms, {x0:.1} ms, ratio {:.3}",
        s / x,
        s0 / x0
    );
    println!(
        "each endpoint on its own thread: median {th:.1} ms, ratio {:.3}; minimum {:.1} ms",
        s / th,
        threaded[0]
    );
    let (l, sd) = (
        split.leecher.as_secs_f64() * 1e3,
        split.seeder.as_secs_f64() * 1e3,
    );
    println!(
        "one timed run: leecher {l:.1} ms (sha1 median / leecher = {:.3}), seeder {sd:.1} ms \
         (sha1 median / seeder = {:.3})",
        s / l,
        s / sd
    );
}
