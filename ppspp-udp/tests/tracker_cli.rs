//! `ppspp tracker` with the built binary: a seeder and leechers that know only the tracker's
//! URL, the tracker's state as they come and go, and the PPSTP error codes over HTTP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{Killed, content, tmpdir};

const BIN: &str = env!("CARGO_BIN_EXE_ppspp");

/// A running `ppspp tracker` and its URL.
struct TrackerProc {
    child: Killed,
    url: String,
}

impl TrackerProc {
    fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["tracker", "--listen", "127.0.0.1:0", "--quiet"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim_end()
            .strip_prefix("tracker ")
            .unwrap_or_else(|| panic!("expected `tracker URL`, got {line:?}"))
            .to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:") && url.ends_with("/ppstp"),
            "{url}"
        );
        Self {
            child: Killed(child),
            url,
        }
    }

    /// host:port of the URL.
    fn authority(&self) -> &str {
        let rest = self.url.strip_prefix("http://").unwrap();
        &rest[..rest.find('/').unwrap()]
    }

    /// One HTTP/1.1 exchange with the tracker; returns the status and the body.
    fn http(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        exchange(self.authority(), method, path, body)
    }

    fn post(&self, body: &[u8]) -> (u16, serde_json::Value) {
        let (status, body) = self.http("POST", "/ppstp", body);
        let v = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)));
        (status, v)
    }

    fn state(&self) -> serde_json::Value {
        let (status, body) = self.http("GET", "/ppstp/state", b"");
        assert_eq!(status, 200);
        serde_json::from_slice(&body).unwrap()
    }
}

fn signal(child: &Child, sig: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on a child process this test spawned and has not reaped yet.
    unsafe { libc::kill(pid, sig) };
}

/// Waits for a child to exit (bounded, so a hang fails the test instead of the CI job).
fn wait_exit(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(Instant::now() < end, "{what} did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_seeder(file: &Path, tracker: &str) -> (Killed, String) {
    let mut child = Command::new(BIN)
        .arg("seed")
        .arg(file)
        .args(["--listen", "127.0.0.1:0", "--quiet", "--tracker", tracker])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let swarm = lines.next().unwrap().unwrap();
    let swarm = swarm.strip_prefix("swarm ").unwrap().to_owned();
    let _listening = lines.next().unwrap().unwrap();
    let link = lines.next().unwrap().unwrap();
    assert!(
        link.contains(&format!("&tracker={tracker}")),
        "the link names the tracker: {link}"
    );
    (Killed(child), swarm)
}

/// Polls the tracker's state until `pred` holds (the seeder registers in the background).
fn state_until(
    t: &TrackerProc,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let s = t.state();
        if pred(&s) {
            return s;
        }
        assert!(Instant::now() < end, "{what}; state: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_seeder_and_five_leechers_that_know_only_the_tracker() {
    let d = tmpdir("tracker", "five-leechers");
    let data = content(300 * 1024 + 5, 16);
    let src = d.join("content");
    std::fs::write(&src, &data).unwrap();
    let tracker = TrackerProc::start(&[]);
    let (mut seeder, swarm) = start_seeder(&src, &tracker.url);
    let s = state_until(&tracker, "the seeder registers", |s| {
        s["registered_peers"] == 1
    });
    assert_eq!(s["swarms"][0]["swarm_id"], swarm.as_str());
    assert_eq!(s["swarms"][0]["peers"][0]["mode"], "SEEDER");

    // The leechers get the bare swarm ID and the tracker, no peer address.
    let gets: Vec<(std::path::PathBuf, Child)> = (0..5)
        .map(|i| {
            let out = d.join(format!("out{i}"));
            let child = Command::new(BIN)
                .args([
                    "get",
                    &swarm,
                    "--tracker",
                    &tracker.url,
                    "--timeout",
                    "30",
                    "--quiet",
                ])
                .arg("-o")
                .arg(&out)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (out, child)
        })
        .collect();
    for (out, child) in gets {
        let o = child.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "get {} failed: {}",
            out.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        let summary = String::from_utf8_lossy(&o.stdout);
        assert!(
            summary.starts_with(&format!("complete {}", out.display())),
            "{summary}"
        );
        assert!(
            std::fs::read(&out).unwrap() == data,
            "{} differs",
            out.display()
        );
    }

    // Every leecher said LEAVE on its way out: the seeder alone remains.
    let s = tracker.state();
    assert_eq!(s["registered_peers"], 1, "{s}");
    let members = s["swarms"][0]["peers"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{s}");
    assert_eq!(members[0]["mode"], "SEEDER");
    let c = &s["counters"];
    assert_eq!(c["registered"], 6, "{s}");
    assert_eq!(c["deregistered"], 5, "{s}");
    assert!(c["peer_lists"].as_u64().unwrap() >= 5, "{s}");
    assert_eq!(c["bad_request"], 0);
    assert_eq!(c["forbidden"], 0, "{s}");

    // Ctrl-C on the seeder: it leaves too, and the tracker is empty.
    signal(&seeder.0, libc::SIGINT);
    assert!(wait_exit(&mut seeder.0, "the seeder").success());
    let s = tracker.state();
    assert_eq!(s["registered_peers"], 0, "{s}");
    assert_eq!(s["swarms"].as_array().unwrap().len(), 0, "{s}");
    assert_eq!(s["counters"]["deregistered"], 6, "{s}");

    // SIGTERM stops the tracker cleanly.
    let mut tracker = tracker;
    signal(&tracker.child.0, libc::SIGTERM);
    assert!(wait_exit(&mut tracker.child.0, "the tracker").success());
    std::fs::remove_dir_all(d).unwrap();
}

fn request(version: u32, kind: &str, data: &str) -> Vec<u8> {
    format!(
        r#"{{"PPSPTrackerProtocol": {{"version": {version}, "request_type": "{kind}",
            "transaction_id": "42", "peer_id": "p1"{data}}}}}"#
    )
    .into_bytes()
}

