//! Live streams (RFC 7574 §6) in the engine: the injector adding chunks and signing munros,
//! peers checking signed munros and tuning in.

use super::MUNRO_REPEAT;
use super::channel::Channel;
use super::download::release;
use super::output::Out;
use super::swarm::{Swarm, Tree};
use super::{Endpoint, LiveChunkError};
use crate::bin::Bin;
use crate::event::SwarmHandle;
use crate::merkle::VerifyError;
use crate::store::ChunkStore;
use crate::time::Instant;
use crate::wire::{ChunkSpec, Message, MessageType};
use alloc::vec::Vec;

impl Endpoint {
    /// The injector of a live stream ([`SwarmConfig::live_source`](crate::SwarmConfig::live_source)) adds the next chunk: it is
    /// stored, hashed, and once `nchunks_per_sig` chunks are in, their munro is signed and
    /// they are announced to peers (RFC 7574 §6.1.2.3: no HAVE before the signature).
    /// Returns the signed munro when this chunk completed one. Every chunk is exactly the
    /// swarm's chunk size.
    pub fn push_live_chunk(
        &mut self,
        now: Instant,
        swarm: SwarmHandle,
        data: &[u8],
    ) -> Result<Option<crate::live::SignedMunro>, LiveChunkError> {
        self.live_source_step(now, swarm, |src, store, cs, unix| {
            if data.len() != cs as usize {
                return Err(LiveChunkError::Length(data.len()));
            }
            store
                .write_chunk(src.chunks_pushed(), data)
                .map_err(LiveChunkError::Store)?;
            src.push_chunk(data, unix).map_err(LiveChunkError::Live)
        })
    }

    /// The injector ends its live stream: a last munro with fewer than `nchunks_per_sig`
    /// chunks is signed (its missing leaves empty, as a static tree's) and its chunks are
    /// announced, so peers can fetch the stream's tail. No chunk can be pushed afterwards.
    pub fn finish_live(
        &mut self,
        now: Instant,
        swarm: SwarmHandle,
    ) -> Result<Option<crate::live::SignedMunro>, LiveChunkError> {
        self.live_source_step(now, swarm, |src, _, _, unix| {
            src.finish(unix).map_err(LiveChunkError::Live)
        })
    }

    /// Runs `step` on an injector's tree (with its store, chunk size and the Unix time);
    /// when it signs a munro, the munro's chunks become ours and are announced.
    pub(super) fn live_source_step(
        &mut self,
        now: Instant,
        swarm: SwarmHandle,
        step: impl FnOnce(
            &mut crate::live::LiveSource,
            &mut dyn ChunkStore,
            u32,
            u64,
        ) -> Result<Option<crate::live::SignedMunro>, LiveChunkError>,
    ) -> Result<Option<crate::live::SignedMunro>, LiveChunkError> {
        self.advance(now);
        let unix = self.unix_micros();
        let Some(idx) = self.slot_of(swarm) else {
            return Err(LiveChunkError::NotLiveSource);
        };
        let Some(s) = self.swarms[idx].as_mut() else {
            return Err(LiveChunkError::NotLiveSource);
        };
        let (Tree::Live(src), Some(live)) = (&mut s.tree, s.live.as_mut()) else {
            return Err(LiveChunkError::NotLiveSource);
        };
        let Some(m) = step(src, &mut *s.store, s.cfg.chunk_size, unix)? else {
            return Ok(None);
        };
        let first = m.bin.first_chunk().unwrap_or(0);
        // A short last munro covers chunks that were never pushed.
        let end = src.signed_end();
        live.end = end;
        s.have.insert_range(first..end);
        s.claimed.insert_range(first..end);
        s.live_forget();
        self.announce(idx, first..end);
        Ok(Some(m))
    }

