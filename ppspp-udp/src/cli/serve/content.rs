//! A swarm's content as the gateway sees it: how to name it and how to read verified bytes.

use ppspp_core::hash::HashValue;

use crate::link::SwarmLink;
use crate::store::FileStore;

/// Where the bytes are.
pub(crate) enum Source {
    /// A seeder's file or a download's file (chunks there are verified; the gateway reads
    /// only chunks the engine reported verified).
    File(FileStore),
    /// A live stream's newest chunks in memory (only verified chunks are stored there).
    Live(super::live::LiveContent),
}

/// A swarm's content, shared between the network thread and the gateway.
pub(crate) struct Content {
    pub(crate) id: HashValue,
    pub(crate) name: Option<String>,
    pub(crate) chunk_size: u32,
    /// The link without peers (the network thread adds the address to advertise).
    pub(crate) link: SwarmLink,
    pub(crate) source: Source,
}

impl Content {
    /// Reads `len` bytes at `offset`. Blocking (disk): call from the blocking pool.
    pub(crate) fn read(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0; len];
        match &self.source {
            Source::File(store) => store.read_at(offset, &mut buf)?,
            Source::Live(_) => {
                return Err(std::io::Error::other("a live stream is read by chunks"));
            }
        }
        Ok(buf)
    }

    /// The swarm ID in hex: the root hash, or a live stream's public key.
    pub(crate) fn swarm_hex(&self) -> String {
        match &self.source {
            Source::Live(l) => l.link.swarm_id.to_string(),
            Source::File(_) => self.id.to_string(),
        }
    }

    /// The live stream, for a live swarm.
    pub(crate) fn live(&self) -> Option<&super::live::LiveContent> {
        match &self.source {
            Source::Live(l) => Some(l),
            Source::File(_) => None,
        }
    }

    /// The gateway path: `/<hex>/<name>` (percent-encoded) or `/<hex>`.
    pub(crate) fn gateway_path(&self) -> String {
        match &self.name {
            Some(n) => format!("/{}/{}", self.swarm_hex(), encode_segment(n)),
            None => format!("/{}", self.swarm_hex()),
        }
    }

    /// The content type from the name's extension.
    pub(crate) fn content_type(&self) -> String {
        content_type(self.name.as_deref())
    }
}

/// The content type of a name, from its extension (`application/octet-stream` if unknown).
pub(crate) fn content_type(name: Option<&str>) -> String {
    name.and_then(|n| mime_guess::from_path(n).first())
        .map_or_else(|| "application/octet-stream".to_owned(), |m| m.to_string())
}

/// A path segment with everything but unreserved characters percent-encoded.
pub(crate) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
