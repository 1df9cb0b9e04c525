//! The iterators over a [`Binmap`]: runs, gaps, intersections, differences and bins.

use super::*;

/// Iterator over maximal runs of present chunks; see [`Binmap::ranges`] and
/// [`Binmap::ranges_in`].
///
/// It walks the B-tree once, in order (no lookup from the root per run), so iterating `r`
/// runs over `e` entries costs `O(log e + r + entries passed)`.
#[derive(Clone)]
pub struct Ranges<'a> {
    pub(super) entries: core::iter::Peekable<alloc::collections::btree_map::Range<'a, u64, Entry>>,
    /// The next chunk to look at.
    pub(super) pos: u64,
    pub(super) end: u64,
}

impl fmt::Debug for Ranges<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ranges")
            .field("pos", &self.pos)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl<'a> Ranges<'a> {
    pub(super) fn new(map: &'a Binmap, range: Range<u64>) -> Self {
        let b = range.start >> BLOCK_BITS;
        // A run of full blocks starting before block `b` may cover it.
        let from = match map.blocks.range(..=b).next_back() {
            Some((&k, Entry::Full(n))) if k.saturating_add(*n) > b => k,
            _ => b,
        };
        Ranges {
            entries: map.blocks.range(from..).peekable(),
            pos: range.start,
            end: range.end,
        }
    }
}

impl Iterator for Ranges<'_> {
    type Item = Range<u64>;

    fn next(&mut self) -> Option<Range<u64>> {
        if self.pos >= self.end {
            return None;
        }
        // The first present chunk at or after `pos`, and where its run stops within its entry.
        let (start, mut stop) = loop {
            let (&k, e) = *self.entries.peek()?;
            let base = k.saturating_mul(BLOCK);
            match e {
                Entry::Full(n) => {
                    let stop = k.saturating_add(*n).saturating_mul(BLOCK);
                    self.entries.next();
                    if stop > self.pos {
                        break (self.pos.max(base), stop);
                    }
                }
                Entry::Partial(bits) => {
                    let from = self.pos.saturating_sub(base);
                    match (from < BLOCK).then(|| next_set(bits, from)).flatten() {
                        Some(o) => {
                            let stop = base + o + ones_up(bits, o);
                            if stop - base == BLOCK {
                                self.entries.next();
                            }
                            break (base + o, stop);
                        }
                        None => {
                            self.entries.next();
                        }
                    }
                }
            }
        };
        if start >= self.end {
            self.pos = self.end;
            return None;
        }
        // A run reaching the end of its entry continues into an adjacent entry.
        while stop % BLOCK == 0 && stop < self.end {
            let Some(&(&k, e)) = self.entries.peek() else {
                break;
            };
            if k.saturating_mul(BLOCK) != stop {
                break;
            }
            match e {
                Entry::Full(n) => {
                    stop = k.saturating_add(*n).saturating_mul(BLOCK);
                    self.entries.next();
                }
                Entry::Partial(bits) => {
                    // Not complete, so the run ends inside it (the entry stays: it may hold
                    // later runs).
                    stop += ones_up(bits, 0);
                    break;
                }
            }
        }
        let end = stop.min(self.end);
        self.pos = end;
        Some(start..end)
    }
}

/// Iterator over runs of missing chunks; see [`Binmap::missing_ranges`].
#[derive(Clone, Debug)]
pub struct Gaps<'a> {
    pub(super) cursor: u64,
    pub(super) end: u64,
    pub(super) present: Ranges<'a>,
}

impl Iterator for Gaps<'_> {
    type Item = Range<u64>;

    fn next(&mut self) -> Option<Range<u64>> {
        while self.cursor < self.end {
            match self.present.next() {
                Some(run) => {
                    let gap = self.cursor..run.start;
                    self.cursor = run.end;
                    if !gap.is_empty() {
                        return Some(gap);
                    }
                }
                None => {
                    let gap = self.cursor..self.end;
                    self.cursor = self.end;
                    return Some(gap);
                }
            }
        }
        None
    }
}

/// Iterator over runs present in two maps; see [`Binmap::intersection_ranges`].
#[derive(Clone, Debug)]
pub struct Intersection<'a> {
    pub(super) outer: Ranges<'a>,
    pub(super) other: &'a Binmap,
    pub(super) inner: Option<Ranges<'a>>,
}

impl Iterator for Intersection<'_> {
    type Item = Range<u64>;

    fn next(&mut self) -> Option<Range<u64>> {
        loop {
            if let Some(r) = self.inner.as_mut().and_then(Iterator::next) {
                return Some(r);
            }
            let run = self.outer.next()?;
            self.inner = Some(self.other.ranges_in(run));
        }
    }
}

/// Iterator over runs present in one map and missing in another; see
/// [`Binmap::difference_ranges`].
#[derive(Clone, Debug)]
pub struct Difference<'a> {
    pub(super) outer: Ranges<'a>,
    pub(super) other: Ranges<'a>,
    /// The rest of the current outer run.
    pub(super) cur: Option<Range<u64>>,
    /// The current run of `other`.
    pub(super) hole: Option<Range<u64>>,
    /// How many more runs of the outer map may be started.
    pub(super) runs_left: usize,
    /// The walk stopped at the run limit with runs of the first map left.
    pub(super) truncated: bool,
}

impl Difference<'_> {
    /// Stops the walk after `runs` runs of the first map (bounds the work when most of its
    /// runs are covered by the second map).
    pub(crate) fn limit_runs(mut self, runs: usize) -> Self {
        self.runs_left = runs;
        self
    }

    /// How many more runs of the first map the walk may start.
    pub(crate) fn runs_left(&self) -> usize {
        self.runs_left
    }

    /// Whether the walk ended at the run limit while the first map had runs left in range.
    pub(crate) fn truncated(&self) -> bool {
        self.truncated
    }
}

impl Iterator for Difference<'_> {
    type Item = Range<u64>;

    fn next(&mut self) -> Option<Range<u64>> {
        // Both maps are walked once, side by side.
        loop {
            let mut a = match self.cur.take() {
                Some(a) => a,
                None => {
                    let Some(left) = self.runs_left.checked_sub(1) else {
                        self.truncated = self.outer.clone().next().is_some();
                        return None;
                    };
                    self.runs_left = left;
                    self.outer.next()?
                }
            };
            while self.hole.as_ref().is_none_or(|h| h.end <= a.start) {
                match self.other.next() {
                    Some(h) => self.hole = Some(h),
                    None => {
                        self.hole = None;
                        break;
                    }
                }
            }
            let Some(h) = self.hole.clone() else {
                return Some(a);
            };
            if h.start >= a.end {
                return Some(a);
            }
            if h.start > a.start {
                if h.end < a.end {
                    self.cur = Some(h.end..a.end);
                }
                return Some(a.start..h.start);
            }
            if h.end < a.end {
                a.start = h.end;
                self.cur = Some(a);
            }
        }
    }
}

/// Iterator over the minimal bins covering a map; see [`Binmap::bins`].
#[derive(Clone, Debug)]
pub struct Bins<'a> {
    pub(super) runs: Ranges<'a>,
    pub(super) cover: Option<Cover>,
}

impl Iterator for Bins<'_> {
    type Item = Bin;

    fn next(&mut self) -> Option<Bin> {
        loop {
            if let Some(b) = self.cover.as_mut().and_then(Iterator::next) {
                return Some(b);
            }
            let run = self.runs.next()?;
            // Runs are non-empty, so `end - 1` does not underflow.
            self.cover = Some(Bin::cover(run.start, run.end - 1));
        }
    }
}
