//! Hashing a file for seeding, with a cache (`FILE.ppspp-seed`) so a restart does not hash
//! unchanged content again.
//!
//! The cache holds the leaf hashes, the file's size and modification time, the hash
//! function and chunk size, and the root. It is used only when all of them match the file and
//! the request; the tree is then rebuilt from the leaf hashes (one hash per chunk pair
//! instead of reading the content) and its root checked against the cached one.
//!
//! Format (little-endian), version 1:
//!
//! ```text
//! "PPSPPSD1", u8 hash code, 3 zero bytes, u32 chunk size, u64 file length,
//! i64 mtime seconds, u32 mtime nanoseconds, u8 root length, root, leaf hashes (N × hash length),
//! 32 bytes SHA-256 of everything above
//! ```

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ppspp_core::Bin;
use ppspp_core::hash::{HashAlgorithm, HashValue};
use ppspp_core::merkle::{BuildError, MerkleBuilder, MerkleTree};

use super::file::io_message;
use super::state::write_atomically;

const MAGIC: &[u8; 8] = b"PPSPPSD1";
const READ_BUF: usize = 256 * 1024;

/// How the tree was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeSource {
    /// Rebuilt from a valid cache.
    Cache,
    /// Hashed from the file (no cache, or it did not match).
    Hashed,
}

/// A seeder's tree, and whether the cache could be written.
#[derive(Debug)]
pub struct SeedTree {
    /// The Merkle tree of the file.
    pub tree: MerkleTree,
    /// Where it came from.
    pub source: TreeSource,
    /// Why the cache could not be saved, if it could not.
    pub cache_warning: Option<String>,
}

/// The cache path of `file`.
pub fn cache_path(file: &Path) -> PathBuf {
    super::with_suffix(file, super::SEED_SUFFIX)
}

fn mtime_parts(t: Option<SystemTime>) -> (i64, u32) {
    match t.map(|t| t.duration_since(UNIX_EPOCH)) {
        Some(Ok(d)) => (d.as_secs() as i64, d.subsec_nanos()),
        Some(Err(e)) => (
            -(e.duration().as_secs() as i64),
            e.duration().subsec_nanos(),
        ),
        None => (0, 0),
    }
}

/// The tree of `file`, from its cache when the cache matches, else by hashing the file (and
/// then writing the cache, when `use_cache`).
pub fn load_or_hash(
    file: &Path,
    alg: HashAlgorithm,
    chunk_size: u32,
    use_cache: bool,
) -> Result<SeedTree, String> {
    let meta = std::fs::metadata(file).map_err(|e| io_message("opening", file, &e))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", file.display()));
    }
    if meta.len() == 0 {
        return Err(format!(
            "{} is empty; content needs at least one byte",
            file.display()
        ));
    }
    if chunk_size == 0 {
        return Err("--chunk-size must be at least 1".into());
    }
    let mtime = mtime_parts(meta.modified().ok());
    let cache = cache_path(file);
    if use_cache {
        if let Some(tree) = load_cache(&cache, alg, chunk_size, meta.len(), mtime) {
            return Ok(SeedTree {
                tree,
                source: TreeSource::Cache,
                cache_warning: None,
            });
        }
    }
    let tree = hash_file(file, alg, chunk_size)?;
    // The file must not have changed while it was hashed.
    let after = std::fs::metadata(file).map_err(|e| io_message("opening", file, &e))?;
    if after.len() != meta.len() || mtime_parts(after.modified().ok()) != mtime {
        return Err(format!(
            "{} changed while it was being hashed; try again once it is stable",
            file.display()
        ));
    }
    let cache_warning = if use_cache {
        write_atomically(&cache, &encode(&tree, meta.len(), mtime))
            .err()
            .map(|e| format!("could not save the tree cache ({e}); the next start hashes again"))
    } else {
        None
    };
    Ok(SeedTree {
        tree,
        source: TreeSource::Hashed,
        cache_warning,
    })
}

/// Streams `file` into a tree-keeping Merkle builder.
pub fn hash_file(file: &Path, alg: HashAlgorithm, chunk_size: u32) -> Result<MerkleTree, String> {
    let build = |e: BuildError| match e {
        BuildError::EmptyContent => format!(
            "{} is empty; content needs at least one byte",
            file.display()
        ),
        e => format!("{}: {e}", file.display()),
    };
    let mut b = MerkleBuilder::with_tree(alg, chunk_size).map_err(build)?;
    let f = File::open(file).map_err(|e| io_message("opening", file, &e))?;
    if let Ok(m) = f.metadata() {
        b.reserve_for(m.len());
    }
    let mut r = BufReader::with_capacity(READ_BUF, f);
    loop {
        let buf = match r.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_message("reading", file, &e)),
        };
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        b.update(buf).map_err(build)?;
        r.consume(n);
    }
    b.finish_tree().map_err(build)
}

