//! The subcommands of the `ppspp` program. Each returns the process exit code.

pub mod decode;
pub mod hash;
