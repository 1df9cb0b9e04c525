//! Receiving content (RFC 7574 §5): INTEGRITY and DATA checked against the Merkle tree, held
//! until their hashes arrive, stored once verified, and completion.

use super::Endpoint;
use super::announce::push_ack;
use super::download::Download;
use super::swarm::Tree;
use crate::bin::Bin;
use crate::event::{CloseReason, Event, PeerHandle, SwarmHandle};
use crate::merkle::{HashStatus, VerifyError};
use crate::store::ChunkStore;
use crate::wire::{ChunkSpec, Data};
use alloc::vec::Vec;
use core::net::SocketAddr;

impl Endpoint {
    /// A peer sent content that failed verification (a chunk, a hash or a munro signature):
    /// count it, report it, and stop talking to that peer (R-12.6.5-a). Returns false (the
    /// channel is gone).
    pub(super) fn integrity_failure(
        &mut self,
        id: u32,
        swarm: SwarmHandle,
        remote: SocketAddr,
        bin: Bin,
        error: VerifyError,
    ) -> bool {
        self.stats.integrity_failures += 1;
        self.events.push_back(Event::IntegrityFailure {
            swarm,
            peer: PeerHandle(id),
            remote,
            bin,
            error,
        });
        self.close_channel(id, CloseReason::IntegrityFailure, true);
        false
    }

    pub(super) fn on_integrity(
        &mut self,
        id: u32,
        spec: ChunkSpec,
        hash: &crate::hash::HashValue,
    ) -> bool {
        let Some((ch, sw, _)) = self.parts(id) else {
            return false;
        };
        let bin = match spec {
            ChunkSpec::Bin(b) => b,
            other => {
                let Some((a, b)) = other.to_chunks(u64::from(sw.cfg.chunk_size)) else {
                    return true;
                };
                let Some(bin) = Bin::from_chunk_range(a, b) else {
                    // Not a tree node: an invalid INTEGRITY, ignored.
                    return true;
                };
                bin
            }
        };
        let Tree::Partial(tree) = &mut sw.tree else {
            return true;
        };
        if sw.complete {
            return true;
        }
        let remote = ch.remote;
        match tree.add_hash(bin, hash) {
            Ok(HashStatus::Verified) => {
                // Chunks held for this very hash can be checked now.
                if !sw.held.is_empty() {
                    let work = sw.held.take_awaiting(bin);
                    self.verify_released(work);
                }
                true
            }
            Ok(_) => true,
            Err(e @ (VerifyError::HashMismatch { .. } | VerifyError::PeaksMismatch)) => {
                let swarm = sw.handle;
                self.integrity_failure(id, swarm, remote, bin, e)
            }
            // Out of range or not fitting the tree: drop the hash.
            Err(_) => true,
        }
    }

