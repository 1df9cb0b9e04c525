//! A live stream's origin: the growing content file and its munro log
//! ([`crate::live::MunroLogHeader`]).
//!
//! - The log's header gives the live edge. It is asked for again every [`POLL_ALONE`] while
//!   no peer is connected, and beside peers at most every [`POLL`] and only while they have
//!   not told us of a fresh munro: peers announce new munros themselves.
//! - A record is checked exactly like a peer's INTEGRITY and SIGNED_INTEGRITY (signature,
//!   age, discard window; [`super::super::live_swarm::MunroCheck`]), the munro trusted
//!   like one from a peer (the first fixes the tune-in point: the newest munro), and then the
//!   record's leaf hashes are checked by folding them into the munro hash. Chunks verify
//!   against them on their own.
//! - What is fetched: alone, every chunk from the playback position to the edge, in order, at
//!   full speed. Beside peers, the chunks still missing [`GRACE`] after their munro was signed
//!   (peers had their chance: the stream's latency is bounded by the grace and one answer of
//!   the origin), asked of a peer or not. A munro no peer told us of counts from when the
//!   log's header first showed it.

use alloc::collections::{BTreeSet, VecDeque};
use alloc::vec::Vec;
use core::ops::Range;

use super::{
    CRITICAL_MAX, Kind, MAX_FETCHES, MAX_RUN_BYTES, MIN_RUN, Offence, RUN_TIME, new_fetch,
};
use crate::bin::Bin;
use crate::endpoint::Endpoint;
use crate::endpoint::live_swarm::MunroCheck;
use crate::endpoint::swarm::Tree;
use crate::live::{MUNRO_LOG_HEADER_LEN, MunroLogHeader};
use crate::time::{Duration, Instant};

/// How often a live origin's log header is asked for while no peer is connected.
const POLL_ALONE: Duration = Duration::from_millis(250);
/// How often at most beside peers (and only while they have told us of no fresh munro).
const POLL: Duration = Duration::from_secs(1);
/// How long after its munro was signed a chunk still missing is fetched from the origin, by
/// default ([`crate::SwarmConfig::live_origin_grace`]).
pub const LIVE_GRACE: Duration = Duration::from_secs(2);
/// Munros past the newest verified one that a log's header is believed to have published.
const AHEAD: u64 = 64;
/// Records asked for in one fetch, at most.
const RECORDS_PER_FETCH: u64 = 16;
/// Rises of the published count remembered (for when a munro was first seen).
const SEEN_KEPT: usize = 64;
/// How long after chunks were late a viewer seeds its share of new munros from the origin.
const SEED_HOLD: Duration = Duration::from_secs(10);

/// A 64-bit mix (SplitMix64's finaliser): which munros a viewer seeds.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A live origin's view of its munro log.
#[derive(Debug, Default)]
pub(super) struct LiveLog {
    /// The newest header read.
    pub(super) header: Option<MunroLogHeader>,
    /// When the header was last asked for.
    polled: Option<Instant>,
    /// When to look at the origin again (its polling pace).
    next_look: Option<Instant>,
    /// Munros whose records verified (their leaves in the tree) or are on their way.
    records: BTreeSet<u64>,
    /// Each rise of the published count and when it was seen, oldest first.
    seen: VecDeque<(u64, Instant)>,
    /// When chunks were last found late (missing [`LIVE_GRACE`] after their munro).
    late_at: Option<Instant>,
    /// Picks the munros this viewer seeds from the origin (see `schedule_live_origin`).
    salt: u64,
}

impl LiveLog {
    /// Records `munros` are to be asked for again.
    pub(super) fn forget(&mut self, munros: Range<u64>) {
        for k in munros {
            self.records.remove(&k);
        }
    }

    /// When the origin is to be looked at again: polling, and chunks falling due.
    pub(super) fn wake_at(&self) -> Option<Instant> {
        self.next_look
    }

    /// When munro `k` was first seen published (`None`: not yet).
    fn first_seen(&self, k: u64) -> Option<Instant> {
        self.seen
            .iter()
            .find(|(count, _)| *count > k)
            .map(|&(_, t)| t)
    }
}

