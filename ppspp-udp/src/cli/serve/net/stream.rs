//! Gateway responses waiting for verified chunks: what is ready, who waits, waking them.

use super::*;

impl State {
    pub(super) fn verified_run(&self, e: &Entry, from: u64) -> u64 {
        self.driver
            .endpoint()
            .swarm(e.handle)
            .map_or(0, |s| s.verified_run(from))
    }

    pub(super) fn len_of(&self, e: &Entry) -> Option<u64> {
        let s = self.driver.endpoint().swarm(e.handle)?;
        s.content_len().or(e.content.link.size)
    }

    /// The answer for `what` now, if there is one.
    pub(super) fn ready(&self, e: &Entry, what: WaitFor) -> Option<Ready> {
        if let Some(l) = e.content.live() {
            let s = self.driver.endpoint().swarm(e.handle)?;
            return match what {
                WaitFor::Live { from } => l.ready(s.live_tune_in(), from),
                // A live stream has no length and no byte ranges.
                WaitFor::Len | WaitFor::Run { .. } => Some(Ready::Gone),
            };
        }
        let len = self.len_of(e);
        match what {
            WaitFor::Len => len.map(|l| Ready::Run {
                chunks: 0,
                len: Some(l),
            }),
            WaitFor::Run { from, .. } => {
                let chunks = self.verified_run(e, from);
                (chunks > 0).then_some(Ready::Run { chunks, len })
            }
            WaitFor::Live { .. } => Some(Ready::Gone),
        }
    }

    pub(super) fn wait(
        &mut self,
        id: HashValue,
        stream: u64,
        what: WaitFor,
        reply: oneshot::Sender<Ready>,
    ) {
        let Some(e) = self.swarms.get(&id) else {
            let _ = reply.send(Ready::Gone);
            return;
        };
        let handle = e.handle;
        if let WaitFor::Live { from } = what {
            // Counted as a stream; a live swarm's picker goes in order from the newest
            // munro by itself, so no playback window is set.
            let e = self.swarms.get_mut(&id).expect("present");
            e.streams.insert(stream, (from.unwrap_or(0), None));
        } else if let WaitFor::Run { from, bitrate } = what {
            let e = self.swarms.get_mut(&id).expect("present");
            let new = !e.streams.contains_key(&stream);
            e.streams.insert(stream, (from, bitrate));
            // The newest response leads (a seek is a new request): the playback window
            // follows it; an older one moving on does not pull the window back.
            if new && e.lead.is_none_or(|l| stream > l) {
                e.lead = Some(stream);
            }
            if e.lead == Some(stream) {
                crate::cli::serve::playback::set(&mut self.driver, handle, from, bitrate);
            }
        } else if let Some(chunks) = self
            .driver
            .endpoint()
            .swarm(handle)
            .filter(|_| self.len_of(e).is_none())
            .and_then(|s| s.chunk_count())
        {
            // Waiting for the exact length: fetch the last chunk first.
            crate::cli::serve::playback::set(
                &mut self.driver,
                handle,
                chunks.saturating_sub(1),
                None,
            );
        }
        let e = &self.swarms[&id];
        match self.ready(e, what) {
            Some(r) => {
                let _ = reply.send(r);
            }
            None => {
                if let Some(e) = self.swarms.get_mut(&id) {
                    e.waiters.push(Waiter { what, reply });
                }
            }
        }
    }

    pub(super) fn stream_end(&mut self, id: HashValue, stream: u64) {
        let Some(e) = self.swarms.get_mut(&id) else {
            return;
        };
        e.streams.remove(&stream);
        if e.lead == Some(stream) {
            // The newest remaining response leads, or nobody does.
            e.lead = e.streams.keys().next_back().copied();
            let handle = e.handle;
            match e.lead.and_then(|l| e.streams.get(&l).copied()) {
                Some((at, bitrate)) => {
                    crate::cli::serve::playback::set(&mut self.driver, handle, at, bitrate)
                }
                None => crate::cli::serve::playback::clear(&mut self.driver, handle),
            }
        }
    }

    /// Answers the waits of swarm `id` that can be answered now.
    pub(super) fn wake(&mut self, id: HashValue) {
        let Some(e) = self.swarms.get_mut(&id) else {
            return;
        };
        if e.waiters.is_empty() {
            return;
        }
        let waiters = std::mem::take(&mut e.waiters);
        let mut keep = Vec::new();
        for w in waiters {
            if w.reply.is_closed() {
                continue;
            }
            match self.ready(&self.swarms[&id], w.what) {
                Some(r) => {
                    let _ = w.reply.send(r);
                }
                None => keep.push(w),
            }
        }
        if let Some(e) = self.swarms.get_mut(&id) {
            e.waiters = keep;
        }
    }
}
