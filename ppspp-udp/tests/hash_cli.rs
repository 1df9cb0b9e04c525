//! `ppspp hash` end to end: the built binary on the m74.jpg test vector, and its errors.

use std::path::PathBuf;
use std::process::{Command, Output};

/// m74.jpg: the copy committed in ppspp-core, else the shared spec folder beside the
/// repository (`../shared` relative to the repository root on CI).
fn m74() -> PathBuf {
    let candidates = [
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../ppspp-core/tests/data/m74.jpg"
        ),
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/spec/vectors/m74.jpg"
        ),
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("m74.jpg test vector not found")
}

fn ppspp(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ppspp"))
        .arg("hash")
        .args(args)
        .output()
        .expect("run ppspp")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fresh path in the temporary directory.
fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ppspp-hash-cli-{}-{name}", std::process::id()))
}

#[test]
fn m74_sha1_root_is_the_libswift_swarm_id() {
    let file = m74();
    let out = ppspp(&[file.as_os_str(), "--hash".as_ref(), "sha1".as_ref()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "c89800bfc82ed01ed6e3bfd5408c51274491f7d4\n");
}

#[test]
fn m74_default_is_sha1_with_1_kib_chunks_as_seed() {
    let file = m74();
    // The default is `ppspp seed`'s (issue 18: `hash` defaulted to SHA-256, `seed` to SHA-1,
    // so the same file had two IDs).
    let out = ppspp(&[file.as_os_str()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "c89800bfc82ed01ed6e3bfd5408c51274491f7d4\n");
    let expect = "12d0e382fc4a5a8bfca5c693355872fa69d30304ea01fb1c973dc8bad95ce177\n";
    let explicit = ppspp(&[
        file.as_os_str(),
        "--chunk-size".as_ref(),
        "1024".as_ref(),
        "--hash".as_ref(),
        "sha256".as_ref(),
    ]);
    assert_eq!(stdout(&explicit), expect);
}

#[test]
fn chunk_size_changes_the_root_and_a_single_chunk_is_the_file_hash() {
    let file = m74();
    // One chunk covering the whole file: the root is SHA-1 of the file.
    let out = ppspp(&[
        file.as_os_str(),
        "--chunk-size".as_ref(),
        "65536".as_ref(),
        "--hash".as_ref(),
        "sha1".as_ref(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "3a81e0b549dbc370b3d0ee366d6c8e8ee80cc5e6\n");
    for alg in ["sha224", "sha384", "sha512"] {
        let out = ppspp(&[file.as_os_str(), "--hash".as_ref(), alg.as_ref()]);
        assert!(out.status.success(), "{alg}: {}", stderr(&out));
        let line = stdout(&out);
        let hex = line.trim_end();
        assert!(
            hex.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
    }
}

#[test]
fn empty_file_is_an_error() {
    let path = temp_path("empty");
    std::fs::write(&path, b"").unwrap();
    let out = ppspp(&[path.as_os_str()]);
    std::fs::remove_file(&path).ok();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("empty"), "{err}");
}

#[test]
fn missing_file_is_an_error() {
    let path = temp_path("does-not-exist");
    let out = ppspp(&[path.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("does-not-exist"), "{err}");
}

#[test]
fn zero_chunk_size_is_a_usage_error() {
    let file = m74();
    let out = ppspp(&[file.as_os_str(), "--chunk-size".as_ref(), "0".as_ref()]);
    // Exit 2, as in every subcommand (issue 18: it was 1 here, 2 in `get`).
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("chunk-size"), "{err}");
}

#[test]
fn unknown_hash_function_is_refused() {
    let file = m74();
    let out = ppspp(&[file.as_os_str(), "--hash".as_ref(), "md5".as_ref()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("md5"));
}
