//! Live streams through the engine (RFC 7574 §6): an injector, peers that tune in and relay.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::config::SwarmConfig;
use crate::event::SwarmHandle;
use crate::hash::HashAlgorithm;
use crate::live::{KeyPair, LiveParams, MunroLogHeader, SignedForm, verifier};
use crate::store::MemoryStore;
use crate::testing::{CheckingStore, Content, Mesh, PatternContent, TestOrigin};
use crate::time::Duration;
use crate::wire::{ChunkAddressing, SignatureAlgorithm};

const CS: u32 = 1024;

fn params(form: SignedForm) -> LiveParams {
    LiveParams {
        chunk_size: CS,
        nchunks_per_sig: 32,
        addressing: ChunkAddressing::ChunkRange32,
        hash: HashAlgorithm::Sha1,
        form,
    }
}

/// The stream: recognisable bytes, room for 8,192 chunks.
const STREAM: PatternContent = PatternContent {
    chunk_size: CS,
    chunks: 8192,
    byte: |i, j| (i.wrapping_mul(31) ^ j.wrapping_mul(7)) as u8,
};

/// Stream chunk `i`.
fn chunk(i: u64) -> Vec<u8> {
    STREAM.chunk(i)
}

/// A store for a peer of the stream, checking every write against it.
fn recorder() -> CheckingStore {
    CheckingStore::new(STREAM)
}

struct Live {
    mesh: Mesh,
    key: KeyPair,
    src: (usize, SwarmHandle),
    pushed: u64,
    /// Whether peers exchange addresses (PEX).
    pex: bool,
}

impl Live {
    fn new(seed: u64, form: SignedForm) -> Self {
        let mut mesh = Mesh::new(seed);
        let key =
            KeyPair::from_seed(SignatureAlgorithm::ECDSAP256SHA256, &[seed as u8; 32]).unwrap();
        let s = mesh.add_node();
        let cfg = SwarmConfig::live_source(params(form), Arc::new(key.clone()));
        let h = mesh.nodes[s]
            .ep
            .add_swarm(mesh.now, cfg, Box::new(MemoryStore::new(CS)))
            .unwrap();
        Self {
            mesh,
            key,
            src: (s, h),
            pushed: 0,
            pex: true,
        }
    }

    fn peer(&mut self, form: SignedForm) -> (usize, SwarmHandle, CheckingStore) {
        let n = self.mesh.add_node();
        let rec = recorder();
        let v = verifier(&self.key.swarm_id()).unwrap();
        let mut cfg = SwarmConfig::live(self.key.swarm_id(), params(form), v);
        cfg.pex(self.pex);
        let h = self.mesh.nodes[n]
            .ep
            .add_swarm(self.mesh.now, cfg, Box::new(rec.clone()))
            .unwrap();
        (n, h, rec)
    }

    fn connect(&mut self, from: (usize, SwarmHandle), to: usize) {
        let a = self.mesh.nodes[to].addr;
        let now = self.mesh.now;
        self.mesh.nodes[from.0].ep.connect(now, from.1, a).unwrap();
    }

    /// Pushes `n` chunks at the injector, one every `gap`, running the network meanwhile.
    fn stream(&mut self, n: u64, gap: Duration) {
        for _ in 0..n {
            let data = chunk(self.pushed);
            let (s, h) = self.src;
            let now = self.mesh.now;
            self.mesh.nodes[s]
                .ep
                .push_live_chunk(now, h, &data)
                .unwrap();
            self.pushed += 1;
            self.mesh.run_until(gap, |_| false);
        }
    }
}

/// Every chunk a peer stored is the injector's, and it holds every chunk from its tune-in
/// point up to `end`.
fn check(rec: &CheckingStore, from: u64, end: u64) {
    assert_eq!(
        rec.refused(),
        0,
        "chunks differing from the injector's were written"
    );
    for i in rec.held() {
        assert_eq!(
            rec.chunk(i).unwrap(),
            chunk(i),
            "chunk {i} differs from the injector's"
        );
    }
    let missing: Vec<u64> = (from..end).filter(|&i| !rec.holds(i)).collect();
    assert!(
        missing.is_empty(),
        "missing {} chunks: {missing:?}",
        missing.len()
    );
}

