//! [`FileStore`]: chunks in a file.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use ppspp_core::{ChunkStore, StoreError};

use super::cache::{ReadCache, WriteBack};

/// How often a seeder's store checks that its file did not change.
const CHANGE_CHECK: Duration = Duration::from_millis(500);

/// A one-line description of an I/O error on `path`, naming the usual causes plainly.
pub fn io_message(what: &str, path: &Path, e: &io::Error) -> String {
    let p = path.display();
    match e.kind() {
        io::ErrorKind::StorageFull => format!("disk full while {what} {p}"),
        io::ErrorKind::FileTooLarge => {
            format!("file too large (over the file size limit) while {what} {p}")
        }
        io::ErrorKind::PermissionDenied => format!("permission denied while {what} {p}"),
        io::ErrorKind::NotFound => format!("{p}: not found (while {what} it)"),
        io::ErrorKind::ReadOnlyFilesystem => format!("read-only file system while {what} {p}"),
        _ => format!("{what} {p}: {e}"),
    }
}

fn store_err(message: String) -> StoreError {
    StoreError::Io { message }
}

#[derive(Debug)]
enum Mode {
    /// Serving an existing file of `len` bytes last modified at `mtime`.
    Seed {
        len: u64,
        mtime: Option<SystemTime>,
        last_check: std::time::Instant,
    },
    /// Writing a download into `part`, renamed to `out` on completion.
    Download {
        out: PathBuf,
        completed: bool,
        dirty: bool,
        /// One past the last byte written.
        end: u64,
    },
}

#[derive(Debug)]
struct Inner {
    file: File,
    path: PathBuf,
    chunk_size: u64,
    mode: Mode,
    /// The first failure, kept for the driver to report.
    failure: Option<String>,
    bytes_written: u64,
    /// Read-ahead for serving a seeder's file or a completed download.
    reads: ReadCache,
    /// Chunks of a download not yet written to the file.
    writes: WriteBack,
}

impl Inner {
    fn new(file: File, path: PathBuf, chunk_size: u32, mode: Mode) -> Self {
        let chunk_size = u64::from(chunk_size.max(1));
        Self {
            file,
            path,
            chunk_size,
            mode,
            failure: None,
            bytes_written: 0,
            reads: ReadCache::new(chunk_size),
            writes: WriteBack::new(chunk_size),
        }
    }

    /// Writes the buffered chunks to the file; a failure is kept and reported from then on.
    fn flush_writes(&mut self) -> Result<(), String> {
        if let Err(e) = self.writes.flush_all(&self.file) {
            let msg = io_message("writing", &self.path, &e);
            self.failure.get_or_insert_with(|| msg.clone());
            return Err(msg);
        }
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Best effort: whatever a download buffered reaches the file (a resume rechecks it).
        let _ = self.writes.flush_all(&self.file);
    }
}

/// A [`ChunkStore`] backed by a file; cheap to clone (clones share the file), so the program
/// keeps a handle while the engine owns the store.
#[derive(Clone, Debug)]
pub struct FileStore {
    inner: Arc<Mutex<Inner>>,
}

