//! The `ppspp` program's tracker client: `--tracker URL` on `seed`, `get` and `live`.
//!
//! One [`TrackerClient`] per tracker and swarm. Each runs [`ppspp_tracker::Announcer`] on a
//! thread of its own with a small tokio runtime and an HTTP client, so that a slow or dead
//! tracker never holds up the network thread: the network thread only sends progress
//! ([`TrackerClient::progress`]) and takes the peers learnt ([`TrackerClient::new_peers`]),
//! both without blocking. Dropping the client sends LEAVE (waiting at most
//! [`LEAVE_WAIT`] for it).

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use ppspp_core::membership::{Membership, TrackerKey};
use ppspp_tracker::proto::MEDIA_TYPE;
use ppspp_tracker::{Announcer, AnnouncerConfig, PeerMode, Progress, Request, Response};
use tokio::sync::mpsc as tmpsc;

/// How long one HTTP request to a tracker may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long dropping a client waits for its LEAVE to be answered.
pub const LEAVE_WAIT: Duration = Duration::from_secs(3);

/// Checks a tracker URL: `http://` or `https://` with a host.
pub fn check_url(s: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("bad tracker URL {s:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "bad tracker URL {s:?}: expected http://HOST[:PORT]/PATH"
        ));
    }
    Ok(s.to_owned())
}

/// Membership certificates (docs/membership.md) on `seed` and `get`.
#[derive(Debug, Clone, clap::Args)]
pub struct MembershipArgs {
    /// The tracker's certificate key (`ppspp tracker --ca-key` prints it): 64 hex digits, or
    /// a file holding them. Membership certificates from peers are checked against it, and
    /// the trackers' certificates for this peer are sent to peers.
    #[arg(long, value_name = "FILE_OR_HEX", value_parser = tracker_key)]
    pub tracker_key: Option<TrackerKey>,
    /// A private swarm: talk only to peers that show a valid membership certificate for their
    /// own address, and take no bare PEX addresses (needs --tracker-key).
    #[arg(long, requires = "tracker_key")]
    pub private: bool,
}

impl MembershipArgs {
    /// The swarm's membership policy, if a tracker key was given.
    pub fn policy(&self) -> Option<Membership> {
        self.tracker_key.map(|k| {
            let mut m = Membership::new(k);
            m.require(self.private);
            m
        })
    }
}

/// Parses `--tracker-key`: 64 hex digits, or a file holding them.
pub fn tracker_key(s: &str) -> Result<TrackerKey, String> {
    if let Some(k) = TrackerKey::from_hex(s) {
        return Ok(k);
    }
    let text = std::fs::read_to_string(s)
        .map_err(|e| format!("{s:?} is neither 64 hex digits nor a readable file: {e}"))?;
    TrackerKey::from_hex(text.trim())
        .ok_or_else(|| format!("{s}: expected 64 hex digits (an Ed25519 public key)"))
}

enum Cmd {
    Progress(Progress),
    WantPeers,
    Leave,
}

/// A running tracker client for one swarm. See the module docs.
#[derive(Debug)]
pub struct TrackerClient {
    url: String,
    cmd: tmpsc::UnboundedSender<Cmd>,
    peers: mpsc::Receiver<Vec<SocketAddr>>,
    certs: mpsc::Receiver<Vec<u8>>,
    done: mpsc::Receiver<()>,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Progress(_) => "Progress",
            Self::WantPeers => "WantPeers",
            Self::Leave => "Leave",
        })
    }
}

/// A random peer ID: 16 hex digits (PPSTP leaves the form to the peer).
fn peer_id() -> String {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // Without OS randomness, the process ID and time still tell peers apart.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        b = (t ^ u64::from(std::process::id())).to_be_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl TrackerClient {
    /// Starts announcing `swarm` to the tracker at `url` as `mode`, advertising `advertise`
    /// (a wildcard IP lets the tracker take the address the requests come from).
    pub fn start(
        url: &str,
        swarm: &str,
        mode: PeerMode,
        advertise: SocketAddr,
        cfg: AnnouncerConfig,
    ) -> Result<Self, String> {
        let url = check_url(url)?;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| format!("tracker client: {e}"))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tracker client: {e}"))?;
        let announcer = Announcer::new(cfg, peer_id(), swarm.to_owned(), mode, Some(advertise));
        let (cmd_tx, cmd_rx) = tmpsc::unbounded_channel();
        let (peers_tx, peers_rx) = mpsc::channel();
        let (certs_tx, certs_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let thread_url = url.clone();
        let out = Found {
            swarm: swarm.to_owned(),
            peers: peers_tx,
            certs: certs_tx,
        };
        std::thread::Builder::new()
            .name("ppspp-tracker".into())
            .spawn(move || {
                rt.block_on(announce_loop(thread_url, http, announcer, cmd_rx, out));
                let _ = done_tx.send(());
            })
            .map_err(|e| format!("tracker client: {e}"))?;
        Ok(Self {
            url,
            cmd: cmd_tx,
            peers: peers_rx,
            certs: certs_rx,
            done: done_rx,
        })
    }

    /// The tracker's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The peers learnt since the last call (never blocks).
    pub fn new_peers(&self) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        while let Ok(batch) = self.peers.try_recv() {
            for p in batch {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }

    /// The newest membership certificate the tracker issued for this peer since the last call
    /// (never blocks).
    pub fn new_cert(&self) -> Option<Vec<u8>> {
        self.certs.try_iter().last()
    }

    /// What the next STAT_REPORT says (never blocks).
    pub fn progress(&self, p: Progress) {
        let _ = self.cmd.send(Cmd::Progress(p));
    }

    /// Asks the tracker for more peers soon (never blocks).
    pub fn want_peers(&self) {
        let _ = self.cmd.send(Cmd::WantPeers);
    }
}

impl Drop for TrackerClient {
    fn drop(&mut self) {
        if self.cmd.send(Cmd::Leave).is_ok() {
            let _ = self.done.recv_timeout(LEAVE_WAIT);
        }
    }
}

async fn send(http: &reqwest::Client, url: &str, req: &Request) -> Result<Response, String> {
    let resp = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, MEDIA_TYPE)
        .header(reqwest::header::ACCEPT, MEDIA_TYPE)
        .body(req.encode())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    Response::decode(&body).map_err(|e| format!("HTTP {status}: {e}"))
}