/// An injector and two peers, the second reaching the stream only through the first (which
/// must check each munro's signature and pass it on, §6.1.2.1): both get every chunk, in
/// order from where they tuned in, and only after the munro covering it was signed.
#[test]
fn live_stream_reaches_a_peer_through_a_relay() {
    let mut live = Live::new(1, SignedForm::Rfc7574);
    let a = live.peer(SignedForm::Rfc7574);
    let b = live.peer(SignedForm::Rfc7574);
    let src = live.src.0;
    live.connect((a.0, a.1), src);
    live.connect((b.0, b.1), a.0);
    live.mesh.run_until(Duration::from_millis(200), |_| false);
    // 10 munros, a chunk every 5 ms (200 KB/s).
    live.stream(320, Duration::from_millis(5));
    live.mesh.run_until(Duration::from_secs(5), |_| false);
    for (n, h, rec) in [&a, &b] {
        let s = live.mesh.nodes[*n].ep.swarm(*h).unwrap();
        assert_eq!(s.live_tune_in(), Some(0), "node {n}");
        assert_eq!(s.live_end(), Some(320));
        assert!(!s.is_complete());
        check(rec, 0, 320);
    }
    // The relay served B: B never talked to the injector.
    let bs = live.mesh.nodes[b.0].ep.stats();
    assert!(bs.chunks_verified >= 320);
    assert_eq!(live.mesh.nodes[src].ep.stats().integrity_failures, 0);
}

/// A stream that pauses longer than a request timeout: the requests after each pause are
/// answered in a round trip, not given up as stalled the moment they leave (the wait counted
/// from the last delivery, before the pause, and a quarter of a live swarm's chunks were
/// re-requested).
#[test]
fn requests_after_a_pause_are_not_stalled() {
    let mut live = Live::new(7, SignedForm::Rfc7574);
    let a = live.peer(SignedForm::Rfc7574);
    let src = live.src.0;
    live.connect((a.0, a.1), src);
    live.mesh.run_until(Duration::from_millis(200), |_| false);
    for _ in 0..4 {
        // One munro, then a pause of 2 s (request timeouts are at least 400 ms).
        live.stream(32, Duration::from_millis(2));
        live.mesh.run_until(Duration::from_secs(2), |_| false);
    }
    let s = live.mesh.nodes[a.0].ep.swarm(a.1).unwrap();
    assert_eq!(s.live_end(), Some(128));
    check(&a.2, s.live_tune_in().unwrap(), 128);
    let st = live.mesh.nodes[a.0].ep.stats();
    assert_eq!(st.rerequests_stalled, 0, "{st:?}");
}

/// A peer that joins late tunes in at the newest signed munro (§6.1.2.4) instead of
/// downloading the stream from its start.
#[test]
fn late_peer_tunes_in_at_the_newest_munro() {
    let mut live = Live::new(2, SignedForm::Rfc7574);
    let src = live.src.0;
    live.stream(200, Duration::from_millis(1));
    let c = live.peer(SignedForm::Rfc7574);
    live.connect((c.0, c.1), src);
    live.stream(96, Duration::from_millis(5));
    live.mesh.run_until(Duration::from_secs(5), |_| false);
    let s = live.mesh.nodes[c.0].ep.swarm(c.1).unwrap();
    // 192 chunks were signed (6 munros) when it joined: it starts at the sixth munro.
    let tune_in = s.live_tune_in().expect("tuned in");
    assert_eq!(tune_in % 32, 0);
    assert!(tune_in >= 160, "tuned in at {tune_in}");
    assert_eq!(s.live_end(), Some(288));
    check(&c.2, tune_in, 288);
    assert!(
        c.2.held().iter().all(|&k| k >= tune_in),
        "nothing before the tune-in point is fetched"
    );
}

/// Loss and reordering on the way: chunks whose munro or uncles were lost wait for them and
/// are verified when they come again; nothing unverified is stored.
#[test]
fn live_stream_survives_loss() {
    let mut live = Live::new(3, SignedForm::Libswift);
    live.mesh.link.loss = 0.05;
    live.mesh.link.jitter = Duration::from_millis(5);
    let a = live.peer(SignedForm::Libswift);
    let src = live.src.0;
    live.connect((a.0, a.1), src);
    live.mesh.run_until(Duration::from_millis(300), |_| false);
    live.stream(256, Duration::from_millis(4));
    live.mesh.run_until(Duration::from_secs(20), |_| false);
    let s = live.mesh.nodes[a.0].ep.swarm(a.1).unwrap();
    assert_eq!(s.live_end(), Some(256));
    check(&a.2, s.live_tune_in().unwrap(), 256);
}

