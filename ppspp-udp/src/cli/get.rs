//! `ppspp get SWARM --peer ADDR -o OUT`: download a swarm's content, verifying every chunk.
//!
//! `SWARM` is a hex swarm ID (the hash function is inferred from its length) or a swarm link
//! printed by `ppspp seed` (its `peer=` entries join the `--peer` list, its `origin=` entries
//! the `--origin` list).
//!
//! `--origin URL` (repeatable) adds an HTTP origin: the engine fetches the chunks peers cannot
//! deliver in time from it, or everything when there is no useful peer; every chunk is
//! verified against the tree sidecar at `URL.mhash` first (see `docs/origin.md`). With an
//! origin no `--peer` is needed.
//!
//! Data goes to `OUT.ppspp-part`; the verified chunks and the hashes that verified them are
//! saved every few seconds (and on Ctrl-C or failure) to `OUT.ppspp-state` by a thread of its
//! own (the network thread only copies a snapshot), so running the same command again
//! resumes the download. On completion the data is synced and renamed to `OUT`, and only
//! then the state file is removed. A run that fails before anything verified leaves no
//! files behind.
//!
//! Every wait is bounded: `--timeout` without any verified data (no answer, or only data that
//! fails verification) ends the run with a line saying which.
//!
//! The final summary is one line on stdout:
//! `complete OUT: N bytes (D downloaded, R resumed) in S s, X MiB/s, from P peer(s): ADDR…
//! [and O origin(s): URL… (B bytes)], peer efficiency E` (E: bytes from peers / bytes
//! downloaded, 0 to 1),
//! or with `--json` one JSON object (per-peer bytes, rates and efficiency included).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppspp_core::hash::HashValue;
use ppspp_core::{
    ConnectError, Event, PickerMode, Playback, SwarmConfig, SwarmContent, SwarmHandle,
};

use crate::cli::finder::Finder;
use crate::cli::interrupt;
use crate::cli::live::RingStore;
use crate::cli::origins::Origins;
use crate::cli::progress::{Progress, human_bytes, mib_per_s};
use crate::cli::saver::{Saver, Snapshot, StateHeader};
use crate::cli::summary::{PeerBook, Summary, peer_table};
use crate::cli::tap::Tap;
use crate::cli::tracker_client::Trackers;
use crate::cli::{Failure, MAX_CHUNK_SIZE, chunks_of, close_reason, secs};
use crate::driver::{Driver, DriverConfig};
use crate::link::SwarmLink;
use crate::origin::OriginUrls;
use crate::store::seed_cache;
use crate::store::{DownloadState, FileStore, PART_SUFFIX, STATE_SUFFIX, with_suffix};

/// Arguments of `ppspp get`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The swarm: a hex swarm ID (20 bytes: SHA-1, 28: SHA-224, 32: SHA-256, 48: SHA-384,
    /// 64: SHA-512) or a `ppspp://` link from `ppspp seed`.
    pub swarm: String,
    /// A peer to download from (repeatable): `127.0.0.1:6778`, `[::1]:6778` or
    /// `HOST:PORT` (resolved at start).
    #[arg(long = "peer", short = 'p', value_parser = ppspp_cli_args::peer)]
    pub peers: Vec<SocketAddr>,
    /// A PPSTP tracker to ask for peers (repeatable): `http://HOST:PORT/PATH`, as
    /// `ppspp tracker` prints it. Joins the link's `tracker=` entries.
    #[arg(long = "tracker", value_parser = crate::cli::tracker_client::check_url)]
    pub trackers: Vec<String>,
    /// Membership certificates.
    #[command(flatten)]
    pub membership: crate::cli::tracker_client::MembershipArgs,
    /// An HTTP origin of the content (repeatable): `http://` or `https://` URL of the file,
    /// with its tree sidecar (`ppspp hash --tree`) at the same URL + `.mhash`.
    #[arg(long = "origin", value_name = "URL")]
    pub origins: Vec<String>,
    /// Where to write the content: a file, or `-` for stdout, in order as it verifies (the
    /// download then goes through a temporary file, is not resumable, and the summary goes
    /// to stderr).
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// The chunk size in bytes (default 1024, or the link's).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CHUNK_SIZE)))]
    pub chunk_size: Option<u32>,
    /// The local UDP address (default: any address, a free port).
    #[arg(long, value_parser = ppspp_cli_args::address)]
    pub listen: Option<SocketAddr>,
    /// Give up when no chunk verifies for this long (seconds, or with a unit: 500ms, 2m).
    #[arg(long, default_value = "30", value_parser = ppspp_cli_args::duration)]
    pub timeout: Duration,
    /// No progress output (errors, warnings and the summary still print).
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the summary as one JSON object on stdout (per-peer bytes, rates, efficiency).
    #[arg(long)]
    pub json: bool,
    /// Print a line per peer (bytes and rates each way, efficiency) after the summary.
    #[arg(long)]
    pub peers_table: bool,
    /// Keep serving the content after the download completes, until interrupted.
    #[arg(long)]
    pub seed_after: bool,
    /// Limit the upload (to other peers) to this many bytes per second (suffixes k, M, G).
    #[arg(long, value_parser = ppspp_cli_args::rate)]
    pub max_rate: Option<u64>,
    /// The congestion controller.
    #[command(flatten)]
    pub congestion: crate::cli::CongestionArgs,
    /// How often to save the resume state (seconds, or with a unit: 500ms).
    #[arg(long, default_value = "2", value_parser = ppspp_cli_args::duration)]
    pub state_interval: Duration,
}

