//! Sparse storage of verified node hashes for [`super::PartialTree`].
//!
//! Bins are numbered in order, so the bins of an aligned subtree are consecutive integers: a
//! page of `2^PAGE_BITS` consecutive bin numbers holds a whole subtree of `2^(PAGE_BITS−1)`
//! leaves plus one higher node. Pages are allocated on the first write, so a receiver pays only
//! for the parts of the tree it has verified, whatever the tree's width (a live stream's tree
//! is unbounded).

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use crate::bin::Bin;

/// log2 of the number of bins per page.
const PAGE_BITS: u32 = 10;
/// Bins per page.
const PAGE_BINS: usize = 1 << PAGE_BITS;
/// Words of the presence bitmap of a page.
const PAGE_WORDS: usize = PAGE_BINS / 64;

/// One page: the hashes of `PAGE_BINS` consecutive bins and which of them are set.
#[derive(Clone, Debug)]
struct Page {
    present: [u64; PAGE_WORDS],
    hashes: Box<[u8]>,
}

/// The most page slots the dense table may have (8 MiB of pointers, a tree of 2^29 leaves);
/// pages beyond it, or of a tree of unknown width, live in the sparse map.
const DENSE_MAX_PAGES: u64 = 1 << 20;

/// Verified node hashes, keyed by bin number.
///
/// Pages with a key below `dense.len()` are found by indexing (the static case, where the
/// tree's width is known); others by a B-tree lookup.
#[derive(Clone, Debug)]
pub(crate) struct NodeStore {
    hlen: usize,
    dense: Vec<Option<Box<Page>>>,
    sparse: BTreeMap<u64, Box<Page>>,
    nodes: u64,
}

impl NodeStore {
    /// An empty store for hashes of `hlen` bytes.
    pub(crate) const fn new(hlen: usize) -> Self {
        Self {
            hlen,
            dense: Vec::new(),
            sparse: BTreeMap::new(),
            nodes: 0,
        }
    }

    /// Declares that bins up to `max_bin` will be used: pages up to it get direct slots (if
    /// the table stays within bounds), and pages already in the sparse map move there.
    pub(crate) fn reserve_dense(&mut self, max_bin: Bin) {
        let pages = (max_bin.raw() >> PAGE_BITS) + 1;
        if pages > DENSE_MAX_PAGES || pages <= self.dense.len() as u64 {
            return;
        }
        self.dense.resize_with(pages as usize, || None);
        let keys: Vec<u64> = self.sparse.range(..pages).map(|(&k, _)| k).collect();
        for k in keys {
            if let Some(page) = self.sparse.remove(&k) {
                self.dense[k as usize] = Some(page);
            }
        }
    }

    /// Stores `hash` (exactly `hlen` bytes) for `bin`, replacing any previous value.
    pub(crate) fn insert(&mut self, bin: Bin, hash: &[u8]) {
        let (key, i) = split(bin);
        let hlen = self.hlen;
        let new_page = || {
            Box::new(Page {
                present: [0; PAGE_WORDS],
                hashes: vec![0; PAGE_BINS * hlen].into_boxed_slice(),
            })
        };
        let page = match self.dense.get_mut(key as usize) {
            Some(slot) if key < DENSE_MAX_PAGES => slot.get_or_insert_with(new_page),
            _ => self.sparse.entry(key).or_insert_with(new_page),
        };
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        if page.present[word] & bit == 0 {
            page.present[word] |= bit;
            self.nodes += 1;
        }
        page.hashes[i * hlen..(i + 1) * hlen].copy_from_slice(&hash[..hlen]);
    }

    /// The stored hash of `bin`.
    #[inline]
    pub(crate) fn get(&self, bin: Bin) -> Option<&[u8]> {
        let (key, i) = split(bin);
        let page = match self.dense.get(key as usize) {
            Some(slot) if key < DENSE_MAX_PAGES => slot.as_deref()?,
            _ => self.sparse.get(&key)?,
        };
        if page.present[i / 64] & (1 << (i % 64)) == 0 {
            return None;
        }
        Some(&page.hashes[i * self.hlen..(i + 1) * self.hlen])
    }

    /// Whether `bin` has a stored hash.
    #[inline]
    pub(crate) fn contains(&self, bin: Bin) -> bool {
        self.get(bin).is_some()
    }

    /// Forgets every page whose bins all lie below bin number `raw` (a live receiver's
    /// discard window); pages straddling `raw` stay, so at most one page is kept extra.
    pub(crate) fn remove_pages_below(&mut self, raw: u64) {
        let first_kept = raw >> PAGE_BITS;
        let count = |p: &Page| {
            p.present
                .iter()
                .map(|w| u64::from(w.count_ones()))
                .sum::<u64>()
        };
        let mut removed = 0;
        for slot in self.dense.iter_mut().take(first_kept as usize) {
            if let Some(p) = slot.take() {
                removed += count(&p);
            }
        }
        let kept = self.sparse.split_off(&first_kept);
        for p in core::mem::replace(&mut self.sparse, kept).values() {
            removed += count(p);
        }
        self.nodes -= removed;
    }

    /// The number of stored hashes.
    pub(crate) const fn len(&self) -> u64 {
        self.nodes
    }

    /// Bytes of heap held: pages, the dense table and an estimate of the sparse map's nodes.
    pub(crate) fn heap_bytes(&self) -> usize {
        let pages = self.dense.iter().flatten().count() + self.sparse.len();
        let page = size_of::<Page>() + PAGE_BINS * self.hlen;
        // B-tree nodes hold up to 11 (key, pointer) pairs; assume them half full.
        let sparse_nodes = self.sparse.len() * 2 * (size_of::<u64>() + size_of::<usize>());
        pages * page + self.dense.capacity() * size_of::<usize>() + sparse_nodes
    }
}

/// The page key and the index within the page of `bin`.
#[inline]
fn split(bin: Bin) -> (u64, usize) {
    let raw = bin.raw();
    (raw >> PAGE_BITS, (raw as usize) & (PAGE_BINS - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_across_pages() {
        let mut s = NodeStore::new(20);
        let h = [7u8; 20];
        for raw in [0u64, 1, 1023, 1024, 1 << 40, u64::MAX - 1] {
            assert!(!s.contains(Bin::from_raw(raw)));
            s.insert(Bin::from_raw(raw), &h);
            assert_eq!(s.get(Bin::from_raw(raw)), Some(&h[..]));
        }
        s.reserve_dense(Bin::from_raw(5000));
        assert_eq!(s.get(Bin::from_raw(1024)), Some(&h[..]));
        s.insert(Bin::from_raw(3000), &h);
        assert_eq!(s.get(Bin::from_raw(3000)), Some(&h[..]));
        s.insert(Bin::from_raw(0), &[1u8; 20]);
        assert_eq!(s.get(Bin::from_raw(0)), Some(&[1u8; 20][..]));
        assert_eq!(s.len(), 7);
        assert!(s.get(Bin::from_raw(2)).is_none());
    }
}
