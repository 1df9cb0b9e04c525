//! What `ppspp serve`'s HTTP side parses from the network, as plain functions (so they are
//! unit-tested and fuzzed without a server): `Range` headers (RFC 9110 §14), gateway paths
//! (`/<swarm-hex>` and `/<swarm-hex>/<name>`), the link parameters of a gateway query
//! (`?peer=HOST:PORT&size=…&cs=…&hash=…`, as in a [`SwarmLink`]), live streams' gateway
//! paths and query links (as in a [`LiveLink`]) and the control API's JSON bodies.
//!
//! Every function takes untrusted input and returns a value or an error saying what is wrong;
//! none panics or allocates more than a small multiple of its input.

use std::fmt;

use ppspp_core::hash::HashValue;
use serde::Deserialize;

use crate::link::{LinkError, SwarmLink};
use crate::live_link::LiveLink;
use ppspp_core::live::LiveSwarmId;

/// The largest control API body accepted, in bytes (a link with a few dozen peers fits).
pub const MAX_BODY: usize = 16 * 1024;
/// The longest name accepted in a gateway path or an API body, in bytes.
pub const MAX_NAME: usize = 255;

/// What a `Range` header asks of a representation of `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: send the whole representation (200). A header that is not a valid
    /// single `bytes` range is ignored, as RFC 9110 §14.2 allows.
    Full,
    /// Bytes `start..=end` (206); `end < len`.
    Partial {
        /// The first byte.
        start: u64,
        /// The last byte (inclusive).
        end: u64,
    },
    /// A valid range that lies past the end (416, `Content-Range: bytes */len`).
    Unsatisfiable,
}

/// Interprets a `Range` header value against a representation of `len` bytes.
///
/// Only single ranges are served as such: a list of several ranges is answered with the whole
/// representation (RFC 9110 §14.2 lets a server ignore `Range`), which players never ask for
/// anyway. Syntax errors (another unit, `a-b` with `b < a`, junk) are ignored likewise.
pub fn parse_range(header: &str, len: u64) -> RangeRequest {
    let Some((unit, set)) = header.trim().split_once('=') else {
        return RangeRequest::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeRequest::Full;
    }
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return RangeRequest::Full;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeRequest::Full;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    if first.is_empty() {
        // A suffix range: the last N bytes.
        let Some(n) = num(last) else {
            return RangeRequest::Full;
        };
        if n == 0 || len == 0 {
            return RangeRequest::Unsatisfiable;
        }
        return RangeRequest::Partial {
            start: len - n.min(len),
            end: len - 1,
        };
    }
    let Some(start) = num(first) else {
        return RangeRequest::Full;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match num(last) {
            Some(e) if e >= start => e,
            _ => return RangeRequest::Full,
        }
    };
    if start >= len {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial {
        start,
        end: end.min(len - 1),
    }
}

/// A gateway request path: a swarm and optionally the content's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayPath {
    /// The swarm ID.
    pub swarm_id: HashValue,
    /// The name (percent-decoded), if the path carries one.
    pub name: Option<String>,
}

/// Why a request path or body was refused; the message is for the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

fn bad(msg: impl Into<String>) -> InputError {
    InputError(msg.into())
}

/// Parses a swarm ID in hex (any hash length RFC 7574 allows).
pub fn parse_swarm_hex(hex: &str) -> Result<HashValue, InputError> {
    SwarmLink::new(
        HashValue::from_hex(hex)
            .ok_or_else(|| bad(format!("{:?} is not a swarm ID in hex", clip(hex))))?,
    )
    .map(|l| l.swarm_id)
    .map_err(|e| bad(e.to_string()))
}

/// Parses a gateway path (`/<hex>` or `/<hex>/<name>`, as sent: percent-encoded).
///
/// A name is one path segment: after decoding it must be valid UTF-8 of at most
/// [`MAX_NAME`] bytes without `/`, `\`, control characters or a leading dot (so `..` and
/// hidden-file tricks are refused even though names never reach the file system).
pub fn parse_gateway_path(path: &str) -> Result<GatewayPath, InputError> {
    let (hex, name) = split_gateway_path(path)?;
    let swarm_id = parse_swarm_hex(hex)?;
    let name = name.map(|n| parse_name(&percent_decode(n)?)).transpose()?;
    Ok(GatewayPath { swarm_id, name })
}

