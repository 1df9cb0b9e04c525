//! Live streaming content integrity (RFC 7574 §6): swarm IDs that are public keys, signatures
//! over munros (Unified Merkle Tree, §6.1.2) or over every chunk (Sign All, §6.1.1), the
//! injector's growing tree and a receiver's verifier.
//!
//! - [`LiveSwarmId`]: the swarm ID of a live stream, a DNSSEC algorithm number and public key
//!   (§6.1, RFC 4034 DNSKEY format without Base64).
//! - [`Signer`] and [`Verifier`]: the signature algorithm, behind traits so that a user can
//!   bring a hardware key or another library. With the `live-crypto` feature (on by default),
//!   [`KeyPair`] signs with ECDSA P-256 / P-384 (RFC 6605) or Ed25519 (RFC 8080), and
//!   [`verifier`] checks those and RSA/SHA-1 and RSA/SHA-256 (RFC 3110, RFC 5702).
//! - [`LiveSource`]: the injector. It appends chunks, closes a munro every
//!   `nchunks_per_sig` chunks, signs it and serves its hashes; it forgets munros that fall out
//!   of its discard window.
//! - [`LiveReceiver`]: a peer's view. It checks signed munros (signature, shape, age), then
//!   verifies chunks against them with the uncle hashes of INTEGRITY messages, and forgets
//!   what falls out of its window, so memory stays bounded on an endless stream.
//! - [`sign_chunk`] / [`verify_signed_chunk`]: Sign All.
//!
//! What is signed (§6.1.1, §6.1.2.2): the on-the-wire chunk specification (under the swarm's
//! chunk addressing method), the signing time as a 64-bit NTP timestamp, then the munro's hash
//! (Unified Merkle Tree) or the chunk's bytes (Sign All).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use bytes::Bytes;

use crate::bin::Bin;
use crate::hash::HashValue;
use crate::wire::{ChunkAddressing, ChunkSpec, Integrity, SignatureAlgorithm, SignedIntegrity};

#[cfg(feature = "live-crypto")]
mod crypto;
mod log;
mod receiver;
mod source;
#[cfg(test)]
mod tests;

#[cfg(feature = "live-crypto")]
pub use crypto::{KeyPair, verifier};
pub use log::{MUNRO_LOG_HEADER_LEN, MunroLogError, MunroLogHeader};
pub use receiver::{LiveReceiver, MunroStatus};
pub use source::LiveSource;

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A 64-bit NTP timestamp (RFC 5905: seconds since 1900 in the high 32 bits, the fraction of a
/// second in the low 32) for a time given in microseconds since the Unix epoch.
pub const fn ntp_from_unix_micros(micros: u64) -> u64 {
    let secs = micros / 1_000_000 + NTP_UNIX_OFFSET;
    let frac = ((micros % 1_000_000) << 32) / 1_000_000;
    (secs << 32) | frac
}

/// Microseconds since the Unix epoch for a 64-bit NTP timestamp (0 for times before 1970).
pub const fn unix_micros_from_ntp(ntp: u64) -> u64 {
    let secs = (ntp >> 32).saturating_sub(NTP_UNIX_OFFSET);
    let frac = ((ntp & 0xFFFF_FFFF) * 1_000_000) >> 32;
    secs * 1_000_000 + frac
}

/// Why live content was rejected or could not be produced.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LiveError {
    /// A swarm ID shorter than its algorithm byte plus a key.
    BadSwarmId,
    /// A signature algorithm this build cannot handle.
    UnsupportedAlgorithm(SignatureAlgorithm),
    /// A public key that does not parse under its algorithm.
    BadPublicKey,
    /// A secret key that does not parse under its algorithm.
    BadSecretKey,
    /// `nchunks_per_sig` is not a power of two of at least 2 (RFC 7574 §6.1.2.1).
    BadChunksPerSignature(u64),
    /// A chunk of 0 bytes or more than the chunk size.
    BadChunkLength {
        /// The chunk.
        chunk: u64,
        /// Its length.
        len: usize,
    },
    /// A signed node that is not a munro: not `nchunks_per_sig` chunks wide and aligned.
    NotAMunro(Bin),
    /// A signature of the wrong length.
    BadSignatureLength {
        /// Its length.
        len: usize,
        /// The algorithm's.
        expected: usize,
    },
    /// The signature does not verify under the swarm's public key.
    BadSignature(Bin),
    /// The signature's timestamp is older than the receiver accepts (§6.1.2.4: discarded).
    TooOld(Bin),
    /// The munro lies before the receiver's discard window.
    Discarded(Bin),
    /// The chunk specification cannot be written under the addressing method.
    Unaddressable(Bin),
    /// A hash of the wrong length.
    BadHashLength(usize),
    /// The chunk failed verification (see the inner error).
    Verify(crate::merkle::VerifyError),
}

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadSwarmId => f.write_str("live swarm ID too short (algorithm byte and key)"),
            Self::UnsupportedAlgorithm(a) => write!(f, "unsupported signature algorithm {}", a.0),
            Self::BadPublicKey => f.write_str("public key does not parse"),
            Self::BadSecretKey => f.write_str("secret key does not parse"),
            Self::BadChunksPerSignature(n) => {
                write!(f, "chunks per signature {n} is not a power of two >= 2")
            }
            Self::BadChunkLength { chunk, len } => write!(f, "chunk {chunk} has {len} bytes"),
            Self::NotAMunro(b) => write!(f, "bin {b} is not a munro"),
            Self::BadSignatureLength { len, expected } => {
                write!(f, "signature of {len} bytes where {expected} are expected")
            }
            Self::BadSignature(b) => write!(f, "bad signature on bin {b}"),
            Self::TooOld(b) => write!(f, "signature on bin {b} is too old"),
            Self::Discarded(b) => write!(f, "bin {b} is before the discard window"),
            Self::Unaddressable(b) => write!(f, "bin {b} cannot be addressed"),
            Self::BadHashLength(n) => write!(f, "hash of {n} bytes"),
            Self::Verify(e) => write!(f, "verification failed: {e}"),
        }
    }
}

