//! `ppspp-netem`: a user-space link emulator for the wide-area bench (`benches/wan.sh`).
//!
//! Kernels without the `netem` qdisc can still rate-limit (`tc tbf`) but cannot delay. This
//! crate joins N network namespaces through N TUN devices: every IPv4 packet host `i` sends is
//! read from its TUN device, passed through host `i`'s egress [`Path`] (a rate-limited
//! drop-tail queue, random loss, one-way delay, reordering) and written, when due, into the TUN
//! device of the host its destination address names (`SUBNET.(j+1)` is host `j`). TCP, UDP and
//! ICMP all go through, so `iperf3` and `ping` measure the same link as `ppspp`.
//!
//! The link model is the simulator's ([`ppspp_sim::path`]), so a preset such as
//! [`ppspp_sim::presets::LinkPreset::B`] means the same thing in `ppspp-sim wan` and here.
//!
//! [`Emulator`] is sans-IO: it takes packets and times and hands back packets to write, so its
//! logic is tested in-process without devices or clocks; [`tun`] opens the devices and the
//! binary runs the poll loop.
//!
//! ```
//! use ppspp_netem::Emulator;
//! use ppspp_sim::presets::LinkPreset;
//! let mut emu = Emulator::new(2, LinkPreset::B.path(), [10, 77, 0], 1);
//! let mut pkt = vec![0u8; 100];
//! pkt[0] = 0x45;
//! pkt[16..20].copy_from_slice(&[10, 77, 0, 2]); // to host 1
//! let due = emu.ingest(0, 0, pkt).unwrap();
//! assert!(due >= 50_000_000);
//! assert!(emu.pop_due(due - 1).is_none());
//! assert_eq!(emu.pop_due(due).map(|(host, _)| host), Some(1));
//! ```

pub mod tun;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use ppspp_sim::net::DropReason;
use ppspp_sim::path::{Path, PathSpec, PathStats};
use ppspp_sim::rng::{Purpose, SimRng};

/// Packets held (queued or in flight) at most, over all hosts: a bound on memory when a link
/// has no rate limit and a sender floods it.
pub const MAX_HELD: usize = 200_000;

/// Why the emulator dropped a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drop {
    /// Not IPv4, or its destination is no other host of the subnet.
    NoRoute,
    /// The sender's egress queue was full (drop-tail).
    Queue,
    /// Random loss.
    Loss,
    /// [`MAX_HELD`] packets are already held.
    Overflow,
}

/// A packet on its way.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    due_ns: u64,
    seq: u64,
    dst: usize,
    buf: Vec<u8>,
}

/// Per-host counters besides the path's own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    /// The path's counters (offered, accepted, queue drops, losses, reordered).
    pub path: PathStats,
    /// Packets with no route.
    pub no_route: u64,
    /// Packets dropped because too many were held.
    pub overflow: u64,
    /// Packets handed back for delivery to this host.
    pub delivered: u64,
}

/// The emulator's state: one egress [`Path`] per host and the packets in flight.
#[derive(Debug)]
pub struct Emulator {
    subnet: [u8; 3],
    paths: Vec<Path>,
    stats: Vec<HostStats>,
    held: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    pool: Vec<Vec<u8>>,
}

impl Emulator {
    /// `hosts` hosts with addresses `subnet.1` .. `subnet.hosts`, every egress following
    /// `spec`, random draws derived from `seed` (one stream per host, as in the simulator).
    pub fn new(hosts: usize, spec: PathSpec, subnet: [u8; 3], seed: u64) -> Self {
        Self::with_paths(
            (0..hosts)
                .map(|i| Path::new(spec, SimRng::stream(seed, i as u32, Purpose::Uplink)))
                .collect(),
            subnet,
        )
    }

    /// One given egress path per host.
    pub fn with_paths(paths: Vec<Path>, subnet: [u8; 3]) -> Self {
        Self {
            subnet,
            stats: vec![HostStats::default(); paths.len()],
            paths,
            held: BinaryHeap::new(),
            seq: 0,
            pool: Vec::new(),
        }
    }

    /// The number of hosts.
    pub fn hosts(&self) -> usize {
        self.paths.len()
    }

