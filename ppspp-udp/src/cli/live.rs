//! `ppspp live`: live streaming (RFC 7574 §6) with the Unified Merkle Tree.
//!
//! - `ppspp live source [--input FILE] [--listen ADDR] [--key FILE]`: the injector. It cuts
//!   its input (standard input by default) into chunks, signs a munro every
//!   `--chunks-per-sig` chunks and serves the stream. Prints `swarm <hex>` (the public key),
//!   `listening <addr>` and `link <live link>` (see [`crate::live_link`]) on stdout. At the end of the input it keeps serving until
//!   interrupted (a trailing partial chunk is not sent: live chunks are full-size).
//! - `ppspp live get SWARM --peer ADDR -o OUT`: a peer. It tunes in at the newest signed
//!   munro it hears of, verifies every chunk against it, writes the stream to OUT (`-`:
//!   standard output) in order from there, and serves what it holds to other peers. Prints
//!   `tune-in <chunk>` on stderr. Stops after `--chunks N` chunks, after `--duration SECS`,
//!   or when interrupted; fails (exit 1, saying why) when nothing arrives for `--timeout`.
//!
//! Peers keep only the last `--keep` chunks in memory (what they serve); the output file is
//! the record.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use ppspp_core::hash::HashAlgorithm;
use ppspp_core::live::{KeyPair, LiveParams, LiveSwarmId, SignedForm, verifier};
use ppspp_core::store::{ChunkStore, StoreError};
use ppspp_core::wire::{ChunkAddressing, SignatureAlgorithm};
use ppspp_core::{Event, SwarmConfig};

use crate::cli::tracker_client::Trackers;
use crate::cli::{Failure, MAX_CHUNK_SIZE, close_reason, interrupt, secs};
use crate::driver::{Driver, DriverConfig, os_seed};

/// Arguments of `ppspp live`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `ppspp live` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Inject a live stream: read it, sign it, serve it.
    Source(SourceArgs),
    /// Join a live stream and write it out.
    Get(GetArgs),
}

/// What source and peers must agree on.
#[derive(Debug, Clone, clap::Args)]
pub struct StreamArgs {
    /// Chunk size in bytes.
    #[arg(long, default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CHUNK_SIZE)))]
    pub chunk_size: u32,
    /// Chunks per signed munro (a power of two, at least 2; libswift uses 32).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(2..=65536))]
    pub chunks_per_sig: u64,
    /// What a munro signature covers: `rfc` (RFC 7574 §6.1.2.2: chunk range, NTP timestamp,
    /// hash) or `libswift` (the hash alone, Unix-µs timestamps; what libswift peers need).
    #[arg(long, default_value = "rfc", value_parser = parse_form)]
    pub form: SignedForm,
    /// Keep this many of the newest chunks to serve to other peers (the live discard window
    /// announced to them; the store holds a munro or two more).
    #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u64).range(1..=1 << 24))]
    pub keep: u64,
}

/// Arguments of `ppspp live source`.
#[derive(Debug, clap::Args)]
pub struct SourceArgs {
    /// Read the stream from this file (`-`, the default: standard input).
    #[arg(long, default_value = "-")]
    pub input: String,
    /// The UDP address to listen on.
    #[arg(long, default_value = "0.0.0.0:6778", value_parser = ppspp_cli_args::address)]
    pub listen: SocketAddr,
    /// The signing key: read from this file if it exists (hex of the secret), otherwise
    /// made from fresh randomness and written there. Without it, a new key (and swarm ID)
    /// each run.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Signature algorithm for a new key: ecdsa-p256 (13, the default), ecdsa-p384 (14),
    /// ed25519 (15).
    #[arg(long, default_value = "ecdsa-p256", value_parser = parse_alg)]
    pub algorithm: SignatureAlgorithm,
    /// Inject at most this many bytes per second (suffixes k, M, G; default: as fast as the
    /// input comes).
    #[arg(long, value_parser = ppspp_cli_args::rate)]
    pub rate: Option<u64>,
    /// Limit the upload to this many bytes per second (suffixes k, M, G).
    #[arg(long, value_parser = ppspp_cli_args::rate)]
    pub max_rate: Option<u64>,
    /// The congestion controller.
    #[command(flatten)]
    pub congestion: crate::cli::CongestionArgs,
    /// A PPSTP tracker to announce the stream to (repeatable): `http://HOST:PORT/PATH`.
    #[arg(long = "tracker", value_parser = crate::cli::tracker_client::check_url)]
    pub trackers: Vec<String>,
    /// Also write the stream for an HTTP origin: DIR/stream (the chunks) and
    /// DIR/stream.munros (its signed munro log). Serve DIR with any file server; viewers
    /// then use `ppspp live get --origin http://HOST/.../stream`.
    #[arg(long, value_name = "DIR")]
    pub publish: Option<PathBuf>,
    /// The stream's parameters.
    #[command(flatten)]
    pub stream: StreamArgs,
}