/// A peer posing as the injector with another key: its munros fail the signature check,
/// the channel closes, and nothing it sent is stored.
#[test]
fn munros_signed_by_another_key_are_refused() {
    let mut live = Live::new(4, SignedForm::Rfc7574);
    // The impostor injects under its own key but into the genuine swarm's ID.
    let impostor = KeyPair::from_seed(SignatureAlgorithm::ECDSAP256SHA256, &[99; 32]).unwrap();
    let i = live.mesh.add_node();
    let mut cfg = SwarmConfig::live_source(params(SignedForm::Rfc7574), Arc::new(impostor));
    // Same swarm ID as the genuine stream, so handshakes match.
    if let Some(l) = &mut cfg.live {
        l.id = live.key.swarm_id();
    }
    let ih = live.mesh.nodes[i]
        .ep
        .add_swarm(live.mesh.now, cfg, Box::new(MemoryStore::new(CS)))
        .unwrap();
    let a = live.peer(SignedForm::Rfc7574);
    live.connect((a.0, a.1), i);
    live.mesh.run_until(Duration::from_millis(200), |_| false);
    for k in 0..64 {
        let now = live.mesh.now;
        live.mesh.nodes[i]
            .ep
            .push_live_chunk(now, ih, &chunk(k))
            .unwrap();
        live.mesh.run_until(Duration::from_millis(2), |_| false);
    }
    live.mesh.run_until(Duration::from_secs(3), |_| false);
    let st = live.mesh.nodes[a.0].ep.stats();
    assert!(st.integrity_failures > 0);
    assert!(a.2.held().is_empty());
    let s = live.mesh.nodes[a.0].ep.swarm(a.1).unwrap();
    assert_eq!(s.live_tune_in(), None);
    assert_eq!(s.live_end(), Some(0));
}

/// The discard window bounds what an endless stream leaves behind (RFC 7574 §6.2): after
/// 4,096 chunks with a 256-chunk window, the injector and the peer each hold no more than
/// the window (plus the munro being filled), and the peer still has every chunk of it.
#[test]
fn the_discard_window_bounds_what_is_kept() {
    let mut live = Live::new(5, SignedForm::Rfc7574);
    let (s, sh) = live.src;
    let a = live.peer(SignedForm::Rfc7574);
    let now = live.mesh.now;
    // Smaller windows than the default, on both sides (set before any chunk: the swarms are
    // re-added with them).
    for (node, h) in [(s, sh), (a.0, a.1)] {
        live.mesh.nodes[node].ep.remove_swarm(now, h);
    }
    let key = live.key.clone();
    let mut cfg = SwarmConfig::live_source(params(SignedForm::Rfc7574), Arc::new(key.clone()));
    cfg.live_discard_window(Some(256));
    live.src.1 = live.mesh.nodes[s]
        .ep
        .add_swarm(now, cfg, Box::new(MemoryStore::new(CS)))
        .unwrap();
    let mut cfg = SwarmConfig::live(
        key.swarm_id(),
        params(SignedForm::Rfc7574),
        verifier(&key.swarm_id()).unwrap(),
    );
    cfg.live_discard_window(Some(256));
    let rec = recorder();
    let ah = live.mesh.nodes[a.0]
        .ep
        .add_swarm(now, cfg, Box::new(rec.clone()))
        .unwrap();
    live.connect((a.0, ah), s);
    live.mesh.run_until(Duration::from_millis(200), |_| false);
    live.stream(4096, Duration::from_millis(2));
    live.mesh.run_until(Duration::from_secs(3), |_| false);
    let src = live.mesh.nodes[s].ep.swarm(live.src.1).unwrap();
    assert!(
        src.verified().count() <= 256 + 32,
        "{}",
        src.verified().count()
    );
    let peer = live.mesh.nodes[a.0].ep.swarm(ah).unwrap();
    assert_eq!(peer.live_end(), Some(4096));
    let held = peer.verified().count();
    assert!(
        (224..=256 + 32).contains(&held),
        "the peer holds {held} chunks"
    );
    check(&rec, 4096 - 224, 4096);
}

