//! The subcommands of the `ppspp` program. Each returns the process exit code.

pub mod decode;
pub mod get;
pub mod hash;
pub mod interrupt;
pub mod live;
pub mod pcap;
pub mod progress;
pub mod seed;
pub mod trace;

/// Prints a line on stdout without panicking when stdout is closed (a reader that went away
/// must not bring the program down); the line is simply lost.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}
pub(crate) use say;
