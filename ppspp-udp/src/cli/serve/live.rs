//! Live streams in `ppspp serve` (RFC 7574 §6): joined from a live link (`--get`, the
//! control API, or on demand from a gateway request), relayed to other peers as
//! `ppspp live get` does, and served by the gateway as endless responses.
//!
//! A live swarm keeps the newest `--live-keep` chunks (plus two munros) in memory
//! ([`RingStore`]); nothing of it goes to disk. Only verified chunks reach that store, and
//! the gateway reads nothing else.
//!
//! `GET /<live-swarm-hex>` (or `/<hex>/<name>`, the name giving the content type) answers
//! `200` with an endless chunked body (no `Content-Length`): the stream in order from the
//! response's start chunk, given in the `X-Ppspp-Tune-In` header (with `X-Ppspp-Chunk-Size`,
//! the body's first byte is the stream's byte `tune_in × chunk_size`). The first response
//! starts at the swarm's tune-in point while the swarm still holds it; later ones start at
//! the newest munro held (the live edge). `Range` is ignored (RFC 9110 §14.2 lets a server
//! ignore it; a live stream has no fixed length to take ranges of) and the response says
//! `Accept-Ranges: none` (§14.3). HEAD answers the headers at once, without waiting for the
//! stream.
//!
//! Back-pressure: a response reads the next chunks only when its client has taken the
//! previous ones, so a slow client holds at most one piece in memory. A client that falls
//! behind the kept window skips forward to the live edge (counted as `lagged` and
//! `skipped_chunks` in the swarm's JSON); the stream it gets then has a gap, as a player
//! that fell behind a broadcast expects.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ppspp_core::hash::{HashAlgorithm, HashValue};
use ppspp_core::live::LiveSwarmId;
use serde::Serialize;

use crate::cli::Failure;
use crate::cli::live::RingStore;
use crate::http_input;
use crate::live_link::LiveLink;

use super::content::Content;
use super::http::{ApiError, App};
use super::net::{AddError, Ready, WaitFor};

/// Chunks kept by default (as `ppspp live --keep`).
pub(crate) const DEFAULT_KEEP: u64 = 8192;
/// The most bytes of one piece of a response body.
const PIECE_MAX: u64 = 256 * 1024;
/// How long a new response waits for the stream's first verified chunk.
const START_WAIT: Duration = Duration::from_secs(30);

/// A live swarm ready to be added.
pub(crate) struct PreparedLive {
    pub(crate) link: LiveLink,
    pub(crate) name: Option<String>,
    /// Chunks to keep (the discard window).
    pub(crate) keep: u64,
}

/// The key a live swarm has among the server's swarms (which are keyed by root hash): a
/// SHA-256 of its live swarm ID. A static swarm with that root would need a SHA-256
/// preimage.
pub(crate) fn key_of(id: &LiveSwarmId) -> HashValue {
    HashAlgorithm::Sha256.digest_parts(&[b"ppspp serve live swarm\0", &id.to_bytes()])
}

/// The key of a live swarm ID in hex, if `hex` is one.
pub(crate) fn key_of_hex(hex: &str) -> Option<HashValue> {
    crate::live_link::parse_live_id(hex)
        .ok()
        .map(|id| key_of(&id))
}

/// A live stream's content, shared between the network thread and the gateway.
pub(crate) struct LiveContent {
    /// The link without peers.
    pub(crate) link: LiveLink,
    ring: RingStore,
    keep: u64,
    /// Times a response fell behind the kept window and skipped forward.
    lagged: AtomicU64,
    /// Chunks skipped by those responses.
    skipped: AtomicU64,
}

