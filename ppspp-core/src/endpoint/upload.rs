//! Serving chunks (RFC 7574 §3.6, §3.7, §5): the requests a peer queued with us, and each DATA
//! with the INTEGRITY messages that prove it ahead of it.

use super::channel::Channel;
use super::output::Out;
use super::swarm::Swarm;
use super::{Endpoint, choke};
use crate::bin::Bin;
use crate::live::SignedMunro;
use crate::merkle::AckedHashes;
use crate::store::ChunkStore;
use crate::wire::EncodeError;
use crate::wire::{ChunkSpec, Message, MessageType};
use alloc::collections::VecDeque;
use arrayvec::ArrayVec;

/// The size of a typical DATA datagram, for window and pacing checks before it is built: a
/// chunk, its headers and a couple of hashes, at most the maximum datagram size.
pub(crate) fn data_estimate(mss: u64, chunk_size: u32) -> u64 {
    (u64::from(chunk_size) + 64).min(mss)
}

/// Bytes of a DATA message header before the chunk: type, chunk spec, timestamp.
fn data_header_len(spec_len: usize) -> usize {
    1 + spec_len + 8
}

/// The tree nodes whose INTEGRITY messages go ahead of a chunk's DATA, top down, and the live
/// stream's signed munro among them, if any.
struct Proof<'a> {
    hashes: ArrayVec<Bin, 130>,
    signed: Option<&'a SignedMunro>,
}

/// Which hashes the peer needs to verify `chunk` (`None`: we cannot prove it, so it is not
/// served): the peaks until it acknowledged anything (R-5.6.2-a), then the uncles it cannot
/// know from its ACKs and HAVEs (R-5.3-e). On a first transmission, hashes already sent in
/// datagrams still in flight are left out too (R-5.3-f); the receiver holds a chunk whose
/// hashes were lost until they arrive again, and a retransmission carries every hash the
/// acknowledgements do not cover. A live stream's chunk is proven against its signed munro
/// (RFC 7574 §6.1.2.3): the munro's INTEGRITY and SIGNED_INTEGRITY first, unless the peer has
/// a chunk under it (or, on a first transmission, one is on its way), then the uncles below
/// it.
fn proof<'a>(ch: &Channel, sw: &'a Swarm, chunk: u64, retransmit: bool) -> Option<Proof<'a>> {
    let with_peaks = ch.peer_have.is_empty() && sw.live.is_none();
    let peer_have = &ch.peer_have;
    let in_flight = &ch.flight.in_flight_map;
    // While peaks are still owed (the peer acknowledged nothing yet) every peak goes in every
    // DATA datagram: a receiver cannot check part of a peak set, so no optimism.
    let optimistic = !retransmit && !with_peaks;
    // Only nodes on the chunk's path (and peaks, while nothing is acknowledged) are asked
    // about, so the lowest known layer on the path answers for all of them.
    let from_acks = AckedHashes::new(peer_have).lowest_known_layer(chunk);
    let from_flight = if optimistic {
        AckedHashes::new(in_flight).lowest_known_layer(chunk)
    } else {
        None
    };
    let lowest = match (from_acks, from_flight) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let known = |b: Bin| lowest.is_some_and(|l| b.layer() >= l);
    let mut hashes: ArrayVec<Bin, 130> = ArrayVec::new();
    let source = sw.tree.source();
    let Some(l) = &sw.live else {
        let it = crate::merkle::integrity(source, chunk, with_peaks, known).ok()?;
        hashes.extend(it.bins().take(130));
        return Some(Proof {
            hashes,
            signed: None,
        });
    };
    let m = l.munro_for(&sw.tree, chunk)?;
    let (a, b) = (
        m.bin.first_chunk().unwrap_or(0),
        m.bin.last_chunk().unwrap_or(0) + 1,
    );
    let has_munro = peer_have.intersects(a..b) || (optimistic && in_flight.intersects(a..b));
    let mut up = Bin::leaf(chunk).unwrap_or(Bin::NONE);
    let mut uncles: ArrayVec<Bin, 64> = ArrayVec::new();
    while m.bin.contains(up) && up != m.bin {
        let (Some(sib), Some(parent)) = (up.sibling(), up.parent()) else {
            break;
        };
        if has_munro && known(sib) {
            break;
        }
        if !source.has_node(sib) {
            // A hash we never verified.
            return None;
        }
        let _ = uncles.try_push(sib);
        up = parent;
    }
    let mut signed = None;
    if !has_munro {
        hashes.push(m.bin);
        signed = Some(m);
    }
    hashes.extend(uncles.into_iter().rev());
    Some(Proof { hashes, signed })
}

