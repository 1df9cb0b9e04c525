//! HTTP origins: the byte-range GETs the engine asks for ([`ppspp_core::OriginFetch`]),
//! performed off the network thread.
//!
//! The engine decides what to fetch and checks every byte it gets; this module only talks
//! HTTP. [`OriginClient`] owns a small tokio runtime (one worker thread) and one
//! [`reqwest`] client (hyper underneath: HTTP/1.1, and HTTP/2 over TLS by ALPN; rustls with the
//! platform's root certificates; pooled, reused connections). [`OriginClient::submit`] starts
//! a fetch and returns at once; the answer comes back through [`OriginClient::try_recv`],
//! and a wake callback tells the network loop to look.
//!
//! What can go wrong, and what becomes of it (each fetch is answered exactly once):
//!
//! | server does | result |
//! |---|---|
//! | cannot be reached, TLS fails | retried, then [`OriginFailure::Unreachable`] |
//! | no complete answer within the timeout (a slow server) | retried, then [`OriginFailure::Timeout`] |
//! | 408, 429, 5xx | retried, then [`OriginFailure::Status`] (the engine backs off) |
//! | other 4xx (404: no such file) | [`OriginFailure::Status`] at once (the engine disables the origin) |
//! | 206 with a `Content-Range` naming other bytes | [`OriginFailure::BadBody`] |
//! | a body shorter (or longer) than announced or asked for | [`OriginFailure::BadBody`] |
//! | 200 with the whole file (`Range` ignored) | the bytes asked for are cut out of the stream, which is then dropped; counted in [`ClientStats::range_ignored`] |
//!
//! Retries: up to [`ClientConfig::retries`] more attempts, after 200 ms, then 400 ms, ….

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use ppspp_core::{OriginFailure, OriginFetch, OriginHandle, OriginResource};
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::{StatusCode, Url};

/// Settings of the HTTP client.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Connection set-up timeout.
    pub connect_timeout: Duration,
    /// Time allowed for any answer, plus [`ClientConfig::min_rate`] for its bytes.
    pub base_timeout: Duration,
    /// The slowest delivery tolerated, bytes per second: a fetch of `n` bytes may take
    /// `base_timeout + n / min_rate`.
    pub min_rate: u64,
    /// Attempts after the first for transient failures.
    pub retries: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            base_timeout: Duration::from_secs(10),
            min_rate: 64 * 1024,
            retries: 2,
        }
    }
}

/// Counters of the client, shared with its worker.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// HTTP requests sent (retries included).
    pub requests: AtomicU64,
    /// Body bytes kept (what the engine was handed).
    pub bytes: AtomicU64,
    /// Answers that ignored `Range` (a 200 with the whole file).
    pub range_ignored: AtomicU64,
    /// Attempts made again after a transient failure.
    pub retries: AtomicU64,
}

/// Where an origin's two files are.
#[derive(Clone, Debug)]
pub struct OriginUrls {
    /// The content.
    pub content: Url,
    /// Its tree sidecar (by convention the content's URL with `.mhash` appended).
    pub tree: Url,
    /// For a live stream, its munro log (the content's URL with `.munros` appended; see
    /// [`ppspp_core::live::MunroLogHeader`]).
    pub munros: Url,
}

impl OriginUrls {
    /// The URLs of an origin given as `url` (http or https): the content there, its sidecar
    /// at `url` + `.mhash`, a live stream's munro log at `url` + `.munros`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let content = Url::parse(url).map_err(|e| format!("bad origin URL {url:?}: {e}"))?;
        if !matches!(content.scheme(), "http" | "https") {
            return Err(format!(
                "bad origin URL {url:?}: only http:// and https:// are supported"
            ));
        }
        if content.host_str().is_none() {
            return Err(format!("bad origin URL {url:?}: no host"));
        }
        let beside = |ext: &str| {
            let mut u = content.clone();
            u.set_path(&format!("{}{ext}", content.path()));
            u
        };
        let (tree, munros) = (beside(".mhash"), beside(".munros"));
        Ok(Self {
            content,
            tree,
            munros,
        })
    }
}