/// A live swarm's state, for the control API.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct LiveStatus {
    /// The chunk this server tuned in at, once known.
    pub(crate) tune_in: Option<u64>,
    /// The newest verified chunk held.
    pub(crate) newest_chunk: Option<u64>,
    /// The oldest chunk held.
    pub(crate) oldest_chunk: Option<u64>,
    pub(crate) chunk_size: u32,
    pub(crate) chunks_per_sig: u64,
    /// The discard window, in chunks.
    pub(crate) keep: u64,
    /// Times a gateway response fell behind the window and skipped forward.
    pub(crate) lagged: u64,
    /// Chunks those responses skipped.
    pub(crate) skipped_chunks: u64,
}

impl LiveContent {
    pub(crate) fn new(link: LiveLink, ring: RingStore, keep: u64) -> Self {
        Self {
            link,
            ring,
            keep,
            lagged: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        }
    }

    /// The first chunk of the newest munro held (not before the oldest chunk held).
    fn edge(&self, oldest: u64, newest: u64) -> u64 {
        let n = self.link.chunks_per_sig.max(1);
        (newest / n * n).max(oldest)
    }

    /// The answer to a live wait (on the network thread): `None` to keep waiting.
    pub(crate) fn ready(&self, tune_in: Option<u64>, from: Option<u64>) -> Option<Ready> {
        let (oldest, newest) = (self.ring.oldest()?, self.ring.newest()?);
        // A peer holds chunks only once tuned in; the injector (`--live-source`) holds its
        // own from the start and has no tune-in point: its stream starts at its oldest.
        let tune_in = tune_in.unwrap_or(oldest);
        match from {
            None => Some(Ready::Start(if tune_in >= oldest {
                tune_in
            } else {
                self.edge(oldest, newest)
            })),
            Some(n) => {
                let max = (PIECE_MAX / u64::from(self.link.chunk_size)).max(1);
                let run = self.ring.run(n, max);
                if run > 0 {
                    Some(Ready::Run {
                        chunks: run,
                        len: None,
                    })
                } else if n < oldest || newest.saturating_sub(n) > self.keep {
                    Some(Ready::Behind(self.edge(oldest, newest).max(n + 1)))
                } else {
                    None
                }
            }
        }
    }

    pub(crate) fn status(&self, tune_in: Option<u64>) -> LiveStatus {
        LiveStatus {
            tune_in,
            newest_chunk: self.ring.newest(),
            oldest_chunk: self.ring.oldest(),
            chunk_size: self.link.chunk_size,
            chunks_per_sig: self.link.chunks_per_sig,
            keep: self.keep,
            lagged: self.lagged.load(Ordering::Relaxed),
            skipped_chunks: self.skipped.load(Ordering::Relaxed),
        }
    }
}

/// The live swarm of `link`, joined if not known.
pub(crate) async fn open(
    app: &App,
    link: LiveLink,
    name: Option<String>,
) -> Result<Arc<Content>, ApiError> {
    if let Some(c) = app.net.lookup(key_of(&link.swarm_id)).await {
        return Ok(c);
    }
    let keep = app.live_keep.max(link.chunks_per_sig);
    app.net
        .add_live(PreparedLive { link, name, keep })
        .await
        .map_err(|AddError::Refused(e)| ApiError::new(StatusCode::CONFLICT, e))
}

/// The gateway for a path whose first segment is a live swarm ID; `None` for other paths.
pub(crate) async fn gateway(
    app: &Arc<App>,
    method: &Method,
    uri: &Uri,
) -> Option<Result<Response, ApiError>> {
    let first = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    // A usable live key, or hex of the length of an Ed25519, ECDSA P-256 or P-384 live ID
    // (no static swarm ID has those lengths), which gets a 400 saying what is wrong with it.
    let live_len = matches!(first.len(), 66 | 130 | 194);
    let live =
        key_of_hex(first).is_some() || (live_len && first.bytes().all(|b| b.is_ascii_hexdigit()));
    live.then_some(())?;
    Some(gateway_live(app, method, uri).await)
}