/// Writes the INTEGRITY of `bin`, its hash copied straight from the tree (and, for the signed
/// munro, its SIGNED_INTEGRITY right after it, R-6.1.2.3-b); false when they do not both fit.
fn write_hash(sw: &Swarm, signed: Option<&SignedMunro>, bin: Bin, out: &mut Out<'_>) -> bool {
    let (wire, cs) = (out.wire, out.cs);
    let Some(spec) = ChunkSpec::node(wire.addressing, bin, cs) else {
        return false;
    };
    let int_len = 1 + wire.addressing.spec_len() + wire.hash_len;
    let sig = signed.filter(|m| m.bin == bin).map(|m| {
        Message::SignedIntegrity(crate::wire::SignedIntegrity {
            spec,
            timestamp: m.timestamp,
            signature: m.signature.clone(),
        })
    });
    if let Some(sig) = &sig {
        if out.w.remaining() < int_len + sig.encoded_len(&wire) {
            return false;
        }
    }
    let source = sw.tree.source();
    let copied = out.w.push_integrity_with(spec, |h| {
        source.copy_node_hash(bin, h) == Some(wire.hash_len)
    });
    if copied.is_err() {
        return false;
    }
    out.count(MessageType::Integrity);
    if let Some(sig) = sig {
        if out.w.push(&sig).is_ok() {
            out.count(MessageType::SignedIntegrity);
        }
    }
    true
}

impl Endpoint {
    /// A REQUEST (RFC 7574 §3.7): the chunks go in the peer's upload queue, bounded, if the
    /// peer holds an upload slot.
    pub(super) fn on_request(&mut self, id: u32, spec: ChunkSpec) {
        let now = self.now;
        let Some(ch) = self.chan(id) else { return };
        // R-12.6.11-a: never answer a REQUEST before the handshake completed. R-7.10-a: nor
        // from a peer that said it does not accept DATA.
        if !ch.is_established() || !ch.proven || !ch.accepts(MessageType::Data) {
            self.stats.drops.refused_requests += 1;
            return;
        }
        // libswift crashed on a REQUEST past the end: every range is checked.
        let Some((a, b)) = self.spec_chunks(id, spec) else {
            self.stats.drops.refused_requests += 1;
            return;
        };
        let Some((ch, sw, _)) = self.parts(id) else {
            return;
        };
        ch.choke.interested_at = Some(now);
        // A REQUEST shows the peer knows it is unchoked (or asks anyway): no UNCHOKE to repeat.
        ch.choke.unchoke_unanswered = None;
        if !choke::admit(ch, sw, id, now) {
            self.stats.drops.refused_requests += 1;
            self.queue_send(id);
            return;
        }
        let limit = 4 * sw.cfg.max_requests_per_peer as u64;
        let refused = ch.up.queue_upload(a, b, limit);
        self.stats.drops.refused_requests += refused.min(1);
        self.queue_send(id);
    }

