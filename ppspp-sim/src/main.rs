//! `ppspp-sim`: run a simulated PPSPP swarm and print a report.
//!
//! - `ppspp-sim` runs the default scenario;
//! - `ppspp-sim run --peers N --content-size BYTES ... --seed S [--json FILE] [--svg FILE]`;
//! - `ppspp-sim vopr [--seed S] [--count N]` runs randomized fault scenarios (exit 0 pass,
//!   1 safety failure, 2 liveness failure);
//! - `ppspp-sim wan --link B|A|reorder --leechers N` simulates the wide-area bench's links.
#![forbid(unsafe_code)]

mod wan_cli;

use std::io::IsTerminal;

/// The simulator allocates and frees a buffer per datagram and keeps thousands of endpoints'
/// maps alive: mimalloc's per-size free lists are faster than the system allocator here.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use indicatif::{ProgressBar, ProgressStyle};

use ppspp_core::time::Duration;
use ppspp_sim::scenario::{Churn, Crashes, Partition, PartitionMode};
use ppspp_sim::vopr::{self, Verdict};
use ppspp_sim::{Progress, Report, Scenario, Simulation};

#[derive(Parser, Debug)]
#[command(name = "ppspp-sim", version)]
/// Deterministic PPSPP swarm simulator: thousands of real engines over a simulated network
/// in virtual time, reproducible from one seed.
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run one scenario (exit 1 on a safety failure or when no leecher completes).
    Run(Box<RunArgs>),
    /// Randomized fault testing: scenarios drawn from seeds, safety and liveness checked
    /// (exit 1 on any failure; the lines say which seeds and why).
    Vopr(VoprArgs),
    /// The wide-area bench's links (benches/wan.sh): throughput per leecher.
    Wan(wan_cli::WanArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Leechers.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    peers: u32,
    /// Content size in bytes (suffixes K, M, G: powers of 1024).
    #[arg(long, default_value = "1M", value_parser = ppspp_cli_args::size)]
    content_size: u64,
    /// Chunk size in bytes (one chunk and its DATA header must fit a 1,472-byte datagram).
    #[arg(long, default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_SIM_CHUNK)))]
    chunk_size: u32,
    /// Original seeders.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    seeders: u32,
    /// End-to-end random loss probability (0..1).
    #[arg(long, default_value = "0.01", value_parser = ppspp_cli_args::probability)]
    loss: f64,
    /// Bursty (Gilbert-Elliott) loss with this mean burst length in datagrams (at least 1).
    #[arg(long, value_parser = ppspp_cli_args::at_least_one)]
    burst: Option<f64>,
    /// Base one-way latency, ms.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    latency: u64,
    /// Extra one-way latency across the map, ms.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    latency_spread: u64,
    /// Per-packet jitter, ms.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    jitter: u64,
    /// Duplication probability.
    #[arg(long, default_value = "0.001", value_parser = ppspp_cli_args::probability)]
    duplicate: f64,
    /// Leechers' uplink rate, bytes/s (suffixes K, M: powers of 1000).
    #[arg(long, default_value = "1M", value_parser = ppspp_cli_args::rate)]
    up_rate: u64,
    /// Leechers' downlink rate, bytes/s.
    #[arg(long, default_value = "8M", value_parser = ppspp_cli_args::rate)]
    down_rate: u64,
    /// Seeders' uplink rate, bytes/s.
    #[arg(long, default_value = "8M", value_parser = ppspp_cli_args::rate)]
    seeder_rate: u64,
    /// Churn: FRACTION[:OFFLINE_SECS] — a share of leechers leaves once between 2 s and 10 s
    /// after joining; they return after OFFLINE_SECS (never without it). 0 turns churn off.
    #[arg(long, default_value = "0.1:5", value_parser = parse_churn)]
    churn: ChurnArg,
    /// Leechers join within this many seconds (0: all at once).
    #[arg(long, default_value = "2", value_parser = ppspp_cli_args::duration_or_zero)]
    join_window: Duration,
    /// Upload slots per peer (peers unchoked at once).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    upload_slots: u32,
    /// Initial random contacts per leecher.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    contacts: u32,
    /// Peers learn each other only from a PPSTP tracker (RFC 7846), the same tracker and
    /// announce logic as `ppspp tracker` and `--tracker`, instead of random contacts.
    #[arg(long)]
    ppstp: bool,
    /// A private swarm (with --ppstp): the tracker issues membership certificates and every
    /// peer requires them (docs/membership.md).
    #[arg(long, requires = "ppstp")]
    private: bool,
    /// The last N leechers poison PEX: they slip PEX_RESv4 messages naming non-existent
    /// addresses and each other into what they send (the report's `attack` section).
    #[arg(long, default_value_t = 0)]
    poisoners: u32,
    /// A partition, AT:UNTIL:MODE in seconds (repeatable). MODE: `split=N` (every node goes to
    /// one of N groups at random), `isolate=N` (N random nodes cut off from everyone) or
    /// `seeders` (the seeders cut off from every leecher).
    #[arg(long, value_parser = parse_partition)]
    partition: Vec<Partition>,
    /// Node crashes, COUNT:FROM:TO:DOWN[:seeders]: COUNT leechers (or any nodes with
    /// `:seeders`) crash at uniform times in FROM..TO seconds and restart DOWN seconds later
    /// with their stores kept.
    #[arg(long, value_parser = parse_crashes)]
    crashes: Option<Crashes>,
    /// The largest UDP payload the network carries, bytes: larger datagrams are dropped
    /// (endpoints send at most 1,472 and fall back to smaller datagrams when they are lost).
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u64).range(576..=65_535))]
    mtu: u64,
    /// A live stream instead of a file: the seeder injects the content at this many bytes per
    /// second (suffixes K, M: powers of 1000), peers tune in and follow it.
    #[arg(long, value_parser = ppspp_cli_args::rate)]
    live_rate: Option<u64>,
    /// Leechers are viewers who play the content at this bitrate, bytes per second (suffixes
    /// K, M: powers of 1000) while it downloads; the report gives startup delays, stalls and
    /// seek latencies.
    #[arg(long, value_parser = ppspp_cli_args::rate)]
    play: Option<u64>,
    /// Leechers also fetch from an HTTP origin (hybrid delivery) with this uplink, bytes per
    /// second (suffixes K, M: powers of 1000), 20 ms away; the report gives what it served
    /// and peer efficiency counts it.
    #[arg(long, value_parser = ppspp_cli_args::rate)]
    origin: Option<u64>,
    /// The origin's one-way latency (with --origin).
    #[arg(long, default_value = "20ms", value_parser = ppspp_cli_args::duration_or_zero, requires = "origin")]
    origin_latency: Duration,
    /// The origin fails every fetch from FROM to TO seconds (with --origin), FROM:TO.
    #[arg(long, value_parser = parse_window, requires = "origin")]
    origin_down: Option<(Duration, Duration)>,
    /// Cost of a GB served by the origin, for the report (with --origin).
    #[arg(long, default_value_t = 0.02, requires = "origin")]
    origin_cost: f64,
    /// Media buffered before playback starts or resumes, seconds (with --play).
    #[arg(long, default_value = "1", value_parser = ppspp_cli_args::duration_or_zero, requires = "play")]
    start_buffer: Duration,
    /// Each viewer seeks AFTER seconds into playback to FRACTION (0..1) of the content,
    /// AFTER:FRACTION (with --play).
    #[arg(long, value_parser = parse_seek, requires = "play")]
    seek: Option<(Duration, f64)>,
    /// Viewers do not tell their engines where they play (the baseline: download order).
    #[arg(long, requires = "play")]
    play_blind: bool,
    /// Simulated time limit, seconds.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    duration: u64,
    /// Run seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Skip the invariant checks (a little faster).
    #[arg(long)]
    no_checks: bool,
    /// Write the report as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write SVG plots (completion CDF, progress over time).
    #[arg(long)]
    svg: Option<PathBuf>,
}

