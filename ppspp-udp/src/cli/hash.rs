//! `ppspp hash FILE`: being built.

/// Arguments of `ppspp hash`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to hash.
    pub file: std::path::PathBuf,
}

/// Runs `ppspp hash`.
pub fn run(_args: &Args) -> u8 {
    eprintln!("ppspp hash: not built yet");
    2
}
