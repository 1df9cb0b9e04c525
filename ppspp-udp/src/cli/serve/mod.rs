//! `ppspp serve`: one long-running process, one UDP socket, many swarms (seeding and
//! downloading at once), an HTTP control API, an HTTP gateway that media players read while
//! the content downloads, and a web page.
//!
//! Command-line contract (other tools drive it; keep it stable): on stdout, one line
//! `listening <udp addr>`, one line `http http://<addr>/`, then for each swarm seeded a line
//! `swarm <hex> <name>` and a line `link <ppspp link>`; then it serves until SIGINT or
//! SIGTERM, on which it saves every download's resume state, closes every channel with a
//! closing handshake and exits 0.
//!
//! - `--seed FILE_OR_DIR` (repeatable): publish files (a directory's regular files).
//! - `--get LINK` (repeatable): download a swarm (kept and seeded once complete), or join a
//!   live stream from its live link (`live=1`; see [`crate::live_link`] and the `live`
//!   module), relaying it to other peers and serving it to gateway clients.
//! - `--live-keep N`: the chunks a live swarm keeps in memory.
//! - `--live-source FILE|-` (with `--live-key`, `--live-algorithm`, `--live-chunks-per-sig`,
//!   `--live-rate`, `--live-name`): inject a live stream from this process; its `swarm` and
//!   `link` lines follow the seeds'.
//! - `--state DIR`: remember every swarm in `DIR/swarms.json` and keep downloads in
//!   `DIR/data/`; a restart brings every swarm back, resuming downloads and without hashing
//!   unchanged seeds again (see the `book` module). Without it downloads go to a temporary
//!   directory removed on exit.
//!
//! HTTP (see the `http` module): `GET /` the page; `GET/POST /api/swarms`, `GET/DELETE
//! /api/swarms/<hex>` the control API (JSON); `GET`/`HEAD /<hex>` and `/<hex>/<name>` the
//! gateway, with `Range` support, which starts a download from the link parameters in its
//! query (`?peer=HOST:PORT&size=…&cs=…`) when the swarm is not known yet.

mod book;
mod content;
mod http;
mod live;
mod net;
mod playback;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ppspp_core::SwarmContent;
use ppspp_core::hash::HashAlgorithm;
use ppspp_core::wire::ChunkAddressing;

use crate::cli::{Failure, MAX_CHUNK_SIZE};
use crate::driver::DriverConfig;
use crate::link::{SwarmLink, parse_addressing};
use crate::store::seed_cache;
use crate::store::{DownloadState, FileStore, PART_SUFFIX, SEED_SUFFIX, STATE_SUFFIX, with_suffix};
use crate::tokio_driver::AsyncDriver;

use book::BookEntry;
use net::{Net, Prepared, PreparedSeed};

/// The UDP address used without `--listen`: IPv6 and IPv4 on one socket, or IPv4 only where
/// the host has no IPv6.
const DEFAULT_LISTEN: &str = "[::]:6778";

