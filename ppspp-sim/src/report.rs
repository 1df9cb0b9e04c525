//! The result of a run: a summary table ([`std::fmt::Display`]), JSON and SVG plots.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;

use ppspp_core::EndpointStats;
use ppspp_core::wire::MessageType;

use crate::net::{DropReason, NetCounters};
use crate::scenario::Scenario;

/// Protocol counters summed over every endpoint (every incarnation of every node).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProtocolCounters {
    /// Datagrams the endpoints received.
    pub datagrams_in: u64,
    /// Datagrams the endpoints sent.
    pub datagrams_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Messages sent, by type code.
    #[serde(skip)]
    pub messages_out: [u64; 14],
    /// Messages received, by type code.
    #[serde(skip)]
    pub messages_in: [u64; 14],
    /// Chunks verified and stored.
    pub chunks_verified: u64,
    /// Chunks or hashes that failed verification.
    pub integrity_failures: u64,
    /// DATA retransmissions.
    pub data_retransmissions: u64,
    /// Losses found spurious (the first send was acknowledged after all).
    pub spurious_losses: u64,
    /// Handshake retransmissions.
    pub handshake_retransmissions: u64,
    /// Chunks requested again.
    pub rerequests: u64,
    /// Of those, requests given up on a peer that delivered nothing for a while.
    pub rerequests_stalled: u64,
    /// Channels that capped their datagram size after repeated timeouts (path MTU).
    pub pmtu_fallbacks: u64,
    /// Datagrams dropped by the endpoints: malformed.
    pub drop_malformed: u64,
    /// Dropped: unknown channel.
    pub drop_unknown_channel: u64,
    /// Dropped: rejected handshake.
    pub drop_handshake_rejected: u64,
    /// Dropped: unrequested DATA.
    pub drop_unrequested_data: u64,
    /// Refused REQUESTs.
    pub refused_requests: u64,
    /// Handshakes and bare PEX addresses refused for want of a membership certificate (in
    /// the `attack` section of the report).
    #[serde(skip)]
    pub drop_uncertified: u64,
    /// Membership certificates that failed their checks (in the `attack` section).
    #[serde(skip)]
    pub bad_certificates: u64,
}

impl ProtocolCounters {
    /// Adds one endpoint's counters.
    pub fn add(&mut self, s: &EndpointStats) {
        self.datagrams_in += s.datagrams_in;
        self.datagrams_out += s.datagrams_out;
        self.bytes_in += s.bytes_in;
        self.bytes_out += s.bytes_out;
        for i in 0..14 {
            self.messages_out[i] += s.messages_out.0[i];
            self.messages_in[i] += s.messages_in.0[i];
        }
        self.chunks_verified += s.chunks_verified;
        self.integrity_failures += s.integrity_failures;
        self.data_retransmissions += s.data_retransmissions;
        self.spurious_losses += s.spurious_losses;
        self.handshake_retransmissions += s.handshake_retransmissions;
        self.rerequests += s.rerequests;
        self.rerequests_stalled += s.rerequests_stalled;
        self.pmtu_fallbacks += s.pmtu_fallbacks;
        self.drop_malformed += s.drops.malformed;
        self.drop_unknown_channel += s.drops.unknown_channel;
        self.drop_handshake_rejected += s.drops.handshake_rejected;
        self.drop_unrequested_data += s.drops.unrequested_data;
        self.refused_requests += s.drops.refused_requests;
        self.drop_uncertified += s.drops.uncertified;
        self.bad_certificates += s.drops.bad_certificates;
    }

    /// Messages sent, by name.
    pub fn messages_out_by_name(&self) -> BTreeMap<&'static str, u64> {
        by_name(&self.messages_out)
    }
}

