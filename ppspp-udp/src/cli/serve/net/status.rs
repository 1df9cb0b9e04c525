//! What the control API and the page show of each swarm.

use super::*;

/// One peer of a swarm, for the control API.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct PeerStatus {
    pub(crate) address: String,
    pub(crate) connected: bool,
    pub(crate) downloaded: u64,
    pub(crate) uploaded: u64,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) rtt_ms: Option<f64>,
}

/// One HTTP origin of a swarm, for the control API.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct OriginStatus {
    pub(crate) url: String,
    /// Content bytes it delivered that verified.
    pub(crate) content_bytes: u64,
    pub(crate) fetches: u64,
    pub(crate) failures: u64,
    pub(crate) integrity_failures: u64,
    pub(crate) disabled: bool,
    pub(crate) last_error: Option<String>,
}

/// One swarm, for the control API and the page.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct SwarmStatus {
    pub(crate) swarm: String,
    pub(crate) name: Option<String>,
    pub(crate) kind: &'static str,
    pub(crate) link: String,
    pub(crate) gateway: String,
    pub(crate) content_type: String,
    pub(crate) size: Option<u64>,
    pub(crate) verified: u64,
    pub(crate) progress: f64,
    pub(crate) complete: bool,
    pub(crate) download_rate: f64,
    pub(crate) upload_rate: f64,
    pub(crate) downloaded: u64,
    pub(crate) uploaded: u64,
    pub(crate) peers: usize,
    pub(crate) playback_chunk: Option<u64>,
    /// Content bytes verified from HTTP origins, and bytes from peers / all bytes (`None`
    /// before anything was downloaded).
    pub(crate) origin_bytes: u64,
    pub(crate) peer_efficiency: Option<f64>,
    /// The swarm's HTTP origins.
    pub(crate) origins: Vec<OriginStatus>,
    /// The trackers it is announced to.
    pub(crate) trackers: Vec<String>,
    pub(crate) streams: usize,
    pub(crate) error: Option<String>,
    pub(crate) peer_stats: Vec<PeerStatus>,
    /// A live stream's state (`kind: "live"` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) live: Option<crate::cli::serve::live::LiveStatus>,
}

impl State {
    pub(super) fn totals(&self, e: &Entry) -> (u64, u64) {
        let ep = self.driver.endpoint();
        let (mut i, mut o) = (e.closed_in, e.closed_out);
        if let Some(s) = ep.swarm(e.handle) {
            for p in s.peers() {
                if let Some(pr) = ep.peer(p) {
                    let st = pr.stats();
                    i += st.content_in;
                    o += st.content_out;
                }
            }
        }
        (i, o)
    }

    pub(super) fn status(&self, e: &Entry) -> SwarmStatus {
        let ep = self.driver.endpoint();
        let s = ep.swarm(e.handle);
        let len = self.len_of(e);
        let cs = u64::from(e.content.chunk_size);
        let verified = s.map_or(0, |s| {
            let mut bytes = s.verified().count() * cs;
            if let (Some(len), Some(chunks)) = (len, s.chunk_count()) {
                if chunks > 0 && s.verified().contains(chunks - 1) {
                    bytes = bytes.saturating_sub(chunks * cs - len);
                }
            }
            bytes
        });
        let mut peer_stats = Vec::new();
        if let Some(s) = s {
            for p in s.peers() {
                if let Some(pr) = ep.peer(p) {
                    let st = pr.stats();
                    peer_stats.push(PeerStatus {
                        address: pr.remote().to_string(),
                        connected: pr.is_connected(),
                        downloaded: st.content_in,
                        uploaded: st.content_out,
                        bytes_in: st.bytes_in,
                        bytes_out: st.bytes_out,
                        rtt_ms: st.rtt.map(|d| d.as_secs_f64() * 1000.0),
                    });
                }
            }
        }
        let totals = self.totals(e);
        let origins = match &e.kind {
            Kind::Download(_) | Kind::Live(_) => self.origins_of(e).map_or_else(Vec::new, |o| {
                o.status(ep)
                    .into_iter()
                    .map(|(url, st, last_error)| OriginStatus {
                        url,
                        content_bytes: st.content_in,
                        fetches: st.fetches,
                        failures: st.failures,
                        integrity_failures: st.integrity_failures,
                        disabled: st.disabled,
                        last_error,
                    })
                    .collect()
            }),
            Kind::Seed { .. } => Vec::new(),
        };
        let mut link = e.content.link.clone();
        link.size = len;
        link.peers = vec![self.advertised];
        let live = e.content.live().map(|l| {
            let mut link = l.link.clone();
            link.peers = vec![self.advertised];
            (link.to_string(), l.status(s.and_then(|s| s.live_tune_in())))
        });
        SwarmStatus {
            swarm: e.content.swarm_hex(),
            name: e.content.name.clone(),
            kind: match e.kind {
                Kind::Seed { .. } => "seed",
                Kind::Download(_) => "download",
                Kind::Live(_) => "live",
            },
            link: live
                .as_ref()
                .map_or_else(|| link.to_string(), |l| l.0.clone()),
            gateway: e.content.gateway_path(),
            content_type: e.content.content_type(),
            size: len,
            verified,
            progress: match len {
                Some(l) if l > 0 => (verified as f64 / l as f64).min(1.0),
                _ => 0.0,
            },
            complete: s.is_some_and(|s| s.is_complete()),
            download_rate: e.rates.0,
            upload_rate: e.rates.1,
            downloaded: totals.0,
            uploaded: totals.1,
            peers: s.map_or(0, |s| s.connected_peers()),
            playback_chunk: e.lead.and_then(|l| e.streams.get(&l)).map(|s| s.0),
            origin_bytes: s.map_or(0, |s| s.content_from_origins()),
            peer_efficiency: s.and_then(|s| s.peer_efficiency()),
            origins,
            trackers: e.trackers.clone(),
            streams: e.streams.len(),
            error: e.error.clone(),
            peer_stats,
            live: live.map(|l| l.1),
        }
    }
}

impl State {
    /// The HTTP origins of a swarm: a download's, or a live stream's.
    fn origins_of<'a>(&'a self, e: &'a Entry) -> Option<&'a Origins> {
        match &e.kind {
            Kind::Download(d) => d.origins.as_ref(),
            Kind::Live(_) => self.live_origins.get(&e.content.id),
            Kind::Seed { .. } => None,
        }
    }
}
