//! Playback-driven picking (RFC 7574 §1 and §9.1: short time till playback, no stalls,
//! seeking): a reader's position and bitrate give the chunks ahead of it deadlines; the picker
//! fetches that window first, in order, leaves chunks a slow peer would deliver late to faster
//! peers, and asks a second peer for a chunk whose deadline is near (an endgame per chunk).
//! Outside the window the swarm's own picker (rarest first, usually) goes on.

use core::ops::Range;

use alloc::vec::Vec;

use super::Endpoint;
use super::channel::Channel;
use super::swarm::Swarm;
use super::table::ChunkMap;
use crate::binmap::Binmap;
use crate::event::SwarmHandle;
use crate::time::{Duration, Instant};

/// Playback seconds the window covers when a bitrate is known and no window was given.
const WINDOW_SECS: u64 = 30;
/// The window without a bitrate, or the least one with.
const DEFAULT_WINDOW: u64 = 1024;
/// The largest window: more is prefetching, which the swarm's picker does anyway.
const MAX_WINDOW: u64 = 1 << 16;
/// Window chunks one refill may take beyond the request pipeline's target (a seek must not
/// wait for the pipeline to drain below half).
pub(crate) const WINDOW_BURST: usize = 64;
/// Chunks whose deadline is this close (on the next tick) make the tick pick again.
const URGENT_HORIZON: Duration = Duration::from_secs(2);
/// Playback time at the front of the window fetched strictly in order: long enough that a
/// chunk is asked for well before it is due even behind a peer's full request queue.
const URGENT_SPAN: Duration = Duration::from_secs(10);
/// The urgent part of a window without a bitrate, in chunks.
const URGENT_CHUNKS: u64 = 256;
/// Most window chunks one pick examines.
const WINDOW_SCAN: usize = 4096;

/// Where a reader of a swarm is and how fast it reads: what [`Endpoint::set_playback`]
/// fetches first.
///
/// ```
/// use ppspp_core::Playback;
/// // Reading from chunk 700 at 4 Mbit/s (500,000 bytes a second).
/// let p = Playback::at(700).with_bitrate(500_000);
/// assert_eq!(p.position(), 700);
/// assert_eq!(p.bitrate(), Some(500_000));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Playback {
    position: u64,
    bitrate: Option<u64>,
    window: u64,
}

impl Playback {
    /// A reader at chunk `position`, reading as fast as chunks come (no deadlines).
    #[must_use]
    pub fn at(position: u64) -> Self {
        Self {
            position,
            bitrate: None,
            window: 0,
        }
    }

    /// Reads `bytes_per_second` (the media's bitrate): chunk `c` of the window is then needed
    /// at `now + (c - position) × chunk size / bitrate`. Zero means no bitrate.
    #[must_use]
    pub fn with_bitrate(mut self, bytes_per_second: u64) -> Self {
        self.bitrate = (bytes_per_second > 0).then_some(bytes_per_second);
        self
    }

    /// The window: how many chunks from the position are fetched first. Zero (the default)
    /// means 30 s of playback at the bitrate, and 1,024 chunks without one; at most 65,536.
    #[must_use]
    pub fn with_window(mut self, chunks: u64) -> Self {
        self.window = chunks.min(MAX_WINDOW);
        self
    }

    /// The chunk the reader needs next.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Bytes per second the reader consumes, if known.
    #[must_use]
    pub fn bitrate(&self) -> Option<u64> {
        self.bitrate
    }

    /// The window in chunks (0 until set on a swarm: then the default is filled in, see
    /// [`SwarmRef::playback`](crate::SwarmRef::playback)).
    #[must_use]
    pub fn window(&self) -> u64 {
        self.window
    }

    /// The window chosen for chunks of `chunk_size` bytes.
    fn resolved(mut self, chunk_size: u32) -> Self {
        if self.window == 0 {
            self.window = match self.bitrate {
                Some(b) => (b.saturating_mul(WINDOW_SECS) / u64::from(chunk_size.max(1)))
                    .clamp(DEFAULT_WINDOW, MAX_WINDOW),
                None => DEFAULT_WINDOW,
            };
        }
        self
    }
}

/// A swarm's reader: its playback, and when it was set (deadlines count from there).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlayState {
    pub(crate) playback: Playback,
    pub(crate) at: Instant,
}