/// Runs `ppspp get`; returns the exit code.
pub fn run(args: &Args) -> u8 {
    // Past a file size limit (RLIMIT_FSIZE), writes fail with EFBIG, reported like any
    // other write error, instead of SIGXFSZ killing the program without a word.
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    match download(args) {
        Ok(()) => 0,
        Err(f) => f.report("get"),
    }
}

/// What the command line asks for, checked.
struct Plan {
    link: SwarmLink,
    peers: Vec<SocketAddr>,
    origins: Vec<OriginUrls>,
    out: PathBuf,
    state_path: PathBuf,
    part_path: PathBuf,
    /// `-o -`: the content goes to stdout; `out` is a temporary file.
    stream: bool,
}

/// Prints a result line: on stdout, or on stderr when stdout carries the content.
macro_rules! result_line {
    ($plan:expr, $($arg:tt)*) => {{
        if $plan.stream {
            eprintln!($($arg)*);
        } else {
            crate::cli::say!($($arg)*);
        }
    }};
}

fn plan(args: &Args) -> Result<Plan, Failure> {
    let mut link: SwarmLink = args
        .swarm
        .parse()
        .map_err(|e| Failure::usage(format!("bad swarm {:?}: {e}", args.swarm)))?;
    if let Some(cs) = args.chunk_size {
        if link.explicit_chunk_size && cs != link.chunk_size {
            return Err(Failure::usage(format!(
                "--chunk-size {cs} contradicts the link's cs={}",
                link.chunk_size
            )));
        }
        link.chunk_size = cs;
    }
    if link.chunk_size == 0 || link.chunk_size > MAX_CHUNK_SIZE {
        return Err(Failure::usage(format!(
            "the link's chunk size {} is not in 1..={MAX_CHUNK_SIZE}",
            link.chunk_size
        )));
    }
    let stream = args.output.as_os_str() == "-";
    let mut peers: Vec<SocketAddr> = link.peers.clone();
    for p in &args.peers {
        if !peers.contains(p) {
            peers.push(*p);
        }
    }
    for t in &args.trackers {
        if !link.trackers.contains(t) {
            link.trackers.push(t.clone());
        }
    }
    let mut origins: Vec<OriginUrls> = Vec::new();
    for u in link.origins.iter().chain(&args.origins) {
        let o = OriginUrls::parse(u).map_err(Failure::usage)?;
        if !origins.iter().any(|x| x.content == o.content) {
            origins.push(o);
        }
    }
    if peers.is_empty() && link.trackers.is_empty() && origins.is_empty() {
        return Err(Failure::usage(
            "no peer, tracker or origin to download from: give --peer ADDR, --tracker URL or \
             --origin URL (or a link with peer=, tracker= or origin=)",
        ));
    }
    let out = if stream {
        std::env::temp_dir().join(format!(
            "ppspp-get-{}-{}",
            std::process::id(),
            link.swarm_id
        ))
    } else {
        args.output.clone()
    };
    Ok(Plan {
        stream,
        state_path: with_suffix(&out, STATE_SUFFIX),
        part_path: with_suffix(&out, PART_SUFFIX),
        link,
        peers,
        origins,
        out,
    })
}

fn download(args: &Args) -> Result<(), Failure> {
    let plan = plan(args)?;
    if plan.stream {
        // Whatever happens, the temporary files go.
        let _cleanup = TempFiles(vec![
            plan.out.clone(),
            plan.part_path.clone(),
            plan.state_path.clone(),
        ]);
        return download_planned(args, &plan, None);
    }
    // A finished OUT with no state beside it: nothing to fetch if it is this content.
    if plan.out.exists() && !plan.state_path.exists() {
        return already_present(args, &plan);
    }
    let resumed = load_resume(args, &plan)?;
    download_planned(args, &plan, resumed)
}

