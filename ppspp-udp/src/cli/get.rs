//! `ppspp get SWARM --peer ADDR -o OUT`: download a swarm's content, verifying every chunk.
//!
//! `SWARM` is a hex swarm ID (the hash function is inferred from its length) or a swarm link
//! printed by `ppspp seed` (its `peer=` entries join the `--peer` list).
//!
//! Data goes to `OUT.ppspp-part`; the verified chunks and the hashes that verified them are
//! saved every few seconds (and on Ctrl-C or failure) to `OUT.ppspp-state`, so running the
//! same command again resumes the download. On completion the data is synced and renamed to
//! `OUT`, and only then the state file is removed. Exit codes: 0 complete, 1 failure or
//! timeout (one line on stderr says why), 2 bad arguments, 130 interrupted.
//!
//! The final summary is one line on stdout:
//! `complete OUT: N bytes (D downloaded, R resumed) in S s, X MB/s, from P peer(s): ADDR…`.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppspp_core::hash::HashValue;
use ppspp_core::{Bin, CloseReason, ConnectError, Event, SwarmConfig, SwarmContent, SwarmHandle};

use crate::cli::interrupt;
use crate::cli::progress::{Progress, human_bytes, mb_per_s};
use crate::driver::{Driver, DriverConfig};
use crate::link::SwarmLink;
use crate::store::seed_cache;
use crate::store::{DownloadState, FileStore, PART_SUFFIX, STATE_SUFFIX, with_suffix};

/// Arguments of `ppspp get`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The swarm: a hex swarm ID (20 bytes: SHA-1, 28: SHA-224, 32: SHA-256, 48: SHA-384,
    /// 64: SHA-512) or a `ppspp://` link from `ppspp seed`.
    pub swarm: String,
    /// A peer to download from (repeatable), e.g. `127.0.0.1:6778` or `[::1]:6778`.
    #[arg(long = "peer", short = 'p')]
    pub peers: Vec<SocketAddr>,
    /// Where to write the content.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// The chunk size in bytes (default 1024, or the link's).
    #[arg(long)]
    pub chunk_size: Option<u32>,
    /// The local UDP address (default: any address, a free port).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Give up when no peer answers, or nothing arrives, for this many seconds.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
    /// No progress output (errors and the summary still print).
    #[arg(long, short)]
    pub quiet: bool,
    /// Keep serving the content after the download completes, until interrupted.
    #[arg(long)]
    pub seed_after: bool,
    /// How often to save the resume state, in milliseconds.
    #[arg(long, default_value_t = 2000, hide = true)]
    pub state_interval_ms: u64,
}

/// A failure with its exit code.
struct Failure {
    code: u8,
    message: String,
}

