//! Arbitrary bytes as a PPSTP (RFC 7846) request body: decoding never panics; whatever
//! decodes re-encodes (in the formal form) to a request that decodes to the same thing; and
//! a tracker answers it without panicking, within its limits.
#![cfg_attr(fuzzing, no_main)]

use std::net::IpAddr;
use std::time::Duration;

use ppspp_tracker::{Limits, Request, Tracker};

fn check(input: &[u8]) {
    if let Ok(req) = Request::decode(input) {
        let again = Request::decode(&req.encode()).expect("a re-encoded request decodes");
        assert_eq!(again, req);
    }
    let mut t = Tracker::new(Limits {
        max_peers: 4,
        max_peers_per_swarm: 3,
        max_swarms: 2,
        ..Limits::default()
    });
    let src: IpAddr = [10, 0, 0, 1].into();
    // Twice: the second request meets the state the first one left.
    for s in 0..2 {
        let resp = t.handle(Duration::from_secs(s), src, input);
        assert!(t.peer_count() <= 4 && t.swarm_count() <= 2);
        let _ = ppspp_tracker::Response::decode(&resp.encode()).expect("responses decode");
    }
}

ppspp_fuzz::fuzz_entry!(check);
