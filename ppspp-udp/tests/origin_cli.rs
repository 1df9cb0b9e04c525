//! Hybrid delivery, process level: a real HTTP file server (axum + tower-http's `ServeDir`,
//! which honours `Range`) started by the test as the origin, and `ppspp get` processes.
//! Misbehaving origins are routes of the same server.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::{Killed, content, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_ppspp");

/// Bytes the server sent, by kind.
#[derive(Default)]
struct Counters {
    content: AtomicU64,
    tree: AtomicU64,
}

/// The origin: `/files/NAME` is `ServeDir` over the test's directory (the content and its
/// `.mhash` sidecar); the other routes misbehave on purpose.
struct Origin {
    addr: SocketAddr,
    counters: Arc<Counters>,
    _rt: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct AppState {
    dir: PathBuf,
    counters: Arc<Counters>,
}

impl Origin {
    fn start(dir: &Path) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let counters = Arc::new(Counters::default());
        let state = AppState {
            dir: dir.to_path_buf(),
            counters: counters.clone(),
        };
        let files = Router::new()
            .fallback_service(tower_http::services::ServeDir::new(dir))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                count_bytes,
            ));
        let app = Router::new()
            .nest("/files", files)
            .route("/norange/{name}", get(no_range))
            .route("/short/{name}", get(short_body))
            .route(
                "/e500/{name}",
                get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
            )
            .route("/slow/{name}", get(slow))
            .with_state(state);
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            counters,
            _rt: rt,
        }
    }

    fn url(&self, route: &str, name: &str) -> String {
        format!("http://{}/{route}/{name}", self.addr)
    }

    fn content_served(&self) -> u64 {
        self.counters.content.load(Ordering::SeqCst)
    }
}

/// Counts the body bytes of every answer (`Content-Length`, which hyper enforces), content
/// and sidecar apart.
async fn count_bytes(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let tree = req.uri().path().ends_with(".mhash");
    let resp = next.run(req).await;
    let len: u64 = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    let counter = if tree {
        &s.counters.tree
    } else {
        &s.counters.content
    };
    counter.fetch_add(len, Ordering::SeqCst);
    resp
}

fn read(s: &AppState, name: &str) -> Option<Vec<u8>> {
    if name.contains('/') || name.contains("..") {
        return None;
    }
    std::fs::read(s.dir.join(name)).ok()
}