impl core::error::Error for LiveError {}

impl From<crate::merkle::VerifyError> for LiveError {
    fn from(e: crate::merkle::VerifyError) -> Self {
        Self::Verify(e)
    }
}

/// The swarm ID of a live stream (RFC 7574 §6.1): a DNSSEC algorithm number followed by the
/// public key in its DNSKEY encoding.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LiveSwarmId {
    algorithm: SignatureAlgorithm,
    key: Vec<u8>,
}

impl LiveSwarmId {
    /// The swarm ID for `key` (DNSKEY public key field) under `algorithm`.
    pub fn new(algorithm: SignatureAlgorithm, key: Vec<u8>) -> Self {
        Self { algorithm, key }
    }

    /// Parses the wire form (algorithm byte, then the key). The key is not checked here;
    /// [`verifier`] does that.
    pub fn from_bytes(b: &[u8]) -> Result<Self, LiveError> {
        match b {
            [alg, key @ ..] if !key.is_empty() => Ok(Self {
                algorithm: SignatureAlgorithm(*alg),
                key: key.to_vec(),
            }),
            _ => Err(LiveError::BadSwarmId),
        }
    }

    /// Parses the hex of the wire form.
    pub fn from_hex(hex: &str) -> Result<Self, LiveError> {
        let out = base16ct::mixed::decode_vec(hex).map_err(|_| LiveError::BadSwarmId)?;
        Self::from_bytes(&out)
    }

    /// The wire form: the algorithm byte, then the key.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(1 + self.key.len());
        v.push(self.algorithm.0);
        v.extend_from_slice(&self.key);
        v
    }

    /// The signature algorithm.
    pub const fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// The public key (DNSKEY public key field).
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

impl fmt::Debug for LiveSwarmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LiveSwarmId({self})")
    }
}

/// Lowercase hex of the wire form.
impl fmt::Display for LiveSwarmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}", self.algorithm.0)?;
        for b in &self.key {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Signs live content: the injector's private key.
pub trait Signer: fmt::Debug + Send + Sync {
    /// The swarm ID (the public key) peers verify against.
    fn swarm_id(&self) -> LiveSwarmId;
    /// The length of every signature (what SIGNED_INTEGRITY messages carry, §8.9).
    fn signature_len(&self) -> usize;
    /// Signs `message`. Must be deterministic or use randomness the caller provided: the core
    /// has no entropy source.
    fn sign(&self, message: &[u8]) -> Vec<u8>;
}

/// Checks signatures of live content under a swarm's public key.
pub trait Verifier: fmt::Debug + Send + Sync {
    /// The length of every signature.
    fn signature_len(&self) -> usize;
    /// Whether `signature` is a valid signature of `message`.
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool;
}

/// What a munro signature covers and how its timestamp is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SignedForm {
    /// RFC 7574 §6.1.2.2: the munro's chunk specification, a 64-bit NTP timestamp and the
    /// munro hash.
    #[default]
    Rfc7574,
    /// What libswift (the reference implementation) signs and accepts: the munro hash alone,
    /// with the SIGNED_INTEGRITY timestamp in microseconds since the Unix epoch. A libswift
    /// peer reads an NTP timestamp as a date in the past and never tunes in, so a swarm with
    /// libswift peers must use this form.
    Libswift,
}