async fn gateway_live(app: &Arc<App>, method: &Method, uri: &Uri) -> Result<Response, ApiError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "the gateway answers GET and HEAD",
        ));
    }
    let gp = http_input::parse_live_gateway_path(uri.path())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.0))?;
    let content = match app.net.lookup(key_of(&gp.swarm_id)).await {
        Some(c) => c,
        None if http_input::query_has_link(uri.query()) => {
            let link = http_input::gateway_live_link(&gp.swarm_id, uri.query()).map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, format!("bad live link: {e}"))
            })?;
            open(app, link, gp.name.clone()).await?
        }
        None => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown live swarm {}: add ?peer=HOST:PORT&cs=…&cps=… to join it",
                    gp.swarm_id
                ),
            ));
        }
    };
    respond(app, content, method, gp.name.as_deref()).await
}

/// Answers a gateway request for the live swarm `content`.
pub(crate) async fn respond(
    app: &Arc<App>,
    content: Arc<Content>,
    method: &Method,
    name: Option<&str>,
) -> Result<Response, ApiError> {
    let Some(live) = content.live() else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not a live swarm"));
    };
    let ctype = super::content::content_type(name.or(content.name.as_deref()));
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&ctype)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("none"));
    h.insert(
        "x-ppspp-chunk-size",
        HeaderValue::from(live.link.chunk_size),
    );
    if method == Method::HEAD {
        // A body of unknown length (none is sent for HEAD): `Body::empty()` would say
        // `Content-Length: 0`, which a GET of the stream never says.
        let none = futures_util::stream::empty::<Result<Bytes, std::io::Error>>();
        return Ok((StatusCode::OK, h, Body::from_stream(none)).into_response());
    }
    let stream = app.next_stream();
    let start = tokio::time::timeout(
        START_WAIT,
        app.net
            .wait(content.id, stream, WaitFor::Live { from: None }),
    )
    .await;
    let start = match start {
        Ok(Ready::Start(s)) => s,
        Ok(_) => {
            app.net.stream_end(content.id, stream);
            return Err(ApiError::new(StatusCode::NOT_FOUND, "the swarm went away"));
        }
        Err(_) => {
            app.net.stream_end(content.id, stream);
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "no chunk of the stream has arrived yet (no peer answered); try again",
            ));
        }
    };
    h.insert("x-ppspp-tune-in", HeaderValue::from(start));
    let r = LiveReader {
        app: app.clone(),
        content,
        stream,
        next: start,
    };
    let body = Body::from_stream(futures_util::stream::unfold(r, |mut r| async move {
        let piece = r.next_piece().await?;
        Some((Ok::<_, std::io::Error>(piece), r))
    }));
    Ok((StatusCode::OK, h, body).into_response())
}

/// One endless response.
struct LiveReader {
    app: Arc<App>,
    content: Arc<Content>,
    stream: u64,
    /// The chunk to send next.
    next: u64,
}

impl Drop for LiveReader {
    fn drop(&mut self) {
        // Ended by its client going away, or by the swarm going.
        self.app.net.stream_end(self.content.id, self.stream);
    }
}

impl LiveReader {
    /// The next verified chunks in order; `None` when the swarm is gone.
    async fn next_piece(&mut self) -> Option<Bytes> {
        let live = self.content.live()?;
        loop {
            let what = WaitFor::Live {
                from: Some(self.next),
            };
            match self.app.net.wait(self.content.id, self.stream, what).await {
                Ready::Run { chunks, .. } => {
                    let cs = live.link.chunk_size as usize;
                    let mut out = Vec::with_capacity(chunks as usize * cs);
                    for i in self.next..self.next + chunks {
                        // Gone since the answer (the window moved): the next wait says
                        // where to go on from.
                        let Some(c) = live.ring.get(i) else { break };
                        out.extend_from_slice(&c);
                        self.next = i + 1;
                    }
                    if !out.is_empty() {
                        return Some(Bytes::from(out));
                    }
                }
                Ready::Behind(at) => {
                    live.lagged.fetch_add(1, Ordering::Relaxed);
                    live.skipped
                        .fetch_add(at.saturating_sub(self.next), Ordering::Relaxed);
                    self.next = at;
                }
                Ready::Gone | Ready::Start(_) => return None,
            }
        }
    }
}