impl Endpoint {
    /// Decides what the live origin `i` fetches now (see the module docs).
    pub(super) fn schedule_live_origin(&mut self, i: usize) {
        let now = self.now;
        let unix = self.unix_micros();
        let Some(o) = self.origins.slots[i].as_mut() else {
            return;
        };
        if let Some(l) = o.live.as_mut() {
            l.next_look = Some(now + POLL_ALONE);
            if l.salt == 0 {
                l.salt = self.rng.gen_range(1..u64::MAX);
            }
        }
        let Some(o) = self.origins.slots[i].as_ref() else {
            return;
        };
        let Some(idx) = self.slot_of(o.swarm) else {
            return;
        };
        let Some(s) = self.swarms[idx].as_ref() else {
            return;
        };
        let (Some(lv), Some(log), Tree::Partial(tree)) =
            (s.live.as_ref(), o.live.as_ref(), &s.tree)
        else {
            return;
        };
        if s.store_failed || lv.cfg.verifier.is_none() {
            return;
        }
        let mut slots = MAX_FETCHES.saturating_sub(o.fetches.len());
        let polling = o.fetches.iter().any(|f| matches!(f.kind, Kind::LogHeader));
        let alone = s.channels.is_empty();
        let Some(h) = log.header else {
            if !polling && slots > 0 {
                if let Some(l) = self.origins.slots[i].as_mut().and_then(|o| o.live.as_mut()) {
                    l.polled = Some(now);
                }
                self.emit_log_header(i);
            }
            return;
        };
        let cx = Plan {
            o,
            log,
            s,
            lv,
            tree,
            h,
            now,
            unix,
            alone,
        };
        // Beside peers, polled only while they told us of nothing fresh.
        let stale = lv
            .munros
            .values()
            .next_back()
            .is_none_or(|m| cx.age(m.timestamp) > lv.cfg.origin_grace / 2);
        let every = if alone { POLL_ALONE } else { POLL };
        let due = log.polled.is_none_or(|t| now >= t + every);
        // A stream that ended has no edge to follow.
        let poll = !polling && slots > 0 && due && (alone || stale) && h.end.is_none();
        slots -= usize::from(poll);
        let mut records: Vec<Range<u64>> = Vec::new();
        let mut picks: Vec<Range<u64>> = Vec::new();
        let mut late_now = false;
        if !lv.tuned_in {
            // The tune-in point: the newest munro published.
            let k = h.count.saturating_sub(1);
            if h.count > 0 && slots > 0 && !log.records.contains(&k) {
                records.push(k..k + 1);
            }
        } else {
            late_now = cx.fetches(slots, &mut records, &mut picks);
        }
        let n = h.nchunks_per_sig;
        let floor_munro = lv.floor / n;
        if let Some(l) = self.origins.slots[i].as_mut().and_then(|o| o.live.as_mut()) {
            if late_now {
                l.late_at = Some(now);
            }
            l.records = l.records.split_off(&floor_munro);
            if poll {
                l.polled = Some(now);
            }
        }
        if poll {
            self.emit_log_header(i);
        }
        for r in records {
            if let Some(l) = self.origins.slots[i].as_mut().and_then(|o| o.live.as_mut()) {
                l.records.extend(r.clone());
            }
            let bytes = h.record_bytes(r.clone());
            let f = new_fetch(
                &mut self.origins.next_id,
                i,
                Kind::LogRecords { munros: r },
                now,
            );
            self.emit(f, bytes);
        }
        let cs = u64::from(h.chunk_size);
        for p in picks {
            if let Some(s) = self.swarms[idx].as_mut() {
                for c in p.clone() {
                    *s.requested.entry(c).or_insert(0) += 1;
                }
                s.claimed.insert_range(p.clone());
            }
            let bytes = p.start * cs..p.end * cs;
            let f = new_fetch(&mut self.origins.next_id, i, Kind::Chunks(p), now);
            self.emit(f, bytes);
        }
    }

    fn emit_log_header(&mut self, i: usize) {
        let f = new_fetch(&mut self.origins.next_id, i, Kind::LogHeader, self.now);
        self.emit(f, 0..MUNRO_LOG_HEADER_LEN);
    }

