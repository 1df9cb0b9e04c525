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

/// Our channel IDs as the network sees them: a keyed permutation of the internal ID.
///
/// Internally a channel ID is 16 random bits above the 16-bit index of its slot, so that a
/// datagram finds its channel in O(1). On the wire that index would show: consecutive
/// channels would get IDs ending `…0007`, `…0008`, while RFC 7574 §12.1 (R-8.3-a) wants IDs
/// as unpredictable as SCTP verification tags. A four-round Feistel network over the two
/// 16-bit halves, keyed with secrets from the endpoint's seed, maps internal IDs to wire IDs
/// one to one and back: every bit of the wire ID depends on the random bits and the key,
/// and lookup stays O(1).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChannelIdCipher([u64; 4]);

impl ChannelIdCipher {
    /// A permutation keyed with `keys` (secret, per endpoint).
    pub(crate) const fn new(keys: [u64; 4]) -> Self {
        Self(keys)
    }

    fn round(x: u16, key: u64) -> u16 {
        (fold_mul(u64::from(x) ^ key, MUL) >> 48) as u16
    }

    /// The wire ID of internal ID `id`.
    pub(crate) fn encrypt(&self, id: u32) -> u32 {
        let (mut l, mut r) = ((id >> 16) as u16, id as u16);
        for &k in &self.0 {
            (l, r) = (r, l ^ Self::round(r, k));
        }
        (u32::from(l) << 16) | u32::from(r)
    }

    /// The internal ID of wire ID `wire` (the inverse of [`ChannelIdCipher::encrypt`]).
    pub(crate) fn decrypt(&self, wire: u32) -> u32 {
        let (mut l, mut r) = ((wire >> 16) as u16, wire as u16);
        for &k in self.0.iter().rev() {
            (l, r) = (r ^ Self::round(l, k), l);
        }
        (u32::from(l) << 16) | u32::from(r)
    }
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
    fn channel_id_cipher_is_a_permutation_that_hides_the_slot() {
        let c = ChannelIdCipher::new([1, 22, 333, 4444]);
        let mut seen = alloc::collections::BTreeSet::new();
        for id in (0..=u32::MAX).step_by(65_537).chain(0..70_000) {
            let w = c.encrypt(id);
            assert_eq!(c.decrypt(w), id);
            seen.insert(w);
        }
        // One to one on what was tried.
        let tried = (0..=u32::MAX)
            .step_by(65_537)
            .chain(0..70_000)
            .collect::<alloc::collections::BTreeSet<u32>>();
        assert_eq!(seen.len(), tried.len());
        // Consecutive slots under the same random high half: the low 16 bits of the wire IDs
        // are not consecutive, and about half of all 32 bits flip between neighbours.
        let flips: u32 = (0..1000u32)
            .map(|slot| {
                (c.encrypt(0xabcd_0000 | slot) ^ c.encrypt(0xabcd_0000 | (slot + 1))).count_ones()
            })
            .sum();
        assert!(
            (12_000..20_000).contains(&flips),
            "{flips} bits flipped over 1,000 pairs"
        );
        let another = ChannelIdCipher::new([5, 6, 7, 8]);
        assert_ne!(c.encrypt(0xabcd_0001), another.encrypt(0xabcd_0001));
    }

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