/// A finished fetch.
#[derive(Debug)]
pub struct Completion {
    /// The origin it was for.
    pub origin: OriginHandle,
    /// The fetch ([`OriginFetch::id`]).
    pub id: u64,
    /// The bytes, or why there are none (with a message for people).
    pub result: Result<Vec<u8>, FetchError>,
}

/// A failed fetch.
#[derive(Clone, Debug)]
pub struct FetchError {
    /// What the engine is told.
    pub failure: OriginFailure,
    /// What happened, one line.
    pub message: String,
}

impl FetchError {
    fn new(failure: OriginFailure, message: impl Into<String>) -> Self {
        Self {
            failure,
            message: message.into(),
        }
    }

    fn retryable(&self) -> bool {
        !self.failure.is_permanent() && self.failure != OriginFailure::BadBody
    }
}

/// The HTTP client of a download's origins.
pub struct OriginClient {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    cfg: ClientConfig,
    tx: mpsc::Sender<Completion>,
    rx: mpsc::Receiver<Completion>,
    wake: Arc<dyn Fn() + Send + Sync>,
    stats: Arc<ClientStats>,
    in_flight: usize,
}

impl std::fmt::Debug for OriginClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginClient")
            .field("in_flight", &self.in_flight)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl OriginClient {
    /// Starts the client's runtime; `wake` is called (from its thread) whenever an answer is
    /// ready.
    pub fn new(cfg: ClientConfig, wake: impl Fn() + Send + Sync + 'static) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ppspp-http")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the HTTP client: {e}"))?;
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(cfg.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("ppspp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot start the HTTP client: {e}"))?;
        let (tx, rx) = mpsc::channel();
        Ok(Self {
            runtime,
            client,
            cfg,
            tx,
            rx,
            wake: Arc::new(wake),
            stats: Arc::new(ClientStats::default()),
            in_flight: 0,
        })
    }

    /// Starts `fetch` against `urls`; returns at once.
    pub fn submit(&mut self, urls: &OriginUrls, fetch: &OriginFetch) {
        let url = match fetch.resource {
            OriginResource::Tree => urls.tree.clone(),
            OriginResource::MunroLog => urls.munros.clone(),
            _ => urls.content.clone(),
        };
        let job = Job {
            url,
            bytes: fetch.bytes.clone(),
            tree: matches!(fetch.resource, OriginResource::Tree),
        };
        let (origin, id) = (fetch.origin, fetch.id);
        let (client, cfg, tx, wake, stats) = (
            self.client.clone(),
            self.cfg.clone(),
            self.tx.clone(),
            self.wake.clone(),
            self.stats.clone(),
        );
        self.in_flight += 1;
        self.runtime.spawn(async move {
            let result = fetch_with_retries(&client, &cfg, &stats, &job).await;
            if let Ok(b) = &result {
                stats.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
            }
            let _ = tx.send(Completion { origin, id, result });
            wake();
        });
    }

    /// The next finished fetch, if any.
    pub fn try_recv(&mut self) -> Option<Completion> {
        let c = self.rx.try_recv().ok()?;
        self.in_flight = self.in_flight.saturating_sub(1);
        Some(c)
    }

    /// Fetches started and not yet received.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The client's counters.
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }
}

struct Job {
    url: Url,
    bytes: Range<u64>,
    tree: bool,
}