/// Where the announce loop puts what it learns.
struct Found {
    /// Our swarm ID, as announced.
    swarm: String,
    peers: mpsc::Sender<Vec<SocketAddr>>,
    certs: mpsc::Sender<Vec<u8>>,
}

async fn announce_loop(
    url: String,
    http: reqwest::Client,
    mut ann: Announcer,
    mut cmds: tmpsc::UnboundedReceiver<Cmd>,
    out: Found,
) {
    let start = tokio::time::Instant::now();
    loop {
        while let Some(req) = ann.poll(start.elapsed()) {
            match send(&http, &url, &req).await {
                Ok(resp) => {
                    if resp.error_code != ppspp_tracker::ErrorCode::NoError {
                        tracing::info!(%url, code = %resp.error_code, "tracker refused");
                    }
                    let found = ann.on_response(start.elapsed(), &resp);
                    tracing::info!(%url, peers = found.len(), "tracker answered");
                    if !found.is_empty() && out.peers.send(found).is_err() {
                        return;
                    }
                    // A certificate for this peer (a tracker that is a certification
                    // authority): the engine sends it to peers (docs/membership.md).
                    let cert = resp
                        .swarm_result
                        .iter()
                        .filter(|r| r.swarm_id.eq_ignore_ascii_case(&out.swarm))
                        .find_map(|r| r.membership_cert.clone());
                    if let Some(c) = cert {
                        if out.certs.send(c).is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    ann.on_failure(start.elapsed());
                    if ann.failures() == 1 {
                        eprintln!("warning: tracker {url}: {e} (retrying)");
                    }
                    tracing::info!(%url, error = %e, "tracker request failed");
                }
            }
        }
        let wait = ann.next_at().saturating_sub(start.elapsed());
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            cmd = cmds.recv() => {
                let now = start.elapsed();
                match cmd {
                    Some(Cmd::Progress(p)) => ann.set_progress(now, p),
                    Some(Cmd::WantPeers) => ann.want_peers(now),
                    Some(Cmd::Leave) | None => {
                        if let Some(bye) = ann.leave() {
                            let _ = tokio::time::timeout(LEAVE_WAIT, send(&http, &url, &bye)).await;
                        }
                        return;
                    }
                }
            }
        }
    }
}

/// Clients for every tracker URL of one swarm, handled as one.
#[derive(Debug, Default)]
pub struct Trackers {
    clients: Vec<TrackerClient>,
    last_progress: Option<Progress>,
}

impl Trackers {
    /// Starts a client per URL (URLs repeated are started once) for `swarm` (the swarm ID
    /// in hex).
    pub fn start(
        urls: &[String],
        swarm: &str,
        mode: PeerMode,
        advertise: SocketAddr,
    ) -> Result<Self, String> {
        let mut clients: Vec<TrackerClient> = Vec::new();
        for u in urls {
            if clients.iter().any(|c| c.url() == u) {
                continue;
            }
            clients.push(TrackerClient::start(
                u,
                swarm,
                mode,
                advertise,
                AnnouncerConfig::default(),
            )?);
        }
        Ok(Self {
            clients,
            last_progress: None,
        })
    }

    /// Whether there is no tracker.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// The peers any tracker returned since the last call.
    pub fn new_peers(&self) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for c in &self.clients {
            for p in c.new_peers() {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }

    /// The newest membership certificate any tracker issued since the last call.
    pub fn new_cert(&self) -> Option<Vec<u8>> {
        // Every client is asked, so none keeps a stale one queued.
        let mut newest = None;
        for c in &self.clients {
            if let Some(cert) = c.new_cert() {
                newest = Some(cert);
            }
        }
        newest
    }

    /// Reports progress to every tracker (only when it changed).
    pub fn progress(&mut self, p: Progress) {
        if self.last_progress != Some(p) {
            self.last_progress = Some(p);
            for c in &self.clients {
                c.progress(p);
            }
        }
    }

    /// Asks every tracker for more peers.
    pub fn want_peers(&self) {
        for c in &self.clients {
            c.want_peers();
        }
    }
}
