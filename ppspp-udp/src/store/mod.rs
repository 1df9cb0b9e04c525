//! File-backed content: the chunk stores the engine reads and writes, and the sidecar files
//! that make restarts cheap.
//!
//! - [`FileStore`]: a [`ChunkStore`](ppspp_core::ChunkStore) over a file. A seeder's store
//!   reads its file and notices when the file changes under it (size or modification time:
//!   reads then fail, and the engine stops serving the swarm). A download's store writes
//!   verified chunks into a preallocated `OUT.ppspp-part` file, and on completion syncs it,
//!   renames it to `OUT` and syncs the directory, so nothing unverified ever sits at `OUT`.
//!   Reads and writes are batched into regions of a few hundred KiB (`cache`): one system
//!   call per region instead of one per chunk.
//! - [`DownloadState`]: the `OUT.ppspp-state` sidecar: verified chunks and the tree hashes
//!   that verified them, written atomically (temporary file, sync, rename) so an interrupted
//!   download resumes where it stopped. Chunks it lists are hashed again on resume, so a
//!   crash between a write and its sync cannot smuggle in bad data.
//! - [`seed_cache`]: the seeder's `FILE.ppspp-seed` sidecar: leaf hashes, size and
//!   modification time, so a restarted seeder does not rehash unchanged content.

mod cache;
mod file;
pub mod seed_cache;
mod state;

pub use file::{FileStore, io_message};
#[cfg(feature = "serve")]
pub(crate) use state::write_atomically;
pub use state::{DownloadState, StateError};

use std::path::{Path, PathBuf};

/// `path` with `suffix` appended to its file name (`OUT` → `OUT.ppspp-state`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The suffix of a download's partial data file.
pub const PART_SUFFIX: &str = ".ppspp-part";
/// The suffix of a download's state sidecar.
pub const STATE_SUFFIX: &str = ".ppspp-state";
/// The suffix of a seeder's tree cache.
pub const SEED_SUFFIX: &str = ".ppspp-seed";
