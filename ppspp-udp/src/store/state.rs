//! The download state sidecar (`OUT.ppspp-state`).
//!
//! Format (all integers little-endian), version 1:
//!
//! ```text
//! "PPSPPST1"                     magic
//! u8 hash code, u8 addressing code, u16 0
//! u32 chunk size
//! u64 content length, or u64::MAX when unknown
//! u8 swarm ID length, the swarm ID
//! u64 number of verified ranges, then (u64 start, u64 end) each, half open
//! u64 number of hashes, then (u64 bin, hash bytes) each
//! 32 bytes: SHA-256 of everything above
//! ```

use std::fs::{self, File};
use std::io::{self, Write};
use std::ops::Range;
use std::path::Path;

use ppspp_core::Bin;
use ppspp_core::hash::{HashAlgorithm, HashValue};
use ppspp_core::wire::ChunkAddressing;

use super::file::io_message;

const MAGIC: &[u8; 8] = b"PPSPPST1";

/// What a download had verified when it was last saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadState {
    /// The swarm ID.
    pub swarm_id: HashValue,
    /// The hash function.
    pub hash: HashAlgorithm,
    /// The chunk addressing method.
    pub addressing: ChunkAddressing,
    /// The chunk size.
    pub chunk_size: u32,
    /// The content length, if known.
    pub size: Option<u64>,
    /// Verified chunks, half-open ranges.
    pub verified: Vec<Range<u64>>,
    /// Verified tree nodes.
    pub hashes: Vec<(Bin, HashValue)>,
}

/// Why a state sidecar could not be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum StateError {
    /// It could not be read or written.
    Io(String),
    /// Its content is damaged or of another version.
    Corrupt(&'static str),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(m) => f.write_str(m),
            Self::Corrupt(why) => write!(f, "damaged state file: {why}"),
        }
    }
}

impl std::error::Error for StateError {}

impl DownloadState {
    /// Bytes of verified content (with the last chunk's real length when the size is known).
    pub fn verified_bytes(&self) -> u64 {
        let cs = u64::from(self.chunk_size);
        self.verified
            .iter()
            .map(|r| {
                let bytes = (r.end - r.start) * cs;
                match self.size {
                    Some(size) if r.end * cs > size => bytes - (r.end * cs - size),
                    _ => bytes,
                }
            })
            .sum()
    }

    /// The encoded sidecar.
    pub fn encode(&self) -> Vec<u8> {
        let hlen = self.swarm_id.len();
        let mut b =
            Vec::with_capacity(64 + self.verified.len() * 16 + self.hashes.len() * (8 + hlen));
        b.extend_from_slice(MAGIC);
        b.push(self.hash.code());
        b.push(self.addressing as u8);
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&self.chunk_size.to_le_bytes());
        b.extend_from_slice(&self.size.unwrap_or(u64::MAX).to_le_bytes());
        b.push(hlen as u8);
        b.extend_from_slice(self.swarm_id.as_bytes());
        b.extend_from_slice(&(self.verified.len() as u64).to_le_bytes());
        for r in &self.verified {
            b.extend_from_slice(&r.start.to_le_bytes());
            b.extend_from_slice(&r.end.to_le_bytes());
        }
        b.extend_from_slice(&(self.hashes.len() as u64).to_le_bytes());
        for (bin, h) in &self.hashes {
            b.extend_from_slice(&bin.raw().to_le_bytes());
            b.extend_from_slice(h.as_bytes());
        }
        let sum = HashAlgorithm::Sha256.digest(&b);
        b.extend_from_slice(sum.as_bytes());
        b
    }

    /// Decodes a sidecar, checking its checksum and bounds.
    pub fn decode(bytes: &[u8]) -> Result<Self, StateError> {
        if bytes.len() < 8 + 32 || &bytes[..8] != MAGIC {
            return Err(StateError::Corrupt(
                "not a ppspp state file (or another version)",
            ));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if HashAlgorithm::Sha256.digest(body).as_bytes() != sum {
            return Err(StateError::Corrupt("checksum mismatch"));
        }
        let mut r = Reader { b: body, at: 8 };
        let hash = HashAlgorithm::from_code(r.u8()?).ok_or(StateError::Corrupt("hash code"))?;
        let addressing =
            ChunkAddressing::from_code(r.u8()?).ok_or(StateError::Corrupt("addressing code"))?;
        r.take(2)?;
        let chunk_size = u32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes"));
        let size = match r.u64()? {
            u64::MAX => None,
            n => Some(n),
        };
        let hlen = usize::from(r.u8()?);
        if hlen != hash.output_len() {
            return Err(StateError::Corrupt("swarm ID length"));
        }
        let swarm_id =
            HashValue::from_slice(r.take(hlen)?).ok_or(StateError::Corrupt("swarm ID"))?;
        let n = r.count(16)?;
        let mut verified = Vec::with_capacity(n);
        for _ in 0..n {
            let (a, b) = (r.u64()?, r.u64()?);
            if a >= b {
                return Err(StateError::Corrupt("empty range"));
            }
            verified.push(a..b);
        }
        let n = r.count(8 + hlen)?;
        let mut hashes = Vec::with_capacity(n);
        for _ in 0..n {
            let bin = Bin::from_raw(r.u64()?);
            let h = HashValue::from_slice(r.take(hlen)?).ok_or(StateError::Corrupt("hash"))?;
            hashes.push((bin, h));
        }
        if r.at != body.len() {
            return Err(StateError::Corrupt("trailing bytes"));
        }
        Ok(Self {
            swarm_id,
            hash,
            addressing,
            chunk_size,
            size,
            verified,
            hashes,
        })
    }

    /// Reads the sidecar at `path`; `Ok(None)` if there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, StateError> {
        match fs::read(path) {
            Ok(b) => Self::decode(&b).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StateError::Io(io_message("reading", path, &e))),
        }
    }

    /// Writes the sidecar atomically: to `PATH.tmp`, synced, then renamed over `path`.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        write_atomically(path, &self.encode()).map_err(StateError::Io)
    }
}

