//! The HTTP side of `ppspp serve` (axum): the page, the control API and the gateway.
//!
//! - `GET /`: the page (inline HTML, CSS and JS; no external assets).
//! - `GET /api/swarms`: every swarm as JSON (progress, rates, peers, per-peer counters).
//! - `POST /api/swarms` with `{"link": "ppspp://…", "name": "film.mp4"}`: add a swarm
//!   (201, or 200 if it was there).
//! - `GET /api/swarms/<hex>`: one swarm. `DELETE /api/swarms/<hex>[?data=delete]`: remove it,
//!   optionally deleting what it downloaded (never a seeded file of the user's).
//! - `GET`/`HEAD /<hex>` and `/<hex>/<name>`: the content, with single `Range` requests (RFC
//!   9110: 206, 416 with `Content-Range: bytes */len`, `Accept-Ranges`, `Content-Length`, a
//!   content type from the name). Unknown swarms start downloading from the query's link
//!   parameters (`?peer=HOST:PORT&size=…&cs=…&hash=…`). The body streams bytes in order as
//!   the engine verifies them; the reader's position is the swarm's playback position, so
//!   what the player needs next is fetched first; `?bitrate=4M` (bits per second) gives the
//!   window's chunks deadlines.
//!
//! - Live streams (see the `live` module): `GET`/`HEAD /<live-swarm-hex>` answers an endless
//!   response from the stream's tune-in point (`X-Ppspp-Tune-In`); unknown ones are joined
//!   from the query's live link parameters (`?peer=HOST:PORT&cs=…&cps=…&form=…`).
//!
//! Errors are JSON `{"error": "…"}` with a 4xx status (5xx only for the server's own
//! failures); request parsing is in [`crate::http_input`].

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ppspp_core::hash::HashValue;
use serde::Serialize;

use crate::http_input::{self, MAX_BODY, RangeRequest};
use crate::link::SwarmLink;

use super::content::Content;
use super::net::{AddError, Net, Ready, WaitFor};

/// The most bytes read from disk for one piece of a response body.
const READ_MAX: u64 = 256 * 1024;
/// How long a gateway request waits to learn the content length.
const LEN_WAIT: Duration = Duration::from_secs(30);

/// What every handler shares.
pub(crate) struct App {
    pub(crate) net: Net,
    data_dir: PathBuf,
    /// Adding swarms one at a time: two requests for the same new swarm must not both create
    /// (and truncate) its files.
    add_lock: tokio::sync::Mutex<()>,
    next_stream: AtomicU64,
    /// Chunks a live swarm keeps (`--live-keep`).
    pub(crate) live_keep: u64,
}

/// An error response: a status and a message, sent as `{"error": message}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct E<'a> {
            error: &'a str,
        }
        json(
            self.status,
            &E {
                error: &self.message,
            },
        )
    }
}

fn json(status: StatusCode, v: &impl Serialize) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body),
    )
        .into_response()
}

impl App {
    pub(crate) fn new(net: Net, data_dir: PathBuf, live_keep: u64) -> Self {
        Self {
            net,
            data_dir,
            add_lock: tokio::sync::Mutex::new(()),
            next_stream: AtomicU64::new(1),
            live_keep,
        }
    }

    /// A new gateway response's number.
    pub(crate) fn next_stream(&self) -> u64 {
        self.next_stream.fetch_add(1, Ordering::Relaxed)
    }

    /// The swarm of `link`, added (downloading into the data directory) if not known.
    pub(crate) async fn open(
        &self,
        link: SwarmLink,
        name: Option<String>,
    ) -> Result<Arc<Content>, ApiError> {
        let _one_at_a_time = self.add_lock.lock().await;
        if let Some(c) = self.net.lookup(link.swarm_id).await {
            return Ok(c);
        }
        super::check_link(&link).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
        let dir = self.data_dir.clone();
        let ready = tokio::task::spawn_blocking(move || super::prepare_download(&dir, link, name))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
        let added = match ready {
            super::Ready::Seed(s) => self.net.add_seed(s).await,
            super::Ready::Download(p) => self.net.add_download(p).await,
        };
        added.map_err(|AddError::Refused(e)| ApiError::new(StatusCode::CONFLICT, e))
    }
}

