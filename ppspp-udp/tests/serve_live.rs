//! `ppspp serve` with live streams, as processes over loopback: a `ppspp live source` fed
//! known bytes, a `ppspp serve` joining it (`--get LIVE_LINK`, or on demand from a gateway
//! request), and HTTP clients reading the endless gateway responses. Every body is checked
//! byte for byte against the source's input from the response's `X-Ppspp-Tune-In` chunk.
//! Timeouts are hang guards only.

mod common;
use common::{Killed, Terminated, file_server, free_port, tmpdir};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ppspp");
const CS: usize = 1024;

/// `chunks` 1 KiB chunks, each starting with its index (so a chunk names itself), the rest
/// pseudo-random.
fn stream(chunks: usize) -> Vec<u8> {
    stream_of(chunks, CS)
}

fn stream_of(chunks: usize, cs: usize) -> Vec<u8> {
    let mut out = common::content(chunks * cs, 99);
    for (i, c) in out.chunks_mut(cs).enumerate() {
        c[..8].copy_from_slice(&(i as u64).to_le_bytes());
    }
    out
}

/// A `ppspp live source` of `input` paced at `rate`: (process, swarm ID, live link).
fn source(input: &Path, rate: &str) -> (Killed, String, String) {
    source_with(input, rate, &[])
}

fn source_with(input: &Path, rate: &str, extra: &[&str]) -> (Killed, String, String) {
    let mut child = Command::new(BIN)
        .args(["live", "source", "--input"])
        .arg(input)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--rate", rate])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().expect("a line").expect("readable");
    let l = next();
    let swarm = l.strip_prefix("swarm ").expect(&l).to_owned();
    let l = next();
    assert!(l.starts_with("listening "), "{l}");
    let l = next();
    let link = l.strip_prefix("link ").expect(&l).to_owned();
    assert!(link.contains(&swarm) && link.contains("live=1"), "{link}");
    (Killed(child), swarm, link)
}

struct Serve {
    _child: Terminated,
    udp: SocketAddr,
    http: SocketAddr,
}

fn serve(args: &[&str]) -> Serve {
    serve_lines(args, 0).0
}

/// `ppspp serve` with `args`, and the `extra` pairs of `swarm`/`link` lines it prints.
fn serve_lines(args: &[&str], extra: usize) -> (Serve, Vec<String>) {
    let p = common::start_serve(args, extra);
    (
        Serve {
            _child: p.child,
            udp: p.udp,
            http: p.http,
        },
        p.lines,
    )
}

/// An HTTP/1.1 response being read: status, headers (lower-case names), and the body,
/// de-chunked as it comes.
struct Streaming {
    r: BufReader<TcpStream>,
    status: u16,
    headers: Vec<(String, String)>,
    chunked: bool,
    /// Bytes of the current transfer chunk still to read.
    left: usize,
}

impl Streaming {
    fn open(addr: SocketAddr, method: &str, path: &str, headers: &[&str]) -> Self {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let status = line.split(' ').nth(1).expect(&line).parse().unwrap();
        let mut headers = Vec::new();
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':').unwrap();
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v == "chunked");
        Self {
            r,
            status,
            headers,
            chunked,
            left: 0,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next `n` body bytes (fails if the body ends first).
    fn read(&mut self, n: usize) -> Vec<u8> {
        assert!(self.chunked, "not a chunked body: {:?}", self.headers);
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            if self.left == 0 {
                let mut line = String::new();
                self.r.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    // The CRLF after the previous transfer chunk.
                    line.clear();
                    self.r.read_line(&mut line).unwrap();
                }
                self.left = usize::from_str_radix(line.trim(), 16).expect(&line);
                assert!(self.left > 0, "the body ended after {} bytes", out.len());
            }
            let take = self.left.min(n - out.len());
            let at = out.len();
            out.resize(at + take, 0);
            self.r.read_exact(&mut out[at..]).unwrap();
            self.left -= take;
        }
        out
    }

    /// The whole body (for error responses with a length).
    fn rest(mut self) -> Vec<u8> {
        let mut b = Vec::new();
        let _ = self.r.read_to_end(&mut b);
        b
    }
}

