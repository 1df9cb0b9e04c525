//! Tests of `binmap.rs`.

#![allow(
    clippy::single_range_in_vec_init,
    reason = "lists of runs that happen to hold one run"
)]

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

fn b(v: u64) -> Bin {
    Bin::from_raw(v)
}

fn runs(map: &Binmap) -> Vec<Range<u64>> {
    map.ranges().collect()
}

#[test]
fn insert_merges_overlapping_and_adjacent_runs() {
    let mut m = Binmap::new();
    assert_eq!(m.insert_range(10..20), 10);
    assert_eq!(m.insert_range(30..40), 10);
    assert_eq!(runs(&m), [10..20, 30..40]);
    assert_eq!(m.insert_range(20..30), 10, "adjacent on both sides");
    assert_eq!(runs(&m), [10..40]);
    assert_eq!(m.insert_range(5..45), 10);
    assert_eq!(runs(&m), [5..45]);
    assert_eq!(m.insert_range(7..9), 0);
    assert!(m.insert(45));
    assert!(!m.insert(45));
    assert!(m.insert(4));
    assert_eq!(runs(&m), [4..46]);
    assert_eq!(m.count(), 42);
    assert_eq!(m.run_count(), 1);
}

#[test]
fn remove_splits_runs() {
    let mut m = Binmap::from_range(0..100);
    assert_eq!(m.remove_range(10..20), 10);
    assert_eq!(runs(&m), [0..10, 20..100]);
    assert_eq!(m.remove_range(5..25), 10);
    assert_eq!(runs(&m), [0..5, 25..100]);
    assert!(m.remove(99));
    assert!(!m.remove(99));
    assert_eq!(m.remove_range(0..1000), 79);
    assert!(m.is_empty());
    assert_eq!(m.run_count(), 0);
}

#[test]
fn u64_max_is_never_present_and_never_panics() {
    let mut m = Binmap::new();
    assert!(!m.insert(u64::MAX));
    assert_eq!(m.insert_range(u64::MAX - 2..u64::MAX), 2);
    assert_eq!(m.first_missing(u64::MAX - 2), u64::MAX);
    assert!(!m.contains(u64::MAX));
    assert!(!m.remove(u64::MAX));
    assert_eq!(m.insert_bin(Bin::NONE), 0);
    assert_eq!(m.insert_bin(Bin::ALL), 1 << 63);
    assert_eq!(m.largest_complete_bin(5), Some(Bin::ALL));
    let (start, end) = (9, 3);
    assert_eq!(m.insert_range(start..end), 0);
    // A partial block at the very end of the index space: iteration must not overflow.
    let mut top = Binmap::new();
    top.insert_range(u64::MAX - 600..u64::MAX - 3);
    assert_eq!(
        top.ranges().collect::<Vec<_>>(),
        [u64::MAX - 600..u64::MAX - 3]
    );
    let empty = Binmap::new();
    let gaps: Vec<_> = top
        .difference_in(&empty, u64::MAX - 700..u64::MAX)
        .collect();
    assert_eq!(gaps, [u64::MAX - 600..u64::MAX - 3]);
    assert_eq!(
        top.missing_in(u64::MAX - 5..u64::MAX).collect::<Vec<_>>(),
        [u64::MAX - 3..u64::MAX]
    );
    assert_eq!(top.last_present(u64::MAX), Some(u64::MAX - 4));
    assert_eq!(top.count_in(0..u64::MAX), 597);
}

#[test]
fn queries() {
    let m: Binmap = [0..6, 7..8, 16..32].into_iter().collect();
    assert_eq!(m.first_missing(0), 6);
    assert_eq!(m.first_missing(6), 6);
    assert_eq!(m.first_missing(7), 8);
    assert_eq!(m.first_present(8), Some(16));
    assert_eq!(m.first_present(32), None);
    assert!(m.contains_range(16..32));
    assert!(!m.contains_range(15..32));
    assert!(m.contains_bin(b(39))); // chunks 16..=23
    assert!(m.intersects(5..7));
    assert!(!m.intersects(8..16));
    assert!(m.intersects_bin(b(7))); // chunks 0..=7
    assert_eq!(m.count_in(4..20), 2 + 1 + 4);
    assert_eq!(
        m.missing_ranges(40).collect::<Vec<_>>(),
        [6..7, 8..16, 32..40]
    );
    assert_eq!(m.missing_in(3..7).collect::<Vec<_>>(), [6..7]);
    assert!(m.is_complete(6));
    assert!(!m.is_complete(7));
    assert!(m.is_complete(0));
    assert_eq!(m.bins().collect::<Vec<_>>(), [b(3), b(9), b(14), b(47)]);
}

