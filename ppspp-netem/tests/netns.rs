//! The emulator between two real network namespaces: a ping through it takes at least the
//! configured delay each way. Needs root, `ip netns`, `/dev/net/tun` and `ping`; skips (and
//! says why) where any is missing. The assertion is a lower bound only: a slow machine cannot
//! make it fail.

use std::process::{Child, Command, Stdio};

fn ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn skip_reason() -> Option<&'static str> {
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun");
    }
    // The effective user ID: the second field of `Uid:` in /proc/self/status.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1));
    if euid != Some("0") {
        return Some("not root (namespaces and TUN devices need CAP_NET_ADMIN)");
    }
    if !ok(Command::new("ip").args(["netns", "list"])) {
        return Some("`ip netns` does not work here");
    }
    if !ok(Command::new("ping").arg("-V")) {
        return Some("no `ping`");
    }
    None
}

/// Namespaces, devices and the emulator of one test, removed on drop.
struct Net {
    ns: Vec<String>,
    emu: Option<Child>,
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Some(mut c) = self.emu.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.ns {
            let _ = ok(Command::new("ip").args(["netns", "del", n]));
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ping_through_the_emulator_takes_the_delay_each_way() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let id = std::process::id() % 100_000;
    let tun = format!("pnx{id}t");
    let mut net = Net {
        ns: vec![format!("pnx{id}a"), format!("pnx{id}b")],
        emu: None,
    };
    for n in &net.ns {
        ip(&["netns", "add", n]);
    }
    let mut emu = Command::new(env!("CARGO_BIN_EXE_ppspp-netem"))
        .args(["--hosts", "2", "--tun-prefix", &tun, "--subnet", "10.79.0"])
        .args(["--delay-ms", "30", "--seed", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ppspp-netem starts");
    // The first line ("ready ...") comes once the devices exist.
    let mut line = String::new();
    {
        use std::io::BufRead;
        let out = emu.stdout.take().expect("stdout");
        std::io::BufReader::new(out)
            .read_line(&mut line)
            .expect("ready line");
    }
    net.emu = Some(emu);
    assert!(line.starts_with("ready"), "{line}");
    for (i, n) in net.ns.iter().enumerate() {
        let dev = format!("{tun}{i}");
        ip(&["link", "set", &dev, "netns", n]);
        ip(&["-n", n, "link", "set", &dev, "up"]);
        ip(&[
            "-n",
            n,
            "addr",
            "add",
            &format!("10.79.0.{}/24", i + 1),
            "dev",
            &dev,
        ]);
    }
    let out = Command::new("ip")
        .args([
            "netns", "exec", &net.ns[1], "ping", "-c", "3", "-i", "0.2", "-W", "5",
        ])
        .arg("10.79.0.1")
        .output()
        .expect("ping runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let rtts: Vec<f64> = text
        .split("time=")
        .skip(1)
        .filter_map(|s| s.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(rtts.len(), 3, "{text}");
    for r in rtts {
        assert!(r >= 60.0, "RTT {r} ms is under 2 x 30 ms:\n{text}");
    }
}
