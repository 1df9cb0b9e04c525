//! `ppspp decode`: being built.

/// Arguments of `ppspp decode`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The datagram as hex.
    pub hex: String,
}

/// Runs `ppspp decode`.
pub fn run(_args: &Args) -> u8 {
    2
}
