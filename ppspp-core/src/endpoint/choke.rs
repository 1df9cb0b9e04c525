//! Upload slots (RFC 7574 §3.9): CHOKE and UNCHOKE, who gets a slot, reciprocity rounds, the
//! optimistic unchoke, and UNCHOKEs repeated until a REQUEST answers them.

use super::Endpoint;
use super::channel::Channel;
use super::download::release;
use super::output::Out;
use super::swarm::Swarm;
use super::timer::UNCHOKE_REPEATS;
use super::{CHOKE_ROUND, UNCHOKE_REPEAT};
use crate::time::Instant;
use crate::wire::Message;
use alloc::vec::Vec;

impl Endpoint {
    pub(super) fn on_choke(&mut self, id: u32) {
        let Some((ch, sw, _)) = self.parts(id) else {
            return;
        };
        ch.choke.peer_choking = true;
        // R-3.9-c: assume outstanding requests will not be answered.
        let reqs = super::table::sorted_keys(&ch.down.requested);
        ch.down.requested.clear();
        ch.down.pending_requests.clear();
        for &c in &reqs {
            release(sw, c);
        }
        if !reqs.is_empty() {
            let idx = ch.swarm;
            self.offer_released(idx, &reqs, id);
        }
    }

    /// Upload slots (RFC 7574 §3.9). Every tick, slots of peers that stopped asking are freed
    /// and given to waiting peers; every choke round the unchoked set is re-ranked: peers that
    /// upload to us most keep their slots (reciprocity, RFC 7574 §9.2), and one slot goes to a
    /// random other peer (optimistic unchoke).
    pub(super) fn refresh_slots(&mut self, idx: usize, round: bool) {
        let now = self.now;
        let Some(s) = self.swarms[idx].as_ref() else {
            return;
        };
        let slots = s.cfg.upload_slots;
        let idle = CHOKE_ROUND * 2;
        let mut interested: Vec<(u64, u32)> = Vec::new();
        for &id in &s.channels {
            let Some(ch) = self.chan(id) else { continue };
            // A peer we choke cannot say it is interested (no REQUEST while choked, R-3.9-c):
            // one that lacks chunks we have is taken to be, or it would stay choked for good
            // (a live stream's stragglers, choked by every peer ahead of them).
            let asked = ch
                .choke
                .interested_at
                .is_some_and(|t| now.saturating_duration_since(t) < idle);
            let wants = ch.is_established()
                && (asked
                    || (ch.choke.am_choking
                        && s.have.difference_ranges(&ch.peer_have).next().is_some()))
                && !s.chunk_count().is_some_and(|n| ch.peer_have.is_complete(n));
            if wants {
                interested.push((ch.choke.round_down, id));
            }
        }
        let mut unchoked: Vec<u32> = s
            .unchoked
            .iter()
            .copied()
            .filter(|id| interested.iter().any(|(_, i)| i == id))
            .collect();
        if round {
            // Reciprocity first; ties broken at random so seeders rotate their slots.
            let mut ranked: Vec<(u64, u32, u32)> = interested
                .iter()
                .map(|&(down, id)| (down, self.rng.next_u32(), id))
                .collect();
            ranked.sort_unstable_by(|a, b| b.cmp(a));
            unchoked = ranked
                .iter()
                .take(slots.saturating_sub(1))
                .map(|r| r.2)
                .collect();
            let rest: Vec<u32> = ranked
                .iter()
                .skip(slots.saturating_sub(1))
                .map(|r| r.2)
                .collect();
            if !rest.is_empty() {
                let pick = rest[self.rng.gen_range(0..rest.len() as u64) as usize];
                unchoked.push(pick);
            }
        } else {
            // Fill free slots with waiting peers.
            for &(_, id) in &interested {
                if unchoked.len() >= slots {
                    break;
                }
                if !unchoked.contains(&id) {
                    unchoked.push(id);
                }
            }
        }
        let Some(s) = self.swarms[idx].as_mut() else {
            return;
        };
        let old = core::mem::take(&mut s.unchoked);
        s.unchoked = unchoked.iter().copied().collect();
        if round {
            s.next_choke_round = now + CHOKE_ROUND;
        }
        let members: Vec<u32> = s.channels.iter().copied().collect();
        let new = s.unchoked.clone();
        for id in members {
            let Some(ch) = self.chan_mut(id) else {
                continue;
            };
            if new.contains(&id) {
                if ch.choke.am_choking {
                    ch.choke.am_choking = false;
                    ch.choke.send_choke = Some(false);
                    self.queue_send(id);
                }
            } else if old.contains(&id) && interested.iter().any(|(_, i)| *i == id) {
                // R-3.9-b: a choked peer's pending requests are dropped.
                ch.choke.am_choking = true;
                ch.choke.send_choke = Some(true);
                ch.up.upload.clear();
                ch.up.upload_len = 0;
                self.queue_send(id);
            }
            if round {
                if let Some(ch) = self.chan_mut(id) {
                    ch.choke.round_down = 0;
                    ch.choke.round_up = 0;
                }
            }
        }
    }

