//! Availability maps: compact sets of chunk indices (RFC 7574 §4.3).
//!
//! A [`Binmap`] records which chunks a peer has (its own verified chunks, or what a remote peer
//! announced with HAVE, or what it acknowledged with ACK). Content can have millions of chunks,
//! so the map stores *runs* of present chunks, not one bit per chunk: a sorted set of disjoint,
//! non-adjacent half-open ranges `start..end`, merged on insert. Memory is proportional to the
//! number of holes (a complete download is a single range), and every operation is
//! `O(log r)` in the number of ranges `r` (plus the size of the output for iterations).
//!
//! The name follows the RFC's implementation note (the "binmap" of \[BINMAP\] is a hybrid of a
//! bitmap and a binary tree); the representation here is a range set, which answers the same
//! questions: [`Binmap::largest_complete_bin`] gives the bin a HAVE or ACK should carry
//! (§4.3.1: "the biggest complete interval ... that fully includes the interval of chunks just
//! received"), and [`Binmap::bins`] lists the minimal bins that announce the whole map.
//!
//! Chunk indices are `u64`, but the index `u64::MAX` can never be present (ranges are half-open
//! and their end must fit in a `u64`); bin addressing stops at 2^63 chunks anyway. Inserting it
//! is silently ignored, so no input can make an operation panic.

use alloc::collections::BTreeMap;
use alloc::collections::btree_map;
use core::fmt;
use core::ops::Range;

use crate::bin::{Bin, Cover};

/// A set of chunk indices stored as sorted, disjoint, non-adjacent ranges.
///
/// ```
/// use ppspp_core::binmap::Binmap;
/// use ppspp_core::Bin;
///
/// let mut have = Binmap::new();
/// have.insert_range(0..6);
/// have.insert(7);
/// assert_eq!(have.count(), 7);
/// assert_eq!(have.first_missing(0), 6);
/// assert_eq!(have.missing_ranges(10).collect::<Vec<_>>(), [6..7, 8..10]);
/// // Chunk 5 just arrived: the biggest complete aligned interval holding it is chunks 4..=5.
/// assert_eq!(have.largest_complete_bin(5), Bin::from_chunk_range(4, 5));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Binmap {
    /// `start → end` (exclusive) of each run; runs are disjoint and never touch.
    ranges: BTreeMap<u64, u64>,
    /// Number of chunks present.
    count: u64,
}

impl Binmap {
    /// An empty map.
    pub const fn new() -> Self {
        Self {
            ranges: BTreeMap::new(),
            count: 0,
        }
    }

    /// A map holding exactly the chunks `range`.
    pub fn from_range(range: Range<u64>) -> Self {
        let mut map = Self::new();
        map.insert_range(range);
        map
    }

    /// Adds chunk `chunk`; returns whether it was new. `u64::MAX` is ignored (see the module
    /// docs).
    pub fn insert(&mut self, chunk: u64) -> bool {
        match chunk.checked_add(1) {
            Some(end) => self.insert_range(chunk..end) == 1,
            None => false,
        }
    }

    /// Adds every chunk of `range`; returns how many were new. An empty range does nothing.
    pub fn insert_range(&mut self, range: Range<u64>) -> u64 {
        let (mut start, mut end) = (range.start, range.end);
        if start >= end {
            return 0;
        }
        // A run that starts before `start` and reaches it (overlapping or adjacent) is merged.
        if let Some((&s, &e)) = self.ranges.range(..=start).next_back() {
            if e >= end {
                return 0;
            }
            if e >= start {
                start = s;
            }
        }
        // Absorb every run that starts within `start..=end` (adjacent runs merge too).
        let mut covered = 0;
        while let Some((&s, &e)) = self.ranges.range(start..=end).next() {
            self.ranges.remove(&s);
            covered += e - s;
            end = end.max(e);
        }
        self.ranges.insert(start, end);
        let added = (end - start) - covered;
        self.count += added;
        added
    }

    /// Adds every chunk of `bin`; returns how many were new. [`Bin::NONE`] adds nothing.
    pub fn insert_bin(&mut self, bin: Bin) -> u64 {
        match bin_range(bin) {
            Some(r) => self.insert_range(r),
            None => 0,
        }
    }

    /// Removes chunk `chunk`; returns whether it was present.
    pub fn remove(&mut self, chunk: u64) -> bool {
        match chunk.checked_add(1) {
            Some(end) => self.remove_range(chunk..end) == 1,
            None => false,
        }
    }

