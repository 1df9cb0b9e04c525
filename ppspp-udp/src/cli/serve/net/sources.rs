//! A download's sources beside its link's peers: trackers and HTTP origins.

use super::*;

impl State {
    /// A tracker client for each of `urls` announcing swarm `id` as `mode`.
    pub(super) fn finder(
        &self,
        urls: &[String],
        id: HashValue,
        mode: ppspp_tracker::PeerMode,
    ) -> Result<Finder, AddError> {
        let t = Trackers::start(urls, &id.to_string(), mode, self.driver.local_addr())
            .map_err(AddError::Refused)?;
        Ok(Finder::new(t))
    }

    /// Hands the engine's origin fetches to the clients and their answers to the engine.
    pub(super) fn pump_origins(&mut self) {
        if self.with_origins.is_empty() {
            return;
        }
        let ids: Vec<HashValue> = self.with_origins.iter().copied().collect();
        for id in ids {
            let Some(Entry {
                kind,
                error,
                handle,
                ..
            }) = self.swarms.get_mut(&id)
            else {
                self.with_origins.remove(&id);
                continue;
            };
            let handle = *handle;
            let (o, link_peers) = match kind {
                Kind::Download(d) => match d.origins.as_mut() {
                    Some(o) => (o, d.link.peers.is_empty() && d.link.trackers.is_empty()),
                    None => {
                        self.with_origins.remove(&id);
                        continue;
                    }
                },
                Kind::Live(l) => match self.live_origins.get_mut(&id) {
                    Some(o) => (o, l.peers.is_empty()),
                    None => {
                        self.with_origins.remove(&id);
                        continue;
                    }
                },
                Kind::Seed { .. } => {
                    self.with_origins.remove(&id);
                    continue;
                }
            };
            let now = self.driver.now();
            for note in o.pump(self.driver.endpoint_mut(), now) {
                eprintln!("ppspp serve: swarm {id}: {note}");
            }
            // Nothing left to download from: said once, on the swarm.
            let stuck = o.all_disabled(self.driver.endpoint())
                && link_peers
                && self
                    .driver
                    .endpoint()
                    .swarm(handle)
                    .is_some_and(|s| s.peers().count() == 0 && !s.is_complete());
            if stuck && error.is_none() {
                let msg = format!("every origin failed: {}", o.errors());
                eprintln!("ppspp serve: swarm {id}: {msg}");
                *error = Some(msg);
            }
        }
    }
}