    /// UNCHOKEs that no REQUEST answered are sent again, after [`super::UNCHOKE_REPEAT`] and
    /// then twice as long each time (at most [`UNCHOKE_REPEATS`] times), to peers that still
    /// lack chunks we have. An UNCHOKE is never acknowledged and a choked peer must not ask
    /// (R-3.9-c, R-3.9-d): when one is lost, the peer waits for good while we hold an upload
    /// slot for it, and a leecher can stall for good with every peer holding the rest
    /// "choking" it. Repeating it is harmless: an UNCHOKE without a
    /// CHOKE is ignored (R-12.6.9-a). (Unanswered repeats do not count towards the path-MTU
    /// fallback: most peers that do not answer simply want nothing from us.)
    pub(super) fn repeat_unchokes(&mut self, idx: usize) {
        let now = self.now;
        let Some(s) = self.swarms[idx].as_ref() else {
            return;
        };
        let ids: Vec<u32> = s.channels.iter().copied().collect();
        let mut sent = 0;
        for id in ids {
            let Some((ch, sw, _)) = self.parts(id) else {
                continue;
            };
            let Some((at, repeats)) = ch.choke.unchoke_unanswered else {
                continue;
            };
            if at > now {
                continue;
            }
            let wants = sw
                .chunk_count()
                .is_some_and(|n| !ch.peer_have.is_complete(n))
                && sw.have.difference_ranges(&ch.peer_have).next().is_some();
            if ch.choke.am_choking || !ch.is_established() || !wants || repeats >= UNCHOKE_REPEATS {
                ch.choke.unchoke_unanswered = None;
                continue;
            }
            ch.choke.send_choke = Some(false);
            let wait = UNCHOKE_REPEAT * (2u32 << repeats.min(5));
            ch.choke.unchoke_unanswered = Some((now + wait, repeats + 1));
            sent += 1;
            self.queue_send(id);
        }
        self.stats.unchoke_resends += sent;
    }
}

/// Choking in both directions on one channel, and the reciprocity counters of this round.
#[derive(Debug, Default)]
pub(crate) struct ChokeState {
    pub(crate) peer_choking: bool,
    pub(crate) am_choking: bool,
    pub(crate) send_choke: Option<bool>,
    pub(crate) choke_resent_at: Option<Instant>,
    /// An UNCHOKE we sent that no REQUEST has answered yet: when to send it again, and how
    /// many times it was sent again already (see `Endpoint::repeat_unchokes`).
    pub(crate) unchoke_unanswered: Option<(Instant, u8)>,
    /// Bytes downloaded from the peer this choke round.
    pub(crate) round_down: u64,
    /// Bytes uploaded to the peer this choke round.
    pub(crate) round_up: u64,
    /// When the peer last asked us for something.
    pub(crate) interested_at: Option<Instant>,
}

/// Writes a pending CHOKE or UNCHOKE. An UNCHOKE is never acknowledged: until a REQUEST
/// answers it, it is sent again now and then (`repeat_unchokes`); a CHOKE ends that.
pub(super) fn write(ch: &mut Channel, out: &mut Out<'_>) {
    let Some(choke) = ch.choke.send_choke else {
        return;
    };
    let m = if choke {
        Message::Choke
    } else {
        Message::Unchoke
    };
    if out.push(&m) {
        ch.choke.send_choke = None;
        ch.choke.unchoke_unanswered = match (choke, ch.choke.unchoke_unanswered) {
            (true, _) => None,
            (false, Some(u)) => Some(u),
            (false, None) => Some((out.now + UNCHOKE_REPEAT, 0)),
        };
    }
}

/// Whether channel `ch` (`id`) of swarm `sw` may have its REQUEST served: it holds an upload
/// slot, or a free one unchokes it (RFC 7574 §3.9). Otherwise it is choked and the request is
/// dropped; the CHOKE is resent at most once per round trip (R-12.6.8-a).
pub(super) fn admit(ch: &mut Channel, sw: &mut Swarm, id: u32, now: Instant) -> bool {
    // Upload slots (RFC 7574 §3.9): a free slot unchokes, otherwise the peer is choked.
    if !sw.unchoked.contains(&id) {
        if sw.unchoked.len() < sw.cfg.upload_slots {
            sw.unchoked.insert(id);
            if ch.choke.am_choking {
                ch.choke.am_choking = false;
                ch.choke.send_choke = Some(false);
            }
        } else {
            // R-12.6.8-a: requests after a CHOKE are dropped and the CHOKE resent.
            let resend = !ch.choke.am_choking
                || ch.choke.choke_resent_at.is_none_or(|t| {
                    now.saturating_duration_since(t)
                        > ch.rtt.smoothed_or(crate::time::Duration::from_millis(500))
                });
            if resend {
                ch.choke.am_choking = true;
                ch.choke.send_choke = Some(true);
                ch.choke.choke_resent_at = Some(now);
            }
            return false;
        }
    }
    true
}