/// RFC 7574 §4.3.1: the HAVE carries the biggest complete aligned interval that holds the
/// chunk just received.
#[test]
fn largest_complete_bin_aggregates_aligned_intervals() {
    let mut m = Binmap::new();
    assert_eq!(m.largest_complete_bin(0), None);
    m.insert(0);
    assert_eq!(m.largest_complete_bin(0), Some(b(0)));
    m.insert(1);
    assert_eq!(m.largest_complete_bin(1), Some(b(1)));
    m.insert_range(2..7);
    assert_eq!(m.largest_complete_bin(6), Some(b(12)));
    assert_eq!(m.largest_complete_bin(5), Some(b(9)));
    assert_eq!(m.largest_complete_bin(2), Some(b(3)));
    m.insert(7);
    assert_eq!(m.largest_complete_bin(6), Some(b(7)));
    // A run not starting at an aligned boundary.
    let m = Binmap::from_range(3..13);
    assert_eq!(m.largest_complete_bin(3), Some(b(6)));
    assert_eq!(m.largest_complete_bin(4), Some(b(11)));
    assert_eq!(m.largest_complete_bin(12), Some(b(24)));
}

#[test]
fn set_operations() {
    let peer: Binmap = [0..10, 20..30].into_iter().collect();
    let mine: Binmap = [5..25].into_iter().collect();
    assert_eq!(runs(&peer.difference(&mine)), [0..5, 25..30]);
    assert_eq!(runs(&peer.intersection(&mine)), [5..10, 20..25]);
    assert_eq!(runs(&mine.difference(&peer)), [10..20]);
    let mut u = peer.clone();
    u.union_with(&mine);
    assert_eq!(runs(&u), [0..30]);
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u64, u64),
    Remove(u64, u64),
}

/// Positions near block boundaries (multiples of 512), or anywhere in a few blocks.
fn pos() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..200,
        (0u64..7, 0u64..7).prop_map(|(k, d)| (k * BLOCK + d).saturating_sub(3)),
        0u64..3000,
    ]
}

/// Short ranges, about one block, or several blocks.
fn len() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..8, (BLOCK - 8)..(BLOCK + 8), 0u64..1600]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (pos(), len()).prop_map(|(s, l)| Op::Insert(s, s + l)),
        (pos(), len()).prop_map(|(s, l)| Op::Remove(s, s + l)),
    ]
}

/// The representation invariants: no overlap, maximal full runs, proper partial blocks.
fn check_invariants(map: &Binmap) {
    let mut prev: Option<(u64, u64, bool)> = None; // (start, end, full)
    let mut count = 0;
    for (&k, e) in &map.blocks {
        let (end, full) = match e {
            Entry::Full(n) => {
                assert!(*n > 0);
                count += n * BLOCK;
                (k + n, true)
            }
            Entry::Partial(bits) => {
                let c = popcount(bits);
                assert!(c > 0 && c < BLOCK, "partial block {k} has {c}");
                count += c;
                (k + 1, false)
            }
        };
        if let Some((_, pend, pfull)) = prev {
            assert!(pend <= k, "overlap at {k}");
            assert!(!(pfull && full && pend == k), "adjacent full runs at {k}");
        }
        prev = Some((k, end, full));
    }
    assert_eq!(count, map.count());
}

