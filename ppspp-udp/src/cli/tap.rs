//! `ppspp get LINK -o -`: the content on stdout, in order, as it verifies.
//!
//! The download goes to a temporary file as usual (chunks arrive out of order); the network
//! thread publishes how many bytes from the start are verified ([`Tap::publish`]), and a
//! writer thread of its own copies them from the file to stdout. A slow reader (`| mpv -`)
//! therefore never holds up the network thread, and only verified bytes are ever written.
//! The writer's position is the playback position the download picks from.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::store::FileStore;

/// The most bytes copied per read.
const PIECE: u64 = 256 * 1024;

#[derive(Debug, Default)]
struct Shared {
    /// Bytes from the start verified (and readable from the store).
    ready: u64,
    /// Bytes written to stdout.
    written: u64,
    /// The content length, once the download is complete (the writer stops there).
    end: Option<u64>,
    /// The download stopped without completing: the writer stops.
    abort: bool,
    /// Why writing failed (stdout closed, ...).
    error: Option<String>,
}

/// The link between the network thread and the stdout writer.
#[derive(Debug)]
pub struct Tap {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Tap {
    /// Starts the writer on `store`, copying to `out`.
    pub fn start(store: FileStore, out: impl Write + Send + 'static) -> Self {
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("ppspp-stdout".into())
            .spawn(move || writer(&s, &store, out))
            .ok();
        Self { shared, thread }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next byte the reader needs (the playback position).
    pub fn written(&self) -> u64 {
        self.lock().written
    }

    /// `ready` bytes from the start are verified.
    pub fn publish(&self, ready: u64) {
        let mut g = self.lock();
        if ready > g.ready {
            g.ready = ready;
            self.shared.1.notify_all();
        }
    }

    /// Why writing failed, if it did.
    pub fn error(&self) -> Option<String> {
        self.lock().error.clone()
    }

    /// The download completed with `len` bytes: waits until the writer wrote them all.
    pub fn finish(mut self, len: u64) -> Result<(), String> {
        {
            let mut g = self.lock();
            g.ready = g.ready.max(len);
            g.end = Some(len);
            self.shared.1.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        match self.error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.lock().abort = true;
        self.shared.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn writer(shared: &(Mutex<Shared>, Condvar), store: &FileStore, mut out: impl Write) {
    let (m, cv) = shared;
    let mut buf = Vec::new();
    loop {
        let (pos, n) = {
            let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if g.end.is_some_and(|e| g.written >= e) || g.abort && g.ready <= g.written {
                    let _ = out.flush();
                    return;
                }
                if g.ready > g.written {
                    break;
                }
                g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            (g.written, (g.ready - g.written).min(PIECE))
        };
        buf.resize(n as usize, 0);
        let r = store
            .read_at(pos, &mut buf)
            .map_err(|e| format!("reading the downloaded data: {e}"))
            .and_then(|()| {
                out.write_all(&buf)
                    .and_then(|()| out.flush())
                    .map_err(|e| format!("writing to stdout: {e}"))
            });
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        match r {
            Ok(()) => g.written = pos + n,
            Err(e) => {
                g.error = Some(e);
                return;
            }
        }
    }
}
