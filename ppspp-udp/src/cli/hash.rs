//! `ppspp hash FILE`: print the Merkle root hash (the swarm ID) of a file.
//!
//! The file is streamed through a fixed buffer into a root-only
//! [`MerkleBuilder`], so memory stays constant whatever its size. The root
//! is printed as lowercase hex on one line. The defaults (SHA-1, 1,024-byte chunks) are
//! `ppspp seed`'s, so both print the same swarm ID for the same file. Errors are one line on
//! stderr with exit code 1.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use ppspp_core::hash::{HashAlgorithm, HashValue};
use ppspp_core::merkle::{BuildError, MerkleBuilder};

/// The read buffer size: large reads, independent of the chunk size.
const READ_BUF: usize = 256 * 1024;

/// Arguments of `ppspp hash`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to hash.
    pub file: std::path::PathBuf,
    /// The chunk size in bytes.
    #[arg(long, default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=1 << 24))]
    pub chunk_size: u32,
    /// The Merkle hash function: sha1 (the default, as `ppspp seed`), sha224, sha256, sha384
    /// or sha512.
    #[arg(long = "hash", default_value = "sha1")]
    pub hash: HashAlgorithm,
}

/// Runs `ppspp hash`: prints the root hash and returns 0, or prints an error and returns 1.
pub fn run(args: &Args) -> u8 {
    match root_of_file(&args.file, args.hash, args.chunk_size) {
        Ok(root) => {
            crate::cli::say!("{root}");
            0
        }
        Err(e) => {
            eprintln!("ppspp hash: {}: {e}", args.file.display());
            1
        }
    }
}

/// Why a file could not be hashed.
#[derive(Debug)]
enum Error {
    Io(io::Error),
    Build(BuildError),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Build(BuildError::EmptyContent) => {
                f.write_str("the file is empty; content needs at least one byte")
            }
            Self::Build(BuildError::ZeroChunkSize) => {
                f.write_str("--chunk-size must be at least 1")
            }
            Self::Build(e) => write!(f, "{e}"),
        }
    }
}

/// Streams `path` through a Merkle builder and returns the root hash.
fn root_of_file(path: &Path, alg: HashAlgorithm, chunk_size: u32) -> Result<HashValue, Error> {
    let mut builder = MerkleBuilder::new(alg, chunk_size).map_err(Error::Build)?;
    let file = File::open(path).map_err(Error::Io)?;
    let mut reader = BufReader::with_capacity(READ_BUF, file);
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(e)),
        };
        if buf.is_empty() {
            break;
        }
        let len = buf.len();
        builder.update(buf).map_err(Error::Build)?;
        reader.consume(len);
    }
    Ok(builder.finish().map_err(Error::Build)?.hash)
}
