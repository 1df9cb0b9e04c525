//! The engine benchmark's workload: a seeder and a leecher [`Endpoint`] in memory move a
//! content from start to finish, one thread driving both on a virtual clock ([`transfer`]), or
//! each on a thread of its own on the wall clock ([`transfer_threaded`]). Datagrams are handed
//! over as the UDP driver does: up to 64 written into one buffer, received as slices of it.
//!
//! Shared by `benches/engine.rs` (criterion) and `examples/transfer.rs` (a fixed number of
//! runs, for `perf`).

use std::sync::Arc;

use bytes::Bytes;
use ppspp_core::merkle::MerkleTree;
use ppspp_core::testing::{CheckingStore, FixedContent, endpoint_config};
use ppspp_core::{
    ChunkStore, Endpoint, EndpointConfig, Instant, NullStore, SwarmConfig, SwarmHandle,
};

/// Content size of the engine benchmark: 64 MiB.
pub const SIZE: usize = 64 << 20;
/// Chunk size of the engine benchmark: 1 KiB.
pub const CHUNK: u32 = 1024;
/// The seeder's address.
pub const SEEDER: &str = "10.0.0.1:6778";
/// The leecher's address.
pub const LEECHER: &str = "10.0.0.2:6778";

/// [`SIZE`] bytes of the test kit's deterministic content (incompressible, the same every
/// run), shared between benchmark iterations (no 64 MiB copy per run).
pub fn content() -> Arc<[u8]> {
    ppspp_core::testing::content(SIZE, 0x9e37_79b9_7f4a_7c15).into()
}

/// An endpoint configuration with every seed byte `seed` and a fixed wall clock.
pub fn config(seed: u8) -> EndpointConfig {
    endpoint_config([seed; 32])
}

/// A seeder's store serving `data` (shared, not copied).
fn seeder_store(data: &Arc<[u8]>) -> Box<dyn ChunkStore> {
    Box::new(CheckingStore::full(FixedContent::new(data.clone(), CHUNK)))
}

/// A fresh seeder of `tree` serving from `store` and a fresh leecher (which stores nothing,
/// with at most `max_requests` requests in flight if given) that has just sent its handshake
/// to the seeder: (seeder, leecher, the leecher's swarm).
pub fn pair(
    now: Instant,
    tree: &Arc<MerkleTree>,
    store: Box<dyn ChunkStore>,
    max_requests: Option<usize>,
) -> (Endpoint, Endpoint, SwarmHandle) {
    let mut seeder = Endpoint::new(config(1), now);
    let mut leecher = Endpoint::new(config(2), now);
    seeder
        .add_swarm(now, SwarmConfig::seed(tree.clone()), store)
        .unwrap();
    let mut cfg = SwarmConfig::leech(tree.root_hash(), tree.algorithm(), CHUNK);
    if let Some(n) = max_requests {
        cfg.max_requests_per_peer(n);
    }
    let lh = leecher.add_swarm(now, cfg, Box::new(NullStore)).unwrap();
    leecher.connect(now, lh, SEEDER.parse().unwrap()).unwrap();
    (seeder, leecher, lh)
}

/// Moves the whole content from a fresh seeder to a fresh leecher (which verifies every chunk
/// and stores nothing); returns the datagrams sent.
pub fn transfer(tree: &Arc<MerkleTree>, data: &Arc<[u8]>) -> u64 {
    run(tree, data, None)
}

/// Time spent inside each endpoint's calls during a [`transfer_split`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Split {
    /// In the seeder's `handle_datagram`, `poll_transmit`, `handle_timeout` and `poll_event`.
    pub seeder: std::time::Duration,
    /// In the leecher's.
    pub leecher: std::time::Duration,
}

/// [`transfer`], timing each endpoint's calls separately (two clock reads per call, a few
/// percent of the run): what each side costs on its own core.
pub fn transfer_split(tree: &Arc<MerkleTree>, data: &Arc<[u8]>) -> Split {
    let mut split = Split::default();
    run(tree, data, Some(&mut split));
    split
}

