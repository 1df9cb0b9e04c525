//! The origins of a download (`--origin URL`, `origin=` in links): the engine's fetches handed
//! to the HTTP client ([`crate::origin`]), its answers handed back, and what went wrong said
//! once per origin and kind of trouble.

use std::collections::BTreeMap;

use ppspp_core::time::Instant;
use ppspp_core::{Endpoint, Event, OriginHandle, OriginStats, SwarmHandle};

use crate::origin::{ClientConfig, OriginClient, OriginUrls};

/// A download's origins and their client.
pub struct Origins {
    client: OriginClient,
    urls: BTreeMap<OriginHandle, OriginUrls>,
    /// The last failure message of each origin (for the timeout message and the notes).
    last_error: BTreeMap<OriginHandle, String>,
}

impl std::fmt::Debug for Origins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Origins")
            .field("origins", &self.urls.len())
            .finish_non_exhaustive()
    }
}

impl Origins {
    /// Adds `urls` (checked already) as origins of `swarm` in `ep`; `None` when there are
    /// none. `wake` is called from the client's thread when an answer is ready: it must make
    /// the network loop call [`Origins::pump`] soon.
    pub fn start(
        ep: &mut Endpoint,
        now: Instant,
        swarm: SwarmHandle,
        urls: &[OriginUrls],
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Result<Option<Self>, String> {
        if urls.is_empty() {
            return Ok(None);
        }
        let client = OriginClient::new(ClientConfig::default(), wake)?;
        let mut map = BTreeMap::new();
        for u in urls {
            let h = ep
                .add_origin(now, swarm)
                .map_err(|e| format!("cannot add origin {}: {e}", u.content))?;
            map.insert(h, u.clone());
        }
        Ok(Some(Self {
            client,
            urls: map,
            last_error: BTreeMap::new(),
        }))
    }

    /// Hands the engine's new fetches to the client and its answers to the engine; returns
    /// lines worth telling the user (a failure kind not seen before for that origin).
    pub fn pump(&mut self, ep: &mut Endpoint, now: Instant) -> Vec<String> {
        let mut notes = Vec::new();
        // Answers first: they free the engine to ask for more.
        while let Some(c) = self.client.try_recv() {
            match c.result {
                Ok(body) => ep.origin_data(now, c.id, &body),
                Err(e) => {
                    tracing::info!(origin = %e.message, "origin fetch failed");
                    let new_kind = self
                        .last_error
                        .get(&c.origin)
                        .is_none_or(|m| kind(m) != kind(&e.message));
                    if new_kind {
                        notes.push(format!("origin: {}", e.message));
                    }
                    self.last_error.insert(c.origin, e.message);
                    ep.origin_failed(now, c.id, e.failure);
                }
            }
        }
        while let Some(f) = ep.poll_origin_fetch() {
            match self.urls.get(&f.origin) {
                Some(u) => self.client.submit(u, &f),
                None => {
                    ep.origin_failed(now, f.id, ppspp_core::OriginFailure::Unreachable);
                }
            }
        }
        notes
    }

    /// A line for an origin event (`None` for other events).
    pub fn describe(&self, ev: &Event) -> Option<String> {
        match ev {
            Event::OriginIntegrityFailure { origin, chunk, .. } => {
                let what = match chunk {
                    Some(c) => format!("chunk {c}"),
                    None => "tree hashes (its .mhash sidecar)".to_string(),
                };
                Some(format!(
                    "origin {} served {what} that failed verification; not stored",
                    self.url(*origin)
                ))
            }
            Event::OriginDisabled { origin, .. } => Some(format!(
                "origin {} disabled{}",
                self.url(*origin),
                self.last_error
                    .get(origin)
                    .map_or(String::new(), |e| format!(" (last error: {e})"))
            )),
            _ => None,
        }
    }

    /// The content URL of `origin`.
    pub fn url(&self, origin: OriginHandle) -> String {
        self.urls
            .get(&origin)
            .map_or_else(|| "?".into(), |u| u.content.to_string())
    }

    /// Every origin's last error, one clause each (for the timeout message).
    pub fn errors(&self) -> String {
        let v: Vec<String> = self.last_error.values().cloned().collect();
        v.join("; ")
    }

    /// Whether every origin is disabled (none will be asked for anything again).
    pub fn all_disabled(&self, ep: &Endpoint) -> bool {
        self.urls
            .keys()
            .all(|h| ep.origin_stats(*h).is_none_or(|s| s.disabled))
    }

    /// Each origin's URL and counters.
    pub fn stats(&self, ep: &Endpoint) -> Vec<(String, OriginStats)> {
        self.urls
            .iter()
            .filter_map(|(h, u)| Some((u.content.to_string(), ep.origin_stats(*h)?)))
            .collect()
    }

    /// Each origin's URL, counters and last failure message.
    pub fn status(&self, ep: &Endpoint) -> Vec<(String, OriginStats, Option<String>)> {
        self.urls
            .iter()
            .filter_map(|(h, u)| {
                Some((
                    u.content.to_string(),
                    ep.origin_stats(*h)?,
                    self.last_error.get(h).cloned(),
                ))
            })
            .collect()
    }

    /// Removes every origin from `ep` (the swarm is going away or no longer needs them).
    pub fn remove_all(&self, ep: &mut Endpoint, now: Instant) {
        for h in self.urls.keys() {
            ep.remove_origin(now, *h);
        }
    }

    /// Answers that ignored `Range` (counted fallbacks).
    pub fn range_ignored(&self) -> u64 {
        self.client
            .stats()
            .range_ignored
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The kind of a failure message (its text after the URL), to say each kind once.
fn kind(msg: &str) -> &str {
    msg.split_once(": ").map_or(msg, |(_, k)| k)
}
