//! The network thread of `ppspp serve`: one [`AsyncDriver`] (one UDP socket, every swarm) on
//! a current-thread tokio runtime of its own, so HTTP work never delays a datagram.
//!
//! Everything else talks to it through [`Net`], a channel of commands with one-shot replies.
//! It does no disk work beyond what the engine's stores do (batched by `store::cache`):
//! hashing, opening and preparing files happens before a swarm is handed over, gateway reads
//! happen on the blocking pool, resume states are written by each download's saver thread.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use ppspp_core::hash::HashValue;
use ppspp_core::merkle::MerkleTree;
use ppspp_core::wire::ChunkAddressing;
use ppspp_core::{Event, SwarmConfig, SwarmContent, SwarmHandle};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::cli::finder::Finder;
use crate::cli::origins::Origins;
use crate::cli::saver::{Saver, Snapshot, StateHeader};
use crate::cli::tracker_client::Trackers;
use crate::link::SwarmLink;
use crate::origin::OriginUrls;
use crate::store::FileStore;
use crate::tokio_driver::AsyncDriver;

use super::book::BookEntry;
use super::content::{Content, Source};

mod api;
mod live;
mod sources;
mod status;
mod stream;

pub(crate) use api::{AddError, Cmd, Net, Prepared, PreparedSeed, Ready, WaitFor};
pub(crate) use status::SwarmStatus;

/// How often rates, reconnections, resume states and abandoned waits are looked at.
const TICK: Duration = Duration::from_secs(1);
/// How often a download's resume state is offered to its saver.
const SAVE_EVERY: Duration = Duration::from_secs(5);
/// How long a download with no channel waits before contacting its link's peers again.
const RECONNECT: Duration = Duration::from_secs(2);

struct Waiter {
    what: WaitFor,
    reply: oneshot::Sender<Ready>,
}

enum Kind {
    Seed {
        files: Vec<PathBuf>,
    },
    Download(Box<Download>),
    /// A live stream (its link with the peers to contact).
    Live(Box<crate::live_link::LiveLink>),
}

struct Download {
    link: SwarmLink,
    /// The HTTP origins of the link, if any.
    origins: Option<Origins>,
    store: FileStore,
    saver: Option<Saver>,
    saved_count: u64,
    last_save: StdInstant,
    state_path: PathBuf,
    files: Vec<PathBuf>,
}

struct Entry {
    handle: SwarmHandle,
    content: Arc<Content>,
    kind: Kind,
    /// How to bring it back on restart (`None`: it cannot be, as a live source).
    book: Option<BookEntry>,
    waiters: Vec<Waiter>,
    /// Open gateway responses and the chunk each reads next; the newest one (`lead`) sets
    /// the playback position.
    streams: BTreeMap<u64, (u64, Option<u64>)>,
    lead: Option<u64>,
    /// Content bytes of channels that closed.
    closed_in: u64,
    closed_out: u64,
    last_totals: (u64, u64),
    rates: (f64, f64),
    last_reconnect: StdInstant,
    error: Option<String>,
    /// The trackers this swarm is announced to, and the manager of the peers they return.
    finder: Finder,
    trackers: Vec<String>,
}

struct State {
    driver: AsyncDriver,
    swarms: BTreeMap<HashValue, Entry>,
    by_handle: BTreeMap<SwarmHandle, HashValue>,
    book_tx: mpsc::UnboundedSender<Vec<BookEntry>>,
    advertised: SocketAddr,
    last_tick: StdInstant,
    /// `--tracker`: announce every swarm to these.
    trackers: Vec<String>,
    /// `--tracker-key`/`--private`: the static swarms' membership policy.
    membership: Option<ppspp_core::membership::Membership>,
    /// Wakes the loop from an origin client's thread (weak: it must not keep the loop alive).
    wake: mpsc::WeakUnboundedSender<Cmd>,
    /// Swarms with origins (pumped on every turn).
    with_origins: std::collections::BTreeSet<HashValue>,
    /// The HTTP origins of live streams (a download's are in its [`Download`]).
    live_origins: BTreeMap<HashValue, Origins>,
}

