//! Loopback speed: moves a file seed → get over 127.0.0.1 with two drivers on two threads
//! (file stores on both sides, every chunk verified), and in the same run hashes the same
//! bytes with plain SHA-1 in 1 KiB blocks as the baseline.
//!
//! ```text
//! cargo run --release -p ppspp-udp --example loopback_speed [-- MIB [CHUNK_SIZE]]
//! ```
//!
//! Defaults: 64 MiB, 1024-byte chunks, SHA-1 (what libswift uses). Prints the transfer rate,
//! the SHA-1 rate and their ratio, and the socket counters (datagrams, system calls, kernel
//! drops, retransmissions).

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppspp_core::hash::HashAlgorithm;
use ppspp_core::{Event, SwarmConfig, SwarmContent};
use ppspp_udp::store::{FileStore, seed_cache};
use ppspp_udp::{Driver, DriverConfig};

fn content(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map_or(Ok(64), |a| a.parse())?;
    let chunk_size: u32 = args.next().map_or(Ok(1024), |a| a.parse())?;
    let len = mib << 20;
    let dir = std::env::temp_dir().join(format!("ppspp-loopback-speed-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let src = dir.join("content");
    let out = dir.join("out");
    let data = content(len);
    std::fs::write(&src, &data)?;

    // Baseline: raw SHA-1 over the same bytes, block by block.
    let t = Instant::now();
    let mut acc = 0u8;
    for block in data.chunks(chunk_size as usize) {
        acc ^= HashAlgorithm::Sha1.digest(block).as_bytes()[0];
    }
    let sha_time = t.elapsed();
    std::hint::black_box(acc);

    // The seeder's tree (not timed as transfer; printed).
    let t = Instant::now();
    let tree = Arc::new(seed_cache::hash_file(
        &src,
        HashAlgorithm::Sha1,
        chunk_size,
    )?);
    let tree_time = t.elapsed();
    let swarm_id = tree.root_hash();

    // The engine is not `Send` (its store and congestion factory are plain trait objects), so
    // each driver is built on the thread that runs it.
    let (tx, rx) = std::sync::mpsc::channel();
    let (seed_src, seed_tree) = (src.clone(), tree.clone());
    let seed_thread = std::thread::spawn(move || {
        let mut seed_cfg = DriverConfig::new();
        seed_cfg.for_chunk_size(chunk_size);
        let mut seeder =
            Driver::bind("127.0.0.1:0".parse().expect("address"), seed_cfg).expect("seeder socket");
        let store = FileStore::open_seed(&seed_src, chunk_size, len as u64).expect("seed store");
        let now = seeder.now();
        seeder
            .endpoint_mut()
            .add_swarm(now, SwarmConfig::seed(seed_tree), Box::new(store))
            .expect("seed swarm");
        tx.send((seeder.local_addr(), seeder.stop_handle()))
            .expect("main thread waits");
        let _ = seeder.run_until(None, |_, _| ControlFlow::<()>::Continue(()));
        let stats = seeder.stats();
        let ep = seeder.endpoint().stats();
        (stats, ep)
    });
    let (seed_addr, seed_stop) = rx.recv()?;

    let mut get_cfg = DriverConfig::new();
    get_cfg.for_chunk_size(chunk_size);
    let mut getter = Driver::bind("127.0.0.1:0".parse()?, get_cfg)?;
    let part = dir.join("out.part");
    let dstore = FileStore::create_download(&part, &out, chunk_size, false)?;
    dstore.preallocate(len as u64)?;
    let now = getter.now();
    let mut gcfg = SwarmConfig::new(
        swarm_id,
        HashAlgorithm::Sha1,
        chunk_size,
        SwarmContent::Empty {
            size: Some(len as u64),
        },
    );
    if let Some(n) = std::env::var("MAX_REQ").ok().and_then(|v| v.parse().ok()) {
        gcfg.max_requests_per_peer(n);
    }
    let swarm = getter
        .endpoint_mut()
        .add_swarm(now, gcfg, Box::new(dstore.clone()))?;
    let start = Instant::now();
    let now = getter.now();
    getter.endpoint_mut().connect(now, swarm, seed_addr)?;
    let done = getter.run_until(Some(start + Duration::from_secs(600)), |_, ev| match ev {
        Event::SwarmComplete { .. } => ControlFlow::Break(Ok(())),
        Event::StoreFailure { error, .. } => ControlFlow::Break(Err(error.to_string())),
        _ => ControlFlow::Continue(()),
    })?;
    let took = start.elapsed();
    let gstats = getter.stats();
    let gep = getter.endpoint().stats();
    getter.shutdown()?;
    seed_stop.stop();
    let (sstats, sep) = seed_thread.join().map_err(|_| "seeder thread panicked")?;
    match done {
        Some(Ok(())) => {}
        Some(Err(e)) => return Err(e.into()),
        None => return Err("the transfer did not finish within 600 s".into()),
    }
    let same = std::fs::read(&out)? == data;

    let mbps = |d: Duration| len as f64 / d.as_secs_f64() / 1e6;
    println!(
        "loopback transfer: {mib} MiB, {chunk_size}-byte chunks, sha1: {:.3} s, {:.1} MB/s ({})",
        took.as_secs_f64(),
        mbps(took),
        if same {
            "output identical"
        } else {
            "OUTPUT DIFFERS"
        }
    );
    println!(
        "baseline sha1 over the same {chunk_size}-byte blocks: {:.3} s, {:.1} MB/s; ratio transfer/sha1 = {:.3}",
        sha_time.as_secs_f64(),
        mbps(sha_time),
        mbps(took) / mbps(sha_time)
    );
    println!(
        "seeder tree build: {:.3} s ({:.1} MB/s)",
        tree_time.as_secs_f64(),
        mbps(tree_time)
    );
    println!(
        "seeder: {} datagrams out in {} send calls, {} send errors; {} DATA retransmissions",
        sstats.socket.datagrams_out,
        sstats.socket.send_calls,
        sstats.socket.send_errors,
        sep.data_retransmissions
    );
    println!(
        "getter: {} datagrams in over {} receive calls, kernel drops {:?} (rcvbuf {} bytes); {} chunks verified; turns {} (short waits {}), seeder turns {} (short waits {})",
        gstats.socket.datagrams_in,
        gstats.socket.recv_calls,
        gstats.socket.kernel_drops,
        gstats.socket.recv_buffer,
        gep.chunks_verified,
        gstats.turns,
        gstats.short_waits,
        sstats.turns,
        sstats.short_waits
    );
    let _ = std::fs::remove_dir_all(&dir);
    if !same {
        return Err("output differs".into());
    }
    Ok(())
}
