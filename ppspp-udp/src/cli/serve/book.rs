//! The state directory of `ppspp serve --state DIR`: `DIR/swarms.json` lists the swarms to
//! bring back on restart (seeds by path, downloads by link), `DIR/data/` holds the downloads
//! (`<hex>`, or `<hex>.ppspp-part` with its `<hex>.ppspp-state` resume sidecar while
//! incomplete). Seeds keep their tree cache beside the file (`FILE.ppspp-seed`, as
//! `ppspp seed`), so an unchanged seed is not hashed again; a completed download's tree
//! cache is `DIR/data/<hex>.ppspp-seed`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One swarm to bring back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum BookEntry {
    /// A file seeded from where it is.
    Seed {
        path: PathBuf,
        chunk_size: u32,
        hash: String,
        cam: String,
    },
    /// A download (complete or not) in the data directory.
    Download { link: String, name: Option<String> },
    /// A live stream joined by its live link (nothing of it is on disk).
    Live { link: String, name: Option<String> },
}

#[derive(Serialize, Deserialize)]
struct BookFile {
    version: u32,
    swarms: Vec<BookEntry>,
}

/// The book's path in `dir`.
pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join("swarms.json")
}

/// Reads the book (an absent one is empty).
pub(crate) fn load(dir: &Path) -> Result<Vec<BookEntry>, String> {
    let p = path(dir);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice::<BookFile>(&b)
            .map(|f| f.swarms)
            .map_err(|e| format!("{}: {e}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(crate::store::io_message("reading", &p, &e)),
    }
}

/// Writes the book atomically.
pub(crate) fn save(dir: &Path, swarms: Vec<BookEntry>) -> Result<(), String> {
    let f = BookFile { version: 1, swarms };
    let bytes = serde_json::to_vec_pretty(&f).map_err(|e| e.to_string())?;
    crate::store::write_atomically(&path(dir), &bytes)
}