    /// Removes every chunk of `range`; returns how many were present.
    pub fn remove_range(&mut self, range: Range<u64>) -> u64 {
        let (start, end) = (range.start, range.end);
        if start >= end {
            return 0;
        }
        let mut removed = 0;
        // A run that starts before `start` and reaches into the range is cut (and maybe split).
        if let Some((&s, &e)) = self.ranges.range(..start).next_back() {
            if e > start {
                self.ranges.insert(s, start);
                if e > end {
                    self.ranges.insert(end, e);
                    removed += end - start;
                } else {
                    removed += e - start;
                }
            }
        }
        // Runs that start inside the range are removed, keeping any tail past `end`.
        while let Some((&s, &e)) = self.ranges.range(start..end).next() {
            self.ranges.remove(&s);
            if e > end {
                self.ranges.insert(end, e);
                removed += end - s;
            } else {
                removed += e - s;
            }
        }
        self.count -= removed;
        removed
    }

    /// Removes every chunk of `bin`; returns how many were present.
    pub fn remove_bin(&mut self, bin: Bin) -> u64 {
        match bin_range(bin) {
            Some(r) => self.remove_range(r),
            None => 0,
        }
    }

    /// Adds every chunk of `other`.
    pub fn union_with(&mut self, other: &Self) {
        for r in other.ranges() {
            self.insert_range(r);
        }
    }

    /// Removes every chunk.
    pub fn clear(&mut self) {
        self.ranges.clear();
        self.count = 0;
    }

    /// Whether chunk `chunk` is present.
    pub fn contains(&self, chunk: u64) -> bool {
        self.run_containing(chunk).is_some()
    }

    /// Whether every chunk of `range` is present (true for an empty range).
    pub fn contains_range(&self, range: Range<u64>) -> bool {
        if range.start >= range.end {
            return true;
        }
        self.run_containing(range.start)
            .is_some_and(|run| run.end >= range.end)
    }

    /// Whether every chunk of `bin` is present (false for [`Bin::NONE`]).
    pub fn contains_bin(&self, bin: Bin) -> bool {
        bin_range(bin).is_some_and(|r| self.contains_range(r))
    }

    /// Whether at least one chunk of `range` is present.
    pub fn intersects(&self, range: Range<u64>) -> bool {
        if range.start >= range.end {
            return false;
        }
        if self.contains(range.start) {
            return true;
        }
        self.ranges.range(range).next().is_some()
    }

    /// Whether at least one chunk of `bin` is present.
    pub fn intersects_bin(&self, bin: Bin) -> bool {
        bin_range(bin).is_some_and(|r| self.intersects(r))
    }

    /// The run of present chunks that holds `chunk`, if any.
    pub fn run_containing(&self, chunk: u64) -> Option<Range<u64>> {
        let (&s, &e) = self.ranges.range(..=chunk).next_back()?;
        (chunk < e).then_some(s..e)
    }

    /// The first chunk `≥ from` that is missing. Always exists, as `u64::MAX` is never present.
    pub fn first_missing(&self, from: u64) -> u64 {
        match self.run_containing(from) {
            Some(run) => run.end,
            None => from,
        }
    }

    /// The first chunk `≥ from` that is present, if any.
    pub fn first_present(&self, from: u64) -> Option<u64> {
        if self.contains(from) {
            return Some(from);
        }
        self.ranges.range(from..).next().map(|(&s, _)| s)
    }

    /// The number of chunks present.
    pub const fn count(&self) -> u64 {
        self.count
    }

    /// The number of chunks of `range` that are present.
    pub fn count_in(&self, range: Range<u64>) -> u64 {
        self.ranges_in(range).map(|r| r.end - r.start).sum()
    }

    /// Whether no chunk is present.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether every chunk of `0..chunks` is present (content of `chunks` chunks is complete).
    pub fn is_complete(&self, chunks: u64) -> bool {
        self.contains_range(0..chunks)
    }

    /// The number of stored runs: the map's size in memory is proportional to it.
    pub fn run_count(&self) -> usize {
        self.ranges.len()
    }