/// A peer we choke cannot ask (no REQUEST while choked, R-3.9-c), so its interest soon looks
/// stale: the injector has one upload slot, A holds it for the whole 40 s stream and B is
/// choked. When A has everything and stops asking, B — which still lacks chunks the injector
/// has — must get the slot. (Before, a choked peer whose last REQUEST was older than two
/// choke rounds was never considered again: live stragglers stayed choked by everyone.)
#[test]
fn a_choked_peer_gets_the_slot_once_it_is_free() {
    let mut live = Live::new(6, SignedForm::Rfc7574);
    let (s, old) = live.src;
    let now = live.mesh.now;
    live.mesh.nodes[s].ep.remove_swarm(now, old);
    let mut cfg = SwarmConfig::live_source(params(SignedForm::Rfc7574), Arc::new(live.key.clone()));
    cfg.upload_slots(1).pex(false);
    live.src.1 = live.mesh.nodes[s]
        .ep
        .add_swarm(now, cfg, Box::new(MemoryStore::new(CS)))
        .unwrap();
    // A and B only know the injector.
    live.pex = false;
    let a = live.peer(SignedForm::Rfc7574);
    live.connect((a.0, a.1), s);
    live.mesh.run_until(Duration::from_millis(300), |_| false);
    live.stream(64, Duration::from_millis(10));
    let b = live.peer(SignedForm::Rfc7574);
    live.connect((b.0, b.1), s);
    // 40 s of stream: far longer than two choke rounds.
    live.stream(4000, Duration::from_millis(10));
    live.mesh.run_until(Duration::from_secs(60), |_| false);
    let chokes = live.mesh.nodes[b.0].ep.stats().messages_in;
    assert!(
        chokes.get(crate::wire::MessageType::Choke) > 0,
        "B was never choked"
    );
    let end = 64 + 4000;
    for (n, h, rec) in [&a, &b] {
        let sw = live.mesh.nodes[*n].ep.swarm(*h).unwrap();
        let t = sw.live_tune_in().expect("tuned in");
        check(rec, t, end);
    }
}

/// The end of a stream: 40 chunks are one full munro and 8 more; `finish_live` signs the
/// short last munro (empty leaves for the missing chunks) and the peer gets the tail too.
#[test]
fn finishing_a_stream_announces_its_tail() {
    let mut live = Live::new(7, SignedForm::Rfc7574);
    let a = live.peer(SignedForm::Rfc7574);
    let src = live.src.0;
    live.connect((a.0, a.1), src);
    live.mesh.run_until(Duration::from_millis(200), |_| false);
    live.stream(40, Duration::from_millis(5));
    live.mesh.run_until(Duration::from_secs(2), |_| false);
    // Before the end: the last 8 chunks are not announced.
    assert!(
        !live.mesh.nodes[a.0]
            .ep
            .swarm(a.1)
            .unwrap()
            .verified()
            .contains(33)
    );
    let (s, h) = live.src;
    let now = live.mesh.now;
    let m = live.mesh.nodes[s].ep.finish_live(now, h).unwrap().unwrap();
    assert_eq!(
        (m.bin.first_chunk(), m.bin.last_chunk()),
        (Some(32), Some(63))
    );
    assert_eq!(live.mesh.nodes[s].ep.finish_live(now, h), Ok(None));
    assert!(
        live.mesh.nodes[s]
            .ep
            .push_live_chunk(now, h, &chunk(40))
            .is_err()
    );
    live.mesh.run_until(Duration::from_secs(2), |_| false);
    check(&a.2, 0, 40);
}

