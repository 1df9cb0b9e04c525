//! Arbitrary bytes as a membership certificate (RFC 7574 §3.10, docs/membership.md): parsing
//! and checking never panic; whatever verifies also parses to the same claims; and a certificate
//! the tracker issued, changed anywhere by the input, either fails its checks or states exactly
//! what the original stated (no byte outside the signed part changes a claim).
//!
//! The first input byte picks the mode: even, the rest is the certificate; odd, the rest is
//! XORed into an issued certificate from the offset the second byte gives, and may extend it.
#![cfg_attr(fuzzing, no_main)]

use std::net::SocketAddr;
use std::sync::OnceLock;

use ppspp_core::membership::{self, MemberCert, TrackerKey};
use ppspp_tracker::ca::Authority;

const NOW: u64 = 1_800_000_000;
const SWARM: [u8; 20] = [0x5a; 20];

/// The tracker key and one certificate it issued.
fn issued() -> &'static (TrackerKey, Vec<u8>, MemberCert) {
    static ISSUED: OnceLock<(TrackerKey, Vec<u8>, MemberCert)> = OnceLock::new();
    ISSUED.get_or_init(|| {
        let mut a = Authority::from_seed([3; 32]).expect("a key from a seed");
        let addr: SocketAddr = "198.51.100.4:6778".parse().expect("an address");
        let der = a.issue(&SWARM, addr, NOW, 3600).expect("issued");
        let key = TrackerKey::from_bytes(a.public_key());
        let claims = membership::verify(&der, &key, NOW).expect("the issued certificate verifies");
        (key, der, claims)
    })
}

fn check(input: &[u8]) {
    let (key, base, claims) = issued();
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let cert = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let Some((&at, delta)) = rest.split_first() else {
            return;
        };
        let mut c = base.clone();
        let start = usize::from(at) * c.len() / 256;
        for (i, d) in delta.iter().enumerate() {
            match c.get_mut(start + i) {
                Some(b) => *b ^= d,
                None => c.push(*d),
            }
        }
        c
    };
    let parsed = membership::parse_unverified(&cert);
    match membership::verify(&cert, key, NOW) {
        Ok(c) => {
            assert_eq!(parsed.as_ref(), Ok(&c), "verified but parses differently");
            // Only the tracker signs, and every signed byte is the original's.
            assert_eq!(&c, claims, "a changed certificate verified with other claims");
            assert!(membership::check(&cert, key, NOW, &c.swarm, Some(c.addr)).is_ok());
        }
        Err(_) => {
            // A certificate that does not verify is never usable, whatever else it claims.
            assert!(membership::check(&cert, key, NOW, &SWARM, None).is_err());
        }
    }
}

ppspp_fuzz::fuzz_entry!(check);
