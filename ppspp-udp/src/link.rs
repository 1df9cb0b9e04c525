//! Swarm links: one line carrying everything a downloader needs to join a swarm.
//!
//! ```text
//! ppspp://<swarm-id-hex>?cs=<chunk size>&hash=<function>&cam=<addressing>&size=<bytes>&peer=<addr>[&peer=<addr>…][&tracker=<url>…][&origin=<url>…]
//! ```
//!
//! - `<swarm-id-hex>`: the Merkle root hash in hex (required). Its length names the hash
//!   function when `hash` is absent: 20 bytes SHA-1, 28 SHA-224, 32 SHA-256, 48 SHA-384,
//!   64 SHA-512.
//! - `cs`: the chunk size in bytes (default 1024).
//! - `hash`: `sha1`, `sha224`, `sha256`, `sha384` or `sha512`; must agree with the ID length.
//! - `cam`: the chunk addressing method: `chunk32` (default; RFC 7574's default and what
//!   libswift speaks), `bin32`, `chunk64` or `bin64`.
//! - `size`: the content length in bytes (optional; without it the size is learnt from the
//!   peak hashes).
//! - `peer`: a peer to contact, `host:port` with IPv6 hosts in brackets; repeatable.
//! - `tracker`: a PPSTP (RFC 7846) tracker to ask for peers, an `http://` or `https://` URL
//!   (`%`, `&`, `#`, `+` and spaces in it percent-encoded); repeatable.
//! - `origin`: an HTTP origin of the content (`http://` or `https://`), percent-encoded
//!   (`%26` for `&`, `%25` for `%`, …); its tree sidecar is at the same URL + `.mhash`;
//!   repeatable. See `docs/origin.md`.
//!
//! Unknown parameters are ignored, so later versions may add some. A bare hex swarm ID is a
//! link with every parameter at its default.
//!
//! ```
//! use ppspp_udp::SwarmLink;
//!
//! let link: SwarmLink =
//!     "ppspp://47a013e660d408619d894b20806b1d5086aab03b?cs=1024&size=13&peer=127.0.0.1:6778"
//!         .parse()?;
//! assert_eq!(link.chunk_size, 1024);
//! assert_eq!(link.hash.name(), "sha1");
//! assert_eq!(link.size, Some(13));
//! assert_eq!(link.peers, ["127.0.0.1:6778".parse()?]);
//! assert_eq!(link.to_string().parse::<SwarmLink>()?, link);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use ppspp_core::hash::{HashAlgorithm, HashValue};
use ppspp_core::wire::ChunkAddressing;

/// The default chunk size (RFC 7574 §4 recommends 1 KiB).
pub const DEFAULT_CHUNK_SIZE: u32 = 1024;

/// A parsed swarm link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmLink {
    /// The swarm ID (Merkle root hash).
    pub swarm_id: HashValue,
    /// The Merkle hash function.
    pub hash: HashAlgorithm,
    /// The chunk size in bytes.
    pub chunk_size: u32,
    /// The chunk addressing method.
    pub addressing: ChunkAddressing,
    /// The content length in bytes, if the link carries it.
    pub size: Option<u64>,
    /// Peers to contact.
    pub peers: Vec<SocketAddr>,
    /// Trackers to ask for peers (URLs).
    pub trackers: Vec<String>,
    /// HTTP origins of the content (URLs, as given).
    pub origins: Vec<String>,
    /// Whether the link said `cs=` explicitly (so a command line may not contradict it).
    pub explicit_chunk_size: bool,
}

impl SwarmLink {
    /// A link to `swarm_id` with the other parameters at their defaults; the hash function
    /// is inferred from the ID's length.
    pub fn new(swarm_id: HashValue) -> Result<Self, LinkError> {
        let hash = HashAlgorithm::from_output_len(swarm_id.len())
            .ok_or(LinkError::IdLength(swarm_id.len()))?;
        Ok(Self {
            swarm_id,
            hash,
            chunk_size: DEFAULT_CHUNK_SIZE,
            addressing: ChunkAddressing::ChunkRange32,
            size: None,
            peers: Vec::new(),
            trackers: Vec::new(),
            origins: Vec::new(),
            explicit_chunk_size: false,
        })
    }
}