/// Arguments of `ppspp live get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The swarm ID (hex of the algorithm byte and public key), as `ppspp live source`
    /// prints it.
    pub swarm: String,
    /// A peer to join through (repeatable): `IP:PORT` or `HOST:PORT`.
    #[arg(long = "peer", required_unless_present_any = ["trackers", "origins"],
          value_parser = ppspp_cli_args::peer)]
    pub peers: Vec<SocketAddr>,
    /// An HTTP origin of the stream (repeatable): the URL of the content a
    /// `ppspp live source --publish` writes (its munro log beside it, URL + `.munros`).
    /// Chunks peers have not delivered `--origin-grace` after their munro was signed come from there;
    /// with no peer, everything does.
    #[arg(long = "origin", value_name = "URL")]
    pub origins: Vec<String>,
    /// With `--origin`: how long after its munro was signed a chunk peers have not delivered
    /// is fetched from the origin (seconds, or with a unit). Bounds the delay behind the
    /// source; longer leaves more to peers.
    #[arg(long, default_value = "2", value_parser = ppspp_cli_args::duration)]
    pub origin_grace: Duration,
    /// A PPSTP tracker to ask for peers (repeatable): `http://HOST:PORT/PATH`.
    #[arg(long = "tracker", value_parser = crate::cli::tracker_client::check_url)]
    pub trackers: Vec<String>,
    /// Write the stream here, from the tune-in point on (`-`: standard output).
    #[arg(short = 'o', long = "output")]
    pub output: String,
    /// The UDP address to listen on.
    #[arg(long, default_value = "0.0.0.0:0", value_parser = ppspp_cli_args::address)]
    pub listen: SocketAddr,
    /// Stop after writing this many chunks.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1 << 48))]
    pub chunks: Option<u64>,
    /// Stop after this long (seconds, or with a unit: 500ms, 2m).
    #[arg(long, value_parser = ppspp_cli_args::duration)]
    pub duration: Option<Duration>,
    /// Fail when no chunk arrives for this long (seconds, or with a unit).
    #[arg(long, default_value = "30", value_parser = ppspp_cli_args::duration)]
    pub timeout: Duration,
    /// Drop signed munros older than this (seconds, or with a unit; RFC 7574 §6.1.2.4).
    #[arg(long, value_parser = ppspp_cli_args::duration)]
    pub max_age: Option<Duration>,
    /// The stream's parameters.
    #[command(flatten)]
    pub stream: StreamArgs,
    /// The congestion controller.
    #[command(flatten)]
    pub congestion: crate::cli::CongestionArgs,
}

fn parse_form(s: &str) -> Result<SignedForm, String> {
    match s {
        "rfc" => Ok(SignedForm::Rfc7574),
        "libswift" => Ok(SignedForm::Libswift),
        _ => Err(format!("unknown form {s:?} (rfc, libswift)")),
    }
}

pub(crate) fn parse_alg(s: &str) -> Result<SignatureAlgorithm, String> {
    match s {
        "ecdsa-p256" | "13" => Ok(SignatureAlgorithm::ECDSAP256SHA256),
        "ecdsa-p384" | "14" => Ok(SignatureAlgorithm::ECDSAP384SHA384),
        "ed25519" | "15" => Ok(SignatureAlgorithm::ED25519),
        _ => Err(format!(
            "unknown algorithm {s:?} (ecdsa-p256, ecdsa-p384, ed25519)"
        )),
    }
}

impl StreamArgs {
    fn params(&self) -> Result<LiveParams, Failure> {
        let p = LiveParams {
            chunk_size: self.chunk_size,
            nchunks_per_sig: self.chunks_per_sig,
            addressing: ChunkAddressing::ChunkRange32,
            hash: HashAlgorithm::Sha1,
            form: self.form,
        };
        if self.chunks_per_sig < 2 || !self.chunks_per_sig.is_power_of_two() {
            return Err(Failure::usage(
                "--chunks-per-sig must be a power of two, at least 2",
            ));
        }
        Ok(p)
    }
}