    /// The largest aligned bin that contains chunk `chunk` and whose chunks are all present;
    /// `None` if `chunk` itself is missing.
    ///
    /// This is the chunk specification a HAVE or ACK for `chunk` carries under bin addressing
    /// (RFC 7574 §4.3.1, §4.3.2).
    pub fn largest_complete_bin(&self, chunk: u64) -> Option<Bin> {
        let run = self.run_containing(chunk)?;
        let mut best = Bin::leaf(chunk)?;
        while let Some(parent) = best.parent() {
            let (first, last) = (parent.first_chunk()?, parent.last_chunk()?);
            if first < run.start || last >= run.end {
                break;
            }
            best = parent;
        }
        Some(best)
    }

    /// Iterates the runs of present chunks in increasing order.
    pub fn ranges(&self) -> Ranges<'_> {
        Ranges {
            inner: self.ranges.range(..),
            clip: 0..u64::MAX,
        }
    }

    /// Iterates the runs of present chunks within `range`, clipped to it.
    pub fn ranges_in(&self, range: Range<u64>) -> Ranges<'_> {
        // Start at the run holding `range.start` if there is one, else at the next run.
        let from = self
            .run_containing(range.start)
            .map_or(range.start, |run| run.start);
        let inner = if range.start < range.end {
            self.ranges.range(from..range.end)
        } else {
            self.ranges.range(0..0)
        };
        Ranges { inner, clip: range }
    }

    /// Iterates the runs of missing chunks within `0..chunks` (the complement of the map).
    pub fn missing_ranges(&self, chunks: u64) -> Gaps<'_> {
        self.missing_in(0..chunks)
    }

    /// Iterates the runs of missing chunks within `range`.
    pub fn missing_in(&self, range: Range<u64>) -> Gaps<'_> {
        Gaps {
            cursor: range.start,
            end: range.end,
            present: self.ranges_in(range),
        }
    }

    /// Iterates the runs of chunks present here and in `other`.
    pub fn intersection_ranges<'a>(&'a self, other: &'a Self) -> Intersection<'a> {
        Intersection {
            outer: self.ranges(),
            other,
            inner: None,
        }
    }

    /// Iterates the runs of chunks present here but not in `other`: with `self` a peer's
    /// announced chunks and `other` ours, the chunks worth requesting from that peer.
    pub fn difference_ranges<'a>(&'a self, other: &'a Self) -> Difference<'a> {
        Difference {
            outer: self.ranges(),
            other,
            inner: None,
        }
    }

    /// The chunks present here and in `other`.
    pub fn intersection(&self, other: &Self) -> Self {
        self.intersection_ranges(other).collect()
    }

    /// The chunks present here but not in `other`.
    pub fn difference(&self, other: &Self) -> Self {
        self.difference_ranges(other).collect()
    }

    /// Iterates the minimal list of bins, left to right, that exactly cover the present chunks
    /// (what a peer announces in HAVE messages when it must describe the whole map).
    pub fn bins(&self) -> Bins<'_> {
        Bins {
            runs: self.ranges(),
            cover: None,
        }
    }
}

impl FromIterator<Range<u64>> for Binmap {
    fn from_iter<I: IntoIterator<Item = Range<u64>>>(iter: I) -> Self {
        let mut map = Self::new();
        for r in iter {
            map.insert_range(r);
        }
        map
    }
}

impl Extend<Range<u64>> for Binmap {
    fn extend<I: IntoIterator<Item = Range<u64>>>(&mut self, iter: I) {
        for r in iter {
            self.insert_range(r);
        }
    }
}

impl fmt::Debug for Binmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.ranges()).finish()
    }
}

/// Iterator over runs of present chunks; see [`Binmap::ranges`] and [`Binmap::ranges_in`].
#[derive(Clone, Debug)]
pub struct Ranges<'a> {
    inner: btree_map::Range<'a, u64, u64>,
    clip: Range<u64>,
}

impl Iterator for Ranges<'_> {
    type Item = Range<u64>;

    fn next(&mut self) -> Option<Range<u64>> {
        for (&s, &e) in self.inner.by_ref() {
            let (s, e) = (s.max(self.clip.start), e.min(self.clip.end));
            if s < e {
                return Some(s..e);
            }
        }
        None
    }
}

/// Iterator over runs of missing chunks; see [`Binmap::missing_ranges`].
#[derive(Clone, Debug)]
pub struct Gaps<'a> {
    cursor: u64,
    end: u64,
    present: Ranges<'a>,
}

