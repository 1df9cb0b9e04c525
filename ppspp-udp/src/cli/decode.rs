//! `ppspp decode HEX`: a protocol dissector for one datagram.
//!
//! Prints `channel XXXXXXXX` (the destination channel ID), then one line per message starting
//! with the RFC's message name in capitals (`KEEPALIVE` for a datagram with no messages). A
//! malformed datagram prints the messages that decoded, then `error: …` naming what was wrong
//! and at which byte, and exits with status 1.

use std::io::{Read, Write};

use bytes::Bytes;
use ppspp_core::wire::{ChunkAddressing, WireParams, decode_datagram};

/// Arguments of `ppspp decode`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The datagram as hex (spaces, colons and a leading 0x are ignored); `-` reads stdin.
    pub hex: String,
    /// The chunk addressing method the channel negotiated.
    #[arg(long, default_value = "chunk32", value_parser = parse_addressing)]
    pub addressing: ChunkAddressing,
    /// The hash length in bytes of INTEGRITY messages (20 for SHA-1, 32 for SHA-256, …).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u8).range(1..=64))]
    pub hash_len: u8,
    /// The signature length in bytes of SIGNED_INTEGRITY messages (64 for ECDSAP256SHA256).
    #[arg(long, default_value_t = 64)]
    pub signature_len: u16,
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
    let (channel, messages) = match decode_datagram(Bytes::copy_from_slice(datagram), params) {
        Ok(v) => v,
        Err(e) => {
            writeln!(out, "error: {e}")?;
            return Ok(false);
        }
    };
    writeln!(out, "channel {channel}")?;
    let mut any = false;
    for m in messages {
        match m {
            Ok(m) => {
                any = true;
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
    let text = if args.hex == "-" {
        let mut s = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut s) {
            eprintln!("ppspp decode: cannot read stdin: {e}");
            return 2;
        }
        s
    } else {
        args.hex.clone()
    };
    let bytes = match parse_hex(&text) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("ppspp decode: {e}");
            return 2;
        }
    };
    let params = WireParams {
        addressing: args.addressing,
        hash_len: usize::from(args.hash_len),
        signature_len: usize::from(args.signature_len),
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
