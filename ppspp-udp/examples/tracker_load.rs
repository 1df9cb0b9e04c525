//! A load test for `ppspp tracker` on loopback: N CONNECTs (distinct peer IDs, one swarm)
//! from this host, C at a time; prints the registrations per second, what the tracker
//! answered, and its resident memory before and after (from /proc, given its PID).
//!
//! ```sh
//! ppspp tracker --listen 127.0.0.1:0 --max-source-peers 1000000 --rate 1000000 --burst 1000000 &
//! cargo run --release -p ppspp-udp --example tracker_load -- URL PID 50000 32
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

fn rss_kib(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn connect_body(i: u64) -> String {
    format!(
        r#"{{"PPSPTrackerProtocol": {{"version": 1, "request_type": "CONNECT",
           "transaction_id": "{i}", "peer_id": "load-{i:016x}", "connect": {{
           "peer_addr": [{{"ip_address": {{"address_type": "ipv4", "address": "127.0.0.1"}},
             "port": {}, "priority": 1, "type": "HOST"}}],
           "swarm_action": [{{"swarm_id": "{}", "action": "JOIN", "peer_mode": "LEECH"}}]}}}}}}"#,
        1024 + i % 60000,
        "ab".repeat(20)
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, pid, n, c] = &args[..] else {
        eprintln!("usage: tracker_load URL TRACKER_PID REQUESTS CONCURRENCY");
        std::process::exit(2);
    };
    let n: u64 = n.parse().expect("REQUESTS");
    let c: u64 = c.parse().expect("CONCURRENCY");
    let before = rss_kib(pid).unwrap_or(0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ok = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let mut tasks = Vec::new();
        for _ in 0..c {
            let (http, url, ok, refused, next) = (
                http.clone(),
                url.clone(),
                ok.clone(),
                refused.clone(),
                next.clone(),
            );
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let r = http.post(&url).body(connect_body(i)).send().await;
                    match r {
                        Ok(r) if r.status().is_success() => ok.fetch_add(1, Ordering::Relaxed),
                        _ => refused.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let after = rss_kib(pid).unwrap_or(0);
    let ok = ok.load(Ordering::Relaxed);
    println!(
        "requests {n} in {secs:.2} s: {:.0}/s; accepted {ok}, refused {}",
        n as f64 / secs,
        refused.load(Ordering::Relaxed)
    );
    println!(
        "tracker RSS {before} KiB -> {after} KiB ({:.0} bytes per accepted registration)",
        (after.saturating_sub(before) * 1024) as f64 / ok.max(1) as f64
    );
}