impl FileStore {
    /// A seeder's store over `path`, whose content is `len` bytes cut into `chunk_size`-byte
    /// chunks. Fails if the file cannot be opened or is not `len` bytes long.
    pub fn open_seed(path: &Path, chunk_size: u32, len: u64) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| io_message("opening", path, &e))?;
        let meta = file
            .metadata()
            .map_err(|e| io_message("reading the metadata of", path, &e))?;
        if meta.len() != len {
            return Err(format!(
                "{} is {} bytes long, expected {len}",
                path.display(),
                meta.len()
            ));
        }
        Ok(Self::from_inner(Inner::new(
            file,
            path.to_owned(),
            chunk_size,
            Mode::Seed {
                len,
                mtime: meta.modified().ok(),
                last_check: std::time::Instant::now(),
            },
        )))
    }

    /// A download's store: data goes to `part` (created if missing, kept if `resume`,
    /// truncated otherwise), which becomes `out` once every chunk is written.
    pub fn create_download(
        part: &Path,
        out: &Path,
        chunk_size: u32,
        resume: bool,
    ) -> Result<Self, String> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(!resume)
            .open(part)
            .map_err(|e| io_message("creating", part, &e))?;
        Ok(Self::from_inner(Inner::new(
            file,
            part.to_owned(),
            chunk_size,
            Mode::Download {
                out: out.to_owned(),
                completed: false,
                dirty: false,
                end: 0,
            },
        )))
    }

    fn from_inner(inner: Inner) -> Self {
        Self {
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets a download's file to `len` bytes up front (so running out of space shows early
    /// on file systems that reserve, and the file is not grown chunk by chunk).
    /// Does nothing once the download completed (the file then has its exact length).
    pub fn preallocate(&self, len: u64) -> Result<(), String> {
        let g = self.lock();
        if !matches!(
            g.mode,
            Mode::Download {
                completed: false,
                ..
            }
        ) {
            return Ok(());
        }
        let cur = g.file.metadata().map(|m| m.len()).unwrap_or(0);
        if cur != len {
            g.file
                .set_len(len)
                .map_err(|e| io_message("allocating", &g.path, &e))?;
        }
        Ok(())
    }

    /// Flushes written chunks to stable storage (before a state sidecar claims them).
    ///
    /// The fsync runs without the store's lock held (on a duplicate of the file descriptor),
    /// so the network thread, which writes and reads chunks through the same store, is not
    /// held up while a saver thread waits for the disk.
    pub fn sync(&self) -> Result<(), String> {
        let (file, path) = {
            let mut g = self.lock();
            g.flush_writes()?;
            match &mut g.mode {
                Mode::Download { dirty, .. } if *dirty => *dirty = false,
                _ => return Ok(()),
            }
            let file = g
                .file
                .try_clone()
                .map_err(|e| io_message("syncing", &g.path, &e))?;
            (file, g.path.clone())
        };
        let r = file
            .sync_data()
            .map_err(|e| io_message("syncing", &path, &e));
        if r.is_err() {
            // Not synced after all: the next sync must try again.
            if let Mode::Download { dirty, .. } = &mut self.lock().mode {
                *dirty = true;
            }
        }
        r
    }

    /// Reads `buf.len()` bytes at `offset` (for re-verifying a resumed download).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut g = self.lock();
        g.flush_writes().map_err(io::Error::other)?;
        g.file.read_exact_at(buf, offset)
    }

    /// The first failure the store met, if any.
    pub fn failure(&self) -> Option<String> {
        self.lock().failure.clone()
    }

    /// Whether a download's file was completed and moved to its final name.
    pub fn is_completed(&self) -> bool {
        matches!(
            self.lock().mode,
            Mode::Download {
                completed: true,
                ..
            }
        )
    }

    /// Where the data currently is.
    pub fn path(&self) -> PathBuf {
        self.lock().path.clone()
    }

    /// Bytes written by this process.
    pub fn bytes_written(&self) -> u64 {
        self.lock().bytes_written
    }

    /// Completes a download: sets its length to `len`, syncs it, renames it to its final
    /// name and syncs the directory. Called by the engine through
    /// [`ChunkStore::complete`], or by the program when a resumed download was already
    /// whole. Idempotent.
    pub fn finish(&self, len: Option<u64>) -> Result<(), String> {
        let mut g = self.lock();
        let r = finish_locked(&mut g, len);
        if let Err(e) = &r {
            g.failure.get_or_insert_with(|| e.clone());
        }
        r
    }
}

fn finish_locked(g: &mut Inner, len: Option<u64>) -> Result<(), String> {
    let (out, end) = match &g.mode {
        Mode::Download {
            completed: true, ..
        }
        | Mode::Seed { .. } => return Ok(()),
        Mode::Download { out, end, .. } => (out.clone(), *end),
    };
    g.flush_writes()?;
    let len = len.unwrap_or(end);
    g.file
        .set_len(len)
        .map_err(|e| io_message("truncating", &g.path, &e))?;
    g.file
        .sync_all()
        .map_err(|e| io_message("syncing", &g.path, &e))?;
    fs::rename(&g.path, &out)
        .map_err(|e| io_message(&format!("renaming {} to", g.path.display()), &out, &e))?;
    if let Some(dir) = out.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        // Make the rename durable; a directory that cannot be opened for sync is harmless.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    g.path = out;
    if let Mode::Download {
        completed, dirty, ..
    } = &mut g.mode
    {
        *completed = true;
        *dirty = false;
    }
    Ok(())
}

