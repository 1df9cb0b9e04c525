//! One wide-area preset run (`ppspp-sim wan`'s links) printed as a time series: every
//! interval, each node's upload rate and, per connected peer, its congestion window,
//! bytes in flight and RTT. For tuning the congestion controller and the request pipeline.
//!
//! `cargo run --release -p ppspp-sim --example wan_trace -- [B|A|reorder] [LEECHERS] [BYTES] [MS] [SEED]`

use ppspp_core::time::{Duration, Instant};
use ppspp_sim::Simulation;
use ppspp_sim::presets::LinkPreset;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i)
        .map(|s| s.parse().unwrap_or_else(|_| panic!("bad argument {s:?}")))
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let link: LinkPreset = arg(&args, 1, LinkPreset::B);
    let leechers: u32 = arg(&args, 2, 1);
    let size: u64 = arg(&args, 3, 64 << 20);
    let step = Duration::from_millis(arg(&args, 4, 100));
    let seed: u64 = arg(&args, 5, 1);
    let mut sim = Simulation::new(link.scenario(leechers, size, 1024, seed)).expect("content");
    let mut t = Instant::ZERO;
    let mut last = vec![0u64; leechers as usize + 1];
    loop {
        t += step;
        while sim.step(t) {}
        let mut line = format!("{:6.2}", t.as_micros() as f64 / 1e6);
        let mut done = true;
        for id in 0..=leechers {
            let Some(ep) = sim.endpoint(id) else { continue };
            let Some(swarm) = ep.swarms().next().and_then(|h| ep.swarm(h)) else {
                continue;
            };
            done &= id == 0 || swarm.is_complete();
            let mut out = 0;
            let mut peers = String::new();
            for p in swarm.peers().filter_map(|p| ep.peer(p)) {
                let st = p.stats();
                out += st.content_out;
                if st.in_flight > 0 {
                    peers += &format!(
                        " [cwnd {:5} KiB, flight {:5} KiB, rtt {:3} ms]",
                        st.cwnd / 1024,
                        st.in_flight / 1024,
                        st.rtt.map_or(0, |r| r.as_millis())
                    );
                }
            }
            let rate = (out - last[id as usize]) as f64 * 8.0 / step.as_micros() as f64;
            last[id as usize] = out;
            line += &format!(" | node {id} up {rate:6.1} Mbit/s{peers}");
        }
        println!("{line}");
        if done || t.as_micros() > 120_000_000 {
            break;
        }
    }
}
