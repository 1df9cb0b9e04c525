//! Availability maps: compact sets of chunk indices (RFC 7574 §4.3).
//!
//! A [`Binmap`] records which chunks a peer has (its own verified chunks, what a remote peer
//! announced with HAVE, or what it acknowledged with ACK). Content can have millions of
//! chunks and an endpoint keeps one map per peer, so the map must stay small whatever the
//! pattern: long runs (a sequential download, a seeder) and random scatter (a rarest-first
//! download half way through) alike.
//!
//! # Representation
//!
//! Chunks are grouped in blocks of 512 (aligned). A B-tree keyed by block number holds:
//! - one entry per maximal run of *complete* blocks (`Full`, a block count), and
//! - one 64-byte bitmap per *partial* block (some but not all of its chunks present).
//!
//! Empty blocks take no space. A complete map is a single entry (one B-tree node, under 1 KiB);
//! the worst case (every block partial, nodes half full) is about 160 bytes per 512 chunks,
//! ~2.5 bits per chunk, against 55 bytes per hole for a plain range set in a random-order
//! download. Lookups are `O(log e)` in the number of
//! entries, and runs are found with word-wide bit scans, so iterating present or missing runs
//! costs `O(log e)` per run.
//!
//! The name follows the RFC's implementation note (the "binmap" of \[BINMAP\] is a hybrid of a
//! bitmap and a binary tree); [`Binmap::largest_complete_bin`] gives the bin a HAVE or ACK
//! should carry (§4.3.1: "the biggest complete interval ... that fully includes the interval
//! of chunks just received"), and [`Binmap::bins`] lists the minimal bins announcing the
//! whole map.
//!
//! Chunk indices are `u64`, but the index `u64::MAX` can never be present (ranges are
//! half-open and their end must fit in a `u64`); bin addressing stops at 2^63 chunks anyway.
//! Inserting it is silently ignored, so no input can make an operation panic.

use alloc::collections::BTreeMap;
use core::fmt;
use core::ops::Range;

use crate::bin::{Bin, Cover};

/// log2 of the chunks per block.
const BLOCK_BITS: u32 = 9;
/// Chunks per block.
const BLOCK: u64 = 1 << BLOCK_BITS;
/// Words of a block's bitmap.
const WORDS: usize = (BLOCK / 64) as usize;

/// A block's bitmap: bit `i % 64` of word `i / 64` is chunk `i` of the block.
type Bits = [u64; WORDS];

/// A set of chunk indices: runs of complete blocks plus bitmaps of partial blocks.
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
    /// Keyed by block number. Invariants: entries do not overlap; `Full` runs are maximal
    /// (never adjacent to another `Full`); a `Partial` block is neither empty nor complete.
    /// The representation of a set is therefore unique, and `==` compares sets.
    blocks: BTreeMap<u64, Entry>,
    /// Number of chunks present.
    count: u64,
}

/// One B-tree entry. Bitmaps are stored in the tree's nodes rather than boxed: a lookup then
/// touches one node instead of a node and a separate allocation (the maps are consulted for
/// every chunk sent, received, announced and picked; inline bitmaps cut a 300-peer
/// simulation's wall time by a tenth), and a map of content up to 5,632 chunks is a single
/// allocation.
#[derive(Clone, PartialEq, Eq)]
enum Entry {
    /// This block and the following ones, this many blocks in all, are complete.
    Full(u64),
    /// This block is partly present.
    Partial(Bits),
}

/// What a block holds.
enum State<'a> {
    Empty,
    /// Inside a run of complete blocks `start..end`.
    Full {
        start: u64,
        end: u64,
    },
    Partial(&'a Bits),
}

