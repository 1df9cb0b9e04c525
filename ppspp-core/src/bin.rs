//! Bin numbers (RFC 7574 §4.2).
//!
//! A bin names an aligned, power-of-two sized interval of chunks: the node of a binary tree
//! laid over the chunks in in-order numbering. Leaf `i` (chunk `i`) is bin `2i`; a node at
//! layer `l` with offset `o` (its position among the nodes of that layer) is bin
//! `(2o + 1)·2^l − 1`. The layer of a bin is the number of trailing one bits.
//!
//! ```text
//!               7
//!         3            11
//!      1     5      9      13
//!     0 2   4 6   8 10   12  14      (chunks 0..=7)
//! ```
//!
//! Two values are special: all ones ([`Bin::NONE`], the empty interval) and all ones but the
//! top bit ([`Bin::ALL`], every chunk). On the wire bins are 32 or 64 bits wide; see
//! [`Bin::from_u32`] and [`Bin::to_u32`].

use core::fmt;
use core::ops::RangeInclusive;

/// A bin number: an aligned interval of `2^layer` chunks.
///
/// Every method is total: operations that have no answer (the parent of [`Bin::ALL`], the
/// children of a leaf, anything on [`Bin::NONE`]) return `None` instead of panicking.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bin(u64);

impl Bin {
    /// The empty interval (all ones on the wire).
    pub const NONE: Self = Self(u64::MAX);
    /// Every chunk: the root of the widest tree (`0x7FFF_FFFF_FFFF_FFFF`, layer 63).
    pub const ALL: Self = Self(u64::MAX >> 1);
    /// The highest layer a bin can have.
    pub const MAX_LAYER: u32 = 63;

    /// Wraps a raw 64-bit bin number as found on the wire.
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw 64-bit bin number.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The leaf bin of chunk `chunk` (bin `2·chunk`), or `None` if the chunk index is beyond
    /// what 64-bit bins can address (chunk ≥ 2^63).
    pub const fn leaf(chunk: u64) -> Option<Self> {
        if chunk >= 1 << 63 {
            None
        } else {
            Some(Self(chunk << 1))
        }
    }

    /// The bin at `layer` with `offset` among the bins of that layer, or `None` when it does
    /// not fit in 64 bits.
    pub const fn from_layer_offset(layer: u32, offset: u64) -> Option<Self> {
        if layer > Self::MAX_LAYER {
            return None;
        }
        // (2·offset + 1)·2^layer − 1 must stay below u64::MAX (which is NONE), so
        // offset < 2^(63 − layer).
        let max_offset = (1u64 << (Self::MAX_LAYER - layer)) - 1;
        if offset > max_offset {
            return None;
        }
        Some(Self((((offset << 1) | 1) << layer) - 1))
    }

    /// The root of a tree whose width (a power of two, in chunks) is at least `chunks`.
    ///
    /// `None` for zero chunks or for more than 2^63 chunks.
    pub const fn root_covering(chunks: u64) -> Option<Self> {
        if chunks == 0 || chunks > 1 << 63 {
            return None;
        }
        let width = chunks.next_power_of_two();
        Self::from_layer_offset(width.trailing_zeros(), 0)
    }

    /// Converts a 32-bit wire bin: `0xFFFF_FFFF` is [`Bin::NONE`], `0x7FFF_FFFF` is
    /// [`Bin::ALL`], anything else is taken as is.
    pub const fn from_u32(raw: u32) -> Self {
        match raw {
            u32::MAX => Self::NONE,
            0x7FFF_FFFF => Self::ALL,
            v => Self(v as u64),
        }
    }

    /// The 32-bit wire form: [`Bin::NONE`] is `0xFFFF_FFFF`, [`Bin::ALL`] is `0x7FFF_FFFF`, a
    /// bin that does not fit in 32 bits is `None`.
    pub const fn to_u32(self) -> Option<u32> {
        if self.0 == Self::NONE.0 {
            Some(u32::MAX)
        } else if self.0 == Self::ALL.0 {
            Some(0x7FFF_FFFF)
        } else if self.0 < u32::MAX as u64 {
            Some(self.0 as u32)
        } else {
            None
        }
    }

    /// Whether this is the empty interval.
    pub const fn is_none(self) -> bool {
        self.0 == Self::NONE.0
    }

    /// Whether this is the bin of every chunk.
    pub const fn is_all(self) -> bool {
        self.0 == Self::ALL.0
    }

