//! What `ppspp serve`'s HTTP side parses from the network: `Range` headers, gateway paths,
//! gateway query links, control API bodies (static and live), delete queries and bitrates.
//! None panics, and what parses keeps its promises (a range inside the content, a name
//! without path tricks, a link that round-trips).
#![cfg_attr(fuzzing, no_main)]

use ppspp_udp::SwarmLink;
use ppspp_udp::http_input::{
    MAX_NAME, RangeRequest, gateway_link, gateway_live_link, parse_add_body,
    parse_add_live_body, parse_bitrate, parse_delete_query, parse_gateway_path,
    parse_live_gateway_path, parse_name, parse_range, parse_swarm_hex, query_has_link,
};
use ppspp_udp::live_link::LiveLink;

/// An Ed25519 live swarm ID (a valid key).
const LIVE_ID: &str = "0fc88ad3a4b546efb04abff95141854b5b42f3aeb66551aebfe6c97d447f077d23";

fn safe_name(n: &str) {
    assert!(!n.is_empty() && n.len() <= MAX_NAME);
    assert!(!n.starts_with('.') && !n.contains(['/', '\\']));
    assert!(!n.chars().any(char::is_control));
}

/// The first byte chooses the parser; for ranges the next eight give the content length.
fn check(input: &[u8]) {
    let [which, rest @ ..] = input else { return };
    match which % 5 {
        0 => {
            let (len, header) = if rest.len() >= 8 {
                let (l, h) = rest.split_at(8);
                // Small lengths too, where off-by-ones live.
                let l = u64::from_le_bytes(l.try_into().expect("8 bytes"));
                (if l & 1 == 0 { l % 4096 } else { l }, h)
            } else {
                (1000, rest)
            };
            let Ok(h) = std::str::from_utf8(header) else { return };
            match parse_range(h, len) {
                RangeRequest::Partial { start, end } => {
                    assert!(start <= end && end < len, "{h:?} of {len}: {start}-{end}");
                }
                RangeRequest::Full | RangeRequest::Unsatisfiable => {}
            }
        }
        1 => {
            let Ok(p) = std::str::from_utf8(rest) else { return };
            if let Ok(g) = parse_gateway_path(p) {
                assert!(parse_swarm_hex(&g.swarm_id.to_string()).is_ok());
                if let Some(n) = g.name {
                    safe_name(&n);
                }
            }
            if let Ok(g) = parse_live_gateway_path(p) {
                if let Some(n) = g.name {
                    safe_name(&n);
                }
            }
        }
        2 => {
            let Ok(q) = std::str::from_utf8(rest) else { return };
            let id = parse_swarm_hex("47a013e660d408619d894b20806b1d5086aab03b").expect("an ID");
            let _ = query_has_link(Some(q));
            if let Ok(link) = gateway_link(id, Some(q)) {
                assert_eq!(link.swarm_id, id);
                let again: SwarmLink = link.to_string().parse().expect("round trip");
                assert_eq!(again.peers, link.peers);
                assert_eq!(again.size, link.size);
                assert_eq!(again.chunk_size, link.chunk_size);
            }
            let live = parse_live_gateway_path(&format!("/{LIVE_ID}")).expect("a live ID");
            if let Ok(link) = gateway_live_link(&live.swarm_id, Some(q)) {
                let again: LiveLink = link.to_string().parse().expect("round trip");
                assert_eq!(again, link);
            }
        }
        3 => {
            if let Ok(Some(add)) = parse_add_live_body(rest) {
                assert!(!add.link.peers.is_empty());
                if let Some(n) = add.name {
                    safe_name(&n);
                }
            }
            if let Ok(add) = parse_add_body(rest) {
                assert!(!add.link.peers.is_empty());
                if let Some(n) = add.name {
                    safe_name(&n);
                    assert_eq!(parse_name(&n).as_deref(), Ok(n.as_str()));
                }
            }
        }
        _ => {
            let Ok(q) = std::str::from_utf8(rest) else { return };
            let _ = parse_delete_query(Some(q));
            if let Ok(Some(b)) = parse_bitrate(Some(q)) {
                assert!(b > 0 && b <= 100_000_000_000 / 8);
            }
        }
    }
}

ppspp_fuzz::fuzz_entry!(check);