/// `/<id>` or `/<id>/<name>` split into the ID and the still-encoded name.
fn split_gateway_path(path: &str) -> Result<(&str, Option<&str>), InputError> {
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| bad("the path must start with /"))?;
    Ok(match rest.split_once('/') {
        Some((h, n)) => (h, Some(n)),
        None => (rest, None),
    })
}

/// Checks a content name (already decoded); see [`parse_gateway_path`].
pub fn parse_name(name: &str) -> Result<String, InputError> {
    if name.is_empty() {
        return Err(bad("empty name"));
    }
    if name.len() > MAX_NAME {
        return Err(bad(format!("name longer than {MAX_NAME} bytes")));
    }
    if name.starts_with('.') {
        return Err(bad("a name may not start with a dot"));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_control())
    {
        return Err(bad("a name may not contain /, \\ or control characters"));
    }
    Ok(name.to_owned())
}

/// Decodes `%XX` escapes; the result must be UTF-8.
fn percent_decode(s: &str) -> Result<String, InputError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad("bad %-escape in the path"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad("the path is not UTF-8"))
}

/// The swarm link a gateway request describes: the swarm ID from the path and the link
/// parameters from the query (`peer`, `size`, `cs`, `hash`, `cam`; form-encoded, so
/// `peer=%5B%3A%3A1%5D%3A7` is `[::1]:7`). Other parameters are ignored.
pub fn gateway_link(swarm_id: HashValue, query: Option<&str>) -> Result<SwarmLink, LinkError> {
    let mut s = format!("ppspp://{swarm_id}?");
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if !matches!(&*k, "peer" | "size" | "cs" | "hash" | "cam") {
            continue;
        }
        // The decoded value goes back into a link: it must not smuggle in other parameters.
        if v.contains(['&', '=', '?', '#']) {
            return Err(LinkError::BadParameter(format!("{k}={v}")));
        }
        s.push_str(&k);
        s.push('=');
        s.push_str(&v);
        s.push('&');
    }
    s.parse()
}

/// Whether a gateway query carries link parameters (a request that may start a download): a
/// source to start from, `peer=`, `origin=` or `tracker=`.
pub fn query_has_link(query: Option<&str>) -> bool {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .any(|(k, _)| matches!(&*k, "peer" | "origin" | "tracker"))
}

/// The media bitrate a gateway query gives (`bitrate=` in bits per second, with an optional
/// decimal `k`, `M` or `G` suffix: `bitrate=4M`), as bytes per second; `None` without one.
/// Zero, junk or more than 100 Gbit/s is an error.
pub fn parse_bitrate(query: Option<&str>) -> Result<Option<u64>, InputError> {
    let Some((_, v)) =
        form_urlencoded::parse(query.unwrap_or("").as_bytes()).find(|(k, _)| k == "bitrate")
    else {
        return Ok(None);
    };
    let (digits, mult) = match v.as_bytes().last() {
        Some(b'k' | b'K') => (&v[..v.len() - 1], 1_000),
        Some(b'M') => (&v[..v.len() - 1], 1_000_000),
        Some(b'G') => (&v[..v.len() - 1], 1_000_000_000),
        _ => (&v[..], 1),
    };
    let bits =
        (!digits.is_empty() && digits.len() <= 12 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse::<u64>().ok())
            .flatten()
            .and_then(|n| n.checked_mul(mult))
            .filter(|&b| b > 0 && b <= 100_000_000_000)
            .ok_or_else(|| {
                bad(format!(
                    "bitrate={} (expected bits per second, e.g. bitrate=4M)",
                    clip(&v)
                ))
            })?;
    Ok(Some((bits / 8).max(1)))
}

/// The body of `POST /api/swarms`: add a swarm by link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddSwarm {
    /// The swarm link (must name at least one source: a peer, an origin or a tracker).
    pub link: SwarmLink,
    /// A name for the content (gives the gateway its content type).
    pub name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    link: String,
    #[serde(default)]
    name: Option<String>,
}

