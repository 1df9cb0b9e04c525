//! `ppspp live source --publish DIR`: the stream written for an HTTP origin as it is injected,
//! so that any file server over DIR serves it to viewers (`ppspp live get --origin URL`).
//!
//! `DIR/stream` holds the chunks (chunk `c` at byte `c · chunk_size`); `DIR/stream.munros`
//! is its munro log ([`ppspp_core::live::MunroLogHeader`]): a record per signed munro, then
//! the header's count rewritten. Both are written on a thread of their own (no disk work on
//! the network thread); a munro's chunks reach the file before its record, and its record
//! before the count that announces it, so a reader never sees a record whose chunks are
//! not there.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use ppspp_core::hash::HashValue;
use ppspp_core::live::{LiveParams, MunroLogHeader, SignedMunro};

/// Chunks and munros that may wait for the disk before publishing gives up.
const QUEUE: usize = 16 * 1024;

enum Msg {
    Chunk(Vec<u8>),
    Signed(SignedMunro, Option<u64>),
}

/// The publishing thread.
pub struct Publisher {
    tx: Option<mpsc::SyncSender<Msg>>,
    thread: Option<JoinHandle<Result<(), String>>>,
    content: PathBuf,
}

impl Publisher {
    /// Creates `dir` (if needed), `dir/stream` and `dir/stream.munros` (both emptied) and
    /// starts the thread that appends to them.
    pub fn start(dir: &Path, params: LiveParams, signature_len: usize) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let content = dir.join("stream");
        let log_path = dir.join("stream.munros");
        let open = |p: &Path| File::create(p).map_err(|e| format!("{}: {e}", p.display()));
        let data = BufWriter::new(open(&content)?);
        let log = open(&log_path)?;
        let mut header = MunroLogHeader::new(&params, signature_len);
        log.write_all_at(&header.encode(), 0)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE);
        let thread = std::thread::Builder::new()
            .name("publish".into())
            .spawn(move || {
                let mut data = data;
                let mut leaves: Vec<HashValue> = Vec::new();
                let fail = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
                for msg in rx {
                    match msg {
                        Msg::Chunk(c) => {
                            leaves.push(params.hash.digest(&c));
                            data.write_all(&c).map_err(|e| fail(&content, e))?;
                        }
                        Msg::Signed(m, end) => {
                            data.flush().map_err(|e| fail(&content, e))?;
                            let n = (header.nchunks_per_sig as usize).min(leaves.len());
                            let rec = header.encode_record(&m, &leaves[..n]);
                            leaves.drain(..n);
                            let at = header.record_bytes(header.count..header.count + 1).start;
                            log.write_all_at(&rec, at).map_err(|e| fail(&log_path, e))?;
                            header.count += 1;
                            header.end = end;
                            log.write_all_at(&header.encode(), 0)
                                .map_err(|e| fail(&log_path, e))?;
                        }
                    }
                }
                data.flush().map_err(|e| fail(&content, e))
            })
            .map_err(|e| format!("cannot start the publishing thread: {e}"))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            content: dir.join("stream"),
        })
    }

    /// The content file (serve its directory; viewers use its URL as `--origin`).
    pub fn content_path(&self) -> &Path {
        &self.content
    }

    /// The injector added `chunk`.
    pub fn chunk(&mut self, chunk: &[u8]) -> Result<(), String> {
        self.send(Msg::Chunk(chunk.to_vec()))
    }

    /// The injector signed `m` (`end`: the stream's length in chunks, for its last munro).
    pub fn signed(&mut self, m: SignedMunro, end: Option<u64>) -> Result<(), String> {
        self.send(Msg::Signed(m, end))
    }

    fn send(&mut self, msg: Msg) -> Result<(), String> {
        let Some(tx) = &self.tx else {
            return Err("publishing stopped".into());
        };
        match tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(mpsc::TrySendError::Full(_)) => {
                self.tx = None;
                Err("publishing fell behind the stream (the disk is too slow)".into())
            }
            Err(mpsc::TrySendError::Disconnected(_)) => {
                self.tx = None;
                Err(self
                    .finish()
                    .err()
                    .unwrap_or_else(|| "publishing stopped".into()))
            }
        }
    }

    /// Stops the thread once it wrote everything; its error, if it stopped on one.
    pub fn finish(&mut self) -> Result<(), String> {
        self.tx = None;
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err("the publishing thread panicked".into())),
            None => Ok(()),
        }
    }
}