impl Binmap {
    /// An empty map.
    pub const fn new() -> Self {
        Self {
            blocks: BTreeMap::new(),
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
        let (s, e) = (range.start, range.end);
        if s >= e {
            return 0;
        }
        let (first, last) = (s >> BLOCK_BITS, (e - 1) >> BLOCK_BITS);
        if first == last {
            return self.set_bits(first, s % BLOCK, (e - 1) % BLOCK);
        }
        let mut added = 0;
        let mut mid_start = first;
        if s % BLOCK != 0 {
            added += self.set_bits(first, s % BLOCK, BLOCK - 1);
            mid_start += 1;
        }
        let mut mid_end = last + 1;
        if e % BLOCK != 0 {
            added += self.set_bits(last, 0, (e - 1) % BLOCK);
            mid_end = last;
        }
        if mid_start < mid_end {
            added += self.fill_blocks(mid_start, mid_end);
        }
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
        let (s, e) = (range.start, range.end);
        // An empty map (most loss and in-flight maps, most of the time) needs no lookup.
        if s >= e || self.count == 0 {
            return 0;
        }
        let (first, last) = (s >> BLOCK_BITS, (e - 1) >> BLOCK_BITS);
        if first == last {
            return self.clear_bits(first, s % BLOCK, (e - 1) % BLOCK);
        }
        let mut removed = 0;
        let mut mid_start = first;
        if s % BLOCK != 0 {
            removed += self.clear_bits(first, s % BLOCK, BLOCK - 1);
            mid_start += 1;
        }
        let mut mid_end = last + 1;
        if e % BLOCK != 0 {
            removed += self.clear_bits(last, 0, (e - 1) % BLOCK);
            mid_end = last;
        }
        if mid_start < mid_end {
            removed += self.clear_blocks(mid_start, mid_end);
        }
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
        self.blocks.clear();
        self.count = 0;
    }

    /// Whether chunk `chunk` is present.
    pub fn contains(&self, chunk: u64) -> bool {
        match self.state(chunk >> BLOCK_BITS) {
            State::Empty => false,
            State::Full { .. } => true,
            State::Partial(bits) => bit(bits, chunk % BLOCK),
        }
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
        range.start < range.end
            && self
                .first_present(range.start)
                .is_some_and(|p| p < range.end)
    }

    /// Whether at least one chunk of `bin` is present.
    pub fn intersects_bin(&self, bin: Bin) -> bool {
        bin_range(bin).is_some_and(|r| self.intersects(r))
    }

    /// The maximal run of present chunks that holds `chunk`, if any.
    pub fn run_containing(&self, chunk: u64) -> Option<Range<u64>> {
        let b = chunk >> BLOCK_BITS;
        let o = chunk % BLOCK;
        match self.state(b) {
            State::Empty => None,
            State::Full { start, end } => Some(
                (start * BLOCK).saturating_sub(self.ones_before(start))
                    ..(end * BLOCK).saturating_add(self.ones_from(end)),
            ),
            State::Partial(bits) => {
                if !bit(bits, o) {
                    return None;
                }
                let mut start = chunk - ones_down(bits, o);
                if start % BLOCK == 0 {
                    start = start.saturating_sub(self.ones_before(b));
                }
                let mut end = chunk + ones_up(bits, o);
                if end % BLOCK == 0 {
                    end = end.saturating_add(self.ones_from(b + 1));
                }
                Some(start..end)
            }
        }
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
        let b = from >> BLOCK_BITS;
        match self.state(b) {
            State::Full { .. } => return Some(from),
            State::Partial(bits) => {
                if let Some(o) = next_set(bits, from % BLOCK) {
                    return Some(b * BLOCK + o);
                }
            }
            State::Empty => {}
        }
        let (&k, entry) = self.blocks.range(b.checked_add(1)?..).next()?;
        Some(match entry {
            Entry::Full(_) => k * BLOCK,
            Entry::Partial(bits) => k * BLOCK + next_set(bits, 0).unwrap_or(0),
        })
    }

    /// The last chunk `≤ upto` that is present, if any.
    pub fn last_present(&self, upto: u64) -> Option<u64> {
        let b = upto >> BLOCK_BITS;
        match self.state(b) {
            State::Full { .. } => return Some(upto),
            State::Partial(bits) => {
                if let Some(o) = prev_set(bits, upto % BLOCK) {
                    return Some(b * BLOCK + o);
                }
            }
            State::Empty => {}
        }
        // An earlier entry: a full run there ends before block `b` (else `b` were in it).
        let (&k, entry) = self.blocks.range(..b).next_back()?;
        match entry {
            Entry::Full(n) => k.saturating_add(*n).saturating_mul(BLOCK).checked_sub(1),
            Entry::Partial(bits) => Some(k * BLOCK + prev_set(bits, BLOCK - 1)?),
        }
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
        // The count answers most calls (a leecher's map) without a lookup: the engine asks
        // this of every channel's map after every input of a viewer with an origin.
        self.count >= chunks && self.contains_range(0..chunks)
    }

    /// The number of maximal runs of present chunks (`O(runs)`).
    pub fn run_count(&self) -> usize {
        self.ranges().count()
    }

    /// The number of B-tree entries: the map's size in memory is proportional to it (plus 64
    /// bytes per partial block).
    pub fn entry_count(&self) -> usize {
        self.blocks.len()
    }

    /// The largest aligned bin that contains chunk `chunk` and whose chunks are all present;
    /// `None` if `chunk` itself is missing.
    ///
    /// This is the chunk specification a HAVE or ACK for `chunk` carries under bin addressing
    /// (RFC 7574 §4.3.1, §4.3.2).
    pub fn largest_complete_bin(&self, chunk: u64) -> Option<Bin> {
        let b = chunk >> BLOCK_BITS;
        let o = chunk % BLOCK;
        // One lookup. A bin of a block's size or more is made of whole blocks, so only the
        // run of complete blocks around `chunk` can hold it (a partial neighbour cannot); a
        // smaller bin lies inside `chunk`'s block.
        let run = match self.state(b) {
            State::Empty => return None,
            State::Full { start, end } => start * BLOCK..end.saturating_mul(BLOCK),
            State::Partial(bits) => {
                if !bit(bits, o) {
                    return None;
                }
                let mut layer = 0;
                while layer + 1 < BLOCK_BITS {
                    let size = 1u64 << (layer + 1);
                    let lo = o & !(size - 1);
                    if !all_set(bits, lo, lo + size - 1) {
                        break;
                    }
                    layer += 1;
                }
                return Bin::from_layer_offset(layer, chunk >> layer);
            }
        };
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

    /// [`Binmap::last_present`]`(chunk)` and [`Binmap::first_present`]`(chunk)` together, in
    /// one or two B-tree lookups instead of three to five.
    pub fn present_around(&self, chunk: u64) -> (Option<u64>, Option<u64>) {
        if self.count == 0 {
            return (None, None);
        }
        let b = chunk >> BLOCK_BITS;
        let o = chunk % BLOCK;
        // The last entry starting at or before `chunk`'s block.
        let at_or_before = self.blocks.range(..=b).next_back();
        let (left, search_right) = match at_or_before {
            Some((&k, Entry::Full(n))) if b - k < *n => return (Some(chunk), Some(chunk)),
            Some((&k, Entry::Partial(bits))) if k == b => {
                let left = match prev_set(bits, o) {
                    Some(p) => Some(b * BLOCK + p),
                    // Nothing at or below `o` here: the entry before this block.
                    None => self.last_present_before_block(b),
                };
                if let Some(n) = next_set(bits, o) {
                    return (left, Some(b * BLOCK + n));
                }
                (left, true)
            }
            Some((&k, entry)) => (entry_last(k, entry), true),
            None => (None, true),
        };
        let right = if search_right {
            b.checked_add(1).and_then(|next| {
                let (&k, entry) = self.blocks.range(next..).next()?;
                Some(entry_first(k, entry))
            })
        } else {
            None
        };
        (left, right)
    }

    /// The last present chunk before block `b`.
    fn last_present_before_block(&self, b: u64) -> Option<u64> {
        let (&k, entry) = self.blocks.range(..b).next_back()?;
        entry_last(k, entry)
    }

    /// Iterates the maximal runs of present chunks in increasing order.
    pub fn ranges(&self) -> Ranges<'_> {
        self.ranges_in(0..u64::MAX)
    }

    /// Iterates the maximal runs of present chunks within `range`, clipped to it.
    pub fn ranges_in(&self, range: Range<u64>) -> Ranges<'_> {
        Ranges::new(self, range)
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
        self.difference_in(other, 0..u64::MAX)
    }