    /// A live stream's signed munro (RFC 7574 §6.1.2): the INTEGRITY just before names the
    /// munro and its hash, this message signs them. Checked (shape, age, signature) and then
    /// trusted: chunks under it verify against it. The first one fixes the tune-in point
    /// (§6.1.2.4).
    pub(super) fn on_signed_integrity(
        &mut self,
        id: u32,
        s: &crate::wire::SignedIntegrity,
    ) -> bool {
        let unix = self.unix_micros();
        let last = self.last_integrity.take();
        let Some((ch, sw, _)) = self.parts(id) else {
            return false;
        };
        let Some(live) = sw.live.as_mut() else {
            // Live signatures have no use in a static swarm.
            return true;
        };
        if live.cfg.verifier.is_none() {
            // The injector trusts its own munros only.
            return true;
        }
        let params = live.cfg.params;
        let munro = match last {
            Some((from, spec, hash)) if from == id && spec == s.spec => {
                crate::live::SignedMunro::from_messages(
                    &params,
                    &crate::wire::Integrity { spec, hash },
                    s,
                )
                .ok()
            }
            _ => None,
        };
        let Some(m) = munro.filter(|m| {
            params.munro_layer().is_ok_and(|l| m.bin.layer() == l)
                && m.hash.len() == params.hash.output_len()
        }) else {
            self.stats.drops.live_munros += 1;
            return true;
        };
        let first = m.bin.first_chunk().unwrap_or(0);
        // The peer knows this munro: no need to tell it (§6.1.2.4). (Trusted or not: one
        // that fails the checks below closes the channel anyway.)
        ch.live.munro_heard = Some(ch.live.munro_heard.map_or(first, |h| h.max(first)));
        let (swarm, remote, bin, idx) = (sw.handle, ch.remote, m.bin, ch.swarm);
        match live.check_munro(&sw.tree, &m, unix) {
            MunroCheck::Known | MunroCheck::Useless => {
                self.stats.drops.live_munros += 1;
                true
            }
            MunroCheck::Have => true,
            MunroCheck::Bad => {
                let error = VerifyError::HashMismatch { bin };
                self.integrity_failure(id, swarm, remote, bin, error)
            }
            MunroCheck::Good => {
                if self.accept_munro(idx, m).is_err() {
                    let error = VerifyError::HashMismatch { bin };
                    return self.integrity_failure(id, swarm, remote, bin, error);
                }
                true
            }
        }
    }

    /// Trusts signed munro `m` of the swarm in slot `idx` (its signature and age checked by
    /// [`LiveState::check_munro`]): the tree is anchored at it, the live edge moves, the
    /// first one fixes the tune-in point (§6.1.2.4), the discard window slides, and every
    /// channel may ask for its chunks. An error when the tree refuses the hash.
    pub(super) fn accept_munro(
        &mut self,
        idx: usize,
        m: crate::live::SignedMunro,
    ) -> Result<(), VerifyError> {
        let Some(sw) = self.swarms[idx].as_mut() else {
            return Ok(());
        };
        let (Tree::Partial(tree), Some(live)) = (&mut sw.tree, sw.live.as_mut()) else {
            return Ok(());
        };
        tree.add_trusted(m.bin, &m.hash)?;
        let (first, end) = (
            m.bin.first_chunk().unwrap_or(0),
            m.bin.last_chunk().unwrap_or(0) + 1,
        );
        live.munros.insert(first, m);
        live.end = live.end.max(end);
        if !live.tuned_in {
            live.tuned_in = true;
            sw.playback = first;
            sw.playback_start = first;
        }
        sw.live_forget();
        let floor = sw.live.as_ref().map_or(0, |l| l.floor);
        let others: Vec<u32> = sw.channels.iter().copied().collect();
        self.retry_held(idx);
        for o in others {
            if let Some((och, osw, _)) = self.parts(o) {
                och.down.pick_exhausted = false;
                // Requests behind the discard window will never verify: cancel them, or
                // they would hold the request queue full for good.
                let behind: Vec<u64> = och
                    .down
                    .requested
                    .keys()
                    .copied()
                    .filter(|&c| c < floor)
                    .collect();
                for c in behind {
                    och.down.requested.remove(&c);
                    release(osw, c);
                    och.down.pending_cancels.push((c, c));
                }
            }
            self.fill_requests(o);
        }
        Ok(())
    }
}