    /// Appends INTEGRITY + DATA for the next queued chunk to the datagram in `out`, if the
    /// congestion window allows (`had_control`: the datagram already carries control
    /// messages, which then go alone when the chunk and its hashes do not fit with them).
    pub(super) fn add_data(&mut self, id: u32, out: &mut Out<'_>, had_control: bool) {
        let now = self.now;
        let unix = self.unix_micros();
        let mss = self.cfg.max_datagram_size as u64;
        let Some((ch, sw, _)) = self.parts(id) else {
            return;
        };
        let estimate = data_estimate(mss, sw.cfg.chunk_size);
        match ch.cc.next_send_time(now, estimate) {
            Some(t) if t <= now => {}
            // Window full (wait for ACKs) or paced (the timer wakes us).
            _ => return,
        }
        let (wire, cs) = (out.wire, out.cs);
        let Some(n) = sw.chunk_count() else {
            return;
        };
        // The next chunk we can serve. In a live swarm, one we have sent nobody yet goes
        // first: every viewer asks for the newest chunks, and a source serving them in order
        // sent the same chunks to each while the rest of the stream waited (20 viewers of a
        // source that uploads two copies of the stream skipped two chunks in three; none
        // with this). The copies held back go to those peers later, unless they got them
        // elsewhere.
        let fresh = sw.live.as_ref().map(|l| &l.sent);
        let chunk = loop {
            // A retransmission, or a chunk whose hashes went ahead, stays first.
            let pushed_back = ch.up.upload.front().is_some_and(|&(c, _)| {
                ch.flight.lost.contains(c) || ch.up.hashes_ahead.is_some_and(|h| h.chunk == c)
            });
            let next = match fresh {
                Some(sent) if !pushed_back => ch.up.pop_preferring(
                    |a, b| Some(sent.first_missing(a)).filter(|&c| c <= b),
                    FRESH_SCAN,
                ),
                _ => ch.up.pop_upload(),
            };
            let Some(c) = next else { return };
            // A chunk already in flight is not sent twice (a peer re-requesting a hole while
            // our copy is on its way); if that copy is lost, loss detection queues it again.
            if c < n
                && sw.have.contains(c)
                && !ch.peer_have.contains(c)
                && !ch.flight.in_flight.contains_key(&c)
            {
                break c;
            }
        };
        // Live chunks are all full-size.
        let chunk_len = if chunk + 1 < n || sw.live.is_some() {
            cs as usize
        } else {
            match sw.tree.content_len() {
                Some(total) => (total - (n - 1) * cs) as usize,
                None => {
                    ch.up.push_upload_front(chunk);
                    return;
                }
            }
        };
        let retransmit = ch.flight.lost.contains(chunk);
        let Some(Proof { hashes, signed }) = proof(ch, sw, chunk, retransmit) else {
            // We cannot prove this chunk (a leecher missing a hash): skip it.
            return;
        };
        let skip = match ch.up.hashes_ahead {
            Some(h) if h.chunk == chunk => h.sent.min(hashes.len()),
            _ => 0,
        };
        let int_len = 1 + wire.addressing.spec_len() + wire.hash_len;
        let signed_len = match signed {
            Some(m) if hashes.iter().skip(skip).any(|&b| b == m.bin) => {
                1 + wire.addressing.spec_len() + 8 + m.signature.len()
            }
            _ => 0,
        };
        let data_len = data_header_len(wire.addressing.spec_len()) + chunk_len;
        let need = (hashes.len() - skip) * int_len + signed_len + data_len;
        // A retransmission that carries hashes goes in datagrams no bigger than its DATA
        // alone, the hashes ahead in their own (R-5.3-c): if the first copy was dropped for
        // its size (a path MTU below ours), the same datagram would be dropped again and
        // again until the channel-wide fallback after several timeouts. At least 512 bytes:
        // a short last chunk's DATA alone leaves no room for a hash.
        if retransmit && hashes.len() > skip {
            out.w.cap((4 + data_len).max(512));
        }
        let room = out.w.remaining();
        let Some(spec) = ChunkSpec::chunk(wire.addressing, chunk, cs) else {
            return;
        };
        if need > room {
            if had_control || room < int_len + signed_len {
                // Send the control messages now; the chunk goes in the next datagram.
                ch.up.push_upload_front(chunk);
                return;
            }
            // R-5.3-c: hashes that do not fit with the DATA go first, in their own datagram.
            let mut sent = skip;
            for &bin in hashes.iter().skip(skip) {
                if !write_hash(sw, signed, bin, out) {
                    break;
                }
                sent += 1;
            }
            ch.up.hashes_ahead = Some(HashesAhead { chunk, sent });
            ch.up.push_upload_front(chunk);
            return;
        }
        for &bin in hashes.iter().skip(skip) {
            write_hash(sw, signed, bin, out);
        }
        ch.up.hashes_ahead = None;
        // The DATA, its chunk read by the store straight into the datagram.
        let start = out.w.len();
        let store = &mut sw.store;
        let read = out
            .w
            .push_data_with(spec, unix, chunk_len.max(cs as usize), |b| {
                match store.read_chunk(chunk, b) {
                    Ok(k) if k == chunk_len => Some(k),
                    Ok(_) | Err(_) => None,
                }
            });
        match read {
            Ok(_) => {}
            Err(EncodeError::PayloadUnavailable) => {
                // The store cannot give this chunk back as it was verified: stop serving.
                sw.store_failed = true;
                let swarm = sw.handle;
                self.events.push_back(crate::event::Event::StoreFailure {
                    swarm,
                    error: crate::store::StoreError::Io {
                        message: alloc::format!("chunk {chunk} could not be read back"),
                    },
                });
                return;
            }
            Err(_) => return,
        }
        out.count(MessageType::Data);
        let len = out.w.len();
        let bytes = (len - start) as u64;
        if retransmit {
            ch.stats.retransmissions += 1;
        }
        ch.flight.on_sent(chunk, now, bytes, len, retransmit);
        if let Some(l) = sw.live.as_mut() {
            l.sent.insert(chunk);
        }
        ch.cc.on_sent(now, bytes);
        ch.stats.content_out += chunk_len as u64;
        ch.choke.round_up += chunk_len as u64;
        self.stats.content_out += chunk_len as u64;
        if retransmit {
            self.stats.data_retransmissions += 1;
        }
    }
}

/// Queued chunks a live swarm's uploader looks through for one it has sent nobody yet.
const FRESH_SCAN: u64 = 256;

/// Hashes of a chunk already sent ahead of its DATA (RFC 7574 §5.3: hashes that do not fit
/// with the DATA go first, in their own datagram).
#[derive(Clone, Copy, Debug)]
pub(crate) struct HashesAhead {
    pub(crate) chunk: u64,
    pub(crate) sent: usize,
}