/// How soon one peer would deliver a chunk asked for now, against the swarm's quickest peer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Urgency {
    pub(crate) now: Instant,
    /// This peer: its round trip plus the time to serve what is already asked of it.
    pub(crate) eta: Duration,
    /// The quickest peer of the swarm by the same measure.
    pub(crate) best_eta: Duration,
}

impl Urgency {
    /// This peer is among the quickest (within half again, plus a little for noise).
    fn is_fast(&self) -> bool {
        self.eta <= self.best_eta + self.best_eta / 2 + Duration::from_millis(10)
    }
}

/// What a pick does with a reader's window.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WindowPick {
    /// The peer's urgency measures (with a bitrate).
    pub(crate) urgency: Option<Urgency>,
    /// Pick from the window only (a burst beyond the pipeline's refill).
    pub(crate) only: bool,
}

/// How soon a peer delivers a chunk asked for now: a round trip, plus its queue at the rate
/// it has been delivering.
pub(crate) fn eta(ch: &Channel) -> Duration {
    let rtt = ch
        .rtt
        .smoothed()
        .or(ch.down.req_rtt)
        .unwrap_or(super::RATE_WINDOW);
    let queued = ch.down.requested.len() as u64 + 1;
    let queue = match ch.down.dl_rate {
        // No rate measured yet: a new peer's first window, ten chunks a round trip.
        0 => rtt * (queued.div_ceil(10).min(1 << 16) as u32),
        r => Duration::from_micros(queued.saturating_mul(1_000_000) / u64::from(r)),
    };
    rtt + queue
}

impl Swarm {
    /// The chunks fetched first, if a reader is set (static content, not yet complete).
    pub(crate) fn play_window(&self) -> Option<Range<u64>> {
        let p = self.play.as_ref()?.playback;
        if self.live.is_some() || self.complete {
            return None;
        }
        let limit = self.chunk_count().unwrap_or(1 << 62);
        let start = p.position.min(limit);
        Some(start..p.position.saturating_add(p.window).min(limit))
    }

    /// The window's urgent part, fetched strictly in order (and beyond the pipeline's
    /// refill): the chunks due within [`URGENT_SPAN`] at the bitrate, or the first
    /// [`URGENT_CHUNKS`] without one.
    pub(crate) fn urgent_window(&self) -> Option<Range<u64>> {
        let w = self.play_window()?;
        let p = self.play.as_ref()?.playback;
        let n = match p.bitrate {
            Some(b) => {
                let bytes = u128::from(b) * URGENT_SPAN.as_micros() / 1_000_000;
                (bytes / u128::from(self.cfg.chunk_size.max(1))).max(1) as u64
            }
            None => URGENT_CHUNKS,
        };
        Some(w.start..w.start.saturating_add(n).min(w.end))
    }

    /// When the reader needs chunk `c`: within the window, with a bitrate.
    pub(crate) fn deadline(&self, c: u64) -> Option<Instant> {
        let st = self.play.as_ref()?;
        let bitrate = st.playback.bitrate?;
        let w = self.play_window()?;
        if !w.contains(&c) {
            return None;
        }
        let bytes = u128::from(c - st.playback.position) * u128::from(self.cfg.chunk_size);
        let micros = (bytes * 1_000_000 / u128::from(bitrate)).min(u128::from(u64::MAX)) as u64;
        Some(st.at + Duration::from_micros(micros))
    }

    /// The first chunk from the reader's position whose deadline ([`Swarm::deadline`]) is at
    /// or after `t`: every window chunk before it is due before `t`. `None` without a
    /// bitrate. Exact (the same rounding as `deadline`), in constant time.
    pub(crate) fn due_before(&self, t: Instant) -> Option<u64> {
        let st = self.play.as_ref()?;
        let bitrate = u128::from(st.playback.bitrate?);
        let pos = st.playback.position;
        if t <= st.at {
            return Some(pos);
        }
        // deadline(c) < t  ⇔  ⌊(c − pos)·cs·10⁶ / bitrate⌋ < D  ⇔  (c − pos)·cs·10⁶ < D·bitrate
        // (D whole microseconds)  ⇔  c − pos < ⌈D·bitrate / (cs·10⁶)⌉.
        let d = u128::from(t.saturating_duration_since(st.at).as_micros() as u64);
        let per_chunk = u128::from(self.cfg.chunk_size) * 1_000_000;
        let n = (d * bitrate).div_ceil(per_chunk);
        Some(pos.saturating_add(n.min(u128::from(u64::MAX)) as u64))
    }