/// Why a swarm link (or swarm ID) could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkError {
    /// The swarm ID is not hex.
    NotHex,
    /// The swarm ID's length matches no hash function.
    IdLength(usize),
    /// A parameter has a bad value.
    BadParameter(String),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotHex => f.write_str("the swarm ID is not a hex string"),
            Self::IdLength(n) => write!(
                f,
                "a {n}-byte swarm ID matches no hash function (expected 20 bytes for SHA-1, \
                 28 SHA-224, 32 SHA-256, 48 SHA-384 or 64 SHA-512)"
            ),
            Self::BadParameter(p) => write!(f, "bad swarm link parameter: {p}"),
        }
    }
}

impl std::error::Error for LinkError {}

/// The link name of an addressing method.
pub fn addressing_name(a: ChunkAddressing) -> &'static str {
    match a {
        ChunkAddressing::Bin32 => "bin32",
        ChunkAddressing::ByteRange64 => "byte64",
        ChunkAddressing::ChunkRange32 => "chunk32",
        ChunkAddressing::Bin64 => "bin64",
        ChunkAddressing::ChunkRange64 => "chunk64",
    }
}

/// Parses an addressing method name (`chunk32`, `bin32`, `chunk64`, `bin64`).
pub fn parse_addressing(s: &str) -> Option<ChunkAddressing> {
    match s.to_ascii_lowercase().as_str() {
        "chunk32" => Some(ChunkAddressing::ChunkRange32),
        "bin32" => Some(ChunkAddressing::Bin32),
        "chunk64" => Some(ChunkAddressing::ChunkRange64),
        "bin64" => Some(ChunkAddressing::Bin64),
        _ => None,
    }
}

impl FromStr for SwarmLink {
    type Err = LinkError;

    fn from_str(s: &str) -> Result<Self, LinkError> {
        let s = s.trim();
        let rest = s
            .strip_prefix("ppspp://")
            .or_else(|| s.strip_prefix("ppspp:"))
            .unwrap_or(s);
        let (hex, query) = match rest.split_once('?') {
            Some((h, q)) => (h, q),
            None => (rest, ""),
        };
        let hex = hex.trim_end_matches('/');
        let all_hex = !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
        let err = if all_hex {
            LinkError::IdLength(hex.len() / 2)
        } else {
            LinkError::NotHex
        };
        let id = HashValue::from_hex(hex).ok_or(err)?;
        let mut link = Self::new(id)?;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let bad = || LinkError::BadParameter(pair.to_owned());
            match k {
                "cs" => {
                    link.chunk_size = v.parse().ok().filter(|&n: &u32| n > 0).ok_or_else(bad)?;
                    link.explicit_chunk_size = true;
                }
                "hash" => {
                    let h: HashAlgorithm = v.parse().map_err(|_| bad())?;
                    if h != link.hash {
                        return Err(LinkError::BadParameter(format!(
                            "{pair}: the swarm ID is {} bytes long, which is {}",
                            id.len(),
                            link.hash
                        )));
                    }
                }
                "cam" => link.addressing = parse_addressing(v).ok_or_else(bad)?,
                "size" => {
                    link.size = Some(v.parse().ok().filter(|&n: &u64| n > 0).ok_or_else(bad)?)
                }
                "peer" => link.peers.push(v.parse().map_err(|_| bad())?),
                "tracker" => {
                    let url = percent_decode(v).ok_or_else(bad)?;
                    if !(url.starts_with("http://") || url.starts_with("https://"))
                        || url.len() <= "https://".len()
                    {
                        return Err(bad());
                    }
                    link.trackers.push(url);
                }
                "origin" => {
                    let url = percent_decode(v).ok_or_else(bad)?;
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(bad());
                    }
                    link.origins.push(url);
                }
                _ => {}
            }
        }
        Ok(link)
    }
}

impl fmt::Display for SwarmLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ppspp://{}?cs={}&hash={}&cam={}",
            self.swarm_id,
            self.chunk_size,
            self.hash,
            addressing_name(self.addressing)
        )?;
        if let Some(size) = self.size {
            write!(f, "&size={size}")?;
        }
        for p in &self.peers {
            write!(f, "&peer={p}")?;
        }
        for t in &self.trackers {
            write!(f, "&tracker={}", percent_encode(t))?;
        }
        for o in &self.origins {
            write!(f, "&origin={}", percent_encode(o))?;
        }
        Ok(())
    }
}

