//! Signature algorithms for live streams (`live-crypto` feature): ECDSA P-256 and P-384
//! (RFC 6605), Ed25519 (RFC 8080), RSA with SHA-1 or SHA-256 (RFC 3110, RFC 5702; verify only).
//!
//! Key and signature encodings are DNSSEC's: an ECDSA public key is `X ‖ Y`, a signature
//! `r ‖ s`, each coordinate as long as the curve's field; an Ed25519 key and signature are
//! RFC 8032's; an RSA key is RFC 3110's exponent length, exponent and modulus, and a signature
//! as long as the modulus.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use sha2::Digest;

use super::{LiveError, LiveSwarmId, SharedVerifier, Signer, Verifier};
use crate::wire::SignatureAlgorithm;

/// An injector's key pair. Signing is deterministic (RFC 6979 for ECDSA), so the core needs no
/// randomness; the caller supplies the secret (or a seed) from a good source.
#[derive(Clone)]
pub enum KeyPair {
    /// ECDSAP256SHA256 (13).
    EcdsaP256(p256::ecdsa::SigningKey),
    /// ECDSAP384SHA384 (14).
    EcdsaP384(p384::ecdsa::SigningKey),
    /// ED25519 (15).
    Ed25519(ed25519_dalek::SigningKey),
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeyPair({}, public {})",
            self.algorithm().0,
            self.swarm_id()
        )
    }
}

impl KeyPair {
    /// A key pair derived from 32 bytes of secret randomness `seed` (the same seed gives the
    /// same key). Algorithms: 13, 14, 15.
    pub fn from_seed(alg: SignatureAlgorithm, seed: &[u8; 32]) -> Result<Self, LiveError> {
        match alg {
            SignatureAlgorithm::ED25519 => {
                Ok(Self::Ed25519(ed25519_dalek::SigningKey::from_bytes(seed)))
            }
            SignatureAlgorithm::ECDSAP256SHA256 | SignatureAlgorithm::ECDSAP384SHA384 => {
                // Hash the seed with a counter until the digest is a valid scalar (all but a
                // negligible share of digests are).
                for counter in 0u32..64 {
                    let secret: Vec<u8> = if alg == SignatureAlgorithm::ECDSAP256SHA256 {
                        let mut h = sha2::Sha256::new();
                        h.update(seed);
                        h.update(counter.to_be_bytes());
                        h.finalize().to_vec()
                    } else {
                        let mut h = sha2::Sha384::new();
                        h.update(seed);
                        h.update(counter.to_be_bytes());
                        h.finalize().to_vec()
                    };
                    if let Ok(k) = Self::from_secret(alg, &secret) {
                        return Ok(k);
                    }
                }
                Err(LiveError::BadSecretKey)
            }
            other => Err(LiveError::UnsupportedAlgorithm(other)),
        }
    }

    /// A key pair from its secret: the 32-byte (P-256, Ed25519) or 48-byte (P-384) scalar or
    /// seed, as [`KeyPair::secret_bytes`] gives it.
    pub fn from_secret(alg: SignatureAlgorithm, secret: &[u8]) -> Result<Self, LiveError> {
        match alg {
            SignatureAlgorithm::ECDSAP256SHA256 => p256::ecdsa::SigningKey::from_slice(secret)
                .map(Self::EcdsaP256)
                .map_err(|_| LiveError::BadSecretKey),
            SignatureAlgorithm::ECDSAP384SHA384 => p384::ecdsa::SigningKey::from_slice(secret)
                .map(Self::EcdsaP384)
                .map_err(|_| LiveError::BadSecretKey),
            SignatureAlgorithm::ED25519 => {
                let seed: &[u8; 32] = secret.try_into().map_err(|_| LiveError::BadSecretKey)?;
                Ok(Self::Ed25519(ed25519_dalek::SigningKey::from_bytes(seed)))
            }
            other => Err(LiveError::UnsupportedAlgorithm(other)),
        }
    }

    /// The secret, to store the key (keep it private).
    pub fn secret_bytes(&self) -> Vec<u8> {
        match self {
            Self::EcdsaP256(k) => k.to_bytes().to_vec(),
            Self::EcdsaP384(k) => k.to_bytes().to_vec(),
            Self::Ed25519(k) => k.to_bytes().to_vec(),
        }
    }

    /// The DNSSEC algorithm number.
    pub const fn algorithm(&self) -> SignatureAlgorithm {
        match self {
            Self::EcdsaP256(_) => SignatureAlgorithm::ECDSAP256SHA256,
            Self::EcdsaP384(_) => SignatureAlgorithm::ECDSAP384SHA384,
            Self::Ed25519(_) => SignatureAlgorithm::ED25519,
        }
    }

    /// The public key in its DNSKEY encoding.
    pub fn public_key(&self) -> Vec<u8> {
        match self {
            // SEC1 uncompressed is 0x04 ‖ X ‖ Y; DNSSEC drops the 0x04.
            Self::EcdsaP256(k) => {
                k.verifying_key().to_encoded_point(false).as_bytes()[1..].to_vec()
            }
            Self::EcdsaP384(k) => {
                k.verifying_key().to_encoded_point(false).as_bytes()[1..].to_vec()
            }
            Self::Ed25519(k) => k.verifying_key().to_bytes().to_vec(),
        }
    }

    /// The swarm ID of streams this key signs.
    pub fn swarm_id(&self) -> LiveSwarmId {
        LiveSwarmId::new(self.algorithm(), self.public_key())
    }
}