/// Files removed when dropped (`-o -`'s temporary download).
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn download_planned(
    args: &Args,
    plan: &Plan,
    resumed: Option<DownloadState>,
) -> Result<(), Failure> {
    // Bind before creating any file, so a bind failure leaves nothing behind.
    let mut driver = bind(args, plan)?;
    let peers = crate::cli::reachable(&plan.peers, driver.local_addr());
    let mut resumed = resumed;
    if let Some(st) = &mut resumed {
        if st.size.is_none() && !st.hashes.is_empty() {
            if !args.quiet {
                eprintln!("resume: the saved state lacks the content length; asking the peers");
            }
            st.size = probe_size(&mut driver, plan, &peers, args);
        }
    }
    let part_existed = plan.part_path.exists();
    let store = FileStore::create_download(
        &plan.part_path,
        &plan.out,
        plan.link.chunk_size,
        resumed.is_some(),
    )
    .map_err(Failure::failed)?;
    let mut guard = PartGuard {
        part: plan.part_path.clone(),
        state: plan.state_path.clone(),
        armed: !part_existed,
    };
    let mut session = Session::start(args, plan, &mut driver, store, resumed.as_ref())?;
    session.finder = Finder::new(
        Trackers::start(
            &plan.link.trackers,
            &plan.link.swarm_id.to_string(),
            ppspp_tracker::PeerMode::Leech,
            driver.local_addr(),
        )
        .map_err(Failure::usage)?,
    );
    let r = session.run(&mut driver, &peers);
    if session.verified_bytes(&driver) > 0 || session.saved_any {
        guard.armed = false;
    }
    match r {
        Ok(()) => {
            guard.armed = false;
            session.complete(args, plan, driver)
        }
        Err(f) => {
            driver.shutdown().ok();
            if args.json {
                result_line!(plan, "{}", session.summary(&driver, plan, &f).to_json());
            }
            Err(f)
        }
    }
}

/// Removes the part and state files a failed run created before anything verified.
struct PartGuard {
    part: PathBuf,
    state: PathBuf,
    armed: bool,
}

impl Drop for PartGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.part);
            let _ = std::fs::remove_file(&self.state);
        }
    }
}

/// OUT exists and no state is beside it: succeed if it is this content.
fn already_present(args: &Args, plan: &Plan) -> Result<(), Failure> {
    let link = &plan.link;
    let root =
        seed_cache::hash_file(&plan.out, link.hash, link.chunk_size).map_err(Failure::failed)?;
    if root.root_hash() != link.swarm_id {
        return Err(Failure::failed(format!(
            "{} already exists and is not this content; remove it or choose another -o",
            plan.out.display()
        )));
    }
    crate::cli::say!(
        "complete {}: {} bytes (0 downloaded, already present)",
        plan.out.display(),
        root.content_len()
    );
    if args.seed_after {
        return seed_existing(args, Arc::new(root), &plan.out);
    }
    Ok(())
}

/// The resume state beside OUT, if it belongs to this download and its part file exists.
fn load_resume(args: &Args, plan: &Plan) -> Result<Option<DownloadState>, Failure> {
    let link = &plan.link;
    match DownloadState::load(&plan.state_path) {
        Ok(Some(st)) => {
            if st.swarm_id != link.swarm_id
                || st.chunk_size != link.chunk_size
                || st.hash != link.hash
            {
                return Err(Failure::failed(format!(
                    "{} belongs to another download (swarm {} with {}-byte chunks); remove it, \
                     or choose another -o",
                    plan.state_path.display(),
                    st.swarm_id,
                    st.chunk_size
                )));
            }
            if plan.part_path.exists() {
                return Ok(Some(st));
            }
            if !args.quiet {
                eprintln!(
                    "note: {} is missing; starting over",
                    plan.part_path.display()
                );
            }
        }
        Ok(None) => {}
        // A damaged state is a warning even with -q: work may be fetched again.
        Err(e) => eprintln!(
            "warning: ignoring {}: {e}; starting over",
            plan.state_path.display()
        ),
    }
    Ok(None)
}

fn bind(args: &Args, plan: &Plan) -> Result<Driver, Failure> {
    let listen = args
        .listen
        .unwrap_or_else(|| crate::cli::any_addr_for(&plan.peers));
    let mut cfg = DriverConfig::new();
    cfg.for_chunk_size(plan.link.chunk_size);
    cfg.max_send_rate = args.max_rate;
    args.congestion.apply(&mut cfg);
    Driver::bind(listen, cfg).map_err(|e| Failure::failed(format!("cannot bind {listen}: {e}")))
}