fn run(tree: &Arc<MerkleTree>, data: &Arc<[u8]>, mut split: Option<&mut Split>) -> u64 {
    // Runs `f`, charging its time to the seeder (`true`) or the leecher when timing.
    let mut timed = |seeder: bool, f: &mut dyn FnMut()| match split.as_deref_mut() {
        Some(s) => {
            let t = std::time::Instant::now();
            f();
            let e = t.elapsed();
            if seeder {
                s.seeder += e;
            } else {
                s.leecher += e;
            }
        }
        None => f(),
    };
    let (sa, la): (std::net::SocketAddr, std::net::SocketAddr) =
        (SEEDER.parse().unwrap(), LEECHER.parse().unwrap());
    let mut now = Instant::from_secs(1);
    let (mut seeder, mut leecher, lh) = pair(now, tree, seeder_store(data), Some(4096));
    let mut buf = vec![0u8; BATCH * MAX_DATAGRAM];
    let mut datagrams = 0;
    // A 200 µs link: each round trip of the loop advances virtual time by that much.
    let hop = std::time::Duration::from_micros(100);
    while !leecher.swarm(lh).unwrap().is_complete() {
        let mut moved = false;
        // Leecher to seeder, then seeder to leecher: each datagram's poll is charged to its
        // sender, its handling to its receiver.
        for from_seeder in [false, true] {
            let (src, dst, from) = if from_seeder {
                (&mut seeder, &mut leecher, sa)
            } else {
                (&mut leecher, &mut seeder, la)
            };
            loop {
                let sent = batch(&mut buf, |slot| {
                    let mut sent = None;
                    timed(from_seeder, &mut || sent = src.poll_transmit(now, slot));
                    sent.map(|t| t.size)
                });
                if sent.is_empty() {
                    break;
                }
                for d in sent {
                    let mut d = Some(d);
                    timed(!from_seeder, &mut || {
                        dst.handle_datagram(now, from, d.take().unwrap_or_default());
                    });
                    datagrams += 1;
                }
                moved = true;
            }
        }
        now += hop;
        if !moved {
            let next = [seeder.poll_timeout(), leecher.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            if let Some(t) = next {
                now = now.max(t);
            }
        }
        timed(true, &mut || {
            seeder.handle_timeout(now);
            while seeder.poll_event().is_some() {}
        });
        timed(false, &mut || {
            leecher.handle_timeout(now);
            while leecher.poll_event().is_some() {}
        });
    }
    datagrams
}

/// [`transfer`] with each endpoint on a thread of its own, as two hosts would run them: the
/// datagrams each endpoint emits in one drain go to the other thread as one batch (a channel
/// stands in for the network), and time comes from the wall clock. Returns the datagrams sent.
/// Its wall time is what the protocol delivers when each side has a core: the slower side,
/// plus the hand-over between threads.
pub fn transfer_threaded(tree: &Arc<MerkleTree>, data: &Arc<[u8]>) -> u64 {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;

    let start = std::time::Instant::now();
    let clock = move || {
        Instant::from_micros(1_000_000 + u64::try_from(start.elapsed().as_micros()).unwrap_or(0))
    };
    let (sa, la): (std::net::SocketAddr, std::net::SocketAddr) =
        (SEEDER.parse().unwrap(), LEECHER.parse().unwrap());
    // At most 2,048 requests in flight: what the seeder queues by default (4 × its 512), so
    // that none is refused and left to time out (wall time counts here, unlike in
    // [`transfer`]'s virtual time).
    let (mut seeder, mut leecher, lh) = pair(clock(), tree, seeder_store(data), Some(2048));
    let (to_leecher, leecher_in) = mpsc::channel::<Vec<Bytes>>();
    let (to_seeder, seeder_in) = mpsc::channel::<Vec<Bytes>>();
    let done = AtomicBool::new(false);
    let complete = |ep: &Endpoint| ep.swarm(lh).is_some_and(|s| s.is_complete());
    std::thread::scope(|s| {
        let seeder_thread = s.spawn(|| {
            drive(
                &mut seeder,
                la,
                (seeder_in, to_leecher),
                &clock,
                &done,
                &|_| false,
            )
        });
        let leecher_sent = drive(
            &mut leecher,
            sa,
            (leecher_in, to_seeder),
            &clock,
            &done,
            &complete,
        );
        done.store(true, Ordering::Release);
        leecher_sent + seeder_thread.join().expect("seeder thread")
    })
}

/// Room for the largest datagram an endpoint writes (its default maximum is 1,472 bytes).
const MAX_DATAGRAM: usize = 2048;

/// Datagrams handed over at a time (the UDP driver's send and receive batches are of this
/// order: a GSO or GRO buffer of 64 KiB holds ~60 datagrams of 1 KiB).
const BATCH: usize = 64;

/// Up to [`BATCH`] datagrams, each written by `poll` (which returns its length, or `None` when
/// there is nothing to send) into `buf`, as slices of one `Bytes`: the UDP driver's GSO send
/// and GRO receive buffers, one allocation per batch. Empty when nothing was sent.
fn batch(buf: &mut [u8], mut poll: impl FnMut(&mut [u8]) -> Option<usize>) -> Vec<Bytes> {
    let mut sizes = Vec::new();
    let mut used = 0;
    while sizes.len() < BATCH {
        let Some(n) = poll(&mut buf[used..used + MAX_DATAGRAM]) else {
            break;
        };
        sizes.push(n);
        used += n;
    }
    let whole = Bytes::copy_from_slice(&buf[..used]);
    let mut off = 0;
    sizes
        .iter()
        .map(|&n| {
            off += n;
            whole.slice(off - n..off)
        })
        .collect()
}

/// One endpoint's loop in [`transfer_threaded`]: send what it has, stop when `finished` says so
/// or the other side has stopped, else wait for datagrams (from `from`) until its next timer.
fn drive(
    ep: &mut Endpoint,
    from: std::net::SocketAddr,
    (rx, tx): (
        std::sync::mpsc::Receiver<Vec<Bytes>>,
        std::sync::mpsc::Sender<Vec<Bytes>>,
    ),
    clock: &dyn Fn() -> Instant,
    done: &std::sync::atomic::AtomicBool,
    finished: &dyn Fn(&Endpoint) -> bool,
) -> u64 {
    use std::sync::atomic::Ordering;
    use std::sync::mpsc::RecvTimeoutError;

    let mut buf = vec![0u8; BATCH * MAX_DATAGRAM];
    let mut sent = 0;
    loop {
        let now = clock();
        loop {
            let out = batch(&mut buf, |slot| ep.poll_transmit(now, slot).map(|t| t.size));
            if out.is_empty() {
                break;
            }
            sent += out.len() as u64;
            if tx.send(out).is_err() {
                return sent;
            }
        }
        if finished(ep) || done.load(Ordering::Acquire) {
            break;
        }
        // Wait for datagrams until the next timer (at most 10 ms, to notice the end).
        let wait = ep
            .poll_timeout()
            .map_or(std::time::Duration::from_millis(10), |t| {
                t.saturating_duration_since(now)
            })
            .min(std::time::Duration::from_millis(10));
        match rx.recv_timeout(wait) {
            Ok(batch) => {
                let now = clock();
                for d in batch {
                    ep.handle_datagram(now, from, d);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        ep.handle_timeout(clock());
        while ep.poll_event().is_some() {}
    }
    sent
}
