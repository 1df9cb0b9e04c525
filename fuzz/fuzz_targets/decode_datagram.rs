//! Arbitrary bytes under arbitrary negotiated parameters: decoding never panics, and whatever
//! decodes re-encodes to bytes that decode to the same messages.
#![cfg_attr(fuzzing, no_main)]

use bytes::Bytes;
use ppspp_core::hash::HashAlgorithm;
use ppspp_core::wire::{ChunkAddressing, WireParams, decode_datagram, encode_datagram};

/// The first two bytes choose the parameters (addressing, hash, signature length, chunk size);
/// the rest is the datagram.
fn check(input: &[u8]) {
    let [a, h, rest @ ..] = input else { return };
    let addressing = ChunkAddressing::ALL[usize::from(*a) % ChunkAddressing::ALL.len()];
    let hash = HashAlgorithm::ALL[usize::from(*h & 0x7) % HashAlgorithm::ALL.len()];
    // Signature lengths 0 (no live algorithm) to 127; a fixed chunk size (several DATA
    // messages per datagram) or none.
    let chunk_size = [0, 1, 4, 16, 64, 1024][usize::from(*a >> 4) % 6];
    let params = WireParams::new(addressing, hash)
        .with_signature_len(usize::from(*h >> 1))
        .with_chunk_size(chunk_size);
    let Ok((channel, iter)) = decode_datagram(Bytes::copy_from_slice(rest), &params) else {
        return;
    };
    let mut decoded = Vec::new();
    for m in iter {
        match m {
            Ok(m) => decoded.push(m),
            Err(e) => {
                assert!(
                    e.offset >= 4 && e.offset <= rest.len(),
                    "offset {} of {}",
                    e.offset,
                    rest.len()
                );
                break;
            }
        }
    }
    let mut buf = vec![0u8; rest.len() + 16];
    let n = encode_datagram(channel, &decoded, &params, &mut buf).expect("re-encode");
    assert!(n <= rest.len(), "re-encoding grew: {n} > {}", rest.len());
    let (again_channel, again) =
        decode_datagram(Bytes::copy_from_slice(&buf[..n]), &params).expect("decode again");
    assert_eq!(again_channel, channel);
    let again: Vec<_> = again
        .map(|m| m.expect("re-encoded message decodes"))
        .collect();
    assert_eq!(again, decoded);
}

ppspp_fuzz::fuzz_entry!(check);