/// A peer whose discard window is smaller than how far behind the live edge it joins keeps
/// up: it skips to the window and follows the edge instead of stalling on chunks it forgot.
#[test]
fn a_small_window_follows_the_live_edge() {
    let mut live = Live::new(8, SignedForm::Rfc7574);
    let src = live.src.0;
    live.stream(400, Duration::from_micros(3300));
    let n = live.mesh.add_node();
    let rec = recorder();
    let v = verifier(&live.key.swarm_id()).unwrap();
    let mut cfg = SwarmConfig::live(live.key.swarm_id(), params(SignedForm::Rfc7574), v);
    cfg.live_discard_window(Some(128));
    let now = live.mesh.now;
    let h = live.mesh.nodes[n]
        .ep
        .add_swarm(now, cfg, Box::new(rec.clone()))
        .unwrap();
    live.connect((n, h), src);
    live.stream(2000, Duration::from_micros(3300));
    live.mesh.run_until(Duration::from_secs(3), |_| false);
    let s = live.mesh.nodes[n].ep.swarm(h).unwrap();
    assert_eq!(s.live_end(), Some(2400));
    // The last window's worth is all there.
    let got: Vec<u64> = (2400 - 64..2400)
        .filter(|&c| s.verified().contains(c))
        .collect();
    assert_eq!(got.len(), 64, "holds {} of the last 64 chunks", got.len());
    check(&rec, 2400 - 64, 2400);
}

// ---- a live stream's HTTP origin (hybrid delivery) ---------------------------------------

impl Live {
    /// Pushes the stream's next chunk at the injector; the munro it completed, if any.
    fn push(&mut self) -> Option<crate::live::SignedMunro> {
        let (s, h) = self.src;
        let now = self.mesh.now;
        let data = chunk(self.pushed);
        self.pushed += 1;
        self.mesh.nodes[s]
            .ep
            .push_live_chunk(now, h, &data)
            .unwrap()
    }

    /// Like [`Live::stream`], publishing every signed munro to origin model `server` as an
    /// injector writing to a file server would (`ppspp live --publish`).
    fn stream_to_origin(&mut self, n: u64, gap: Duration, server: usize) {
        for _ in 0..n {
            if let Some(m) = self.push() {
                publish(&mut self.mesh.origins[server], &m, |_| {});
            }
            self.mesh.run_until(gap, |_| false);
        }
    }
}

/// Publishes signed munro `m` of the test stream to `o`; `tamper` may change its record.
fn publish(o: &mut TestOrigin, m: &crate::live::SignedMunro, tamper: impl FnOnce(&mut Vec<u8>)) {
    let p = params(SignedForm::Rfc7574);
    let (first, last) = (m.bin.first_chunk().unwrap(), m.bin.last_chunk().unwrap());
    let mut header = MunroLogHeader::new(&p, 64);
    header.count = first / p.nchunks_per_sig + 1;
    let leaves: Vec<_> = (first..=last).map(|c| p.hash.digest(&chunk(c))).collect();
    let mut record = header.encode_record(m, &leaves);
    tamper(&mut record);
    let data: Vec<u8> = (first..=last).flat_map(chunk).collect();
    o.publish(&header, &data, &record);
}

/// A viewer with no peer follows a live stream from its origin alone: it tunes in at the
/// newest munro the log shows, checks each record's signature and leaves, and gets every
/// chunk from there on, each verified, each fetched once.
#[test]
fn a_live_viewer_with_only_an_origin_follows_the_stream() {
    let mut live = Live::new(11, SignedForm::Rfc7574);
    let mut o = TestOrigin::live(CS);
    o.latency = Duration::from_millis(10);
    let server = live.mesh.add_origin_server(o);
    let (n, h, rec) = live.peer(SignedForm::Rfc7574);
    let oh = live.mesh.add_origin(n, h, server);
    live.stream_to_origin(640, Duration::from_millis(2), server);
    live.mesh.run_until(Duration::from_secs(2), |_| false);
    let s = live.mesh.nodes[n].ep.swarm(h).unwrap();
    let tune_in = s.live_tune_in().expect("tuned in from the log");
    assert_eq!(tune_in % 32, 0);
    assert!(tune_in < 320, "tuned in at {tune_in}");
    assert_eq!(s.live_end(), Some(640));
    check(&rec, tune_in, 640);
    let os = live.mesh.nodes[n].ep.origin_stats(oh).unwrap();
    assert_eq!(os.content_in, (640 - tune_in) * u64::from(CS));
    assert_eq!(os.duplicate_bytes, 0);
    assert_eq!(live.mesh.origins[server].content_served, os.content_in);
    assert_eq!(s.peer_efficiency(), Some(0.0));
}