/// The newest chunks of a stream, shared between the engine (which stores verified chunks
/// and reads them back to serve them) and the program (which writes them out in order).
#[derive(Debug, Clone)]
pub struct RingStore {
    inner: Arc<Mutex<Ring>>,
}

#[derive(Debug)]
struct Ring {
    keep: u64,
    chunks: BTreeMap<u64, Vec<u8>>,
    /// Chunks before this were let go to keep `keep`.
    dropped_below: u64,
}

impl RingStore {
    /// A store keeping the newest `keep` chunks.
    pub fn new(keep: u64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Ring {
                keep: keep.max(1),
                chunks: BTreeMap::new(),
                dropped_below: 0,
            })),
        }
    }

    /// Chunk `index`, if held.
    pub fn get(&self, index: u64) -> Option<Vec<u8>> {
        self.inner.lock().ok()?.chunks.get(&index).cloned()
    }

    /// The oldest chunk held.
    pub fn oldest(&self) -> Option<u64> {
        self.inner.lock().ok()?.chunks.keys().next().copied()
    }

    /// Chunks before this were let go (the store keeps only the newest).
    pub fn dropped_below(&self) -> u64 {
        self.inner.lock().map_or(0, |r| r.dropped_below)
    }

    /// The newest chunk held.
    pub fn newest(&self) -> Option<u64> {
        self.inner.lock().ok()?.chunks.keys().next_back().copied()
    }

    /// How many consecutive chunks from `from` on are held, counting at most `max`.
    pub fn run(&self, from: u64, max: u64) -> u64 {
        let Ok(r) = self.inner.lock() else { return 0 };
        let mut n = 0;
        for (&i, _) in r.chunks.range(from..) {
            if i != from + n || n >= max {
                break;
            }
            n += 1;
        }
        n
    }
}

impl ChunkStore for RingStore {
    fn read_chunk(&mut self, index: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        let r = self.inner.lock().map_err(|_| StoreError::Io {
            message: "store lock poisoned".into(),
        })?;
        let c = r
            .chunks
            .get(&index)
            .ok_or(StoreError::Missing { chunk: index })?;
        let n = c.len().min(buf.len());
        buf[..n].copy_from_slice(&c[..n]);
        Ok(n)
    }

    fn write_chunk(&mut self, index: u64, data: &[u8]) -> Result<(), StoreError> {
        let mut r = self.inner.lock().map_err(|_| StoreError::Io {
            message: "store lock poisoned".into(),
        })?;
        r.chunks.insert(index, data.to_vec());
        while r.chunks.len() as u64 > r.keep {
            if let Some((i, _)) = r.chunks.pop_first() {
                r.dropped_below = r.dropped_below.max(i + 1);
            }
        }
        Ok(())
    }
}

/// Writes the chunks it receives to `out` until the sending side closes, flushing whenever
/// the queue runs empty.
fn spawn_writer(
    mut out: Box<dyn Write + Send>,
    name: String,
) -> (
    mpsc::SyncSender<Vec<u8>>,
    std::thread::JoinHandle<Result<(), String>>,
) {
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(64);
    let handle = std::thread::spawn(move || {
        while let Ok(c) = rx.recv() {
            out.write_all(&c).map_err(|e| format!("{name}: {e}"))?;
            // Whatever else is queued goes in the same flush.
            while let Ok(c) = rx.try_recv() {
                out.write_all(&c).map_err(|e| format!("{name}: {e}"))?;
            }
            out.flush().map_err(|e| format!("{name}: {e}"))?;
        }
        out.flush().map_err(|e| format!("{name}: {e}"))
    });
    (tx, handle)
}

/// Runs `ppspp live`; returns the exit code.
pub fn run(args: &Args) -> u8 {
    let res = match &args.command {
        Command::Source(a) => source(a),
        Command::Get(a) => get(a),
    };
    match res {
        Ok(code) => code,
        Err(f) => f.report("live"),
    }
}