/// Ignores `Range`: 200 with the whole file.
async fn no_range(State(s): State<AppState>, UrlPath(name): UrlPath<String>) -> Response {
    match read(&s, &name) {
        Some(b) => (StatusCode::OK, b).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The parsed `Range: bytes=A-B` of a request.
fn range(h: &HeaderMap) -> Option<(usize, usize)> {
    let v = h
        .get(header::RANGE)?
        .to_str()
        .ok()?
        .strip_prefix("bytes=")?;
    let (a, b) = v.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Answers ranges of the sidecar honestly, and of the content with a body half as long as
/// its `Content-Range` says.
async fn short_body(
    State(s): State<AppState>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let (Some(b), Some((a, z))) = (read(&s, &name), range(&headers)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let z = z.min(b.len() - 1);
    let body = if name.ends_with(".mhash") {
        b[a..=z].to_vec()
    } else {
        b[a..a + (z + 1 - a) / 2].to_vec()
    };
    Response::builder()
        .status(StatusCode::PARTIAL_CONTENT)
        .header(header::CONTENT_RANGE, format!("bytes {a}-{z}/{}", b.len()))
        .body(Body::from(body))
        .unwrap()
}

/// Answers ranges correctly, but content only after 30 s.
async fn slow(
    State(s): State<AppState>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let (Some(b), Some((a, z))) = (read(&s, &name), range(&headers)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !name.ends_with(".mhash") {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    let z = z.min(b.len() - 1);
    Response::builder()
        .status(StatusCode::PARTIAL_CONTENT)
        .header(header::CONTENT_RANGE, format!("bytes {a}-{z}/{}", b.len()))
        .body(Body::from(b[a..=z].to_vec()))
        .unwrap()
}

/// A scratch directory with `name` holding `data` and its sidecar `name.mhash` (written by
/// `ppspp hash --tree`); returns the directory and the swarm ID.
fn publish(suite: &str, name: &str, data: &[u8]) -> (PathBuf, String) {
    let dir = common::tmpdir("origin", suite);
    let file = dir.join(name);
    std::fs::write(&file, data).unwrap();
    let out = Command::new(BIN)
        .arg("hash")
        .arg("--tree")
        .arg(dir.join(format!("{name}.mhash")))
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    (dir, text(&out.stdout).trim().to_owned())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `peer efficiency E` at the end of a summary line.
fn efficiency(summary: &str) -> f64 {
    let line = summary
        .lines()
        .find(|l| l.starts_with("complete "))
        .unwrap_or_else(|| panic!("no summary in {summary:?}"));
    let e = line
        .rsplit_once("peer efficiency ")
        .unwrap_or_else(|| panic!("no peer efficiency in {line:?}"))
        .1;
    let e: f64 = e.parse().unwrap();
    assert!((0.0..=1.0).contains(&e), "{line}");
    e
}

fn get_cmd(swarm: &str, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("get").arg(swarm).arg("-o").arg(out).arg("--quiet");
    if !extra.contains(&"--timeout") {
        c.args(["--timeout", "20"]);
    }
    c.args(extra);
    c
}

fn run(swarm: &str, out: &Path, extra: &[&str]) -> Output {
    get_cmd(swarm, out, extra).output().unwrap()
}

/// A seeder of `file`; returns it and its address.
fn seeder(file: &Path) -> (Killed, String) {
    let port = free_port();
    let mut child = Command::new(BIN)
        .arg("seed")
        .arg(file)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // swarm, listening, link: the seeder is up once it printed them.
    for _ in 0..3 {
        lines.next().unwrap().unwrap();
    }
    (Killed(child), format!("127.0.0.1:{port}"))
}

#[test]
fn origin_alone_no_peer() {
    let data = content(300_000, 1);
    let (dir, swarm) = publish("alone", "f.bin", &data);
    let origin = Origin::start(&dir);
    let out = dir.join("out");
    let o = run(&swarm, &out, &["--origin", &origin.url("files", "f.bin")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), data);
    assert_eq!(efficiency(&text(&o.stdout)), 0.0);
    // Each byte once; the whole sidecar (small content) in one fetch.
    assert_eq!(origin.content_served(), data.len() as u64);
    let sidecar = std::fs::metadata(dir.join("f.bin.mhash")).unwrap().len();
    assert_eq!(origin.counters.tree.load(Ordering::SeqCst), sidecar);
}

#[test]
fn link_with_origin_parameter() {
    let data = content(50_000, 2);
    let (dir, swarm) = publish("link", "f.bin", &data);
    let origin = Origin::start(&dir);
    let url = origin.url("files", "f.bin");
    let link = format!("ppspp://{swarm}?cs=1024&origin={url}");
    let out = dir.join("out");
    let o = Command::new(BIN)
        .args(["get", &link, "-q", "--timeout", "20", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), data);
}

#[test]
fn two_leechers_share_one_origin_and_each_other() {
    let data = content(4 << 20, 3);
    let (dir, swarm) = publish("two", "f.bin", &data);
    let origin = Origin::start(&dir);
    let url = origin.url("files", "f.bin");
    let (pa, pb) = (free_port(), free_port());
    let (a_addr, b_addr) = (format!("127.0.0.1:{pa}"), format!("127.0.0.1:{pb}"));
    let (a_out, b_out) = (dir.join("a"), dir.join("b"));
    let spawn = |out: &Path, listen: &str, peer: &str| {
        get_cmd(
            &swarm,
            out,
            &["--origin", &url, "--listen", listen, "--peer", peer],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let a = spawn(&a_out, &a_addr, &b_addr);
    let b = spawn(&b_out, &b_addr, &a_addr);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "a: {}", text(&a.stderr));
    assert!(b.status.success(), "b: {}", text(&b.stderr));
    assert_eq!(std::fs::read(&a_out).unwrap(), data);
    assert_eq!(std::fs::read(&b_out).unwrap(), data);
    let served = origin.content_served();
    let (ea, eb) = (efficiency(&text(&a.stdout)), efficiency(&text(&b.stdout)));
    println!(
        "origin served {served} content bytes for two copies of {} ({:.2} copies); peer \
         efficiency {ea:.3} and {eb:.3}",
        data.len(),
        served as f64 / data.len() as f64
    );
    // Well under two copies: the leechers traded what the other fetched.
    assert!(
        served < data.len() as u64 * 3 / 2,
        "the origin served {served} bytes"
    );
    assert!(ea + eb > 0.5, "peer efficiency {ea} {eb}");
}

#[test]
fn an_origin_serving_a_corrupt_chunk_is_caught() {
    let data = content(200_000, 4);
    let (dir, swarm) = publish("corrupt", "f.bin", &data);
    // The server's copy has chunk 77 damaged; its sidecar is the true one.
    let mut bad = data.clone();
    bad[77 * 1024 + 5] ^= 0xFF;
    std::fs::write(dir.join("bad.bin"), &bad).unwrap();
    std::fs::copy(dir.join("f.bin.mhash"), dir.join("bad.bin.mhash")).unwrap();
    let origin = Origin::start(&dir);
    let url = origin.url("files", "bad.bin");
    let out = dir.join("out");
    // The origin alone: every chunk but 77 verifies; 77 is refused each time until the
    // origin is disabled, and the run fails saying so.
    let o = run(&swarm, &out, &["--origin", &url]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("served chunk 77 that failed verification; not stored"),
        "{err}"
    );
    assert!(err.contains("every origin failed"), "{err}");
    // Nothing of the bad chunk reached the file: its bytes there are still unwritten.
    let part = std::fs::read(dir.join("out.ppspp-part")).unwrap();
    assert!(part[77 * 1024..78 * 1024].iter().all(|&b| b == 0));
    assert_eq!(&part[..77 * 1024], &data[..77 * 1024]);
    // With a peer the same command resumes and completes with the right bytes.
    let (_seed, peer) = seeder(&dir.join("f.bin"));
    let o = run(&swarm, &out, &["--origin", &url, "--peer", &peer]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), data);
}

#[test]
fn missing_file_is_a_clear_error() {
    let (dir, swarm) = publish("404", "f.bin", &content(10_000, 5));
    let origin = Origin::start(&dir);
    let o = run(
        &swarm,
        &dir.join("out"),
        &[
            "--origin",
            &origin.url("files", "nope.bin"),
            "--timeout",
            "3",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    // At once, not at the timeout: nothing is left to download from.
    assert!(err.contains("every origin failed"), "{err}");
    assert!(err.contains("nope.bin.mhash: HTTP 404"), "{err}");
}

#[test]
fn unreachable_origin_is_a_clear_error() {
    let (dir, swarm) = publish("unreach", "f.bin", &content(10_000, 6));
    // A port nobody listens on (bound a moment ago, then freed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/f.bin");
    let o = run(
        &swarm,
        &dir.join("out"),
        &["--origin", &url, "--timeout", "3"],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("origin(s) failed"), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
}

#[test]
fn server_error_is_reported_and_backed_off() {
    let (dir, swarm) = publish("500", "f.bin", &content(10_000, 7));
    let origin = Origin::start(&dir);
    let o = run(
        &swarm,
        &dir.join("out"),
        &["--origin", &origin.url("e500", "f.bin"), "--timeout", "3"],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("500"), "{err}");
}

#[test]
fn a_server_ignoring_range_still_works_counted() {
    let data = content(100_000, 8);
    let (dir, swarm) = publish("norange", "f.bin", &data);
    let origin = Origin::start(&dir);
    let out = dir.join("out");
    let o = run(
        &swarm,
        &out,
        &["--origin", &origin.url("norange", "f.bin"), "--json"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), data);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(j["origin_range_ignored"].as_u64().unwrap() > 0, "{j}");
    assert_eq!(j["origin_bytes"].as_u64(), Some(data.len() as u64));
}

/// A download of `len` bytes from a seeder and the misbehaving origin route `route`: it
/// completes with the right bytes; returns its summary.
fn with_peer_and_bad_origin(route: &str, len: usize, seed: u64) -> String {
    let data = content(len, seed);
    let (dir, swarm) = publish(route, "f.bin", &data);
    let origin = Origin::start(&dir);
    let (_seed, peer) = seeder(&dir.join("f.bin"));
    let out = dir.join("out");
    let o = run(
        &swarm,
        &out,
        &["--origin", &origin.url(route, "f.bin"), "--peer", &peer],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), data);
    text(&o.stdout)
}

#[test]
fn short_bodies_fall_back_to_peers() {
    with_peer_and_bad_origin("short", 100_000, 9);
}

#[test]
fn a_slow_origin_does_not_hold_the_download_back() {
    // The origin answers content after 30 s; the download's own timeout is 20 s without
    // progress: it completes from the peer long before.
    let summary = with_peer_and_bad_origin("slow", 300_000, 10);
    assert_eq!(efficiency(&summary), 1.0);
}

/// `GET url` with a client of its own; status and body.
fn http_get(url: &str) -> (u16, Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.bytes().await.unwrap().to_vec())
    })
}

#[test]
fn serve_joins_from_an_origin_only_link_and_seeds_peers() {
    let data = content(600_000, 11);
    let (dir, swarm) = publish("serve", "f.bin", &data);
    let origin = Origin::start(&dir);
    // The link's only source is the origin, and it has no size: the sidecar gives it.
    let link = format!(
        "ppspp://{swarm}?cs=1024&origin={}",
        origin.url("files", "f.bin")
    );
    let serve = common::start_serve(&["--get", &link], 0);
    let (udp, http) = (serve.udp.port(), serve.http.port());
    // `--get` swarms are added after the addresses are printed.
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while http_get(&format!("http://127.0.0.1:{http}/api/swarms/{swarm}")).0 != 200 {
        assert!(
            std::time::Instant::now() < end,
            "serve never listed the swarm"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Through the gateway: the bytes come from the origin, verified.
    let (status, body) = http_get(&format!("http://127.0.0.1:{http}/{swarm}"));
    assert_eq!(status, 200);
    assert!(body == data, "the gateway served other bytes");
    // A peer that knows only `ppspp serve` downloads from what it verified.
    let out = dir.join("out");
    let o = run(&swarm, &out, &["--peer", &format!("127.0.0.1:{udp}")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), data);
    assert_eq!(efficiency(&text(&o.stdout)), 1.0);
    // The API tells where serve's bytes came from; the origin served each byte once.
    let (status, list) = http_get(&format!("http://127.0.0.1:{http}/api/swarms/{swarm}"));
    assert_eq!(status, 200);
    let j: serde_json::Value = serde_json::from_slice(&list).unwrap();
    let s = if j.is_array() { &j[0] } else { &j };
    assert_eq!(s["origin_bytes"].as_u64(), Some(data.len() as u64), "{j}");
    assert_eq!(s["peer_efficiency"].as_f64(), Some(0.0), "{j}");
    assert_eq!(
        s["origins"][0]["content_bytes"].as_u64(),
        Some(data.len() as u64)
    );
    assert_eq!(origin.content_served(), data.len() as u64);
}