/// Arguments of `ppspp serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The UDP address (default `[::]:6778`, IPv6 and IPv4; `0.0.0.0:6778` where the host has
    /// no IPv6; port 0 picks a free port).
    #[arg(long, value_parser = ppspp_cli_args::address)]
    pub listen: Option<SocketAddr>,
    /// The HTTP address of the control API, the gateway and the page (no authentication:
    /// keep it on loopback unless the network is trusted).
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = ppspp_cli_args::address)]
    pub http: SocketAddr,
    /// A file to publish, or a directory whose regular files to publish (repeatable).
    #[arg(long = "seed", value_name = "FILE_OR_DIR")]
    pub seeds: Vec<PathBuf>,
    /// A swarm link to download (repeatable): `ppspp://HEX?cs=…&size=…&peer=HOST:PORT`, or a
    /// live stream's link to join: `ppspp://KEYHEX?live=1&cs=…&cps=…&peer=HOST:PORT`.
    #[arg(long = "get", value_name = "LINK")]
    pub gets: Vec<String>,
    /// Keep the swarm list and the downloads here; a restart resumes every swarm.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Chunks a live swarm keeps in memory to serve to peers and gateway clients (the live
    /// discard window, as `ppspp live --keep`; at least one munro).
    #[arg(long, default_value_t = live::DEFAULT_KEEP,
          value_parser = clap::value_parser!(u64).range(1..=1 << 24))]
    pub live_keep: u64,
    /// Inject a live stream read from this file (`-`: standard input), cut into
    /// `--chunk-size` chunks and signed, as `ppspp live source` does; prints its `swarm` and
    /// `link` lines.
    #[arg(long, value_name = "FILE")]
    pub live_source: Option<String>,
    /// The live source's signing key: read from this file if it exists, else made and
    /// written there (without it, a new key and swarm ID each run).
    #[arg(long, value_name = "FILE")]
    pub live_key: Option<PathBuf>,
    /// The signature algorithm of a new live source key: ecdsa-p256, ecdsa-p384, ed25519.
    #[arg(long, default_value = "ecdsa-p256", value_parser = crate::cli::live::parse_alg)]
    pub live_algorithm: ppspp_core::wire::SignatureAlgorithm,
    /// Chunks per signed munro of the live source (a power of two, at least 2).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(2..=65536))]
    pub live_chunks_per_sig: u64,
    /// Inject the live source at most this many bytes per second (suffixes k, M, G).
    #[arg(long, value_parser = ppspp_cli_args::rate)]
    pub live_rate: Option<u64>,
    /// A name for the live source's stream (gives the gateway its content type).
    #[arg(long, value_name = "NAME")]
    pub live_name: Option<String>,
    /// The chunk size of published files and of a live source, in bytes.
    #[arg(long, default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CHUNK_SIZE)))]
    pub chunk_size: u32,
    /// The congestion controller.
    #[command(flatten)]
    pub congestion: crate::cli::CongestionArgs,
    /// A PPSTP tracker (RFC 7846) to announce every swarm to (repeatable): `http://HOST:PORT/PATH`,
    /// as `ppspp tracker` prints it. The printed links carry it as `tracker=`; a download's
    /// link may name more.
    #[arg(long = "tracker", value_parser = crate::cli::tracker_client::check_url)]
    pub trackers: Vec<String>,
    /// Membership certificates for every static swarm (docs/membership.md).
    #[command(flatten)]
    pub membership: crate::cli::tracker_client::MembershipArgs,
    /// The Merkle hash function of published files (sha1, sha224, sha256, sha384, sha512).
    #[arg(long = "hash", default_value = "sha1")]
    pub hash: HashAlgorithm,
    /// The chunk addressing method of published files (chunk32, bin32, chunk64, bin64).
    #[arg(long, default_value = "chunk32", value_parser = parse_cam)]
    pub cam: ChunkAddressing,
}

fn parse_cam(s: &str) -> Result<ChunkAddressing, String> {
    parse_addressing(s)
        .ok_or_else(|| format!("unknown addressing {s:?} (chunk32, bin32, chunk64, bin64)"))
}

/// Runs `ppspp serve`; returns the exit code.
pub fn run(args: &Args) -> u8 {
    // Past a file size limit, writes fail with EFBIG (reported) instead of a silent SIGXFSZ.
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ppspp-http")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return Failure::failed(format!("cannot start: {e}")).report("serve"),
    };
    match rt.block_on(serve(args)) {
        Ok(()) => 0,
        Err(f) => f.report("serve"),
    }
}

