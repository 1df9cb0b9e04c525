//! The "Must show": a video seeded by one `ppspp serve`, played in real headless
//! Chromium through another `ppspp serve`'s gateway across an emulated link (two network
//! namespaces joined by `ppspp-netem`: 20 Mbit/s, 30 ms each way, RTT 60 ms). Playback
//! starts, `currentTime` reaches the end, a seek to 70% plays on, and the page's progress bar
//! reaches 100%. A screenshot of the page is kept in `target/test-artifacts/`.
//!
//! Needs root (namespaces, TUN), Debian's `chromium` and `chromium-driver`, and `ffmpeg`
//! (the test video, a 10 s VP8 WebM of about 4 MB, is generated at test time); otherwise it prints
//! `skipped: <why>` and passes. CI runs as root with those packages installed.
//!
//! The WebDriver client runs on a thread that entered the viewer's namespace (`setns` moves
//! only the calling thread), so it reaches chromedriver and the gateway on that namespace's
//! loopback.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Killed, Terminated, tmpdir};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_ppspp");
const NS: [&str; 2] = ["ppbrw0", "ppbrw1"];
const TUN: &str = "ppbrt";
const SUBNET: &str = "10.79.0";
const HTTP_PORT: u16 = 18_080;
const DRIVER_PORT: u16 = 19_515;

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

/// Why the test cannot run here, or `None` when it can.
fn unavailable() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root (network namespaces and TUN devices need it)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    for (tool, package) in [
        ("chromium", "chromium"),
        ("chromedriver", "chromium-driver"),
        ("ffmpeg", "ffmpeg"),
        ("ip", "iproute2"),
    ] {
        if which(tool).is_none() {
            return Some(format!("no {tool} (apt-get install {package})"));
        }
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) if o.status.success() => None,
        _ => Some("`ip netns list` fails".into()),
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

fn addr(i: usize) -> String {
    format!("{SUBNET}.{}", i + 1)
}

/// The emulator and the namespaces, removed when dropped.
struct Net {
    netem: Option<Killed>,
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in NS {
            // Anything still running in our namespaces is ours.
            if let Ok(o) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    let _ = Command::new("kill").arg(pid).status();
                }
            }
        }
        self.netem.take();
        for ns in NS {
            if Path::new("/run/netns").join(ns).exists() {
                let _ = Command::new("ip").args(["netns", "del", ns]).status();
            }
        }
    }
}

/// The `ppspp-netem` binary beside `ppspp`, built if missing.
fn netem_bin() -> PathBuf {
    let p = Path::new(BIN).with_file_name("ppspp-netem");
    if !p.exists() {
        run(Command::new(env!("CARGO"))
            .args(["build", "-p", "ppspp-netem"])
            .current_dir(env!("CARGO_MANIFEST_DIR")));
    }
    p
}