#[test]
fn representation_stays_small() {
    // Complete: one entry however long.
    let m = Binmap::from_range(0..10 * BLOCK + 3);
    assert_eq!(m.entry_count(), 2);
    let m = Binmap::from_range(0..1 << 40);
    assert_eq!(m.entry_count(), 1);
    // Every other chunk: one bitmap per block, not one run per chunk.
    let mut m = Binmap::new();
    for c in (0..4 * BLOCK).step_by(2) {
        m.insert(c);
    }
    assert_eq!((m.entry_count(), m.run_count()), (4, 2 * BLOCK as usize));
    // Filling the gaps turns the bitmaps back into one run.
    for c in (1..4 * BLOCK).step_by(2) {
        m.insert(c);
    }
    assert_eq!((m.entry_count(), m.run_count()), (1, 1));
    check_invariants(&m);
    // Punching a hole in the middle of a run splits it around a bitmap.
    assert!(m.remove(BLOCK + 5));
    assert_eq!(m.entry_count(), 3);
    assert_eq!(runs(&m), [0..BLOCK + 5, BLOCK + 6..4 * BLOCK]);
    check_invariants(&m);
}

fn model_of(ops: &[Op]) -> (Binmap, BTreeSet<u64>) {
    let mut map = Binmap::new();
    let mut model = BTreeSet::new();
    for op in ops {
        match *op {
            Op::Insert(s, e) => {
                let new = (s..e).filter(|c| model.insert(*c)).count() as u64;
                assert_eq!(map.insert_range(s..e), new);
            }
            Op::Remove(s, e) => {
                let gone = (s..e).filter(|c| model.remove(c)).count() as u64;
                assert_eq!(map.remove_range(s..e), gone);
            }
        }
    }
    (map, model)
}

/// Ops spread over ~100 blocks with short ranges: maps of many partial entries (a B-tree
/// of several nodes).
fn sparse_op() -> impl Strategy<Value = Op> {
    let at = (0u64..100, 0u64..BLOCK).prop_map(|(b, o)| b * BLOCK + o);
    let len = prop_oneof![1u64..4, 1u64..(3 * BLOCK)];
    prop_oneof![
        3 => (at.clone(), len.clone()).prop_map(|(s, l)| Op::Insert(s, s + l)),
        1 => (at, len).prop_map(|(s, l)| Op::Remove(s, s + l)),
    ]
}

