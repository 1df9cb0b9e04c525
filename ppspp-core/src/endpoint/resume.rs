//! Resuming a download from saved state: nothing saved is believed without checking.

use super::SwarmError;
use crate::binmap::Binmap;
use crate::config::SwarmConfig;
use crate::hash::HashValue;
use crate::merkle::{ContentSize, PartialTree};
use crate::store::ChunkStore;
use alloc::collections::BTreeMap;

/// Rebuilds a download's verified state from saved resume data (see
/// [`SwarmContent::Partial`]). Nothing saved is believed blindly: the saved tree nodes must fold
/// up, pair by pair, to the swarm ID, and every saved chunk is read back from the store and
/// hashed against its verified leaf. What fails is simply downloaded again.
pub(super) fn resume_tree(
    cfg: &SwarmConfig,
    size: Option<u64>,
    verified: &[core::ops::Range<u64>],
    hashes: &[(crate::bin::Bin, HashValue)],
    store: &mut dyn ChunkStore,
    have: &mut Binmap,
) -> Result<PartialTree, SwarmError> {
    use crate::bin::Bin;
    let content = size.map_or(ContentSize::Unknown, ContentSize::Bytes);
    let mut tree = PartialTree::new(cfg.hash, cfg.chunk_size, cfg.swarm_id, content)
        .map_err(|_| SwarmError::InvalidConfig("content size or hash"))?;
    // Resume needs the size: without it the tree's shape (and the root's bin) is unknown.
    let (Some(len), false) = (size, hashes.is_empty()) else {
        return Ok(tree);
    };
    let cs = u64::from(cfg.chunk_size);
    let n = len.div_ceil(cs);
    let Some(root) = Bin::root_covering(n) else {
        return Ok(tree);
    };
    let saved: BTreeMap<Bin, HashValue> = hashes.iter().copied().collect();
    let zero = cfg.hash.empty();
    let past_end = |b: Bin| b.first_chunk().is_some_and(|f| f >= n);
    let node = |b: Bin| -> Option<HashValue> {
        if past_end(b) {
            Some(zero)
        } else {
            saved.get(&b).copied()
        }
    };
    // Top down from the root: a pair of children is accepted when it folds into its
    // (already accepted) parent.
    let mut accepted: BTreeMap<Bin, HashValue> = BTreeMap::new();
    accepted.insert(root, cfg.swarm_id);
    let mut frontier = alloc::vec![root];
    while let Some(parent) = frontier.pop() {
        let Some((l, r)) = parent.children() else {
            continue;
        };
        let (Some(lh), Some(rh)) = (node(l), node(r)) else {
            continue;
        };
        let ph = accepted[&parent];
        let folded = if lh.is_zero() && rh.is_zero() {
            zero
        } else {
            cfg.hash.digest_pair(&lh, &rh)
        };
        if folded != ph {
            continue;
        }
        for (b, h) in [(l, lh), (r, rh)] {
            if !past_end(b) {
                accepted.insert(b, h);
                frontier.push(b);
            }
        }
    }
    for (b, h) in &accepted {
        if *b != root {
            let _ = tree.add_trusted(*b, h);
        }
    }
    // Every saved chunk must still be on disk as it was verified.
    let mut buf = alloc::vec![0u8; cfg.chunk_size as usize];
    for r in verified {
        for c in r.start..r.end.min(n) {
            let Some(leaf) = Bin::leaf(c).and_then(|b| accepted.get(&b)) else {
                continue;
            };
            let expect = if c + 1 < n { cs } else { len - (n - 1) * cs };
            let ok = match store.read_chunk(c, &mut buf) {
                Ok(k) => {
                    k as u64 == expect
                        && cfg.hash.digest(&buf[..k]) == *leaf
                        && tree.verify_chunk(c, &buf[..k]).is_ok()
                }
                Err(_) => false,
            };
            if ok {
                have.insert(c);
            }
        }
    }
    Ok(tree)
}
