//! `ppspp decode HEX` and `ppspp decode --pcap FILE`: a protocol dissector.
//!
//! For one datagram given as hex it prints `channel XXXXXXXX` (the destination channel ID),
//! then one line per message starting with the RFC's message name in capitals (`KEEPALIVE`
//! for a datagram with no messages). A malformed datagram prints the messages that decoded,
//! then `error: …` naming what was wrong and at which byte, and exits with status 1.
//!
//! For a capture file (classic pcap or pcapng, see [`super::pcap`]) it prints, for every UDP
//! datagram (on `--port N` only, if given), a header line
//! `packet N SECONDS.MICROS SRC -> DST (LEN bytes)` and then the same lines as for one
//! datagram; packets are separated by a blank line. N is the frame's number in the file,
//! counting from 1 as Wireshark does. Handshakes set the chunk addressing method and hash
//! length for the later datagrams of their flow, as a dissector must: the options a peer
//! sends in its HANDSHAKE govern the datagrams addressed to the channel it announced, and
//! until both sides have spoken, every datagram between the two addresses. A malformed
//! datagram prints its error and decoding goes on; a summary goes to stderr. Exit status: 0
//! when every datagram decoded, 1 when some did not (or the capture ends mid-record), 2 when
//! the file cannot be read or is not a capture.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use ppspp_core::wire::{
    ChunkAddressing, ChunkSpec, Handshake, Message, WireParams, decode_datagram,
};

use super::pcap::{Dissected, Frames, dissect_frame};

/// Arguments of `ppspp decode`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The datagram as hex (spaces, colons and a leading 0x are ignored); `-` reads stdin.
    #[arg(required_unless_present = "pcap", conflicts_with = "pcap")]
    pub hex: Option<String>,
    /// Decode every UDP datagram of a capture file (pcap or pcapng) instead.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// With `--pcap`: only datagrams from or to this UDP port.
    #[arg(long, value_name = "N", requires = "pcap",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// The chunk addressing method the channel negotiated.
    #[arg(long, default_value = "chunk32", value_parser = parse_addressing)]
    pub addressing: ChunkAddressing,
    /// The hash length in bytes of INTEGRITY messages (20 for SHA-1, 32 for SHA-256, …).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u8).range(1..=64))]
    pub hash_len: u8,
    /// The signature length in bytes of SIGNED_INTEGRITY messages (64 for ECDSAP256SHA256).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub signature_len: u16,
    /// The swarm's chunk size: a DATA message holding one full chunk then ends after it, so
    /// several DATA messages in one datagram are told apart (RFC 7574 §8.6). Without it, a
    /// DATA message runs to the end of its datagram, as libswift sends them.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1..=65_507))]
    pub chunk_size: Option<u32>,
}

fn parse_addressing(s: &str) -> Result<ChunkAddressing, String> {
    s.parse().map_err(|e| format!("{e}"))
}

/// Parses hex, ignoring whitespace, `:` separators and a leading `0x`.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    let digits: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b':')
        .collect();
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    digits
        .chunks_exact(2)
        .enumerate()
        .map(|(i, p)| {
            let hi = (p[0] as char).to_digit(16);
            let lo = (p[1] as char).to_digit(16);
            match (hi, lo) {
                (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
                _ => Err(format!(
                    "not a hex digit in byte {i}: {:?}",
                    String::from_utf8_lossy(p)
                )),
            }
        })
        .collect()
}

/// Decodes `datagram` and writes the dissection to `out`. Returns whether it decoded cleanly.
pub fn dissect(
    datagram: &[u8],
    params: &WireParams,
    out: &mut impl Write,
) -> std::io::Result<bool> {
    dissect_with(datagram, params, out, |_, _| {})
}

/// [`dissect`], calling `on_handshake(handshake, params)` for every HANDSHAKE decoded with the
/// parameters it leaves in force (the ones before it, overridden by its options).
fn dissect_with(
    datagram: &[u8],
    params: &WireParams,
    out: &mut impl Write,
    mut on_handshake: impl FnMut(&Handshake, &WireParams),
) -> std::io::Result<bool> {
    let (channel, mut messages) = match decode_datagram(Bytes::copy_from_slice(datagram), params) {
        Ok(v) => v,
        Err(e) => {
            writeln!(out, "error: {e}")?;
            return Ok(false);
        }
    };
    writeln!(out, "channel {channel}")?;
    let mut any = false;
    while let Some(m) = messages.next() {
        match m {
            Ok(m) => {
                any = true;
                if let Message::Handshake(h) = &m {
                    on_handshake(h, messages.params());
                }
                writeln!(out, "{m}")?;
            }
            Err(e) => {
                writeln!(out, "error: {e}")?;
                return Ok(false);
            }
        }
    }
    if !any {
        writeln!(out, "KEEPALIVE")?;
    }
    Ok(true)
}

