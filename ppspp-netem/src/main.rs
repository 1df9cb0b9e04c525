//! `ppspp-netem`: join N network namespaces through TUN devices and emulate a link on each
//! host's egress. See the crate documentation and `benches/wan.sh`.
//!
//! ```text
//! ppspp-netem --hosts 2 --link B          # creates pnt0, pnt1; prints "ready"
//! ip link set pnt0 netns ns0; ip -n ns0 addr add 10.77.0.1/24 dev pnt0; ...
//! ```
//! It runs until SIGINT or SIGTERM, then prints every host's counters.

use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

use ppspp_core::time::Duration;
use ppspp_netem::{Emulator, tun};
use ppspp_sim::net::{LossModel, Reorder};
use ppspp_sim::path::PathSpec;
use ppspp_sim::presets::{LinkPreset, QUEUE_PACKETS};

#[derive(Parser, Debug)]
#[command(
    name = "ppspp-netem",
    version,
    about = "User-space link emulator: forwards IPv4 between TUN devices with delay, loss, rate and reordering"
)]
struct Cli {
    /// Hosts (TUN devices PREFIX0 .. PREFIX{N-1}, addresses SUBNET.1 .. SUBNET.N).
    #[arg(long, default_value_t = 2)]
    hosts: usize,
    /// TUN device name prefix.
    #[arg(long, default_value = "pnt")]
    tun_prefix: String,
    /// The /24 the hosts live in, as three octets.
    #[arg(long, default_value = "10.77.0")]
    subnet: String,
    /// A preset to start from: B, A or reorder (the same links as `ppspp-sim wan`); the
    /// options below override its fields. Without it: no delay, no limit, no loss.
    #[arg(long)]
    link: Option<LinkPreset>,
    /// One-way delay on each host's egress, ms.
    #[arg(long)]
    delay_ms: Option<f64>,
    /// Rate of each host's egress, Mbit/s (0: unlimited).
    #[arg(long)]
    rate_mbit: Option<f64>,
    /// Drop-tail queue of each host's egress, in 1,500-byte packets.
    #[arg(long)]
    queue_packets: Option<u64>,
    /// Random loss on each host's egress, percent.
    #[arg(long)]
    loss_pct: Option<f64>,
    /// Make the loss bursty (Gilbert-Elliott) with this mean burst length, packets.
    #[arg(long)]
    burst: Option<f64>,
    /// Share of packets held back (reordered), percent.
    #[arg(long)]
    reorder_pct: Option<f64>,
    /// The largest extra delay of a held-back packet, ms.
    #[arg(long)]
    reorder_ms: Option<f64>,
    /// Seed of the random draws (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn ms(v: f64) -> Duration {
    Duration::from_micros((v.max(0.0) * 1000.0) as u64)
}

fn spec(c: &Cli) -> Result<PathSpec, String> {
    let mut s = c.link.map_or_else(PathSpec::ideal, LinkPreset::path);
    if s.queue == 0 {
        s.queue = QUEUE_PACKETS * 1500;
    }
    if let Some(d) = c.delay_ms {
        s.delay = ms(d);
    }
    if let Some(r) = c.rate_mbit {
        s.rate = PathSpec::rate_mbit(r);
    }
    if let Some(q) = c.queue_packets {
        s.queue = q.max(1) * 1500;
    }
    if let Some(p) = c.loss_pct {
        if !(0.0..=100.0).contains(&p) {
            return Err(format!("--loss-pct {p}: must be in 0..=100"));
        }
        s.loss = if p == 0.0 {
            LossModel::None
        } else {
            LossModel::Bernoulli { p: p / 100.0 }
        };
    }
    if let Some(b) = c.burst {
        let LossModel::Bernoulli { p } = s.loss else {
            return Err("--burst needs a loss (--loss-pct)".into());
        };
        s.loss = LossModel::bursty(p, b);
    }
    if c.reorder_pct.is_some() || c.reorder_ms.is_some() {
        let p = c.reorder_pct.map_or(s.reorder.p, |p| p / 100.0);
        if !(0.0..=1.0).contains(&p) {
            return Err("--reorder-pct: must be in 0..=100".into());
        }
        s.reorder = Reorder {
            p,
            max: c.reorder_ms.map_or(s.reorder.max, ms),
        };
    }
    Ok(s)
}

