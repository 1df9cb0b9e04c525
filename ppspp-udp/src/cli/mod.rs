//! The subcommands of the `ppspp` program. Each returns the process exit code.

pub mod decode;
pub mod get;
pub mod hash;
pub mod interrupt;
pub mod progress;
pub mod seed;