fn fail(message: impl Into<String>) -> Failure {
    Failure {
        code: 1,
        message: message.into(),
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

/// Runs `ppspp get`; returns the exit code.
pub fn run(args: &Args) -> u8 {
    // Past a file size limit (RLIMIT_FSIZE), writes fail with EFBIG, reported like any
    // other write error, instead of SIGXFSZ killing the program without a word.
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    match download(args) {
        Ok(()) => 0,
        Err(f) => {
            eprintln!("ppspp get: {}", f.message);
            f.code
        }
    }
}

/// The peers to contact, as addresses the socket bound to `listen` can reach.
fn reachable(peers: &[SocketAddr], listen: SocketAddr) -> Vec<SocketAddr> {
    peers
        .iter()
        .map(|p| match (listen, p.ip()) {
            (SocketAddr::V6(_), IpAddr::V4(a)) => {
                SocketAddr::new(IpAddr::V6(a.to_ipv6_mapped()), p.port())
            }
            _ => *p,
        })
        .collect()
}

/// Re-reads and re-hashes the chunks a state file claims, keeping those that still match
/// their verified leaf hashes. Returns the good ranges and their bytes.
fn recheck(state: &DownloadState, store: &FileStore) -> (Vec<std::ops::Range<u64>>, u64) {
    let leaves: std::collections::BTreeMap<u64, HashValue> = state
        .hashes
        .iter()
        .filter(|(b, _)| b.raw() % 2 == 0)
        .map(|(b, h)| (b.raw() / 2, *h))
        .collect();
    let cs = u64::from(state.chunk_size);
    let mut buf = vec![0u8; state.chunk_size as usize];
    let mut good = ppspp_core::binmap::Binmap::new();
    let mut bytes = 0;
    for r in &state.verified {
        for c in r.clone() {
            let len = match state.size {
                Some(size) if (c + 1) * cs > size => size.saturating_sub(c * cs) as usize,
                _ => cs as usize,
            };
            if len == 0 {
                continue;
            }
            let Some(want) = leaves.get(&c) else { continue };
            if store.read_at(c * cs, &mut buf[..len]).is_err() {
                continue;
            }
            if state.hash.digest(&buf[..len]) == *want {
                good.insert(c);
                bytes += len as u64;
            }
        }
    }
    (good.ranges().collect(), bytes)
}

fn download(args: &Args) -> Result<(), Failure> {
    let mut link: SwarmLink = args
        .swarm
        .parse()
        .map_err(|e| usage(format!("bad swarm {:?}: {e}", args.swarm)))?;
    if let Some(cs) = args.chunk_size {
        if link.explicit_chunk_size && cs != link.chunk_size {
            return Err(usage(format!(
                "--chunk-size {cs} contradicts the link's cs={}",
                link.chunk_size
            )));
        }
        if cs == 0 {
            return Err(usage("--chunk-size must be at least 1"));
        }
        link.chunk_size = cs;
    }
    let mut peers: Vec<SocketAddr> = link.peers.clone();
    for p in &args.peers {
        if !peers.contains(p) {
            peers.push(*p);
        }
    }
    if peers.is_empty() {
        return Err(usage(
            "no peer to download from: give --peer ADDR (or a link with peer=)",
        ));
    }
    if args.timeout.is_nan() || args.timeout <= 0.0 {
        return Err(usage("--timeout must be positive"));
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let out = &args.output;
    let state_path = with_suffix(out, STATE_SUFFIX);
    let part_path = with_suffix(out, PART_SUFFIX);
    let started = Instant::now();
    let progress_quiet = args.quiet;

    // A finished OUT with no state beside it: nothing to fetch if it is this content.
    if out.exists() && !state_path.exists() {
        let root = seed_cache::hash_file(out, link.hash, link.chunk_size).map_err(fail)?;
        if root.root_hash() != link.swarm_id {
            return Err(fail(format!(
                "{} already exists and is not this content; remove it or choose another -o",
                out.display()
            )));
        }
        crate::cli::say!(
            "complete {}: {} bytes (0 downloaded, already present)",
            out.display(),
            root.content_len()
        );
        if args.seed_after {
            return seed_existing(args, Arc::new(root), out);
        }
        return Ok(());
    }

    // Resume state.
    let mut resumed = None;
    match DownloadState::load(&state_path) {
        Ok(Some(st)) => {
            if st.swarm_id != link.swarm_id
                || st.chunk_size != link.chunk_size
                || st.hash != link.hash
            {
                return Err(fail(format!(
                    "{} belongs to another download (swarm {} with {}-byte chunks); remove it, \
                     or choose another -o",
                    state_path.display(),
                    st.swarm_id,
                    st.chunk_size
                )));
            }
            if part_path.exists() {
                resumed = Some(st);
            } else if !args.quiet {
                eprintln!("note: {} is missing; starting over", part_path.display());
            }
        }
        Ok(None) => {}
        Err(e) => {
            if !args.quiet {
                eprintln!(
                    "warning: ignoring {}: {e}; starting over",
                    state_path.display()
                );
            }
        }
    }
    let store = FileStore::create_download(&part_path, out, link.chunk_size, resumed.is_some())
        .map_err(fail)?;
    let mut size = link.size;
    let (content, resumed_bytes) = match &resumed {
        Some(st) => {
            let (verified, bytes) = recheck(st, &store);
            if size.is_none() {
                size = st.size;
            }
            let end = verified
                .last()
                .map_or(0, |r| r.end * u64::from(link.chunk_size));
            store.set_resumed_end(size.map_or(end, |s| end.min(s)));
            if !args.quiet {
                eprintln!(
                    "resuming: {} verified earlier ({} chunk ranges)",
                    human_bytes(bytes),
                    verified.len()
                );
            }
            (
                SwarmContent::Partial {
                    size,
                    verified,
                    hashes: st.hashes.clone(),
                },
                bytes,
            )
        }
        None => (SwarmContent::Empty { size }, 0),
    };
    if let Some(s) = size {
        store.preallocate(s).map_err(fail)?;
    }

    let listen = args.listen.unwrap_or_else(|| {
        if peers.iter().all(SocketAddr::is_ipv4) {
            "0.0.0.0:0".parse().expect("valid address")
        } else {
            "[::]:0".parse().expect("valid address")
        }
    });
    let mut cfg = DriverConfig::new();
    cfg.for_chunk_size(link.chunk_size);
    let mut driver =
        Driver::bind(listen, cfg).map_err(|e| fail(format!("cannot bind {listen}: {e}")))?;
    let peers = reachable(&peers, driver.local_addr());
    let mut scfg = SwarmConfig::new(link.swarm_id, link.hash, link.chunk_size, content);
    scfg.addressing(link.addressing);
    let now = driver.now();
    let swarm = driver
        .endpoint_mut()
        .add_swarm(now, scfg, Box::new(store.clone()))
        .map_err(|e| fail(format!("cannot start the download: {e}")))?;
    interrupt::stop_on_ctrl_c(driver.stop_handle());
    // What the engine itself holds after re-verifying the resume hashes: that, not what the
    // state file claimed, is what will not be fetched again.
    let cs64 = u64::from(link.chunk_size);
    let resumed_bytes = match driver.endpoint().swarm(swarm) {
        Some(s) if resumed_bytes > 0 => {
            let n = s.verified().count();
            let mut b = n * cs64;
            if let Some(len) = size {
                let last = len.div_ceil(cs64).saturating_sub(1);
                if s.verified().contains(last) {
                    b = b.saturating_sub(last * cs64 + cs64 - len);
                }
            }
            if b < resumed_bytes && !args.quiet {
                eprintln!(
                    "warning: the engine accepted {} of the {} resumed; the rest is fetched again",
                    human_bytes(b),
                    human_bytes(resumed_bytes)
                );
            }
            b
        }
        _ => 0,
    };

    let mut run = Run {
        swarm,
        store: store.clone(),
        chunk_size: u64::from(link.chunk_size),
        state_path: state_path.clone(),
        swarm_id: link.swarm_id,
        link: link.clone(),
        progress: Progress::new(progress_quiet, resumed_bytes),
        peers_used: BTreeSet::new(),
        connected: BTreeSet::new(),
        ever_connected: false,
        last_progress: Instant::now(),
        saved_count: u64::MAX,
        last_save: Instant::now(),
        state_every: Duration::from_millis(args.state_interval_ms.max(10)),
        last_reconnect: Instant::now(),
        complete: false,
        size,
    };
    if let Some(s) = size {
        run.progress.set_total(s);
    }

    let already_complete = driver
        .endpoint()
        .swarm(swarm)
        .is_some_and(|s| s.is_complete());
    if already_complete {
        run.complete = true;
        let len = driver
            .endpoint()
            .swarm(swarm)
            .and_then(|s| s.content_len())
            .or(size);
        store.finish(len).map_err(fail)?;
    } else {
        for p in &peers {
            let now = driver.now();
            match driver.endpoint_mut().connect(now, swarm, *p) {
                Ok(_) | Err(ConnectError::AlreadyConnected) => {}
                Err(e) => return Err(fail(format!("cannot connect to {p}: {e}"))),
            }
        }
    }

    let mut trace = crate::cli::trace::StatsTrace::from_env();
    while !run.complete {
        driver
            .turn(Duration::from_millis(100))
            .map_err(|e| fail(format!("network: {e}")))?;
        trace.tick(&mut driver, "get");
        while let Some(ev) = driver.poll_event() {
            run.on_event(&mut driver, ev)?;
        }
        if run.complete {
            break;
        }
        let done = verified_bytes(&driver, &run);
        run.progress.update(done, run.connected.len());
        if driver.is_stopped() {
            run.progress.finish();
            let saved = run.save(&driver);
            driver.shutdown().ok();
            let how = match saved {
                Ok(()) => format!(
                    "state saved to {}; run the same command to resume",
                    state_path.display()
                ),
                Err(e) => format!("could not save the state ({e})"),
            };
            return Err(Failure {
                code: 130,
                message: format!("interrupted with {} verified; {how}", human_bytes(done)),
            });
        }
        if run.last_save.elapsed() >= run.state_every {
            if let Err(e) = run.save(&driver) {
                run.progress.note(&format!("warning: {e}"));
            }
        }
        // Timeouts: silence from every peer, or no progress.
        let idle = run.last_progress.elapsed();
        if idle >= timeout {
            run.progress.finish();
            let _ = run.save(&driver);
            driver.shutdown().ok();
            let secs = args.timeout;
            let msg = if !run.ever_connected {
                format!(
                    "no peer answered within {secs} s (peers: {}); check the swarm ID and the \
                     peer addresses: a seeder stays silent about swarms it does not have",
                    list(&peers)
                )
            } else {
                format!(
                    "no data for {secs} s ({} verified, {} peer(s) connected); state saved, run the \
                     same command to resume",
                    human_bytes(done),
                    run.connected.len()
                )
            };
            return Err(fail(msg));
        }
        // Every channel gone: try the configured peers again, once a second.
        let channels = driver
            .endpoint()
            .swarm(swarm)
            .map_or(0, |s| s.peers().count());
        if channels == 0 && run.last_reconnect.elapsed() >= Duration::from_secs(1) {
            run.last_reconnect = Instant::now();
            for p in &peers {
                let now = driver.now();
                let _ = driver.endpoint_mut().connect(now, swarm, *p);
            }
        }
    }

    // Complete.
    run.progress.finish();
    if let Some(f) = store.failure() {
        return Err(fail(f));
    }
    if !store.is_completed() {
        let len = driver
            .endpoint()
            .swarm(swarm)
            .and_then(|s| s.content_len())
            .or(size);
        store.finish(len).map_err(fail)?;
    }
    // The data is synced and renamed: now the state file may go.
    let _ = std::fs::remove_file(&state_path);
    let total = driver
        .endpoint()
        .swarm(swarm)
        .and_then(|s| s.content_len())
        .or(size)
        .unwrap_or(0);
    let downloaded = store.bytes_written();
    let elapsed = started.elapsed();
    crate::cli::say!(
        "complete {}: {total} bytes ({downloaded} downloaded, {resumed_bytes} resumed) in {:.2} s, \
         {:.2} MB/s, from {} peer(s): {}",
        out.display(),
        elapsed.as_secs_f64(),
        mb_per_s(downloaded, elapsed),
        run.peers_used.len(),
        list(&run.peers_used.iter().copied().collect::<Vec<_>>())
    );
    if args.seed_after {
        eprintln!(
            "seeding {} at {} until interrupted; link {}",
            out.display(),
            driver.local_addr(),
            {
                let mut l = run.link.clone();
                l.size = Some(total);
                l.peers = vec![crate::cli::seed::advertised(driver.local_addr())];
                l
            }
        );
        driver
            .run_until(None, |_, _| std::ops::ControlFlow::<()>::Continue(()))
            .map_err(|e| fail(format!("network: {e}")))?;
    }
    driver.shutdown().ok();
    Ok(())
}

/// `--seed-after` for content that was already complete.
fn seed_existing(
    args: &Args,
    tree: Arc<ppspp_core::merkle::MerkleTree>,
    out: &Path,
) -> Result<(), Failure> {
    let store = FileStore::open_seed(out, tree.chunk_size(), tree.content_len()).map_err(fail)?;
    let listen = args
        .listen
        .unwrap_or_else(|| "0.0.0.0:0".parse().expect("valid address"));
    let mut cfg = DriverConfig::new();
    cfg.for_chunk_size(tree.chunk_size());
    let mut driver =
        Driver::bind(listen, cfg).map_err(|e| fail(format!("cannot bind {listen}: {e}")))?;
    let now = driver.now();
    driver
        .endpoint_mut()
        .add_swarm(now, SwarmConfig::seed(tree), Box::new(store))
        .map_err(|e| fail(e.to_string()))?;
    eprintln!(
        "seeding {} at {} until interrupted",
        out.display(),
        driver.local_addr()
    );
    interrupt::stop_on_ctrl_c(driver.stop_handle());
    driver
        .run_until(None, |_, _| std::ops::ControlFlow::<()>::Continue(()))
        .map_err(|e| fail(format!("network: {e}")))?;
    driver.shutdown().ok();
    Ok(())
}

fn list(peers: &[SocketAddr]) -> String {
    if peers.is_empty() {
        return "none".into();
    }
    peers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Bytes verified so far (the last chunk counted at its real length once known).
fn verified_bytes(driver: &Driver, run: &Run) -> u64 {
    let Some(s) = driver.endpoint().swarm(run.swarm) else {
        return 0;
    };
    let cs = run.chunk_size;
    let n = s.verified().count();
    let mut bytes = n * cs;
    if let (Some(len), Some(chunks)) = (s.content_len().or(run.size), s.chunk_count()) {
        if chunks > 0 && s.verified().contains(chunks - 1) {
            bytes = bytes.saturating_sub(chunks * cs - len);
        }
    }
    bytes
}

/// The state of one download while it runs.
struct Run {
    swarm: SwarmHandle,
    store: FileStore,
    chunk_size: u64,
    state_path: PathBuf,
    swarm_id: HashValue,
    link: SwarmLink,
    progress: Progress,
    peers_used: BTreeSet<SocketAddr>,
    connected: BTreeSet<SocketAddr>,
    ever_connected: bool,
    last_progress: Instant,
    /// Verified chunks at the last save.
    saved_count: u64,
    last_save: Instant,
    state_every: Duration,
    last_reconnect: Instant,
    complete: bool,
    size: Option<u64>,
}

impl Run {
    fn on_event(&mut self, driver: &mut Driver, ev: Event) -> Result<(), Failure> {
        match ev {
            Event::PeerConnected { remote, .. } => {
                self.connected.insert(remote);
                self.ever_connected = true;
                self.last_progress = Instant::now();
            }
            Event::PeerClosed { remote, reason, .. } => {
                self.connected.remove(&remote);
                if reason != CloseReason::HandshakeTimeout {
                    self.progress
                        .note(&format!("peer {remote} closed ({reason:?})"));
                }
            }
            Event::ChunksVerified { range, .. } => {
                self.last_progress = Instant::now();
                // Only peers that delivered something count as used.
                let _ = range;
                if let Some(s) = driver.endpoint().swarm(self.swarm) {
                    for p in s.peers() {
                        if let Some(pr) = driver.endpoint().peer(p) {
                            if pr.stats().content_in > 0 {
                                self.peers_used.insert(pr.remote());
                            }
                        }
                    }
                }
            }
            Event::SizeKnown { chunks, bytes, .. } => {
                let len = bytes.unwrap_or(chunks * self.chunk_size);
                if bytes.is_some() {
                    self.size = bytes;
                }
                self.progress.set_total(len);
                if let Err(e) = self.store.preallocate(len) {
                    return Err(self.store_failed(driver, e));
                }
            }
            Event::SwarmComplete { .. } => self.complete = true,
            Event::StoreFailure { error, .. } => {
                let msg = self.store.failure().unwrap_or_else(|| error.to_string());
                return Err(self.store_failed(driver, msg));
            }
            Event::IntegrityFailure { remote, bin, .. } => {
                self.progress.note(&format!(
                    "peer {remote} sent data for {bin:?} that failed verification; dropped that peer"
                ));
            }
            _ => {}
        }
        Ok(())
    }

    fn store_failed(&mut self, driver: &mut Driver, msg: String) -> Failure {
        self.progress.finish();
        let _ = self.save(driver);
        driver.shutdown().ok();
        fail(msg)
    }

    /// Syncs the data and saves the state sidecar (if anything changed since the last save).
    fn save(&mut self, driver: &Driver) -> Result<(), String> {
        self.last_save = Instant::now();
        if self.complete || self.store.is_completed() {
            return Ok(());
        }
        let Some(s) = driver.endpoint().swarm(self.swarm) else {
            return Ok(());
        };
        let count = s.verified().count();
        if count == self.saved_count || count == 0 {
            return Ok(());
        }
        // The data first: the state must never claim chunks that are not on disk.
        self.store.sync()?;
        let mut hashes: Vec<(Bin, HashValue)> = s.verified_hashes();
        // Top down: each node after its parent, so a resume can verify them in order.
        hashes.sort_by_key(|(b, _)| (std::cmp::Reverse(b.layer()), b.raw()));
        let st = DownloadState {
            swarm_id: self.swarm_id,
            hash: self.link.hash,
            addressing: self.link.addressing,
            chunk_size: self.chunk_size as u32,
            size: s.content_len().or(self.size),
            verified: s.verified().ranges().collect(),
            hashes,
        };
        st.save(&self.state_path).map_err(|e| e.to_string())?;
        self.saved_count = count;
        Ok(())
    }
}