/// Learns the exact content length from the peers when a resume state lacks it.
///
/// The engine rebuilds resumed work only when it knows the content length (the tree's shape
/// depends on it), and a download started from a bare hex swarm ID learns the length only
/// when the last chunk verifies. Rather than throw the saved work away, fetch the last chunk
/// first, into a throwaway store: a swarm picking in order from the last chunk, removed once
/// the length is known. Bounded by `--timeout`; `None` when no peer told.
fn probe_size(driver: &mut Driver, plan: &Plan, peers: &[SocketAddr], args: &Args) -> Option<u64> {
    let link = &plan.link;
    let mut scfg = SwarmConfig::new(
        link.swarm_id,
        link.hash,
        link.chunk_size,
        SwarmContent::Empty { size: None },
    );
    scfg.addressing(link.addressing)
        .picker(PickerMode::InOrder { lookahead: 1 });
    let now = driver.now();
    let swarm = driver
        .endpoint_mut()
        .add_swarm(now, scfg, Box::new(RingStore::new(4)))
        .ok()?;
    for p in peers {
        let now = driver.now();
        let _ = driver.endpoint_mut().connect(now, swarm, *p);
    }
    interrupt::stop_on_ctrl_c(driver.stop_handle());
    let end = Instant::now() + args.timeout;
    let mut size = None;
    let mut sought = false;
    while Instant::now() < end && !driver.is_stopped() {
        if driver.turn(Duration::from_millis(50)).is_err() {
            break;
        }
        while let Some(ev) = driver.poll_event() {
            if let Event::SizeKnown { chunks, .. } = ev {
                if !sought {
                    sought = true;
                    let now = driver.now();
                    driver
                        .endpoint_mut()
                        .seek(now, swarm, chunks.saturating_sub(1));
                }
            }
        }
        size = driver.endpoint().swarm(swarm).and_then(|s| s.content_len());
        if size.is_some() {
            break;
        }
    }
    let now = driver.now();
    driver.endpoint_mut().remove_swarm(now, swarm);
    let _ = driver.flush_pending(Duration::from_millis(50));
    // Drop what the probe reported; the download starts from a clean event queue.
    while driver.poll_event().is_some() {}
    tracing::info!(?size, "resume: probed the content length");
    size
}