async fn fetch_with_retries(
    client: &reqwest::Client,
    cfg: &ClientConfig,
    stats: &ClientStats,
    job: &Job,
) -> Result<Vec<u8>, FetchError> {
    let mut attempt = 0u32;
    loop {
        stats.requests.fetch_add(1, Ordering::Relaxed);
        match fetch_once(client, cfg, stats, job).await {
            Ok(b) => return Ok(b),
            Err(e) if e.retryable() && attempt < cfg.retries => {
                stats.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200) * (1 << attempt.min(6))).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn fetch_once(
    client: &reqwest::Client,
    cfg: &ClientConfig,
    stats: &ClientStats,
    job: &Job,
) -> Result<Vec<u8>, FetchError> {
    let Range { start, end } = job.bytes;
    let want = end.saturating_sub(start);
    if want == 0 {
        return Ok(Vec::new());
    }
    let timeout = cfg.base_timeout + Duration::from_secs_f64(want as f64 / cfg.min_rate as f64);
    let url = &job.url;
    let resp = client
        .get(url.clone())
        .header(RANGE, format!("bytes={start}-{}", end - 1))
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| transport_error(url, &e))?;
    let status = resp.status();
    match status {
        StatusCode::PARTIAL_CONTENT => {
            let (a, b, total) = content_range(&resp).ok_or_else(|| {
                FetchError::new(
                    OriginFailure::BadBody,
                    format!("{url}: 206 without a valid Content-Range"),
                )
            })?;
            // The sidecar's first fetch may run past its end: the server answers up to it.
            let ok_end = b + 1 == end || (job.tree && total == Some(b + 1) && b + 1 < end);
            if a != start || !ok_end {
                return Err(FetchError::new(
                    OriginFailure::BadBody,
                    format!(
                        "{url}: asked for bytes {start}-{}, the Content-Range says {a}-{b}",
                        end - 1
                    ),
                ));
            }
            read_body(url, resp, 0, b + 1 - a, true).await
        }
        StatusCode::OK => {
            // Range ignored: cut the bytes out of the whole file, then drop the connection.
            stats.range_ignored.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%url, "the origin ignored Range (200 with the whole file)");
            read_body(url, resp, start, want, !job.tree).await
        }
        s if s.is_success() => Err(FetchError::new(
            OriginFailure::BadBody,
            format!("{url}: unexpected {s} to a range request"),
        )),
        s => Err(FetchError::new(
            OriginFailure::Status(s.as_u16()),
            format!("{url}: HTTP {s}"),
        )),
    }
}

/// Reads `len` bytes of the body after skipping `skip`; stops reading there. `exact`: fewer
/// (or, for a range answer, more) bytes is an error; otherwise fewer is accepted (the end of
/// the sidecar).
async fn read_body(
    url: &Url,
    mut resp: reqwest::Response,
    mut skip: u64,
    len: u64,
    exact: bool,
) -> Result<Vec<u8>, FetchError> {
    let mut out = Vec::with_capacity(len.min(16 << 20) as usize);
    loop {
        let chunk = resp.chunk().await.map_err(|e| transport_error(url, &e))?;
        let Some(mut chunk) = chunk else { break };
        if skip > 0 {
            let n = skip.min(chunk.len() as u64);
            skip -= n;
            chunk = chunk.slice(n as usize..);
        }
        let room = (len - out.len() as u64) as usize;
        if chunk.len() > room {
            if skip == 0 && exact && resp.status() == StatusCode::PARTIAL_CONTENT {
                return Err(FetchError::new(
                    OriginFailure::BadBody,
                    format!("{url}: the body is longer than its Content-Range"),
                ));
            }
            out.extend_from_slice(&chunk[..room]);
            // Enough: the rest of a whole-file answer is not read (dropping the response
            // closes that connection).
            return Ok(out);
        }
        out.extend_from_slice(&chunk);
        if out.len() as u64 == len && resp.status() != StatusCode::PARTIAL_CONTENT {
            return Ok(out);
        }
    }
    if (out.len() as u64) < len && (exact || out.is_empty()) {
        return Err(FetchError::new(
            OriginFailure::BadBody,
            format!("{url}: short body: {} of {len} bytes", out.len()),
        ));
    }
    Ok(out)
}

/// `Content-Range: bytes A-B/TOTAL` (TOTAL may be `*`).
fn content_range(resp: &reqwest::Response) -> Option<(u64, u64, Option<u64>)> {
    let v = resp.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let rest = v.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    if b < a {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((a, b, total))
}

fn transport_error(url: &Url, e: &reqwest::Error) -> FetchError {
    let failure = if e.is_timeout() {
        OriginFailure::Timeout
    } else {
        OriginFailure::Unreachable
    };
    // The innermost cause says most (connection refused, certificate, …).
    let mut cause: &dyn std::error::Error = e;
    while let Some(s) = cause.source() {
        cause = s;
    }
    let what = if e.is_timeout() {
        "timed out".to_string()
    } else {
        cause.to_string()
    };
    FetchError::new(failure, format!("{url}: {what}"))
}