/// A live source to inject from `serve` itself (`--live-source`).
pub(crate) struct PreparedSource {
    pub(crate) key: ppspp_core::live::KeyPair,
    pub(crate) params: ppspp_core::live::LiveParams,
    pub(crate) name: Option<String>,
    pub(crate) keep: u64,
}

/// Starts `--live-source`: the stream is read (on threads of its own, paced by
/// `--live-rate` if set), cut into `--chunk-size` chunks and pushed into the engine, which
/// signs a munro every `--live-chunks-per-sig` chunks and serves it to peers and gateway
/// clients. Prints `swarm <hex> <name>` and `link <live link>`.
pub(crate) async fn start_source(args: &super::Args, app: &Arc<App>) -> Result<(), Failure> {
    let Some(input) = args.live_source.clone() else {
        return Ok(());
    };
    let params = ppspp_core::live::LiveParams {
        chunk_size: args.chunk_size,
        nchunks_per_sig: args.live_chunks_per_sig,
        addressing: ppspp_core::wire::ChunkAddressing::ChunkRange32,
        hash: HashAlgorithm::Sha1,
        form: ppspp_core::live::SignedForm::Rfc7574,
    };
    if !args.live_chunks_per_sig.is_power_of_two() {
        return Err(Failure::usage(
            "--live-chunks-per-sig must be a power of two, at least 2",
        ));
    }
    // The input first: nothing is announced for a stream that cannot be read.
    let rx = crate::cli::live::reader(&input, args.chunk_size as usize).map_err(Failure::failed)?;
    let (key_path, alg) = (args.live_key.clone(), args.live_algorithm);
    let key =
        tokio::task::spawn_blocking(move || crate::cli::live::load_key(key_path.as_deref(), alg))
            .await
            .map_err(|e| Failure::failed(e.to_string()))?
            .map_err(Failure::failed)?;
    let name = args
        .live_name
        .as_deref()
        .map(http_input::parse_name)
        .transpose()
        .map_err(|e| Failure::usage(format!("--live-name: {e}")))?;
    let content = app
        .net
        .add_live_source(PreparedSource {
            key,
            params,
            name: name.clone(),
            keep: app.live_keep.max(params.nchunks_per_sig),
        })
        .await
        .map_err(|AddError::Refused(e)| Failure::failed(format!("--live-source: {e}")))?;
    let link = app
        .net
        .list(Some(content.id))
        .await
        .into_iter()
        .next()
        .map(|s| s.link)
        .unwrap_or_default();
    crate::cli::say!(
        "swarm {} {}",
        content.swarm_hex(),
        name.as_deref().unwrap_or("live")
    );
    crate::cli::say!("link {link}");
    let (net, id, rate, cs) = (app.net.clone(), content.id, args.live_rate, args.chunk_size);
    std::thread::Builder::new()
        .name("ppspp-live-source".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            let mut pushed: u64 = 0;
            while let Ok(chunk) = rx.recv() {
                // Paced: chunk n goes in no earlier than n × chunk size / rate.
                if let Some(r) = rate {
                    let due = Duration::from_secs_f64((pushed * u64::from(cs)) as f64 / r as f64);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
                if let Err(e) = net.push_live_blocking(id, Some(chunk)) {
                    eprintln!("ppspp serve: live source: {e}");
                    return;
                }
                pushed += 1;
            }
            // The last, short munro is signed so peers can fetch the tail.
            let _ = net.push_live_blocking(id, None);
            eprintln!("ppspp serve: live source: end of input after {pushed} chunks");
        })
        .map_err(|e| Failure::failed(e.to_string()))?;
    Ok(())
}
