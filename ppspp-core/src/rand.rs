//! The engine's randomness: a seeded ChaCha20 stream.
//!
//! The core never asks the operating system for randomness. The driver supplies a 32-byte seed
//! (the UDP adapter takes it from the OS, the simulator derives it from its own seed), and every
//! random decision the core makes (channel IDs, tie-breaking, shuffles, timer jitter) is drawn
//! from an [`Rng`] built from that seed. The same seed therefore gives the same sequence of
//! decisions, which is what makes simulation runs replayable.
//!
//! The generator is a cryptographically secure one (ChaCha20, from `rand_chacha` without default
//! features) rather than a small PRNG, because RFC 7574 relies on unpredictable values:
//!
//! - §12.1: channel IDs must be unpredictable, so that an off-path attacker cannot forge a
//!   datagram for an existing channel or complete a handshake from a spoofed address;
//! - §8.3: channel ID 0 is reserved for the initiating HANDSHAKE, so a channel's own ID is
//!   never zero ([`Rng::channel_id`]).
//!
//! All integer draws are exactly uniform (no modulo bias) and all operations are total except
//! [`Rng::gen_range`] on an empty range, which is a programming error.

use core::fmt;
use core::ops::{Bound, RangeBounds};

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};

/// A deterministic, cryptographically secure random number generator (ChaCha20): the same
/// seed gives the same sequence (see the tests below).
///
/// `Debug` deliberately prints no state: the stream is secret.
#[derive(Clone)]
pub(crate) struct Rng {
    inner: ChaCha20Rng,
}

#[cfg_attr(
    not(test),
    allow(dead_code, reason = "the seeded helpers serve tests and the test kit")
)]
impl Rng {
    /// The generator whose output is fully determined by `seed`.
    pub(crate) fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            inner: ChaCha20Rng::from_seed(seed),
        }
    }

    /// A generator seeded from a single `u64`, expanded to 32 bytes deterministically.
    ///
    /// Convenient for tests and simulations. Not for production: 64 bits of seed are guessable
    /// in principle, which defeats the unpredictability RFC 7574 §12.1 wants from channel IDs.
    pub(crate) fn seed_from_u64(seed: u64) -> Self {
        Self {
            inner: ChaCha20Rng::seed_from_u64(seed),
        }
    }

    /// An independent generator seeded from 32 bytes of this one's output.
    ///
    /// Use it to give a sub-component (a swarm, a channel, a simulated link) its own stream, so
    /// that the number of draws one makes does not shift what another sees.
    pub(crate) fn fork(&mut self) -> Self {
        let mut seed = [0u8; 32];
        self.fill(&mut seed);
        Self::from_seed(seed)
    }

    /// The next 32 random bits.
    pub(crate) fn next_u32(&mut self) -> u32 {
        self.inner.next_u32()
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Fills `dest` with random bytes.
    pub(crate) fn fill(&mut self, dest: &mut [u8]) {
        self.inner.fill_bytes(dest);
    }

    /// A uniformly distributed value in `range`, without modulo bias.
    ///
    /// Accepts any range of `u64`: `a..b`, `a..=b`, `..b`, `a..`, `..`.
    ///
    /// # Panics
    ///
    /// If the range is empty (for example `5..5` or `6..=5`). Ranges come from the code, never
    /// from the network, so an empty one is a bug in the caller.
    pub(crate) fn gen_range<R: RangeBounds<u64>>(&mut self, range: R) -> u64 {
        let low = match range.start_bound() {
            Bound::Included(&x) => Some(x),
            Bound::Excluded(&x) => x.checked_add(1),
            Bound::Unbounded => Some(0),
        };
        let high = match range.end_bound() {
            Bound::Included(&x) => Some(x),
            Bound::Excluded(&x) => x.checked_sub(1),
            Bound::Unbounded => Some(u64::MAX),
        };
        match (low, high) {
            (Some(low), Some(high)) if low <= high => low + self.below_inclusive(high - low),
            _ => panic!("Rng::gen_range called with an empty range"),
        }
    }

    /// `true` with probability `p`.
    ///
    /// `p ≤ 0` (and NaN) always gives `false`, `p ≥ 1` always `true`. The resolution is 2⁻⁶⁴.
    pub(crate) fn gen_bool(&mut self, p: f64) -> bool {
        if p.is_nan() || p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        // p·2^64 is in (0, 2^64); the float-to-int cast saturates and is exact enough.
        let threshold = (p * 18_446_744_073_709_551_616.0) as u64;
        self.next_u64() < threshold
    }

    /// `true` with probability `numerator / denominator`, computed exactly in integers.
    ///
    /// A zero denominator gives `false`; `numerator ≥ denominator` gives `true`.
    pub(crate) fn gen_ratio(&mut self, numerator: u64, denominator: u64) -> bool {
        if numerator >= denominator {
            return denominator != 0;
        }
        self.below_inclusive(denominator - 1) < numerator
    }

    /// Shuffles `slice` in place, every permutation equally likely (Fisher–Yates).
    pub(crate) fn shuffle<T>(&mut self, slice: &mut [T]) {
        for i in (1..slice.len()).rev() {
            // `i as u64` is lossless on every supported target (usize ≤ 64 bits).
            let j = self.below_inclusive(i as u64) as usize;
            slice.swap(i, j);
        }
    }

    /// A uniformly chosen element of `slice`, or `None` if it is empty.
    pub(crate) fn choose<'a, T>(&mut self, slice: &'a [T]) -> Option<&'a T> {
        let last = slice.len().checked_sub(1)?;
        slice.get(self.below_inclusive(last as u64) as usize)
    }

    /// A fresh channel ID: uniformly random over the nonzero `u32` values.
    ///
    /// RFC 7574 §12.1 wants channel IDs unpredictable to off-path attackers, and §8.3 reserves
    /// 0 for the initiating HANDSHAKE, so zero is never returned. Uniqueness among the channels
    /// of an endpoint is the caller's job (a collision has probability about n/2³²).
    pub(crate) fn channel_id(&mut self) -> u32 {
        loop {
            let id = self.next_u32();
            if id != 0 {
                return id;
            }
        }
    }

    /// A uniform value in `0..=max` (Lemire's multiply-and-reject method: exact, usually one
    /// draw).
    fn below_inclusive(&mut self, max: u64) -> u64 {
        let Some(span) = max.checked_add(1) else {
            return self.next_u64();
        };
        // x·span / 2^64 is uniform once the low halves that fall in the short first stripe
        // (there are 2^64 mod span of them) are rejected.
        let threshold = span.wrapping_neg() % span;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(span);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }
}