/// Where downloads go, and whether it is ours to remove at exit.
struct DataDir {
    path: PathBuf,
    temporary: bool,
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

async fn serve(args: &Args) -> Result<(), Failure> {
    let seeds = crate::cli::seed::expand_files(&args.seeds)?;
    let mut gets = Vec::new();
    let mut lives = Vec::new();
    for g in &args.gets {
        if crate::live_link::is_live_link(g) {
            let link: crate::live_link::LiveLink = g
                .parse()
                .map_err(|e| Failure::usage(format!("bad --get link {g:?}: {e}")))?;
            lives.push((link, None));
            continue;
        }
        let link: SwarmLink = g
            .parse()
            .map_err(|e| Failure::usage(format!("bad --get link {g:?}: {e}")))?;
        check_link(&link).map_err(Failure::usage)?;
        gets.push(link);
    }
    let (data, book) = match &args.state {
        Some(dir) => {
            let data = dir.join("data");
            std::fs::create_dir_all(&data)
                .map_err(|e| crate::store::io_message("creating", &data, &e))?;
            let book = book::load(dir).map_err(Failure::failed)?;
            (
                DataDir {
                    path: data,
                    temporary: false,
                },
                book,
            )
        }
        None => {
            let path = std::env::temp_dir().join(format!("ppspp-serve-{}", std::process::id()));
            std::fs::create_dir_all(&path)
                .map_err(|e| crate::store::io_message("creating", &path, &e))?;
            (
                DataDir {
                    path,
                    temporary: true,
                },
                Vec::new(),
            )
        }
    };
    // The book writer: the network thread sends the swarm list whenever it changes.
    let (book_tx, mut book_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<BookEntry>>();
    let state_dir = args.state.clone();
    let writer = tokio::spawn(async move {
        while let Some(mut list) = book_rx.recv().await {
            while let Ok(newer) = book_rx.try_recv() {
                list = newer;
            }
            if let Some(dir) = state_dir.clone() {
                let r = tokio::task::spawn_blocking(move || book::save(&dir, list)).await;
                if let Ok(Err(e)) = r {
                    eprintln!("ppspp serve: could not save the swarm list: {e}");
                }
            }
        }
    });
    let (net, local, net_thread) = start_net(args, book_tx)?;
    let listener = tokio::net::TcpListener::bind(args.http)
        .await
        .map_err(|e| Failure::failed(format!("cannot listen on http {}: {e}", args.http)))?;
    let http_addr = listener
        .local_addr()
        .map_err(|e| Failure::failed(e.to_string()))?;
    crate::cli::say!("listening {local}");
    crate::cli::say!("http http://{http_addr}/");
    let app = Arc::new(http::App::new(
        net.clone(),
        data.path.clone(),
        args.live_keep,
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(http::serve(listener, app.clone(), stop_rx));

    let mut result = bring_up(args, &app, &seeds, &gets, lives, book).await;
    if result.is_ok() {
        result = live::start_source(args, &app).await;
    }
    if result.is_ok() {
        wait_for_signal().await;
    }
    // Clean shutdown: states saved and channels closed before the HTTP side goes, so every
    // open gateway response ends (cut short) instead of hanging.
    net.shutdown().await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(3), server).await;
    drop(app);
    drop(net);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    let _ = tokio::task::spawn_blocking(move || net_thread.join()).await;
    drop(data);
    result?;
    eprintln!("ppspp serve: stopped; state saved");
    Ok(())
}

fn start_net(
    args: &Args,
    book_tx: tokio::sync::mpsc::UnboundedSender<Vec<BookEntry>>,
) -> Result<(Net, SocketAddr, std::thread::JoinHandle<()>), Failure> {
    let explicit = args.listen;
    let chunk_size = args.chunk_size;
    let congestion = args.congestion;
    let bind = move || {
        let mut cfg = DriverConfig::new();
        cfg.for_chunk_size(chunk_size);
        congestion.apply(&mut cfg);
        match explicit {
            Some(a) => AsyncDriver::bind(a, cfg),
            None => {
                let v6: SocketAddr = DEFAULT_LISTEN.parse().expect("a valid address");
                AsyncDriver::bind(v6, cfg.clone()).or_else(|_| {
                    AsyncDriver::bind(SocketAddr::from(([0, 0, 0, 0], v6.port())), cfg)
                })
            }
        }
    };
    net::start(
        bind,
        book_tx,
        args.trackers.clone(),
        args.membership.policy(),
    )
    .map_err(|e| {
        Failure::failed(format!(
            "cannot listen on {}: {e}",
            explicit.map_or_else(|| DEFAULT_LISTEN.to_owned(), |a| a.to_string())
        ))
    })
}

/// Adds the swarms of the command line and of the state directory.
async fn bring_up(
    args: &Args,
    app: &Arc<http::App>,
    seeds: &[PathBuf],
    gets: &[SwarmLink],
    mut lives: Vec<(crate::live_link::LiveLink, Option<String>)>,
    book: Vec<BookEntry>,
) -> Result<(), Failure> {
    let mut wanted: Vec<(PathBuf, u32, HashAlgorithm, ChunkAddressing)> = seeds
        .iter()
        .map(|p| (p.clone(), args.chunk_size, args.hash, args.cam))
        .collect();
    let mut downloads: Vec<(SwarmLink, Option<String>)> =
        gets.iter().map(|l| (l.clone(), None)).collect();
    for e in book {
        match e {
            BookEntry::Seed {
                path,
                chunk_size,
                hash,
                cam,
            } => {
                if wanted.iter().any(|w| w.0 == path) {
                    continue;
                }
                match (hash.parse::<HashAlgorithm>(), parse_addressing(&cam)) {
                    (Ok(h), Some(c)) => wanted.push((path, chunk_size, h, c)),
                    _ => eprintln!(
                        "ppspp serve: ignoring a damaged swarm list entry for {}",
                        path.display()
                    ),
                }
            }
            BookEntry::Download { link, name } => match link.parse::<SwarmLink>() {
                Ok(l) if !downloads.iter().any(|d| d.0.swarm_id == l.swarm_id) => {
                    downloads.push((l, name));
                }
                Ok(_) => {}
                Err(e) => eprintln!("ppspp serve: ignoring a damaged swarm list entry: {e}"),
            },
            BookEntry::Live { link, name } => match link.parse::<crate::live_link::LiveLink>() {
                Ok(l) if !lives.iter().any(|d| d.0.swarm_id == l.swarm_id) => {
                    lives.push((l, name));
                }
                Ok(_) => {}
                Err(e) => eprintln!("ppspp serve: ignoring a damaged swarm list entry: {e}"),
            },
        }
    }
    let from_cli = seeds.len();
    for (i, (path, cs, hash, cam)) in wanted.into_iter().enumerate() {
        let p = path.clone();
        let prepared = tokio::task::spawn_blocking(move || prepare_seed(&p, cs, hash, cam)).await;
        let prepared = match prepared {
            Ok(Ok(s)) => s,
            Ok(Err(e)) if i < from_cli => return Err(Failure::failed(e)),
            Ok(Err(e)) => {
                eprintln!("ppspp serve: not seeding {} any more: {e}", path.display());
                continue;
            }
            Err(e) => return Err(Failure::failed(e.to_string())),
        };
        let name = prepared.name.clone().unwrap_or_default();
        let c = app
            .net
            .add_seed(prepared)
            .await
            .map_err(|net::AddError::Refused(e)| {
                Failure::failed(format!("{}: {e}", path.display()))
            })?;
        let link = app
            .net
            .list(Some(c.id))
            .await
            .into_iter()
            .next()
            .map(|s| s.link)
            .unwrap_or_default();
        crate::cli::say!("swarm {} {}", c.id, name);
        crate::cli::say!("link {link}");
    }
    for (link, name) in downloads {
        match app.open(link.clone(), name).await {
            Ok(c) => eprintln!("ppspp serve: swarm {} from {}", c.id, list_peers(&link)),
            Err(e) => eprintln!("ppspp serve: cannot start {}: {}", link.swarm_id, e.message),
        }
    }
    for (link, name) in lives {
        let (id, peers) = (link.swarm_id.clone(), link.peers.len());
        match live::open(app, link, name).await {
            Ok(_) => eprintln!("ppspp serve: live swarm {id} from {peers} peer(s)"),
            Err(e) => eprintln!("ppspp serve: cannot join {id}: {}", e.message),
        }
    }
    Ok(())
}

/// The sources a link names: its peers, origins and trackers.
fn list_peers(link: &SwarmLink) -> String {
    let mut v: Vec<String> = link.peers.iter().map(ToString::to_string).collect();
    v.extend(link.origins.iter().map(|o| format!("origin {o}")));
    v.extend(link.trackers.iter().map(|t| format!("tracker {t}")));
    if v.is_empty() {
        "no peer yet".into()
    } else {
        v.join(", ")
    }
}

/// Whether this program can download `link`: its chunk size fits a datagram, and its
/// origins and trackers are URLs it can use.
fn check_link(link: &SwarmLink) -> Result<(), String> {
    if link.chunk_size == 0 || link.chunk_size > MAX_CHUNK_SIZE {
        return Err(format!(
            "the link's chunk size {} is not in 1..={MAX_CHUNK_SIZE}",
            link.chunk_size
        ));
    }
    for o in &link.origins {
        crate::origin::OriginUrls::parse(o)?;
    }
    for t in &link.trackers {
        crate::cli::tracker_client::check_url(t)?;
    }
    Ok(())
}

/// Hashes (or loads the cached tree of) a file to publish. Blocking.
fn prepare_seed(
    path: &Path,
    cs: u32,
    hash: HashAlgorithm,
    cam: ChunkAddressing,
) -> Result<PreparedSeed, String> {
    let seed = seed_cache::load_or_hash(path, hash, cs, true)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(w) = &seed.cache_warning {
        eprintln!("ppspp serve: warning: {}: {w}", path.display());
    }
    let tree = Arc::new(seed.tree);
    let store = FileStore::open_seed(path, tree.chunk_size(), tree.content_len())?;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    Ok(PreparedSeed {
        name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        tree,
        store,
        addressing: cam,
        book: BookEntry::Seed {
            path: abs,
            chunk_size: cs,
            hash: hash.name().to_owned(),
            cam: crate::link::addressing_name(cam).to_owned(),
        },
        files: Vec::new(),
    })
}

/// A download's swarm, ready to add: a completed one (its file there, no resume state) as a
/// seed, else a download resuming what its state proves. Blocking (disk).
pub(crate) enum Ready {
    Seed(PreparedSeed),
    Download(Prepared),
}

pub(crate) fn prepare_download(
    dir: &Path,
    link: SwarmLink,
    name: Option<String>,
) -> Result<Ready, String> {
    let out = dir.join(link.swarm_id.to_string());
    let part = with_suffix(&out, PART_SUFFIX);
    let state_path = with_suffix(&out, STATE_SUFFIX);
    let files = vec![
        out.clone(),
        part.clone(),
        state_path.clone(),
        with_suffix(&out, SEED_SUFFIX),
    ];
    let mut book_link = link.clone();
    book_link.explicit_chunk_size = true;
    let book = BookEntry::Download {
        link: book_link.to_string(),
        name: name.clone(),
    };
    if out.exists() && !state_path.exists() {
        let seed = seed_cache::load_or_hash(&out, link.hash, link.chunk_size, true)?;
        if seed.tree.root_hash() != link.swarm_id {
            return Err(format!(
                "{} is not this swarm's content; remove it to download again",
                out.display()
            ));
        }
        let tree = Arc::new(seed.tree);
        let store = FileStore::open_seed(&out, tree.chunk_size(), tree.content_len())?;
        return Ok(Ready::Seed(PreparedSeed {
            name,
            tree,
            store,
            addressing: link.addressing,
            book,
            files,
        }));
    }
    let state = match DownloadState::load(&state_path) {
        Ok(Some(st))
            if st.swarm_id == link.swarm_id
                && st.chunk_size == link.chunk_size
                && st.hash == link.hash
                && part.exists() =>
        {
            Some(st)
        }
        Ok(_) => None,
        Err(e) => {
            eprintln!(
                "ppspp serve: ignoring {}: {e}; starting over",
                state_path.display()
            );
            None
        }
    };
    let store = FileStore::create_download(&part, &out, link.chunk_size, state.is_some())?;
    let mut size = link.size;
    let content = match &state {
        Some(st) => {
            let (verified, _) = crate::cli::get::recheck(st, &store);
            size = size.or(st.size);
            let end = verified
                .last()
                .map_or(0, |r| r.end * u64::from(link.chunk_size));
            store.set_resumed_end(size.map_or(end, |s| end.min(s)));
            SwarmContent::Partial {
                size,
                verified,
                hashes: st.hashes.clone(),
            }
        }
        None => SwarmContent::Empty { size },
    };
    if let Some(s) = size {
        store.preallocate(s)?;
    }
    let _ = book;
    Ok(Ready::Download(Prepared {
        link,
        name,
        store,
        content,
        state_path,
        files,
    }))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without signal handling the default action (exit) still applies.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}