#[test]
fn bad_requests_get_the_rfc_error_codes_over_http() {
    let t = TrackerProc::start(&[]);
    let root = "PPSPTrackerProtocol";
    for body in [
        &b""[..],
        b"garbage",
        b"{}",
        br#"{"PPSPTrackerProtocol": {"version": 1}}"#,
    ] {
        let (status, v) = t.post(body);
        assert_eq!((status, &v[root]["error_code"]), (400, &1.into()));
        assert_eq!(v[root]["response_type"], 1);
        assert!(v[root].get("swarm_result").is_none());
    }
    let (status, v) = t.post(&request(2, "FIND", r#", "find": {"swarm_id": "s"}"#));
    assert_eq!((status, &v[root]["error_code"]), (400, &2.into()));
    assert_eq!(v[root]["transaction_id"], "42");
    // Not registered: 03.
    let (status, v) = t.post(&request(1, "FIND", r#", "find": {"swarm_id": "s"}"#));
    assert_eq!((status, &v[root]["error_code"]), (403, &3.into()));
    // A body over the limit.
    let (status, v) = t.post(&vec![b' '; 200 * 1024]);
    assert_eq!((status, &v[root]["error_code"]), (400, &1.into()));
    // A well-formed CONNECT still works, with the RFC's example form (single objects).
    let (status, v) = t.post(&request(
        1,
        "CONNECT",
        r#", "connect": {"peer_addr": {"ip_address": {"address_type": "ipv4",
            "address": "127.0.0.1"}, "port": 9, "priority": 1, "type": "HOST"},
            "swarm_action": {"swarm_id": "s", "action": "JOIN", "peer_mode": "SEEDER"}}"#,
    ));
    assert_eq!((status, &v[root]["error_code"]), (200, &0.into()), "{v}");
    assert_eq!(v[root]["swarm_result"][0]["result"], 0);
    let s = t.state();
    assert_eq!(s["registered_peers"], 1);
    assert_eq!(s["counters"]["bad_request"], 5, "{s}");
    assert_eq!(s["counters"]["unsupported_version"], 1);
    assert_eq!(s["counters"]["forbidden"], 1);
}

#[test]
fn a_flood_from_one_source_is_rate_limited_and_bounded() {
    let t = TrackerProc::start(&["--burst", "10", "--rate", "1", "--max-source-peers", "5"]);
    let mut codes = Vec::new();
    for i in 0..30 {
        let body = format!(
            r#"{{"PPSPTrackerProtocol": {{"version": 1, "request_type": "CONNECT",
                "transaction_id": "{i}", "peer_id": "flood{i}", "connect": {{"swarm_action":
                [{{"swarm_id": "s", "action": "JOIN", "peer_mode": "LEECH"}}]}}}}}}"#
        );
        let (status, v) = t.post(body.as_bytes());
        codes.push((
            status,
            v["PPSPTrackerProtocol"]["error_code"].as_u64().unwrap(),
        ));
    }
    let ok = codes.iter().filter(|c| **c == (200, 0)).count();
    let limited = codes.iter().filter(|c| **c == (503, 5)).count();
    assert_eq!(ok + limited, 30, "{codes:?}");
    // The burst passes (plus what refills while the flood runs), the rest is refused.
    assert!((10..20).contains(&ok), "{codes:?}");
    let s = t.state();
    // Only the source's five newest registrations remain.
    assert_eq!(s["registered_peers"], 5, "{s}");
    assert_eq!(
        s["counters"]["rate_limited"].as_u64().unwrap(),
        limited as u64
    );
    assert_eq!(s["counters"]["evicted"].as_u64().unwrap(), ok as u64 - 5);
}