/// Starts the network thread on `driver`'s socket. `book_tx` receives the list of swarms to
/// keep in the state directory whenever it changes.
pub(crate) fn start(
    bind: impl FnOnce() -> std::io::Result<AsyncDriver> + Send + 'static,
    book_tx: mpsc::UnboundedSender<Vec<BookEntry>>,
    trackers: Vec<String>,
    membership: Option<ppspp_core::membership::Membership>,
) -> std::io::Result<(Net, SocketAddr, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let wake = tx.downgrade();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("ppspp-net".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = addr_tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                let driver = match bind() {
                    Ok(d) => d,
                    Err(e) => {
                        let _ = addr_tx.send(Err(e));
                        return;
                    }
                };
                let local = driver.local_addr();
                let _ = addr_tx.send(Ok(local));
                let mut st = State {
                    driver,
                    swarms: BTreeMap::new(),
                    by_handle: BTreeMap::new(),
                    book_tx,
                    advertised: crate::cli::seed::advertised(local),
                    last_tick: StdInstant::now(),
                    trackers,
                    membership,
                    wake,
                    with_origins: std::collections::BTreeSet::new(),
                    live_origins: BTreeMap::new(),
                };
                st.run(rx).await;
            });
        })?;
    let local = addr_rx
        .recv()
        .map_err(|_| std::io::Error::other("the network thread died"))??;
    Ok((Net { tx }, local, thread))
}

