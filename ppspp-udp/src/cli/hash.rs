//! `ppspp hash FILE`: print the Merkle root hash (the swarm ID) of a file.
//!
//! The file is streamed through a fixed buffer into a root-only
//! [`MerkleBuilder`], so memory stays constant whatever its size. The root
//! is printed as lowercase hex on one line. The defaults (SHA-1, 1,024-byte chunks) are
//! `ppspp seed`'s, so both print the same swarm ID for the same file. Errors are one line on
//! stderr with exit code 1.
//!
//! `--tree FILE.mhash` also writes the tree sidecar an HTTP origin hosts next to the file
//! (every node hash; see `docs/origin.md`): the tree is then kept in memory (about two
//! hashes per chunk) and written to a temporary file renamed into place.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use ppspp_core::hash::{HashAlgorithm, HashValue};
use ppspp_core::merkle::{BuildError, MerkleBuilder, MerkleTree, sidecar_bytes};

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
    /// Also write the Merkle tree sidecar an HTTP origin serves beside the file (by
    /// convention FILE.mhash next to FILE on the server).
    #[arg(long, value_name = "FILE.mhash")]
    pub tree: Option<std::path::PathBuf>,
}

/// Runs `ppspp hash`: prints the root hash and returns 0, or prints an error and returns 1.
pub fn run(args: &Args) -> u8 {
    if let Some(out) = &args.tree {
        return match tree_of_file(&args.file, args.hash, args.chunk_size)
            .and_then(|t| write_sidecar(&t, out).map(|()| t.root_hash()))
        {
            Ok(root) => {
                crate::cli::say!("{root}");
                0
            }
            Err(e) => {
                eprintln!("ppspp hash: {}: {e}", args.file.display());
                1
            }
        };
    }
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

/// Streams `path` through a Merkle builder keeping every node hash.
fn tree_of_file(path: &Path, alg: HashAlgorithm, chunk_size: u32) -> Result<MerkleTree, Error> {
    let mut builder = MerkleBuilder::with_tree(alg, chunk_size).map_err(Error::Build)?;
    if let Ok(m) = std::fs::metadata(path) {
        builder.reserve_for(m.len());
    }
    feed(path, |buf| builder.update(buf).map_err(Error::Build))?;
    builder.finish_tree().map_err(Error::Build)
}

/// Writes the sidecar of `tree` to `out` (a temporary file beside it, renamed into place).
fn write_sidecar(tree: &MerkleTree, out: &Path) -> Result<(), Error> {
    let bytes = sidecar_bytes(tree);
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, out))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::Io(io::Error::new(
                e.kind(),
                format!("cannot write {}: {e}", out.display()),
            ))
        })
}

/// Reads `path` in large buffers, handing each to `f`.
fn feed(path: &Path, mut f: impl FnMut(&[u8]) -> Result<(), Error>) -> Result<(), Error> {
    let file = File::open(path).map_err(Error::Io)?;
    let mut reader = BufReader::with_capacity(READ_BUF, file);
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(e)),
        };
        if buf.is_empty() {
            return Ok(());
        }
        let len = buf.len();
        f(buf)?;
        reader.consume(len);
    }
}

/// Streams `path` through a Merkle builder and returns the root hash.
fn root_of_file(path: &Path, alg: HashAlgorithm, chunk_size: u32) -> Result<HashValue, Error> {
    let mut builder = MerkleBuilder::new(alg, chunk_size).map_err(Error::Build)?;
    feed(path, |buf| builder.update(buf).map_err(Error::Build))?;
    Ok(builder.finish().map_err(Error::Build)?.hash)
}