/// The largest chunk the simulated endpoints can send: a 1,472-byte datagram less the channel
/// ID (4), the DATA message's type, 32-bit chunk range and timestamp (17), and a HAVE or ACK
/// that may share the datagram (a few bytes more kept spare).
const MAX_SIM_CHUNK: u32 = 1472 - 4 - 17 - 27;

#[derive(Args, Debug)]
struct VoprArgs {
    /// First seed (random when absent).
    #[arg(long)]
    seed: Option<u64>,
    /// How many seeds to run (seed, seed+1, ...).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    count: u64,
    /// Print each scenario's report.
    #[arg(long)]
    verbose: bool,
}

/// `--churn`, parsed (`None`: no churn).
#[derive(Clone, Copy, Debug)]
struct ChurnArg(Option<Churn>);

fn parse_churn(s: &str) -> Result<ChurnArg, String> {
    parse_churn_spec(s).map(ChurnArg)
}

fn parse_churn_spec(s: &str) -> Result<Option<Churn>, String> {
    let (fraction, offline) = match s.split_once(':') {
        Some((f, o)) => (f, Some(o)),
        None => (s, None),
    };
    let fraction = ppspp_cli_args::probability(fraction)?;
    if fraction == 0.0 {
        return Ok(None);
    }
    let offline = offline.map(secs).transpose()?;
    Ok(Some(Churn {
        fraction,
        from: Duration::from_secs(2),
        to: Duration::from_secs(10),
        offline,
    }))
}