    /// Whether this bin is a leaf (a single chunk).
    pub const fn is_leaf(self) -> bool {
        self.0 & 1 == 0
    }

    /// The layer: 0 for a leaf, 63 for [`Bin::ALL`]; 64 for [`Bin::NONE`].
    pub const fn layer(self) -> u32 {
        self.0.trailing_ones()
    }

    /// The offset of this bin among the bins of its layer.
    pub const fn layer_offset(self) -> u64 {
        match self.0.checked_shr(self.layer() + 1) {
            Some(v) => v,
            None => 0,
        }
    }

    /// The number of chunks this bin covers (0 for [`Bin::NONE`]).
    pub const fn chunk_count(self) -> u64 {
        if self.is_none() { 0 } else { 1 << self.layer() }
    }

    /// The leftmost leaf bin under this bin.
    pub const fn base_left(self) -> Option<Self> {
        if self.is_none() {
            return None;
        }
        Some(Self(self.0 - ((1 << self.layer()) - 1)))
    }

    /// The rightmost leaf bin under this bin.
    pub const fn base_right(self) -> Option<Self> {
        if self.is_none() {
            return None;
        }
        Some(Self(self.0 + ((1 << self.layer()) - 1)))
    }

    /// The first chunk covered.
    pub const fn first_chunk(self) -> Option<u64> {
        match self.base_left() {
            Some(b) => Some(b.0 >> 1),
            None => None,
        }
    }

    /// The last chunk covered (inclusive).
    pub const fn last_chunk(self) -> Option<u64> {
        match self.base_right() {
            Some(b) => Some(b.0 >> 1),
            None => None,
        }
    }

    /// The chunks covered, as an inclusive range.
    pub fn chunks(self) -> Option<RangeInclusive<u64>> {
        Some(self.first_chunk()?..=self.last_chunk()?)
    }

    /// The parent bin, or `None` for [`Bin::ALL`] and [`Bin::NONE`].
    pub const fn parent(self) -> Option<Self> {
        let l = self.layer();
        if l >= Self::MAX_LAYER {
            return None;
        }
        Some(Self((self.0 | (1 << l)) & !(1 << (l + 1))))
    }

    /// The left child, or `None` for a leaf or [`Bin::NONE`].
    pub const fn left(self) -> Option<Self> {
        let l = self.layer();
        if l == 0 || l > Self::MAX_LAYER {
            return None;
        }
        Some(Self(self.0 - (1 << (l - 1))))
    }

    /// The right child, or `None` for a leaf or [`Bin::NONE`].
    pub const fn right(self) -> Option<Self> {
        let l = self.layer();
        if l == 0 || l > Self::MAX_LAYER {
            return None;
        }
        Some(Self(self.0 + (1 << (l - 1))))
    }

    /// Both children `(left, right)`, or `None` for a leaf.
    pub const fn children(self) -> Option<(Self, Self)> {
        match (self.left(), self.right()) {
            (Some(l), Some(r)) => Some((l, r)),
            _ => None,
        }
    }

    /// The other child of this bin's parent, or `None` for [`Bin::ALL`] and [`Bin::NONE`].
    pub const fn sibling(self) -> Option<Self> {
        let l = self.layer();
        if l >= Self::MAX_LAYER {
            return None;
        }
        Some(Self(self.0 ^ (1 << (l + 1))))
    }

    /// Whether this bin is the left child of its parent.
    pub const fn is_left(self) -> bool {
        let l = self.layer();
        l < Self::MAX_LAYER && self.0 & (1 << (l + 1)) == 0
    }

    /// Whether this bin is the right child of its parent.
    pub const fn is_right(self) -> bool {
        let l = self.layer();
        l < Self::MAX_LAYER && self.0 & (1 << (l + 1)) != 0
    }

    /// Whether `other` lies entirely within this bin (a bin contains itself).
    pub const fn contains(self, other: Self) -> bool {
        if self.is_none() || other.is_none() {
            return false;
        }
        let (sl, sr) = (
            self.0 - ((1 << self.layer()) - 1),
            self.0 + ((1 << self.layer()) - 1),
        );
        let (ol, or) = (
            other.0 - ((1 << other.layer()) - 1),
            other.0 + ((1 << other.layer()) - 1),
        );
        sl <= ol && or <= sr
    }

    /// Whether chunk `chunk` lies within this bin.
    pub const fn contains_chunk(self, chunk: u64) -> bool {
        match (self.first_chunk(), self.last_chunk()) {
            (Some(a), Some(b)) => a <= chunk && chunk <= b,
            _ => false,
        }
    }