    /// The host an IPv4 packet is addressed to, if it is one of ours.
    pub fn route(&self, packet: &[u8]) -> Option<usize> {
        if packet.len() < 20 || packet[0] >> 4 != 4 || packet[16..19] != self.subnet {
            return None;
        }
        let j = usize::from(packet[19]).checked_sub(1)?;
        (j < self.paths.len()).then_some(j)
    }

    /// Host `src` sent `packet` at `now_ns` (a monotonic clock in ns; calls must not go back
    /// in time). Returns when it will be due for delivery, or why it was dropped (the buffer
    /// then goes back to the pool).
    pub fn ingest(&mut self, src: usize, now_ns: u64, packet: Vec<u8>) -> Result<u64, Drop> {
        let verdict = self.admit(src, now_ns, &packet);
        match verdict {
            Ok(due_ns) => {
                let dst = self.route(&packet).unwrap_or(src);
                self.seq += 1;
                self.held.push(Reverse(Pending {
                    due_ns,
                    seq: self.seq,
                    dst,
                    buf: packet,
                }));
            }
            Err(_) => self.recycle(packet),
        }
        verdict
    }

    fn admit(&mut self, src: usize, now_ns: u64, packet: &[u8]) -> Result<u64, Drop> {
        match self.route(packet) {
            Some(dst) if dst != src => {}
            _ => {
                self.stats[src].no_route += 1;
                return Err(Drop::NoRoute);
            }
        }
        if self.held.len() >= MAX_HELD {
            self.stats[src].overflow += 1;
            return Err(Drop::Overflow);
        }
        self.paths[src]
            .transmit(now_ns, packet.len())
            .map_err(|e| match e {
                DropReason::Loss => Drop::Loss,
                _ => Drop::Queue,
            })
    }

    /// When the next packet is due, if any is held.
    pub fn next_due(&self) -> Option<u64> {
        self.held.peek().map(|p| p.0.due_ns)
    }

    /// The next packet due at or before `now_ns`, with the host to write it to. Packets due at
    /// the same time come out in the order they came in.
    pub fn pop_due(&mut self, now_ns: u64) -> Option<(usize, Vec<u8>)> {
        if self.next_due()? > now_ns {
            return None;
        }
        let p = self.held.pop()?.0;
        self.stats[p.dst].delivered += 1;
        Some((p.dst, p.buf))
    }

    /// Packets held.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// An empty buffer, from the pool when one is free.
    pub fn buffer(&mut self) -> Vec<u8> {
        self.pool.pop().unwrap_or_else(|| Vec::with_capacity(2048))
    }