/// The parameters a live swarm's peers share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveParams {
    /// Chunk size in bytes (chunks are 1..=chunk_size bytes).
    pub chunk_size: u32,
    /// Chunks per signed munro, a power of two >= 2 (RFC 7574 §6.1.2.1).
    pub nchunks_per_sig: u64,
    /// The chunk addressing method (the signed bytes contain a chunk specification).
    pub addressing: ChunkAddressing,
    /// The Merkle hash function.
    pub hash: crate::hash::HashAlgorithm,
    /// What munro signatures cover (RFC 7574's form, or libswift's).
    pub form: SignedForm,
}

impl LiveParams {
    /// The munro layer: log2 of `nchunks_per_sig`.
    pub(crate) fn munro_layer(&self) -> Result<u32, LiveError> {
        let n = self.nchunks_per_sig;
        if n < 2 || !n.is_power_of_two() {
            return Err(LiveError::BadChunksPerSignature(n));
        }
        Ok(n.trailing_zeros())
    }

    /// The SIGNED_INTEGRITY timestamp for a signature made at `unix_micros` (µs since the
    /// Unix epoch).
    pub const fn timestamp_at(&self, unix_micros: u64) -> u64 {
        match self.form {
            SignedForm::Rfc7574 => ntp_from_unix_micros(unix_micros),
            SignedForm::Libswift => unix_micros,
        }
    }

    /// The time a SIGNED_INTEGRITY timestamp names, in µs since the Unix epoch.
    pub const fn unix_micros_of(&self, timestamp: u64) -> u64 {
        match self.form {
            SignedForm::Rfc7574 => unix_micros_from_ntp(timestamp),
            // libswift writes a signed 64-bit count; a negative one is before the epoch.
            SignedForm::Libswift if (timestamp as i64) < 0 => 0,
            SignedForm::Libswift => timestamp,
        }
    }

    /// The bytes a munro signature covers (§6.1.2.2, or libswift's form).
    pub fn munro_message(
        &self,
        bin: Bin,
        timestamp: u64,
        hash: &HashValue,
    ) -> Result<Vec<u8>, LiveError> {
        Ok(match self.form {
            SignedForm::Rfc7574 => {
                munro_signed_bytes(self.addressing, self.spec(bin)?, timestamp, hash)
            }
            SignedForm::Libswift => hash.as_bytes().to_vec(),
        })
    }

    /// The munro covering `chunk`.
    pub fn munro_of(&self, chunk: u64) -> Option<Bin> {
        let layer = self.munro_layer().ok()?;
        Bin::leaf(chunk)?.ancestor_at(layer)
    }

    /// The chunk specification naming `bin`'s chunks under the addressing method.
    pub fn spec(&self, bin: Bin) -> Result<ChunkSpec, LiveError> {
        let (first, last) = (bin.first_chunk(), bin.last_chunk());
        let (Some(first), Some(last)) = (first, last) else {
            return Err(LiveError::Unaddressable(bin));
        };
        ChunkSpec::chunk_range(self.addressing, first, last, u64::from(self.chunk_size))
            .ok_or(LiveError::Unaddressable(bin))
    }
}

/// The bytes a munro signature covers (§6.1.2.2): the munro's chunk specification on the
/// wire, the NTP timestamp, the munro hash.
pub fn munro_signed_bytes(
    addressing: ChunkAddressing,
    spec: ChunkSpec,
    timestamp: u64,
    hash: &HashValue,
) -> Vec<u8> {
    signed_bytes(addressing, spec, timestamp, hash.as_bytes())
}

/// The bytes a Sign All signature covers (§6.1.1): the chunk's specification on the wire, the
/// NTP timestamp, the chunk.
pub fn chunk_signed_bytes(
    addressing: ChunkAddressing,
    spec: ChunkSpec,
    timestamp: u64,
    data: &[u8],
) -> Vec<u8> {
    signed_bytes(addressing, spec, timestamp, data)
}

fn signed_bytes(addressing: ChunkAddressing, spec: ChunkSpec, ts: u64, tail: &[u8]) -> Vec<u8> {
    let cs = addressing.spec_len();
    let mut v = alloc::vec![0u8; cs + 8 + tail.len()];
    // A spec that does not fit is signed as zeros: it can then never verify against a real
    // one (callers build specs with `ChunkSpec::chunk_range`, which checks the fit).
    let _ = spec.write(addressing, &mut v[..cs]);
    v[cs..cs + 8].copy_from_slice(&ts.to_be_bytes());
    v[cs + 8..].copy_from_slice(tail);
    v
}

/// A munro hash with the injector's signature (§6.1.2.1): what a peer sends as an INTEGRITY
/// and a SIGNED_INTEGRITY message before the first chunk under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedMunro {
    /// The munro.
    pub bin: Bin,
    /// Its hash.
    pub hash: HashValue,
    /// When it was signed (64-bit NTP timestamp).
    pub timestamp: u64,
    /// The signature.
    pub signature: Bytes,
}

