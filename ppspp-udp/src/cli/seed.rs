//! `ppspp seed FILE…`: publish files (or every file of a directory) and serve them until
//! interrupted.
//!
//! Prints on stdout, one per line: `swarm <hex>`, `listening <addr>` and
//! `link <ppspp://…>` (a [swarm link](crate::link) a downloader can pass to `ppspp get`
//! as is); with several files, one `swarm` and one `link` line per file in the order given
//! (a directory's files in name order), and `listening` once, after the first `swarm`.
//! Every file is its own swarm on the one UDP socket. Peers connecting and leaving are noted
//! on stderr. Ctrl-C closes every channel with a closing handshake, prints what was served to
//! each peer (bytes, rates, efficiency) on stderr and exits 0 (serving until interrupted is
//! the normal end); a second Ctrl-C exits at once.
//!
//! The file's Merkle tree is cached beside it in `FILE.ppspp-seed` (leaf hashes, size,
//! modification time), so a restart does not hash unchanged content again; a changed file
//! is hashed again. If the file changes while it is served, the swarm stops serving and the
//! program exits 1 saying so.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ppspp_core::hash::HashAlgorithm;
use ppspp_core::{Event, SwarmConfig};

use crate::cli::summary::{PeerBook, peer_table};
use crate::cli::tracker_client::Trackers;
use crate::cli::{Failure, MAX_CHUNK_SIZE, close_reason, interrupt};
use crate::driver::{Driver, DriverConfig};
use crate::link::{SwarmLink, parse_addressing};
use crate::store::FileStore;
use crate::store::seed_cache::{self, TreeSource};

/// Arguments of `ppspp seed`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The files to publish; a directory publishes each regular file in it (not its
    /// subdirectories, nor ppspp's own `.ppspp-*` files).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The UDP address to listen on (port 0 picks a free port; `[::]:PORT` for IPv6 and
    /// IPv4).
    #[arg(long, default_value = "0.0.0.0:6778", value_parser = ppspp_cli_args::address)]
    pub listen: SocketAddr,
    /// The chunk size in bytes.
    #[arg(long, default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CHUNK_SIZE)))]
    pub chunk_size: u32,
    /// The Merkle hash function: sha1 (the default, for libswift compatibility), sha224,
    /// sha256, sha384 or sha512. Downloaders infer it from the swarm ID's length.
    #[arg(long = "hash", default_value = "sha1")]
    pub hash: HashAlgorithm,
    /// The chunk addressing method: chunk32 (default, what libswift speaks), bin32, chunk64
    /// or bin64.
    #[arg(long, default_value = "chunk32", value_parser = parse_cam)]
    pub cam: ppspp_core::wire::ChunkAddressing,
    /// Do not read or write the tree cache FILE.ppspp-seed (always hash the file).
    #[arg(long)]
    pub no_cache: bool,
    /// Print nothing but the swarm, listening and link lines.
    #[arg(long, short)]
    pub quiet: bool,
    /// Limit the upload to this many bytes per second (suffixes k, M, G: 500k, 2M).
    #[arg(long, value_parser = ppspp_cli_args::rate)]
    pub max_rate: Option<u64>,
    /// The congestion controller.
    #[command(flatten)]
    pub congestion: crate::cli::CongestionArgs,
    /// A PPSTP tracker to announce every swarm to (repeatable): `http://HOST:PORT/PATH`, as
    /// `ppspp tracker` prints it. The links carry it as `tracker=`.
    #[arg(long = "tracker", value_parser = crate::cli::tracker_client::check_url)]
    pub trackers: Vec<String>,
    /// Membership certificates.
    #[command(flatten)]
    pub membership: crate::cli::tracker_client::MembershipArgs,
}

fn parse_cam(s: &str) -> Result<ppspp_core::wire::ChunkAddressing, String> {
    parse_addressing(s)
        .ok_or_else(|| format!("unknown addressing {s:?} (chunk32, bin32, chunk64, bin64)"))
}

/// The address to put in a link for a socket bound to `local`: a wildcard becomes loopback.
pub fn advertised(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

/// Runs `ppspp seed`; returns the exit code.
pub fn run(args: &Args) -> u8 {
    match serve(args) {
        Ok(code) => code,
        Err(f) => f.report("seed"),
    }
}

/// The files named on the command line, directories expanded (sorted by name).
fn files(args: &Args) -> Result<Vec<PathBuf>, Failure> {
    expand_files(&args.files)
}

/// Files and directories as the files to publish: a directory's regular files (not ppspp's
/// own `.ppspp-*` files) in name order.
pub(crate) fn expand_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    let mut out = Vec::new();
    for f in paths {
        if !f.is_dir() {
            out.push(f.clone());
            continue;
        }
        let rd = std::fs::read_dir(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let mut inside: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| {
                !p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.contains(".ppspp-"))
            })
            .collect();
        inside.sort();
        if inside.is_empty() {
            return Err(Failure::failed(format!(
                "{}: no file to publish",
                f.display()
            )));
        }
        out.extend(inside);
    }
    Ok(out)
}

/// Loads (or hashes) one file's tree, saying which on stderr.
fn tree_of(args: &Args, file: &Path) -> Result<Arc<ppspp_core::merkle::MerkleTree>, String> {
    let started = std::time::Instant::now();
    let seed = seed_cache::load_or_hash(file, args.hash, args.chunk_size, !args.no_cache)?;
    if !args.quiet {
        match seed.source {
            TreeSource::Cache => eprintln!(
                "tree of {} loaded from {}",
                file.display(),
                seed_cache::cache_path(file).display()
            ),
            TreeSource::Hashed => eprintln!(
                "hashed {} ({} bytes) in {:.2} s",
                file.display(),
                seed.tree.content_len(),
                started.elapsed().as_secs_f64()
            ),
        }
        if let Some(w) = &seed.cache_warning {
            eprintln!("warning: {w}");
        }
    }
    Ok(Arc::new(seed.tree))
}

