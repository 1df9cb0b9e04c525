//! `ppspp seed FILE`: publish a file and serve it until interrupted.
//!
//! Prints on stdout, one per line: `swarm <hex>`, `listening <addr>` and
//! `link <ppspp://…>` (a [swarm link](crate::link) a downloader can pass to `ppspp get`
//! as is). Peers connecting and leaving are noted on stderr. Ctrl-C closes every channel
//! with a closing handshake and exits 0; a second Ctrl-C exits at once.
//!
//! The file's Merkle tree is cached beside it in `FILE.ppspp-seed` (leaf hashes, size,
//! modification time), so a restart does not hash unchanged content again; a changed file
//! is hashed again. If the file changes while it is served, the swarm stops serving and the
//! program exits 1 saying so.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ppspp_core::hash::HashAlgorithm;
use ppspp_core::{Event, SwarmConfig};

use crate::cli::interrupt;
use crate::driver::{Driver, DriverConfig};
use crate::link::{SwarmLink, parse_addressing};
use crate::store::FileStore;
use crate::store::seed_cache::{self, TreeSource};

/// Arguments of `ppspp seed`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to publish.
    pub file: PathBuf,
    /// The UDP address to listen on (port 0 picks a free port; `[::]:PORT` for IPv6 and
    /// IPv4).
    #[arg(long, default_value = "0.0.0.0:6778")]
    pub listen: SocketAddr,
    /// The chunk size in bytes.
    #[arg(long, default_value_t = 1024)]
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
    /// Limit the upload to this many bytes per second (testing aid).
    #[arg(long, hide = true)]
    pub max_rate: Option<u64>,
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
        Err(e) => {
            eprintln!("ppspp seed: {e}");
            1
        }
    }
}

fn serve(args: &Args) -> Result<u8, String> {
    let started = std::time::Instant::now();
    let seed = seed_cache::load_or_hash(&args.file, args.hash, args.chunk_size, !args.no_cache)?;
    if !args.quiet {
        match seed.source {
            TreeSource::Cache => eprintln!(
                "tree of {} loaded from {}",
                args.file.display(),
                seed_cache::cache_path(&args.file).display()
            ),
            TreeSource::Hashed => eprintln!(
                "hashed {} ({} bytes) in {:.2} s",
                args.file.display(),
                seed.tree.content_len(),
                started.elapsed().as_secs_f64()
            ),
        }
        if let Some(w) = &seed.cache_warning {
            eprintln!("warning: {w}");
        }
    }
    let tree = Arc::new(seed.tree);
    let store = FileStore::open_seed(&args.file, tree.chunk_size(), tree.content_len())?;
    let mut cfg = DriverConfig::new();
    cfg.max_send_rate = args.max_rate;
    cfg.for_chunk_size(tree.chunk_size());
    let mut driver = Driver::bind(args.listen, cfg)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = driver.local_addr();
    let mut scfg = SwarmConfig::seed(tree.clone());
    scfg.addressing(args.cam);
    let now = driver.now();
    let swarm = driver
        .endpoint_mut()
        .add_swarm(now, scfg, Box::new(store.clone()))
        .map_err(|e| e.to_string())?;
    let mut link = SwarmLink::new(tree.root_hash()).map_err(|e| e.to_string())?;
    link.chunk_size = tree.chunk_size();
    link.addressing = args.cam;
    link.size = Some(tree.content_len());
    link.peers.push(advertised(local));
    // Before the lines a supervisor waits for, so an early Ctrl-C is handled too.
    interrupt::stop_on_ctrl_c(driver.stop_handle());
    crate::cli::say!("swarm {}", tree.root_hash());
    crate::cli::say!("listening {local}");
    crate::cli::say!("link {link}");
    if !args.quiet && local.ip().is_unspecified() {
        eprintln!(
            "(the link names {}; other hosts use this host's address with port {})",
            advertised(local).ip(),
            local.port()
        );
    }
    let quiet = args.quiet;
    let mut trace = crate::cli::trace::StatsTrace::from_env();
    let outcome = loop {
        let deadline = trace.deadline();
        let outcome = driver
            .run_until(deadline, |_, ev| {
                match ev {
                    Event::PeerConnected { remote, .. } if !quiet => {
                        eprintln!("peer {remote} connected")
                    }
                    Event::PeerClosed { remote, reason, .. } if !quiet => {
                        eprintln!("peer {remote} left ({reason:?})");
                    }
                    Event::StoreFailure { swarm: s, error } if s == swarm => {
                        return ControlFlow::Break(error.to_string());
                    }
                    _ => {}
                }
                ControlFlow::Continue(())
            })
            .map_err(|e| format!("network: {e}"))?;
        if outcome.is_some() || driver.is_stopped() {
            break outcome;
        }
        trace.tick(&mut driver, "seed");
    };
    let channels = driver
        .endpoint()
        .swarm(swarm)
        .map_or(0, |s| s.peers().count());
    driver.shutdown().map_err(|e| format!("network: {e}"))?;
    match outcome {
        Some(failure) => {
            // Give the closing handshakes a moment on the wire before exiting.
            std::thread::sleep(Duration::from_millis(20));
            Err(store.failure().unwrap_or(failure))
        }
        None => {
            if !quiet {
                eprintln!("interrupted; closed {channels} channel(s)");
            }
            Ok(0)
        }
    }
}