    /// Iterates the runs of chunks of `range` present here but not in `other`, walking both
    /// maps once.
    pub fn difference_in<'a>(&'a self, other: &'a Self, range: Range<u64>) -> Difference<'a> {
        Difference {
            outer: self.ranges_in(range.clone()),
            other: other.ranges_in(range),
            cur: None,
            hole: None,
            runs_left: usize::MAX,
            truncated: false,
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

    /// Bytes of heap held, estimated: B-tree nodes of 11 entries (bitmaps inline), half full
    /// beyond the first.
    pub fn heap_bytes(&self) -> usize {
        let entries = self.blocks.len();
        if entries == 0 {
            return 0;
        }
        let nodes = if entries <= 11 {
            1
        } else {
            entries.div_ceil(6)
        };
        nodes * 11 * (size_of::<u64>() + size_of::<Entry>())
    }

    /// What block `b` holds.
    fn state(&self, b: u64) -> State<'_> {
        if self.count == 0 {
            return State::Empty;
        }
        // An entry starting at `b` (every partial block, the first block of a run) is found by
        // an exact lookup, which is cheaper than a range search.
        match self.blocks.get(&b) {
            Some(Entry::Full(n)) => {
                return State::Full {
                    start: b,
                    end: b + n,
                };
            }
            Some(Entry::Partial(bits)) => return State::Partial(bits),
            None => {}
        }
        match self.blocks.range(..b).next_back() {
            Some((&k, Entry::Full(n))) if b - k < *n => State::Full {
                start: k,
                end: k + n,
            },
            Some((&k, Entry::Partial(bits))) if k == b => State::Partial(bits),
            _ => State::Empty,
        }
    }

    /// How many chunks immediately before block `b` are present (a run ending at its start).
    fn ones_before(&self, b: u64) -> u64 {
        let Some(prev) = b.checked_sub(1) else {
            return 0;
        };
        match self.state(prev) {
            State::Empty => 0,
            State::Full { start, .. } => {
                (b - start) * BLOCK
                    + start.checked_sub(1).map_or(0, |p| match self.state(p) {
                        State::Partial(bits) => ones_down(bits, BLOCK),
                        _ => 0,
                    })
            }
            State::Partial(bits) => ones_down(bits, BLOCK),
        }
    }

    /// How many chunks from the start of block `b` on are present (a run starting there).
    fn ones_from(&self, b: u64) -> u64 {
        match self.state(b) {
            State::Empty => 0,
            State::Full { end, .. } => {
                (end - b) * BLOCK
                    + match self.state(end) {
                        State::Partial(bits) => ones_up(bits, 0),
                        _ => 0,
                    }
            }
            State::Partial(bits) => ones_up(bits, 0),
        }
    }

    /// Sets chunks `lo..=hi` of block `b`; returns how many were new.
    fn set_bits(&mut self, b: u64, lo: u64, hi: u64) -> u64 {
        if lo == 0 && hi == BLOCK - 1 {
            return self.fill_blocks(b, b + 1);
        }
        if let Some(Entry::Partial(bits)) = self.blocks.get_mut(&b) {
            // The common case: update the bitmap in place.
            let added = set_range(bits, lo, hi);
            if added > 0 && is_full(bits) {
                // The block became complete: it joins (or starts) a full run.
                let old = BLOCK - added;
                self.blocks.remove(&b);
                self.count -= old;
                return self.fill_blocks(b, b + 1) - old;
            }
            self.count += added;
            return added;
        }
        if let State::Full { .. } = self.state(b) {
            return 0;
        }
        let mut bits = [0; WORDS];
        let added = set_range(&mut bits, lo, hi);
        self.blocks.insert(b, Entry::Partial(bits));
        self.count += added;
        added
    }

    /// Clears chunks `lo..=hi` of block `b`; returns how many were present.
    fn clear_bits(&mut self, b: u64, lo: u64, hi: u64) -> u64 {
        if lo == 0 && hi == BLOCK - 1 {
            return self.clear_blocks(b, b + 1);
        }
        if let Some(Entry::Partial(bits)) = self.blocks.get_mut(&b) {
            let removed = clear_range(bits, lo, hi);
            if removed > 0 && is_clear(bits) {
                self.blocks.remove(&b);
            }
            self.count -= removed;
            return removed;
        }
        let State::Full { start, end } = self.state(b) else {
            return 0;
        };
        // Split the run around block b, which becomes partial (it keeps some chunks, as
        // `lo..=hi` is not the whole block).
        self.blocks.remove(&start);
        if start < b {
            self.blocks.insert(start, Entry::Full(b - start));
        }
        if b + 1 < end {
            self.blocks.insert(b + 1, Entry::Full(end - b - 1));
        }
        let mut bits = [u64::MAX; WORDS];
        let removed = clear_range(&mut bits, lo, hi);
        self.blocks.insert(b, Entry::Partial(bits));
        self.count -= removed;
        removed
    }

    /// Makes blocks `from..to` complete; returns how many chunks were new.
    fn fill_blocks(&mut self, from: u64, to: u64) -> u64 {
        let (mut start, mut end) = (from, to);
        // A run reaching `from` from the left is merged.
        if let Some((&k, Entry::Full(n))) = self.blocks.range(..from).next_back() {
            if k + n >= from {
                start = k;
            }
        }
        let mut present = 0;
        while let Some((&k, entry)) = self.blocks.range(start..=end).next() {
            match entry {
                Entry::Full(n) => {
                    let (a, z) = (k.max(from), (k + n).min(to));
                    present += z.saturating_sub(a) * BLOCK;
                    end = end.max(k + n);
                }
                // A partial block just past the new run stays as it is.
                Entry::Partial(_) if k >= to => break,
                Entry::Partial(bits) => present += popcount(bits),
            }
            self.blocks.remove(&k);
        }
        self.blocks.insert(start, Entry::Full(end - start));
        let added = (to - from) * BLOCK - present;
        self.count += added;
        added
    }

    /// Empties blocks `from..to`; returns how many chunks were present.
    fn clear_blocks(&mut self, from: u64, to: u64) -> u64 {
        let mut removed = 0;
        // A run that starts before `from` and reaches into the range is cut.
        if let Some((&k, &Entry::Full(n))) = self.blocks.range(..from).next_back() {
            if k + n > from {
                self.blocks.insert(k, Entry::Full(from - k));
                if k + n > to {
                    self.blocks.insert(to, Entry::Full(k + n - to));
                }
                removed += ((k + n).min(to) - from) * BLOCK;
            }
        }
        while let Some((&k, entry)) = self.blocks.range(from..to).next() {
            match *entry {
                Entry::Full(n) => {
                    removed += ((k + n).min(to) - k) * BLOCK;
                    self.blocks.remove(&k);
                    if k + n > to {
                        self.blocks.insert(to, Entry::Full(k + n - to));
                    }
                }
                Entry::Partial(ref bits) => {
                    removed += popcount(bits);
                    self.blocks.remove(&k);
                }
            }
        }
        self.count -= removed;
        removed
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

/// The chunks of `bin` as a half-open range, or `None` for [`Bin::NONE`].
fn bin_range(bin: Bin) -> Option<Range<u64>> {
    let first = bin.first_chunk()?;
    let last = bin.last_chunk()?;
    Some(first..last.checked_add(1)?)
}

/// Whether chunk `o` of a block is set.
#[inline]
fn bit(bits: &Bits, o: u64) -> bool {
    bits[(o / 64) as usize] >> (o % 64) & 1 == 1
}

/// The last chunk of the entry at block `k`.
fn entry_last(k: u64, entry: &Entry) -> Option<u64> {
    match entry {
        Entry::Full(n) => k.saturating_add(*n).saturating_mul(BLOCK).checked_sub(1),
        Entry::Partial(bits) => Some(k * BLOCK + prev_set(bits, BLOCK - 1)?),
    }
}

/// The first chunk of the entry at block `k`.
fn entry_first(k: u64, entry: &Entry) -> u64 {
    match entry {
        Entry::Full(_) => k * BLOCK,
        Entry::Partial(bits) => k * BLOCK + next_set(bits, 0).unwrap_or(0),
    }
}

/// Whether chunks `lo..=hi` of a block are all set.
fn all_set(bits: &Bits, lo: u64, hi: u64) -> bool {
    let first = (lo / 64) as usize;
    bits.get(first..=((hi / 64) as usize).min(WORDS - 1))
        .unwrap_or_default()
        .iter()
        .enumerate()
        .all(|(k, &w)| {
            let m = word_mask(first + k, lo, hi);
            w & m == m
        })
}

/// The number of chunks set in a block.
fn popcount(bits: &Bits) -> u64 {
    bits.iter().map(|w| u64::from(w.count_ones())).sum()
}

/// The bits of word `i` that fall in `lo..=hi`.
fn word_mask(i: usize, lo: u64, hi: u64) -> u64 {
    let (wlo, whi) = (i as u64 * 64, i as u64 * 64 + 63);
    if hi < wlo || lo > whi {
        return 0;
    }
    let (a, z) = (lo.max(wlo) - wlo, hi.min(whi) - wlo);
    (u64::MAX >> (63 - z)) & (u64::MAX << a)
}

/// Sets chunks `lo..=hi` of a block (`lo ≤ hi < BLOCK`); returns how many were clear. Only the
/// words the range touches are visited (a single chunk: one word).
fn set_range(bits: &mut Bits, lo: u64, hi: u64) -> u64 {
    let mut added = 0;
    let first = (lo / 64) as usize;
    for (k, w) in words_of(bits, lo, hi).iter_mut().enumerate() {
        let m = word_mask(first + k, lo, hi);
        added += u64::from((m & !*w).count_ones());
        *w |= m;
    }
    added
}

/// Clears chunks `lo..=hi` of a block (`lo ≤ hi < BLOCK`); returns how many were set.
fn clear_range(bits: &mut Bits, lo: u64, hi: u64) -> u64 {
    let mut removed = 0;
    let first = (lo / 64) as usize;
    for (k, w) in words_of(bits, lo, hi).iter_mut().enumerate() {
        let m = word_mask(first + k, lo, hi);
        removed += u64::from((m & *w).count_ones());
        *w &= !m;
    }
    removed
}

/// The words of a block that hold chunks `lo..=hi` (empty if the range is not in the block).
fn words_of(bits: &mut Bits, lo: u64, hi: u64) -> &mut [u64] {
    let (first, last) = ((lo / 64) as usize, (hi / 64) as usize);
    bits.get_mut(first..=last.min(WORDS - 1))
        .unwrap_or_default()
}

/// Whether every chunk of a block is set.
fn is_full(bits: &Bits) -> bool {
    bits.iter().all(|&w| w == u64::MAX)
}

/// Whether no chunk of a block is set.
fn is_clear(bits: &Bits) -> bool {
    bits.iter().all(|&w| w == 0)
}

/// The first set chunk `≥ o` of a block.
fn next_set(bits: &Bits, o: u64) -> Option<u64> {
    let mut i = (o / 64) as usize;
    let mut w = bits.get(i)? & (u64::MAX << (o % 64));
    loop {
        if w != 0 {
            return Some(i as u64 * 64 + u64::from(w.trailing_zeros()));
        }
        i += 1;
        w = *bits.get(i)?;
    }
}

/// The last set bit at or below `o` (`o < BLOCK`).
fn prev_set(bits: &Bits, o: u64) -> Option<u64> {
    let mut i = (o / 64) as usize;
    let mut w = bits.get(i)? & (u64::MAX >> (63 - o % 64));
    loop {
        if w != 0 {
            return Some(i as u64 * 64 + 63 - u64::from(w.leading_zeros()));
        }
        i = i.checked_sub(1)?;
        w = bits[i];
    }
}

/// How many consecutive chunks from `o` upward are set (`o < BLOCK`).
fn ones_up(bits: &Bits, o: u64) -> u64 {
    let mut n = 0;
    let (mut i, mut shift) = ((o / 64) as usize, o % 64);
    while let Some(&word) = bits.get(i) {
        let run = u64::from((word >> shift).trailing_ones());
        let avail = 64 - shift;
        if run < avail {
            return n + run;
        }
        n += avail;
        i += 1;
        shift = 0;
    }
    n
}

/// How many consecutive chunks just below `o` (`o − 1`, `o − 2`, …) are set (`o ≤ BLOCK`).
fn ones_down(bits: &Bits, o: u64) -> u64 {
    let mut n = 0;
    let mut pos = o;
    while pos > 0 {
        let top = (pos - 1) % 64;
        let word = bits[((pos - 1) / 64) as usize];
        let run = u64::from((word << (63 - top)).leading_ones());
        if run < top + 1 {
            return n + run;
        }
        n += top + 1;
        pos -= top + 1;
    }
    n
}

mod iter;
#[cfg(test)]
mod tests;

pub use iter::{Bins, Difference, Gaps, Intersection, Ranges};
