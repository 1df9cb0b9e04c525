//! `ppspp tracker --listen ADDR`: a PPSTP (RFC 7846) tracker over HTTP.
//!
//! Prints one line on stdout, `tracker http://<addr>/<path>`: the URL peers give to
//! `--tracker` (a wildcard listen address is printed as loopback, like `ppspp seed`'s
//! links). Serves until SIGINT or SIGTERM, then exits 0.
//!
//! - `POST /<path>`: a PPSTP request (CONNECT, FIND, STAT_REPORT) in, the response out, as
//!   `application/ppsp-tracker+json`. The HTTP status mirrors the PPSTP error code (200,
//!   400 for 01 and 02, 403 for 03, 503 for 05); the body always carries it.
//! - `GET /<path>/state`: the tracker's state as JSON (swarms, members, counters), to
//!   loopback clients only (it names every peer).
//!
//! The protocol logic, limits and expiry are [`ppspp_tracker::Tracker`]'s; this module only
//! carries HTTP to it. See `docs/tracker.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{get, post};
use ppspp_tracker::ca::{Authority, Issuing};
use ppspp_tracker::proto::{MAX_BODY, MEDIA_TYPE};
use ppspp_tracker::{ErrorCode, Limits, Response, Tracker};

use crate::cli::Failure;

/// Arguments of `ppspp tracker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The TCP address to serve HTTP on (port 0 picks a free port).
    #[arg(long, default_value = "0.0.0.0:6969", value_parser = ppspp_cli_args::address)]
    pub listen: SocketAddr,
    /// The URL path of the tracker (letters, digits, `-`, `_`, `.`, `/`).
    #[arg(long, default_value = "ppstp", value_parser = url_path)]
    pub path: String,
    /// Forget a peer this long after its last request (seconds, or with a unit: 2m).
    #[arg(long, default_value = "120", value_parser = ppspp_cli_args::duration)]
    pub peer_timeout: Duration,
    /// The most registered peers.
    #[arg(long, default_value_t = 100_000)]
    pub max_peers: usize,
    /// The most peers in one swarm.
    #[arg(long, default_value_t = 20_000)]
    pub max_swarm_peers: usize,
    /// The most peers registered from one source (an IPv4 address or an IPv6 /64).
    #[arg(long, default_value_t = 256)]
    pub max_source_peers: usize,
    /// Requests per second one source may keep sending.
    #[arg(long, default_value_t = 32)]
    pub rate: u32,
    /// Requests one source may send in a burst.
    #[arg(long, default_value_t = 64)]
    pub burst: u32,
    /// Take the addresses peers advertise as given (behind a proxy); by default only the
    /// address a request comes from is listed, so nobody can point a swarm at a third host.
    #[arg(long)]
    pub trust_advertised: bool,
    /// Act as certification authority (docs/membership.md) with the Ed25519 key in this file
    /// (PKCS#8 PEM), created if missing: answers carry each peer's membership certificate,
    /// and a second line `tracker-key HEX` gives the public key peers pass to --tracker-key.
    #[arg(long, value_name = "FILE")]
    pub ca_key: Option<PathBuf>,
    /// How long the membership certificates last (seconds, or with a unit: 30m).
    #[arg(long, default_value = "1h", value_parser = ppspp_cli_args::duration)]
    pub cert_lifetime: Duration,
    /// Print nothing but the tracker line (and the tracker-key line).
    #[arg(long, short)]
    pub quiet: bool,
}