/// What [`LiveState::check_munro`] made of a signed munro.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MunroCheck {
    /// Trusted already, with the same hash.
    Have,
    /// Trusted already with another hash (a second signature over other content).
    Known,
    /// Before the discard window or older than the receiver accepts: of no use.
    Useless,
    /// Its signature does not verify.
    Bad,
    /// Verified: to be trusted ([`Endpoint::accept_munro`]).
    Good,
}

impl LiveState {
    /// Checks a signed munro of the right shape from a peer or an origin: known already,
    /// before the window, too old (R-6.1.2.4-d), or its signature (the injector's own
    /// munros are never checked here: it has no verifier and trusts only itself).
    pub(crate) fn check_munro(
        &self,
        tree: &Tree,
        m: &crate::live::SignedMunro,
        unix: u64,
    ) -> MunroCheck {
        let first = m.bin.first_chunk().unwrap_or(0);
        if let Some(known) = self.munros.get(&first) {
            return if known.hash == m.hash {
                MunroCheck::Have
            } else {
                MunroCheck::Known
            };
        }
        let Some(verifier) = self.cfg.verifier.as_ref() else {
            return MunroCheck::Useless;
        };
        if first < self.floor || !matches!(tree, Tree::Partial(_)) {
            return MunroCheck::Useless;
        }
        let params = self.cfg.params;
        let too_old = self.cfg.max_age.is_some_and(|max| {
            params
                .unix_micros_of(m.timestamp)
                .saturating_add(u64::try_from(max.as_micros()).unwrap_or(u64::MAX))
                < unix
        });
        if too_old {
            return MunroCheck::Useless;
        }
        let ok = params
            .munro_message(m.bin, m.timestamp, &m.hash)
            .is_ok_and(|msg| verifier.verify(&msg, &m.signature));
        if ok {
            MunroCheck::Good
        } else {
            MunroCheck::Bad
        }
    }
}

/// Live streams on one channel: the munros exchanged with the peer.
#[derive(Debug, Default)]
pub(crate) struct LiveChannel {
    /// The newest signed munro sent to the peer at tune-in (RFC 7574 §6.1.2.4), and when.
    pub(crate) munro_sent: Option<(Bin, Instant)>,
    /// The first chunk of the newest signed munro the peer sent us.
    pub(crate) munro_heard: Option<u64>,
}

/// Writes our newest signed munro (R-6.1.2.4-a/b/c): from the third datagram on (the
/// initiator) or once the initiator proved its address (the responder), until the peer shows
/// it has a chunk under it; again when a newer one is signed and, while unanswered, at most
/// once per [`MUNRO_REPEAT`].
pub(super) fn write_munro(ch: &mut Channel, sw: &Swarm, out: &mut Out<'_>) {
    let Some(m) = sw.live.as_ref().and_then(|l| l.latest(&sw.tree)) else {
        return;
    };
    let (a, b) = (
        m.bin.first_chunk().unwrap_or(0),
        m.bin.last_chunk().unwrap_or(0) + 1,
    );
    let due = match ch.live.munro_sent {
        Some((bin, at)) => bin != m.bin || out.now >= at + MUNRO_REPEAT,
        None => true,
    };
    // A peer that sent us this munro (or a newer one) knows it.
    let due = due && ch.live.munro_heard.is_none_or(|h| h < a);
    if !ch.proven || !due || ch.peer_have.intersects(a..b) {
        return;
    }
    let Some(spec) = ChunkSpec::node(out.wire.addressing, m.bin, out.cs) else {
        return;
    };
    let int = Message::Integrity(crate::wire::Integrity { spec, hash: m.hash });
    let sig = Message::SignedIntegrity(crate::wire::SignedIntegrity {
        spec,
        timestamp: m.timestamp,
        signature: m.signature.clone(),
    });
    if out.w.remaining() >= int.encoded_len(&out.wire) + sig.encoded_len(&out.wire)
        && out.w.push(&int).is_ok()
        && out.w.push(&sig).is_ok()
    {
        out.count(MessageType::Integrity);
        out.count(MessageType::SignedIntegrity);
        ch.live.munro_sent = Some((m.bin, out.now));
    }
}