    /// Whether a peer with map `peer_have` has urgent chunks nobody was asked for.
    pub(crate) fn window_open_for(&self, peer_have: &Binmap) -> bool {
        self.urgent_window()
            .is_some_and(|w| peer_have.difference_in(&self.claimed, w).next().is_some())
    }

    /// Picks up to `want` window chunks, in order, for a peer with map `peer_have` that was
    /// asked for `mine`: chunks nobody was asked for (unless the peer would deliver one after
    /// its deadline and is not among the quickest), and chunks one other peer was asked
    /// for whose deadline is near, when this peer is among the quickest. Returns the chunks
    /// (`allow_dup`: in the swarm's endgame, any chunk one other peer was asked for), and
    /// whether every chunk of the window the peer has was looked at and none was left to
    /// others.
    pub(crate) fn pick_window(
        &self,
        peer_have: &Binmap,
        mine: &ChunkMap<super::download::Requested>,
        want: usize,
        allow_dup: bool,
        urgency: Option<&Urgency>,
    ) -> (Vec<u64>, bool) {
        let mut out = Vec::new();
        let Some(w) = self.urgent_window() else {
            return (out, true);
        };
        // Chunks that may be asked of a second peer: all of them in the endgame, those due
        // within two of this peer's deliveries when it is among the quickest, none otherwise.
        // Only that stretch walks past claimed chunks one by one; the rest of the window
        // walks the gaps of what is claimed (a pick runs for most deliveries).
        let dup_end = if allow_dup {
            w.end
        } else {
            match (urgency, self.play.as_ref()) {
                (Some(u), Some(st)) if u.is_fast() => {
                    let due_by = (u.now + u.eta * 2).saturating_duration_since(st.at);
                    let bytes = u128::from(st.playback.bitrate.unwrap_or(0)) * due_by.as_micros()
                        / 1_000_000;
                    let chunks = (bytes / u128::from(self.cfg.chunk_size.max(1))) as u64;
                    st.playback
                        .position
                        .saturating_add(chunks + 1)
                        .clamp(w.start, w.end)
                }
                _ => w.start,
            }
        };
        let mut whole = true;
        let mut examined = 0usize;
        for (range, skip) in [
            (w.start..dup_end, &self.have),
            (dup_end..w.end, &self.claimed),
        ] {
            if range.is_empty() {
                continue;
            }
            let mut gaps = peer_have
                .difference_in(skip, range)
                .limit_runs(super::picker::PICK_RUNS);
            'walk: for gap in gaps.by_ref() {
                for c in gap {
                    examined += 1;
                    if out.len() >= want || examined > WINDOW_SCAN {
                        whole = false;
                        break 'walk;
                    }
                    let deadline = self.deadline(c);
                    if !self.claimed.contains(c) {
                        if let (Some(d), Some(u)) = (deadline, urgency) {
                            // Late from this peer, which is not among the quickest: leave it
                            // to them.
                            if u.now + u.eta > d && !u.is_fast() {
                                whole = false;
                                continue;
                            }
                        }
                        out.push(c);
                        continue;
                    }
                    // A second copy (the first to arrive cancels the other, R-3.8-a).
                    let asked = self.requested.get(&c).copied().unwrap_or(0);
                    if asked == 1 && !mine.contains_key(&c) {
                        out.push(c);
                    }
                }
            }
            whole &= !gaps.truncated();
            if out.len() >= want || !whole {
                break;
            }
        }
        (out, whole)
    }
}