/// Percent-encodes what would end or confuse a link parameter (RFC 3986 §2.1): `%`, `&`, `#`,
/// `+`, `=`, spaces, controls and non-ASCII bytes.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_graphic() && !matches!(b, b'%' | b'&' | b'#' | b'+' | b'=') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; `None` for a bad escape or bytes that are not UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_ids_infer_the_hash() {
        for (len, alg) in [
            (20, "sha1"),
            (28, "sha224"),
            (32, "sha256"),
            (48, "sha384"),
            (64, "sha512"),
        ] {
            let hex = "ab".repeat(len);
            let l: SwarmLink = hex.parse().unwrap();
            assert_eq!(l.hash.name(), alg);
            assert_eq!(l.chunk_size, 1024);
            assert!(l.peers.is_empty());
        }
        assert_eq!("abcd".parse::<SwarmLink>(), Err(LinkError::IdLength(2)));
        assert_eq!("xyz1".parse::<SwarmLink>(), Err(LinkError::NotHex));
        assert_eq!("abc".parse::<SwarmLink>(), Err(LinkError::IdLength(1)));
    }

    #[test]
    fn full_links_round_trip() {
        let s = format!(
            "ppspp://{}?cs=4096&hash=sha256&cam=bin64&size=99999&peer=[::1]:7&peer=10.0.0.1:8&x=y",
            "01".repeat(32)
        );
        let l: SwarmLink = s.parse().unwrap();
        assert_eq!(l.chunk_size, 4096);
        assert_eq!(l.addressing, ChunkAddressing::Bin64);
        assert_eq!(l.size, Some(99999));
        assert_eq!(l.peers.len(), 2);
        assert!(l.explicit_chunk_size);
        assert_eq!(l.to_string().parse::<SwarmLink>().unwrap(), l);
    }

    #[test]
    fn origins_round_trip_percent_encoded() {
        let url = "https://cdn.example/a b/file.bin?x=1&y=%2";
        let mut l = SwarmLink::new(HashValue::from_hex(&"01".repeat(20)).unwrap()).unwrap();
        // Written links always say cs=.
        l.explicit_chunk_size = true;
        l.origins.push(url.to_owned());
        l.origins.push("http://[::1]:8080/f".to_owned());
        let s = l.to_string();
        assert!(s.contains("&origin=https://cdn.example/a%20b/file.bin?x%3D1%26y%3D%252"));
        assert_eq!(s.parse::<SwarmLink>().unwrap(), l);
        let bad = format!("ppspp://{}?origin=ftp://x/y", "01".repeat(20));
        assert!(bad.parse::<SwarmLink>().is_err());
        let bad = format!("ppspp://{}?origin=http://x/%zz", "01".repeat(20));
        assert!(bad.parse::<SwarmLink>().is_err());
    }

    #[test]
    fn contradictions_are_errors() {
        let s = format!("ppspp://{}?hash=sha1", "01".repeat(32));
        assert!(matches!(
            s.parse::<SwarmLink>(),
            Err(LinkError::BadParameter(_))
        ));
        let s = format!("ppspp://{}?cs=0", "01".repeat(20));
        assert!(s.parse::<SwarmLink>().is_err());
        let s = format!("ppspp://{}?peer=nowhere", "01".repeat(20));
        assert!(s.parse::<SwarmLink>().is_err());
        for bad in ["ftp://x", "http://", "http://a%2", "http://a%zz"] {
            let s = format!("ppspp://{}?tracker={bad}", "01".repeat(20));
            assert!(s.parse::<SwarmLink>().is_err(), "{bad}");
        }
    }

    #[test]
    fn trackers_round_trip_escaped() {
        let mut l = SwarmLink::new(HashValue::from_hex(&"01".repeat(20)).unwrap()).unwrap();
        // A written link always says cs=.
        l.explicit_chunk_size = true;
        l.trackers = vec![
            "http://127.0.0.1:6969/ppstp".into(),
            "https://t.example/a?x=1&y=100%#f".into(),
        ];
        let text = l.to_string();
        // `&`, `%`, `#` and `=` are escaped (one percent-encoding for trackers and origins).
        assert!(
            text.ends_with(
                "&tracker=http://127.0.0.1:6969/ppstp&tracker=https://t.example/a?x%3D1%26y%3D100%25%23f"
            ),
            "{text}"
        );
        assert_eq!(text.parse::<SwarmLink>().unwrap(), l);
    }
}
