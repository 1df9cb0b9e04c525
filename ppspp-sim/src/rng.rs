//! Seeded random streams: one independent stream per node and purpose, derived from the run
//! seed, so adding a node or a draw on one link never changes the draws elsewhere.

use ppspp_core::hash::HashAlgorithm;

/// What a random stream is for; part of the derivation of its seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Purpose {
    /// The seed of a node's endpoint (channel IDs, picking).
    Endpoint = 1,
    /// A node's uplink: loss, duplication and jitter of what it sends.
    Uplink = 2,
    /// A node's downlink: loss of what it receives.
    Downlink = 3,
    /// A node's placement (coordinates) and schedule (join, churn, crash times).
    Placement = 4,
    /// The scenario itself: which nodes fail, partition groups, bootstrap contacts.
    Scenario = 5,
    /// VOPR option generation.
    Vopr = 6,
}

/// 32 bytes of seed for the stream `(run_seed, node, purpose, incarnation)`: SHA-256 of a
/// fixed label and the four values.
pub fn derive_seed(run_seed: u64, node: u32, purpose: Purpose, incarnation: u32) -> [u8; 32] {
    let mut input = [0u8; 32];
    input[..12].copy_from_slice(b"ppspp-sim/v1");
    input[12..20].copy_from_slice(&run_seed.to_le_bytes());
    input[20..24].copy_from_slice(&node.to_le_bytes());
    input[24] = purpose as u8;
    input[25..29].copy_from_slice(&incarnation.to_le_bytes());
    let h = HashAlgorithm::Sha256.digest(&input);
    let mut out = [0u8; 32];
    out.copy_from_slice(&h.as_bytes()[..32]);
    out
}

/// A small, fast generator (xoshiro256**) for the network model's per-packet draws. Not
/// cryptographic; the endpoints get ChaCha seeds of their own through [`derive_seed`].
#[derive(Clone, Debug)]
pub struct SimRng {
    s: [u64; 4],
}

impl SimRng {
    /// A generator seeded from 32 bytes.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let mut s = [0u64; 4];
        for (i, w) in s.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&seed[i * 8..i * 8 + 8]);
            *w = u64::from_le_bytes(b);
        }
        if s == [0; 4] {
            s[0] = 0x9E37_79B9_7F4A_7C15;
        }
        Self { s }
    }

    /// The stream `(run_seed, node, purpose)`.
    pub fn stream(run_seed: u64, node: u32, purpose: Purpose) -> Self {
        Self::from_seed(derive_seed(run_seed, node, purpose, 0))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `true` with probability `p` (no draw when `p` is 0 or 1, so a fault that is off does
    /// not consume randomness).
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        self.next_f64() < p
    }

    /// A uniform integer in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A uniform integer in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi - lo + 1)
    }
}

/// SplitMix64: one step of a cheap, stateless mixer (used for synthetic content).
pub use ppspp_core::testing::splitmix64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_independent_and_reproducible() {
        let mut a = SimRng::stream(7, 1, Purpose::Uplink);
        let mut b = SimRng::stream(7, 1, Purpose::Uplink);
        let mut c = SimRng::stream(7, 2, Purpose::Uplink);
        let xa: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
        for _ in 0..1000 {
            assert!(a.below(10) < 10);
            let f = a.next_f64();
            assert!((0.0..1.0).contains(&f));
        }
    }
}