/// Serves HTTP on `listener` until `stop` turns true.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let router = Router::new()
        .route("/", get(page))
        .route("/api/swarms", get(list).post(add))
        .route("/api/swarms/{id}", get(one).delete(remove))
        .fallback(gateway)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app);
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
    {
        eprintln!("ppspp serve: http: {e}");
    }
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("page.html"),
    )
        .into_response()
}

async fn list(State(app): State<Arc<App>>) -> Response {
    json(StatusCode::OK, &app.net.list(None).await)
}

fn swarm_param(id: &str) -> Result<HashValue, ApiError> {
    http_input::parse_swarm_hex(id)
        .or_else(|e| super::live::key_of_hex(id).ok_or(e))
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.0))
}

async fn one(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let key = swarm_param(&id)?;
    match app.net.list(Some(key)).await.into_iter().next() {
        Some(s) => Ok(json(StatusCode::OK, &s)),
        // Named as given: a live swarm's key is not its ID.
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown swarm {}", id.to_ascii_lowercase()),
        )),
    }
}

fn unknown(id: HashValue) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("unknown swarm {id}"))
}

async fn add(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|r| ApiError::new(r.status(), r.body_text()))?;
    if let Some(req) = http_input::parse_add_live_body(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.0))?
    {
        let id = super::live::key_of(&req.link.swarm_id);
        let existed = app.net.lookup(id).await.is_some();
        super::live::open(&app, req.link, req.name).await?;
        return match app.net.list(Some(id)).await.into_iter().next() {
            Some(s) if existed => Ok(json(StatusCode::OK, &s)),
            Some(s) => Ok(json(StatusCode::CREATED, &s)),
            None => Err(unknown(id)),
        };
    }
    let req = http_input::parse_add_body(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.0))?;
    let id = req.link.swarm_id;
    let existed = app.net.lookup(id).await.is_some();
    app.open(req.link, req.name).await?;
    let status = app.net.list(Some(id)).await.into_iter().next();
    match status {
        Some(s) if existed => Ok(json(StatusCode::OK, &s)),
        Some(s) => Ok(json(StatusCode::CREATED, &s)),
        None => Err(unknown(id)),
    }
}

async fn remove(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (raw, id) = (id.to_ascii_lowercase(), swarm_param(&id)?);
    let delete = http_input::parse_delete_query(query.as_deref())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.0))?;
    let files = app
        .net
        .remove(id)
        .await
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("unknown swarm {raw}")))?;
    let mut deleted = Vec::new();
    if delete {
        deleted = tokio::task::spawn_blocking(move || {
            files
                .into_iter()
                .filter(|f| std::fs::remove_file(f).is_ok())
                .map(|f| f.display().to_string())
                .collect()
        })
        .await
        .unwrap_or_default();
    }
    #[derive(Serialize)]
    struct Removed {
        removed: String,
        deleted: Vec<String>,
    }
    Ok(json(
        StatusCode::OK,
        &Removed {
            // As given: a live swarm's key is not its ID.
            removed: raw,
            deleted,
        },
    ))
}