fn by_name(counts: &[u64; 14]) -> BTreeMap<&'static str, u64> {
    (0u8..14)
        .filter_map(|c| Some((MessageType::from_code(c)?.name(), counts[c as usize])))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// What a safety check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// A store received bytes that differ from the content.
    BadWrite,
    /// A chunk was written twice by one endpoint.
    DuplicateWrite,
    /// The endpoint read a chunk its store does not hold.
    BadRead,
    /// A HAVE for a chunk the sender has not verified.
    HaveWithoutChunk,
    /// A datagram the endpoint sent does not decode.
    MalformedOutput,
    /// The endpoints' byte counters disagree with the network's.
    ByteAccounting,
    /// An integrity failure although every peer is honest.
    IntegrityFailure,
    /// A store failure.
    StoreFailure,
    /// An engine command failed where it should not.
    EngineError,
    /// The endpoint kept asking for work at one instant.
    Livelock,
}

/// One failed check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    /// What failed.
    pub kind: ViolationKind,
    /// Simulated time, seconds.
    pub at_s: f64,
    /// The node concerned.
    pub node: Option<u32>,
    /// Details.
    pub detail: String,
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The JSON report's name (snake_case), so text and JSON agree.
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(s)) => f.write_str(&s),
            _ => write!(f, "{self:?}"),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {:.6}s", self.kind, self.at_s)?;
        if let Some(n) = self.node {
            write!(f, " node {n}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// A progress sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// Simulated time, seconds.
    pub t_s: f64,
    /// Share of all leechers' chunks held (0..=1).
    pub progress: f64,
    /// Leechers complete.
    pub complete: u32,
    /// Nodes up.
    pub live: u32,
}

/// Completion-time percentiles in seconds (from a leecher's first join).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

/// Upload shares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Upload {
    /// Content bytes the original seeders sent (retransmissions included).
    pub seeders_bytes: u64,
    /// Content bytes the leechers sent to each other.
    pub leechers_bytes: u64,
    /// Jain's fairness index of the leechers' upload (1 = all equal).
    pub leecher_fairness: f64,
    /// The most one leecher uploaded, bytes.
    pub leecher_max_bytes: u64,
    /// Leechers that uploaded nothing.
    pub leechers_idle: u32,
}

/// Datagram counts as the network saw them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Datagrams {
    /// Taken from the endpoints.
    pub sent: u64,
    /// Handed to the endpoints.
    pub delivered: u64,
    /// Duplicated by the network.
    pub duplicated: u64,
    /// Dropped, by reason.
    pub dropped: BTreeMap<&'static str, u64>,
}

pub(crate) struct Inputs {
    pub(crate) scenario: Scenario,
    pub(crate) trace_hash: u64,
    pub(crate) completion: Vec<f64>,
    pub(crate) uploads: Vec<(bool, u64, u64)>,
    pub(crate) net: NetCounters,
    pub(crate) protocol: ProtocolCounters,
    pub(crate) events: u64,
    pub(crate) sim_time_s: f64,
    pub(crate) wall_time_s: f64,
    pub(crate) samples: Vec<Sample>,
    pub(crate) violations: Vec<Violation>,
    pub(crate) violation_count: u64,
    pub(crate) live_incomplete: u32,
    pub(crate) gone: u32,
    pub(crate) event_counts: [u64; 8],
    /// Live runs: chunks injected, and each verified chunk's delay since its injection, ms.
    pub(crate) stream: Option<(u64, Vec<u32>)>,
    /// Runs with viewers: what they saw.
    pub(crate) viewing: Option<crate::viewer::ViewingReport>,
    /// Runs with an HTTP origin: what it served.
    pub(crate) origin: Option<crate::origin::OriginReport>,
    /// Runs with PEX poisoners or a private swarm: the honest leechers that completed.
    pub(crate) honest_complete: u32,
}