    pub(super) fn on_data(&mut self, id: u32, d: Data) -> bool {
        let unix = self.unix_micros();
        let Some((a, b)) = self.spec_chunks(id, d.spec) else {
            return true;
        };
        if a != b {
            // One chunk per DATA (fixed-size chunks); larger DATA is not supported.
            self.stats.drops.unrequested_data += 1;
            return true;
        }
        let c = a;
        let delay = (unix as i64).wrapping_sub(d.timestamp as i64);
        let now = self.now;
        let Some((ch, sw, _)) = self.parts(id) else {
            return false;
        };
        if sw.have.contains(c) {
            // A duplicate (our ACK was lost, or the endgame): acknowledge it again.
            let (first, last) = ack_span(sw, c);
            push_ack(ch, first, last, delay);
            self.stats.drops.unrequested_data += 1;
            self.queue_send(id);
            return true;
        }
        if sw.forgotten(c) {
            // Behind a live stream's discard window: verified once already, or of no use now.
            // (Its hashes may linger in a partly forgotten page of the tree: stored again, it
            // would be written twice.)
            self.stats.drops.unrequested_data += 1;
            return true;
        }
        if ch.down.request_seq == 0 && !sw.requested.contains_key(&c) {
            // R-12.6.3-a: DATA from a peer we never asked for anything is dropped unverified.
            // A chunk we asked this peer for earlier (the request timed out and was released)
            // is still welcome: refusing it would leave the sender resending it forever.
            self.stats.drops.unrequested_data += 1;
            return true;
        }
        let Tree::Partial(tree) = &mut sw.tree else {
            return true;
        };
        let swarm = sw.handle;
        match tree.verify_chunk(c, &d.payload) {
            Ok(()) => {}
            Err(
                e @ (VerifyError::MissingHashes { .. }
                | VerifyError::SizeUnknown
                | VerifyError::PeaksMismatch),
            ) => {
                // R-5.3-d: cannot be checked yet: the hashes it needs were in a datagram that
                // was lost or is late. Hold it (bounded) until they arrive; past the bound, drop
                // it (it will be sent again). A peak list that failed (its candidates are gone
                // now) is no proof against this sender: the candidates may have come from other
                // peers, or be the first part of a peak list split over datagrams, which is the
                // whole peak list of a smaller size.
                let awaited = match e {
                    VerifyError::MissingHashes { bin } => bin,
                    _ => Bin::NONE,
                };
                if !sw.held.insert(c, id, d, awaited) {
                    self.stats.drops.unrequested_data += 1;
                }
                // The peaks that came with it may have made the size known.
                self.report_size(swarm, id);
                return true;
            }
            Err(VerifyError::OutOfRange { .. } | VerifyError::BinOutOfRange { .. }) => {
                self.stats.drops.unrequested_data += 1;
                return true;
            }
            Err(e) => {
                let remote = ch.remote;
                let bin = Bin::leaf(c).unwrap_or(Bin::NONE);
                let open = self.integrity_failure(id, swarm, remote, bin, e);
                // Peaks that verified against the swarm ID stay trusted though the chunk
                // with them failed: the size is known now.
                self.report_size(swarm, id);
                return open;
            }
        }
        let size_now = tree.chunk_count();
        let newly_sized = !sw.size_reported && size_now.is_some();
        sw.size_reported |= newly_sized;
        let content_len = tree.content_len();
        // Only verified content is written (the store never sees unverified bytes).
        if let Err(error) = sw.store.write_chunk(c, &d.payload) {
            sw.store_failed = true;
            let swarm = sw.handle;
            self.events.push_back(Event::StoreFailure { swarm, error });
            return true;
        }
        sw.have.insert(c);
        sw.content_from_peers += d.payload.len() as u64;
        let mine = account_delivery(ch, sw, c, d.payload.len() as u64, delay, now);
        let was_requested = sw.requested.remove(&c);
        let requested_elsewhere = was_requested.is_some_and(|k| k > mine);
        if was_requested.is_none() {
            // A requested chunk is in `claimed` already (claimed = have ∪ requested).
            sw.claimed.insert(c);
        }
        let others: Vec<u32> = if requested_elsewhere || newly_sized {
            sw.channels.iter().copied().filter(|&o| o != id).collect()
        } else {
            Vec::new()
        };
        if let (true, Some(n)) = (newly_sized, size_now) {
            self.on_size_known(swarm, id, &others, n, content_len);
        }
        self.stats.chunks_verified += 1;
        self.stats.content_in += d.payload.len() as u64;
        self.push_verified(swarm, c);
        // Announce it (R-3.2-a) through the swarm's HAVE log: each channel folds the log in
        // when it next sends.
        let idx = swarm.slot as usize;
        self.announce(idx, c..c + 1);
        if requested_elsewhere {
            self.cancel_duplicates(c, &others);
        }
        self.check_complete(swarm.slot as usize);
        self.fill_requests(id);
        // The ACK goes out now if due (or with anything else due), else at its deadline.
        if self.can_send_more(id) {
            self.queue_send(id);
        } else {
            self.reschedule(id);
        }
        if newly_sized {
            // Chunks held for the peaks wait for no node in particular.
            self.retry_held(idx);
        } else {
            self.retry_held_after(idx, c);
        }
        true
    }