fn subnet(s: &str) -> Result<[u8; 3], String> {
    let v: Vec<u8> = s
        .split('.')
        .map(|o| o.parse::<u8>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--subnet {s}: {e}"))?;
    v.try_into()
        .map_err(|_| format!("--subnet {s}: expected three octets, e.g. 10.77.0"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (spec, net) = match (spec(&cli), subnet(&cli.subnet)) {
        (Ok(s), Ok(n)) => (s, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(64);
        }
    };
    if !(2..=254).contains(&cli.hosts) {
        eprintln!("error: --hosts must be in 2..=254");
        return ExitCode::from(64);
    }
    let seed = cli.seed.unwrap_or_else(clock_seed);
    let mut devs = Vec::with_capacity(cli.hosts);
    for i in 0..cli.hosts {
        let name = format!("{}{i}", cli.tun_prefix);
        match tun::open(&name) {
            Ok(f) => devs.push(f),
            Err(e) => {
                eprintln!("error: TUN device {name}: {e} (needs root or CAP_NET_ADMIN)");
                return ExitCode::FAILURE;
            }
        }
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    // SAFETY: PR_SET_TIMERSLACK takes an integer and changes only this thread's timer slack
    // (1 ns: wake-ups for due packets are not batched).
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    println!(
        "ready hosts={} seed={seed} delay={:?} rate={} queue={}B loss={:?} reorder={:?}",
        cli.hosts,
        spec.delay,
        if spec.rate == u64::MAX {
            "unlimited".to_string()
        } else {
            format!("{}Mbit/s", spec.rate as f64 * 8.0 / 1e6)
        },
        spec.queue,
        spec.loss,
        spec.reorder
    );
    let _ = io::stdout().flush();
    let mut emu = Emulator::new(cli.hosts, spec, net, seed);
    let code = match forward(&mut emu, &mut devs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    };
    for i in 0..emu.hosts() {
        let s = emu.stats(i);
        println!(
            "host {i}: sent {} accepted {} queue_drops {} lost {} reordered {} no_route {} overflow {} received {}",
            s.path.offered,
            s.path.accepted,
            s.path.queue_drops,
            s.path.lost,
            s.path.reordered,
            s.no_route,
            s.overflow,
            s.delivered
        );
    }
    code
}

#[expect(
    clippy::disallowed_methods,
    reason = "the emulator runs in real time: the wall clock is its input"
)]
fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

/// The monotonic clock in ns since `start`.
fn now_ns(start: std::time::Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

/// The forwarding loop: wait for a readable device or the next due packet, read what is
/// there, write what is due. Only the devices' descriptors are touched here.
fn forward(emu: &mut Emulator, devs: &mut [File]) -> io::Result<()> {
    #[expect(
        clippy::disallowed_methods,
        reason = "the emulator runs in real time: the wall clock is its input"
    )]
    let start = std::time::Instant::now();
    let mut fds: Vec<libc::pollfd> = devs
        .iter()
        .map(|d| libc::pollfd {
            fd: d.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut buf = vec![0u8; 65536];
    while !STOP.load(Ordering::Relaxed) {
        let now = now_ns(start);
        let wait = emu
            .next_due()
            .map_or(200_000_000, |d| d.saturating_sub(now).min(200_000_000));
        let ts = libc::timespec {
            tv_sec: (wait / 1_000_000_000) as libc::time_t,
            tv_nsec: (wait % 1_000_000_000) as libc::c_long,
        };
        // SAFETY: `fds` is a live array of `fds.len()` pollfd structs and `ts` a live
        // timespec; a null signal mask keeps the current one.
        let r = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r > 0 {
            let now = now_ns(start);
            for (i, pfd) in fds.iter().enumerate() {
                if pfd.revents & libc::POLLIN == 0 {
                    continue;
                }
                for _ in 0..256 {
                    match devs[i].read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            let mut p = emu.buffer();
                            p.extend_from_slice(&buf[..n]);
                            let _ = emu.ingest(i, now, p);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        let now = now_ns(start);
        while let Some((dst, p)) = emu.pop_due(now) {
            // A full device queue or a device going down drops the packet, like a wire.
            let _ = devs[dst].write(&p);
            emu.recycle(p);
        }
    }
    Ok(())
}