/// Runs with PEX poisoners or a private swarm ([`crate::Scenario::poisoners`],
/// [`crate::Scenario::private`]): the attack and what it achieved.
#[derive(Clone, Debug, Serialize)]
pub struct AttackReport {
    /// Poisoners among the leechers.
    pub poisoners: u32,
    /// Whether certificates were required.
    pub private: bool,
    /// PEX_RESv4 messages the poisoners slipped in.
    pub pex_injected: u64,
    /// Datagrams honest nodes sent to addresses that are no member of the swarm (no node,
    /// hence no certificate): the poisoning that worked.
    pub uncertified_contacts: u64,
    /// Handshakes and bare PEX addresses the endpoints refused for want of a certificate.
    pub refused_uncertified: u64,
    /// Certificates that failed their checks.
    pub bad_certificates: u64,
    /// Honest leechers (not poisoners) that completed, of `honest_leechers`.
    pub honest_complete: u32,
    /// Honest leechers.
    pub honest_leechers: u32,
}

/// What a live run measured (see [`crate::Scenario::live_rate`]).
#[derive(Clone, Debug, Serialize)]
pub struct LiveReport {
    /// The injection rate, bytes per second.
    pub rate_bytes_per_s: u64,
    /// Chunks injected.
    pub chunks_injected: u64,
    /// Chunks verified by leechers, all together.
    pub chunks_delivered: u64,
    /// Delay from a chunk's injection to its verification at a leecher, seconds (over every
    /// chunk every leecher verified).
    pub delay_s: Percentiles,
}

/// The result of a run. Its JSON form ([`Report::to_json`]) is byte-identical for the same
/// scenario and seed, apart from `wall_time_s`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The run seed.
    pub seed: u64,
    /// A hash of every delivered datagram and endpoint event (16 hex digits).
    pub trace_hash: String,
    /// Leechers.
    pub peers_total: u32,
    /// Leechers that completed.
    pub peers_complete: u32,
    /// Leechers that left for good.
    pub peers_gone: u32,
    /// Leechers still in the swarm and incomplete at the end.
    pub peers_incomplete_live: u32,
    /// Completion-time percentiles.
    pub completion_time_s: Percentiles,
    /// Share of content bytes served by leechers, of all served by seeders, leechers and
    /// the HTTP origin.
    pub peer_efficiency: f64,
    /// Events processed.
    pub events: u64,
    /// Simulated time at the end, seconds.
    pub sim_time_s: f64,
    /// Wall time of the run, seconds.
    pub wall_time_s: f64,
    /// Upload shares.
    pub upload: Upload,
    /// Datagrams.
    pub datagrams: Datagrams,
    /// Protocol counters (sum of every endpoint's stats).
    pub protocol: ProtocolCounters,
    /// Messages sent by type.
    pub messages_out: BTreeMap<&'static str, u64>,
    /// Endpoint events by kind.
    pub endpoint_events: BTreeMap<&'static str, u64>,
    /// Live runs only: delivery delays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveReport>,
    /// Runs with viewers who play: startup delays, stalls, seeks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub viewing: Option<crate::viewer::ViewingReport>,
    /// What the HTTP origin served (runs with one).
    pub origin: Option<crate::origin::OriginReport>,
    /// PEX poisoning and certificates (runs with poisoners or a private swarm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attack: Option<AttackReport>,
    /// Safety violations found (at most 64 in detail).
    pub violations: Vec<Violation>,
    /// Number of violations in all.
    pub violation_count: u64,
    /// The scenario.
    pub scenario: Scenario,
    /// Completion times, seconds, sorted (not in the JSON).
    #[serde(skip)]
    pub completion_times: Vec<f64>,
    /// Progress samples (not in the JSON).
    #[serde(skip)]
    pub samples: Vec<Sample>,
}

