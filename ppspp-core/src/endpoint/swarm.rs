//! Per-swarm state: content, integrity, availability, chunk picking.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::bin::Bin;
use crate::binmap::Binmap;
use crate::config::{PickerMode, SwarmConfig};
use crate::event::SwarmHandle;
use crate::hash::HashValue;
use crate::merkle::{MerkleTree, NodeHashes, PartialTree};
use crate::rand::Rng;
use crate::store::ChunkStore;
use crate::time::Instant;

/// Where the hashes a swarm serves and verifies come from.
#[derive(Debug)]
pub(crate) enum Tree {
    /// A seeder's complete tree.
    Full(Arc<MerkleTree>),
    /// A downloader's verified partial tree.
    Partial(Box<PartialTree>),
}

impl Tree {
    pub(crate) fn chunk_count(&self) -> Option<u64> {
        match self {
            Self::Full(t) => Some(t.chunk_count()),
            Self::Partial(t) => t.chunk_count(),
        }
    }

    pub(crate) fn content_len(&self) -> Option<u64> {
        match self {
            Self::Full(t) => Some(t.content_len()),
            Self::Partial(t) => t.content_len(),
        }
    }

    pub(crate) fn source(&self) -> &dyn NodeHashes {
        match self {
            Self::Full(t) => &**t,
            Self::Partial(t) => &**t,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Swarm {
    pub(crate) handle: SwarmHandle,
    pub(crate) cfg: SwarmConfig,
    pub(crate) swarm_id: HashValue,
    pub(crate) store: Box<dyn ChunkStore>,
    pub(crate) tree: Tree,
    /// Chunks verified and stored.
    pub(crate) have: Binmap,
    /// Chunks requested from some peer and not yet received (value: how many peers).
    pub(crate) requested: BTreeMap<u64, u8>,
    /// Per-chunk count of connected peers that have it (once the chunk count is known).
    pub(crate) avail: Vec<u16>,
    pub(crate) complete: bool,
    pub(crate) channels: BTreeSet<u32>,
    pub(crate) unchoked: BTreeSet<u32>,
    pub(crate) optimistic: Option<u32>,
    pub(crate) next_choke_round: Instant,
    pub(crate) playback: u64,
    /// Addresses learnt by PEX and not yet tried.
    pub(crate) pex_candidates: BTreeSet<SocketAddr>,
    /// Addresses ever connected, so PEX does not reconnect in a loop.
    pub(crate) tried: BTreeSet<SocketAddr>,
    pub(crate) next_pex: Instant,
    pub(crate) store_failed: bool,
}

impl Swarm {
    pub(crate) fn chunk_count(&self) -> Option<u64> {
        self.tree.chunk_count()
    }

    /// Sets up the availability counts once the chunk count is known.
    pub(crate) fn ensure_avail(&mut self, peers: impl Iterator<Item = Binmap>) {
        if !self.avail.is_empty() {
            return;
        }
        let Some(n) = self.chunk_count() else { return };
        // One u16 per chunk: 2 MiB for a million chunks. Larger contents skip rarity counts.
        if n > (1 << 24) {
            return;
        }
        self.avail = alloc::vec![0; n as usize];
        for map in peers {
            self.add_avail(&map, 1);
        }
    }

    /// Adds (or removes, with `delta = -1`) a peer's map to the availability counts.
    pub(crate) fn add_avail(&mut self, map: &Binmap, delta: i32) {
        if self.avail.is_empty() {
            return;
        }
        let n = self.avail.len() as u64;
        for r in map.ranges() {
            let end = r.end.min(n);
            for c in r.start.min(n)..end {
                let v = &mut self.avail[c as usize];
                *v = if delta > 0 {
                    v.saturating_add(1)
                } else {
                    v.saturating_sub(1)
                };
            }
        }
    }

    /// Adds chunks `first..end` of one peer to the availability counts, skipping what that peer
    /// was already counted for (`before`).
    pub(crate) fn add_avail_range(&mut self, before: &Binmap, first: u64, end: u64) {
        if self.avail.is_empty() {
            return;
        }
        let n = self.avail.len() as u64;
        let end = end.min(n);
        if first >= end {
            return;
        }
        for gap in before.missing_in(first..end) {
            for c in gap {
                let v = &mut self.avail[c as usize];
                *v = v.saturating_add(1);
            }
        }
    }

    /// Picks up to `want` chunks to request from a peer with map `peer_have`, none of which we
    /// have or requested from anyone (`allow_dup` relaxes the latter for the endgame: chunks
    /// requested from fewer than two peers and not from this one, `mine`). Returns inclusive
    /// ranges.
    pub(crate) fn pick(
        &self,
        peer_have: &Binmap,
        mine: &BTreeMap<u64, super::channel::Requested>,
        want: usize,
        allow_dup: bool,
        rng: &mut Rng,
    ) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        if want == 0 {
            return out;
        }
        let limit = self.chunk_count().unwrap_or(u64::MAX);
        let usable = |c: u64| -> bool {
            if c >= limit || self.have.contains(c) {
                return false;
            }
            match self.requested.get(&c) {
                None => true,
                Some(&k) => allow_dup && k < 2 && !mine.contains_key(&c),
            }
        };
        // Candidate ranges: what the peer has and we lack, in order.
        let window = match self.cfg.picker {
            PickerMode::InOrder { lookahead } => Some((
                self.playback,
                self.playback.saturating_add(lookahead.max(1)),
            )),
            PickerMode::RarestFirst => None,
        };
        let mut taken = 0usize;
        let take = |c: u64, out: &mut Vec<(u64, u64)>| match out.last_mut() {
            Some(l) if l.1 + 1 == c => l.1 = c,
            _ => out.push((c, c)),
        };
        if let Some((from, to)) = window {
            // In order from the playback position (streaming): the earliest chunks first.
            for r in peer_have.difference_ranges(&self.have) {
                let (a, b) = (r.start.max(from), r.end.min(to).min(limit));
                for c in a..b {
                    if usable(c) {
                        take(c, &mut out);
                        taken += 1;
                        if taken >= want {
                            return out;
                        }
                    }
                }
                if r.start >= to {
                    break;
                }
            }
            return out;
        }
        // Rarest first: sample candidate runs from a random starting point, prefer the rarest
        // chunk among the sample, and take consecutive chunks after it (one REQUEST covers a
        // run). Cost stays proportional to what is picked, not to the content size.
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for r in peer_have.difference_ranges(&self.have) {
            let end = r.end.min(limit);
            if r.start < end {
                runs.push((r.start, end));
            }
            if runs.len() >= 4096 {
                break;
            }
        }
        if runs.is_empty() {
            return out;
        }
        let mut picked: BTreeSet<u64> = BTreeSet::new();
        let mut attempts = 0;
        while taken < want && attempts < 64 {
            attempts += 1;
            // Sample a few random positions and keep the rarest usable one.
            let mut best: Option<(u16, u64)> = None;
            for _ in 0..8 {
                let (a, b) = runs[rng.gen_range(0..runs.len() as u64) as usize];
                let c = a + rng.gen_range(0..b - a);
                // Walk forward to a usable chunk within the run.
                let mut c2 = c;
                while c2 < b && (picked.contains(&c2) || !usable(c2)) {
                    c2 += 1;
                    if c2 - c > 64 {
                        break;
                    }
                }
                if c2 >= b || picked.contains(&c2) || !usable(c2) {
                    continue;
                }
                let rarity = self.avail.get(c2 as usize).copied().unwrap_or(0);
                if best.is_none_or(|(r, _)| rarity < r) {
                    best = Some((rarity, c2));
                }
            }
            let Some((rarity, start)) = best else {
                // Sampling found nothing: fall back to a linear scan.
                for &(a, b) in &runs {
                    for c in a..b {
                        if !picked.contains(&c) && usable(c) {
                            picked.insert(c);
                            taken += 1;
                            if taken >= want {
                                break;
                            }
                        }
                    }
                    if taken >= want {
                        break;
                    }
                }
                break;
            };
            // Take a run of equally rare chunks from there (at most 16 at a time).
            let mut c = start;
            let mut run = 0;
            while taken < want && run < 16 {
                if picked.contains(&c) || !usable(c) || !peer_have.contains(c) {
                    break;
                }
                if self.avail.get(c as usize).copied().unwrap_or(0) > rarity {
                    break;
                }
                picked.insert(c);
                taken += 1;
                run += 1;
                c += 1;
            }
        }
        for c in picked {
            take(c, &mut out);
        }
        out
    }

    /// The largest aligned bin around `chunk` that we hold completely (for HAVE and ACK
    /// aggregation, RFC 7574 §4.3).
    pub(crate) fn complete_bin(&self, chunk: u64) -> Bin {
        self.have
            .largest_complete_bin(chunk)
            .or_else(|| Bin::leaf(chunk))
            .unwrap_or(Bin::NONE)
    }
}
