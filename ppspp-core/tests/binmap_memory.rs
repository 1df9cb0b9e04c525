//! Heap use of availability maps and Merkle trees at a million chunks, measured with a
//! counting global allocator (this test binary only). Run with `--nocapture` to see the
//! figures; the assertions are generous upper bounds that catch a change of representation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicIsize, Ordering};

use ppspp_core::binmap::Binmap;
use ppspp_core::hash::HashAlgorithm;
use ppspp_core::merkle::{AckedHashes, ContentSize, MerkleBuilder, PartialTree};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call forwards to the system allocator with the caller's layout unchanged;
// the counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the same layout, as the caller guarantees it valid.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: `ptr` came from this allocator with `layout`; the caller checks `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Tests share the global counter: run the measurements one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Heap bytes held by the value `make` returns (kept alive while measuring).
fn heap_of<T>(make: impl FnOnce() -> T) -> (T, isize) {
    let before = LIVE.load(Ordering::SeqCst);
    let value = make();
    let after = LIVE.load(Ordering::SeqCst);
    (value, after - before)
}

const CHUNKS: u64 = 1 << 20;

/// A map of `CHUNKS` chunks with `holes` chunks missing, chosen by a fixed LCG.
fn holey(holes: u64) -> Binmap {
    let mut map = Binmap::from_range(0..CHUNKS);
    let mut x = 12345u64;
    while CHUNKS - map.count() < holes {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        map.remove((x >> 33) % CHUNKS);
    }
    map
}

#[test]
fn binmap_memory_at_a_million_chunks() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (complete, complete_bytes) = heap_of(|| Binmap::from_range(0..CHUNKS));
    assert_eq!(complete.run_count(), 1);
    let (one_pct, one_pct_bytes) = heap_of(|| holey(CHUNKS / 100));
    let runs = one_pct.run_count();
    let entries = one_pct.entry_count();
    // Built in random order, chunk by chunk: the same set, as a downloader would have it.
    let (random_order, random_order_bytes) = heap_of(|| {
        let mut m = Binmap::new();
        let mut x = 99u64;
        for _ in 0..CHUNKS * 3 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            m.insert((x >> 33) % CHUNKS);
        }
        m
    });
    // Worst case for runs: a random-order download half way through.
    let (half, half_bytes) = heap_of(|| {
        let mut m = Binmap::new();
        let mut x = 7u64;
        while m.count() < CHUNKS / 2 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            m.insert((x >> 33) % CHUNKS);
        }
        m
    });
    println!(
        "binmap, {CHUNKS} chunks, random-order download at 50%: {half_bytes} B ({} runs, {} entries)",
        half.run_count(),
        half.entry_count()
    );
    println!(
        "binmap, {CHUNKS} chunks: complete = {complete_bytes} B ({} run); \
         1% random holes = {one_pct_bytes} B ({runs} runs, {entries} entries, {:.1} B/run); \
         random-order inserts, {} of {CHUNKS} present = {random_order_bytes} B ({} runs); \
         a bitmap would be {} B",
        complete.run_count(),
        one_pct_bytes as f64 / runs as f64,
        random_order.count(),
        random_order.run_count(),
        CHUNKS / 8,
    );
    // One B-tree node (11 entries with their bitmaps inline, ~900 bytes) whatever the content
    // size; the bound leaves room for the test harness's own threads allocating meanwhile
    // (the counter is process-wide).
    assert!(complete_bytes <= 2048, "{complete_bytes}");
    // At most one 64-byte bitmap plus B-tree room per 512-chunk block: ~2.5 bits per chunk.
    let bound = (CHUNKS / 512) as isize * 160;
    assert!(one_pct_bytes <= bound, "{one_pct_bytes}");
    assert!(half_bytes <= bound, "{half_bytes}");
    assert!(random_order_bytes <= bound, "{random_order_bytes}");
}

/// Merkle trees of a million chunks in release builds (`cargo test --release`); 64 Ki chunks
/// in debug builds, where unoptimised SHA-1 would take tens of seconds.
#[test]
fn merkle_memory_at_a_million_chunks() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const CHUNKS: u64 = if cfg!(debug_assertions) {
        1 << 16
    } else {
        1 << 20
    };
    let cs = 16u32;
    let data: Vec<u8> = (0..CHUNKS as usize * cs as usize)
        .map(|i| (i * 7) as u8)
        .collect();
    let (root_only, root_only_bytes) = heap_of(|| {
        let mut b = MerkleBuilder::new(HashAlgorithm::Sha1, cs).unwrap();
        b.update(&data).unwrap();
        b
    });
    let root = root_only.finish().unwrap();
    let (tree, tree_bytes) = heap_of(|| {
        let mut b = MerkleBuilder::with_tree(HashAlgorithm::Sha1, cs).unwrap();
        b.update(&data).unwrap();
        b.finish_tree().unwrap()
    });
    assert_eq!(tree.root_hash(), root.hash);
    // A receiver that verified every chunk in order holds every node too.
    let (rx, rx_bytes) = heap_of(|| {
        let mut rx = PartialTree::new(
            HashAlgorithm::Sha1,
            cs,
            root.hash,
            ContentSize::Chunks(CHUNKS),
        )
        .unwrap();
        let mut acked = Binmap::new();
        for (c, chunk) in data.chunks(cs as usize).enumerate() {
            let c = c as u64;
            let known = AckedHashes::new(&acked);
            let list: Vec<_> = tree
                .integrity(c, false, |b| known.knows(b))
                .unwrap()
                .collect();
            rx.verify_chunk_with(c, chunk, &list).unwrap();
            acked.insert(c);
        }
        rx
    });
    println!(
        "merkle SHA-1, {CHUNKS} chunks: streaming root builder = {root_only_bytes} B; \
         seeder tree = {tree_bytes} B ({:.1} B/chunk); complete receiver tree = {rx_bytes} B \
         ({:.1} B/chunk, {} nodes)",
        tree_bytes as f64 / CHUNKS as f64,
        rx_bytes as f64 / CHUNKS as f64,
        rx.verified_count(),
    );
    assert!(root_only_bytes <= 4096, "{root_only_bytes}");
    assert!(tree_bytes as u64 <= 2 * CHUNKS * 20 + 4096, "{tree_bytes}");
    assert!(rx_bytes as u64 <= 3 * CHUNKS * 20, "{rx_bytes}");
}