proptest! {
    /// The range set behaves exactly like a `BTreeSet<u64>` under random inserts and
    /// removals, and every query agrees with the model.
    #[test]
    fn matches_btreeset_model(ops in proptest::collection::vec(op(), 0..40), q in pos(), len in len()) {
        let (map, model) = model_of(&ops);
        check_invariants(&map);
        prop_assert_eq!(map.count(), model.len() as u64);
        // Invariant: sorted, disjoint, non-adjacent, non-empty runs.
        let rs = runs(&map);
        for w in rs.windows(2) {
            prop_assert!(w[0].end < w[1].start);
        }
        prop_assert!(rs.iter().all(|r| r.start < r.end));
        let flat: Vec<u64> = rs.iter().flat_map(|r| r.clone()).collect();
        prop_assert_eq!(&flat, &model.iter().copied().collect::<Vec<_>>());
        prop_assert_eq!(map.contains(q), model.contains(&q));
        prop_assert_eq!(map.first_missing(q), (q..).find(|c| !model.contains(c)).unwrap());
        prop_assert_eq!(map.first_present(q), model.range(q..).next().copied());
        prop_assert_eq!(
            map.present_around(q),
            (model.range(..=q).next_back().copied(), model.range(q..).next().copied())
        );
        let r = q..q + len;
        prop_assert_eq!(map.contains_range(r.clone()), r.clone().all(|c| model.contains(&c)));
        prop_assert_eq!(map.intersects(r.clone()), r.clone().any(|c| model.contains(&c)));
        prop_assert_eq!(map.count_in(r.clone()), r.clone().filter(|c| model.contains(c)).count() as u64);
        let inside: Vec<u64> = map.ranges_in(r.clone()).flatten().collect();
        prop_assert_eq!(inside, r.clone().filter(|c| model.contains(c)).collect::<Vec<_>>());
        let missing: Vec<u64> = map.missing_in(r.clone()).flatten().collect();
        prop_assert_eq!(missing, r.clone().filter(|c| !model.contains(c)).collect::<Vec<_>>());
        prop_assert_eq!(map.is_complete(len), (0..len).all(|c| model.contains(&c)));
        // largest_complete_bin: the highest ancestor of the leaf whose chunks are all in.
        let expect = if model.contains(&q) {
            let mut best = Bin::leaf(q).unwrap();
            while let Some(p) = best.parent() {
                if p.chunks().unwrap().all(|c| model.contains(&c)) { best = p } else { break }
            }
            Some(best)
        } else {
            None
        };
        prop_assert_eq!(map.largest_complete_bin(q), expect);
        // bins() covers exactly the set.
        let mut from_bins = BTreeSet::new();
        for bin in map.bins() {
            from_bins.extend(bin.chunks().unwrap());
        }
        prop_assert_eq!(&from_bins, &model);
    }

    /// The same model check over maps with many entries.
    #[test]
    fn many_entries_match_model(ops in proptest::collection::vec(sparse_op(), 0..120), q in 0u64..60_000, len in 0u64..3000) {
        let (map, model) = model_of(&ops);
        check_invariants(&map);
        prop_assert_eq!(map.count(), model.len() as u64);
        let flat: Vec<u64> = map.ranges().flatten().collect();
        prop_assert_eq!(&flat, &model.iter().copied().collect::<Vec<_>>());
        prop_assert_eq!(map.contains(q), model.contains(&q));
        prop_assert_eq!(map.first_present(q), model.range(q..).next().copied());
        prop_assert_eq!(
            map.present_around(q),
            (model.range(..=q).next_back().copied(), model.range(q..).next().copied())
        );
        prop_assert_eq!(map.last_present(q), model.range(..=q).next_back().copied());
        let r = q..q + len;
        let inside: Vec<u64> = map.ranges_in(r.clone()).flatten().collect();
        prop_assert_eq!(inside, r.clone().filter(|c| model.contains(c)).collect::<Vec<_>>());
        let missing: Vec<u64> = map.missing_in(r.clone()).flatten().collect();
        prop_assert_eq!(missing, r.clone().filter(|c| !model.contains(c)).collect::<Vec<_>>());
        // Rebuilt from its runs (another history): equal.
        let rebuilt: Binmap = map.ranges().collect();
        prop_assert_eq!(&rebuilt, &map);
    }

    #[test]
    fn set_operations_match_model(a in proptest::collection::vec(op(), 0..20), b in proptest::collection::vec(op(), 0..20), q in pos(), len in len()) {
        let (ma, sa) = model_of(&a);
        let (mb, sb) = model_of(&b);
        check_invariants(&ma);
        let diff: BTreeSet<u64> = ma.difference_ranges(&mb).flatten().collect();
        prop_assert_eq!(diff, sa.difference(&sb).copied().collect::<BTreeSet<_>>());
        let last = ma.last_present(q);
        prop_assert_eq!(last, sa.range(..=q).next_back().copied());
        let r = q..q.saturating_add(len);
        let runs: Vec<Range<u64>> = ma.difference_in(&mb, r.clone()).collect();
        // Maximal and ordered: no empty run, no two runs touching.
        prop_assert!(runs.iter().all(|x| x.start < x.end));
        prop_assert!(runs.windows(2).all(|w| w[0].end < w[1].start));
        let diff_in: BTreeSet<u64> = runs.into_iter().flatten().collect();
        prop_assert_eq!(
            diff_in,
            sa.difference(&sb).copied().filter(|c| r.contains(c)).collect::<BTreeSet<_>>()
        );
        let inter: BTreeSet<u64> = ma.intersection_ranges(&mb).flatten().collect();
        prop_assert_eq!(inter, sa.intersection(&sb).copied().collect::<BTreeSet<_>>());
        let d = ma.difference(&mb);
        prop_assert_eq!(d.count(), sa.difference(&sb).count() as u64);
        let mut u = ma.clone();
        u.union_with(&mb);
        prop_assert_eq!(u.count(), sa.union(&sb).count() as u64);
    }
}
