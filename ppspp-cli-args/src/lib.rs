//! Validated command-line values and the exit-code policy shared by the `ppspp` program and
//! the `ppspp-sim` simulator.
//!
//! Every numeric flag of both programs goes through one of the parsers here (or a clap
//! integer parser with a range), so a negative, zero, NaN, infinite, huge or malformed value
//! is a usage error (exit status 2, one line on stderr) before any work starts, never a panic
//! or a hang. [`parse`] applies the policy to a whole command line: negative numbers reach the
//! value parsers (instead of clap's "use `-- -1`" hint) and clap's multi-line errors become
//! one line.
//!
//! ```
//! use std::time::Duration;
//! assert_eq!(ppspp_cli_args::duration("1.5").unwrap(), Duration::from_millis(1500));
//! assert_eq!(ppspp_cli_args::duration("250ms").unwrap(), Duration::from_millis(250));
//! assert!(ppspp_cli_args::duration("inf").is_err());
//! assert_eq!(ppspp_cli_args::size("4K").unwrap(), 4096);
//! assert_eq!(ppspp_cli_args::rate("2M").unwrap(), 2_000_000);
//! assert!(ppspp_cli_args::probability("1.5").is_err());
//! ```
#![forbid(unsafe_code)]

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};

/// Exit status: the work is done.
pub const EXIT_DONE: u8 = 0;
/// Exit status: the work failed (one line on stderr says why).
pub const EXIT_FAILED: u8 = 1;
/// Exit status: the command line is wrong (one line on stderr says what).
pub const EXIT_USAGE: u8 = 2;
/// Exit status: interrupted (Ctrl-C or SIGTERM).
pub const EXIT_INTERRUPTED: u8 = 130;

/// The exit-code policy, for `--help` (`after_help`).
pub const EXIT_HELP: &str = "Exit status: 0 done, 1 failed (one line on stderr says why), \
                             2 usage error, 130 interrupted (Ctrl-C or SIGTERM).";

/// The longest duration any flag accepts: one year.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
/// The largest size any flag accepts: 1 PiB.
pub const MAX_SIZE: u64 = 1 << 50;
/// The largest rate any flag accepts: 100 GB/s.
pub const MAX_RATE: u64 = 100_000_000_000;

/// Parses the command line of `T` with the policy above: exits 0 after `--help` or
/// `--version`, exits [`EXIT_USAGE`] with a one-line message on any usage error.
pub fn parse<T: CommandFactory + FromArgMatches>() -> T {
    parse_from::<T, _, _>(std::env::args_os())
}

/// [`parse`] over the given arguments (the first is the program name).
pub fn parse_from<T, I, S>(args: I) -> T
where
    T: CommandFactory + FromArgMatches,
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    match try_parse_from::<T, I, S>(args) {
        Ok(v) => v,
        Err(e) => exit_with(&e),
    }
}

/// Like [`parse_from`], but returns clap's error instead of exiting.
pub fn try_parse_from<T, I, S>(args: I) -> Result<T, clap::Error>
where
    T: CommandFactory + FromArgMatches,
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    let mut cmd = command::<T>();
    let m: ArgMatches = cmd.try_get_matches_from_mut(args)?;
    T::from_arg_matches(&m).map_err(|e| e.format(&mut cmd))
}

/// `T`'s command with the policy applied: every option that takes a value accepts a leading
/// `-` digit (so `-1` reaches its value parser and is refused there, by name), and the
/// exit-code policy is appended to every `--help`.
pub fn command<T: CommandFactory>() -> Command {
    harden(T::command())
}

fn harden(cmd: Command) -> Command {
    let after = match cmd.get_after_help() {
        Some(h) => format!("{h}\n\n{EXIT_HELP}"),
        None => EXIT_HELP.to_string(),
    };
    cmd.after_help(after)
        .mut_args(|a| {
            if a.get_action().takes_values() {
                a.allow_negative_numbers(true)
            } else {
                a
            }
        })
        .mut_subcommands(harden)
}

/// Prints `e` (help and version as clap prints them; errors as one line) and exits with
/// 0 or [`EXIT_USAGE`].
pub fn exit_with(e: &clap::Error) -> ! {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            let code = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                EXIT_USAGE
            } else {
                EXIT_DONE
            };
            std::process::exit(i32::from(code));
        }
        _ => {
            eprintln!("{}", one_line(&e.render().to_string()));
            std::process::exit(i32::from(EXIT_USAGE));
        }
    }
}

/// The first paragraph of a clap error, joined into one line.
pub fn one_line(rendered: &str) -> String {
    let mut out = String::new();
    for line in rendered.lines() {
        let l = line.trim();
        if l.is_empty() {
            if out.is_empty() {
                continue;
            }
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(l);
    }
    out
}

/// A duration: a number of seconds (`1.5`) or a number with a unit (`250ms`, `2s`, `5m`,
/// `1h`). Positive, finite, at most [`MAX_DURATION`].
pub fn duration(s: &str) -> Result<Duration, String> {
    let d = duration_or_zero(s)?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

/// Like [`duration`], but zero is allowed.
pub fn duration_or_zero(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, unit) = split_unit(t);
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        u => return Err(format!("unknown unit {u:?} (ms, s, m, h)")),
    };
    let v = number(num)? * scale;
    if v > MAX_DURATION.as_secs_f64() {
        return Err(format!("too long (at most {} s)", MAX_DURATION.as_secs()));
    }
    Ok(Duration::from_secs_f64(v))
}