/// p50, p90, p99 and max of `sorted` (ascending), rounded to microseconds.
pub(crate) fn percentiles(sorted: &[f64]) -> Percentiles {
    Percentiles {
        p50: round6(percentile(sorted, 0.5)),
        p90: round6(percentile(sorted, 0.9)),
        p99: round6(percentile(sorted, 0.99)),
        max: round6(sorted.last().copied().unwrap_or(0.0)),
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

impl Report {
    pub(crate) fn build(i: Inputs) -> Self {
        let mut times = i.completion;
        times.sort_by(f64::total_cmp);
        let completion_time_s = Percentiles {
            p50: round6(percentile(&times, 0.5)),
            p90: round6(percentile(&times, 0.9)),
            p99: round6(percentile(&times, 0.99)),
            max: round6(times.last().copied().unwrap_or(0.0)),
        };
        let mut up = Upload::default();
        let leech: Vec<u64> = i.uploads.iter().filter(|u| !u.0).map(|u| u.1).collect();
        up.seeders_bytes = i.uploads.iter().filter(|u| u.0).map(|u| u.1).sum();
        up.leechers_bytes = leech.iter().sum();
        up.leecher_max_bytes = leech.iter().copied().max().unwrap_or(0);
        up.leechers_idle = leech.iter().filter(|&&b| b == 0).count() as u32;
        let sum: f64 = leech.iter().map(|&b| b as f64).sum();
        let sq: f64 = leech.iter().map(|&b| (b as f64) * (b as f64)).sum();
        up.leecher_fairness = if sq > 0.0 {
            round6(sum * sum / (leech.len() as f64 * sq))
        } else {
            0.0
        };
        // Origin included: peers' share of all content delivered (seeders and origin are the
        // infrastructure).
        let origin_bytes = i.origin.as_ref().map_or(0, |o| o.bytes);
        let total_up = up.seeders_bytes + up.leechers_bytes + origin_bytes;
        let peer_efficiency = if total_up == 0 {
            0.0
        } else {
            round6(up.leechers_bytes as f64 / total_up as f64)
        };
        let datagrams = Datagrams {
            sent: i.net.sent,
            delivered: i.net.delivered,
            duplicated: i.net.duplicated,
            dropped: DropReason::ALL
                .iter()
                .map(|r| (r.name(), i.net.dropped[*r as usize]))
                .collect(),
        };
        let names = [
            "peer_connected",
            "peer_closed",
            "chunks_verified",
            "size_known",
            "swarm_complete",
            "integrity_failure",
            "store_failure",
            "other",
        ];
        let live = i.stream.map(|(injected, mut lags)| {
            lags.sort_unstable();
            let q = |x: f64| {
                if lags.is_empty() {
                    return 0.0;
                }
                let idx = ((x * lags.len() as f64).ceil() as usize).clamp(1, lags.len()) - 1;
                f64::from(lags[idx]) / 1000.0
            };
            LiveReport {
                rate_bytes_per_s: i.scenario.live_rate.unwrap_or(0),
                chunks_injected: injected,
                chunks_delivered: lags.len() as u64,
                delay_s: Percentiles {
                    p50: q(0.5),
                    p90: q(0.9),
                    p99: q(0.99),
                    max: lags.last().map_or(0.0, |&m| f64::from(m) / 1000.0),
                },
            }
        });
        Self {
            seed: i.scenario.seed,
            trace_hash: format!("{:016x}", i.trace_hash),
            peers_total: i.scenario.peers,
            peers_complete: times.len() as u32,
            peers_gone: i.gone,
            peers_incomplete_live: i.live_incomplete,
            completion_time_s,
            peer_efficiency,
            events: i.events,
            sim_time_s: round6(i.sim_time_s),
            wall_time_s: i.wall_time_s,
            upload: up,
            datagrams,
            messages_out: i.protocol.messages_out_by_name(),
            protocol: i.protocol,
            endpoint_events: names.iter().copied().zip(i.event_counts).collect(),
            live,
            viewing: i.viewing,
            origin: i.origin,
            attack: (i.scenario.poisoners > 0 || i.scenario.private).then(|| {
                let poisoners = i.scenario.poisoners.min(i.scenario.peers);
                AttackReport {
                    poisoners,
                    private: i.scenario.private,
                    pex_injected: i.net.pex_injected,
                    uncertified_contacts: i.net.uncertified_contacts,
                    refused_uncertified: i.protocol.drop_uncertified,
                    bad_certificates: i.protocol.bad_certificates,
                    honest_complete: i.honest_complete,
                    honest_leechers: i.scenario.peers - poisoners,
                }
            }),
            violations: i.violations,
            violation_count: i.violation_count,
            scenario: i.scenario,
            completion_times: times,
            samples: i.samples,
        }
    }

    /// Whether every leecher still in the swarm completed.
    pub fn all_live_complete(&self) -> bool {
        self.peers_incomplete_live == 0
    }

    /// Whether no safety check failed.
    pub fn safe(&self) -> bool {
        self.violation_count == 0
    }

    /// Events per wall-clock second.
    pub fn events_per_s(&self) -> f64 {
        if self.wall_time_s > 0.0 {
            self.events as f64 / self.wall_time_s
        } else {
            0.0
        }
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// Writes two SVG plots one above the other: the completion-time CDF and the swarm's
    /// progress over time.
    pub fn write_svg(&self, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
        use plotters::prelude::*;
        let root = SVGBackend::new(path, (900, 900)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(450);

        let tmax = self
            .completion_times
            .last()
            .copied()
            .unwrap_or(1.0)
            .max(1e-3);
        let n = self.peers_total.max(1) as f64;
        let mut c = ChartBuilder::on(&top)
            .caption(
                format!(
                    "completion time CDF (seed {}, {} of {} complete)",
                    self.seed, self.peers_complete, self.peers_total
                ),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..tmax * 1.05, 0.0..1.0)?;
        c.configure_mesh()
            .x_desc("seconds since join")
            .y_desc("share of leechers complete")
            .draw()?;
        let cdf = self
            .completion_times
            .iter()
            .enumerate()
            .map(|(k, &t)| (t, (k + 1) as f64 / n));
        c.draw_series(LineSeries::new(
            std::iter::once((0.0, 0.0)).chain(cdf),
            &BLUE,
        ))?;

        let smax = self.samples.last().map_or(1.0, |s| s.t_s).max(1e-3);
        let mut c = ChartBuilder::on(&bottom)
            .caption("swarm progress", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..smax * 1.02, 0.0..1.0)?;
        c.configure_mesh()
            .x_desc("simulated seconds")
            .y_desc("share")
            .draw()?;
        c.draw_series(LineSeries::new(
            self.samples.iter().map(|s| (s.t_s, s.progress)),
            &RED,
        ))?
        .label("chunks held / all chunks wanted")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        c.draw_series(LineSeries::new(
            self.samples
                .iter()
                .map(|s| (s.t_s, f64::from(s.complete) / n)),
            &BLUE,
        ))?
        .label("leechers complete")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        c.configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
        root.present()?;
        Ok(())
    }
}

/// Bytes in MiB, the unit `ppspp` and the simulator's `--content-size` use.
fn mb(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sc = &self.scenario;
        writeln!(
            f,
            "PPSPP_SIM_SEED={}  trace_hash={}",
            self.seed, self.trace_hash
        )?;
        writeln!(
            f,
            "scenario      {} leechers + {} seeder(s), {} bytes in {}-byte chunks ({} chunks)",
            sc.peers,
            sc.seeders,
            sc.content_size,
            sc.chunk_size,
            sc.chunk_count()
        )?;
        let row = |f: &mut fmt::Formatter<'_>, k: &str, v: String| writeln!(f, "{k:<22}{v}");
        row(
            f,
            "peers complete",
            format!(
                "{} / {} ({} left for good, {} live incomplete)",
                self.peers_complete, self.peers_total, self.peers_gone, self.peers_incomplete_live
            ),
        )?;
        let c = self.completion_time_s;
        row(
            f,
            "completion time (s)",
            format!(
                "p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
                c.p50, c.p90, c.p99, c.max
            ),
        )?;
        if let Some(l) = &self.live {
            let d = l.delay_s;
            row(
                f,
                "live stream",
                format!(
                    "{} B/s, {} chunks injected, {} delivered; delay (s) p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
                    l.rate_bytes_per_s,
                    l.chunks_injected,
                    l.chunks_delivered,
                    d.p50,
                    d.p90,
                    d.p99,
                    d.max
                ),
            )?;
        }
        if let Some(v) = &self.viewing {
            let (s, st, sk) = (v.startup_s, v.stalled_s, v.seek_latency_s);
            row(
                f,
                "viewers",
                format!(
                    "{} at {} B/s, {} never started; startup (s) p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
                    v.viewers, v.bitrate, v.never_started, s.p50, s.p90, s.p99, s.max
                ),
            )?;
            row(
                f,
                "  stalls",
                format!(
                    "{} in all, {} viewers stalled; stalled (s/viewer) p90 {:.3}  max {:.3}",
                    v.stalls, v.viewers_stalled, st.p90, st.max
                ),
            )?;
            if sk.max > 0.0 {
                row(
                    f,
                    "  seek latency (s)",
                    format!(
                        "p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
                        sk.p50, sk.p90, sk.p99, sk.max
                    ),
                )?;
            }
        }
        row(
            f,
            "uploaded",
            format!(
                "seeders {}  leechers {}  peer_efficiency {:.3}",
                mb(self.upload.seeders_bytes),
                mb(self.upload.leechers_bytes),
                self.peer_efficiency
            ),
        )?;
        if let Some(a) = &self.attack {
            row(
                f,
                "attack",
                format!(
                    "poisoners {}  private {}  pex_injected {}  uncertified_contacts {}  refused_uncertified {}  honest_complete {}/{}",
                    a.poisoners,
                    a.private,
                    a.pex_injected,
                    a.uncertified_contacts,
                    a.refused_uncertified,
                    a.honest_complete,
                    a.honest_leechers
                ),
            )?;
        }
        if let Some(o) = &self.origin {
            row(
                f,
                "origin",
                format!(
                    "served {} (+ {} of tree)  fetches {}  failed {}  cost {:.2}",
                    mb(o.bytes),
                    mb(o.tree_bytes),
                    o.fetches,
                    o.failures,
                    o.cost
                ),
            )?;
        }
        row(
            f,
            "leecher upload",
            format!(
                "Jain fairness {:.3}  max {}  idle {}",
                self.upload.leecher_fairness,
                mb(self.upload.leecher_max_bytes),
                self.upload.leechers_idle
            ),
        )?;
        let dropped: u64 = self.datagrams.dropped.values().sum();
        row(
            f,
            "datagrams",
            format!(
                "sent {}  delivered {}  duplicated {}  dropped {}",
                self.datagrams.sent, self.datagrams.delivered, self.datagrams.duplicated, dropped
            ),
        )?;
        let reasons: Vec<String> = self
            .datagrams
            .dropped
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        row(
            f,
            "  dropped by",
            if reasons.is_empty() {
                "-".into()
            } else {
                reasons.join("  ")
            },
        )?;
        let msgs: Vec<String> = self
            .messages_out
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        row(f, "messages sent", msgs.join("  "))?;
        let p = &self.protocol;
        row(
            f,
            "protocol",
            format!(
                "verified {}  data rexmit {} ({} spurious)  hs rexmit {}  rerequests {} ({} stalled)  refused req {}  unrequested data {}  mtu fallbacks {}",
                p.chunks_verified,
                p.data_retransmissions,
                p.spurious_losses,
                p.handshake_retransmissions,
                p.rerequests,
                p.rerequests_stalled,
                p.refused_requests,
                p.drop_unrequested_data,
                p.pmtu_fallbacks
            ),
        )?;
        row(
            f,
            "time",
            format!(
                "simulated {:.3} s  wall {:.2} s  events {}  ({:.0} events/s)",
                self.sim_time_s,
                self.wall_time_s,
                self.events,
                self.events_per_s()
            ),
        )?;
        row(
            f,
            "safety",
            if self.safe() {
                "ok".into()
            } else {
                format!("{} violation(s)", self.violation_count)
            },
        )?;
        for v in &self.violations {
            writeln!(f, "  {v}")?;
        }
        Ok(())
    }
}