    /// Returns a buffer to the pool.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.pool.len() < 4096 {
            buf.clear();
            self.pool.push(buf);
        }
    }

    /// Host `i`'s counters.
    pub fn stats(&self, i: usize) -> HostStats {
        HostStats {
            path: self.paths[i].stats(),
            ..self.stats[i]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppspp_core::time::Duration;
    use ppspp_sim::net::{LossModel, Reorder};

    const NET: [u8; 3] = [10, 77, 0];

    fn pkt(dst_host: u8, len: usize, tag: u32) -> Vec<u8> {
        let mut p = vec![0u8; len.max(24)];
        p[0] = 0x45;
        p[16..19].copy_from_slice(&NET);
        p[19] = dst_host + 1;
        p[20..24].copy_from_slice(&tag.to_be_bytes());
        p
    }

    fn tag(p: &[u8]) -> u32 {
        u32::from_be_bytes([p[20], p[21], p[22], p[23]])
    }

    #[test]
    fn routes_only_to_other_hosts_of_the_subnet() {
        let mut emu = Emulator::new(3, PathSpec::ideal(), NET, 1);
        assert_eq!(emu.route(&pkt(2, 40, 0)), Some(2));
        assert_eq!(emu.route(&pkt(3, 40, 0)), None, "no host 3");
        let mut other = pkt(1, 40, 0);
        other[18] = 9;
        assert_eq!(emu.route(&other), None);
        let mut v6 = pkt(1, 40, 0);
        v6[0] = 0x60;
        assert_eq!(emu.route(&v6), None);
        assert_eq!(emu.route(&[0x45; 10]), None);
        assert_eq!(
            emu.ingest(1, 0, pkt(1, 40, 0)),
            Err(Drop::NoRoute),
            "to itself"
        );
        assert_eq!(emu.ingest(1, 0, other), Err(Drop::NoRoute));
        assert_eq!(emu.stats(1).no_route, 2);
        assert_eq!(emu.held(), 0);
    }

    #[test]
    fn delay_and_rate_set_delivery_times() {
        // 1,000-byte packets at 8 Mbit/s: 1 ms each; 10 ms one way; the queue holds 2 packets
        // behind the one being sent.
        let spec = PathSpec {
            delay: Duration::from_millis(10),
            rate: PathSpec::rate_mbit(8.0),
            queue: 3000,
            ..PathSpec::ideal()
        };
        let mut emu = Emulator::new(2, spec, NET, 1);
        for t in 0..4 {
            let r = emu.ingest(0, 0, pkt(1, 1000, t));
            if t < 3 {
                assert_eq!(r, Ok(11_000_000 + u64::from(t) * 1_000_000));
            } else {
                assert_eq!(r, Err(Drop::Queue));
            }
        }
        // The other direction has its own queue.
        assert_eq!(emu.ingest(1, 0, pkt(0, 1000, 9)), Ok(11_000_000));
        assert_eq!(emu.next_due(), Some(11_000_000));
        assert!(emu.pop_due(10_999_999).is_none());
        let mut out = Vec::new();
        while let Some((h, p)) = emu.pop_due(u64::MAX) {
            out.push((h, tag(&p)));
            emu.recycle(p);
        }
        assert_eq!(out, [(1, 0), (0, 9), (1, 1), (1, 2)]);
        assert_eq!(emu.stats(0).path.queue_drops, 1);
        assert_eq!(emu.stats(1).delivered, 3);
        // Buffers are reused.
        assert!(emu.buffer().capacity() >= 1000);
    }

    #[test]
    fn loss_is_seeded_and_counted() {
        let spec = PathSpec {
            loss: LossModel::Bernoulli { p: 0.01 },
            ..PathSpec::ideal()
        };
        let run = |seed| {
            let mut emu = Emulator::new(2, spec, NET, seed);
            let lost: Vec<bool> = (0..50_000u32)
                .map(|i| emu.ingest(0, u64::from(i), pkt(1, 100, i)).is_err())
                .collect();
            (lost, emu.stats(0))
        };
        let (a, sa) = run(7);
        assert_eq!(a, run(7).0);
        assert_ne!(a, run(8).0);
        assert!((350..650).contains(&sa.path.lost), "{sa:?}");
        assert_eq!(sa.path.lost + sa.path.accepted, 50_000);
    }

    #[test]
    fn reordered_packets_are_overtaken_and_none_lost() {
        let spec = PathSpec {
            delay: Duration::from_millis(50),
            reorder: Reorder {
                p: 0.02,
                max: Duration::from_millis(10),
            },
            ..PathSpec::ideal()
        };
        let mut emu = Emulator::new(2, spec, NET, 3);
        // One packet every 100 µs; drain as time goes.
        let mut order = Vec::new();
        for i in 0..20_000u32 {
            let now = u64::from(i) * 100_000;
            emu.ingest(0, now, pkt(1, 1200, i)).unwrap();
            while let Some((_, p)) = emu.pop_due(now) {
                order.push(tag(&p));
            }
        }
        while let Some((_, p)) = emu.pop_due(u64::MAX) {
            order.push(tag(&p));
        }
        assert_eq!(order.len(), 20_000, "nothing lost");
        let late = order.windows(2).filter(|w| w[1] < w[0]).count();
        let held = emu.stats(0).path.reordered as usize;
        assert!((300..500).contains(&held), "{held}");
        assert!(late > 0 && late <= held, "{late} of {held}");
    }

    #[test]
    fn overflow_bounds_memory() {
        let mut emu = Emulator::new(
            2,
            PathSpec {
                delay: Duration::from_secs(1),
                ..PathSpec::ideal()
            },
            NET,
            1,
        );
        for i in 0..MAX_HELD as u32 {
            emu.ingest(0, 0, pkt(1, 24, i)).unwrap();
        }
        assert_eq!(emu.ingest(0, 0, pkt(1, 24, 0)), Err(Drop::Overflow));
        assert_eq!(emu.stats(0).overflow, 1);
    }
}
