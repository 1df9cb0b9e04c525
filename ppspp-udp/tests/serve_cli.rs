//! `ppspp serve` as a process: the stdout contract, the gateway (ranges, streaming from a
//! download in progress, clients that go away), the control API and its bad input, and
//! restarts from the state directory.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Killed, Terminated, content, tmpdir};

const BIN: &str = env!("CARGO_BIN_EXE_ppspp");

/// A running `ppspp serve` and what it printed.
struct Serve {
    child: Terminated,
    udp: SocketAddr,
    http: SocketAddr,
    /// (hex, name, link) per seeded swarm.
    swarms: Vec<(String, String, String)>,
}

fn serve(args: &[&str], seeds: usize) -> Serve {
    let p = common::start_serve(args, seeds);
    let swarms = p
        .lines
        .chunks(2)
        .map(|pair| {
            let s = &pair[0];
            let mut w = s.strip_prefix("swarm ").expect(s).splitn(2, ' ');
            let (hex, name) = (w.next().unwrap().to_owned(), w.next().unwrap().to_owned());
            let link = pair[1].strip_prefix("link ").expect(&pair[1]).to_owned();
            (hex, name, link)
        })
        .collect();
    Serve {
        child: p.child,
        udp: p.udp,
        http: p.http,
        swarms,
    }
}

/// A response: status, headers (lower-case names), body.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{e}: {:?}", String::from_utf8_lossy(&self.body));
        })
    }

    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .expect("a JSON error body")
            .to_owned()
    }
}

/// One HTTP/1.1 request on a fresh connection, sent byte for byte as given (so paths are
/// not normalised by a client library).
fn request(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // The server may answer (413) before reading the whole body and close.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw, method == "HEAD")
}

fn parse_response(raw: &[u8], head: bool) -> Resp {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let text = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if head {
        assert!(body.is_empty(), "a HEAD response with a body");
    } else if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v == "chunked")
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 2 + n + 2..];
    }
}

fn get(addr: SocketAddr, path: &str) -> Resp {
    request(addr, "GET", path, &[], b"")
}

fn swarm_status(addr: SocketAddr, hex: &str) -> serde_json::Value {
    let r = get(addr, &format!("/api/swarms/{hex}"));
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

/// Polls `f` every 50 ms until it is true; fails after a minute (a hang guard, not a
/// measurement).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < end, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write(dir: &Path, name: &str, len: usize, seed: u64) -> (PathBuf, Vec<u8>) {
    let data = content(len, seed);
    let p = dir.join(name);
    std::fs::write(&p, &data).unwrap();
    (p, data)
}

fn query_of(link: &str) -> &str {
    link.split_once('?').unwrap().1
}

fn sigterm(child: &mut Child) -> i32 {
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap().code().expect("exited, not killed")
}