    /// The content's size became known with a chunk from channel `id` (`others`: the swarm's
    /// other channels): rarity counts can be sized, and the driver is told.
    fn on_size_known(
        &mut self,
        swarm: SwarmHandle,
        id: u32,
        others: &[u32],
        chunks: u64,
        bytes: Option<u64>,
    ) {
        let maps: Vec<crate::binmap::Binmap> = others
            .iter()
            .chain(core::iter::once(&id))
            .filter_map(|&o| {
                self.chan(o)
                    .filter(|c| c.is_established())
                    .map(|c| c.peer_have.clone())
            })
            .collect();
        if let Some(s) = self
            .swarms
            .get_mut(swarm.slot as usize)
            .and_then(Option::as_mut)
        {
            s.ensure_avail(maps.into_iter());
        }
        self.events.push_back(Event::SizeKnown {
            swarm,
            chunks,
            bytes,
        });
    }

    /// Reports the content's size once it is known, however it became known (peaks that came
    /// with a chunk that verified, was held, or failed; channel `id` brought them).
    pub(super) fn report_size(&mut self, swarm: SwarmHandle, id: u32) {
        let Some(s) = self.slot_of(swarm).and_then(|i| self.swarms[i].as_mut()) else {
            return;
        };
        let Some(n) = s.chunk_count() else { return };
        if s.size_reported {
            return;
        }
        s.size_reported = true;
        let bytes = s.tree.content_len();
        let others: Vec<u32> = s.channels.iter().copied().filter(|&o| o != id).collect();
        self.on_size_known(swarm, id, &others, n, bytes);
    }

    /// Chunk `c` arrived: the endgame's duplicate requests for it on `others` are cancelled
    /// (R-3.8-a).
    pub(super) fn cancel_duplicates(&mut self, c: u64, others: &[u32]) {
        for &o in others {
            if let Some(och) = self.chan_mut(o) {
                if och.down.requested.remove(&c).is_some() {
                    och.down.pending_cancels.push((c, c));
                    self.queue_send(o);
                }
            }
        }
    }

    /// Verifies held chunks whose awaited hashes have since been verified.
    pub(super) fn retry_held(&mut self, idx: usize) {
        let Some(s) = self.swarms.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        if s.held.is_empty() {
            return;
        }
        let Tree::Partial(tree) = &s.tree else { return };
        let size_known = tree.chunk_count().is_some();
        let have = &s.have;
        let work = s.held.take_ready(|c, bin| {
            have.contains(c)
                || if bin.is_none() {
                    size_known
                } else {
                    tree.is_verified(bin)
                }
        });
        self.verify_released(work);
    }

    /// Chunk `c` of swarm `idx` verified: the held chunks it releases are verified in turn.
    fn retry_held_after(&mut self, idx: usize, c: u64) {
        let Some(s) = self.swarms.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        if s.held.is_empty() {
            return;
        }
        let Tree::Partial(tree) = &s.tree else { return };
        let work = s.held.take_released_by(c, |b| tree.is_verified(b));
        self.verify_released(work);
    }

    /// Verifies released chunks. A chunk verified meanwhile releases more: those are queued
    /// and taken in the same loop (a chain of thousands must not nest thousands of calls).
    fn verify_released(&mut self, work: Vec<(u32, Data)>) {
        self.released.extend(work);
        if self.retrying {
            return;
        }
        self.retrying = true;
        while let Some((from, data)) = self.released.pop_front() {
            if self.chan(from).is_some() {
                self.on_data(from, data);
            }
        }
        self.retrying = false;
    }