/// The gateway (every path the routes above do not take).
async fn gateway(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(r) = super::live::gateway(&app, &method, &uri).await {
        return r;
    }
    let path = uri.path();
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    if http_input::parse_swarm_hex(first).is_err() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such page: the gateway serves /<swarm-hex> and /<swarm-hex>/<name>",
        ));
    }
    if method != Method::GET && method != Method::HEAD {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "the gateway answers GET and HEAD",
        ));
    }
    let gp = http_input::parse_gateway_path(path)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.0))?;
    let bitrate = http_input::parse_bitrate(uri.query())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.0))?;
    let content = match app.net.lookup(gp.swarm_id).await {
        Some(c) => c,
        None if http_input::query_has_link(uri.query()) => {
            let link = http_input::gateway_link(gp.swarm_id, uri.query())
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad link: {e}")))?;
            app.open(link, gp.name.clone()).await?
        }
        None => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown swarm {}: add ?peer=HOST:PORT (or origin=URL, tracker=URL)&size=…&cs=… to start it",
                    gp.swarm_id
                ),
            ));
        }
    };
    if content.live().is_some() {
        return super::live::respond(&app, content, &method, gp.name.as_deref()).await;
    }
    let stream = app.next_stream();
    let len = match tokio::time::timeout(LEN_WAIT, app.net.wait(content.id, stream, WaitFor::Len))
        .await
    {
        Ok(Ready::Run { len: Some(l), .. }) => l,
        Ok(_) => return Err(ApiError::new(StatusCode::NOT_FOUND, "the swarm went away")),
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "the content length is not known yet (no peer or origin answered); try again",
            ));
        }
    };
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map_or(RangeRequest::Full, |h| http_input::parse_range(h, len));
    // The name in the path names the type; else the swarm's own name.
    let ctype = super::content::content_type(gp.name.as_deref().or(content.name.as_deref()));
    let (status, start, end) = match range {
        RangeRequest::Full => (StatusCode::OK, 0, len),
        RangeRequest::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end + 1),
        RangeRequest::Unsatisfiable => {
            let mut r = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the range lies outside the content ({len} bytes)"),
            )
            .into_response();
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).expect("ASCII"),
            );
            return Ok(r);
        }
    };
    let mut h = HeaderMap::new();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&ctype)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)).expect("ASCII"),
        );
    }
    let body = if method == Method::HEAD || start == end {
        app.net.stream_end(content.id, stream);
        Body::empty()
    } else {
        body_stream(app.clone(), content, stream, bitrate, (start, end))
    };
    Ok((status, h, body).into_response())
}

/// A response body reading `start..end` as it verifies.
struct Reader {
    app: Arc<App>,
    content: Arc<Content>,
    stream: u64,
    /// The media bitrate the request gave (`?bitrate=`), bytes per second.
    bitrate: Option<u64>,
    pos: u64,
    end: u64,
}

impl Drop for Reader {
    fn drop(&mut self) {
        // Finished, failed or abandoned by its client: the playback window may move on.
        self.app.net.stream_end(self.content.id, self.stream);
    }
}

fn body_stream(
    app: Arc<App>,
    content: Arc<Content>,
    stream: u64,
    bitrate: Option<u64>,
    (start, end): (u64, u64),
) -> Body {
    let r = Reader {
        app,
        content,
        stream,
        bitrate,
        pos: start,
        end,
    };
    Body::from_stream(futures_util::stream::unfold(r, |mut r| async move {
        if r.pos >= r.end {
            return None;
        }
        let item = next_piece(&mut r).await;
        if item.is_err() {
            // End after the error: the connection is cut, so the client sees a short body.
            r.pos = r.end;
        }
        Some((item, r))
    }))
}

async fn next_piece(r: &mut Reader) -> std::io::Result<Bytes> {
    let cs = u64::from(r.content.chunk_size);
    let from = r.pos / cs;
    let chunks = match r
        .app
        .net
        .wait(
            r.content.id,
            r.stream,
            WaitFor::Run {
                from,
                bitrate: r.bitrate,
            },
        )
        .await
    {
        Ready::Run { chunks, .. } if chunks > 0 => chunks,
        _ => return Err(std::io::Error::other("the swarm went away")),
    };
    let avail = from.saturating_add(chunks).saturating_mul(cs).min(r.end);
    let n = (avail - r.pos).min(READ_MAX);
    let (content, pos) = (r.content.clone(), r.pos);
    let data = tokio::task::spawn_blocking(move || content.read(pos, n as usize))
        .await
        .map_err(std::io::Error::other)??;
    r.pos += n;
    Ok(Bytes::from(data))
}