/// One HTTP/1.1 exchange with `addr` (a PPSTP body type, read to the end); returns the
/// status and the body.
fn exchange(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/ppsp-tracker+json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let status_line = String::from_utf8_lossy(&resp[..split]).into_owned();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    (status, resp[split + 4..].to_vec())
}

/// `GET path` on `addr`; status and body.
fn http_get(addr: &str, path: &str) -> (u16, Vec<u8>) {
    exchange(addr, "GET", path, b"")
}

#[test]
fn serve_finds_peers_through_the_tracker_and_is_found_through_it() {
    let d = tmpdir("tracker", "serve");
    let data = content(200 * 1024 + 7, 17);
    let src = d.join("content");
    std::fs::write(&src, &data).unwrap();
    let tracker = TrackerProc::start(&[]);
    let (mut seeder, swarm) = start_seeder(&src, &tracker.url);
    state_until(&tracker, "the seeder registers", |s| {
        s["registered_peers"] == 1
    });
    // serve knows the tracker only (`--tracker`); the link names no peer and no size.
    let serve = common::start_serve(
        &[
            "--tracker",
            &tracker.url,
            "--get",
            &format!("ppspp://{swarm}?cs=1024"),
        ],
        0,
    );
    let http = serve.http.to_string();
    // `--get` swarms are added after the addresses are printed.
    let end = Instant::now() + Duration::from_secs(20);
    while http_get(&http, &format!("/api/swarms/{swarm}")).0 != 200 {
        assert!(Instant::now() < end, "serve never listed the swarm");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = http_get(&http, &format!("/{swarm}"));
    assert_eq!(status, 200);
    assert!(body == data, "the gateway served other bytes");
    let (status, list) = http_get(&http, &format!("/api/swarms/{swarm}"));
    assert_eq!(status, 200);
    let j: serde_json::Value = serde_json::from_slice(&list).unwrap();
    assert_eq!(j["trackers"][0], tracker.url.as_str(), "{j}");
    // serve registered, and once complete reports itself a seeder.
    state_until(&tracker, "serve registers as a seeder", |s| {
        s["registered_peers"] == 2
            && s["swarms"][0]["peers"]
                .as_array()
                .is_some_and(|p| p.iter().all(|m| m["mode"] == "SEEDER"))
    });
    // Without the first seeder, a peer that knows only the tracker gets it from serve.
    signal(&seeder.0, libc::SIGINT);
    assert!(wait_exit(&mut seeder.0, "the seeder").success());
    state_until(&tracker, "the seeder leaves", |s| {
        s["registered_peers"] == 1
    });
    let out = d.join("out");
    let o = Command::new(BIN)
        .args(["get", &swarm, "--tracker", &tracker.url, "--timeout", "30"])
        .args(["--quiet", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(&out).unwrap() == data);
    drop(serve);
    std::fs::remove_dir_all(d).unwrap();
}