    /// The munro log's header: the live edge.
    pub(super) fn on_log_header(&mut self, i: usize, body: &[u8]) -> Result<(), Offence> {
        let now = self.now;
        let Some(o) = self.origins.slots[i].as_ref() else {
            return Ok(());
        };
        let Some(idx) = self.slot_of(o.swarm) else {
            return Ok(());
        };
        let Some(lv) = self.swarms[idx].as_ref().and_then(|s| s.live.as_ref()) else {
            return Ok(());
        };
        let (params, sig_len) = (lv.cfg.params, lv.cfg.signature_len());
        let h = match MunroLogHeader::parse(body) {
            Ok(h) => h,
            Err(crate::live::MunroLogError::Short) => return Err(Offence::Short),
            Err(crate::live::MunroLogError::BadMagic) => return Err(Offence::Lie(None)),
            Err(_) => return Err(Offence::Mismatch),
        };
        if !h.matches(&params, sig_len) {
            // Another stream's log (or another shape): nothing to verify against.
            return Err(Offence::Mismatch);
        }
        let Some(l) = self.origins.slots[i].as_mut().and_then(|o| o.live.as_mut()) else {
            return Ok(());
        };
        if l.seen.back().is_none_or(|&(c, _)| h.count > c) {
            l.seen.push_back((h.count, now));
            if l.seen.len() > SEEN_KEPT {
                l.seen.pop_front();
            }
        }
        l.header = Some(h);
        Ok(())
    }

    /// Records of munros `munros`: each checked like a peer's signed munro, trusted, then its
    /// leaf hashes checked by folding them into the munro hash.
    pub(super) fn on_log_records(
        &mut self,
        i: usize,
        munros: Range<u64>,
        body: &[u8],
    ) -> Result<(), Offence> {
        let unix = self.unix_micros();
        let Some(o) = self.origins.slots[i].as_ref() else {
            return Ok(());
        };
        let (Some(idx), Some(h)) = (
            self.slot_of(o.swarm),
            o.live.as_ref().and_then(|l| l.header),
        ) else {
            return Ok(());
        };
        let len = h.record_len() as usize;
        let mut result = Ok(());
        let mut done = munros.start;
        for (k, rec) in munros.clone().zip(body.chunks(len)) {
            let Ok((m, leaves)) = h.parse_record(k, rec) else {
                result = Err(Offence::Short);
                break;
            };
            let Some(s) = self.swarms[idx].as_ref() else {
                return Ok(());
            };
            let Some(lv) = s.live.as_ref() else {
                return Ok(());
            };
            let trusted = match lv.check_munro(&s.tree, &m, unix) {
                MunroCheck::Have => true,
                MunroCheck::Useless => false,
                MunroCheck::Known | MunroCheck::Bad => {
                    result = Err(Offence::Lie(None));
                    break;
                }
                MunroCheck::Good => {
                    let bin = m.bin;
                    if self.accept_munro(idx, m).is_err() {
                        result = Err(Offence::Lie(None));
                        break;
                    }
                    // Still there (not slid out of the window at once)?
                    self.swarms[idx]
                        .as_ref()
                        .is_some_and(|s| matches!(&s.tree, Tree::Partial(t) if t.is_verified(bin)))
                }
            };
            if trusted {
                let Some(Tree::Partial(tree)) = self.swarms[idx].as_mut().map(|s| &mut s.tree)
                else {
                    return Ok(());
                };
                let bin = Bin::from_layer_offset(h.nchunks_per_sig.trailing_zeros(), k);
                if bin.is_none_or(|b| tree.add_layer_under(b, 0, leaves).is_err()) {
                    result = Err(Offence::Lie(None));
                    break;
                }
                self.retry_held(idx);
            }
            done = k + 1;
        }
        if result.is_ok() && body.len() != (munros.end - munros.start) as usize * len {
            result = Err(Offence::Short);
        }
        if let Some(l) = self.origins.slots[i].as_mut().and_then(|o| o.live.as_mut()) {
            l.forget(done..munros.end);
        }
        result
    }
}

/// What a tuned-in live origin looks at to decide its fetches.
struct Plan<'a> {
    o: &'a super::Origin,
    log: &'a LiveLog,
    s: &'a crate::endpoint::swarm::Swarm,
    lv: &'a crate::endpoint::live_swarm::LiveState,
    tree: &'a crate::merkle::PartialTree,
    h: MunroLogHeader,
    now: Instant,
    unix: u64,
    alone: bool,
}

