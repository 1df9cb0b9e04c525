//! Diagnostic logging through `tracing`: `RUST_LOG` (e.g. `RUST_LOG=ppspp_udp=debug`) or
//! `-v` (info), `-vv` (debug), `-vvv` (trace) on stderr. Without either, warnings only.
//! Results and the one-line errors do not go through here: they are the program's output.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber. `verbosity` is the number of `-v` flags; `RUST_LOG`, when set,
/// wins.
pub fn init(verbosity: u8) {
    let level = match verbosity {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.is_empty() => EnvFilter::try_new(&s).unwrap_or_else(|_| EnvFilter::new(level)),
        _ => EnvFilter::new(level),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