/// A live swarm's state beside its tree (RFC 7574 §6).
#[derive(Debug)]
pub(crate) struct LiveState {
    pub(crate) cfg: crate::config::LiveConfig,
    /// Trusted signed munros by first chunk, kept to pass on (a peer that is not the
    /// injector; the injector's are in its [`crate::live::LiveSource`]).
    pub(crate) munros: alloc::collections::BTreeMap<u64, crate::live::SignedMunro>,
    /// One past the last chunk under a trusted (or, at the injector, signed) munro.
    pub(crate) end: u64,
    /// Whether a tune-in point was chosen (the first trusted munro's first chunk).
    pub(crate) tuned_in: bool,
    /// Chunks before this are forgotten (the discard window, §6.2).
    pub(crate) floor: u64,
    /// Chunks this endpoint has sent to some peer (see `Endpoint::add_data`).
    pub(crate) sent: crate::binmap::Binmap,
}

impl Swarm {
    /// Whether chunk `c` lies behind a live swarm's discard window (forgotten).
    pub(crate) fn forgotten(&self, c: u64) -> bool {
        self.live.as_ref().is_some_and(|l| c < l.floor)
    }

    /// Moves a live swarm's discard window up to its newest munro: chunks, hashes and munros
    /// before it are forgotten (RFC 7574 §6.2), so memory stays bounded.
    pub(crate) fn live_forget(&mut self) {
        let Some(l) = self.live.as_mut() else { return };
        let Some(w) = l.cfg.window else { return };
        let n = l.cfg.params.nchunks_per_sig.max(1);
        // A peer that is behind keeps what it has not delivered yet (from its first missing
        // chunk), up to four windows back: the window would otherwise slide past chunks while
        // they are on their way, drop their munros, and leave the peer chasing the edge
        // without ever verifying anything.
        let behind = match &self.tree {
            Tree::Live(_) => l.end,
            _ => self
                .have
                .missing_in(self.playback..l.end)
                .next()
                .map_or(l.end, |r| r.start),
        };
        let keep_from = l.end.saturating_sub(w).min(behind);
        let floor = keep_from.max(l.end.saturating_sub(w.saturating_mul(4))) / n * n;
        if floor <= l.floor {
            return;
        }
        l.floor = floor;
        l.munros = l.munros.split_off(&floor);
        l.sent.remove_range(0..floor);
        match &mut self.tree {
            Tree::Partial(t) => t.forget_before(floor),
            Tree::Live(src) => src.set_discard_window(Some(w)),
            Tree::Full(_) => {}
        }
        self.have.remove_range(0..floor);
        self.claimed.remove_range(0..floor);
        self.playback = self.playback.max(floor);
        self.held.retain_from(floor);
    }
}

impl LiveState {
    /// The signed munro covering `chunk`, if known.
    pub(crate) fn munro_for<'a>(
        &'a self,
        tree: &'a Tree,
        chunk: u64,
    ) -> Option<&'a crate::live::SignedMunro> {
        if let Tree::Live(src) = tree {
            return src.munro_for(chunk);
        }
        let first = self.cfg.params.munro_of(chunk)?.first_chunk()?;
        self.munros.get(&first)
    }

    /// The newest signed munro known.
    pub(crate) fn latest<'a>(&'a self, tree: &'a Tree) -> Option<&'a crate::live::SignedMunro> {
        if let Tree::Live(src) = tree {
            return src.latest_munro();
        }
        self.munros.values().next_back()
    }
}