fn serve(args: &Args) -> Result<u8, Failure> {
    let files = files(args)?;
    let mut trees = Vec::with_capacity(files.len());
    let mut stores = Vec::with_capacity(files.len());
    for f in &files {
        let tree = tree_of(args, f).map_err(|e| format!("{}: {e}", f.display()))?;
        stores.push(FileStore::open_seed(
            f,
            tree.chunk_size(),
            tree.content_len(),
        )?);
        trees.push(tree);
    }
    let mut cfg = DriverConfig::new();
    cfg.max_send_rate = args.max_rate;
    args.congestion.apply(&mut cfg);
    cfg.for_chunk_size(args.chunk_size);
    let mut driver = Driver::bind(args.listen, cfg)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = driver.local_addr();
    // Before the lines a supervisor waits for, so an early Ctrl-C is handled too.
    interrupt::stop_on_ctrl_c(driver.stop_handle());
    let mut handles = Vec::with_capacity(trees.len());
    // Announcing until this function returns; dropping them sends LEAVE.
    let mut announcing = Vec::with_capacity(trees.len());
    for (i, (tree, store)) in trees.iter().zip(&stores).enumerate() {
        let mut scfg = SwarmConfig::seed(tree.clone());
        scfg.addressing(args.cam);
        scfg.membership(args.membership.policy());
        let now = driver.now();
        let h = driver
            .endpoint_mut()
            .add_swarm(now, scfg, Box::new(store.clone()))
            .map_err(|e| format!("{}: {e}", files[i].display()))?;
        handles.push(h);
        let mut link = SwarmLink::new(tree.root_hash()).map_err(|e| e.to_string())?;
        link.chunk_size = tree.chunk_size();
        link.addressing = args.cam;
        link.size = Some(tree.content_len());
        link.peers.push(advertised(local));
        link.trackers.clone_from(&args.trackers);
        announcing.push(
            Trackers::start(
                &args.trackers,
                &tree.root_hash().to_string(),
                ppspp_tracker::PeerMode::Seeder,
                local,
            )
            .map_err(Failure::usage)?,
        );
        crate::cli::say!("swarm {}", tree.root_hash());
        if i == 0 {
            crate::cli::say!("listening {local}");
        }
        crate::cli::say!("link {link}");
    }
    if !args.quiet && local.ip().is_unspecified() {
        eprintln!(
            "(the link names {}; other hosts use this host's address with port {})",
            advertised(local).ip(),
            local.port()
        );
    }
    let quiet = args.quiet;
    let mut book = PeerBook::default();
    let mut trace = crate::cli::trace::StatsTrace::from_env();
    let outcome = loop {
        // Wake at least twice a second to read the peers' counters: a closed channel's are
        // gone by the time its PeerClosed arrives.
        let refresh_at = std::time::Instant::now() + Duration::from_millis(500);
        let deadline = Some(trace.deadline().map_or(refresh_at, |t| t.min(refresh_at)));
        let outcome = driver
            .run_until(deadline, |_, ev| {
                match ev {
                    Event::PeerConnected { remote, .. } => {
                        book.connected(remote);
                        if !quiet {
                            eprintln!("peer {remote} connected");
                        }
                    }
                    // The peer stays connected through its other channel.
                    Event::PeerClosed {
                        reason: ppspp_core::CloseReason::Duplicate,
                        ..
                    } => {}
                    Event::PeerClosed { remote, reason, .. } => {
                        book.closed(remote);
                        if !quiet {
                            eprintln!("peer {remote} left ({})", close_reason(reason));
                        }
                    }
                    Event::StoreFailure { swarm, error } => {
                        return ControlFlow::Break((swarm, error.to_string()));
                    }
                    _ => {}
                }
                ControlFlow::Continue(())
            })
            .map_err(|e| format!("network: {e}"))?;
        if outcome.is_some() || driver.is_stopped() {
            break outcome;
        }
        for h in &handles {
            book.refresh(&driver, *h);
        }
        for (h, t) in handles.iter().zip(&announcing) {
            if let Some(c) = t.new_cert() {
                let now = driver.now();
                driver
                    .endpoint_mut()
                    .set_membership_cert(now, *h, ppspp_core::Bytes::from(c));
            }
        }
        trace.tick(&mut driver, "seed");
    };
    let channels: usize = driver
        .endpoint()
        .swarms()
        .filter_map(|s| driver.endpoint().swarm(s))
        .map(|s| s.peers().count())
        .sum();
    for h in &handles {
        book.refresh(&driver, *h);
    }
    driver.shutdown().map_err(|e| format!("network: {e}"))?;
    // LEAVE every swarm before saying what was served.
    drop(announcing);
    if !quiet {
        let peers = book.totals();
        let up: u64 = peers.iter().map(|p| p.uploaded).sum();
        eprintln!(
            "served {} to {} peer(s)",
            crate::cli::progress::human_bytes(up),
            peers.len()
        );
        for l in peer_table(&peers) {
            eprintln!("{l}");
        }
    }
    match outcome {
        Some((swarm, failure)) => {
            // Give the closing handshakes a moment on the wire before exiting.
            std::thread::sleep(Duration::from_millis(20));
            let store = handles
                .iter()
                .position(|&h| h == swarm)
                .and_then(|i| stores.get(i));
            Err(Failure::failed(
                store.and_then(FileStore::failure).unwrap_or(failure),
            ))
        }
        None => {
            if !quiet {
                eprintln!("interrupted; closed {channels} channel(s)");
            }
            Ok(0)
        }
    }
}