/// The signing key kept in `key` (hex of the secret; made from fresh randomness and
/// written there if the file does not exist), or a new key without a file.
pub(crate) fn load_key(
    key: Option<&std::path::Path>,
    algorithm: SignatureAlgorithm,
) -> Result<KeyPair, String> {
    let Some(path) = key else {
        return KeyPair::from_seed(algorithm, &os_seed()).map_err(|e| e.to_string());
    };
    if let Ok(text) = std::fs::read_to_string(path) {
        let text = text.trim();
        let (alg, hex) = text.split_once(':').ok_or("key file: expected ALG:HEX")?;
        let alg = SignatureAlgorithm(alg.parse().map_err(|e| format!("key file: {e}"))?);
        let secret = hex_bytes(hex).ok_or("key file: bad hex")?;
        return KeyPair::from_secret(alg, &secret).map_err(|e| format!("key file: {e}"));
    }
    let key = KeyPair::from_seed(algorithm, &os_seed()).map_err(|e| e.to_string())?;
    let hex: String = key
        .secret_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    write_private(path, &format!("{}:{hex}\n", key.algorithm().0))
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(key)
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// Reads `input` in chunks of `size` bytes on a thread of its own; the program takes them
/// from the channel between turns of the network loop. Ends at the end of the input.
pub(crate) fn reader(input: &str, size: usize) -> Result<mpsc::Receiver<Vec<u8>>, String> {
    let mut r: Box<dyn Read + Send> = if input == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(input).map_err(|e| format!("{input}: {e}"))?)
    };
    let (tx, rx) = mpsc::sync_channel(64);
    std::thread::spawn(move || {
        loop {
            let mut buf = vec![0u8; size];
            let mut got = 0;
            while got < size {
                match r.read(&mut buf[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            if got < size {
                if got > 0 {
                    eprintln!("end of input: the last {got} bytes (a partial chunk) are not sent");
                }
                return;
            }
            if tx.send(buf).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

fn source(a: &SourceArgs) -> Result<u8, Failure> {
    let params = a.stream.params()?;
    // The input first: nothing is announced for a stream that cannot be read.
    let rx = reader(&a.input, params.chunk_size as usize)?;
    let key = load_key(a.key.as_deref(), a.algorithm)?;
    let id = key.swarm_id();
    let mut publisher = match &a.publish {
        Some(dir) => Some(crate::cli::publish::Publisher::start(
            dir,
            params,
            ppspp_core::live::Signer::signature_len(&key),
        )?),
        None => None,
    };
    let store = RingStore::new(a.stream.keep + 2 * a.stream.chunks_per_sig);
    let mut cfg = DriverConfig::new();
    cfg.for_chunk_size(params.chunk_size);
    cfg.max_send_rate = a.max_rate;
    a.congestion.apply(&mut cfg);
    let mut driver =
        Driver::bind(a.listen, cfg).map_err(|e| format!("cannot listen on {}: {e}", a.listen))?;
    let local = driver.local_addr();
    let now = driver.now();
    let mut scfg = SwarmConfig::live_source(params, Arc::new(key));
    // The engine forgets what the store no longer holds (and announces the window, §7.9).
    scfg.live_discard_window(Some(a.stream.keep));
    let swarm = driver
        .endpoint_mut()
        .add_swarm(now, scfg, Box::new(store))
        .map_err(|e| e.to_string())?;
    interrupt::stop_on_ctrl_c(driver.stop_handle());
    // Announced until this function returns; dropping it sends LEAVE.
    let _announcing = Trackers::start(
        &a.trackers,
        &id.to_string(),
        ppspp_tracker::PeerMode::Seeder,
        local,
    )
    .map_err(Failure::usage)?;
    let mut link = crate::live_link::LiveLink::new(id.clone());
    link.chunk_size = params.chunk_size;
    link.chunks_per_sig = params.nchunks_per_sig;
    link.form = params.form;
    link.peers = vec![crate::cli::seed::advertised(local)];
    crate::cli::say!("swarm {id}");
    crate::cli::say!("listening {local}");
    crate::cli::say!("link {link}");
    if let Some(p) = &publisher {
        crate::cli::say!("publish {}", p.content_path().display());
    }
    let started = std::time::Instant::now();
    let mut pushed: u64 = 0;
    let mut input_open = true;
    while !driver.is_stopped() {
        driver
            .turn(Duration::from_millis(2))
            .map_err(|e| format!("network: {e}"))?;
        while let Some(ev) = driver.poll_event() {
            match ev {
                Event::PeerConnected { remote, .. } => eprintln!("peer {remote} connected"),
                Event::PeerClosed { remote, reason, .. }
                    if reason != ppspp_core::CloseReason::Duplicate =>
                {
                    eprintln!("peer {remote} left ({})", close_reason(reason));
                }
                _ => {}
            }
        }
        while input_open {
            // Pace the injection when a rate is set.
            let bytes = pushed * u64::from(params.chunk_size);
            if let Some(due) = a
                .rate
                .and_then(|r| bytes.saturating_mul(1_000_000).checked_div(r))
            {
                if started.elapsed() < Duration::from_micros(due) {
                    break;
                }
            }
            match rx.try_recv() {
                Ok(chunk) => {
                    let now = driver.now();
                    let signed = driver
                        .endpoint_mut()
                        .push_live_chunk(now, swarm, &chunk)
                        .map_err(|e| e.to_string())?;
                    pushed += 1;
                    if let Some(p) = &mut publisher {
                        p.chunk(&chunk)?;
                        if let Some(m) = signed {
                            p.signed(m, None)?;
                        }
                    }
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    input_open = false;
                    // Sign the last, short munro so peers can fetch the tail.
                    let now = driver.now();
                    let signed = driver
                        .endpoint_mut()
                        .finish_live(now, swarm)
                        .map_err(|e| e.to_string())?;
                    if let (Some(p), Some(m)) = (&mut publisher, signed) {
                        p.signed(m, Some(pushed))?;
                    }
                    eprintln!("end of input after {pushed} chunks; serving until interrupted");
                }
            }
        }
    }
    driver.shutdown().map_err(|e| format!("network: {e}"))?;
    if let Some(p) = &mut publisher {
        p.finish()?;
    }
    Ok(0)
}

fn get(a: &GetArgs) -> Result<u8, Failure> {
    let params = a.stream.params()?;
    let id = LiveSwarmId::from_hex(a.swarm.trim())
        .map_err(|e| Failure::usage(format!("swarm ID: {e}")))?;
    let v = verifier(&id).map_err(|e| Failure::usage(format!("swarm ID: {e}")))?;
    let swarm_hex = id.to_string();
    let store = RingStore::new(a.stream.keep + 2 * a.stream.chunks_per_sig);
    let mut cfg = DriverConfig::new();
    cfg.for_chunk_size(params.chunk_size);
    a.congestion.apply(&mut cfg);
    let mut driver =
        Driver::bind(a.listen, cfg).map_err(|e| format!("cannot listen on {}: {e}", a.listen))?;
    let now = driver.now();
    let mut scfg = SwarmConfig::live(id, params, v);
    scfg.live_max_age(a.max_age)
        .live_discard_window(Some(a.stream.keep))
        .live_origin_grace(a.origin_grace);
    let swarm = driver
        .endpoint_mut()
        .add_swarm(now, scfg, Box::new(store.clone()))
        .map_err(|e| e.to_string())?;
    for p in &a.peers {
        let now = driver.now();
        driver
            .endpoint_mut()
            .connect(now, swarm, *p)
            .map_err(|e| format!("{p}: {e}"))?;
    }
    let urls = a
        .origins
        .iter()
        .map(|u| crate::origin::OriginUrls::parse(u))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Failure::usage)?;
    let wake = driver.wake_handle();
    let now = driver.now();
    let mut origins =
        crate::cli::origins::Origins::start(driver.endpoint_mut(), now, swarm, &urls, move || {
            wake.wake()
        })?;
    // A live peer stays a LEECH for the tracker: the stream never completes.
    let trackers = Trackers::start(
        &a.trackers,
        &swarm_hex,
        ppspp_tracker::PeerMode::Leech,
        driver.local_addr(),
    )
    .map_err(Failure::usage)?;
    interrupt::stop_on_ctrl_c(driver.stop_handle());
    // The output last, so a failure to start leaves no file; a file this run created and
    // never wrote to is removed again.
    let created = a.output != "-" && !std::path::Path::new(&a.output).exists();
    let out: Box<dyn Write + Send> = if a.output == "-" {
        Box::new(std::io::stdout())
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(&a.output).map_err(|e| format!("{}: {e}", a.output))?,
        ))
    };
    // The output is written on a thread of its own, so a slow reader never holds up the
    // network loop: chunks wait in a short queue, and what does not fit waits in the store
    // (and is skipped once the store lets it go).
    let (tx, writer) = spawn_writer(out, a.output.clone());
    let deadline = a.duration.map(|d| std::time::Instant::now() + d);
    let mut next: Option<u64> = None;
    let mut written: u64 = 0;
    let mut failures = 0u64;
    let mut connected = false;
    let mut last_data = std::time::Instant::now();
    let mut stopped_why: Option<String> = None;
    loop {
        if driver.is_stopped() || deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            break;
        }
        if last_data.elapsed() >= a.timeout {
            let origin_errors = origins
                .as_ref()
                .map(|o| o.errors())
                .filter(|e| !e.is_empty())
                .map_or(String::new(), |e| format!(" (origin: {e})"));
            stopped_why = Some(if connected || origins.is_some() {
                format!("no chunk arrived for {}{origin_errors}", secs(a.timeout))
            } else {
                format!(
                    "no peer answered within {} (peers: {}); is the source running, with this \
                     swarm ID?",
                    secs(a.timeout),
                    a.peers
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
            break;
        }
        if a.chunks.is_some_and(|n| written >= n) {
            break;
        }
        driver
            .turn(Duration::from_millis(5))
            .map_err(|e| format!("network: {e}"))?;
        for p in crate::cli::reachable(&trackers.new_peers(), driver.local_addr()) {
            let now = driver.now();
            let _ = driver.endpoint_mut().connect(now, swarm, p);
        }
        if let Some(o) = &mut origins {
            let now = driver.now();
            for n in o.pump(driver.endpoint_mut(), now) {
                eprintln!("{n}");
            }
        }
        while let Some(ev) = driver.poll_event() {
            match ev {
                Event::IntegrityFailure { remote, error, .. } => {
                    failures += 1;
                    eprintln!("peer {remote} sent bad content ({error}); dropped it");
                }
                Event::PeerConnected { .. } => connected = true,
                Event::OriginIntegrityFailure { .. } | Event::OriginDisabled { .. } => {
                    failures += u64::from(matches!(ev, Event::OriginIntegrityFailure { .. }));
                    if let Some(line) = origins.as_ref().and_then(|o| o.describe(&ev)) {
                        eprintln!("warning: {line}");
                    }
                }
                Event::ChunksVerified { .. } => last_data = std::time::Instant::now(),
                Event::PeerClosed { remote, reason, .. }
                    if reason != ppspp_core::CloseReason::Duplicate =>
                {
                    eprintln!("peer {remote} left ({})", close_reason(reason));
                }
                _ => {}
            }
        }
        let Some(s) = driver.endpoint().swarm(swarm) else {
            break;
        };
        if next.is_none() {
            if let Some(t) = s.live_tune_in() {
                eprintln!("tune-in {t}");
                next = Some(t);
            }
        }
        let floor = s.live_floor().unwrap_or(0);
        // Write out, in order, what has verified.
        while let Some(n) = next {
            if a.chunks.is_some_and(|max| written >= max) {
                break;
            }
            let Some(c) = store.get(n) else {
                // Fell behind by more than the store holds (a slow reader of the output), or
                // the engine's discard window slid past it: it will never come; skip to what
                // is still there, as a player would. (A chunk merely not here yet, with later
                // ones already in, as answers of an origin come, is waited for.)
                let gone = store.dropped_below().max(floor);
                if gone > n {
                    let o = store.oldest().map_or(gone, |o| o.max(gone));
                    eprintln!("fell behind: skipped chunks {n}..{o}");
                    next = Some(o);
                    continue;
                }
                break;
            };
            match tx.try_send(c) {
                Ok(()) => {}
                Err(mpsc::TrySendError::Full(_)) => break,
                Err(mpsc::TrySendError::Disconnected(_)) => {
                    // The writer stopped on an error: it says which when joined.
                    next = None;
                    break;
                }
            }
            written += 1;
            next = Some(n + 1);
        }
        if next.is_none() && written > 0 {
            break;
        }
    }
    // With origins: bytes from peers / all bytes verified.
    let efficiency = origins
        .as_ref()
        .and_then(|_| driver.endpoint().swarm(swarm)?.peer_efficiency())
        .map_or(String::new(), |e| format!("; peer efficiency {e:.3}"));
    drop(tx);
    let write_result = writer
        .join()
        .unwrap_or_else(|_| Err("output writer panicked".into()));
    driver.shutdown().map_err(|e| format!("network: {e}"))?;
    write_result?;
    let interrupted = driver.is_stopped();
    eprintln!(
        "wrote {written} chunks ({} bytes){}{efficiency}",
        written * u64::from(params.chunk_size),
        if failures > 0 {
            format!("; {failures} integrity failure(s)")
        } else {
            String::new()
        }
    );
    if written == 0 && created {
        let _ = std::fs::remove_file(&a.output);
    }
    if let Some(why) = stopped_why {
        return Err(Failure::failed(format!("{why}; wrote {written} chunks")));
    }
    if interrupted {
        return Ok(crate::cli::EXIT_INTERRUPTED);
    }
    if written == 0 {
        return Err(Failure::failed(format!(
            "nothing to write: {}",
            if connected {
                "no chunk verified before the end"
            } else {
                "no peer answered"
            }
        )));
    }
    Ok(0)
}