    /// The ancestor of this bin at `layer` (itself if already at that layer), or `None` if the
    /// bin is above that layer.
    pub const fn ancestor_at(self, layer: u32) -> Option<Self> {
        let l = self.layer();
        if l > layer || layer > Self::MAX_LAYER {
            return None;
        }
        let offset = match self.0.checked_shr(layer + 1) {
            Some(v) => v,
            None => 0,
        };
        Self::from_layer_offset(layer, offset)
    }

    /// The bin of the chunk range `first..=last` if that range is exactly one aligned bin.
    pub const fn from_chunk_range(first: u64, last: u64) -> Option<Self> {
        if last < first {
            return None;
        }
        let Some(len) = (last - first).checked_add(1) else {
            return None;
        };
        if !len.is_power_of_two() || first % len != 0 {
            return None;
        }
        Self::from_layer_offset(len.trailing_zeros(), first / len)
    }

    /// Iterates the minimal list of bins, left to right, that exactly cover the chunks
    /// `first..=last` (RFC 7574 §4.2: a range that is not one aligned bin needs several).
    /// Empty if `last < first`.
    pub const fn cover(first: u64, last: u64) -> Cover {
        Cover {
            next: first,
            last,
            done: last < first || first >= 1 << 63,
        }
    }

    /// The peaks of content with `chunks` chunks (RFC 7574 §5.6.1): the largest filled
    /// subtrees, left to right, one per one bit of `chunks`.
    pub const fn peaks(chunks: u64) -> Cover {
        if chunks == 0 {
            Self::cover(1, 0)
        } else {
            Self::cover(0, chunks - 1)
        }
    }
}

impl fmt::Debug for Bin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            f.write_str("Bin(NONE)")
        } else if self.is_all() {
            f.write_str("Bin(ALL)")
        } else {
            let first = self.first_chunk().unwrap_or(0);
            let last = self.last_chunk().unwrap_or(0);
            write!(f, "Bin({} l{} {first}..={last})", self.0, self.layer())
        }
    }
}

impl fmt::Display for Bin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Iterator over the minimal bins covering a chunk range; see [`Bin::cover`].
#[derive(Clone, Debug)]
pub struct Cover {
    next: u64,
    last: u64,
    done: bool,
}

impl Iterator for Cover {
    type Item = Bin;

