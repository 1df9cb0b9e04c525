//! Chunks received before the hashes that prove them (RFC 7574 §5.3, R-5.3-d): a sender may
//! skip the uncle hashes that DATA still in flight will give (§5.3, "optimistically skip"), so
//! a datagram that is lost or overtaken leaves every chunk behind it unverifiable until it
//! arrives. Those chunks wait here, indexed by the tree node whose hash they await, and leave
//! when that node verifies.
//!
//! The budget is in bytes ([`MAX_HELD_BYTES`]): what arrives in the time a late datagram is
//! late. 64 chunks (the bound before) are 5 ms at 100 Mbit/s with 1 KiB chunks: a datagram
//! overtaken by 10 ms made everything past the 64th dropped, resent, and the sender's losses
//! (and its congestion window's) spurious.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use crate::bin::Bin;
use crate::wire::Data;

/// Bytes of held DATA per swarm (160 ms at 100 Mbit/s).
const MAX_HELD_BYTES: usize = 2 << 20;

/// One swarm's held chunks.
#[derive(Debug, Default)]
pub(crate) struct Held {
    /// Chunk → (the channel it came on, its DATA, the node whose hash it awaits;
    /// [`Bin::NONE`]: the peaks).
    chunks: BTreeMap<u64, (u32, Data, Bin)>,
    /// (awaited node, chunk), to find what a verified node releases without a scan.
    waiting: BTreeSet<(Bin, u64)>,
    bytes: usize,
}

impl Held {
    /// Whether nothing is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// How many chunks are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.chunks.len()
    }

    /// Holds chunk `c` from channel `from` until `awaited` verifies. Returns false when the
    /// budget is spent (a copy of `c` already held is replaced).
    pub(crate) fn insert(&mut self, c: u64, from: u32, d: Data, awaited: Bin) -> bool {
        let len = d.payload.len();
        let old = self.remove(c);
        if old.is_none() && self.bytes + len > MAX_HELD_BYTES {
            return false;
        }
        self.bytes += len;
        self.waiting.insert((awaited, c));
        self.chunks.insert(c, (from, d, awaited));
        true
    }

    fn remove(&mut self, c: u64) -> Option<(u32, Data)> {
        let (from, d, awaited) = self.chunks.remove(&c)?;
        self.waiting.remove(&(awaited, c));
        self.bytes -= d.payload.len();
        Some((from, d))
    }

    /// Forgets the chunks below `floor` (a live stream's discard window moved past them).
    pub(crate) fn retain_from(&mut self, floor: u64) {
        let below: Vec<u64> = self.chunks.range(..floor).map(|(&c, _)| c).collect();
        for c in below {
            self.remove(c);
        }
    }

    /// Takes every held chunk `ready(chunk, awaited)` accepts, in chunk order.
    pub(crate) fn take_ready(&mut self, ready: impl Fn(u64, Bin) -> bool) -> Vec<(u32, Data)> {
        let chunks: Vec<u64> = self
            .chunks
            .iter()
            .filter(|(c, (_, _, bin))| ready(**c, *bin))
            .map(|(&c, _)| c)
            .collect();
        chunks.into_iter().filter_map(|c| self.remove(c)).collect()
    }

    /// Takes the held chunks awaiting `node` (its hash just verified).
    pub(crate) fn take_awaiting(&mut self, node: Bin) -> Vec<(u32, Data)> {
        let waiting: Vec<u64> = self
            .waiting
            .range((node, 0)..=(node, u64::MAX))
            .map(|&(_, c)| c)
            .collect();
        waiting.into_iter().filter_map(|c| self.remove(c)).collect()
    }

    /// Takes the held chunks that the verification of `chunk` may have released: a copy of
    /// `chunk` itself, and those awaiting a node on its path or a sibling of one (the uncles
    /// that came with it), when `verified` says that node is. The rest of the tree is
    /// untouched by it, so nothing else needs looking at.
    pub(crate) fn take_released_by(
        &mut self,
        chunk: u64,
        verified: impl Fn(Bin) -> bool,
    ) -> Vec<(u32, Data)> {
        let mut out: Vec<(u32, Data)> = self.remove(chunk).into_iter().collect();
        let mut node = Bin::leaf(chunk);
        while let Some(n) = node {
            for b in [Some(n), n.sibling()].into_iter().flatten() {
                if self.waiting.range((b, 0)..=(b, u64::MAX)).next().is_some() && verified(b) {
                    out.extend(self.take_awaiting(b));
                }
            }
            node = n.parent();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ChunkAddressing, ChunkSpec};
    use bytes::Bytes;

    fn data(c: u64, len: usize) -> Data {
        Data {
            spec: ChunkSpec::chunk(ChunkAddressing::Bin32, c, 1024).expect("spec"),
            timestamp: 0,
            payload: Bytes::from(alloc::vec![0u8; len]),
        }
    }

    #[test]
    fn a_verified_node_releases_only_what_awaits_it_or_its_subtree_path() {
        let mut h = Held::default();
        let leaf = |c| Bin::leaf(c).expect("leaf");
        // Chunks 5 and 6 wait for chunk 4's hash; 9 waits for the node 8..=9's sibling, 10..=11.
        assert!(h.insert(5, 1, data(5, 1024), leaf(4)));
        assert!(h.insert(6, 1, data(6, 1024), leaf(4).parent().expect("parent")));
        let pair = leaf(10).parent().expect("parent");
        assert!(h.insert(9, 1, data(9, 1024), pair));
        // Chunk 4 verifies: its leaf and its path release 5 and 6, not 9.
        let out = h.take_released_by(4, |_| true);
        let mut got: Vec<u64> = out
            .iter()
            .map(|(_, d)| d.spec.to_chunks(1024).expect("chunks").0)
            .collect();
        got.sort_unstable();
        assert_eq!(got, [5, 6]);
        assert_eq!(h.len(), 1);
        // Nothing is released while the node is not verified.
        assert!(h.take_released_by(11, |_| false).is_empty());
        assert_eq!(h.take_released_by(11, |_| true).len(), 1);
        assert!(h.is_empty());
    }

    #[test]
    fn the_budget_is_in_bytes_and_a_copy_replaces_the_held_one() {
        let mut h = Held::default();
        let n = MAX_HELD_BYTES / 1024;
        for c in 0..n as u64 {
            assert!(h.insert(c + 1, 1, data(c + 1, 1024), Bin::leaf(0).expect("leaf")));
        }
        assert!(!h.insert(n as u64 + 1, 1, data(0, 1024), Bin::NONE));
        // Another copy of a held chunk takes its place, within the budget.
        assert!(h.insert(1, 2, data(1, 1024), Bin::NONE));
        assert_eq!(h.len(), n);
        h.retain_from(n as u64 / 2);
        assert_eq!(h.len(), n - n / 2 + 1);
        let ready = h.take_ready(|_, b| b.is_none());
        assert!(ready.is_empty(), "chunk 1 went with the floor");
        assert_eq!(h.take_ready(|_, _| true).len(), n - n / 2 + 1);
        assert!(h.is_empty());
        assert_eq!(h.bytes, 0);
    }
}