/// Beside the injector, a viewer takes the stream from it and the origin only for what the
/// injector has not delivered within LIVE_GRACE; when the link to the injector breaks, the
/// origin carries the stream on.
#[test]
fn a_live_viewer_uses_its_origin_only_for_what_peers_leave_late() {
    let mut live = Live::new(12, SignedForm::Rfc7574);
    let mut o = TestOrigin::live(CS);
    o.latency = Duration::from_millis(10);
    let server = live.mesh.add_origin_server(o);
    let (n, h, rec) = live.peer(SignedForm::Rfc7574);
    let src = live.src.0;
    live.connect((n, h), src);
    let oh = live.mesh.add_origin(n, h, server);
    live.mesh.run_until(Duration::from_millis(200), |_| false);
    live.stream_to_origin(640, Duration::from_millis(2), server);
    live.mesh.run_until(Duration::from_secs(3), |_| false);
    let from_origin = live.mesh.nodes[n].ep.origin_stats(oh).unwrap().content_in;
    let s = live.mesh.nodes[n].ep.swarm(h).unwrap();
    let tune_in = s.live_tune_in().unwrap();
    check(&rec, tune_in, 640);
    assert_eq!(from_origin, 0, "the injector delivered everything in time");
    // The injector becomes unreachable: the origin carries the stream on, within the grace.
    let dead = crate::testing::LinkConfig {
        loss: 1.0,
        ..live.mesh.link
    };
    live.mesh.set_link(src, n, dead).set_link(n, src, dead);
    live.stream_to_origin(640, Duration::from_millis(2), server);
    live.mesh
        .run_until(crate::LIVE_GRACE + Duration::from_secs(1), |_| false);
    check(&rec, tune_in, 1280);
    let from_origin = live.mesh.nodes[n].ep.origin_stats(oh).unwrap().content_in;
    assert!(
        from_origin >= 600 * u64::from(CS),
        "{from_origin} bytes from the origin"
    );
}

/// A chunk that does not match its leaf hash, and a log record whose signature does not
/// verify, are offences of the origin: counted, reported, never stored; after
/// [`crate::MAX_LIES`] of them the origin is disabled.
#[test]
fn a_live_origin_that_lies_is_caught() {
    let mut live = Live::new(13, SignedForm::Rfc7574);
    // One origin corrupts chunk 40; another serves munro 2's record with a forged signature
    // (a byte of it flipped).
    let mut o = TestOrigin::live(CS);
    o.corrupt.insert(40);
    let corrupting = live.mesh.add_origin_server(o);
    let forging = live.mesh.add_origin_server(TestOrigin::live(CS));
    let a = live.peer(SignedForm::Rfc7574);
    let b = live.peer(SignedForm::Rfc7574);
    for i in 0..256u64 {
        if let Some(m) = live.push() {
            publish(&mut live.mesh.origins[corrupting], &m, |_| {});
            let forged = m.bin.first_chunk() == Some(64);
            publish(&mut live.mesh.origins[forging], &m, |r| {
                if forged {
                    r[8 + 20 + 7] ^= 1;
                }
            });
        }
        if i == 31 {
            // The viewers arrive after the first munro: they tune in there.
            live.mesh.add_origin(a.0, a.1, corrupting);
            live.mesh.add_origin(b.0, b.1, forging);
        }
        live.mesh.run_until(Duration::from_millis(2), |_| false);
    }
    live.mesh.run_until(Duration::from_secs(3), |_| false);
    let lies = |node: usize| -> Vec<Option<u64>> {
        live.mesh.nodes[node]
            .events
            .iter()
            .filter_map(|e| match e {
                crate::Event::OriginIntegrityFailure { chunk, .. } => Some(*chunk),
                _ => None,
            })
            .collect()
    };
    for (node, h, rec) in [&a, &b] {
        let s = live.mesh.nodes[*node].ep.swarm(*h).unwrap();
        assert_eq!(s.live_tune_in(), Some(0));
        assert_eq!(rec.refused(), 0);
    }
    assert_eq!(
        lies(a.0),
        [Some(40); 3],
        "the corrupt chunk, each time it came"
    );
    assert!(!a.2.holds(40));
    check(&a.2, 0, 40);
    assert_eq!(lies(b.0), [None; 3], "the forged record, each time it came");
    check(&b.2, 0, 64);
    assert!(
        (64..96).all(|c| !b.2.holds(c)),
        "nothing under the forged signature is stored"
    );
    for node in [a.0, b.0] {
        let disabled = live.mesh.nodes[node]
            .events
            .iter()
            .any(|e| matches!(e, crate::Event::OriginDisabled { .. }));
        assert!(disabled, "a third offence disables the origin");
    }
}

