use ppspp_core::time::{Duration, Instant};
use ppspp_sim::Simulation;
use ppspp_sim::presets::LinkPreset;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let link: LinkPreset = args
        .get(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(LinkPreset::B);
    let n: u32 = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(1);
    let size: u64 = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(64 << 20);
    let step = Duration::from_millis(args.get(4).map(|s| s.parse().unwrap()).unwrap_or(100));
    let sc = link.scenario(n, size, 1024, 1);
    let mut sim = Simulation::new(sc).unwrap();
    let mut t = Instant::ZERO;
    let mut last: Vec<u64> = vec![0; 8];
    loop {
        t = t + step;
        while sim.step(t) {}
        let mut line = format!("{:6.2}", t.as_micros() as f64 / 1e6);
        let mut done = true;
        for id in 0..=n {
            let Some(ep) = sim.endpoint(id) else { continue };
            let Some(sw) = ep.swarms().next() else {
                continue;
            };
            let s = ep.swarm(sw).unwrap();
            if id > 0 && !s.is_complete() {
                done = false;
            }
            let mut out = 0u64;
            let mut parts = String::new();
            for p in s.peers() {
                let pr = ep.peer(p).unwrap();
                let st = pr.stats();
                out += st.content_out;
                if id <= 1 {
                    parts += &format!(" {}", pr.debug_line());
                }
            }
            let d = out - last[id as usize];
            last[id as usize] = out;
            line += &format!(
                " | n{id} up{:6.1}{parts}",
                d as f64 * 8.0 / step.as_micros() as f64
            );
        }
        println!("{line}");
        if done || t.as_micros() > 30_000_000 {
            break;
        }
    }
}
