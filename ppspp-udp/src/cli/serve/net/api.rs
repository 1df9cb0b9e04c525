//! The handle to the network thread ([`Net`]) and what goes through it.

use super::*;

/// What a gateway waits for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum WaitFor {
    /// Verified chunks from chunk `from` on, for a reader at `bitrate` bytes per second if
    /// known (its chunks then get deadlines).
    Run {
        /// The chunk the reader needs next.
        from: u64,
        /// The media bitrate, bytes per second.
        bitrate: Option<u64>,
    },
    /// The content length.
    Len,
    /// A live stream's chunks: where a new response starts (`None`), or chunk `from` on.
    Live {
        /// The chunk the reader needs next; `None` for a new response.
        from: Option<u64>,
    },
}

/// The answer to a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ready {
    /// Verified chunks from the asked one on (at least one for `WaitFor::Run`), and the
    /// length if known.
    Run {
        /// Consecutive verified chunks.
        chunks: u64,
        /// The content length.
        len: Option<u64>,
    },
    /// The swarm is gone (removed, or the server is shutting down).
    Gone,
    /// A live stream: a new response starts at this chunk.
    Start(u64),
    /// A live stream: the chunk asked for is no longer held (the reader fell behind the
    /// kept window); go on from this chunk.
    Behind(u64),
}

/// A download ready to be added: its store created and its resume state checked (disk
/// work done off the network thread).
pub(crate) struct Prepared {
    pub(crate) link: SwarmLink,
    pub(crate) name: Option<String>,
    pub(crate) store: FileStore,
    pub(crate) content: SwarmContent,
    pub(crate) state_path: PathBuf,
    pub(crate) files: Vec<PathBuf>,
}

/// A seed ready to be added: its tree built (or loaded from the cache).
pub(crate) struct PreparedSeed {
    pub(crate) name: Option<String>,
    pub(crate) tree: Arc<MerkleTree>,
    pub(crate) store: FileStore,
    pub(crate) addressing: ChunkAddressing,
    /// How the swarm is brought back on restart.
    pub(crate) book: BookEntry,
    /// Files `DELETE …?data=delete` removes (a completed download's; never a user's seed).
    pub(crate) files: Vec<PathBuf>,
}

/// Why a swarm could not be added.
#[derive(Debug)]
pub(crate) enum AddError {
    /// The engine refused it (the message says why).
    Refused(String),
}

pub(crate) enum Cmd {
    AddSeed(
        PreparedSeed,
        oneshot::Sender<Result<Arc<Content>, AddError>>,
    ),
    AddDownload(Prepared, oneshot::Sender<Result<Arc<Content>, AddError>>),
    AddLive(
        crate::cli::serve::live::PreparedLive,
        oneshot::Sender<Result<Arc<Content>, AddError>>,
    ),
    AddLiveSource(
        crate::cli::serve::live::PreparedSource,
        oneshot::Sender<Result<Arc<Content>, AddError>>,
    ),
    /// A chunk for a live source's stream (`None`: the end of its input).
    PushLive(
        HashValue,
        Option<Vec<u8>>,
        oneshot::Sender<Result<(), String>>,
    ),
    Lookup(HashValue, oneshot::Sender<Option<Arc<Content>>>),
    Remove(HashValue, oneshot::Sender<Option<Vec<PathBuf>>>),
    List(Option<HashValue>, oneshot::Sender<Vec<SwarmStatus>>),
    Wait {
        id: HashValue,
        stream: u64,
        what: WaitFor,
        reply: oneshot::Sender<Ready>,
    },
    StreamEnd {
        id: HashValue,
        stream: u64,
    },
    Shutdown(oneshot::Sender<()>),
    /// Nothing to do but look again (an origin answer is waiting).
    Wake,
}

/// The handle everything else uses to talk to the network thread.
#[derive(Clone)]
pub(crate) struct Net {
    pub(super) tx: mpsc::UnboundedSender<Cmd>,
}

impl Net {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).ok()?;
        rx.await.ok()
    }

    pub(crate) async fn add_seed(&self, s: PreparedSeed) -> Result<Arc<Content>, AddError> {
        self.ask(|r| Cmd::AddSeed(s, r))
            .await
            .unwrap_or_else(|| Err(AddError::Refused("shutting down".into())))
    }

    pub(crate) async fn add_download(&self, p: Prepared) -> Result<Arc<Content>, AddError> {
        self.ask(|r| Cmd::AddDownload(p, r))
            .await
            .unwrap_or_else(|| Err(AddError::Refused("shutting down".into())))
    }

    pub(crate) async fn add_live(
        &self,
        p: crate::cli::serve::live::PreparedLive,
    ) -> Result<Arc<Content>, AddError> {
        self.ask(|r| Cmd::AddLive(p, r))
            .await
            .unwrap_or_else(|| Err(AddError::Refused("shutting down".into())))
    }

    pub(crate) async fn add_live_source(
        &self,
        p: crate::cli::serve::live::PreparedSource,
    ) -> Result<Arc<Content>, AddError> {
        self.ask(|r| Cmd::AddLiveSource(p, r))
            .await
            .unwrap_or_else(|| Err(AddError::Refused("shutting down".into())))
    }

    /// Hands a live source's next chunk (`None`: the end of the input) to the engine and
    /// waits until it has it. Blocking: for the source's reading thread.
    pub(crate) fn push_live_blocking(
        &self,
        id: HashValue,
        chunk: Option<Vec<u8>>,
    ) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::PushLive(id, chunk, tx))
            .map_err(|_| "shutting down".to_owned())?;
        rx.blocking_recv().map_err(|_| "shutting down".to_owned())?
    }

    pub(crate) async fn lookup(&self, id: HashValue) -> Option<Arc<Content>> {
        self.ask(|r| Cmd::Lookup(id, r)).await.flatten()
    }

    /// Removes a swarm; `Some(files it downloaded)` if it existed.
    pub(crate) async fn remove(&self, id: HashValue) -> Option<Vec<PathBuf>> {
        self.ask(|r| Cmd::Remove(id, r)).await.flatten()
    }

    pub(crate) async fn list(&self, only: Option<HashValue>) -> Vec<SwarmStatus> {
        self.ask(|r| Cmd::List(only, r)).await.unwrap_or_default()
    }

    pub(crate) async fn wait(&self, id: HashValue, stream: u64, what: WaitFor) -> Ready {
        self.ask(|reply| Cmd::Wait {
            id,
            stream,
            what,
            reply,
        })
        .await
        .unwrap_or(Ready::Gone)
    }

    /// A gateway response ended (finished, failed or its client went away).
    pub(crate) fn stream_end(&self, id: HashValue, stream: u64) {
        let _ = self.tx.send(Cmd::StreamEnd { id, stream });
    }

    /// Closes every channel, saves every resume state and stops the thread.
    pub(crate) async fn shutdown(&self) {
        let _ = self.ask(Cmd::Shutdown).await;
    }
}
