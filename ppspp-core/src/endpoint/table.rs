//! Hash tables keyed by chunk number, for the per-chunk bookkeeping on the hot path (what
//! each peer was asked for, what is in flight to it, how many peers a chunk is requested
//! from): O(1) where a B-tree costs a few cache misses per chunk.
//!
//! Keys can be chosen by the remote peer (the chunks it requests end up in flight), so the
//! hash is keyed with a secret drawn from the endpoint's seed: a peer cannot precompute
//! colliding chunk numbers. Nothing iterates these tables where order matters; callers that
//! need an order sort what they take out.

use core::hash::{BuildHasher, Hasher};

/// A map from chunk number to `V`.
pub(crate) type ChunkMap<V> = hashbrown::HashMap<u64, V, ChunkHash>;

/// The keyed hash of [`ChunkMap`]: a folded 64×64→128-bit multiply of the key-mixed chunk
/// number, which spreads entropy into both the low bits (bucket index) and the high bits
/// (hashbrown's control byte).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ChunkHash(u64);

impl ChunkHash {
    /// A hash keyed with `key` (secret, per endpoint).
    pub(crate) const fn new(key: u64) -> Self {
        Self(key)
    }
}

impl BuildHasher for ChunkHash {
    type Hasher = ChunkHasher;

    fn build_hasher(&self) -> ChunkHasher {
        ChunkHasher {
            key: self.0,
            state: 0,
        }
    }
}

/// The hasher built by [`ChunkHash`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChunkHasher {
    key: u64,
    state: u64,
}

const MUL: u64 = 0x9E37_79B9_7F4A_7C15;

fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl Hasher for ChunkHasher {
    fn write(&mut self, bytes: &[u8]) {
        for part in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..part.len()].copy_from_slice(part);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.state = fold_mul(self.state ^ x ^ self.key, MUL);
    }

    fn finish(&self) -> u64 {
        fold_mul(self.state, self.key | 1)
    }
}

/// A new empty [`ChunkMap`] hashed with `hash`.
pub(crate) fn chunk_map<V>(hash: ChunkHash) -> ChunkMap<V> {
    hashbrown::HashMap::with_hasher(hash)
}

/// The keys of `map`, sorted (for the rare paths where order matters).
pub(crate) fn sorted_keys<V>(map: &ChunkMap<V>) -> alloc::vec::Vec<u64> {
    let mut keys: alloc::vec::Vec<u64> = map.keys().copied().collect();
    keys.sort_unstable();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearby_chunks_spread_over_buckets_and_control_bytes() {
        // Consecutive chunk numbers (the common pattern) must not pile into a few buckets:
        // look at the low 10 bits (bucket index of a 1,024-slot table) and the top 7 bits
        // (hashbrown's control byte).
        let h = ChunkHash::new(0x0123_4567_89ab_cdef);
        let mut low = [0u32; 1024];
        let mut top = [0u32; 128];
        for c in 0..65_536u64 {
            let v = h.hash_one(c);
            low[(v & 1023) as usize] += 1;
            top[(v >> 57) as usize] += 1;
        }
        // 64 expected per bucket, 512 per control value.
        assert!(low.iter().all(|&n| (16..=160).contains(&n)), "{low:?}");
        assert!(top.iter().all(|&n| (256..=800).contains(&n)), "{top:?}");
    }

    #[test]
    fn the_key_changes_the_hash() {
        let a = ChunkHash::new(1);
        let b = ChunkHash::new(2);
        let same = (0..1000u64)
            .filter(|&c| a.hash_one(c) == b.hash_one(c))
            .count();
        assert_eq!(same, 0);
    }

    #[test]
    fn sorted_keys_are_in_chunk_order() {
        let mut m = chunk_map(ChunkHash::new(7));
        for c in [9u64, 3, 700, 1, 42] {
            m.insert(c, ());
        }
        assert_eq!(sorted_keys(&m), [1, 3, 9, 42, 700]);
    }
}
