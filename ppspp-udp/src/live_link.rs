//! Live stream links: one line carrying everything a peer needs to join a live stream
//! (RFC 7574 §6), the live counterpart of [`SwarmLink`](crate::SwarmLink).
//!
//! ```text
//! ppspp://<live-swarm-id-hex>?live=1&cs=<chunk size>&cps=<chunks per signature>&form=<rfc|libswift>&peer=<addr>[&peer=<addr>…][&origin=<url>…]
//! ```
//!
//! - `<live-swarm-id-hex>`: the stream's swarm ID as `ppspp live source` prints it (the
//!   DNSSEC algorithm byte, then the public key: 33 bytes for Ed25519, 65 for ECDSA P-256,
//!   97 for ECDSA P-384). The signature algorithm is part of the ID.
//! - `live=1`: marks the link as a live stream's (required).
//! - `cs`: the chunk size in bytes (default 1024), as `ppspp live --chunk-size`.
//! - `cps`: chunks per signed munro (default 32; a power of two, 2 to 65536), as
//!   `ppspp live --chunks-per-sig`.
//! - `form`: what a munro signature covers, `rfc` (default) or `libswift`, as
//!   `ppspp live --form`.
//! - `peer`: a peer to contact, `host:port` with IPv6 hosts in brackets; repeatable.
//! - `origin`: an HTTP origin of the stream (the URL of the content `ppspp live source
//!   --publish` writes; its munro log is beside it), percent-encoded as in a static link;
//!   repeatable. See `docs/origin.md`.
//!
//! The hash function (SHA-1) and the chunk addressing (32-bit chunk ranges) are those of
//! `ppspp live`. Unknown parameters are ignored.
//!
//! ```
//! use ppspp_udp::live_link::LiveLink;
//!
//! // An Ed25519 stream's ID, as `ppspp live source --algorithm ed25519` prints it.
//! let id = "0fc88ad3a4b546efb04abff95141854b5b42f3aeb66551aebfe6c97d447f077d23";
//! let link: LiveLink = format!("ppspp://{id}?live=1&cs=2048&cps=16&peer=127.0.0.1:6778").parse()?;
//! assert_eq!(link.chunk_size, 2048);
//! assert_eq!(link.chunks_per_sig, 16);
//! assert_eq!(link.to_string().parse::<LiveLink>()?, link);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use ppspp_core::hash::HashAlgorithm;
use ppspp_core::live::{LiveParams, LiveSwarmId, SignedForm};
use ppspp_core::wire::ChunkAddressing;

/// The default chunks per signed munro (libswift's).
pub const DEFAULT_CHUNKS_PER_SIG: u64 = 32;

/// A parsed live stream link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveLink {
    /// The live swarm ID (algorithm and public key).
    pub swarm_id: LiveSwarmId,
    /// The chunk size in bytes.
    pub chunk_size: u32,
    /// Chunks per signed munro.
    pub chunks_per_sig: u64,
    /// What a munro signature covers.
    pub form: SignedForm,
    /// Peers to contact.
    pub peers: Vec<SocketAddr>,
    /// HTTP origins of the stream (URLs, as given).
    pub origins: Vec<String>,
}

/// Why a live link could not be parsed; the message says which part is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveLinkError(pub String);

impl fmt::Display for LiveLinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LiveLinkError {}

impl LiveLink {
    /// A link to `swarm_id` with the other parameters at their defaults.
    pub fn new(swarm_id: LiveSwarmId) -> Self {
        Self {
            swarm_id,
            chunk_size: crate::link::DEFAULT_CHUNK_SIZE,
            chunks_per_sig: DEFAULT_CHUNKS_PER_SIG,
            form: SignedForm::Rfc7574,
            peers: Vec::new(),
            origins: Vec::new(),
        }
    }

    /// The stream parameters the link describes (SHA-1, 32-bit chunk ranges, as
    /// `ppspp live`).
    pub fn params(&self) -> LiveParams {
        LiveParams {
            chunk_size: self.chunk_size,
            nchunks_per_sig: self.chunks_per_sig,
            addressing: ChunkAddressing::ChunkRange32,
            hash: HashAlgorithm::Sha1,
            form: self.form,
        }
    }

    /// Builds a link from the swarm ID in hex and `(name, value)` query parameters (already
    /// percent-decoded); checks every value, including that the ID is a key the signature
    /// algorithm accepts.
    pub fn from_parts<'a>(
        hex: &str,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, LiveLinkError> {
        let id = parse_live_id(hex)?;
        let mut link = Self::new(id);
        let mut live = false;
        for (k, v) in params {
            let bad = |why: &str| LiveLinkError(format!("bad live link parameter {k}={v}: {why}"));
            match k {
                "live" => {
                    if v != "1" {
                        return Err(bad("expected live=1"));
                    }
                    live = true;
                }
                "cs" => {
                    link.chunk_size = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=crate::cli::MAX_CHUNK_SIZE).contains(n))
                        .ok_or_else(|| {
                            bad(&format!(
                                "a chunk size in 1..={}",
                                crate::cli::MAX_CHUNK_SIZE
                            ))
                        })?;
                }
                "cps" => {
                    link.chunks_per_sig = v
                        .parse()
                        .ok()
                        .filter(|&n: &u64| (2..=65536).contains(&n) && n.is_power_of_two())
                        .ok_or_else(|| bad("a power of two from 2 to 65536"))?;
                }
                "form" => {
                    link.form = match v {
                        "rfc" => SignedForm::Rfc7574,
                        "libswift" => SignedForm::Libswift,
                        _ => return Err(bad("rfc or libswift")),
                    };
                }
                "peer" => link
                    .peers
                    .push(v.parse().map_err(|_| bad("expected HOST:PORT"))?),
                "origin" => {
                    let url = crate::link::percent_decode(v)
                        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                        .ok_or_else(|| bad("an http:// or https:// URL"))?;
                    link.origins.push(url);
                }
                _ => {}
            }
        }
        if !live {
            return Err(LiveLinkError("a live link says live=1".into()));
        }
        Ok(link)
    }
}