fn tune_in(s: &Streaming) -> u64 {
    s.header("x-ppspp-tune-in")
        .unwrap_or_else(|| panic!("no X-Ppspp-Tune-In: {:?}", s.headers))
        .parse()
        .unwrap()
}

/// Reads `n` bytes and checks them against the source input from the response's start.
fn check_stream(s: &mut Streaming, data: &[u8], n: usize) -> u64 {
    assert_eq!(s.status, 200, "{:?}", s.headers);
    assert_eq!(s.header("content-length"), None, "{:?}", s.headers);
    assert_eq!(s.header("accept-ranges"), Some("none"));
    assert_eq!(s.header("x-ppspp-chunk-size"), Some("1024"));
    let t = tune_in(s);
    let got = s.read(n);
    let from = t as usize * CS;
    assert!(
        got == data[from..from + n],
        "the body differs from the stream from chunk {t}"
    );
    t
}

fn get_json(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let mut s = Streaming::open(addr, "GET", path, &[]);
    let status = s.status;
    let body = if s.chunked {
        let mut b = Vec::new();
        loop {
            let mut line = String::new();
            s.r.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                continue;
            }
            let n = usize::from_str_radix(line.trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            let at = b.len();
            b.resize(at + n, 0);
            s.r.read_exact(&mut b[at..]).unwrap();
        }
        b
    } else {
        s.rest()
    };
    (status, serde_json::from_slice(&body).expect("JSON"))
}

fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let json = serde_json::from_slice(&raw[end + 4..])
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&raw)));
    (status, json)
}

/// Waits until the server lists `swarm` (`--get` swarms are added after the server starts
/// answering).
fn wait_listed(srv: &Serve, swarm: &str) {
    eventually("the swarm is listed", || {
        get_json(srv.http, &format!("/api/swarms/{swarm}")).0 == 200
    });
}