impl Signer for KeyPair {
    fn swarm_id(&self) -> LiveSwarmId {
        Self::swarm_id(self)
    }

    fn signature_len(&self) -> usize {
        match self {
            Self::EcdsaP256(_) | Self::Ed25519(_) => 64,
            Self::EcdsaP384(_) => 96,
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        use ed25519_dalek::Signer as _;
        match self {
            Self::EcdsaP256(k) => {
                let s: p256::ecdsa::Signature = k.sign(message);
                s.to_bytes().to_vec()
            }
            Self::EcdsaP384(k) => {
                let s: p384::ecdsa::Signature = k.sign(message);
                s.to_bytes().to_vec()
            }
            Self::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
        }
    }
}

/// A verifier for the public key in `id`: ECDSA P-256 (13) and P-384 (14), Ed25519 (15),
/// RSA/SHA-1 (5, and 7, its NSEC3 alias) and RSA/SHA-256 (8).
pub fn verifier(id: &LiveSwarmId) -> Result<SharedVerifier, LiveError> {
    let key = id.key();
    let v: Box<dyn Verifier> = match id.algorithm() {
        SignatureAlgorithm::ECDSAP256SHA256 => {
            let k = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1(key, 64)?)
                .map_err(|_| LiveError::BadPublicKey)?;
            Box::new(EcdsaP256Verifier(k))
        }
        SignatureAlgorithm::ECDSAP384SHA384 => {
            let k = p384::ecdsa::VerifyingKey::from_sec1_bytes(&sec1(key, 96)?)
                .map_err(|_| LiveError::BadPublicKey)?;
            Box::new(EcdsaP384Verifier(k))
        }
        SignatureAlgorithm::ED25519 => {
            let bytes: &[u8; 32] = key.try_into().map_err(|_| LiveError::BadPublicKey)?;
            let k = ed25519_dalek::VerifyingKey::from_bytes(bytes)
                .map_err(|_| LiveError::BadPublicKey)?;
            Box::new(Ed25519Verifier(k))
        }
        a @ (SignatureAlgorithm::RSASHA1
        | SignatureAlgorithm(7)
        | SignatureAlgorithm::RSASHA256) => {
            Box::new(RsaVerifier::new(key, a == SignatureAlgorithm::RSASHA256)?)
        }
        other => return Err(LiveError::UnsupportedAlgorithm(other)),
    };
    Ok(Arc::from(v))
}

/// `0x04 ‖ key` after checking the key's length.
fn sec1(key: &[u8], len: usize) -> Result<Vec<u8>, LiveError> {
    if key.len() != len {
        return Err(LiveError::BadPublicKey);
    }
    let mut v = Vec::with_capacity(len + 1);
    v.push(4);
    v.extend_from_slice(key);
    Ok(v)
}

#[derive(Debug)]
struct EcdsaP256Verifier(p256::ecdsa::VerifyingKey);

impl Verifier for EcdsaP256Verifier {
    fn signature_len(&self) -> usize {
        64
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier as _;
        p256::ecdsa::Signature::from_slice(signature)
            .is_ok_and(|s| self.0.verify(message, &s).is_ok())
    }
}

#[derive(Debug)]
struct EcdsaP384Verifier(p384::ecdsa::VerifyingKey);

impl Verifier for EcdsaP384Verifier {
    fn signature_len(&self) -> usize {
        96
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        use p384::ecdsa::signature::Verifier as _;
        p384::ecdsa::Signature::from_slice(signature)
            .is_ok_and(|s| self.0.verify(message, &s).is_ok())
    }
}

#[derive(Debug)]
struct Ed25519Verifier(ed25519_dalek::VerifyingKey);

impl Verifier for Ed25519Verifier {
    fn signature_len(&self) -> usize {
        64
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        ed25519_dalek::Signature::from_slice(signature)
            .is_ok_and(|s| self.0.verify_strict(message, &s).is_ok())
    }
}

#[derive(Debug)]
struct RsaVerifier {
    key: rsa::RsaPublicKey,
    sha256: bool,
    len: usize,
}

impl RsaVerifier {
    /// Parses an RFC 3110 key: exponent length (one byte, or 0 then two bytes), exponent,
    /// modulus.
    fn new(key: &[u8], sha256: bool) -> Result<Self, LiveError> {
        let (elen, rest) = match key {
            [0, hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
            [n, rest @ ..] if *n != 0 => (usize::from(*n), rest),
            _ => return Err(LiveError::BadPublicKey),
        };
        if elen == 0 || rest.len() <= elen {
            return Err(LiveError::BadPublicKey);
        }
        let (e, n) = rest.split_at(elen);
        let n = rsa::BigUint::from_bytes_be(n);
        let key = rsa::RsaPublicKey::new(n, rsa::BigUint::from_bytes_be(e))
            .map_err(|_| LiveError::BadPublicKey)?;
        let len = rsa::traits::PublicKeyParts::size(&key);
        Ok(Self { key, sha256, len })
    }
}

impl Verifier for RsaVerifier {
    fn signature_len(&self) -> usize {
        self.len
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        if self.sha256 {
            let h = sha2::Sha256::digest(message);
            self.key
                .verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &h, signature)
                .is_ok()
        } else {
            let h = sha1::Sha1::digest(message);
            self.key
                .verify(rsa::Pkcs1v15Sign::new::<sha1::Sha1>(), &h, signature)
                .is_ok()
        }
    }
}