/// Loads the CA key from `path`, or creates it there (readable by its owner only).
pub fn load_or_create_ca(path: &Path) -> Result<(Authority, bool), String> {
    match std::fs::read_to_string(path) {
        Ok(pem) => Authority::from_pem(&pem)
            .map(|a| (a, false))
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let a = Authority::generate().map_err(|e| format!("cannot create a CA key: {e}"))?;
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            f.write_all(a.to_pem().as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok((a, true))
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn url_path(s: &str) -> Result<String, String> {
    let p = s.trim_matches('/');
    let ok = !p.is_empty()
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !p
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if ok {
        Ok(p.to_owned())
    } else {
        Err(format!(
            "{s:?}: a path of letters, digits, '-', '_', '.' and '/' (like ppstp)"
        ))
    }
}

impl Args {
    /// The tracker limits these arguments ask for.
    pub fn limits(&self) -> Limits {
        Limits {
            track_timeout: self.peer_timeout,
            max_peers: self.max_peers,
            max_peers_per_swarm: self.max_swarm_peers,
            max_peers_per_source: self.max_source_peers,
            rate_per_sec: self.rate,
            rate_burst: self.burst,
            trust_advertised: self.trust_advertised,
            ..Limits::default()
        }
    }
}

/// The state the request handlers share.
struct Shared {
    tracker: Mutex<Tracker>,
    started: Instant,
}

impl Shared {
    fn now(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Runs `ppspp tracker`; returns the exit code.
pub fn run(args: &Args) -> u8 {
    match serve(args) {
        Ok(()) => 0,
        Err(f) => f.report("tracker"),
    }
}

fn serve(args: &Args) -> Result<(), Failure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(serve_async(args))
}

/// The tracker's routes on `path` (without slashes), over `tracker`.
pub fn router(path: &str, tracker: Tracker) -> Router {
    let shared = Arc::new(Shared {
        tracker: Mutex::new(tracker),
        started: Instant::now(),
    });
    let expiring = Arc::downgrade(&shared);
    // Sweep expired registrations even when no request comes (requests sweep too).
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let Some(s) = expiring.upgrade() else { break };
            if let Ok(mut t) = s.tracker.lock() {
                t.expire(s.now());
            }
        }
    });
    Router::new()
        .route(&format!("/{path}"), post(announce))
        .route(&format!("/{path}/state"), get(state))
        .with_state(shared)
}

async fn serve_async(args: &Args) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let mut tracker = Tracker::new(args.limits());
    let mut key_line = None;
    if let Some(path) = &args.ca_key {
        let (authority, created) = load_or_create_ca(path)?;
        if created && !args.quiet {
            eprintln!("created the CA key {}", path.display());
        }
        key_line = Some(authority.public_key_hex());
        // The tracker's time origin is the router's start, just below.
        let unix_at_zero = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        tracker.set_issuing(Some(Issuing {
            authority,
            lifetime_secs: args.cert_lifetime.as_secs().max(1),
            unix_at_zero,
        }));
    }
    let app = router(&args.path, tracker);
    let url = format!(
        "http://{}/{}",
        crate::cli::seed::advertised(local),
        args.path
    );
    crate::cli::say!("tracker {url}");
    if let Some(k) = key_line {
        crate::cli::say!("tracker-key {k}");
    }
    if !args.quiet {
        eprintln!(
            "serving PPSTP on {local}; peers forgotten {} after their last request",
            crate::cli::secs(args.peer_timeout)
        );
    }
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop_signal())
    .await
    .map_err(|e| Failure::failed(format!("serving {local}: {e}")))?;
    if !args.quiet {
        eprintln!("stopped");
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn ppstp(resp: &Response) -> HttpResponse {
    let status = StatusCode::from_u16(resp.error_code.http_status())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, MEDIA_TYPE)], resp.encode()).into_response()
}

async fn announce(
    State(s): State<Arc<Shared>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    body: Body,
) -> HttpResponse {
    // Read at most MAX_BODY bytes: anything longer is a PPSTP bad request, not a bare 413.
    let read = axum::body::to_bytes(body, MAX_BODY).await;
    let now = s.now();
    let Ok(bytes) = read else {
        let resp = match s.tracker.lock() {
            Ok(mut t) => t.reject_oversized(now, from.ip()),
            Err(_) => Response::error(String::new(), ErrorCode::InternalError),
        };
        return ppstp(&resp);
    };
    let resp = match s.tracker.lock() {
        Ok(mut t) => t.handle(now, from.ip(), &bytes),
        Err(_) => Response::error(String::new(), ErrorCode::InternalError),
    };
    tracing::debug!(%from, code = resp.error_code.code(), "PPSTP request");
    ppstp(&resp)
}

async fn state(
    State(s): State<Arc<Shared>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
) -> HttpResponse {
    let loopback = match from.ip() {
        std::net::IpAddr::V4(a) => a.is_loopback(),
        std::net::IpAddr::V6(a) => {
            a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    if !loopback {
        return (
            StatusCode::FORBIDDEN,
            "the state is served to loopback clients only\n",
        )
            .into_response();
    }
    let snap = match s.tracker.lock() {
        Ok(mut t) => {
            t.expire(s.now());
            t.snapshot()
        }
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    axum::Json(snap).into_response()
}
