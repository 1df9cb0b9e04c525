//! `ppspp-sim wan`: the wide-area bench's links ([`ppspp_sim::presets`]) simulated.

use std::process::ExitCode;

use clap::Args;

use ppspp_sim::Simulation;
use ppspp_sim::presets::{LinkPreset, Throughput};

/// Arguments of `ppspp-sim wan`.
#[derive(Args, Debug)]
pub(crate) struct WanArgs {
    /// The link: `B` (50 ms each way, 100 Mbit/s), `A` (20 ms each way, 1% loss each way) or
    /// `reorder` (B with 2% of datagrams reordered by up to 10 ms); repeatable.
    #[arg(long = "link", default_value = "B")]
    links: Vec<LinkPreset>,
    /// Leechers (besides the one seeder); repeatable, e.g. `--leechers 1 --leechers 4`.
    #[arg(long = "leechers", default_value = "1")]
    leechers: Vec<u32>,
    /// Content size in bytes (suffixes K, M: powers of 1024).
    #[arg(long, default_value = "64M", value_parser = parse_size)]
    content_size: u64,
    /// Chunk size in bytes.
    #[arg(long, default_value_t = 1024)]
    chunk_size: u32,
    /// The first run seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Runs per link and swarm size (seeds `seed`, `seed + 1`, ...).
    #[arg(long, default_value_t = 1)]
    runs: u64,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mul) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M') => (&s[..s.len() - 1], 1 << 20),
        Some('G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let v: u64 = num.parse().map_err(|e| format!("{s}: {e}"))?;
    match v.checked_mul(mul) {
        Some(0) | None => Err(format!("{s}: must be between 1 byte and 2^64")),
        Some(n) => Ok(n),
    }
}

/// Runs every link × swarm size × seed and prints one row per run.
pub(crate) fn wan_cmd(a: &WanArgs) -> ExitCode {
    println!(
        "{:<8} {:<8} {:>5} {:>9} {:>10} {:>10} {:>10} {:>8} {:>8} {:>8} {:>7}",
        "link",
        "swarm",
        "seed",
        "complete",
        "min Mbit/s",
        "med Mbit/s",
        "max Mbit/s",
        "med MB/s",
        "rexmit",
        "spurious",
        "wall s"
    );
    let mut ok = true;
    for &link in &a.links {
        for &n in &a.leechers {
            for seed in a.seed..a.seed.saturating_add(a.runs.max(1)) {
                let sc = link.scenario(n.max(1), a.content_size, a.chunk_size.max(1), seed);
                let sim = match Simulation::new(sc) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("error: cannot build the content: {e:?}");
                        return ExitCode::FAILURE;
                    }
                };
                let r = sim.run();
                let t = Throughput::of(&r);
                ok &= t.complete == t.leechers;
                println!(
                    "{:<8} {:<8} {:>5} {:>9} {:>10.1} {:>10.1} {:>10.1} {:>8.2} {:>8} {:>8} {:>7.1}",
                    link.name(),
                    format!("1+{n}"),
                    seed,
                    format!("{}/{}", t.complete, t.leechers),
                    t.min_mbit,
                    t.median_mbit,
                    t.max_mbit,
                    t.median_mbit / 8.0,
                    t.retransmissions,
                    t.spurious,
                    r.wall_time_s
                );
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