    fn next(&mut self) -> Option<Bin> {
        if self.done {
            return None;
        }
        let first = self.next;
        // The largest aligned power of two starting at `first` that stays within `last`.
        let align = if first == 0 {
            63
        } else {
            first.trailing_zeros().min(63)
        };
        let span = self.last - first; // chunks after `first`, so length − 1
        let fit = if span == u64::MAX {
            63
        } else {
            (span + 1).ilog2().min(63)
        };
        let layer = align.min(fit);
        let bin = Bin::from_layer_offset(layer, first >> layer)?;
        let len = 1u64 << layer;
        match first.checked_add(len) {
            Some(n) if n <= self.last && n < 1 << 63 => self.next = n,
            _ => self.done = true,
        }
        Some(bin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn b(v: u64) -> Bin {
        Bin::from_raw(v)
    }

    /// Vectors from RFC 7574 §4.2 Figure 2 (W = 8).
    #[test]
    fn rfc_figure_2() {
        let leaves: Vec<u64> = (0..8).map(|c| Bin::leaf(c).unwrap().raw()).collect();
        assert_eq!(leaves, [0, 2, 4, 6, 8, 10, 12, 14]);
        for (bin, layer) in [(1, 1), (5, 1), (9, 1), (13, 1), (3, 2), (11, 2), (7, 3)] {
            assert_eq!(b(bin).layer(), layer);
        }
        assert_eq!(b(3).chunks(), Some(0..=3));
        assert_eq!(b(1).chunks(), Some(0..=1));
        assert_eq!(b(2).chunks(), Some(1..=1));
        assert_eq!(Bin::root_covering(8), Some(b(7)));
        assert_eq!(Bin::root_covering(7), Some(b(7)));
        assert_eq!(Bin::root_covering(26), Some(b(31)));
    }

    /// Vectors from libswift `tests/bin64test.cpp` as listed in VECTORS-IDEAS.md §3.
    #[test]
    fn libswift_bin_vectors() {
        assert_eq!(Bin::from_layer_offset(1, 0), Some(b(1)));
        assert_eq!(Bin::from_layer_offset(2, 1), Some(b(11)));
        assert_eq!(b(11).layer(), 2);
        assert_eq!(b(11).layer_offset(), 1);
        let b591 = Bin::from_layer_offset(4, 18).unwrap();
        assert_eq!(b591, b(591));
        assert_eq!(b591.parent(), Some(b(607)));
        assert_eq!(Bin::from_layer_offset(5, 9), Some(b(607)));
        assert_eq!(b(607).children(), Some((b(591), b(623))));
        assert_eq!(b591.children(), Some((b(583), b(599))));
        assert_eq!(Bin::from_layer_offset(3, 36), Some(b(583)));
        assert_eq!(Bin::from_layer_offset(3, 37), Some(b(599)));
        assert_eq!(Bin::from_layer_offset(4, 19), Some(b(623)));
        assert_eq!(b(623).parent(), Some(b(607)));
        let b30_1 = Bin::from_layer_offset(30, 1).unwrap();
        assert_eq!(b30_1.raw(), 3_221_225_471);
        assert_eq!(b30_1.parent().unwrap().raw(), 0x7FFF_FFFF);
        assert_eq!(Bin::from_layer_offset(2, 3).unwrap().raw(), 27);
        assert_eq!(b(27).chunk_count(), 4);
        assert_eq!(
            Bin::from_layer_offset(1, 1).unwrap().base_left(),
            Some(b(4))
        );
        let peaks: Vec<Bin> = Bin::peaks(7).collect();
        assert_eq!(peaks, [b(3), b(9), b(12)]);
        assert_eq!(Bin::ALL.to_u32(), Some(0x7FFF_FFFF));
        assert_eq!(Bin::NONE.to_u32(), Some(0xFFFF_FFFF));
        assert_eq!(Bin::from_layer_offset(40, 18).unwrap().to_u32(), None);
        assert_eq!(Bin::from_u32(0xFFFF_FFFF), Bin::NONE);
        assert_eq!(Bin::from_u32(0x7FFF_FFFF), Bin::ALL);
    }

    /// RFC 7574 §5.1 Figure 3: C4 (bin 8) has uncles 10, 13, 3.
    #[test]
    fn uncles_of_chunk_4() {
        let mut uncles = Vec::new();
        let mut cur = b(8);
        while cur != b(7) {
            uncles.push(cur.sibling().unwrap());
            cur = cur.parent().unwrap();
        }
        assert_eq!(uncles, [b(10), b(13), b(3)]);
    }

    #[test]
    fn peaks_of_m74() {
        let peaks: Vec<Bin> = Bin::peaks(26).collect();
        assert_eq!(peaks, [b(15), b(39), b(49)]);
        assert_eq!(b(39).chunks(), Some(16..=23));
        assert_eq!(b(49).chunks(), Some(24..=25));
        assert_eq!(Bin::peaks(0).count(), 0);
        assert_eq!(Bin::peaks(8).collect::<Vec<_>>(), [b(7)]);
    }

    #[test]
    fn special_values_are_total() {
        for s in [Bin::NONE, Bin::ALL] {
            assert_eq!(s.parent(), None);
            assert_eq!(s.sibling(), None);
        }
        assert_eq!(Bin::NONE.left(), None);
        assert_eq!(Bin::NONE.base_left(), None);
        assert_eq!(Bin::NONE.chunk_count(), 0);
        assert!(!Bin::NONE.contains(Bin::NONE));
        assert_eq!(Bin::ALL.chunks(), Some(0..=(u64::MAX >> 1)));
        assert_eq!(Bin::ALL.children().unwrap().0.layer(), 62);
        assert_eq!(b(0).left(), None);
        assert_eq!(Bin::leaf(1 << 63), None);
        assert_eq!(Bin::from_layer_offset(64, 0), None);
        assert_eq!(Bin::from_layer_offset(63, 1), None);
        assert_eq!(
            Bin::from_layer_offset(0, (1 << 63) - 1),
            Some(b(u64::MAX - 1))
        );
        assert_eq!(Bin::from_layer_offset(0, 1 << 63), None);
        assert_eq!(Bin::cover(0, u64::MAX >> 1).collect::<Vec<_>>(), [Bin::ALL]);
        assert_eq!(Bin::cover(5, 4).count(), 0);
        assert_eq!(Bin::cover(u64::MAX - 3, u64::MAX).count(), 0);
    }

    #[test]
    fn cover_examples() {
        assert_eq!(Bin::cover(0, 0).collect::<Vec<_>>(), [b(0)]);
        // chunks 1..=6: 1, {2,3}, {4,5}, 6 -> bins 2, 5, 9, 12
        assert_eq!(
            Bin::cover(1, 6).collect::<Vec<_>>(),
            [b(2), b(5), b(9), b(12)]
        );
        assert_eq!(Bin::from_chunk_range(16, 23), Some(b(39)));
        assert_eq!(Bin::from_chunk_range(16, 22), None);
        assert_eq!(Bin::from_chunk_range(1, 2), None);
    }

    fn any_bin() -> impl Strategy<Value = Bin> {
        (0u32..=63).prop_flat_map(|l| {
            let max = (1u64 << (63 - l)) - 1;
            (Just(l), 0..=max).prop_map(|(l, o)| Bin::from_layer_offset(l, o).unwrap())
        })
    }

    proptest! {
        #[test]
        fn layer_offset_round_trip(bin in any_bin()) {
            prop_assert_eq!(Bin::from_layer_offset(bin.layer(), bin.layer_offset()), Some(bin));
        }

        #[test]
        fn children_and_parent(bin in any_bin()) {
            if let Some((l, r)) = bin.children() {
                prop_assert_eq!(l.parent(), Some(bin));
                prop_assert_eq!(r.parent(), Some(bin));
                prop_assert!(l.is_left() && r.is_right());
                prop_assert_eq!(l.sibling(), Some(r));
                prop_assert_eq!(l.layer() + 1, bin.layer());
                prop_assert_eq!(l.base_left(), bin.base_left());
                prop_assert_eq!(r.base_right(), bin.base_right());
            } else {
                prop_assert!(bin.is_leaf());
            }
            if let Some(s) = bin.sibling() {
                prop_assert_eq!(s.sibling(), Some(bin));
                prop_assert_eq!(s.parent(), bin.parent());
            }
        }

        /// The bin algebra against a naive model: a bin is the set of chunks
        /// `offset·2^l ..= offset·2^l + 2^l − 1`.
        #[test]
        fn against_naive_model(layer in 0u32..40, offset in 0u64..1_000_000, chunk in 0u64..(1 << 42)) {
            let bin = Bin::from_layer_offset(layer, offset).unwrap();
            let first = offset << layer;
            let last = first + (1u64 << layer) - 1;
            prop_assert_eq!(bin.raw(), (2 * offset + 1) * (1u64 << layer) - 1);
            prop_assert_eq!(bin.chunks(), Some(first..=last));
            prop_assert_eq!(bin.contains_chunk(chunk), first <= chunk && chunk <= last);
            prop_assert_eq!(Bin::from_chunk_range(first, last), Some(bin));
            let leaf = Bin::leaf(chunk).unwrap();
            prop_assert_eq!(bin.contains(leaf), first <= chunk && chunk <= last);
            if let Some(a) = leaf.ancestor_at(layer) {
                prop_assert!(a.contains(leaf));
                prop_assert_eq!(a.layer(), layer);
            }
        }

        #[test]
        fn cover_is_minimal_and_exact(first in 0u64..100_000, len in 1u64..100_000) {
            let last = first + len - 1;
            let bins: Vec<Bin> = Bin::cover(first, last).collect();
            let mut next = first;
            for (i, bin) in bins.iter().enumerate() {
                prop_assert_eq!(bin.first_chunk(), Some(next));
                next = bin.last_chunk().unwrap() + 1;
                // Minimal: no two neighbours merge into their common parent.
                if let Some(n) = bins.get(i + 1) {
                    prop_assert!(!(bin.sibling() == Some(*n) && bin.is_left()));
                }
            }
            prop_assert_eq!(next, last + 1);
            prop_assert!(bins.len() <= 2 * 64);
        }

        #[test]
        fn peaks_partition_the_content(n in 1u64..(1 << 40)) {
            let peaks: Vec<Bin> = Bin::peaks(n).collect();
            prop_assert_eq!(peaks.len() as u32, n.count_ones());
            let total: u64 = peaks.iter().map(|p| p.chunk_count()).sum();
            prop_assert_eq!(total, n);
            for w in peaks.windows(2) {
                prop_assert!(w[0].layer() > w[1].layer());
            }
        }

        #[test]
        fn u32_round_trip(raw in any::<u32>()) {
            prop_assert_eq!(Bin::from_u32(raw).to_u32(), Some(raw));
        }
    }
}
