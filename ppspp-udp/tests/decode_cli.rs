//! `ppspp decode` as a user runs it.

use std::process::Command;

fn decode(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ppspp"))
        .arg("decode")
        .args(args)
        .output()
        .expect("run ppspp");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("utf-8"),
    )
}

#[test]
fn decodes_the_rfc_8_16_handshake() {
    let (code, out) = decode(&[
        "0000000000000000010001010102001447a013e660d408619d894b20806b1d5086aab03b0301040206020900000400ff",
    ]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "channel 00000000");
    assert!(
        lines[1].starts_with("HANDSHAKE src=00000001 version=1 min_version=1 swarm_id=47a013e6")
    );
    assert!(lines[1].contains("hash=sha256 addressing=chunk32 chunk_size=1024"));
}

#[test]
fn one_line_per_message() {
    let (code, out) =
        decode(&["00000008 02 00000000 00000000 0000000000000064 03 00000000 00000000"]);
    assert_eq!(code, 0);
    assert_eq!(out, "channel 00000008\nACK 0..0 delay=100us\nHAVE 0..0\n");
    let (code, out) = decode(&["00000008"]);
    assert_eq!((code, out.as_str()), (0, "channel 00000008\nKEEPALIVE\n"));
    let (code, out) = decode(&["--addressing", "bin32", "00000001 03 00000001 0a 0b 06"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "channel 00000001\nHAVE bin 1\nCHOKE\nUNCHOKE\nPEX_REQ\n"
    );
}

#[test]
fn integrity_with_other_hash_lengths() {
    let hash = "ab".repeat(32);
    let (code, out) = decode(&[
        "--hash-len",
        "32",
        &format!("00000001 04 00000000 00000003 {hash}"),
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!("channel 00000001\nINTEGRITY 0..3 hash={hash}\n")
    );
}

#[test]
fn malformed_prints_what_decoded_then_the_error() {
    let (code, out) = decode(&["00000001 0a 0e 0b"]);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "channel 00000001\nCHOKE\nerror: at byte 5: unknown message type 0x0e\n"
    );
    let (code, out) = decode(&["000001"]);
    assert_eq!(code, 1);
    assert!(out.starts_with("error: at byte 0: datagram of 3 bytes"));
    let (code, _) = decode(&["xyz1"]);
    assert_eq!(code, 2);
}

// ---- `ppspp decode --pcap` ----

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// The RFC 7574 §8.16 "Hello world" exchange (spec/vectors, VECTORS-IDEAS §1): leecher to
/// seeder and back, 32-bit chunk ranges and SHA-256 in the handshakes.
const RFC_8_16: [(bool, &str); 6] = [
    (
        true,
        "0000000000000000010001010102001447a013e660d408619d894b20806b1d5086aab03b0301040206020900000400ff",
    ),
    (
        false,
        "00000001000000000800010301040206020900000400ff030000000000000000",
    ),
    (true, "0000000808000000000000000006"),
    (
        false,
        "000000010100000000000000000004e94180b7db4448656c6c6f20776f726c64210a",
    ),
    (
        true,
        "000000080200000000000000000000000000000064030000000000000000",
    ),
    (true, "000000080000000000ff"),
];

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn udp_header(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&src.port().to_be_bytes());
    u.extend_from_slice(&dst.port().to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// An IPv4 or IPv6 packet carrying a UDP datagram.
fn ip_udp(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let udp = udp_header(src, dst, payload);
    let mut p = Vec::new();
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&[0x45, 0]);
            p.extend_from_slice(&((20 + udp.len()) as u16).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&[0x60, 0, 0, 0]);
            p.extend_from_slice(&(udp.len() as u16).to_be_bytes());
            p.extend_from_slice(&[17, 64]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        _ => unreachable!("mixed address families"),
    }
    p.extend_from_slice(&udp);
    p
}

/// An Ethernet frame around an IP packet (EtherType chosen from the IP version).
fn ethernet(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    f.extend_from_slice(if ip[0] >> 4 == 4 {
        &[0x08, 0x00]
    } else {
        &[0x86, 0xDD]
    });
    f.extend_from_slice(ip);
    f
}

/// A classic little-endian microsecond pcap file of the given link type.
fn pcap(link_type: u32, frames: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
    let mut f = vec![0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    f.extend_from_slice(&65535u32.to_le_bytes());
    f.extend_from_slice(&link_type.to_le_bytes());
    for (sec, usec, data) in frames {
        f.extend_from_slice(&sec.to_le_bytes());
        f.extend_from_slice(&usec.to_le_bytes());
        f.extend_from_slice(&(data.len() as u32).to_le_bytes());
        f.extend_from_slice(&(data.len() as u32).to_le_bytes());
        f.extend_from_slice(data);
    }
    f
}

fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
    let p = std::env::temp_dir().join(format!("ppspp-decode-{}-{name}", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    p
}

fn decode_full(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ppspp"))
        .arg("decode")
        .args(args)
        .output()
        .expect("run ppspp");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("utf-8"),
        String::from_utf8(out.stderr).expect("utf-8"),
    )
}

/// What `ppspp decode HEX` prints for `datagram` with the given extra options.
fn decode_hex(datagram: &str, extra: &[&str]) -> String {
    let mut args = extra.to_vec();
    args.push(datagram);
    decode_full(&args).1
}

#[test]
fn pcap_of_the_rfc_8_16_exchange_prints_what_decode_hex_prints() {
    let leecher: SocketAddr = "192.0.2.1:6778".parse().unwrap();
    let seeder: SocketAddr = "192.0.2.2:6778".parse().unwrap();
    let frames: Vec<_> = RFC_8_16
        .iter()
        .enumerate()
        .map(|(i, (up, h))| {
            let (s, d) = if *up {
                (leecher, seeder)
            } else {
                (seeder, leecher)
            };
            (
                1_382_367_448,
                521_540 + i as u32,
                ethernet(&ip_udp(s, d, &hex(h))),
            )
        })
        .collect();
    let file = write_temp("rfc.pcap", &pcap(1, &frames));
    let (code, out, err) = decode_full(&["--pcap", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let mut expected = String::new();
    for (i, (up, h)) in RFC_8_16.iter().enumerate() {
        let (s, d) = if *up {
            (leecher, seeder)
        } else {
            (seeder, leecher)
        };
        if i > 0 {
            expected.push('\n');
        }
        expected += &format!(
            "packet {} 1382367448.{:06} {s} -> {d} ({} bytes)\n",
            i + 1,
            521_540 + i,
            h.len() / 2
        );
        expected += &decode_hex(h, &[]);
    }
    assert_eq!(out, expected);
    assert!(out.contains("DATA 0..0"), "{out}");
    assert_eq!(
        err.trim(),
        "ppspp decode: 6 frames, 6 datagrams decoded, 0 malformed"
    );
    let _ = std::fs::remove_file(file);
}

/// Two interleaved flows with different chunk addressing methods and hash lengths, a
/// malformed datagram, traffic on another port and a non-IP frame: the handshake of each flow
/// governs its later datagrams, and decoding goes on past the error.
#[test]
fn pcap_tracks_each_flows_handshake() {
    let a: SocketAddr = "10.0.0.1:7000".parse().unwrap();
    let b: SocketAddr = "10.0.0.2:7000".parse().unwrap();
    let c: SocketAddr = "[fd00::1]:40000".parse().unwrap();
    let d: SocketAddr = "[fd00::2]:7000".parse().unwrap();
    let dns: SocketAddr = "10.0.0.9:53".parse().unwrap();
    let resolver_client: SocketAddr = "10.0.0.1:40001".parse().unwrap();
    let root = "ab".repeat(20);
    // Flow a<->b: 32-bit bins (CAM 0) and SHA-1 (MHF 0): 4-byte specs, 20-byte hashes.
    let ab_hs = format!("00000000 00 0000000a 0001 0100 02 0014 {root} 0301 0400 0600 ff");
    let ba_hs = "0000000a 00 0000000b 0001 0301 0400 0600 ff 03 00000003";
    let ab_have = "0000000b 03 00000001";
    let ba_integrity = format!("0000000a 04 00000002 {}", "cd".repeat(20));
    // Flow c<->d: 64-bit chunk ranges (CAM 4) and SHA-256 (MHF 2): 16-byte specs.
    let cd_hs = format!(
        "00000000 00 00000021 0001 0100 02 0020 {} 0301 0402 0604 ff",
        "ef".repeat(32)
    );
    let dc_hs = "00000021 00 00000022 0001 0301 0402 0604 ff";
    let cd_req = "00000022 08 0000000000000000 0000000000000003";
    let dc_integrity = format!(
        "00000021 04 0000000000000000 0000000000000003 {}",
        "12".repeat(32)
    );
    let malformed = "0000000b 0a 0e";
    let dns_query = "1234010000010000000000000377777700";
    let clean = |s: &str| s.replace(' ', "");
    let mut arp = vec![0xFF; 6];
    arp.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    let frames = vec![
        (1, 0, ethernet(&ip_udp(a, b, &hex(&clean(&ab_hs))))),
        (1, 1, ethernet(&ip_udp(c, d, &hex(&clean(&cd_hs))))),
        (1, 2, arp),
        (1, 3, ethernet(&ip_udp(b, a, &hex(&clean(ba_hs))))),
        (1, 4, ethernet(&ip_udp(d, c, &hex(&clean(dc_hs))))),
        (
            1,
            5,
            ethernet(&ip_udp(resolver_client, dns, &hex(dns_query))),
        ),
        (1, 6, ethernet(&ip_udp(a, b, &hex(&clean(ab_have))))),
        (1, 7, ethernet(&ip_udp(c, d, &hex(&clean(cd_req))))),
        (1, 8, ethernet(&ip_udp(a, b, &hex(&clean(malformed))))),
        (1, 9, ethernet(&ip_udp(b, a, &hex(&clean(&ba_integrity))))),
        (1, 10, ethernet(&ip_udp(d, c, &hex(&clean(&dc_integrity))))),
    ];
    let file = write_temp("flows.pcap", &pcap(1, &frames));
    let (code, out, err) = decode_full(&["--pcap", file.to_str().unwrap(), "--port", "7000"]);
    assert_eq!(code, 1, "one datagram is malformed: {out}{err}");
    let packets: Vec<&str> = out.split("\n\n").collect();
    let numbers: Vec<&str> = packets
        .iter()
        .map(|p| p.split(' ').nth(1).unwrap())
        .collect();
    // Frame 3 (ARP) and frame 6 (DNS, another port) are skipped; numbering is by frame.
    assert_eq!(
        numbers,
        ["1", "2", "4", "5", "7", "8", "9", "10", "11"],
        "{out}"
    );
    assert!(packets[0].contains("addressing=bin32"), "{}", packets[0]);
    assert!(packets[1].starts_with("packet 2 1.000001 [fd00::1]:40000 -> [fd00::2]:7000 ("));
    assert!(packets[2].ends_with("HAVE bin 3"), "{}", packets[2]);
    assert_eq!(
        packets[4],
        "packet 7 1.000006 10.0.0.1:7000 -> 10.0.0.2:7000 (9 bytes)\nchannel 0000000b\nHAVE bin 1"
    );
    assert!(
        packets[5].ends_with("\nchannel 00000022\nREQUEST 0..3"),
        "{}",
        packets[5]
    );
    assert!(packets[6].ends_with("error: at byte 5: unknown message type 0x0e"));
    assert!(
        packets[7].ends_with(&format!("INTEGRITY bin 2 hash={}", "cd".repeat(20))),
        "{}",
        packets[7]
    );
    assert!(
        packets[8].ends_with(&format!("INTEGRITY 0..3 hash={}\n", "12".repeat(32))),
        "{}",
        packets[8]
    );
    // Without the handshakes, the same datagram reads differently under the defaults.
    assert_ne!(
        decode_hex(&clean(ab_have), &[]),
        "channel 0000000b\nHAVE bin 1\n"
    );
    assert_eq!(
        err.trim(),
        "ppspp decode: 11 frames, 8 datagrams decoded, 1 malformed"
    );
    // Without --port the DNS datagram is shown too, as a (failed) PPSPP decode.
    let (_, all, _) = decode_full(&["--pcap", file.to_str().unwrap()]);
    assert!(
        all.contains("packet 6 1.000005 10.0.0.1:40001 -> 10.0.0.9:53"),
        "{all}"
    );
    let _ = std::fs::remove_file(file);
}

/// Linux cooked captures (v1 and v2, what `tcpdump -i any` writes) and raw IP.
#[test]
fn pcap_link_types_sll_sll2_and_raw() {
    let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let b: SocketAddr = "127.0.0.1:6000".parse().unwrap();
    let ip = ip_udp(a, b, &hex("00000008 0a".replace(' ', "").as_str()));
    let mut sll = vec![0, 0, 0, 772, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]
        .into_iter()
        .map(|x: u16| x as u8)
        .collect::<Vec<u8>>();
    sll.extend_from_slice(&[0x08, 0x00]);
    sll.extend_from_slice(&ip);
    let mut sll2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 1, 0x03, 0x04, 0, 6];
    sll2.extend_from_slice(&[0; 8]);
    sll2.extend_from_slice(&ip);
    for (lt, frame) in [(113, sll), (276, sll2), (101, ip.clone()), (228, ip)] {
        let file = write_temp(&format!("lt{lt}.pcap"), &pcap(lt, &[(2, 3, frame)]));
        let (code, out, _) = decode_full(&["--pcap", file.to_str().unwrap()]);
        assert_eq!(
            (code, out.as_str()),
            (
                0,
                "packet 1 2.000003 127.0.0.1:5000 -> 127.0.0.1:6000 (5 bytes)\nchannel 00000008\nCHOKE\n"
            ),
            "link type {lt}"
        );
        let _ = std::fs::remove_file(file);
    }
}

#[test]
fn pcap_that_is_not_a_capture_fails_with_one_line() {
    let file = write_temp("not.pcap", b"this is a text file, not a capture\n");
    let (code, out, err) = decode_full(&["--pcap", file.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not a pcap or pcapng file"), "{err}");
    let _ = std::fs::remove_file(&file);
    let (code, _, err) = decode_full(&["--pcap", file.to_str().unwrap()]);
    assert_eq!((code, err.lines().count()), (2, 1), "{err}");
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn pcap_truncated_mid_record_prints_what_it_read() {
    let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let b: SocketAddr = "127.0.0.1:6000".parse().unwrap();
    let f = ethernet(&ip_udp(a, b, &hex("00000008")));
    let mut file = pcap(1, &[(0, 0, f.clone()), (0, 1, f)]);
    file.truncate(file.len() - 3);
    let path = write_temp("cut.pcap", &file);
    let (code, out, err) = decode_full(&["--pcap", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "packet 1 0.000000 127.0.0.1:5000 -> 127.0.0.1:6000 (4 bytes)\nchannel 00000008\nKEEPALIVE\n"
    );
    assert!(err.contains("capture truncated"), "{err}");
    let _ = std::fs::remove_file(path);
}

/// A capture on `lo` records a GSO send as one UDP datagram holding several equal-sized
/// PPSPP datagrams; the chunk size from the handshake reveals the boundaries.
#[test]
fn pcap_splits_gso_buffers_into_datagrams() {
    let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let b: SocketAddr = "127.0.0.1:6000".parse().unwrap();
    // 32-bit chunk ranges, SHA-1, 4-byte chunks.
    let hs = format!(
        "00000000 00 00000001 0001 0100 02 0014 {} 0300 0400 0602 0900000004 ff",
        "ab".repeat(20)
    );
    let reply = "00000001 00 00000002 0001 0300 0400 0602 0900000004 ff";
    let data = |chunk: u32, bytes: &str| {
        format!("00000001 01 {chunk:08x} {chunk:08x} 0000000000000001 {bytes}")
    };
    let gso = format!(
        "{}{}{}",
        data(0, "61616161"),
        data(1, "62626262"),
        data(2, "6363")
    );
    let clean = |s: &str| hex(&s.replace(' ', ""));
    let frames = vec![
        (0, 0, ethernet(&ip_udp(a, b, &clean(&hs)))),
        (0, 1, ethernet(&ip_udp(b, a, &clean(reply)))),
        (0, 2, ethernet(&ip_udp(b, a, &clean(&gso)))),
    ];
    let file = write_temp("gso.pcap", &pcap(1, &frames));
    let (code, out, err) = decode_full(&["--pcap", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let last = out.split("\n\n").nth(2).unwrap();
    assert_eq!(
        last,
        "packet 3 0.000002 127.0.0.1:6000 -> 127.0.0.1:5000 (73 bytes)\n\
         segment 1/3 (25 bytes)\nchannel 00000001\nDATA 0..0 timestamp=1 len=4\n\
         segment 2/3 (25 bytes)\nchannel 00000001\nDATA 1..1 timestamp=1 len=4\n\
         segment 3/3 (23 bytes)\nchannel 00000001\nDATA 2..2 timestamp=1 len=2\n"
    );
    assert_eq!(
        err.trim(),
        "ppspp decode: 3 frames, 5 datagrams decoded, 0 malformed"
    );
    let _ = std::fs::remove_file(file);
}

#[test]
fn chunk_size_tells_several_data_messages_apart() {
    // Two DATA messages of 4-byte chunks (RFC 7574 §8.6), then a short last one.
    let hex = "00000001 \
               01 00000000 00000000 0000000000000001 61626364 \
               01 00000001 00000001 0000000000000002 65666768 \
               01 00000002 00000002 0000000000000003 6970";
    let (code, out) = decode(&["--chunk-size", "4", hex]);
    assert_eq!(code, 0);
    assert_eq!(out.matches("\nDATA ").count(), 3, "{out}");
    assert!(out.contains("DATA 1..1 timestamp=2 len=4"), "{out}");
    assert!(out.contains("DATA 2..2 timestamp=3 len=2"), "{out}");
    // Without it, the first DATA runs to the end of the datagram (as libswift reads it).
    let (code, out) = decode(&[hex]);
    assert_eq!(code, 0);
    assert_eq!(out.matches("\nDATA ").count(), 1, "{out}");
}