fn secs(s: &str) -> Result<Duration, String> {
    ppspp_cli_args::duration_or_zero(s)
}

fn parse_window(s: &str) -> Result<(Duration, Duration), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("--origin-down {s}: expected FROM:TO"))?;
    let (a, b) = (secs(a)?, secs(b)?);
    if b <= a {
        return Err(format!("--origin-down {s}: TO must be after FROM"));
    }
    Ok((a, b))
}

fn parse_partition(s: &str) -> Result<Partition, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let [at, until, mode] = parts[..] else {
        return Err(format!("--partition {s}: expected AT:UNTIL:MODE"));
    };
    let (at, until) = (secs(at)?, secs(until)?);
    if until <= at {
        return Err(format!("--partition {s}: UNTIL must be after AT"));
    }
    let count = |v: &str| -> Result<u32, String> {
        v.parse().map_err(|e| format!("{s}: {e}")).and_then(|n| {
            if n == 0 {
                Err(format!("{s}: N must be at least 1"))
            } else {
                Ok(n)
            }
        })
    };
    let mode = match mode.split_once('=') {
        Some(("split", n)) => {
            let groups = count(n)?;
            if groups < 2 {
                return Err(format!("--partition {s}: split needs at least 2 groups"));
            }
            PartitionMode::Split {
                groups: u16::try_from(groups).map_err(|e| format!("--partition {s}: {e}"))?,
            }
        }
        Some(("isolate", n)) => PartitionMode::Isolate { count: count(n)? },
        None if mode == "seeders" => PartitionMode::IsolateSeeders,
        _ => {
            return Err(format!(
                "--partition {s}: MODE is split=N, isolate=N or seeders"
            ));
        }
    };
    Ok(Partition { at, until, mode })
}

fn parse_crashes(s: &str) -> Result<Crashes, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (fields, include_seeders) = match parts[..] {
        [c, f, t, d] => ([c, f, t, d], false),
        [c, f, t, d, "seeders"] => ([c, f, t, d], true),
        _ => {
            return Err(format!(
                "--crashes {s}: expected COUNT:FROM:TO:DOWN[:seeders]"
            ));
        }
    };
    let count = fields[0]
        .parse()
        .map_err(|e| format!("--crashes {s}: {e}"))?;
    let (from, to) = (secs(fields[1])?, secs(fields[2])?);
    if to < from {
        return Err(format!("--crashes {s}: TO must not be before FROM"));
    }
    Ok(Crashes {
        count,
        from,
        to,
        down: secs(fields[3])?,
        include_seeders,
    })
}

fn parse_seek(s: &str) -> Result<(Duration, f64), String> {
    let (after, to) = s
        .split_once(':')
        .ok_or_else(|| format!("--seek {s}: expected AFTER:FRACTION"))?;
    Ok((secs(after)?, ppspp_cli_args::probability(to)?))
}

fn scenario(a: &RunArgs) -> Result<Scenario, String> {
    let mut b = Scenario::builder()
        .seed(a.seed)
        .peers(a.peers)
        .seeders(a.seeders)
        .content_size(a.content_size)
        .chunk_size(a.chunk_size)
        .latency(
            Duration::from_millis(a.latency),
            Duration::from_millis(a.latency_spread),
        )
        .jitter(Duration::from_millis(a.jitter))
        .duplicate(a.duplicate)
        .leecher_rates(a.up_rate, a.down_rate)
        .seeder_rates(a.seeder_rate, a.seeder_rate)
        .churn(a.churn.0)
        .join_window(a.join_window)
        .contacts(a.contacts)
        .upload_slots(a.upload_slots)
        .ppstp(a.ppstp)
        .private(a.private)
        .poisoners(a.poisoners)
        .duration(Duration::from_secs(a.duration))
        .mtu(a.mtu as usize)
        .live(a.live_rate)
        .crashes(a.crashes)
        .viewing(a.play.map(|bitrate| {
            let mut v = ppspp_sim::viewer::Viewing::at(bitrate);
            v.start_buffer = a.start_buffer;
            v.seek = a.seek;
            v.tell_engine = !a.play_blind;
            v
        }))
        .origin(a.origin.map(|bw| {
            let mut o = ppspp_sim::origin::OriginSpec::new(bw);
            o.latency = a.origin_latency;
            o.cost_per_gb = a.origin_cost;
            o.down = a.origin_down.map(|(x, y)| x..y);
            o
        }))
        .check_invariants(!a.no_checks);
    if a.play.is_some() && a.live_rate.is_some() {
        return Err("--play plays a file: it does not go with --live-rate".into());
    }
    for p in &a.partition {
        b = b.partition(*p);
    }
    b = match a.burst {
        Some(burst) => b.loss_model(ppspp_sim::net::LossModel::bursty(
            1.0 - (1.0 - a.loss).sqrt(),
            burst,
        )),
        None => b.loss(a.loss),
    };
    Ok(b.build())
}