impl SignedMunro {
    /// The signed munro carried by an INTEGRITY message and the SIGNED_INTEGRITY message after
    /// it (both must name the same chunks, which must form one bin). The signature is not
    /// checked here: [`LiveReceiver::add_signed_munro`] does that.
    pub fn from_messages(
        params: &LiveParams,
        integrity: &Integrity,
        signed: &SignedIntegrity,
    ) -> Result<Self, LiveError> {
        let (first, last) = signed
            .spec
            .to_chunks(u64::from(params.chunk_size))
            .ok_or(LiveError::NotAMunro(Bin::NONE))?;
        let bin = Bin::from_chunk_range(first, last).ok_or(LiveError::NotAMunro(Bin::NONE))?;
        if integrity.spec != signed.spec {
            return Err(LiveError::NotAMunro(bin));
        }
        Ok(Self {
            bin,
            hash: integrity.hash,
            timestamp: signed.timestamp,
            signature: signed.signature.clone(),
        })
    }

    /// The two messages that carry it: INTEGRITY (munro, hash) and SIGNED_INTEGRITY.
    pub fn messages(&self, params: &LiveParams) -> Result<(Integrity, SignedIntegrity), LiveError> {
        let spec = params.spec(self.bin)?;
        Ok((
            Integrity {
                spec,
                hash: self.hash,
            },
            SignedIntegrity {
                spec,
                timestamp: self.timestamp,
                signature: self.signature.clone(),
            },
        ))
    }
}

/// Sign All (§6.1.1): the SIGNED_INTEGRITY message for chunk `chunk` with content `data`,
/// signed at `unix_micros`. (libswift has no Sign All; the RFC's signed bytes are used
/// whatever [`LiveParams::form`] says, with its timestamp format.)
pub fn sign_chunk(
    signer: &dyn Signer,
    params: &LiveParams,
    chunk: u64,
    unix_micros: u64,
    data: &[u8],
) -> Result<SignedIntegrity, LiveError> {
    let bin = Bin::leaf(chunk).ok_or(LiveError::Unaddressable(Bin::NONE))?;
    let spec = params.spec(bin)?;
    let timestamp = params.timestamp_at(unix_micros);
    let sig = signer.sign(&chunk_signed_bytes(
        params.addressing,
        spec,
        timestamp,
        data,
    ));
    Ok(SignedIntegrity {
        spec,
        timestamp,
        signature: Bytes::from(sig),
    })
}

/// Sign All (§6.1.1): checks that `signed` is the injector's signature of chunk `chunk` with
/// content `data`.
pub fn verify_signed_chunk(
    verifier: &dyn Verifier,
    params: &LiveParams,
    chunk: u64,
    signed: &SignedIntegrity,
    data: &[u8],
) -> Result<(), LiveError> {
    let bin = Bin::leaf(chunk).ok_or(LiveError::Unaddressable(Bin::NONE))?;
    if data.is_empty() || data.len() > params.chunk_size as usize {
        return Err(LiveError::BadChunkLength {
            chunk,
            len: data.len(),
        });
    }
    check_signature_len(verifier, &signed.signature)?;
    let spec = params.spec(bin)?;
    let msg = chunk_signed_bytes(params.addressing, spec, signed.timestamp, data);
    if signed.spec != spec || !verifier.verify(&msg, &signed.signature) {
        return Err(LiveError::BadSignature(bin));
    }
    Ok(())
}

/// The uncle hashes of `chunk` below `munro`, highest first (§6.1.2.3): siblings on the way
/// up from the chunk, stopping at the first one `known` says the receiver has (it then has
/// every node above too); `hash` looks a node up.
fn uncles_below(
    munro: Bin,
    chunk: u64,
    mut known: impl FnMut(Bin) -> bool,
    hash: impl Fn(Bin) -> Option<HashValue>,
) -> Vec<(Bin, HashValue)> {
    let mut out = Vec::new();
    let mut b = Bin::leaf(chunk).unwrap_or(Bin::NONE);
    while munro.contains(b) && b != munro {
        let (Some(s), Some(p)) = (b.sibling(), b.parent()) else {
            break;
        };
        if known(s) {
            break;
        }
        if let Some(h) = hash(s) {
            out.push((s, h));
        }
        b = p;
    }
    out.reverse();
    out
}

fn check_signature_len(verifier: &dyn Verifier, sig: &[u8]) -> Result<(), LiveError> {
    if sig.len() != verifier.signature_len() {
        return Err(LiveError::BadSignatureLength {
            len: sig.len(),
            expected: verifier.signature_len(),
        });
    }
    Ok(())
}

/// A shared signer.
pub type SharedSigner = Arc<dyn Signer>;
/// A shared verifier.
pub type SharedVerifier = Arc<dyn Verifier>;