/// A size in bytes: an integer or a decimal with a binary suffix (`K`, `M`, `G`, `T`,
/// powers of 1,024; `KiB` etc. too). Positive, at most [`MAX_SIZE`].
pub fn size(s: &str) -> Result<u64, String> {
    suffixed(s, 1024, MAX_SIZE)
}

/// A rate in bytes per second: an integer or a decimal with a decimal suffix (`k`, `M`,
/// `G`, powers of 1,000). Positive, at most [`MAX_RATE`].
pub fn rate(s: &str) -> Result<u64, String> {
    suffixed(s, 1000, MAX_RATE)
}

/// A probability: a finite number from 0 to 1.
pub fn probability(s: &str) -> Result<f64, String> {
    let v = number(s.trim())?;
    if v > 1.0 {
        return Err("must be a probability from 0 to 1".into());
    }
    Ok(v)
}

/// A finite number at least 1 (a mean burst length, a ratio).
pub fn at_least_one(s: &str) -> Result<f64, String> {
    let v = number(s.trim())?;
    if !(1.0..=1e9).contains(&v) {
        return Err("must be from 1 to 1e9".into());
    }
    Ok(v)
}

/// A peer's address: `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT` (resolved now; the first
/// address wins). Port 0 is refused.
pub fn peer(s: &str) -> Result<SocketAddr, String> {
    let a = address(s)?;
    if a.port() == 0 {
        return Err("port 0 is not a peer's port".into());
    }
    Ok(a)
}

/// A local address to bind: `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT` (port 0: any free
/// port).
pub fn address(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Ok(a);
    }
    if !t.contains(':') {
        return Err("expected HOST:PORT (e.g. 127.0.0.1:6778, [::1]:6778, localhost:6778)".into());
    }
    let mut addrs = t
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {t}: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("{t} resolves to no address"))
}

/// A finite, non-negative number (`nan`, `inf`, negative and malformed are refused).
fn number(s: &str) -> Result<f64, String> {
    if s.is_empty() {
        return Err("a number is missing".into());
    }
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !v.is_finite() {
        return Err("must be a finite number".into());
    }
    if v < 0.0 {
        return Err("must not be negative".into());
    }
    Ok(v)
}

fn split_unit(s: &str) -> (&str, &str) {
    if s.parse::<f64>().is_ok() {
        return (s, "");
    }
    let cut = s
        .find(|c: char| c.is_alphabetic() && c != 'e' && c != 'E' || c == 'µ')
        .unwrap_or(s.len());
    (&s[..cut], &s[cut..])
}

fn suffixed(s: &str, base: u64, max: u64) -> Result<u64, String> {
    let t = s.trim();
    let (num, unit) = split_unit(t);
    let unit = unit.to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let mul = match unit {
        "" => 1,
        "k" => base,
        "m" => base.pow(2),
        "g" => base.pow(3),
        "t" => base.pow(4),
        u => return Err(format!("unknown suffix {u:?} (K, M, G, T)")),
    };
    let v = number(num)? * mul as f64;
    if v > max as f64 {
        return Err(format!("too large (at most {max})"));
    }
    let v = v.round() as u64;
    if v == 0 {
        return Err("must be more than zero".into());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(duration("0.5s").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(duration("1e3ms").unwrap(), Duration::from_secs(1));
        for bad in [
            "", "0", "-1", "nan", "NaN", "inf", "-inf", "1e20", "abc", "1x", "1e400",
        ] {
            assert!(duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(duration_or_zero("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn sizes_and_rates() {
        assert_eq!(size("1M").unwrap(), 1 << 20);
        assert_eq!(size("1.5KiB").unwrap(), 1536);
        assert_eq!(size("100").unwrap(), 100);
        assert_eq!(rate("1.5k").unwrap(), 1500);
        assert_eq!(rate("8MB").unwrap(), 8_000_000);
        for bad in [
            "0",
            "-1",
            "nan",
            "inf",
            "1e30",
            "9999999999999999999999",
            "1Q",
            "k",
        ] {
            assert!(size(bad).is_err(), "{bad:?} accepted");
            assert!(rate(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn probabilities() {
        assert_eq!(probability("0").unwrap(), 0.0);
        assert_eq!(probability("1").unwrap(), 1.0);
        for bad in ["1.5", "-0.1", "nan", "inf", "x"] {
            assert!(probability(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(peer("127.0.0.1:6778").unwrap().port(), 6778);
        assert_eq!(peer("[::1]:9").unwrap().port(), 9);
        assert!(peer("localhost:6778").unwrap().ip().is_loopback());
        assert!(peer("127.0.0.1:0").is_err());
        assert!(peer("127.0.0.1").is_err());
        assert!(peer("127.0.0.1:99999").is_err());
        assert!(address("0.0.0.0:0").is_ok());
    }

    #[test]
    fn clap_errors_become_one_line() {
        let r = "error: the following required arguments were not provided:\n  --output <O>\n\n\
                 Usage: x\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(r),
            "error: the following required arguments were not provided: --output <O>"
        );
    }
}