impl Plan<'_> {
    /// How long ago a munro with SIGNED_INTEGRITY timestamp `ts` was signed.
    fn age(&self, ts: u64) -> Duration {
        let signed = self.lv.cfg.params.unix_micros_of(ts);
        Duration::from_micros(self.unix.saturating_sub(signed))
    }

    /// The chunks to fetch (in runs, into `picks`) and the records they need first (into
    /// `records`), using at most `slots` fetches: alone, everything up to the edge; beside
    /// peers, what is late and the seeding share. Returns whether chunks were late.
    fn fetches(
        &self,
        mut slots: usize,
        records: &mut Vec<Range<u64>>,
        picks: &mut Vec<Range<u64>>,
    ) -> bool {
        let (o, log, s, lv, h) = (self.o, self.log, self.s, self.lv, &self.h);
        let (n, alone) = (h.nchunks_per_sig, self.alone);
        // Munros peers told us of are taken as published too: the injector publishes as it
        // signs, and beside peers the header is not polled while they keep us informed. The
        // header is the origin's word, not the source's: at most AHEAD munros past the newest
        // one verified are believed (a header claiming 2^60 munros would else send the walks
        // below through all of them).
        let known = lv.end / n;
        let count = h.count.min(known.saturating_add(AHEAD)).max(known);
        let published = h.end.map_or(count * n, |e| e.min(count * n));
        let pos = s.have.first_missing(s.playback.max(lv.floor));
        let mut mine = crate::binmap::Binmap::new();
        for f in &o.fetches {
            if let Kind::Chunks(r) = &f.kind {
                mine.insert_range(r.clone());
            }
        }
        // Alone: everything up to the edge, in runs at the origin's pace. Beside peers: what
        // is still missing the grace after its munro was signed (or first seen here), oldest
        // first (munros only grow younger towards the edge).
        let cs = u64::from(h.chunk_size);
        let run = if alone {
            (o.rate * RUN_TIME.as_micros() as u64 / 1_000_000 / cs)
                .clamp(MIN_RUN, (MAX_RUN_BYTES / cs).max(MIN_RUN))
        } else {
            n.max(MIN_RUN)
        };
        let limit = if alone {
            published
        } else {
            self.late_until(pos, published)
        };
        let wanted = if alone { &s.claimed } else { &s.have };
        let mut gaps: Vec<Range<u64>> = wanted.missing_in(pos..limit).collect();
        // While the swarm leaves chunks late, it is short of upload (a source that cannot send
        // every viewer a copy): each viewer then seeds a share of the newest munros from the
        // origin at once, and the viewers trade them. About one copy of the stream comes from
        // the origin; without it they all wait for the source.
        let short = log
            .late_at
            .is_some_and(|t| self.now.saturating_duration_since(t) < SEED_HOLD);
        if !alone && short {
            let share = s.channels.len() as u64 + 1;
            for k in limit.div_ceil(n)..published / n {
                if mix(k ^ log.salt) % share == 0 {
                    gaps.extend(s.claimed.missing_in(k * n..(k + 1) * n));
                }
            }
        }
        let any_late = !alone && wanted.missing_in(pos..limit).next().is_some();
        let mut found = 0usize;
        let leaf_known = |c: u64| Bin::leaf(c).is_some_and(|b| self.tree.is_verified(b));
        'gaps: for gap in gaps {
            let mut c = gap.start;
            while c < gap.end {
                if slots == 0 || found >= CRITICAL_MAX {
                    break 'gaps;
                }
                if mine.contains(c) {
                    c += 1;
                    continue;
                }
                if !leaf_known(c) {
                    let k = c / n;
                    if !log.records.contains(&k) && !records.iter().any(|r| r.contains(&k)) {
                        let mut e = k + 1;
                        while e < count && e - k < RECORDS_PER_FETCH && !log.records.contains(&e) {
                            e += 1;
                        }
                        records.push(k..e);
                        slots -= 1;
                    }
                    c = (k + 1) * n;
                    continue;
                }
                let mut e = c + 1;
                while e < gap.end && e - c < run && leaf_known(e) && !mine.contains(e) {
                    e += 1;
                }
                found += (e - c) as usize;
                picks.push(c..e);
                slots -= 1;
                c = e;
            }
        }
        any_late
    }

    /// Where the late part ends: from the munro of `pos` on, munros signed (or, unknown to
    /// peers, first seen in the log) at least the grace ago.
    fn late_until(&self, pos: u64, published: u64) -> u64 {
        let n = self.h.nchunks_per_sig;
        let grace = self.lv.cfg.origin_grace;
        let mut k = pos / n;
        while k * n < published {
            let late = match self.lv.munros.get(&(k * n)) {
                Some(m) => self.age(m.timestamp) >= grace,
                None => self
                    .log
                    .first_seen(k)
                    .is_some_and(|t| self.now.saturating_duration_since(t) >= grace),
            };
            if !late {
                break;
            }
            k += 1;
        }
        (k * n).min(published)
    }
}
