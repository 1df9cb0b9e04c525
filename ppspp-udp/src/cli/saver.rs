//! Saving a download's resume state on a thread of its own.
//!
//! The network thread only takes a [`Snapshot`] (the verified ranges and hashes, copied from
//! the engine) and hands it over a channel; syncing the part file, sorting the hashes,
//! writing the sidecar and syncing it happen here, so disk latency (10–260 ms seen on a busy
//! disk) never pauses the network loop. A snapshot taken after chunks were written is saved
//! only after the part file is synced, so the state never claims data that is not on disk.

use std::path::PathBuf;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use ppspp_core::bin::Bin;
use ppspp_core::hash::{HashAlgorithm, HashValue};
use ppspp_core::wire::ChunkAddressing;

use crate::store::{DownloadState, FileStore};

/// What a save writes: copied from the engine on the network thread.
#[derive(Debug)]
pub struct Snapshot {
    /// The content length, if known.
    pub size: Option<u64>,
    /// Verified chunks.
    pub verified: Vec<std::ops::Range<u64>>,
    /// Verified tree nodes, in any order (sorted on the saver's thread).
    pub hashes: Vec<(Bin, HashValue)>,
    /// Verified chunk count (to skip saves that would change nothing).
    pub count: u64,
}

/// The fixed part of every state file of one download.
#[derive(Clone, Debug)]
pub struct StateHeader {
    /// The swarm ID.
    pub swarm_id: HashValue,
    /// The hash function.
    pub hash: HashAlgorithm,
    /// The chunk addressing method.
    pub addressing: ChunkAddressing,
    /// The chunk size.
    pub chunk_size: u32,
}

/// What the saver did so far.
#[derive(Clone, Debug, Default)]
pub struct SaverStatus {
    /// Verified chunks in the last state written (0: none written).
    pub saved_count: u64,
    /// The last error, if the last save failed.
    pub error: Option<String>,
    /// Saves written.
    pub saves: u64,
}

/// The saver thread and its channel.
#[derive(Debug)]
pub struct Saver {
    tx: Option<SyncSender<Snapshot>>,
    thread: Option<JoinHandle<()>>,
    status: Arc<Mutex<SaverStatus>>,
}

impl Saver {
    /// Starts a saver writing `header` + snapshots to `path`, syncing `store` first.
    pub fn start(path: PathBuf, header: StateHeader, store: FileStore) -> Self {
        // One snapshot waits at most: a newer one is taken at the next interval anyway.
        let (tx, rx) = mpsc::sync_channel::<Snapshot>(1);
        let status = Arc::new(Mutex::new(SaverStatus::default()));
        let st = status.clone();
        let thread = std::thread::Builder::new()
            .name("state-saver".into())
            .spawn(move || {
                while let Ok(snap) = rx.recv() {
                    let t = std::time::Instant::now();
                    let r = save(
                        &path,
                        &header,
                        &store,
                        snap.size,
                        snap.verified,
                        snap.hashes,
                    );
                    let micros = t.elapsed().as_micros() as u64;
                    let mut g = st.lock().unwrap_or_else(|e| e.into_inner());
                    match r {
                        Ok(()) => {
                            g.saved_count = snap.count;
                            g.saves += 1;
                            g.error = None;
                            tracing::debug!(
                                chunks = snap.count,
                                micros,
                                "saver thread: state saved"
                            );
                        }
                        Err(e) => {
                            tracing::debug!("saving the resume state: {e}");
                            g.error = Some(e);
                        }
                    }
                }
            })
            .ok();
        Self {
            tx: Some(tx),
            thread,
            status,
        }
    }

    /// Verified chunks in the last state written (or queued).
    pub fn status(&self) -> SaverStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Hands `snap` over without waiting; `false` if the saver is still busy with the
    /// previous one (the caller tries again later).
    pub fn offer(&self, snap: Snapshot) -> bool {
        match &self.tx {
            Some(tx) => match tx.try_send(snap) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            },
            None => false,
        }
    }

    /// Saves `snap` (if given) and waits for every save to finish; returns the final status.
    /// Used when the download stops (interrupted, timed out, failed).
    pub fn finish(mut self, snap: Option<Snapshot>) -> SaverStatus {
        if let (Some(tx), Some(s)) = (&self.tx, snap) {
            let _ = tx.send(s);
        }
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.status()
    }
}

impl Drop for Saver {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn save(
    path: &std::path::Path,
    header: &StateHeader,
    store: &FileStore,
    size: Option<u64>,
    verified: Vec<std::ops::Range<u64>>,
    mut hashes: Vec<(Bin, HashValue)>,
) -> Result<(), String> {
    if store.is_completed() {
        return Ok(());
    }
    // The data first: the state must never claim chunks that are not on disk.
    store.sync()?;
    // Top down: each node after its parent, so a resume can verify them in order.
    hashes.sort_by_key(|(b, _)| (std::cmp::Reverse(b.layer()), b.raw()));
    let st = DownloadState {
        swarm_id: header.swarm_id,
        hash: header.hash,
        addressing: header.addressing,
        chunk_size: header.chunk_size,
        size,
        verified,
        hashes,
    };
    st.save(path).map_err(|e| e.to_string())
}