impl Iterator for Gaps<'_> {
    type Item = Range<u64>;

    fn next(&mut self) -> Option<Range<u64>> {
        while self.cursor < self.end {
            match self.present.next() {
                Some(run) => {
                    let gap = self.cursor..run.start;
                    self.cursor = run.end;
                    if !gap.is_empty() {
                        return Some(gap);
                    }
                }
                None => {
                    let gap = self.cursor..self.end;
                    self.cursor = self.end;
                    return Some(gap);
                }
            }
        }
        None
    }
}

/// Iterator over runs present in two maps; see [`Binmap::intersection_ranges`].
#[derive(Clone, Debug)]
pub struct Intersection<'a> {
    outer: Ranges<'a>,
    other: &'a Binmap,
    inner: Option<Ranges<'a>>,
}

impl Iterator for Intersection<'_> {
    type Item = Range<u64>;

    fn next(&mut self) -> Option<Range<u64>> {
        loop {
            if let Some(r) = self.inner.as_mut().and_then(Iterator::next) {
                return Some(r);
            }
            let run = self.outer.next()?;
            self.inner = Some(self.other.ranges_in(run));
        }
    }
}

/// Iterator over runs present in one map and missing in another; see
/// [`Binmap::difference_ranges`].
#[derive(Clone, Debug)]
pub struct Difference<'a> {
    outer: Ranges<'a>,
    other: &'a Binmap,
    inner: Option<Gaps<'a>>,
}

impl Iterator for Difference<'_> {
    type Item = Range<u64>;

    fn next(&mut self) -> Option<Range<u64>> {
        loop {
            if let Some(r) = self.inner.as_mut().and_then(Iterator::next) {
                return Some(r);
            }
            let run = self.outer.next()?;
            self.inner = Some(self.other.missing_in(run));
        }
    }
}

/// Iterator over the minimal bins covering a map; see [`Binmap::bins`].
#[derive(Clone, Debug)]
pub struct Bins<'a> {
    runs: Ranges<'a>,
    cover: Option<Cover>,
}

impl Iterator for Bins<'_> {
    type Item = Bin;

    fn next(&mut self) -> Option<Bin> {
        loop {
            if let Some(b) = self.cover.as_mut().and_then(Iterator::next) {
                return Some(b);
            }
            let run = self.runs.next()?;
            // Runs are non-empty, so `end - 1` does not underflow.
            self.cover = Some(Bin::cover(run.start, run.end - 1));
        }
    }
}

/// The chunks of `bin` as a half-open range, or `None` for [`Bin::NONE`].
fn bin_range(bin: Bin) -> Option<Range<u64>> {
    let first = bin.first_chunk()?;
    let last = bin.last_chunk()?;
    Some(first..last.checked_add(1)?)
}

#[cfg(test)]
#[allow(
    clippy::single_range_in_vec_init,
    reason = "lists of runs that happen to hold one run"
)]
mod tests {
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

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..200, 0u64..40).prop_map(|(s, l)| Op::Insert(s, s + l)),
            (0u64..200, 0u64..40).prop_map(|(s, l)| Op::Remove(s, s + l)),
        ]
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

    proptest! {
        /// The range set behaves exactly like a `BTreeSet<u64>` under random inserts and
        /// removals, and every query agrees with the model.
        #[test]
        fn matches_btreeset_model(ops in proptest::collection::vec(op(), 0..40), q in 0u64..260, len in 0u64..60) {
            let (map, model) = model_of(&ops);
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

        #[test]
        fn set_operations_match_model(a in proptest::collection::vec(op(), 0..20), b in proptest::collection::vec(op(), 0..20)) {
            let (ma, sa) = model_of(&a);
            let (mb, sb) = model_of(&b);
            let diff: BTreeSet<u64> = ma.difference_ranges(&mb).flatten().collect();
            prop_assert_eq!(diff, sa.difference(&sb).copied().collect::<BTreeSet<_>>());
            let inter: BTreeSet<u64> = ma.intersection_ranges(&mb).flatten().collect();
            prop_assert_eq!(inter, sa.intersection(&sb).copied().collect::<BTreeSet<_>>());
            let d = ma.difference(&mb);
            prop_assert_eq!(d.count(), sa.difference(&sb).count() as u64);
            let mut u = ma.clone();
            u.union_with(&mb);
            prop_assert_eq!(u.count(), sa.union(&sb).count() as u64);
        }
    }
}