impl fmt::Debug for Rng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rng").finish_non_exhaustive()
    }
}

/// Lets the engine's generator drive code written against `rand_core` 0.6.
impl RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        self.inner.next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.inner.fill_bytes(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.inner.try_fill_bytes(dest)
    }
}

impl CryptoRng for Rng {}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};

    use super::Rng;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::from_seed([42; 32]);
        let mut b = Rng::from_seed([42; 32]);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
            assert_eq!(a.next_u32(), b.next_u32());
            assert_eq!(a.gen_range(10..1_000), b.gen_range(10..1_000));
            assert_eq!(a.channel_id(), b.channel_id());
            assert_eq!(a.gen_bool(0.3), b.gen_bool(0.3));
        }
        let mut x = [0u8; 37];
        let mut y = [0u8; 37];
        a.fill(&mut x);
        b.fill(&mut y);
        assert_eq!(x, y);
        let mut v: Vec<u32> = (0..50).collect();
        let mut w = v.clone();
        a.shuffle(&mut v);
        b.shuffle(&mut w);
        assert_eq!(v, w);
    }

    #[test]
    fn different_seeds_differ() {
        let mut a = Rng::from_seed([1; 32]);
        let mut b = Rng::from_seed([2; 32]);
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        assert_ne!(xs, ys);
    }

    /// Known answer: ChaCha20 with an all-zero key and nonce, block 0 (the classic test vector
    /// of the ChaCha specification, keystream `76 b8 e0 ad a0 f1 3d 90 …`).
    #[test]
    fn zero_seed_is_chacha20_keystream() {
        let mut rng = Rng::from_seed([0; 32]);
        let mut out = [0u8; 8];
        rng.fill(&mut out);
        assert_eq!(out, [0x76, 0xb8, 0xe0, 0xad, 0xa0, 0xf1, 0x3d, 0x90]);
        let mut rng = Rng::from_seed([0; 32]);
        assert_eq!(rng.next_u32(), 0xade0_b876);
    }

    #[test]
    fn fork_is_deterministic_and_independent() {
        let mut a = Rng::from_seed([9; 32]);
        let mut b = Rng::from_seed([9; 32]);
        let mut fa = a.fork();
        let mut fb = b.fork();
        assert_eq!(fa.next_u64(), fb.next_u64());
        // The parent moved on: it no longer produces what the child does.
        assert_ne!(a.next_u64(), fa.next_u64());
    }

    #[test]
    fn seed_from_u64_is_deterministic() {
        assert_eq!(
            Rng::seed_from_u64(5).next_u64(),
            Rng::seed_from_u64(5).next_u64()
        );
        assert_ne!(
            Rng::seed_from_u64(5).next_u64(),
            Rng::seed_from_u64(6).next_u64()
        );
    }

    #[test]
    fn gen_range_edges() {
        let mut rng = Rng::from_seed([3; 32]);
        assert_eq!(rng.gen_range(5..6), 5);
        assert_eq!(rng.gen_range(5..=5), 5);
        assert_eq!(rng.gen_range(u64::MAX..=u64::MAX), u64::MAX);
        // Full range and half-open forms do not panic.
        let _ = rng.gen_range(..);
        let _ = rng.gen_range(0..=u64::MAX);
        assert!(rng.gen_range(..3) < 3);
        assert!(rng.gen_range(u64::MAX - 1..) >= u64::MAX - 1);
    }

    #[test]
    #[should_panic(expected = "empty range")]
    fn gen_range_empty_panics() {
        let mut rng = Rng::from_seed([3; 32]);
        let _ = rng.gen_range(5..5);
    }

    /// A chi-square-free sanity check: every bucket of a small range gets a fair share.
    #[test]
    fn gen_range_is_roughly_uniform() {
        let mut rng = Rng::from_seed([11; 32]);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[rng.gen_range(0..6) as usize] += 1;
        }
        for &c in &counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }

    /// With a span just above 2^63, a modulo-based draw would pick the low half twice as often
    /// as the high half; the rejection method keeps them even.
    #[test]
    fn gen_range_has_no_modulo_bias() {
        let mut rng = Rng::from_seed([12; 32]);
        let max = (1u64 << 63) + (1 << 62); // 3·2^62 values in 0..=max roughly
        let mut low = 0u32;
        let n = 20_000;
        for _ in 0..n {
            if rng.gen_range(0..=max) < (1 << 62) {
                low += 1;
            }
        }
        // Expect a third of the draws below 2^62; modulo reduction would give a half.
        assert!((6_000..7_400).contains(&low), "{low}");
    }

    #[test]
    fn gen_bool_edges_and_rate() {
        let mut rng = Rng::from_seed([4; 32]);
        assert!(!rng.gen_bool(0.0));
        assert!(!rng.gen_bool(-1.0));
        assert!(!rng.gen_bool(f64::NAN));
        assert!(rng.gen_bool(1.0));
        assert!(rng.gen_bool(7.0));
        let hits = (0..10_000).filter(|_| rng.gen_bool(0.25)).count();
        assert!((2_250..2_750).contains(&hits), "{hits}");
    }

    #[test]
    fn gen_ratio_edges_and_rate() {
        let mut rng = Rng::from_seed([5; 32]);
        assert!(!rng.gen_ratio(0, 0));
        assert!(!rng.gen_ratio(0, 10));
        assert!(rng.gen_ratio(10, 10));
        assert!(rng.gen_ratio(11, 10));
        let hits = (0..10_000).filter(|_| rng.gen_ratio(1, 4)).count();
        assert!((2_250..2_750).contains(&hits), "{hits}");
    }

    #[test]
    fn shuffle_and_choose() {
        let mut rng = Rng::from_seed([6; 32]);
        let mut empty: [u8; 0] = [];
        rng.shuffle(&mut empty);
        assert_eq!(rng.choose(&empty), None);
        let mut one = [1];
        rng.shuffle(&mut one);
        assert_eq!(one, [1]);
        assert_eq!(rng.choose(&one), Some(&1));

        let mut v: Vec<u32> = (0..100).collect();
        rng.shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        let mut sorted = v.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());

        // Every element of a 3-slice ends up first about a third of the time.
        let mut firsts = [0u32; 3];
        for _ in 0..3_000 {
            let mut s = [0usize, 1, 2];
            rng.shuffle(&mut s);
            firsts[s[0]] += 1;
        }
        for &f in &firsts {
            assert!((850..1_150).contains(&f), "{firsts:?}");
        }
    }

    #[test]
    fn channel_ids_are_nonzero_and_spread() {
        let mut rng = Rng::from_seed([8; 32]);
        let mut ids: Vec<u32> = (0..1_000).map(|_| rng.channel_id()).collect();
        assert!(ids.iter().all(|&id| id != 0));
        ids.sort_unstable();
        ids.dedup();
        assert!(ids.len() > 990);
    }

    #[test]
    fn debug_hides_state() {
        let rng = Rng::from_seed([1; 32]);
        assert_eq!(alloc::format!("{rng:?}"), "Rng { .. }");
    }

    proptest! {
        #[test]
        fn gen_range_stays_in_bounds(seed: [u8; 32], a: u64, b: u64) {
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            let mut rng = Rng::from_seed(seed);
            for _ in 0..8 {
                let x = rng.gen_range(low..=high);
                prop_assert!(low <= x && x <= high);
                if low < high {
                    let y = rng.gen_range(low..high);
                    prop_assert!(low <= y && y < high);
                }
            }
        }

        #[test]
        fn seeds_replay(seed: [u8; 32]) {
            let mut a = Rng::from_seed(seed);
            let mut b = Rng::from_seed(seed);
            for _ in 0..16 {
                prop_assert_eq!(a.channel_id(), b.channel_id());
            }
        }
    }
}