/// Polls `f` every 50 ms until it is true; fails after a minute (a hang guard).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < end, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `serve --get <live link>`: two clients at once each get the stream byte for byte from
/// their tune-in chunk; a third that leaves mid-stream is cleaned up and disturbs neither;
/// the JSON list shows the live swarm; a plain `ppspp live get` joins the stream through
/// the server (it relays).
#[test]
fn serve_joins_a_live_link_and_streams_it_to_several_clients() {
    let d = tmpdir("serve-live", "get");
    let data = stream(6000);
    let input = d.join("in.bin");
    std::fs::write(&input, &data).unwrap();
    let (_src, swarm, link) = source(&input, "400k");
    let srv = serve(&["--get", &link]);
    wait_listed(&srv, &swarm);
    let path = format!("/{swarm}/live.ts");

    let mut a = Streaming::open(srv.http, "GET", &path, &[]);
    assert_eq!(a.header("content-type"), Some("video/vnd.dlna.mpeg-tts"));
    let mut leaver = Streaming::open(srv.http, "GET", &path, &[]);
    let mut b = Streaming::open(srv.http, "GET", &path, &["Range: bytes=100-200"]);
    // Range is ignored for a live stream (RFC 9110 §14.2): 200 and the stream.
    let ta = check_stream(&mut a, &data, 20 * CS);
    let _ = check_stream(&mut leaver, &data, 4 * CS);
    let (status, st) = get_json(srv.http, &format!("/api/swarms/{swarm}"));
    assert_eq!(status, 200);
    assert_eq!(st["kind"], "live");
    assert_eq!(st["streams"], 3, "{st}");
    drop(leaver);
    eventually("the leaving client's stream is cleaned up", || {
        get_json(srv.http, &format!("/api/swarms/{swarm}")).1["streams"] == 2
    });
    // Both carry on, in step with the stream.
    let tb = check_stream(&mut b, &data, 200 * 1024);
    let rest = a.read(180 * 1024);
    let from = (ta as usize + 20) * CS;
    assert!(rest == data[from..from + rest.len()], "a's body went wrong");
    assert!(tb >= ta);

    let (_, list) = get_json(srv.http, "/api/swarms");
    let s = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["swarm"] == swarm.as_str())
        .expect("the live swarm is listed");
    assert_eq!(s["kind"], "live");
    assert_eq!(s["live"]["tune_in"], ta, "{s}");
    assert!(
        s["live"]["newest_chunk"].as_u64().unwrap() >= ta + 200,
        "{s}"
    );
    assert_eq!(s["live"]["chunks_per_sig"], 32);
    assert!(s["peers"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["downloaded"].as_u64().unwrap() >= 200 * 1024, "{s}");
    assert!(s["link"].as_str().unwrap().contains("live=1"), "{s}");

    // A peer of the server gets the same stream (the server relays it).
    let out = d.join("relayed.bin");
    let res = Command::new(BIN)
        .args(["live", "get", &swarm, "--peer", &srv.udp.to_string()])
        .arg("-o")
        .arg(&out)
        .args(["--chunks", "100", "--duration", "60"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "live get through serve failed: {err}");
    let t: usize = err
        .lines()
        .find_map(|l| l.strip_prefix("tune-in "))
        .expect("a tune-in line")
        .trim()
        .parse()
        .unwrap();
    let got = std::fs::read(&out).unwrap();
    assert_eq!(got.len(), 100 * CS);
    assert!(
        got == data[t * CS..(t + 100) * CS],
        "relayed stream differs"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// A gateway request for an unknown live swarm with link parameters joins it on demand;
/// HEAD answers without a body and without a length; the control API adds a live swarm by
/// link and removes it, which ends its open responses.
#[test]
fn gateway_joins_a_live_stream_on_demand_and_the_api_adds_and_removes_it() {
    let d = tmpdir("serve-live", "demand");
    let data = stream(6000);
    let input = d.join("in.bin");
    std::fs::write(&input, &data).unwrap();
    let (_src, swarm, link) = source(&input, "400k");
    let peer = link.split("peer=").nth(1).unwrap().to_owned();
    let srv = serve(&[]);

    // Unknown and no peer to join through: 404 with a JSON error.
    let (status, e) = get_json(srv.http, &format!("/{swarm}"));
    assert_eq!(status, 404, "{e}");
    assert!(e["error"].as_str().unwrap().contains("peer="), "{e}");

    let head = Streaming::open(
        srv.http,
        "HEAD",
        &format!("/{swarm}?peer={peer}&cs=1024&cps=32"),
        &[],
    );
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), None, "{:?}", head.headers);
    assert_eq!(head.header("accept-ranges"), Some("none"));
    assert!(head.rest().is_empty(), "a HEAD response with a body");

    let mut c = Streaming::open(srv.http, "GET", &format!("/{swarm}"), &[]);
    check_stream(&mut c, &data, 100 * CS);

    // Removing the swarm ends the open response; adding it again by the API works.
    let (status, r) = request(srv.http, "DELETE", &format!("/api/swarms/{swarm}"), "");
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["removed"], swarm.as_str());
    let mut ended = false;
    for _ in 0..10_000 {
        let mut line = String::new();
        if c.r.read_line(&mut line).unwrap_or(0) == 0 || line.trim() == "0" {
            ended = true;
            break;
        }
    }
    assert!(ended, "the response did not end when its swarm was removed");
    let body = format!(r#"{{"link": "{link}", "name": "tv.ts"}}"#);
    let (status, s) = request(srv.http, "POST", "/api/swarms", &body);
    assert_eq!(status, 201, "{s}");
    assert_eq!(s["kind"], "live");
    assert_eq!(s["swarm"], swarm.as_str());
    assert_eq!(s["gateway"], format!("/{swarm}/tv.ts"));
    let (status, _) = request(srv.http, "POST", "/api/swarms", &body);
    assert_eq!(status, 200);
    let mut c = Streaming::open(srv.http, "GET", &format!("/{swarm}/tv.ts"), &[]);
    check_stream(&mut c, &data, 100 * CS);
    let _ = std::fs::remove_dir_all(&d);
}

/// Bad live links and requests get a 4xx with a JSON error (or a usage error on the command
/// line), never a crash; the server still answers afterwards.
#[test]
fn bad_live_links_get_4xx_json_errors() {
    // An Ed25519 live swarm ID (a valid key) and a 33-byte ID that is not a usable key.
    let key = Command::new(BIN)
        .args([
            "live",
            "source",
            "--input",
            "/dev/null",
            "--algorithm",
            "ed25519",
        ])
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut key = Killed(key);
    let mut l = String::new();
    BufReader::new(key.0.stdout.take().unwrap())
        .read_line(&mut l)
        .unwrap();
    drop(key);
    let id = l.trim().strip_prefix("swarm ").expect(&l).to_owned();
    assert_eq!(id.len(), 66);
    // Algorithm 1 (RSA/MD5) is not one live streams may use.
    let not_a_key = format!("01{}", "ab".repeat(32));
    let srv = serve(&[]);
    let peer = "127.0.0.1:9";
    for (path, want) in [
        (format!("/{id}?peer={peer}&cps=3"), 400),
        (format!("/{id}?peer={peer}&cps=1"), 400),
        (format!("/{id}?peer={peer}&cs=0"), 400),
        (format!("/{id}?peer={peer}&cs=100000"), 400),
        (format!("/{id}?peer={peer}&form=xyz"), 400),
        (format!("/{id}?peer=nowhere"), 400),
        (format!("/{id}?peer={peer}&live=0"), 400),
        (format!("/{not_a_key}?peer={peer}"), 400),
        (format!("/{id}/..?peer={peer}"), 400),
        (format!("/{id}"), 404),
    ] {
        let (status, e) = get_json(srv.http, &path);
        assert_eq!(status, want, "{path}: {e}");
        assert!(e["error"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
    let (status, e) = request(srv.http, "POST", &format!("/{id}"), "");
    assert_eq!(status, 405, "{e}");
    for body in [
        format!(r#"{{"link": "ppspp://{id}?live=1&cps=5&peer={peer}"}}"#),
        format!(r#"{{"link": "ppspp://{id}?live=1"}}"#),
        format!(r#"{{"link": "ppspp://{not_a_key}?live=1&peer={peer}"}}"#),
        format!(r#"{{"link": "ppspp://{id}?live=1&peer={peer}", "name": "../x"}}"#),
    ] {
        let (status, e) = request(srv.http, "POST", "/api/swarms", &body);
        assert_eq!(status, 400, "{body}: {e}");
        assert!(e["error"].as_str().is_some(), "{e}");
    }
    let (status, list) = get_json(srv.http, "/api/swarms");
    assert_eq!(status, 200);
    assert_eq!(list, serde_json::json!([]), "a bad request added a swarm");
    // On the command line: a usage error (exit 2) saying what is wrong.
    let res = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .args(["--get", &format!("ppspp://{id}?live=1&cps=6&peer={peer}")])
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("cps=6"));
}

/// A number from a `/proc/sys` file of whitespace-separated numbers (the `i`-th), if there.
fn sysctl(path: &str, i: usize) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .nth(i)?
        .parse()
        .ok()
}

/// A client that stops reading falls behind the kept window (`--live-keep 64`); when it
/// reads again it is skipped forward to the live edge instead of holding the server's memory
/// or stalling: every chunk it gets is a stream chunk, verified, in increasing order, with a
/// gap, and the swarm's JSON counts the skip.
#[test]
fn a_client_that_falls_behind_the_window_skips_forward() {
    const BIG: usize = 8192;
    let d = tmpdir("serve-live", "slow");
    let data = stream_of(3000, BIG);
    let input = d.join("in.bin");
    std::fs::write(&input, &data).unwrap();
    let (_src, swarm, link) = source_with(
        &input,
        "2M",
        &["--chunk-size", "8192", "--chunks-per-sig", "64"],
    );
    let srv = serve(&["--get", &link, "--live-keep", "64", "--chunk-size", "8192"]);
    wait_listed(&srv, &swarm);
    let mut c = Streaming::open(srv.http, "GET", &format!("/{swarm}"), &[]);
    assert_eq!(c.status, 200);
    let t0 = tune_in(&c);
    let first = c.read(BIG);
    assert!(first == data[t0 as usize * BIG..(t0 as usize + 1) * BIG]);
    // What the kernel and the server may buffer for a client that does not read (send and
    // receive socket buffers, the HTTP server's write buffer), in chunks, plus the window:
    // once the stream is that far ahead, the client has certainly fallen behind the window.
    let wmem = sysctl("/proc/sys/net/ipv4/tcp_wmem", 2).unwrap_or(4 << 20);
    let rmem = sysctl("/proc/sys/net/ipv4/tcp_rmem", 1).unwrap_or(128 << 10);
    let ahead = (wmem + 2 * rmem + (1 << 20)) / BIG as u64 + 2 * 64 + 64;
    println!("waiting for the stream to be {ahead} chunks past the client");
    eventually("the stream runs far ahead of the stalled client", || {
        let (_, s) = get_json(srv.http, &format!("/api/swarms/{swarm}"));
        s["live"]["newest_chunk"]
            .as_u64()
            .is_some_and(|n| n > t0 + ahead)
    });
    let mut last = t0;
    let mut gaps = 0;
    // Whatever was buffered comes first, then the skip; a few chunks past it suffice.
    let mut after_gap = 0;
    for _ in 0..ahead + 200 {
        if gaps > 0 {
            after_gap += 1;
            if after_gap > 20 {
                break;
            }
        }
        let chunk = c.read(BIG);
        let i = u64::from_le_bytes(chunk[..8].try_into().unwrap());
        assert!(i > last, "chunk {i} after {last}: out of order");
        assert!(
            chunk == data[i as usize * BIG..(i as usize + 1) * BIG],
            "chunk {i} is not the stream's"
        );
        if i > last + 1 {
            gaps += 1;
        }
        last = i;
    }
    assert!(gaps >= 1, "the stalled client was never skipped forward");
    let (_, s) = get_json(srv.http, &format!("/api/swarms/{swarm}"));
    assert!(s["live"]["lagged"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["live"]["skipped_chunks"].as_u64().unwrap() >= 1, "{s}");
    let _ = std::fs::remove_dir_all(&d);
}

/// `--state DIR` remembers a live swarm by its link: after SIGTERM, a restart joins the
/// stream again and serves it.
#[test]
fn a_restart_with_state_rejoins_live_swarms() {
    let d = tmpdir("serve-live", "state");
    let data = stream(6000);
    let input = d.join("in.bin");
    std::fs::write(&input, &data).unwrap();
    let (_src, swarm, link) = source(&input, "400k");
    let state = d.join("state");
    let state_arg = state.to_str().unwrap().to_owned();
    {
        let srv = serve(&["--state", &state_arg]);
        let body = format!(r#"{{"link": "{link}", "name": "tv.ts"}}"#);
        let (status, s) = request(srv.http, "POST", "/api/swarms", &body);
        assert_eq!(status, 201, "{s}");
        // Dropped: SIGTERM, and the list is saved.
    }
    let book = std::fs::read_to_string(state.join("swarms.json")).unwrap();
    assert!(book.contains("\"live\"") && book.contains(&swarm), "{book}");
    let srv = serve(&["--state", &state_arg]);
    wait_listed(&srv, &swarm);
    let (_, s) = get_json(srv.http, &format!("/api/swarms/{swarm}"));
    assert_eq!(s["kind"], "live");
    assert_eq!(s["name"], "tv.ts");
    let mut c = Streaming::open(srv.http, "GET", &format!("/{swarm}/tv.ts"), &[]);
    check_stream(&mut c, &data, 50 * CS);
    let _ = std::fs::remove_dir_all(&d);
}

/// `serve --live-source FILE`: the server injects the stream itself; its gateway serves it
/// from chunk 0 on, a `ppspp live get` peer and a second `ppspp serve` (joining by the
/// printed link) get it byte for byte.
#[test]
fn serve_injects_a_live_source_that_peers_and_other_servers_join() {
    let d = tmpdir("serve-live", "source");
    let data = stream(6000);
    let input = d.join("in.bin");
    std::fs::write(&input, &data).unwrap();
    let (src, lines) = serve_lines(
        &[
            "--live-source",
            input.to_str().unwrap(),
            "--live-rate",
            "400k",
            "--live-name",
            "tv.ts",
            "--live-algorithm",
            "ed25519",
        ],
        1,
    );
    let (swarm, name) = lines[0]
        .strip_prefix("swarm ")
        .expect(&lines[0])
        .split_once(' ')
        .unwrap();
    assert_eq!(name, "tv.ts");
    assert_eq!(swarm.len(), 66, "an Ed25519 live swarm ID: {swarm}");
    let link = lines[1].strip_prefix("link ").expect(&lines[1]).to_owned();
    assert!(
        link.contains("live=1") && link.contains(&src.udp.to_string()),
        "{link}"
    );

    let mut c = Streaming::open(src.http, "GET", &format!("/{swarm}"), &[]);
    assert_eq!(c.header("content-type"), Some("video/vnd.dlna.mpeg-tts"));
    check_stream(&mut c, &data, 100 * CS);

    let out = d.join("peer.bin");
    let res = Command::new(BIN)
        .args(["live", "get", swarm, "--peer", &src.udp.to_string()])
        .arg("-o")
        .arg(&out)
        .args(["--chunks", "100", "--duration", "60"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        res.status.success(),
        "live get from serve's source failed: {err}"
    );
    let t: usize = err
        .lines()
        .find_map(|l| l.strip_prefix("tune-in "))
        .expect("a tune-in line")
        .trim()
        .parse()
        .unwrap();
    assert!(std::fs::read(&out).unwrap() == data[t * CS..(t + 100) * CS]);

    let viewer = serve(&["--get", &link]);
    wait_listed(&viewer, swarm);
    let mut v = Streaming::open(viewer.http, "GET", &format!("/{swarm}"), &[]);
    check_stream(&mut v, &data, 100 * CS);
    let _ = std::fs::remove_dir_all(&d);
}

/// A live link whose only source is an HTTP origin (`origin=`, the stream a
/// `ppspp live source --publish` writes): the server follows the stream from the origin,
/// streams it through the gateway, and the API lists the origin and what came from it.
#[test]
fn serve_follows_a_live_stream_from_its_origin_alone() {
    let d = tmpdir("serve-live", "origin");
    let data = stream(6000);
    let input = d.join("in.bin");
    std::fs::write(&input, &data).unwrap();
    let www = d.join("www");
    let (_src, swarm, link) = source_with(&input, "400k", &["--publish", www.to_str().unwrap()]);
    let (_rt, http) = file_server(&www);
    // The source's link without its peer, with the origin instead.
    let base = link.split("&peer=").next().unwrap();
    let link = format!("{base}&origin=http://{http}/stream");
    let srv = serve(&["--get", &link]);
    wait_listed(&srv, &swarm);
    let mut s = Streaming::open(srv.http, "GET", &format!("/{swarm}/live.ts"), &[]);
    check_stream(&mut s, &data, 100 * CS);
    let (status, st) = get_json(srv.http, &format!("/api/swarms/{swarm}"));
    assert_eq!(status, 200);
    assert_eq!(st["kind"], "live");
    assert_eq!(st["peers"], 0, "{st}");
    assert!(st["origin_bytes"].as_u64().unwrap() >= 100 * 1024, "{st}");
    let o = &st["origins"][0];
    assert_eq!(o["url"], format!("http://{http}/stream"), "{st}");
    assert!(o["content_bytes"].as_u64().unwrap() >= 100 * 1024, "{st}");
    let _ = std::fs::remove_dir_all(&d);
}