fn encode(tree: &MerkleTree, len: u64, mtime: (i64, u32)) -> Vec<u8> {
    let hlen = tree.algorithm().output_len();
    let n = tree.chunk_count();
    let mut b = Vec::with_capacity(64 + n as usize * hlen);
    b.extend_from_slice(MAGIC);
    b.push(tree.algorithm().code());
    b.extend_from_slice(&[0, 0, 0]);
    b.extend_from_slice(&tree.chunk_size().to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&mtime.0.to_le_bytes());
    b.extend_from_slice(&mtime.1.to_le_bytes());
    b.push(hlen as u8);
    b.extend_from_slice(tree.root_hash().as_bytes());
    for c in 0..n {
        let leaf = Bin::leaf(c).and_then(|bin| tree.hash_bytes(bin));
        match leaf {
            Some(h) => b.extend_from_slice(h),
            None => b.extend_from_slice(&vec![0; hlen]),
        }
    }
    let sum = HashAlgorithm::Sha256.digest(&b);
    b.extend_from_slice(sum.as_bytes());
    b
}

/// The tree from a cache that matches everything, else `None`.
fn load_cache(
    path: &Path,
    alg: HashAlgorithm,
    chunk_size: u32,
    len: u64,
    mtime: (i64, u32),
) -> Option<MerkleTree> {
    let b = std::fs::read(path).ok()?;
    if b.len() < 8 + 32 || &b[..8] != MAGIC {
        return None;
    }
    let (body, sum) = b.split_at(b.len() - 32);
    if HashAlgorithm::Sha256.digest(body).as_bytes() != sum {
        return None;
    }
    let hlen = alg.output_len();
    let head = 8 + 4 + 4 + 8 + 8 + 4 + 1;
    if body.len() < head + hlen {
        return None;
    }
    let le64 = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
    if body[8] != alg.code()
        || u32::from_le_bytes(body[12..16].try_into().ok()?) != chunk_size
        || le64(16) != len
        || le64(24) as i64 != mtime.0
        || u32::from_le_bytes(body[32..36].try_into().ok()?) != mtime.1
        || usize::from(body[36]) != hlen
    {
        return None;
    }
    let root = HashValue::from_slice(&body[head..head + hlen])?;
    let n = len.div_ceil(u64::from(chunk_size));
    let leaves = &body[head + hlen..];
    if leaves.len() as u64 != n.checked_mul(hlen as u64)? {
        return None;
    }
    let mut builder = MerkleBuilder::with_tree(alg, chunk_size).ok()?;
    builder.reserve_for(len);
    for (i, h) in leaves.chunks_exact(hlen).enumerate() {
        let i = i as u64;
        let clen = (len - i * u64::from(chunk_size)).min(u64::from(chunk_size)) as usize;
        builder
            .push_leaf_hash(&HashValue::from_slice(h)?, clen)
            .ok()?;
    }
    let tree = builder.finish_tree().ok()?;
    (tree.root_hash() == root).then_some(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_is_used_until_the_file_changes() {
        let d = std::env::temp_dir().join(format!("ppspp-seedcache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("content");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&f, &data).unwrap();
        let a = load_or_hash(&f, HashAlgorithm::Sha1, 1024, true).unwrap();
        assert_eq!(a.source, TreeSource::Hashed);
        assert!(a.cache_warning.is_none());
        let expect = MerkleTree::build(HashAlgorithm::Sha1, 1024, &data).unwrap();
        assert_eq!(a.tree.root_hash(), expect.root_hash());
        let b = load_or_hash(&f, HashAlgorithm::Sha1, 1024, true).unwrap();
        assert_eq!(b.source, TreeSource::Cache);
        assert_eq!(b.tree.root_hash(), expect.root_hash());
        // Other parameters: hashed again.
        let c = load_or_hash(&f, HashAlgorithm::Sha256, 1024, true).unwrap();
        assert_eq!(c.source, TreeSource::Hashed);
        // Changed content (size differs): hashed again, new root.
        std::fs::write(&f, &data[..9000]).unwrap();
        let e = load_or_hash(&f, HashAlgorithm::Sha256, 1024, true).unwrap();
        assert_eq!(e.source, TreeSource::Hashed);
        assert_ne!(e.tree.root_hash(), c.tree.root_hash());
        std::fs::remove_dir_all(d).unwrap();
    }
}