/// Re-reads and re-hashes the chunks a state file claims, keeping those that still match
/// their verified leaf hashes. Returns the good ranges and their bytes.
pub(crate) fn recheck(
    state: &DownloadState,
    store: &FileStore,
) -> (Vec<std::ops::Range<u64>>, u64) {
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

/// The state of one download while it runs.
struct Session {
    swarm: SwarmHandle,
    store: FileStore,
    chunk_size: u64,
    progress: Progress,
    book: PeerBook,
    saver: Option<Saver>,
    saved_any: bool,
    ever_connected: bool,
    integrity_failures: u64,
    started: Instant,
    last_progress: Instant,
    last_save: Instant,
    last_reconnect: Instant,
    state_every: Duration,
    timeout: Duration,
    complete: bool,
    size: Option<u64>,
    /// Bytes the engine kept from the resume state, and what the state claimed.
    resumed: u64,
    claimed: u64,
    /// The HTTP origins, if any.
    origins: Option<Origins>,
    quiet: bool,
    /// `-o -`: the stdout writer, and the chunk it was last known to need.
    tap: Option<Tap>,
    tap_at: u64,
    tap_started: bool,
    /// The trackers announcing this download (dropping them sends LEAVE) and the manager
    /// deciding which of their peers to connect to.
    finder: Finder,
}

impl Session {
    /// Adds the swarm (with what a resume state proves) and connects to the peers.
    fn start(
        args: &Args,
        plan: &Plan,
        driver: &mut Driver,
        store: FileStore,
        resumed: Option<&DownloadState>,
    ) -> Result<Self, Failure> {
        let link = &plan.link;
        let cs = u64::from(link.chunk_size);
        let mut size = link.size;
        let (content, claimed) = match resumed {
            Some(st) => {
                let (verified, bytes) = recheck(st, &store);
                size = size.or(st.size);
                let end = verified.last().map_or(0, |r| r.end * cs);
                store.set_resumed_end(size.map_or(end, |s| end.min(s)));
                if !args.quiet {
                    eprintln!(
                        "resuming: {} verified earlier ({} chunk ranges)",
                        human_bytes(bytes),
                        verified.len()
                    );
                }
                let hashes = st.hashes.clone();
                (
                    SwarmContent::Partial {
                        size,
                        verified,
                        hashes,
                    },
                    bytes,
                )
            }
            None => (SwarmContent::Empty { size }, 0),
        };
        if let Some(s) = size {
            store.preallocate(s).map_err(Failure::failed)?;
        }
        let mut scfg = SwarmConfig::new(link.swarm_id, link.hash, link.chunk_size, content);
        scfg.addressing(link.addressing);
        scfg.membership(args.membership.policy());
        let now = driver.now();
        let swarm = driver
            .endpoint_mut()
            .add_swarm(now, scfg, Box::new(store.clone()))
            .map_err(|e| Failure::failed(format!("cannot start the download: {e}")))?;
        interrupt::stop_on_ctrl_c(driver.stop_handle());
        let wake = driver.wake_handle();
        let now = driver.now();
        let origins = Origins::start(
            driver.endpoint_mut(),
            now,
            swarm,
            &plan.origins,
            move || wake.wake(),
        )
        .map_err(Failure::failed)?;
        let header = StateHeader {
            swarm_id: link.swarm_id,
            hash: link.hash,
            addressing: link.addressing,
            chunk_size: link.chunk_size,
        };
        let now = Instant::now();
        let tap = plan
            .stream
            .then(|| Tap::start(store.clone(), std::io::stdout()));
        let mut s = Self {
            swarm,
            saver: Some(Saver::start(plan.state_path.clone(), header, store.clone())),
            store,
            chunk_size: cs,
            progress: Progress::new(args.quiet, 0),
            book: PeerBook::default(),
            saved_any: resumed.is_some(),
            ever_connected: false,
            integrity_failures: 0,
            started: now,
            last_progress: now,
            last_save: now,
            last_reconnect: now,
            state_every: args.state_interval,
            timeout: args.timeout,
            complete: false,
            size,
            resumed: 0,
            claimed,
            origins,
            quiet: args.quiet,
            tap,
            tap_at: 0,
            tap_started: false,
            finder: Finder::new(Trackers::default()),
        };
        // What the engine itself holds after re-verifying the resume hashes: that, not what
        // the state file claimed, is what will not be fetched again.
        s.resumed = if claimed > 0 {
            s.verified_bytes(driver)
        } else {
            0
        };
        if s.resumed < claimed {
            // Not hidden by -q: work is about to be fetched again.
            eprintln!(
                "warning: the engine accepted {} of the {} resumed; the rest is fetched again",
                human_bytes(s.resumed),
                human_bytes(claimed)
            );
        }
        s.progress = Progress::new(args.quiet, s.resumed);
        if let Some(sz) = size {
            s.progress.set_total(sz);
        }
        Ok(s)
    }

    /// Runs the loop until the download completes (`Ok`) or stops (`Err`).
    fn run(&mut self, driver: &mut Driver, peers: &[SocketAddr]) -> Result<(), Failure> {
        if self.already_complete(driver)? {
            return Ok(());
        }
        for p in peers {
            let now = driver.now();
            match driver.endpoint_mut().connect(now, self.swarm, *p) {
                Ok(_) | Err(ConnectError::AlreadyConnected) => {}
                Err(e) => return Err(Failure::failed(format!("cannot connect to {p}: {e}"))),
            }
        }
        let mut trace = crate::cli::trace::StatsTrace::from_env();
        let mut refreshed = Instant::now();
        while !self.complete {
            driver
                .turn(Duration::from_millis(100))
                .map_err(|e| Failure::failed(format!("network: {e}")))?;
            trace.tick(driver, "get");
            if let Some(o) = &mut self.origins {
                let now = driver.now();
                for n in o.pump(driver.endpoint_mut(), now) {
                    self.progress.note(&n);
                }
                if peers.is_empty() && o.all_disabled(driver.endpoint()) {
                    // Nothing left to download from: say so now rather than at the timeout.
                    let msg = format!("every origin failed: {}", o.errors());
                    return Err(self.stop_failed(driver, msg));
                }
            }
            while let Some(ev) = driver.poll_event() {
                self.on_event(driver, ev)?;
            }
            self.feed_tap(driver)?;
            if self.complete {
                break;
            }
            if refreshed.elapsed() >= Duration::from_millis(500) {
                refreshed = Instant::now();
                self.book.refresh(driver, self.swarm);
            }
            let done = self.verified_bytes(driver);
            let connected = driver
                .endpoint()
                .swarm(self.swarm)
                .map_or(0, |s| s.connected_peers());
            self.progress.update(done, connected);
            if driver.is_stopped() {
                return Err(self.stop_interrupted(driver, done));
            }
            if self.last_save.elapsed() >= self.state_every {
                self.offer_snapshot(driver);
            }
            if self.last_progress.elapsed() >= self.timeout {
                return Err(self.stop_timed_out(driver, peers, done, connected));
            }
            self.use_trackers(driver, done, connected);
            self.reconnect_if_alone(driver, peers);
        }
        self.book.refresh(driver, self.swarm);
        Ok(())
    }

    /// `-o -`: tells the stdout writer what verified in order, and the engine where the
    /// writer is.
    fn feed_tap(&mut self, driver: &mut Driver) -> Result<(), Failure> {
        let Some(tap) = &self.tap else {
            return Ok(());
        };
        if let Some(e) = tap.error() {
            return Err(self.stop_failed(driver, e));
        }
        let cs = self.chunk_size;
        let at = tap.written() / cs;
        let Some(s) = driver.endpoint().swarm(self.swarm) else {
            return Ok(());
        };
        let run_end = s.verified().first_missing(at);
        let len = s.content_len().or(self.size);
        let ready = len.map_or(run_end * cs, |l| (run_end * cs).min(l));
        tap.publish(ready);
        if at != self.tap_at || !self.tap_started {
            // The writer's position is the playback position: in order from there first.
            self.tap_at = at;
            self.tap_started = true;
            let now = driver.now();
            driver
                .endpoint_mut()
                .set_playback(now, self.swarm, Playback::at(at));
        }
        Ok(())
    }

    /// A resumed download that was already whole: finish it without the network.
    fn already_complete(&mut self, driver: &Driver) -> Result<bool, Failure> {
        let Some(s) = driver.endpoint().swarm(self.swarm) else {
            return Ok(false);
        };
        if !s.is_complete() {
            return Ok(false);
        }
        self.complete = true;
        let len = s.content_len().or(self.size);
        self.store.finish(len).map_err(Failure::failed)?;
        Ok(true)
    }

    /// Peers from the trackers (see [`Finder::step`]).
    fn use_trackers(&mut self, driver: &mut Driver, done: u64, connected: usize) {
        let progress = ppspp_tracker::Progress {
            uploaded: self.book.totals().iter().map(|p| p.uploaded).sum(),
            downloaded: done.saturating_sub(self.resumed),
            links: connected as u64,
            complete: self.complete,
        };
        let (local, now) = (driver.local_addr(), driver.now());
        self.finder
            .step(driver.endpoint_mut(), now, self.swarm, local, progress);
    }

    /// Every channel gone: try the configured peers again, once a second.
    fn reconnect_if_alone(&mut self, driver: &mut Driver, peers: &[SocketAddr]) {
        let channels = driver
            .endpoint()
            .swarm(self.swarm)
            .map_or(0, |s| s.peers().count());
        if channels == 0 && self.last_reconnect.elapsed() >= Duration::from_secs(1) {
            self.last_reconnect = Instant::now();
            for p in peers {
                let now = driver.now();
                let _ = driver.endpoint_mut().connect(now, self.swarm, *p);
            }
        }
    }

    fn on_event(&mut self, driver: &mut Driver, ev: Event) -> Result<(), Failure> {
        match ev {
            Event::PeerConnected { remote, .. } => {
                self.finder.on_connected(driver.now(), remote);
                // Not progress: a peer whose data fails verification reconnects forever.
                self.ever_connected = true;
                self.book.connected(remote);
                tracing::info!(%remote, "peer connected");
            }
            // The peer stays connected through its other channel.
            Event::PeerClosed {
                reason: ppspp_core::CloseReason::Duplicate,
                ..
            } => {}
            Event::PeerClosed { remote, reason, .. } => {
                self.finder.on_closed(driver.now(), remote, reason);
                self.book.refresh(driver, self.swarm);
                self.book.closed(remote);
                tracing::info!(%remote, "peer closed: {}", close_reason(reason));
            }
            Event::ChunksVerified { .. } => self.last_progress = Instant::now(),
            Event::SizeKnown { chunks, bytes, .. } => {
                let len = bytes.unwrap_or(chunks * self.chunk_size);
                if bytes.is_some() {
                    self.size = bytes;
                }
                self.progress.set_total(len);
                if let Err(e) = self.store.preallocate(len) {
                    return Err(self.stop_failed(driver, e));
                }
            }
            Event::SwarmComplete { .. } => self.complete = true,
            Event::OriginIntegrityFailure { .. } | Event::OriginDisabled { .. } => {
                // Not hidden by -q: content was refused, or a source is gone.
                if let Some(line) = self.origins.as_ref().and_then(|o| o.describe(&ev)) {
                    if self.quiet {
                        eprintln!("warning: {line}");
                    } else {
                        self.progress.note(&format!("warning: {line}"));
                    }
                }
            }
            Event::StoreFailure { error, .. } => {
                let msg = self.store.failure().unwrap_or_else(|| error.to_string());
                return Err(self.stop_failed(driver, msg));
            }
            Event::IntegrityFailure {
                remote, bin, error, ..
            } => {
                self.integrity_failures += 1;
                self.progress.note(&format!(
                    "peer {remote} sent {} that failed verification ({error}); dropped that peer",
                    chunks_of(bin)
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// Bytes verified so far (the last chunk counted at its real length once known).
    fn verified_bytes(&self, driver: &Driver) -> u64 {
        let Some(s) = driver.endpoint().swarm(self.swarm) else {
            return 0;
        };
        let cs = self.chunk_size;
        let mut bytes = s.verified().count() * cs;
        if let (Some(len), Some(chunks)) = (s.content_len().or(self.size), s.chunk_count()) {
            if chunks > 0 && s.verified().contains(chunks - 1) {
                bytes = bytes.saturating_sub(chunks * cs - len);
            }
        }
        bytes
    }

    /// A copy of what the engine verified, for the saver; `None` if nothing changed since
    /// the last save or nothing is verified.
    fn snapshot(&self, driver: &Driver) -> Option<Snapshot> {
        let s = driver.endpoint().swarm(self.swarm)?;
        let count = s.verified().count();
        let saved = self.saver.as_ref().map_or(0, |sv| sv.status().saved_count);
        if self.complete || count == 0 || count == saved {
            return None;
        }
        Some(Snapshot {
            size: s.content_len().or(self.size),
            verified: s.verified().ranges().collect(),
            hashes: s.verified_hashes(),
            count,
        })
    }

    fn offer_snapshot(&mut self, driver: &Driver) {
        self.last_save = Instant::now();
        if let (Some(snap), Some(saver)) = (self.snapshot(driver), &self.saver) {
            if saver.offer(snap) {
                self.saved_any = true;
            }
            // Copying the engine's verified hashes is the one part of a save left on this
            // thread and costs O(content): keep it under 2% of the time by stretching the
            // interval after an expensive copy.
            let cost = self.last_save.elapsed();
            self.state_every = self.state_every.max(cost * 50);
            tracing::debug!(
                micros = cost.as_micros() as u64,
                next_ms = self.state_every.as_millis() as u64,
                "network thread: state snapshot handed to the saver"
            );
        }
        if let Some(e) = self.saver.as_ref().and_then(|s| s.status().error) {
            self.progress.note(&format!("warning: {e}"));
        }
    }

    /// Saves the final state and waits for the saver; `Ok(true)` if a state file exists.
    fn final_save(&mut self, driver: &Driver) -> Result<bool, String> {
        let snap = self.snapshot(driver);
        let Some(saver) = self.saver.take() else {
            return Ok(false);
        };
        let st = saver.finish(snap);
        match st.error {
            Some(e) => Err(e),
            None => Ok(st.saved_count > 0 || self.saved_any),
        }
    }

    fn stop_interrupted(&mut self, driver: &mut Driver, done: u64) -> Failure {
        self.progress.finish();
        let saved = self.final_save(driver);
        let how = match saved {
            Ok(true) => "state saved; run the same command to resume".to_string(),
            Ok(false) => "nothing to save".to_string(),
            Err(e) => format!("could not save the state ({e})"),
        };
        Failure::interrupted(format!(
            "interrupted with {} verified; {how}",
            human_bytes(done)
        ))
    }

    fn stop_timed_out(
        &mut self,
        driver: &mut Driver,
        peers: &[SocketAddr],
        done: u64,
        connected: usize,
    ) -> Failure {
        self.progress.finish();
        let saved = matches!(self.final_save(driver), Ok(true));
        let t = secs(self.timeout);
        let msg = if self.integrity_failures > 0 && done == self.resumed {
            format!(
                "no chunk verified within {t}: {} piece(s) of data from the peers failed \
                 verification; check --chunk-size (it must be the seeder's) and the swarm ID",
                self.integrity_failures
            )
        } else if !self.ever_connected && peers.is_empty() {
            format!(
                "no chunk verified within {t} and no peer given; the origin(s) failed: {}",
                self.origins
                    .as_ref()
                    .map_or_else(|| "none".into(), Origins::errors)
            )
        } else if !self.ever_connected {
            format!(
                "no peer answered within {t} (peers: {}); either no ppspp is listening there \
                 or it does not have this swarm (a seeder stays silent about swarms it does \
                 not have)",
                list(peers)
            )
        } else {
            format!(
                "no data for {t} ({} verified, {connected} peer(s) connected){}",
                human_bytes(done),
                if saved {
                    "; state saved, run the same command to resume"
                } else {
                    ""
                }
            )
        };
        Failure::failed(msg)
    }

    fn stop_failed(&mut self, driver: &mut Driver, msg: String) -> Failure {
        self.progress.finish();
        let _ = self.final_save(driver);
        Failure::failed(msg)
    }

    fn summary(&self, driver: &Driver, plan: &Plan, failure: &Failure) -> Summary {
        self.summary_with(driver, plan, Some(failure), self.store.bytes_written())
    }

    fn summary_with(
        &self,
        driver: &Driver,
        plan: &Plan,
        failure: Option<&Failure>,
        downloaded: u64,
    ) -> Summary {
        let peers = self.book.totals();
        let uploaded: u64 = peers.iter().map(|p| p.uploaded).sum();
        let seconds = self.started.elapsed().as_secs_f64();
        Summary {
            status: match failure {
                None => "complete",
                Some(f) if f.code == crate::cli::EXIT_INTERRUPTED => "interrupted",
                Some(_) => "failed",
            },
            error: failure.map(|f| f.message.clone()),
            output: plan.out.display().to_string(),
            swarm: plan.link.swarm_id.to_string(),
            size: self.size,
            verified: self.verified_bytes(driver),
            downloaded,
            uploaded,
            resumed: self.resumed,
            resume_claimed: self.claimed,
            ratio: if downloaded == 0 {
                0.0
            } else {
                uploaded as f64 / downloaded as f64
            },
            seconds,
            rate: if seconds > 0.0 {
                downloaded as f64 / seconds
            } else {
                0.0
            },
            peers,
            origin_bytes: driver
                .endpoint()
                .swarm(self.swarm)
                .map_or(0, |s| s.content_from_origins()),
            peer_efficiency: self.peer_efficiency(driver),
            origin_range_ignored: self.origins.as_ref().map_or(0, Origins::range_ignored),
        }
    }

    /// The summary line's end: the origins' part, then `, peer efficiency E` (bytes from
    /// peers / all bytes downloaded; 1 when no origin contributed).
    fn origin_clause(&self, driver: &Driver) -> String {
        let mut s = String::new();
        if let Some(o) = &self.origins {
            let stats = o.stats(driver.endpoint());
            let bytes: u64 = stats.iter().map(|(_, st)| st.content_in).sum();
            let urls: Vec<String> = stats.into_iter().map(|(u, _)| u).collect();
            s.push_str(&format!(
                " and {} origin(s): {} ({bytes} bytes)",
                urls.len(),
                urls.join(", ")
            ));
        }
        format!("{s}, peer efficiency {:.3}", self.peer_efficiency(driver))
    }

    /// Bytes from peers / all bytes downloaded in this run (1 when none came from origins).
    fn peer_efficiency(&self, driver: &Driver) -> f64 {
        driver
            .endpoint()
            .swarm(self.swarm)
            .and_then(|s| s.peer_efficiency())
            .unwrap_or(1.0)
    }

    /// The download completed: sync and rename, remove the state, print the summary.
    fn complete(mut self, args: &Args, plan: &Plan, mut driver: Driver) -> Result<(), Failure> {
        self.progress.finish();
        // The saver must be idle before the state file goes.
        if let Some(s) = self.saver.take() {
            s.finish(None);
        }
        if let Some(f) = self.store.failure() {
            return Err(Failure::failed(f));
        }
        let len = driver
            .endpoint()
            .swarm(self.swarm)
            .and_then(|s| s.content_len())
            .or(self.size);
        if !self.store.is_completed() {
            self.store.finish(len).map_err(Failure::failed)?;
        }
        // The data is synced and renamed: now the state file may go.
        let _ = std::fs::remove_file(&plan.state_path);
        let total = len.unwrap_or(0);
        self.size = Some(total);
        if let Some(tap) = self.tap.take() {
            tap.finish(total).map_err(Failure::failed)?;
        }
        let downloaded = self.store.bytes_written();
        if args.json {
            let s = self.summary_with(&driver, plan, None, downloaded);
            result_line!(plan, "{}", s.to_json());
        } else {
            let elapsed = self.started.elapsed();
            let sources = self.book.sources();
            result_line!(
                plan,
                "complete {}: {total} bytes ({downloaded} downloaded, {} resumed) in {:.2} s, \
                 {:.2} MiB/s, from {} peer(s): {}{}",
                plan.out.display(),
                self.resumed,
                elapsed.as_secs_f64(),
                mib_per_s(downloaded, elapsed),
                sources.len(),
                list(&sources),
                self.origin_clause(&driver),
            );
            if args.peers_table {
                let peers = self.book.totals();
                let up: u64 = peers.iter().map(|p| p.uploaded).sum();
                result_line!(
                    plan,
                    "  total: down {}, up {}, ratio {:.2}",
                    human_bytes(downloaded),
                    human_bytes(up),
                    if downloaded == 0 {
                        0.0
                    } else {
                        up as f64 / downloaded as f64
                    }
                );
                for l in peer_table(&peers) {
                    result_line!(plan, "{l}");
                }
            }
        }
        if args.seed_after {
            // The trackers list this peer as a seeder from now on.
            self.finder.report(ppspp_tracker::Progress {
                downloaded,
                complete: true,
                ..ppspp_tracker::Progress::default()
            });
            let mut l = plan.link.clone();
            l.size = Some(total);
            l.peers = vec![crate::cli::seed::advertised(driver.local_addr())];
            eprintln!(
                "seeding {} at {} until interrupted; link {l}",
                plan.out.display(),
                driver.local_addr()
            );
            driver
                .run_until(None, |_, _| std::ops::ControlFlow::<()>::Continue(()))
                .map_err(|e| Failure::failed(format!("network: {e}")))?;
        }
        driver.shutdown().ok();
        Ok(())
    }
}

/// `--seed-after` for content that was already complete.
fn seed_existing(
    args: &Args,
    tree: Arc<ppspp_core::merkle::MerkleTree>,
    out: &Path,
) -> Result<(), Failure> {
    let store = FileStore::open_seed(out, tree.chunk_size(), tree.content_len())
        .map_err(Failure::failed)?;
    let listen = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut cfg = DriverConfig::new();
    cfg.for_chunk_size(tree.chunk_size());
    cfg.max_send_rate = args.max_rate;
    args.congestion.apply(&mut cfg);
    let mut driver = Driver::bind(listen, cfg)
        .map_err(|e| Failure::failed(format!("cannot bind {listen}: {e}")))?;
    let now = driver.now();
    driver
        .endpoint_mut()
        .add_swarm(now, SwarmConfig::seed(tree), Box::new(store))
        .map_err(|e| Failure::failed(e.to_string()))?;
    eprintln!(
        "seeding {} at {} until interrupted",
        out.display(),
        driver.local_addr()
    );
    interrupt::stop_on_ctrl_c(driver.stop_handle());
    driver
        .run_until(None, |_, _| std::ops::ControlFlow::<()>::Continue(()))
        .map_err(|e| Failure::failed(format!("network: {e}")))?;
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