/// Runs `ppspp decode`.
pub fn run(args: &Args) -> u8 {
    let params = WireParams {
        addressing: args.addressing,
        hash_len: usize::from(args.hash_len),
        signature_len: usize::from(args.signature_len),
        chunk_size: args.chunk_size.unwrap_or(0),
    };
    if let Some(path) = &args.pcap {
        return run_pcap(path, args.port, params);
    }
    let hex = args.hex.as_deref().unwrap_or("-");
    let text = if hex == "-" {
        let mut s = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut s) {
            eprintln!("ppspp decode: cannot read stdin: {e}");
            return 2;
        }
        s
    } else {
        hex.to_owned()
    };
    let bytes = match parse_hex(&text) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("ppspp decode: {e}");
            return 2;
        }
    };
    let stdout = std::io::stdout();
    match dissect(&bytes, &params, &mut stdout.lock()) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("ppspp decode: {e}");
            2
        }
    }
}

/// What a flow's handshakes said: how to decode its datagrams, and its chunk size.
#[derive(Clone, Copy, Debug)]
struct Flow {
    params: WireParams,
    /// The Chunk Size option, if a handshake carried one.
    chunk_size: Option<u32>,
}

/// The wire parameters of the flows seen so far in a capture.
#[derive(Debug)]
struct Flows {
    /// Used until a handshake says otherwise (the command-line options).
    defaults: Flow,
    /// Per (receiver, destination channel): set by the receiver's own handshake, which
    /// announced that channel.
    by_channel: BTreeMap<(SocketAddr, u32), Flow>,
    /// Per unordered address pair: the latest handshake between the two.
    by_pair: BTreeMap<(SocketAddr, SocketAddr), Flow>,
}

/// At most this many flows are remembered (a bound on memory for huge captures).
const MAX_FLOWS: usize = 1 << 16;

fn pair(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b { (a, b) } else { (b, a) }
}

impl Flows {
    fn get(&self, src: SocketAddr, dst: SocketAddr, channel: Option<u32>) -> Flow {
        channel
            .and_then(|c| self.by_channel.get(&(dst, c)))
            .or_else(|| self.by_pair.get(&pair(src, dst)))
            .copied()
            .unwrap_or(self.defaults)
    }

    fn handshake(&mut self, src: SocketAddr, dst: SocketAddr, h: &Handshake, params: WireParams) {
        let before = self.get(src, dst, None);
        let flow = Flow {
            params,
            chunk_size: h.options.chunk_size.or(before.chunk_size),
        };
        let source = h.source_channel.0;
        if self.by_channel.len() >= MAX_FLOWS {
            self.by_channel.clear();
        }
        if self.by_pair.len() >= MAX_FLOWS {
            self.by_pair.clear();
        }
        if source != 0 {
            self.by_channel.insert((src, source), flow);
        }
        self.by_pair.insert(pair(src, dst), flow);
    }
}

/// Splits a UDP payload that is several datagrams sent with UDP segmentation offload (GSO)
/// into those datagrams.
///
/// A capture on an interface that offloads segmentation (`lo` on Linux, for instance) records
/// the unsegmented buffer: equal-sized datagrams back to back (the last may be shorter) under
/// one UDP header. A PPSPP datagram ends with its DATA message, whose payload is exactly the
/// chunks it names; a longer payload reveals the segment size.
fn gso_segments<'a>(payload: &'a [u8], flow: &Flow) -> Vec<&'a [u8]> {
    let whole = vec![payload];
    let Some(cs) = flow.chunk_size.filter(|&c| c != 0 && c != u32::MAX) else {
        return whole;
    };
    // Read as one datagram whose DATA runs to the end (no splitting at the chunk size), to see
    // how far past its chunks that DATA goes.
    let params = WireParams {
        chunk_size: 0,
        ..flow.params
    };
    let Ok((_, messages)) = decode_datagram(Bytes::copy_from_slice(payload), &params) else {
        return whole;
    };
    let Some(Ok(Message::Data(d))) = messages.last() else {
        return whole;
    };
    let expected = match d.spec {
        ChunkSpec::Bytes { start, end } => end.checked_sub(start).and_then(|n| n.checked_add(1)),
        spec => spec
            .to_chunks(u64::from(cs))
            .and_then(|(first, last)| (last - first).checked_add(1))
            .and_then(|n| n.checked_mul(u64::from(cs))),
    };
    let Some(expected) = expected.and_then(|e| usize::try_from(e).ok()) else {
        return whole;
    };
    if d.payload.len() <= expected {
        return whole;
    }
    let segment = payload.len() - d.payload.len() + expected;
    if segment < 4 {
        return whole;
    }
    payload.chunks(segment).collect()
}