fn net_up(dir: &Path) -> Net {
    let mut net = Net { netem: None };
    drop(Net { netem: None }); // leftovers of a killed run
    for ns in NS {
        ip(&["netns", "add", ns]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }
    let log = dir.join("netem.log");
    let child = Command::new(netem_bin())
        .args(["--hosts", "2", "--tun-prefix", TUN, "--subnet", SUBNET])
        .args(["--delay-ms", "30", "--rate-mbit", "20", "--seed", "1"])
        .stdout(File::create(&log).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    net.netem = Some(Killed(child));
    wait_until("the emulator is ready", || {
        std::fs::read_to_string(&log).is_ok_and(|s| s.lines().any(|l| l.starts_with("ready")))
    });
    for (i, ns) in NS.iter().enumerate() {
        let dev = format!("{TUN}{i}");
        ip(&["link", "set", &dev, "netns", ns]);
        ip(&["-n", ns, "link", "set", &dev, "mtu", "1500", "up"]);
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{}/24", addr(i)),
            "dev",
            &dev,
        ]);
    }
    net
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(90);
    while !f() {
        assert!(Instant::now() < end, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn in_ns(ns: &str, program: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, program]);
    c
}

/// A `ppspp serve` in a namespace; returns it and its stdout lines up to `lines`.
fn serve_in(ns: &str, args: &[&str], lines: usize) -> (Terminated, Vec<String>) {
    let mut child = in_ns(ns, BIN)
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let got: Vec<String> = BufReader::new(out)
        .lines()
        .take(lines)
        .map(Result::unwrap)
        .collect();
    assert_eq!(got.len(), lines, "serve stopped early: {got:?}");
    (Terminated(child), got)
}

fn make_video(path: &Path) {
    // 10 s of a moving test pattern with noise (so it does not compress to nothing: about
    // 3 Mbit/s, 4 MB, which takes a few seconds on the link), VP8 in WebM with the cues
    // (the seek index) at the front.
    run(Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi"])
        .args(["-i", "testsrc=duration=10:size=480x270:rate=25"])
        .args(["-vf", "noise=alls=30:allf=t"])
        .args(["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8"])
        .args(["-b:v", "3M", "-minrate", "3M", "-maxrate", "3M"])
        .args(["-g", "25", "-an"])
        .args(["-cues_to_front", "1", "-reserve_index_space", "16384"])
        .arg(path));
}

/// Enters network namespace `ns` on this thread only.
fn enter_ns(ns: &str) {
    let f = File::open(format!("/run/netns/{ns}")).unwrap();
    // SAFETY: setns on a descriptor we own; it changes this thread's network namespace.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
}

#[test]
fn chromium_plays_a_video_through_the_gateway_across_an_emulated_link() {
    if let Some(why) = unavailable() {
        println!("skipped: {why}");
        return;
    }
    let dir = tmpdir("browser", "play");
    let video = dir.join("clip.webm");
    make_video(&video);
    let _net = net_up(&dir);
    let (_seeder, lines) = serve_in(
        NS[0],
        &[
            "--listen",
            &format!("{}:7000", addr(0)),
            "--http",
            "127.0.0.1:0",
            "--seed",
            video.to_str().unwrap(),
        ],
        4,
    );
    let hex = lines[2].split(' ').nth(1).unwrap().to_owned();
    let link = lines[3].strip_prefix("link ").unwrap().to_owned();
    assert!(link.contains(&format!("peer={}:7000", addr(0))), "{link}");
    let http = format!("127.0.0.1:{HTTP_PORT}");
    let (_viewer, _) = serve_in(
        NS[1],
        &["--listen", &format!("{}:7001", addr(1)), "--http", &http],
        2,
    );
    let profile = dir.join("chromium-profile");
    let driver = Killed(
        in_ns(NS[1], "chromedriver")
            .arg(format!("--port={DRIVER_PORT}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let artifacts = Path::new(BIN)
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("serve-browser.png");
    let query = link.split_once('?').unwrap().1.to_owned();
    let result = std::thread::spawn(move || {
        enter_ns(NS[1]);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(play(&http, &hex, &query, &profile, &shot))
    })
    .join()
    .unwrap();
    drop(driver);
    let report = result.unwrap_or_else(|e| panic!("{e}"));
    println!("{report}");
    std::fs::remove_dir_all(&dir).unwrap();
}

async fn raw_get(http: &str, path: &str, method: &str) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(http).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = String::from_utf8_lossy(&raw[..end])
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    (status, raw[end + 4..].to_vec())
}

/// Polls the script's JSON value until `ok` holds (a hang guard of `secs`, not a measure).
async fn until(
    c: &fantoccini::Client,
    what: &str,
    script: &str,
    secs: u64,
    ok: impl Fn(&Value) -> bool,
) -> Result<Value, String> {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = c
            .execute(script, vec![])
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        if ok(&v) {
            return Ok(v);
        }
        if Instant::now() > end {
            return Err(format!("never happened: {what} (last: {v})"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const STATE: &str = "const v = document.querySelector('video'); \
    return v && { t: v.currentTime, d: v.duration, ended: v.ended, paused: v.paused, \
    err: v.error && v.error.code, ready: v.readyState };";

async fn play(
    http: &str,
    hex: &str,
    query: &str,
    profile: &Path,
    shot: &Path,
) -> Result<String, String> {
    // Start the download through the gateway (on demand, from the link's parameters).
    let (status, _) = raw_get(http, &format!("/{hex}/clip.webm?{query}"), "HEAD").await;
    if status != 200 {
        return Err(format!("HEAD through the gateway: {status}"));
    }
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--mute-audio",
                "--autoplay-policy=no-user-gesture-required", "--window-size=1000,800",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let mut builder =
        fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
    builder.capabilities(caps.as_object().unwrap().clone());
    let mut client = None;
    for _ in 0..100 {
        match builder
            .connect(&format!("http://127.0.0.1:{DRIVER_PORT}"))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let c = client.ok_or("chromedriver did not answer")?;
    let r = watch(&c, http, shot).await;
    let _ = c.close().await;
    r
}

async fn watch(c: &fantoccini::Client, http: &str, shot: &Path) -> Result<String, String> {
    c.goto(&format!("http://{http}/"))
        .await
        .map_err(|e| e.to_string())?;
    until(c, "the page shows a player", STATE, 30, |v| !v.is_null()).await?;
    c.execute(
        "const v = document.querySelector('video'); v.muted = true; v.play(); return true;",
        vec![],
    )
    .await
    .map_err(|e| e.to_string())?;
    let started = until(c, "playback starts", STATE, 60, |v| {
        v["t"].as_f64().unwrap_or(0.0) > 0.5 || !v["err"].is_null()
    })
    .await?;
    if !started["err"].is_null() {
        return Err(format!("the player failed: {started}"));
    }
    let end = until(c, "currentTime reaches the end", STATE, 60, |v| {
        v["ended"] == true || !v["err"].is_null()
    })
    .await?;
    let duration = end["d"].as_f64().unwrap_or(0.0);
    if !end["err"].is_null() || (end["t"].as_f64().unwrap_or(0.0) - duration).abs() > 0.5 {
        return Err(format!("playback did not end at the end: {end}"));
    }
    // Seek to 70% and play on from there.
    c.execute(
        "const v = document.querySelector('video'); v.currentTime = v.duration * 0.7; \
         v.play(); return true;",
        vec![],
    )
    .await
    .map_err(|e| e.to_string())?;
    let target = duration * 0.7;
    let after = until(c, "playback goes on after the seek", STATE, 60, |v| {
        let t = v["t"].as_f64().unwrap_or(0.0);
        (t > target + 1.0 && v["paused"] == false) || v["ended"] == true || !v["err"].is_null()
    })
    .await?;
    if !after["err"].is_null() {
        return Err(format!("the player failed after the seek: {after}"));
    }
    let bar = until(
        c,
        "the page's progress bar reaches 100%",
        "const s = document.querySelector('.swarm'); return s && s.dataset.progress;",
        60,
        |v| v == "100",
    )
    .await?;
    let png = c.screenshot().await.map_err(|e| e.to_string())?;
    std::fs::write(shot, png).map_err(|e| e.to_string())?;
    let (status, api) = raw_get(http, "/api/swarms", "GET").await;
    let api: Value = serde_json::from_slice(&api).map_err(|e| e.to_string())?;
    if status != 200 || api[0]["complete"] != true {
        return Err(format!("the gateway's swarm is not complete: {api}"));
    }
    Ok(format!(
        "played {duration:.1} s to the end, sought to {target:.1} s and played on to {:.1} s; \
         progress bar {bar}; screenshot {}",
        after["t"].as_f64().unwrap_or(0.0),
        shot.display()
    ))
}