/// Parses and checks the body of `POST /api/swarms`: `{"link": "ppspp://…", "name": "…"}`.
pub fn parse_add_body(body: &[u8]) -> Result<AddSwarm, InputError> {
    if body.len() > MAX_BODY {
        return Err(bad(format!("body larger than {MAX_BODY} bytes")));
    }
    let b: AddBody =
        serde_json::from_slice(body).map_err(|e| bad(format!("malformed JSON body: {e}")))?;
    let link: SwarmLink = b.link.parse().map_err(|e| bad(format!("bad link: {e}")))?;
    if link.peers.is_empty() && link.origins.is_empty() && link.trackers.is_empty() {
        return Err(bad(
            "bad link: it names no peer, origin or tracker (add &peer=HOST:PORT, &origin=URL \
             or &tracker=URL)",
        ));
    }
    if link.chunk_size == 0 || link.chunk_size > crate::cli::MAX_CHUNK_SIZE {
        return Err(bad(format!(
            "bad link: chunk size {} is not in 1..={}",
            link.chunk_size,
            crate::cli::MAX_CHUNK_SIZE
        )));
    }
    let name = b.name.map(|n| parse_name(&n)).transpose()?;
    Ok(AddSwarm { link, name })
}

/// Parses the query of `DELETE /api/swarms/<hex>`: `data=delete` also deletes the content.
pub fn parse_delete_query(query: Option<&str>) -> Result<bool, InputError> {
    let mut delete = false;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match (&*k, &*v) {
            ("data", "delete") => delete = true,
            ("data", "keep") => delete = false,
            ("data", other) => {
                return Err(bad(format!(
                    "data={} (expected data=delete or data=keep)",
                    clip(other)
                )));
            }
            _ => {}
        }
    }
    Ok(delete)
}

/// A live stream's gateway path: `/<live-swarm-id-hex>` or `/<live-swarm-id-hex>/<name>`
/// (the name checked as in [`parse_gateway_path`]).
pub fn parse_live_gateway_path(path: &str) -> Result<LiveGatewayPath, InputError> {
    let (hex, name) = split_gateway_path(path)?;
    let swarm_id = crate::live_link::parse_live_id(hex).map_err(|e| bad(e.0))?;
    let name = name.map(|n| parse_name(&percent_decode(n)?)).transpose()?;
    Ok(LiveGatewayPath { swarm_id, name })
}

/// A parsed live gateway path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveGatewayPath {
    /// The live swarm ID.
    pub swarm_id: LiveSwarmId,
    /// The name (percent-decoded), if the path carries one.
    pub name: Option<String>,
}

/// The live link a gateway request for a live stream describes: the swarm ID from the path
/// and the live link parameters from the query (`peer`, `cs`, `cps`, `form`; `live=1` may be
/// left out, the ID says it is live; form-encoded). Other parameters are ignored.
pub fn gateway_live_link(
    swarm_id: &LiveSwarmId,
    query: Option<&str>,
) -> Result<LiveLink, InputError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| matches!(&**k, "peer" | "cs" | "cps" | "form" | "live"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let implied = (!pairs.iter().any(|(k, _)| k == "live")).then_some(("live", "1"));
    LiveLink::from_parts(
        &swarm_id.to_string(),
        pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(implied),
    )
    .map_err(|e| bad(e.0))
}

/// The body of `POST /api/swarms` for a live stream: `{"link": "ppspp://…?live=1&…", "name":
/// "…"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddLive {
    /// The live link (must name at least one peer).
    pub link: LiveLink,
    /// A name for the stream (gives the gateway its content type).
    pub name: Option<String>,
}

/// Parses a `POST /api/swarms` body whose link is a live link (`live=1`): `Ok(None)` when
/// the link is not a live one (then [`parse_add_body`] applies), an error for a malformed
/// body or a bad live link.
pub fn parse_add_live_body(body: &[u8]) -> Result<Option<AddLive>, InputError> {
    if body.len() > MAX_BODY {
        return Err(bad(format!("body larger than {MAX_BODY} bytes")));
    }
    let b: AddBody =
        serde_json::from_slice(body).map_err(|e| bad(format!("malformed JSON body: {e}")))?;
    if !crate::live_link::is_live_link(&b.link) {
        return Ok(None);
    }
    let link: LiveLink = b
        .link
        .parse()
        .map_err(|e: crate::live_link::LiveLinkError| bad(format!("bad live link: {e}")))?;
    if link.peers.is_empty() {
        return Err(bad("bad live link: it names no peer (add &peer=HOST:PORT)"));
    }
    let name = b.name.map(|n| parse_name(&n)).transpose()?;
    Ok(Some(AddLive { link, name }))
}