/// Writes `bytes` to `path` through a synced temporary file and a rename, so a crash leaves
/// either the old file or the new one, never a mix.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = super::with_suffix(path, ".tmp");
    let r = (|| {
        let mut f = File::create(&tmp).map_err(|e| io_message("creating", &tmp, &e))?;
        f.write_all(bytes)
            .map_err(|e| io_message("writing", &tmp, &e))?;
        f.sync_all().map_err(|e| io_message("syncing", &tmp, &e))?;
        fs::rename(&tmp, path).map_err(|e| io_message("renaming to", path, &e))
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StateError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or(StateError::Corrupt("truncated"))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, StateError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// A count of items of `item` bytes each, bounded by the bytes left.
    fn count(&mut self, item: usize) -> Result<usize, StateError> {
        let n = self.u64()?;
        let left = (self.b.len() - self.at) as u64;
        if n > left / item as u64 {
            return Err(StateError::Corrupt("count larger than the file"));
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DownloadState {
        DownloadState {
            swarm_id: HashValue::from_hex(&"ab".repeat(20)).unwrap(),
            hash: HashAlgorithm::Sha1,
            addressing: ChunkAddressing::ChunkRange32,
            chunk_size: 1024,
            size: Some(5000),
            verified: vec![0..2, 4..5],
            hashes: vec![(
                Bin::from_raw(0),
                HashValue::from_hex(&"01".repeat(20)).unwrap(),
            )],
        }
    }

    #[test]
    fn round_trip_and_damage() {
        let s = sample();
        let b = s.encode();
        assert_eq!(DownloadState::decode(&b).unwrap(), s);
        assert_eq!(s.verified_bytes(), 2048 + 904);
        for i in [0, 9, 20, b.len() - 1] {
            let mut d = b.clone();
            d[i] ^= 1;
            assert!(DownloadState::decode(&d).is_err(), "byte {i}");
        }
        assert!(DownloadState::decode(&b[..b.len() - 1]).is_err());
    }

    #[test]
    fn save_is_atomic_and_load_tolerates_absence() {
        let d = std::env::temp_dir().join(format!("ppspp-state-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        let p = d.join("x.ppspp-state");
        assert!(DownloadState::load(&p).unwrap().is_none());
        sample().save(&p).unwrap();
        assert_eq!(DownloadState::load(&p).unwrap().unwrap(), sample());
        assert!(!super::super::with_suffix(&p, ".tmp").exists());
        fs::remove_dir_all(d).unwrap();
    }
}