#[test]
fn gateway_serves_a_swarm_through_a_second_serve_with_ranges() {
    let d = tmpdir("serve", "gateway");
    let (file, data) = write(&d, "clip.mp4", 300_000, 1);
    let seeder = serve(&["--seed", file.to_str().unwrap()], 1);
    let (hex, name, link) = seeder.swarms[0].clone();
    assert_eq!(name, "clip.mp4");
    assert!(link.contains(&format!("peer={}", seeder.udp)), "{link}");
    let viewer = serve(&[], 0);
    // Unknown swarm without link parameters: 404 saying how to start it.
    let r = get(viewer.http, &format!("/{hex}/clip.mp4"));
    assert_eq!(r.status, 404);
    assert!(r.error().contains("?peer="), "{}", r.error());
    // With them, the download starts and the body is the content, in order.
    let r = get(viewer.http, &format!("/{hex}/clip.mp4?{}", query_of(&link)));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("content-length"), Some("300000"));
    assert!(r.body == data, "the body differs from the content");
    // Ranges, HEAD, and the swarm known by its hex alone now.
    let r = request(
        viewer.http,
        "GET",
        &format!("/{hex}"),
        &["Range: bytes=1000-1999"],
        b"",
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 1000-1999/300000"));
    assert_eq!(r.header("content-length"), Some("1000"));
    // Without a name in the path, the type comes from the name the swarm was started with.
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    assert!(r.body == data[1000..2000]);
    let r = request(
        viewer.http,
        "GET",
        &format!("/{hex}"),
        &["Range: bytes=-10"],
        b"",
    );
    assert_eq!(r.status, 206);
    assert!(r.body == data[300_000 - 10..]);
    let r = request(
        viewer.http,
        "GET",
        &format!("/{hex}"),
        &["Range: bytes=299999-"],
        b"",
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, [data[299_999]]);
    let r = request(viewer.http, "HEAD", &format!("/{hex}/x.webm"), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("300000"));
    assert_eq!(r.header("content-type"), Some("video/webm"));
    // The control API lists it, complete, with the seeder as a peer.
    let s = swarm_status(viewer.http, &hex);
    assert_eq!(s["kind"], "download");
    assert_eq!(s["complete"], true);
    assert_eq!(s["verified"], 300_000);
    assert_eq!(s["progress"], 1.0);
    let peers = s["peer_stats"].as_array().unwrap();
    assert_eq!(peers[0]["address"], seeder.udp.to_string());
    assert_eq!(peers[0]["downloaded"], 300_000);
    let list = get(viewer.http, "/api/swarms").json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    // The page is self-contained: no external scripts, styles or images.
    let page = get(viewer.http, "/");
    assert_eq!(page.status, 200);
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.contains("<video") || html.contains("\"video\""));
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    drop(viewer);
    drop(seeder);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn gateway_answers_bad_ranges_and_paths_with_4xx() {
    let d = tmpdir("serve", "ranges");
    let (file, data) = write(&d, "f.bin", 5000, 2);
    let s = serve(&["--seed", file.to_str().unwrap()], 1);
    let hex = s.swarms[0].0.clone();
    let path = format!("/{hex}/f.bin");
    // Past the end: 416 with the length.
    for range in ["bytes=5000-", "bytes=9999-10000", "bytes=-0"] {
        let r = request(s.http, "GET", &path, &[&format!("Range: {range}")], b"");
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.header("content-range"), Some("bytes */5000"), "{range}");
        assert!(r.error().contains("outside"));
    }
    // Invalid or multiple ranges are ignored (RFC 9110 §14.2): the whole content.
    for range in [
        "bytes=abc",
        "bytes=9-2",
        "lines=1-2",
        "bytes=0-1,4-5",
        "bytes=--5",
    ] {
        let r = request(s.http, "GET", &path, &[&format!("Range: {range}")], b"");
        assert_eq!(r.status, 200, "{range}");
        assert!(r.body == data, "{range}");
    }
    // A bitrate gives the window deadlines; the bytes are the same.
    assert!(get(s.http, &format!("{path}?bitrate=4M")).body == data);
    // A range reaching past the end is cut at the end.
    let r = request(s.http, "GET", &path, &["Range: bytes=4990-99999"], b"");
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 4990-4999/5000"));
    assert!(r.body == data[4990..]);
    // Path tricks and unknown swarms.
    let unknown = "ab".repeat(20);
    for (p, want) in [
        (format!("/{hex}/../../etc/passwd"), 400),
        (format!("/{hex}/..%2f..%2fetc%2fpasswd"), 400),
        (format!("/{hex}/.ppspp-seed"), 400),
        (format!("/{hex}/a%00b"), 400),
        (format!("/{hex}/%zz"), 400),
        (format!("/{hex}/f.bin?bitrate=fast"), 400),
        (format!("/{hex}/f.bin?bitrate=0"), 400),
        ("/../etc/passwd".to_string(), 404),
        ("/etc/passwd".to_string(), 404),
        ("/favicon.ico".to_string(), 404),
        (format!("/{unknown}"), 404),
        (format!("/{unknown}?peer=nowhere"), 400),
        (format!("/{unknown}?peer=127.0.0.1:9&size=0"), 400),
        (format!("/{unknown}?peer=127.0.0.1:9&cs=99999999"), 400),
        (format!("/{}", "ab".repeat(21)), 404),
    ] {
        let r = get(s.http, &p);
        assert_eq!(
            r.status,
            want,
            "{p}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(!r.error().is_empty(), "{p}");
    }
    let r = request(s.http, "POST", &path, &[], b"x");
    assert_eq!(r.status, 405);
    // Nothing above disturbed the swarm.
    assert!(get(s.http, &path).body == data);
    assert_eq!(
        get(s.http, "/api/swarms").json().as_array().unwrap().len(),
        1
    );
    drop(s);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn control_api_rejects_bad_input_and_adds_and_removes_swarms() {
    let d = tmpdir("serve", "api");
    let (file, data) = write(&d, "v.webm", 40_000, 3);
    let seeder = serve(&["--seed", file.to_str().unwrap()], 1);
    let (hex, _, link) = seeder.swarms[0].clone();
    let state = d.join("state");
    let viewer = serve(&["--state", state.to_str().unwrap()], 0);
    let post = |body: &[u8]| request(viewer.http, "POST", "/api/swarms", &[], body);
    for (body, status, want) in [
        (b"{".to_vec(), 400, "malformed JSON"),
        (b"not json at all".to_vec(), 400, "malformed JSON"),
        (br#"{"link": 7}"#.to_vec(), 400, "malformed JSON"),
        (
            br#"{"link": "x", "admin": true}"#.to_vec(),
            400,
            "malformed JSON",
        ),
        (br#"{"link": "ppspp://nothex"}"#.to_vec(), 400, "bad link"),
        (
            format!(r#"{{"link": "ppspp://{hex}?origin=ftp://h/f"}}"#).into_bytes(),
            400,
            "origin",
        ),
        (
            format!(r#"{{"link": "ppspp://{hex}?tracker=notaurl"}}"#).into_bytes(),
            400,
            "tracker",
        ),
        (
            format!(r#"{{"link": "{hex}"}}"#).into_bytes(),
            400,
            "no peer",
        ),
        (
            format!(r#"{{"link": "{link}", "name": "../../etc/passwd"}}"#).into_bytes(),
            400,
            "dot",
        ),
        (
            format!(r#"{{"link": "{link}", "name": "a/b"}}"#).into_bytes(),
            400,
            "may not contain",
        ),
    ] {
        let r = post(&body);
        assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(&body));
        assert!(r.error().contains(want), "{}", r.error());
    }
    // A huge body is refused before it is read whole.
    let huge = vec![b' '; 4 << 20];
    let r = post(&huge);
    assert_eq!(r.status, 413);
    assert!(!r.error().is_empty());
    // Unknown swarms and bad IDs.
    let unknown = "cd".repeat(20);
    assert_eq!(
        get(viewer.http, &format!("/api/swarms/{unknown}")).status,
        404
    );
    assert_eq!(get(viewer.http, "/api/swarms/zz").status, 400);
    let r = request(
        viewer.http,
        "DELETE",
        &format!("/api/swarms/{unknown}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 404);
    assert!(r.error().contains("unknown swarm"));
    // Nothing was added by any of that.
    assert_eq!(
        get(viewer.http, "/api/swarms").json(),
        serde_json::json!([])
    );
    // A good request adds it (201), a repeat is 200, and it downloads.
    let body = format!(r#"{{"link": "{link}", "name": "v.webm"}}"#);
    let r = post(body.as_bytes());
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["swarm"], hex);
    assert_eq!(post(body.as_bytes()).status, 200);
    eventually("the download completes", || {
        swarm_status(viewer.http, &hex)["complete"] == true
    });
    let out = state.join("data").join(&hex);
    assert_eq!(std::fs::read(&out).unwrap(), data);
    // A bad delete query is refused; a good one removes the swarm and its data.
    let r = request(
        viewer.http,
        "DELETE",
        &format!("/api/swarms/{hex}?data=maybe"),
        &[],
        b"",
    );
    assert_eq!(r.status, 400);
    let r = request(
        viewer.http,
        "DELETE",
        &format!("/api/swarms/{hex}?data=delete"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["removed"], hex);
    eventually("the data is deleted", || !out.exists());
    assert_eq!(
        get(viewer.http, "/api/swarms").json(),
        serde_json::json!([])
    );
    assert_eq!(get(viewer.http, &format!("/api/swarms/{hex}")).status, 404);
    // The seeder's own file is untouched by all this.
    assert_eq!(std::fs::read(&file).unwrap(), data);
    drop(viewer);
    drop(seeder);
    std::fs::remove_dir_all(d).unwrap();
}

/// A seeder limited to `rate` bytes per second (`ppspp seed --max-rate`), so a download is
/// still in progress while a test looks at it.
fn slow_seeder(file: &Path, rate: &str) -> (Killed, String) {
    let mut child = Command::new(BIN)
        .args(["seed", "-q", "--listen", "127.0.0.1:0", "--max-rate", rate])
        .arg(file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let link = lines
        .map(Result::unwrap)
        .find_map(|l| l.strip_prefix("link ").map(str::to_owned))
        .unwrap();
    (Killed(child), link)
}

#[test]
fn a_client_leaving_mid_stream_ends_its_stream_and_others_carry_on() {
    let d = tmpdir("serve", "disconnect");
    let (file, data) = write(&d, "slow.bin", 2_000_000, 4);
    let (_seeder, link) = slow_seeder(&file, "200k");
    let hex = link.strip_prefix("ppspp://").unwrap()[..40].to_owned();
    let viewer = serve(&[], 0);
    let mut s = TcpStream::connect(viewer.http).unwrap();
    write!(
        s,
        "GET /{hex}/slow.bin?{} HTTP/1.1\r\nHost: x\r\n\r\n",
        query_of(&link)
    )
    .unwrap();
    // Read the headers and some of the body, then go away.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < 20_000 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the response ended early");
        got.extend_from_slice(&buf[..n]);
    }
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body = &got[head_end..];
    assert!(body.len() < data.len(), "the whole content arrived at once");
    assert!(body == &data[..body.len()], "streamed bytes differ");
    assert_eq!(
        swarm_status(viewer.http, &hex)["streams"],
        1,
        "the open response is counted"
    );
    // The reader's position is the swarm's playback position.
    let at = swarm_status(viewer.http, &hex)["playback_chunk"]
        .as_u64()
        .unwrap();
    assert!(
        at * 1024 + 1024 > body.len() as u64,
        "playback at chunk {at}, behind the {} bytes received",
        body.len()
    );
    // A seek (a new request with a Range) moves it there at once.
    let mut seek = TcpStream::connect(viewer.http).unwrap();
    write!(
        seek,
        "GET /{hex} HTTP/1.1\r\nHost: x\r\nRange: bytes=1000000-\r\n\r\n"
    )
    .unwrap();
    let mut first = [0u8; 64];
    assert!(seek.read(&mut first).unwrap() > 0);
    assert!(first.starts_with(b"HTTP/1.1 206"));
    eventually("the seek moves the playback position", || {
        let s = swarm_status(viewer.http, &hex);
        s["streams"] == 2 && s["playback_chunk"].as_u64().unwrap() >= 1_000_000 / 1024
    });
    drop(seek);
    drop(s);
    eventually("the abandoned responses are released", || {
        swarm_status(viewer.http, &hex)["streams"] == 0
    });
    // The swarm is not complete yet, and a new reader still gets every byte.
    assert_eq!(swarm_status(viewer.http, &hex)["complete"], false);
    let r = request(
        viewer.http,
        "GET",
        &format!("/{hex}"),
        &["Range: bytes=1500000-"],
        b"",
    );
    assert_eq!(r.status, 206);
    assert!(r.body == data[1_500_000..]);
    drop(viewer);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn sigterm_saves_state_and_a_restart_resumes_every_swarm() {
    let d = tmpdir("serve", "restart");
    let (mine, mine_data) = write(&d, "mine.mp4", 50_000, 5);
    let (theirs, theirs_data) = write(&d, "theirs.bin", 1_500_000, 6);
    let (_seeder, link) = slow_seeder(&theirs, "300k");
    let hex = link.strip_prefix("ppspp://").unwrap()[..40].to_owned();
    let state = d.join("state");
    let st = state.to_str().unwrap();
    let mut first = serve(
        &[
            "--state",
            st,
            "--seed",
            mine.to_str().unwrap(),
            "--get",
            &link,
        ],
        1,
    );
    let mine_hex = first.swarms[0].0.clone();
    eventually("part of the download verifies", || {
        let r = get(first.http, &format!("/api/swarms/{hex}"));
        r.status == 200 && r.json()["verified"].as_u64().unwrap() > 100_000
    });
    assert_eq!(sigterm(&mut first.child.0), 0, "a clean exit on SIGTERM");
    let cache = d.join("mine.mp4.ppspp-seed");
    let cache_mtime = std::fs::metadata(&cache).unwrap().modified().unwrap();
    let part = state.join("data").join(format!("{hex}.ppspp-part"));
    assert!(
        part.exists()
            && state
                .join("data")
                .join(format!("{hex}.ppspp-state"))
                .exists()
    );
    // The restart names no swarm: both come back from the state directory.
    let second = serve(&["--state", st], 1);
    assert_eq!(second.swarms[0].0, mine_hex, "the seed is back");
    // Downloads come back after the seeds' lines.
    eventually("the download is back", || {
        get(second.http, &format!("/api/swarms/{hex}")).status == 200
    });
    let s = swarm_status(second.http, &hex);
    assert!(
        s["verified"].as_u64().unwrap() > 100_000,
        "the download resumed from its state: {s}"
    );
    assert_eq!(
        std::fs::metadata(&cache).unwrap().modified().unwrap(),
        cache_mtime,
        "the unchanged seed was not hashed again"
    );
    eventually("the resumed download completes", || {
        swarm_status(second.http, &hex)["complete"] == true
    });
    assert!(std::fs::read(state.join("data").join(&hex)).unwrap() == theirs_data);
    assert!(get(second.http, &format!("/{mine_hex}")).body == mine_data);
    drop(second);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn get_to_stdout_streams_verified_bytes_in_order_before_the_end() {
    let d = tmpdir("serve", "stdout");
    let (file, data) = write(&d, "s.bin", 1_000_000, 7);
    let (mut seeder, link) = slow_seeder(&file, "400k");
    let mut get = Command::new(BIN)
        .args(["get", "-q", &link, "-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = get.stdout.take().unwrap();
    let mut got = vec![0u8; 50_000];
    out.read_exact(&mut got).unwrap();
    // Freeze the only source: what arrived so far came before the download could complete.
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(seeder.0.id() as i32, libc::SIGSTOP) };
    assert!(got == data[..50_000], "the first bytes differ");
    unsafe { libc::kill(seeder.0.id() as i32, libc::SIGCONT) };
    out.read_to_end(&mut got).unwrap();
    let status = get.wait().unwrap();
    let mut err = String::new();
    get.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{err}");
    assert_eq!(got.len(), data.len());
    assert!(got == data, "stdout differs from the content");
    assert!(
        err.contains("complete"),
        "the summary goes to stderr: {err}"
    );
    let _ = seeder.0.kill();
    std::fs::remove_dir_all(d).unwrap();
}