fn run_pcap(path: &std::path::Path, port: Option<u16>, defaults: WireParams) -> u8 {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("ppspp decode: cannot read {}: {e}", path.display());
            return 2;
        }
    };
    let frames = match Frames::new(&bytes) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("ppspp decode: {}: {e}", path.display());
            return 2;
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match decode_frames(frames, port, defaults, &mut out).and_then(|s| {
        out.flush()?;
        Ok(s)
    }) {
        Ok(s) => {
            eprintln!(
                "ppspp decode: {} frames, {} datagrams decoded, {} malformed",
                s.frames, s.decoded, s.malformed
            );
            if let Some(e) = s.capture_error {
                eprintln!("ppspp decode: {}: {e}", path.display());
                return 1;
            }
            u8::from(s.malformed > 0)
        }
        Err(e) => {
            eprintln!("ppspp decode: {e}");
            2
        }
    }
}

/// Counts from [`decode_frames`].
#[derive(Debug, Default)]
struct Summary {
    frames: u64,
    decoded: u64,
    malformed: u64,
    capture_error: Option<super::pcap::CaptureError>,
}

fn decode_frames(
    frames: Frames<'_>,
    port: Option<u16>,
    defaults: WireParams,
    out: &mut impl Write,
) -> std::io::Result<Summary> {
    let mut flows = Flows {
        defaults: Flow {
            params: defaults,
            chunk_size: None,
        },
        by_channel: BTreeMap::new(),
        by_pair: BTreeMap::new(),
    };
    let mut s = Summary::default();
    let wanted = |a: SocketAddr, b: SocketAddr| port.is_none_or(|p| a.port() == p || b.port() == p);
    let header = |out: &mut dyn Write, s: &Summary, f: &super::pcap::Frame<'_>, rest: &str| {
        if s.decoded + s.malformed > 0 {
            writeln!(out)?;
        }
        write!(
            out,
            "packet {} {}.{:06}",
            s.frames,
            f.ts_sec,
            f.ts_nsec / 1000
        )?;
        if rest.is_empty() {
            writeln!(out)
        } else {
            writeln!(out, " {rest}")
        }
    };
    for frame in frames {
        let f = match frame {
            Ok(f) => f,
            Err(e) => {
                s.capture_error = Some(e);
                break;
            }
        };
        s.frames += 1;
        match dissect_frame(f.link_type, f.data) {
            Ok(Dissected::Udp(u)) if wanted(u.src, u.dst) => {
                header(
                    out,
                    &s,
                    &f,
                    &format!("{} -> {} ({} bytes)", u.src, u.dst, u.wire_len),
                )?;
                if u.payload.len() < u.wire_len {
                    writeln!(
                        out,
                        "error: only {} of the datagram's {} bytes were captured",
                        u.payload.len(),
                        u.wire_len
                    )?;
                    s.malformed += 1;
                    continue;
                }
                let channel = |d: &[u8]| {
                    d.get(..4)
                        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                };
                let flow = flows.get(u.src, u.dst, channel(u.payload));
                let segments = gso_segments(u.payload, &flow);
                let n = segments.len();
                for (i, d) in segments.into_iter().enumerate() {
                    if n > 1 {
                        writeln!(out, "segment {}/{n} ({} bytes)", i + 1, d.len())?;
                    }
                    let params = flows.get(u.src, u.dst, channel(d)).params;
                    let ok = dissect_with(d, &params, out, |h, p| {
                        flows.handshake(u.src, u.dst, h, *p);
                    })?;
                    if ok {
                        s.decoded += 1;
                    } else {
                        s.malformed += 1;
                    }
                }
            }
            Ok(Dissected::UdpFragment { src, dst }) => {
                let shown = match (src, dst) {
                    (Some(a), Some(b)) => wanted(a, b).then(|| format!("{a} -> {b}")),
                    _ => port.is_none().then(|| "(later fragment)".to_owned()),
                };
                if let Some(rest) = shown {
                    header(out, &s, &f, &rest)?;
                    writeln!(out, "error: IP fragment; reassembly is not supported")?;
                    s.malformed += 1;
                }
            }
            Ok(_) => {}
            Err(e) => {
                if port.is_none() {
                    header(out, &s, &f, "")?;
                    writeln!(out, "error: {e}")?;
                    s.malformed += 1;
                }
            }
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_forms() {
        assert_eq!(parse_hex("0x00 0a:ff").unwrap(), [0, 10, 255]);
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
    }
}