/// A log header claiming an absurd number of munros is the origin's word only: the viewer
/// believes at most a few dozen munros past what it verified, and with peers beside it the
/// stream goes on; nothing hangs on walking 2^60 munros.
#[test]
fn a_live_origin_claiming_a_huge_edge_is_not_believed() {
    let mut live = Live::new(14, SignedForm::Rfc7574);
    let server = live.mesh.add_origin_server(TestOrigin::live(CS));
    let (n, h, rec) = live.peer(SignedForm::Rfc7574);
    let src = live.src.0;
    live.connect((n, h), src);
    let oh = live.mesh.add_origin(n, h, server);
    live.mesh.run_until(Duration::from_millis(200), |_| false);
    let p = params(SignedForm::Rfc7574);
    for _ in 0..320 {
        if let Some(m) = live.push() {
            // Each record is published honestly, but the header claims 2^60 munros.
            let first = m.bin.first_chunk().unwrap();
            let mut header = MunroLogHeader::new(&p, 64);
            header.count = first / p.nchunks_per_sig + 1;
            let leaves: Vec<_> = (first..first + 32)
                .map(|c| p.hash.digest(&chunk(c)))
                .collect();
            let record = header.encode_record(&m, &leaves);
            let data: Vec<u8> = (first..first + 32).flat_map(chunk).collect();
            header.count = 1 << 60;
            live.mesh.origins[server].publish(&header, &data, &record);
        }
        live.mesh.run_until(Duration::from_millis(2), |_| false);
    }
    live.mesh.run_until(Duration::from_secs(4), |_| false);
    let s = live.mesh.nodes[n].ep.swarm(h).unwrap();
    let tune_in = s.live_tune_in().unwrap();
    check(&rec, tune_in, 320);
    let os = live.mesh.nodes[n].ep.origin_stats(oh).unwrap();
    assert!(!os.disabled);
}

/// A munro log of another shape (here another chunk size) is nothing to verify against: the
/// origin is disabled at once and the viewer goes on with its peers; a log that is not one at
/// all (wrong magic) is an offence. Nothing panics on either.
#[test]
fn a_live_origin_with_a_foreign_log_is_disabled() {
    let mut live = Live::new(15, SignedForm::Rfc7574);
    let foreign = live.mesh.add_origin_server(TestOrigin::live(CS));
    let garbage = live.mesh.add_origin_server(TestOrigin::live(CS));
    let (n, h, rec) = live.peer(SignedForm::Rfc7574);
    let src = live.src.0;
    live.connect((n, h), src);
    let a = live.mesh.add_origin(n, h, foreign);
    let b = live.mesh.add_origin(n, h, garbage);
    let mut other = params(SignedForm::Rfc7574);
    other.chunk_size = 2 * CS;
    let mut header = MunroLogHeader::new(&other, 64);
    header.count = 1;
    let record = alloc::vec![0u8; header.record_len() as usize];
    live.mesh.origins[foreign].publish(&header, &[], &record);
    let mut junk = header;
    junk.chunk_size = CS;
    let mut bytes = junk.encode();
    bytes[..8].copy_from_slice(b"NOTALOG!");
    let m = MunroLogHeader::new(&params(SignedForm::Rfc7574), 64);
    live.mesh.origins[garbage].publish(&m, &[], &[]);
    // Overwrite the garbage origin's header with bytes that are no munro log.
    live.mesh.origins[garbage].publish_raw_header(&bytes);
    live.stream(128, Duration::from_millis(2));
    live.mesh.run_until(Duration::from_secs(3), |_| false);
    let ep = &live.mesh.nodes[n].ep;
    assert!(
        ep.origin_stats(a).unwrap().disabled,
        "a log of another shape"
    );
    let bs = ep.origin_stats(b).unwrap();
    assert!(bs.integrity_failures >= 1, "not a log: {bs:?}");
    let s = ep.swarm(h).unwrap();
    check(&rec, s.live_tune_in().unwrap(), 128);
    assert_eq!(s.content_from_origins(), 0);
}