/// Parses a live swarm ID in hex and checks that its algorithm and key are usable.
pub fn parse_live_id(hex: &str) -> Result<LiveSwarmId, LiveLinkError> {
    let id = LiveSwarmId::from_hex(hex)
        .map_err(|e| LiveLinkError(format!("live swarm ID {}: {e}", clip(hex))))?;
    ppspp_core::live::verifier(&id)
        .map_err(|e| LiveLinkError(format!("live swarm ID {}: {e}", clip(hex))))?;
    Ok(id)
}

/// Whether a link's text says `live=1` (so it is parsed as a [`LiveLink`]).
pub fn is_live_link(s: &str) -> bool {
    s.split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|p| p == "live=1"))
}

fn clip(s: &str) -> String {
    let mut c: String = s.chars().take(40).collect();
    if c.len() < s.len() {
        c.push('…');
    }
    c
}

impl FromStr for LiveLink {
    type Err = LiveLinkError;

    fn from_str(s: &str) -> Result<Self, LiveLinkError> {
        let s = s.trim();
        let rest = s
            .strip_prefix("ppspp://")
            .or_else(|| s.strip_prefix("ppspp:"))
            .unwrap_or(s);
        let (hex, query) = rest.split_once('?').unwrap_or((rest, ""));
        let pairs = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")));
        Self::from_parts(hex.trim_end_matches('/'), pairs)
    }
}

impl fmt::Display for LiveLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ppspp://{}?live=1&cs={}&cps={}&form={}",
            self.swarm_id,
            self.chunk_size,
            self.chunks_per_sig,
            match self.form {
                SignedForm::Libswift => "libswift",
                _ => "rfc",
            }
        )?;
        for p in &self.peers {
            write!(f, "&peer={p}")?;
        }
        for o in &self.origins {
            write!(f, "&origin={}", crate::link::percent_encode(o))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppspp_core::live::KeyPair;
    use ppspp_core::wire::SignatureAlgorithm;

    fn id(alg: SignatureAlgorithm) -> String {
        KeyPair::from_seed(alg, &[7; 32])
            .unwrap()
            .swarm_id()
            .to_string()
    }

    #[test]
    fn origins_round_trip_percent_encoded() {
        let url = "https://cdn.example/live/a b/stream?k=1&x=2";
        let mut l = LiveLink::new(LiveSwarmId::from_hex(&id(SignatureAlgorithm::ED25519)).unwrap());
        l.origins.push(url.to_owned());
        let s = l.to_string();
        assert!(s.contains("&origin=https://cdn.example/live/a%20b/stream?k%3D1%26x%3D2"));
        assert_eq!(s.parse::<LiveLink>().unwrap().origins, [url]);
        let bad = format!(
            "ppspp://{}?live=1&origin=ftp://x/y",
            id(SignatureAlgorithm::ED25519)
        );
        assert!(bad.parse::<LiveLink>().is_err());
    }

    #[test]
    fn links_round_trip_for_every_algorithm() {
        for alg in [
            SignatureAlgorithm::ED25519,
            SignatureAlgorithm::ECDSAP256SHA256,
            SignatureAlgorithm::ECDSAP384SHA384,
        ] {
            let s = format!(
                "ppspp://{}?live=1&cs=4096&cps=64&form=libswift&peer=[::1]:7&x=y",
                id(alg)
            );
            let l: LiveLink = s.parse().unwrap();
            assert_eq!(l.swarm_id.algorithm(), alg);
            assert_eq!((l.chunk_size, l.chunks_per_sig), (4096, 64));
            assert_eq!(l.form, SignedForm::Libswift);
            assert_eq!(l.peers, ["[::1]:7".parse().unwrap()]);
            assert_eq!(l.to_string().parse::<LiveLink>().unwrap(), l);
            assert!(is_live_link(&s));
        }
    }

    #[test]
    fn bad_links_are_errors() {
        let good = id(SignatureAlgorithm::ED25519);
        for bad in [
            good.clone(),
            format!("{good}?live=2"),
            format!("{good}?live=1&cs=0"),
            format!("{good}?live=1&cs=99999"),
            format!("{good}?live=1&cps=3"),
            format!("{good}?live=1&cps=1"),
            format!("{good}?live=1&form=x"),
            format!("{good}?live=1&peer=nowhere"),
            "zz?live=1".into(),
            format!("{}?live=1", "ab".repeat(20)),
            // An Ed25519 key one byte short.
            format!("0f{}?live=1", "ab".repeat(31)),
        ] {
            assert!(bad.parse::<LiveLink>().is_err(), "{bad}");
        }
        assert!(!is_live_link(&format!("{good}?cs=1024")));
    }
}
