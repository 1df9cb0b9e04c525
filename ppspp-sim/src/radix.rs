//! A monotone priority queue (radix heap) for the simulator's events.
//!
//! Event times never go backwards (nothing is scheduled before the current instant), which is
//! what a radix heap needs: elements sit in buckets by the highest bit in which their key
//! differs from the last key popped, so a push is O(1) and each element moves down through at
//! most 128 buckets over its life. With unique keys it pops exactly the order a binary heap
//! would, while touching memory far more locally (a binary heap of a few hundred thousand
//! events misses the cache on most of its ~18 levels per pop).

/// A min-queue of `(key, value)` with unique, never-decreasing-below-the-last-pop keys.
#[derive(Debug)]
pub(crate) struct RadixHeap<V> {
    /// The last key popped (or the floor new keys must respect).
    last: u128,
    /// Bucket 0: keys equal to `last`; bucket `i`: keys whose highest bit differing from
    /// `last` is bit `i - 1`.
    buckets: Vec<Vec<(u128, V)>>,
    /// Bit `i` set: bucket `i` (of 129) holds elements; bucket 128 has bit 0 of `high`.
    occupied: u128,
    occupied_high: bool,
    /// An empty vector whose allocation is swapped in for a bucket being redistributed, so
    /// small bucket allocations are reused instead of freed and grown again on every
    /// redistribution.
    spare: Vec<(u128, V)>,
    len: usize,
}

/// The largest allocation (in elements) kept for reuse by [`RadixHeap::peek_key`].
const MAX_SPARE: usize = 4096;

impl<V> RadixHeap<V> {
    pub(crate) fn new() -> Self {
        Self {
            last: 0,
            buckets: (0..=128).map(|_| Vec::new()).collect(),
            occupied: 0,
            occupied_high: false,
            spare: Vec::new(),
            len: 0,
        }
    }

    fn bucket(last: u128, key: u128) -> usize {
        (128 - (key ^ last).leading_zeros()) as usize
    }

    /// Adds `value` under `key`; `key` must not be below the last key popped (it is raised to
    /// it if it is, which cannot happen in the simulator).
    pub(crate) fn push(&mut self, key: u128, value: V) {
        debug_assert!(key >= self.last, "radix heap keys must not go backwards");
        let key = key.max(self.last);
        let b = Self::bucket(self.last, key);
        self.buckets[b].push((key, value));
        self.mark(b);
        self.len += 1;
    }

    fn mark(&mut self, bucket: usize) {
        if bucket < 128 {
            self.occupied |= 1 << bucket;
        } else {
            self.occupied_high = true;
        }
    }

    fn unmark(&mut self, bucket: usize) {
        if bucket < 128 {
            self.occupied &= !(1 << bucket);
        } else {
            self.occupied_high = false;
        }
    }

    /// The lowest non-empty bucket.
    fn first_occupied(&self) -> Option<usize> {
        if self.occupied != 0 {
            Some(self.occupied.trailing_zeros() as usize)
        } else {
            self.occupied_high.then_some(128)
        }
    }

    /// The smallest key, moving elements so that it sits in bucket 0.
    pub(crate) fn peek_key(&mut self) -> Option<u128> {
        if self.len == 0 {
            return None;
        }
        if self.buckets[0].is_empty() {
            let i = self.first_occupied()?;
            let spare = core::mem::take(&mut self.spare);
            let mut moved = core::mem::replace(&mut self.buckets[i], spare);
            self.unmark(i);
            let min = moved.iter().map(|(k, _)| *k).min()?;
            self.last = min;
            // Every key of bucket `i` agrees with `min` above bit `i - 1`, so each lands in a
            // lower bucket: bucket `i` (now holding the spare allocation) stays empty.
            for (k, v) in moved.drain(..) {
                let b = Self::bucket(min, k);
                self.buckets[b].push((k, v));
                self.mark(b);
            }
            // A large allocation is let go rather than kept as the spare: every bucket would
            // otherwise keep the most it ever held (+0.8 GiB at 10,000 peers).
            if moved.capacity() <= MAX_SPARE {
                self.spare = moved;
            }
        }
        self.buckets[0].last().map(|(k, _)| *k)
    }

    /// Removes and returns the element with the smallest key.
    pub(crate) fn pop(&mut self) -> Option<(u128, V)> {
        self.peek_key()?;
        let e = self.buckets[0].pop();
        if e.is_some() {
            self.len -= 1;
            if self.buckets[0].is_empty() {
                self.unmark(0);
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::RadixHeap;
    use crate::rng::SimRng;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    #[test]
    fn pops_in_the_order_of_a_binary_heap() {
        let mut r = SimRng::from_seed([7; 32]);
        let mut radix = RadixHeap::new();
        let mut heap = BinaryHeap::new();
        let mut now = 0u64;
        let mut seq = 0u64;
        for round in 0..20_000u32 {
            // Schedule a few events at or after `now`, then pop one.
            for _ in 0..(r.next_u64() % 3) {
                seq += 1;
                let t = now + r.next_u64() % 5_000;
                let key = (u128::from(t) << 64) | u128::from(seq);
                radix.push(key, round);
                heap.push(Reverse((key, round)));
            }
            let a = radix.pop();
            let b = heap.pop().map(|Reverse(x)| x);
            assert_eq!(a, b);
            if let Some((k, _)) = a {
                now = (k >> 64) as u64;
            }
        }
        while let Some(Reverse(x)) = heap.pop() {
            assert_eq!(radix.pop(), Some(x));
        }
        assert_eq!(radix.pop(), None);
    }
}