fn run(sc: Scenario, json: Option<PathBuf>, svg: Option<PathBuf>) -> ExitCode {
    eprintln!(
        "PPSPP_SIM_SEED={} peers={} seeders={} content={} chunk={}",
        sc.seed, sc.peers, sc.seeders, sc.content_size, sc.chunk_size
    );
    let sim = match Simulation::new(sc) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot build the content: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = run_with_bar(sim);
    println!("{report}");
    if let Some(p) = json {
        if let Err(e) = std::fs::write(&p, report.to_json() + "\n") {
            eprintln!("error: writing {}: {e}", p.display());
            return ExitCode::FAILURE;
        }
    }
    if let Some(p) = svg {
        if let Err(e) = report.write_svg(&p) {
            eprintln!("error: writing {}: {e}", p.display());
            return ExitCode::FAILURE;
        }
    }
    if !report.safe() {
        eprintln!("SAFETY failure; re-run with --seed {}", report.seed);
        return ExitCode::from(ppspp_cli_args::EXIT_FAILED);
    }
    if report.peers_complete == 0 {
        eprintln!(
            "no leecher completed within the time limit; re-run with --seed {}",
            report.seed
        );
        return ExitCode::from(ppspp_cli_args::EXIT_FAILED);
    }
    ExitCode::SUCCESS
}

/// Runs with a progress bar on stderr when it is a terminal; the bar appears once the run has
/// taken 2 s of wall time, so short runs show none. When stderr is not a terminal, a progress
/// line is printed every 30 s of wall time instead.
#[expect(
    clippy::disallowed_methods,
    reason = "the progress display's wall clock never reaches the simulation"
)]
fn run_with_bar(sim: Simulation) -> Report {
    let tty = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let mut last_line = started;
    let mut bar: Option<ProgressBar> = None;
    let mut cb = |p: &Progress| {
        if !tty {
            if last_line.elapsed() >= Duration::from_secs(30) {
                last_line = std::time::Instant::now();
                eprintln!(
                    "progress: wall {:.0}s sim {:.1}s complete {}/{} events {}",
                    started.elapsed().as_secs_f64(),
                    p.sim_time.as_secs_f64(),
                    p.complete,
                    p.peers,
                    p.events
                );
            }
            return;
        }
        if bar.is_none() && started.elapsed() < Duration::from_secs(2) {
            return;
        }
        let b = bar.get_or_insert_with(|| {
            let b = ProgressBar::new(u64::from(p.peers));
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} complete  {msg}",
                )
                .expect("valid template"),
            );
            b
        });
        b.set_position(u64::from(p.complete));
        b.set_message(format!(
            "sim {:.1}s  {} events",
            p.sim_time.as_secs_f64(),
            p.events
        ));
    };
    let r = sim.run_with(&mut cb);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    r
}

fn vopr_cmd(a: &VoprArgs) -> ExitCode {
    let first = a.seed.unwrap_or_else(vopr::random_seed);
    let (mut pass, mut safety, mut liveness) = (0u64, 0u64, 0u64);
    for seed in first..first.saturating_add(a.count) {
        let sc = vopr::scenario(seed);
        eprintln!("SEED={seed} {}", vopr::describe(&sc));
        let (verdict, report) = vopr::run(sc);
        if a.verbose {
            if let Some(r) = &report {
                println!("{r}");
            }
        }
        match verdict {
            Verdict::Pass => pass += 1,
            Verdict::Safety(why) => {
                safety += 1;
                println!("SAFETY failure: seed={seed}: {why}");
                println!("  reproduce: ppspp-sim vopr --seed {seed}");
            }
            Verdict::Liveness(why) => {
                liveness += 1;
                println!("LIVENESS failure: seed={seed}: {why}");
                println!("  reproduce: ppspp-sim vopr --seed {seed}");
            }
        }
    }
    println!("vopr: {pass} passed, {safety} safety failures, {liveness} liveness failures");
    // One policy for every program of the project: 2 is a usage error, so a liveness
    // failure is 1 like a safety failure (the lines above say which).
    if safety > 0 || liveness > 0 {
        ExitCode::from(ppspp_cli_args::EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

fn main() -> ExitCode {
    let cli: Cli = ppspp_cli_args::parse();
    match cli.cmd {
        None => run(Scenario::default_scenario(), None, None),
        Some(Cmd::Run(a)) => match scenario(&a) {
            Ok(sc) => run(sc, a.json.clone(), a.svg.clone()),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(ppspp_cli_args::EXIT_USAGE)
            }
        },
        Some(Cmd::Vopr(a)) => vopr_cmd(&a),
        Some(Cmd::Wan(a)) => wan_cli::wan_cmd(&a),
    }
}