    /// Emits completion once every chunk is verified.
    pub(crate) fn check_complete(&mut self, idx: usize) {
        let Some(s) = self.swarms.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        // A live stream never completes.
        if s.complete || s.live.is_some() {
            return;
        }
        let Some(n) = s.chunk_count() else { return };
        if !s.have.is_complete(n) {
            return;
        }
        s.complete = true;
        let handle = s.handle;
        if let Err(error) = s.store.complete() {
            // Every chunk verified, but the store could not finalise the content: say so, and
            // do not claim completion.
            s.store_failed = true;
            self.events.push_back(Event::StoreFailure {
                swarm: handle,
                error,
            });
            return;
        }
        // Requests still out (endgame duplicates) are cancelled. Rarity counts and the HAVE
        // log's idle list serve downloading only.
        let ids: Vec<u32> = s.channels.iter().copied().collect();
        s.requested.clear();
        s.claimed = s.have.clone();
        s.avail = Vec::new();
        s.have_idle = Vec::new();
        for id in ids {
            if let Some(ch) = self.chan_mut(id) {
                let reqs: Vec<(u64, u64)> = super::table::sorted_keys(&ch.down.requested)
                    .into_iter()
                    .map(|c| (c, c))
                    .collect();
                ch.down.requested.clear();
                ch.down.pending_requests.clear();
                ch.down.pending_cancels.extend(reqs);
                Download::coalesce(&mut ch.down.pending_cancels);
            }
            self.queue_send(id);
        }
        self.events
            .push_back(Event::SwarmComplete { swarm: handle });
    }

    /// Pushes an event, merging consecutive verified ranges.
    pub(crate) fn push_verified(&mut self, swarm: SwarmHandle, chunk: u64) {
        if let Some(Event::ChunksVerified { swarm: s, range }) = self.events.back_mut() {
            if *s == swarm && range.end == chunk {
                range.end += 1;
                return;
            }
        }
        self.events.push_back(Event::ChunksVerified {
            swarm,
            range: chunk..chunk + 1,
        });
    }
}

/// R-3.4-c, §4.3.2: what an ACK of chunk `c` names: at least the chunk, aggregated to the
/// largest aligned bin we hold around it (what libswift sends). Under chunk ranges the whole
/// verified run would do too, but libswift as the sender then slows down, so the bin
/// it expects is what it gets.
fn ack_span(sw: &super::swarm::Swarm, c: u64) -> (u64, u64) {
    let bin = sw.complete_bin(c);
    (
        bin.first_chunk().unwrap_or(c),
        bin.last_chunk().unwrap_or(c),
    )
}

/// Accounts verified chunk `c` of `len` bytes from `ch`: the delivery (rate, request
/// pipeline, reciprocity) and its ACK with the delay sample (R-3.4-d), delayed up to
/// [`ACK_DELAY`](super::ACK_DELAY) for a second DATA. Returns 1 if `ch` had asked for it.
fn account_delivery(
    ch: &mut super::channel::Channel,
    sw: &super::swarm::Swarm,
    c: u64,
    len: u64,
    delay: i64,
    now: crate::time::Instant,
) -> u8 {
    ch.stats.content_in += len;
    ch.choke.round_down += len;
    ch.down.last_delivery = now;
    ch.mtu.on_answered();
    let mine = match ch.down.requested.remove(&c) {
        Some(r) => {
            ch.down.delivered_seq = ch.down.delivered_seq.max(r.seq);
            ch.down
                .on_delivered(now, sw.cfg.max_requests_per_peer, &ch.rtt, r.at);
            1
        }
        None => 0,
    };
    let (first, last) = ack_span(sw, c);
    push_ack(ch, first, last, delay);
    ch.ann.data_unacked = ch.ann.data_unacked.saturating_add(1);
    if ch.ann.ack_due.is_none() {
        ch.ann.ack_due = Some(now + super::ACK_DELAY);
    }
    mine
}