/// The chunks one peer asked us for, in the order we serve them.
#[derive(Debug, Default)]
pub(crate) struct Upload {
    pub(crate) upload: VecDeque<(u64, u64)>,
    pub(crate) upload_len: u64,
    pub(crate) hashes_ahead: Option<HashesAhead>,
}

impl Upload {
    /// Adds chunks `first..=last` to the upload queue, up to `limit` queued chunks; returns how
    /// many were refused.
    pub(crate) fn queue_upload(&mut self, first: u64, last: u64, limit: u64) -> u64 {
        let room = limit.saturating_sub(self.upload_len);
        let len = last - first + 1;
        let take = len.min(room);
        if take > 0 {
            let end = first + take - 1;
            match self.upload.back_mut() {
                Some(b) if b.1 + 1 == first => b.1 = end,
                _ => self.upload.push_back((first, end)),
            }
            self.upload_len += take;
        }
        len - take
    }

    /// Removes chunks `first..=last` from the upload queue (CANCEL, or an implicit cancel by
    /// HAVE, RFC 7574 §3.8).
    pub(crate) fn cancel_upload(&mut self, first: u64, last: u64) {
        if !self.upload.iter().any(|&(a, b)| a <= last && b >= first) {
            return;
        }
        let mut out = VecDeque::with_capacity(self.upload.len() + 1);
        let mut removed = 0;
        for &(a, b) in &self.upload {
            if b < first || a > last {
                out.push_back((a, b));
                continue;
            }
            if a < first {
                out.push_back((a, first - 1));
            }
            if b > last {
                out.push_back((last + 1, b));
            }
            removed += b.min(last) - a.max(first) + 1;
        }
        self.upload = out;
        self.upload_len -= removed;
    }

    /// The next chunk to upload, removed from the queue.
    pub(crate) fn pop_upload(&mut self) -> Option<u64> {
        let front = self.upload.front_mut()?;
        let c = front.0;
        if front.0 == front.1 {
            self.upload.pop_front();
        } else {
            front.0 += 1;
        }
        self.upload_len -= 1;
        Some(c)
    }

    /// The first acceptable chunk among the next `scan` queued, removed from the queue;
    /// without one, the next chunk (as [`Upload::pop_upload`]). `first_in(a, b)` gives the
    /// first acceptable chunk of `a..=b` (one lookup per queued run, not one per chunk: this
    /// runs for every DATA a live swarm sends).
    pub(crate) fn pop_preferring(
        &mut self,
        first_in: impl Fn(u64, u64) -> Option<u64>,
        scan: u64,
    ) -> Option<u64> {
        let mut left = scan;
        let mut found = None;
        for &(a, b) in &self.upload {
            if left == 0 {
                break;
            }
            let end = b.min(a.saturating_add(left - 1));
            if let Some(c) = first_in(a, end) {
                found = Some(c);
                break;
            }
            left = left.saturating_sub(end - a + 1);
        }
        match found {
            Some(c) => {
                self.cancel_upload(c, c);
                Some(c)
            }
            None => self.pop_upload(),
        }
    }

    /// Puts a chunk back at the front of the upload queue (a retransmission goes first).
    pub(crate) fn push_upload_front(&mut self, chunk: u64) {
        self.upload.push_front((chunk, chunk));
        self.upload_len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::Upload;
    use alloc::vec::Vec;

    #[test]
    fn pop_preferring_takes_the_first_accepted_chunk_within_the_scan() {
        let mut u = Upload::default();
        u.queue_upload(10, 13, 100);
        u.queue_upload(20, 21, 100);
        // The first chunk of a run that `pred` accepts.
        let first = |pred: fn(u64) -> bool| move |a: u64, b: u64| (a..=b).find(|&c| pred(c));
        // 12 is the first accepted: taken out of the middle of its run.
        assert_eq!(
            u.pop_preferring(first(|c| c % 2 == 0 && c > 10), 8),
            Some(12)
        );
        assert_eq!(u.upload_len, 5);
        assert_eq!(
            u.upload.iter().copied().collect::<Vec<_>>(),
            [(10, 11), (13, 13), (20, 21)]
        );
        // None accepted within the scan: the front goes.
        assert_eq!(u.pop_preferring(first(|c| c == 21), 3), Some(10));
        // Found past a run boundary.
        assert_eq!(u.pop_preferring(first(|c| c == 21), 8), Some(21));
        let rest: Vec<u64> = core::iter::from_fn(|| u.pop_upload()).collect();
        assert_eq!(rest, [11, 13, 20]);
        assert_eq!(u.upload_len, 0);
        assert_eq!(u.pop_preferring(first(|_| true), 8), None);
    }
}