impl State {
    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        loop {
            let woken = match self.driver.turn_or(TICK, rx.recv()).await {
                Ok(w) => w,
                Err(e) => {
                    eprintln!("ppspp serve: network: {e}");
                    None
                }
            };
            let mut cmds: Vec<Cmd> = Vec::new();
            match woken {
                Some(Some(c)) => cmds.push(c),
                // Every sender is gone: nobody can ask anything any more.
                Some(None) => return self.shutdown(None).await,
                None => {}
            }
            while let Ok(c) = rx.try_recv() {
                cmds.push(c);
            }
            for c in cmds {
                if let Cmd::Shutdown(reply) = c {
                    return self.shutdown(Some(reply)).await;
                }
                self.command(c);
            }
            self.pump_origins();
            while let Some(ev) = self.driver.poll_event() {
                self.event(ev);
            }
            if self.last_tick.elapsed() >= TICK {
                self.tick();
            }
        }
    }

    fn command(&mut self, c: Cmd) {
        match c {
            Cmd::AddSeed(s, reply) => {
                let _ = reply.send(self.add_seed(s));
            }
            Cmd::AddDownload(p, reply) => {
                let _ = reply.send(self.add_download(p));
            }
            Cmd::AddLive(p, reply) => {
                let _ = reply.send(self.add_live(p));
            }
            Cmd::AddLiveSource(p, reply) => {
                let _ = reply.send(self.add_live_source(p));
            }
            Cmd::PushLive(id, chunk, reply) => {
                let _ = reply.send(self.push_live(id, chunk));
            }
            Cmd::Lookup(id, reply) => {
                let _ = reply.send(self.swarms.get(&id).map(|e| e.content.clone()));
            }
            Cmd::Remove(id, reply) => {
                let _ = reply.send(self.remove(id));
            }
            Cmd::List(only, reply) => {
                let list = self
                    .swarms
                    .iter()
                    .filter(|(id, _)| only.is_none_or(|o| o == **id))
                    .map(|(_, e)| self.status(e))
                    .collect();
                let _ = reply.send(list);
            }
            Cmd::Wait {
                id,
                stream,
                what,
                reply,
            } => self.wait(id, stream, what, reply),
            Cmd::StreamEnd { id, stream } => self.stream_end(id, stream),
            Cmd::Wake => {}
            Cmd::Shutdown(_) => unreachable!("handled by the loop"),
        }
    }

    fn add_seed(&mut self, s: PreparedSeed) -> Result<Arc<Content>, AddError> {
        let id = s.tree.root_hash();
        if let Some(e) = self.swarms.get(&id) {
            return Ok(e.content.clone());
        }
        let mut scfg = SwarmConfig::seed(s.tree.clone());
        scfg.addressing(s.addressing);
        scfg.membership(self.membership.clone());
        let now = self.driver.now();
        let handle = self
            .driver
            .endpoint_mut()
            .add_swarm(now, scfg, Box::new(s.store.clone()))
            .map_err(|e| AddError::Refused(e.to_string()))?;
        let mut link = SwarmLink::new(id).map_err(|e| AddError::Refused(e.to_string()))?;
        link.chunk_size = s.tree.chunk_size();
        link.addressing = s.addressing;
        link.size = Some(s.tree.content_len());
        link.trackers.clone_from(&self.trackers);
        let finder = self.finder(&link.trackers, id, ppspp_tracker::PeerMode::Seeder)?;
        let content = Arc::new(Content {
            id,
            name: s.name,
            chunk_size: s.tree.chunk_size(),
            link,
            source: Source::File(s.store),
        });
        self.insert(
            handle,
            content.clone(),
            Kind::Seed { files: s.files },
            Some(s.book),
            finder,
        );
        Ok(content)
    }

    fn add_download(&mut self, p: Prepared) -> Result<Arc<Content>, AddError> {
        let id = p.link.swarm_id;
        if let Some(e) = self.swarms.get(&id) {
            return Ok(e.content.clone());
        }
        let mut link = p.link;
        for t in &self.trackers {
            if !link.trackers.contains(t) {
                link.trackers.push(t.clone());
            }
        }
        let origin_urls = parse_origins(&link.origins)?;
        let finder = self.finder(&link.trackers, id, ppspp_tracker::PeerMode::Leech)?;
        let mut scfg = SwarmConfig::new(link.swarm_id, link.hash, link.chunk_size, p.content);
        scfg.addressing(link.addressing);
        scfg.membership(self.membership.clone());
        let now = self.driver.now();
        let handle = self
            .driver
            .endpoint_mut()
            .add_swarm(now, scfg, Box::new(p.store.clone()))
            .map_err(|e| AddError::Refused(e.to_string()))?;
        let local = self.driver.local_addr();
        for peer in crate::cli::reachable(&link.peers, local) {
            let now = self.driver.now();
            let _ = self.driver.endpoint_mut().connect(now, handle, peer);
        }
        let origins = self.start_origins(id, handle, &origin_urls)?;
        let header = StateHeader {
            swarm_id: link.swarm_id,
            hash: link.hash,
            addressing: link.addressing,
            chunk_size: link.chunk_size,
        };
        let saver = Saver::start(p.state_path.clone(), header, p.store.clone());
        let mut shown = link.clone();
        shown.peers.clear();
        let content = Arc::new(Content {
            id,
            name: p.name.clone(),
            chunk_size: link.chunk_size,
            link: shown,
            source: Source::File(p.store.clone()),
        });
        let book = BookEntry::Download {
            link: link.to_string(),
            name: p.name,
        };
        let kind = Kind::Download(Box::new(Download {
            link,
            origins,
            store: p.store,
            saver: Some(saver),
            saved_count: 0,
            last_save: StdInstant::now(),
            state_path: p.state_path,
            files: p.files,
        }));
        self.insert(handle, content.clone(), kind, Some(book), finder);
        // A resumed download may already be whole.
        self.check_complete(id);
        Ok(content)
    }

    /// Starts the HTTP origins `urls` of swarm `handle` (key `id`); when their client cannot
    /// start, the swarm is removed again.
    fn start_origins(
        &mut self,
        id: HashValue,
        handle: SwarmHandle,
        urls: &[OriginUrls],
    ) -> Result<Option<Origins>, AddError> {
        let wake = self.wake.clone();
        let now = self.driver.now();
        let started = Origins::start(self.driver.endpoint_mut(), now, handle, urls, move || {
            if let Some(tx) = wake.upgrade() {
                let _ = tx.send(Cmd::Wake);
            }
        });
        match started {
            Ok(o) => {
                if o.is_some() {
                    self.with_origins.insert(id);
                }
                Ok(o)
            }
            Err(e) => {
                let now = self.driver.now();
                self.driver.endpoint_mut().remove_swarm(now, handle);
                Err(AddError::Refused(e))
            }
        }
    }

    fn insert(
        &mut self,
        handle: SwarmHandle,
        content: Arc<Content>,
        kind: Kind,
        book: Option<BookEntry>,
        finder: Finder,
    ) {
        let id = content.id;
        let trackers = content.link.trackers.clone();
        self.by_handle.insert(handle, id);
        self.swarms.insert(
            id,
            Entry {
                handle,
                content,
                kind,
                book,
                waiters: Vec::new(),
                streams: BTreeMap::new(),
                lead: None,
                finder,
                trackers,
                closed_in: 0,
                closed_out: 0,
                last_totals: (0, 0),
                rates: (0.0, 0.0),
                last_reconnect: StdInstant::now(),
                error: None,
            },
        );
        self.publish_book();
    }

    fn publish_book(&self) {
        let list = self
            .swarms
            .values()
            .filter_map(|e| e.book.clone())
            .collect();
        let _ = self.book_tx.send(list);
    }

    fn remove(&mut self, id: HashValue) -> Option<Vec<PathBuf>> {
        let mut e = self.swarms.remove(&id)?;
        self.by_handle.remove(&e.handle);
        self.with_origins.remove(&id);
        let live_origins = self.live_origins.remove(&id);
        let now = self.driver.now();
        self.driver.endpoint_mut().remove_swarm(now, e.handle);
        for w in e.waiters.drain(..) {
            let _ = w.reply.send(Ready::Gone);
        }
        // Tracker clients wait for their LEAVE when dropped, and an origin client owns a
        // runtime (which must not be dropped in this one): both go on a thread of their own.
        let finder = std::mem::replace(&mut e.finder, Finder::new(Trackers::default()));
        let files = match e.kind {
            Kind::Seed { files } => {
                std::thread::spawn(move || drop(finder));
                files
            }
            Kind::Live(_) => {
                std::thread::spawn(move || drop((finder, live_origins)));
                Vec::new()
            }
            Kind::Download(d) => {
                let Download {
                    saver,
                    files,
                    state_path,
                    origins,
                    ..
                } = *d;
                std::thread::spawn(move || drop((finder, origins)));
                // The saver must be idle before its file may be deleted.
                if let Some(s) = saver {
                    std::thread::spawn(move || s.finish(None));
                }
                let mut f = files;
                f.push(state_path);
                f
            }
        };
        self.publish_book();
        Some(files)
    }

    fn event(&mut self, ev: Event) {
        let swarm = match &ev {
            Event::PeerConnected { swarm, .. }
            | Event::PeerClosed { swarm, .. }
            | Event::ChunksVerified { swarm, .. }
            | Event::SizeKnown { swarm, .. }
            | Event::SwarmComplete { swarm }
            | Event::IntegrityFailure { swarm, .. }
            | Event::StoreFailure { swarm, .. }
            | Event::OriginIntegrityFailure { swarm, .. }
            | Event::OriginDisabled { swarm, .. }
            | Event::PeerDiscovered { swarm, .. } => *swarm,
            _ => return,
        };
        let Some(&id) = self.by_handle.get(&swarm) else {
            return;
        };
        let now = self.driver.now();
        match ev {
            Event::PeerConnected { remote, .. } => {
                if let Some(e) = self.swarms.get_mut(&id) {
                    e.finder.on_connected(now, remote);
                }
            }
            Event::PeerClosed {
                stats,
                remote,
                reason,
                ..
            } => {
                if let Some(e) = self.swarms.get_mut(&id) {
                    e.closed_in += stats.content_in;
                    e.closed_out += stats.content_out;
                    e.finder.on_closed(now, remote, reason);
                }
            }
            Event::OriginIntegrityFailure { .. } | Event::OriginDisabled { .. } => {
                if let Some(Entry {
                    kind: Kind::Download(d),
                    ..
                }) = self.swarms.get(&id)
                {
                    if let Some(o) = d.origins.as_ref() {
                        if let Some(line) = o.describe(&ev) {
                            eprintln!("ppspp serve: swarm {id}: {line}");
                        }
                    }
                }
            }
            Event::ChunksVerified { .. } => self.wake(id),
            Event::SizeKnown { chunks, bytes, .. } => {
                if let Some(Entry {
                    kind: Kind::Download(d),
                    ..
                }) = self.swarms.get(&id)
                {
                    // Reserve the file's length off this thread.
                    let store = d.store.clone();
                    let len = bytes.unwrap_or_else(|| chunks * u64::from(d.link.chunk_size));
                    tokio::task::spawn_blocking(move || store.preallocate(len));
                }
                if let Some(e) = self.swarms.get(&id) {
                    if bytes.is_none() && e.waiters.iter().any(|w| matches!(w.what, WaitFor::Len)) {
                        let h = e.handle;
                        super::playback::set(&mut self.driver, h, chunks.saturating_sub(1), None);
                    }
                }
                self.wake(id);
            }
            Event::SwarmComplete { .. } => self.check_complete(id),
            Event::StoreFailure { error, .. } => {
                if let Some(e) = self.swarms.get_mut(&id) {
                    let msg = match &e.kind {
                        Kind::Download(d) => d.store.failure(),
                        Kind::Seed { .. } | Kind::Live(_) => match &e.content.source {
                            Source::File(s) => s.failure(),
                            Source::Live(_) => None,
                        },
                    };
                    let msg = msg.unwrap_or_else(|| error.to_string());
                    eprintln!("ppspp serve: swarm {id}: {msg}");
                    e.error = Some(msg);
                    for w in e.waiters.drain(..) {
                        let _ = w.reply.send(Ready::Gone);
                    }
                }
            }
            Event::IntegrityFailure { remote, .. } => {
                tracing::info!(%remote, %id, "a peer sent data that failed verification");
            }
            _ => {}
        }
    }

    /// A download that completed: its file is renamed; its resume state goes.
    fn check_complete(&mut self, id: HashValue) {
        let Some(e) = self.swarms.get_mut(&id) else {
            return;
        };
        let complete = self
            .driver
            .endpoint()
            .swarm(e.handle)
            .is_some_and(|s| s.is_complete());
        if !complete {
            return;
        }
        if let Kind::Download(d) = &mut e.kind {
            if let Some(s) = d.saver.take() {
                let path = d.state_path.clone();
                // Off this thread: wait for the saver, then the state file may go (the data
                // was synced and renamed by the store's completion).
                std::thread::spawn(move || {
                    s.finish(None);
                    let _ = std::fs::remove_file(path);
                });
            }
        }
        self.wake(id);
    }

    fn tick(&mut self) {
        let dt = self.last_tick.elapsed().as_secs_f64().max(1e-3);
        self.last_tick = StdInstant::now();
        let ids: Vec<HashValue> = self.swarms.keys().copied().collect();
        for id in ids {
            let totals = self.totals(&self.swarms[&id]);
            let snapshot = self.snapshot_due(id);
            let channels = self
                .driver
                .endpoint()
                .swarm(self.swarms[&id].handle)
                .map_or(0, |s| s.peers().count());
            let local = self.driver.local_addr();
            let Some(e) = self.swarms.get_mut(&id) else {
                continue;
            };
            e.rates = (
                (totals.0 - e.last_totals.0.min(totals.0)) as f64 / dt,
                (totals.1 - e.last_totals.1.min(totals.1)) as f64 / dt,
            );
            e.last_totals = totals;
            e.waiters.retain(|w| !w.reply.is_closed());
            let handle = e.handle;
            let progress = ppspp_tracker::Progress {
                uploaded: totals.1,
                downloaded: totals.0,
                links: channels as u64,
                complete: match &e.kind {
                    Kind::Seed { .. } | Kind::Live(_) => true,
                    Kind::Download(d) => d.saver.is_none(),
                },
            };
            if progress.complete {
                let now = self.driver.now();
                e.finder.certify(self.driver.endpoint_mut(), now, handle);
                e.finder.report(progress);
            } else {
                let now = self.driver.now();
                e.finder
                    .step(self.driver.endpoint_mut(), now, handle, local, progress);
            }
            if let Kind::Download(d) = &mut e.kind {
                if let (Some(snap), Some(saver)) = (snapshot, d.saver.as_ref()) {
                    d.saved_count = snap.count;
                    d.last_save = StdInstant::now();
                    saver.offer(snap);
                }
                let complete = d.saver.is_none();
                if channels == 0 && !complete && e.last_reconnect.elapsed() >= RECONNECT {
                    e.last_reconnect = StdInstant::now();
                    for peer in crate::cli::reachable(&d.link.peers, local) {
                        let now = self.driver.now();
                        let _ = self.driver.endpoint_mut().connect(now, handle, peer);
                    }
                }
            }
            // A live stream never completes: with no channel left, its link's peers are
            // asked again (the source may have restarted).
            if let Kind::Live(l) = &e.kind {
                if channels == 0 && e.last_reconnect.elapsed() >= RECONNECT {
                    e.last_reconnect = StdInstant::now();
                    for peer in crate::cli::reachable(&l.peers, local) {
                        let now = self.driver.now();
                        let _ = self.driver.endpoint_mut().connect(now, handle, peer);
                    }
                }
            }
        }
    }

    /// A resume snapshot of download `id` if one is due and something changed.
    fn snapshot_due(&self, id: HashValue) -> Option<Snapshot> {
        let e = &self.swarms[&id];
        let Kind::Download(d) = &e.kind else {
            return None;
        };
        if d.saver.is_none() || d.last_save.elapsed() < SAVE_EVERY {
            return None;
        }
        self.snapshot(e, d.saved_count)
    }

    fn snapshot(&self, e: &Entry, saved_count: u64) -> Option<Snapshot> {
        let s = self.driver.endpoint().swarm(e.handle)?;
        let count = s.verified().count();
        if count == 0 || count == saved_count || s.is_complete() {
            return None;
        }
        Some(Snapshot {
            size: self.len_of(e),
            verified: s.verified().ranges().collect(),
            hashes: s.verified_hashes(),
            count,
        })
    }

    async fn shutdown(&mut self, reply: Option<oneshot::Sender<()>>) {
        let mut finishing = Vec::new();
        let ids: Vec<HashValue> = self.swarms.keys().copied().collect();
        for id in ids {
            let snap = {
                let e = &self.swarms[&id];
                match &e.kind {
                    Kind::Download(d) => self.snapshot(e, d.saved_count),
                    Kind::Seed { .. } | Kind::Live(_) => None,
                }
            };
            if let Some(e) = self.swarms.get_mut(&id) {
                for w in e.waiters.drain(..) {
                    let _ = w.reply.send(Ready::Gone);
                }
                if let Kind::Download(d) = &mut e.kind {
                    if let Some(s) = d.saver.take() {
                        finishing.push(tokio::task::spawn_blocking(move || s.finish(snap)));
                    }
                }
            }
        }
        for f in finishing {
            if let Ok(st) = f.await {
                if let Some(e) = st.error {
                    eprintln!("ppspp serve: could not save a resume state: {e}");
                }
            }
        }
        self.publish_book();
        let _ = self.driver.shutdown().await;
        // Off this runtime: trackers' LEAVEs are waited for, origin clients own runtimes.
        let swarms = std::mem::take(&mut self.swarms);
        let live_origins = std::mem::take(&mut self.live_origins);
        let _ = tokio::task::spawn_blocking(move || drop((swarms, live_origins))).await;
        if let Some(r) = reply {
            let _ = r.send(());
        }
    }
}

/// A link's origin URLs, checked, without repeats.
fn parse_origins(urls: &[String]) -> Result<Vec<OriginUrls>, AddError> {
    let mut out: Vec<OriginUrls> = Vec::new();
    for u in urls {
        let o = OriginUrls::parse(u).map_err(AddError::Refused)?;
        if !out.iter().any(|x| x.content == o.content) {
            out.push(o);
        }
    }
    Ok(out)
}
