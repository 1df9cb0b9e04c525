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