/// At most 64 characters of `s`, for error messages quoting client input.
fn clip(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "47a013e660d408619d894b20806b1d5086aab03b";

    #[test]
    fn ranges_follow_rfc_9110() {
        use RangeRequest::*;
        let p = |start, end| Partial { start, end };
        assert_eq!(parse_range("bytes=0-99", 1000), p(0, 99));
        assert_eq!(parse_range("bytes=500-", 1000), p(500, 999));
        assert_eq!(parse_range("bytes=900-5000", 1000), p(900, 999));
        assert_eq!(parse_range("bytes=-100", 1000), p(900, 999));
        assert_eq!(parse_range("bytes=-5000", 1000), p(0, 999));
        assert_eq!(parse_range(" Bytes = 7-7 ", 1000), p(7, 7));
        assert_eq!(parse_range("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=5000-6000", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), Unsatisfiable);
        // Ignored: junk, other units, inverted, several ranges, overflowing numbers.
        for h in [
            "",
            "bytes",
            "bytes=",
            "bytes=abc",
            "items=0-1",
            "bytes=9-2",
            "bytes=0-1,5-6",
            "bytes=--1",
            "bytes=99999999999999999999999-",
            "bytes=+5-",
        ] {
            assert_eq!(parse_range(h, 1000), Full, "{h:?}");
        }
    }

    #[test]
    fn paths_name_a_swarm_and_a_safe_name() {
        let g = parse_gateway_path(&format!("/{HEX}")).unwrap();
        assert_eq!(g.swarm_id.to_string(), HEX);
        assert_eq!(g.name, None);
        let g = parse_gateway_path(&format!("/{HEX}/my%20film.mp4")).unwrap();
        assert_eq!(g.name.as_deref(), Some("my film.mp4"));
        for p in [
            "/".to_string(),
            "/xyz".into(),
            "/abcd".into(),
            HEX.into(),
            format!("/{HEX}/../../etc/passwd"),
            format!("/{HEX}/..%2F..%2Fetc%2Fpasswd"),
            format!("/{HEX}/a%2Fb"),
            format!("/{HEX}/.hidden"),
            format!("/{HEX}/a%00b"),
            format!("/{HEX}/a%5Cb"),
            format!("/{HEX}/%ff%fe"),
            format!("/{HEX}/%zz"),
            format!("/{HEX}/"),
            format!("/{HEX}/{}", "n".repeat(MAX_NAME + 1)),
        ] {
            assert!(parse_gateway_path(&p).is_err(), "{p:?}");
        }
    }

    #[test]
    fn gateway_queries_are_links() {
        let id = parse_swarm_hex(HEX).unwrap();
        let l = gateway_link(
            id,
            Some("peer=10.0.0.1:7&size=12345&cs=4096&hash=sha1&t=9&peer=%5B%3A%3A1%5D%3A8"),
        )
        .unwrap();
        assert_eq!(l.size, Some(12345));
        assert_eq!(l.chunk_size, 4096);
        assert_eq!(l.peers.len(), 2);
        assert_eq!(l.peers[1], "[::1]:8".parse().unwrap());
        assert!(gateway_link(id, Some("peer=nowhere")).is_err());
        assert!(gateway_link(id, Some("size=0")).is_err());
        assert!(gateway_link(id, Some("hash=sha256")).is_err());
        // An encoded '&' cannot add a parameter.
        assert!(gateway_link(id, Some("size=5%26cs%3D1")).is_err());
        assert!(query_has_link(Some("x=1&peer=1.2.3.4:5")));
        assert!(query_has_link(Some("cs=1024&origin=http%3A%2F%2Fh%2Ff")));
        assert!(query_has_link(Some("tracker=http%3A%2F%2Fh%2Fppstp")));
        assert!(!query_has_link(Some("size=5")));
        assert!(!query_has_link(None));
    }

    #[test]
    fn add_bodies_are_checked() {
        let ok = format!(r#"{{"link":"ppspp://{HEX}?cs=1024&peer=127.0.0.1:9","name":"a.mp4"}}"#);
        let a = parse_add_body(ok.as_bytes()).unwrap();
        assert_eq!(a.name.as_deref(), Some("a.mp4"));
        assert_eq!(a.link.peers.len(), 1);
        let cases = [
            ("{".to_string(), "malformed JSON"),
            ("[]".into(), "malformed JSON"),
            (r#"{"link":5}"#.into(), "malformed JSON"),
            (r#"{"link":"x","extra":1}"#.into(), "malformed JSON"),
            (r#"{"link":"ppspp://zz"}"#.into(), "bad link"),
            (format!(r#"{{"link":"{HEX}"}}"#), "names no peer"),
            (
                format!(r#"{{"link":"{HEX}?cs=99999&peer=1.2.3.4:5"}}"#),
                "chunk size",
            ),
            (
                format!(r#"{{"link":"{HEX}?peer=1.2.3.4:5","name":"../x"}}"#),
                "dot",
            ),
            (" ".repeat(MAX_BODY + 1), "larger than"),
        ];
        for (body, want) in cases {
            let e = parse_add_body(body.as_bytes()).unwrap_err().0;
            assert!(e.contains(want), "{body:.60}: {e}");
        }
    }

    #[test]
    fn bitrates() {
        assert_eq!(parse_bitrate(None), Ok(None));
        assert_eq!(parse_bitrate(Some("peer=1.2.3.4:5")), Ok(None));
        assert_eq!(parse_bitrate(Some("bitrate=4M")), Ok(Some(500_000)));
        assert_eq!(parse_bitrate(Some("x=1&bitrate=800k")), Ok(Some(100_000)));
        assert_eq!(parse_bitrate(Some("bitrate=2000000")), Ok(Some(250_000)));
        for q in [
            "bitrate=",
            "bitrate=0",
            "bitrate=M",
            "bitrate=-5",
            "bitrate=1e6",
            "bitrate=999G",
        ] {
            assert!(parse_bitrate(Some(q)).is_err(), "{q}");
        }
    }

    #[test]
    fn delete_queries() {
        assert_eq!(parse_delete_query(None), Ok(false));
        assert_eq!(parse_delete_query(Some("data=delete")), Ok(true));
        assert_eq!(parse_delete_query(Some("data=keep")), Ok(false));
        assert!(parse_delete_query(Some("data=maybe")).is_err());
    }

    fn live_id() -> String {
        ppspp_core::live::KeyPair::from_seed(
            ppspp_core::wire::SignatureAlgorithm::ED25519,
            &[3; 32],
        )
        .unwrap()
        .swarm_id()
        .to_string()
    }

    #[test]
    fn live_gateway_paths_and_queries() {
        let id = live_id();
        let p = parse_live_gateway_path(&format!("/{id}/tv%20one.ts")).unwrap();
        assert_eq!(p.swarm_id.to_string(), id);
        assert_eq!(p.name.as_deref(), Some("tv one.ts"));
        assert!(parse_live_gateway_path(&format!("/{id}/..")).is_err());
        assert!(parse_live_gateway_path(&format!("/{HEX}")).is_err());
        assert!(parse_live_gateway_path(&format!("/01{}", "ab".repeat(32))).is_err());
        let l = gateway_live_link(
            &p.swarm_id,
            Some("peer=%5B%3A%3A1%5D%3A7&cs=2048&cps=64&form=libswift&size=9"),
        )
        .unwrap();
        assert_eq!(l.peers, ["[::1]:7".parse().unwrap()]);
        assert_eq!((l.chunk_size, l.chunks_per_sig), (2048, 64));
        for bad in ["cps=48", "cs=0", "form=x", "peer=x", "live=0"] {
            assert!(gateway_live_link(&p.swarm_id, Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn live_add_bodies() {
        let id = live_id();
        let ok = format!(r#"{{"link": "ppspp://{id}?live=1&peer=127.0.0.1:7", "name": "a.ts"}}"#);
        let a = parse_add_live_body(ok.as_bytes()).unwrap().unwrap();
        assert_eq!(a.name.as_deref(), Some("a.ts"));
        assert_eq!(a.link.peers.len(), 1);
        let fixed = format!(r#"{{"link": "ppspp://{HEX}?peer=127.0.0.1:7"}}"#);
        assert_eq!(parse_add_live_body(fixed.as_bytes()), Ok(None));
        for bad in [
            format!(r#"{{"link": "ppspp://{id}?live=1"}}"#),
            format!(r#"{{"link": "ppspp://{id}?live=1&cps=7&peer=127.0.0.1:7"}}"#),
            format!(r#"{{"link": "ppspp://{id}?live=1&peer=127.0.0.1:7", "name": ".x"}}"#),
            "{".to_owned(),
        ] {
            assert!(parse_add_live_body(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