impl ChunkStore for FileStore {
    fn read_chunk(&mut self, index: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        let mut g = self.lock();
        let g = &mut *g;
        if let Some(f) = &g.failure {
            return Err(store_err(f.clone()));
        }
        let cs = g.chunk_size;
        let offset = index
            .checked_mul(cs)
            .ok_or(StoreError::Missing { chunk: index })?;
        let (want, file_len, cached) = match &mut g.mode {
            Mode::Seed {
                len,
                mtime,
                last_check,
            } => {
                if last_check.elapsed() >= CHANGE_CHECK {
                    *last_check = std::time::Instant::now();
                    let changed = match g.file.metadata() {
                        Ok(m) => m.len() != *len || m.modified().ok() != *mtime,
                        Err(_) => true,
                    };
                    if changed {
                        let msg = format!(
                            "{} changed since it was hashed (size or modification time differ); \
                             no longer serving it: restart `ppspp seed` to publish the new content",
                            g.path.display()
                        );
                        g.failure = Some(msg.clone());
                        g.reads.clear();
                        return Err(store_err(msg));
                    }
                }
                if offset >= *len {
                    return Err(StoreError::Missing { chunk: index });
                }
                ((*len - offset).min(cs) as usize, *len, true)
            }
            Mode::Download { end, completed, .. } => {
                if offset >= *end {
                    return Err(StoreError::Missing { chunk: index });
                }
                // Until completion, chunks may still be arriving: no read-ahead over holes.
                ((*end - offset).min(cs) as usize, *end, *completed)
            }
        };
        let want = want.min(buf.len());
        let read = if g.writes.read(offset, &mut buf[..want]) {
            Ok(())
        } else if cached {
            g.reads.read(&g.file, file_len, offset, &mut buf[..want])
        } else {
            g.file.read_exact_at(&mut buf[..want], offset)
        };
        match read {
            Ok(()) => Ok(want),
            Err(e) => {
                let msg = if e.kind() == io::ErrorKind::UnexpectedEof {
                    format!(
                        "{} became shorter while being served (truncated?); no longer serving it",
                        g.path.display()
                    )
                } else {
                    io_message("reading", &g.path, &e)
                };
                g.failure = Some(msg.clone());
                Err(store_err(msg))
            }
        }
    }

    fn write_chunk(&mut self, index: u64, data: &[u8]) -> Result<(), StoreError> {
        let mut g = self.lock();
        let g = &mut *g;
        if let Some(f) = &g.failure {
            return Err(store_err(f.clone()));
        }
        let offset = index
            .checked_mul(g.chunk_size)
            .ok_or(StoreError::Missing { chunk: index })?;
        let Mode::Download { dirty, end, .. } = &mut g.mode else {
            return Err(store_err("a seeder's file is read-only".into()));
        };
        match g.writes.write(&g.file, offset, data) {
            Ok(()) => {
                *dirty = true;
                *end = (*end).max(offset + data.len() as u64);
                g.bytes_written += data.len() as u64;
                Ok(())
            }
            Err(e) => {
                let msg = io_message("writing", &g.path, &e);
                g.failure = Some(msg.clone());
                Err(store_err(msg))
            }
        }
    }

    fn complete(&mut self) -> Result<(), StoreError> {
        self.finish(None).map_err(store_err)
    }
}

/// Notes the furthest byte a resumed download already holds, so reads of those chunks work.
impl FileStore {
    /// Tells a resumed download's store that chunks up to byte `end` may be read back.
    pub fn set_resumed_end(&self, end: u64) {
        if let Mode::Download { end: e, .. } = &mut self.lock().mode {
            *e = (*e).max(end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ppspp-store-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn download_writes_then_renames_on_completion() {
        let d = tmp("dl");
        let (part, out) = (d.join("o.part"), d.join("o"));
        let mut s = FileStore::create_download(&part, &out, 4, false).unwrap();
        s.preallocate(10).unwrap();
        s.write_chunk(2, b"ij").unwrap();
        s.write_chunk(0, b"abcd").unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(s.read_chunk(0, &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"abcd");
        s.write_chunk(1, b"efgh").unwrap();
        assert!(!out.exists());
        s.complete().unwrap();
        assert!(s.is_completed() && !part.exists());
        assert_eq!(fs::read(&out).unwrap(), b"abcdefghij");
        // Still serves after the rename.
        assert_eq!(s.read_chunk(2, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"ij");
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn seeder_notices_a_changed_file() {
        let d = tmp("seed");
        let p = d.join("f");
        fs::write(&p, b"0123456789").unwrap();
        let mut s = FileStore::open_seed(&p, 4, 10).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(s.read_chunk(2, &mut buf).unwrap(), 2);
        assert!(matches!(
            s.read_chunk(3, &mut buf),
            Err(StoreError::Missing { chunk: 3 })
        ));
        fs::write(&p, b"0123").unwrap();
        s.lock().mode = Mode::Seed {
            len: 10,
            mtime: None,
            last_check: std::time::Instant::now() - CHANGE_CHECK,
        };
        let e = s.read_chunk(0, &mut buf).unwrap_err().to_string();
        assert!(e.contains("changed since it was hashed"), "{e}");
        assert!(s.failure().is_some());
        assert!(
            FileStore::open_seed(&p, 4, 10)
                .unwrap_err()
                .contains("4 bytes long")
        );
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn messages_name_the_cause() {
        let p = Path::new("/x/y");
        let full = io::Error::from(io::ErrorKind::StorageFull);
        assert_eq!(
            io_message("writing", p, &full),
            "disk full while writing /x/y"
        );
        let perm = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(
            io_message("creating", p, &perm),
            "permission denied while creating /x/y"
        );
    }
}