impl Endpoint {
    /// Sets where a reader of `swarm` is and how fast it reads: chunks from
    /// [`Playback::position`] on are fetched first, in order; with a bitrate each has a
    /// deadline, chunks a slow peer would deliver late go to quicker peers, and a chunk whose
    /// deadline is near is asked of a second peer. Call it again as the reader moves on or
    /// seeks: the window moves at once (pipelines take window chunks beyond their usual
    /// refill). Outside the window the swarm's picker goes on. For a live swarm the position
    /// is kept but picking follows the live window.
    pub fn set_playback(&mut self, now: Instant, swarm: SwarmHandle, playback: Playback) {
        self.advance(now);
        let Some(s) = self.slot_of(swarm).and_then(|i| self.swarms[i].as_mut()) else {
            return;
        };
        let playback = playback.resolved(s.cfg.chunk_size);
        // A reader moving on within its window changes deadlines only; a new reader, a seek
        // or a new bitrate makes every peer pick again at once.
        let moved_on = s.play.is_some_and(|o| {
            o.playback.bitrate == playback.bitrate
                && (o.playback.position..o.playback.position + o.playback.window)
                    .contains(&playback.position)
        });
        // A jump out of the old window (a seek): requests queued at peers for chunks
        // outside the new window would be served first (peers serve in order), so they are
        // cancelled (R-3.8) and picked again later.
        let jumped = s.live.is_none()
            && s.play.is_some_and(|o| {
                !(o.playback.position..o.playback.position + o.playback.window)
                    .contains(&playback.position)
            });
        s.play = Some(PlayState { playback, at: now });
        if s.live.is_none() {
            s.playback = playback.position;
        }
        if moved_on {
            return;
        }
        let ids: Vec<u32> = s.channels.iter().copied().collect();
        if jumped {
            let keep = s.play_window().unwrap_or(0..0);
            for &id in &ids {
                self.cancel_requests_outside(id, keep.clone());
            }
        }
        self.refill_for_window(&ids);
    }

    /// Cancels channel `id`'s outstanding requests for chunks outside `keep`.
    fn cancel_requests_outside(&mut self, id: u32, keep: Range<u64>) {
        let Some((ch, sw, _)) = self.parts(id) else {
            return;
        };
        let mut gone: Vec<u64> = ch
            .down
            .requested
            .keys()
            .copied()
            .filter(|c| !keep.contains(c))
            .collect();
        if gone.is_empty() {
            return;
        }
        gone.sort_unstable();
        for &c in &gone {
            ch.down.requested.remove(&c);
            super::download::release(sw, c);
        }
        // Requests not yet sent are simply dropped; the others are cancelled.
        ch.down.pending_requests = ch
            .down
            .pending_requests
            .iter()
            .filter_map(|&(a, b)| {
                let (a, b) = (a.max(keep.start), b.min(keep.end.saturating_sub(1)));
                (a <= b && !keep.is_empty()).then_some((a, b))
            })
            .collect();
        ch.down.pending_cancels.extend(gone.iter().map(|&c| (c, c)));
        super::download::Download::coalesce(&mut ch.down.pending_cancels);
        self.stats.rerequests += gone.len() as u64;
        self.queue_send(id);
    }

    /// Forgets the reader of `swarm`: picking is the swarm's own again.
    pub fn clear_playback(&mut self, now: Instant, swarm: SwarmHandle) {
        self.advance(now);
        if let Some(s) = self.slot_of(swarm).and_then(|i| self.swarms[i].as_mut()) {
            s.play = None;
        }
    }

    /// Channels `ids` pick again (a peer whose last pick found nothing may have window
    /// chunks now).
    fn refill_for_window(&mut self, ids: &[u32]) {
        for &id in ids {
            if let Some(ch) = self.chan_mut(id) {
                ch.down.pick_exhausted = false;
            }
            self.fill_requests(id);
        }
    }

    /// The tick's part: when window chunks not yet verified fall due soon, every peer picks
    /// again (deliveries alone may not come: the quick peers may be idle while a slow one
    /// holds the urgent chunks).
    pub(super) fn playback_tick(&mut self, idx: usize) {
        let Some(s) = self.swarms.get(idx).and_then(Option::as_ref) else {
            return;
        };
        let Some(w) = s.urgent_window() else { return };
        let Some(first) = s.have.missing_in(w).next() else {
            return;
        };
        if s.deadline(first.start)
            .is_none_or(|d| d > self.now + URGENT_HORIZON)
        {
            return;
        }
        let ids: Vec<u32> = s.channels.iter().copied().collect();
        self.refill_for_window(&ids);
    }

    /// The urgency measures for channel `id`, when its swarm has a reader with a bitrate.
    pub(crate) fn urgency(&self, id: u32) -> Option<Urgency> {
        let ch = self.chan(id)?;
        let s = self.swarms.get(ch.swarm)?.as_ref()?;
        s.play.as_ref()?.playback.bitrate?;
        let best = s
            .channels
            .iter()
            .filter_map(|&o| self.chan(o))
            .filter(|o| o.is_established() && o.proven && !o.choke.peer_choking)
            .map(eta)
            .min()?;
        let own = eta(ch);
        Some(Urgency {
            now: self.now,
            eta: own,
            best_eta: best.min(own),
        })
    }
}
