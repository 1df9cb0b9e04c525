//! `ppspp get` when the output cannot be written: a full disk (a small tmpfs when root, a
//! file size limit otherwise) and a directory it may not write to. Each ends with one clear
//! line on stderr and a non-zero status, nothing at OUT, and a resume state that claims only
//! chunks that are on disk and correct.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

mod common;

use ppspp_udp::store::{DownloadState, PART_SUFFIX, STATE_SUFFIX, with_suffix};

const BIN: &str = env!("CARGO_BIN_EXE_ppspp");
const CHUNK: usize = 1024;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ppspp-full-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Deterministic incompressible bytes.
fn content(len: usize) -> Vec<u8> {
    common::content(len, 0x9E37_79B9_7F4A_7C15)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A seeder, killed when dropped.
struct Seeder {
    child: Child,
    link: String,
}

impl Seeder {
    /// Serves `file` at a limited rate, so a download takes a while and saves its state
    /// several times before it fails.
    fn start(file: &Path) -> Self {
        let mut child = Command::new(BIN)
            .arg("seed")
            .arg(file)
            .args(["--listen", "127.0.0.1:0", "--no-cache", "--quiet"])
            .args(["--max-rate", "2000000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let link = lines
            .find_map(|l| l.unwrap().strip_prefix("link ").map(str::to_owned))
            .expect("the seeder printed its link");
        Self { child, link }
    }
}

impl Drop for Seeder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Unmounts a tmpfs when dropped.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn get(
    link: &str,
    out: &Path,
    setup: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static,
) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("get").arg(link).arg("-o").arg(out).args([
        "--timeout",
        "20",
        "--quiet",
        "--state-interval",
        "20ms",
    ]);
    // SAFETY: `setup` only makes async-signal-safe system calls (setrlimit, setgid, setuid).
    unsafe { cmd.pre_exec(setup) };
    cmd.output().unwrap()
}

/// Checks that a failed download left one clear line, nothing at OUT, and a state sidecar
/// (if any) that claims only chunks on disk with the right bytes. Returns the chunks claimed.
fn check_failure(o: &Output, out: &Path, data: &[u8], expect: &str) -> u64 {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("ppspp get: "), "{stderr}");
    assert!(stderr.contains(expect), "expected {expect:?} in {stderr}");
    assert!(!out.exists(), "nothing unverified at {}", out.display());
    let state_path = with_suffix(out, STATE_SUFFIX);
    let Some(state) = DownloadState::load(&state_path).expect("a readable state, if any") else {
        return 0;
    };
    let part = std::fs::read(with_suffix(out, PART_SUFFIX)).expect("the part file");
    let mut claimed = 0;
    for r in &state.verified {
        for c in r.clone() {
            let at = c as usize * CHUNK;
            let end = (at + CHUNK).min(data.len());
            assert!(
                part.get(at..end) == Some(&data[at..end]),
                "the state claims chunk {c}, which is not on disk as sent"
            );
            claimed += 1;
        }
    }
    claimed
}

#[test]
fn get_stops_with_one_line_when_the_disk_fills() {
    let d = tmpdir("disk");
    let data = content(2 << 20);
    let src = d.join("content");
    std::fs::write(&src, &data).unwrap();
    let seeder = Seeder::start(&src);
    let mnt = d.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = is_root()
        && Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
            .arg(&mnt)
            .status()
            .is_ok_and(|s| s.success());
    if mounted {
        // A 512 KiB file system and 2 MiB of content: the part file cannot hold it.
        let _mount = Mount(mnt.clone());
        let out = mnt.join("out");
        let o = get(&seeder.link, &out, || Ok(()));
        let claimed = check_failure(&o, &out, &data, "disk full while writing");
        // It failed part way, after saving progress that a resume keeps.
        assert!(claimed > 0, "no progress was saved before the disk filled");
        assert!(claimed * CHUNK as u64 <= 512 << 10, "{claimed} chunks");
        let part_len = std::fs::metadata(with_suffix(&out, PART_SUFFIX))
            .unwrap()
            .len();
        assert_eq!(
            part_len,
            data.len() as u64,
            "preallocated (sparse) to the full size"
        );
    } else {
        eprintln!("not root or no tmpfs: testing with a file size limit instead");
    }
    // A file size limit (RLIMIT_FSIZE) of 256 KiB: growing the part file to 2 MiB fails
    // (EFBIG, with SIGXFSZ ignored) before any data is fetched.
    let out = d.join("limited");
    let o = get(&seeder.link, &out, || {
        let lim = libc::rlimit {
            rlim_cur: 256 << 10,
            rlim_max: 256 << 10,
        };
        // SAFETY: a valid resource and a pointer to a live rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    });
    assert_eq!(check_failure(&o, &out, &data, "file too large"), 0);
    drop(seeder);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn get_stops_with_one_line_on_permission_denied() {
    let d = tmpdir("perm");
    let data = content(64 << 10);
    let src = d.join("content");
    std::fs::write(&src, &data).unwrap();
    let seeder = Seeder::start(&src);
    let ro = d.join("read-only");
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
    // Root ignores permission bits: run the download as nobody.
    let root = is_root();
    if root {
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let drop_privileges = move || {
        if root {
            // SAFETY: plain system calls on this process.
            unsafe {
                if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
        }
        Ok(())
    };
    let out = ro.join("out");
    let o = get(&seeder.link, &out, drop_privileges);
    assert_eq!(
        check_failure(&o, &out, &data, "permission denied while creating"),
        0
    );
    assert!(!with_suffix(&out, PART_SUFFIX).exists());
    // An OUT path whose directory does not exist.
    let out = d.join("missing-dir").join("out");
    let o = get(&seeder.link, &out, || Ok(()));
    assert_eq!(check_failure(&o, &out, &data, "not found"), 0);
    drop(seeder);
    let _ = std::fs::remove_dir_all(d);
}
