//! Hash functions of the Merkle Hash Tree Function option (RFC 7574 §7.6) and hash values.
//!
//! The implementations are the RustCrypto `sha1` and `sha2` crates (no default features), which
//! use the CPU's SHA instructions where the processor has them.

use core::fmt;

/// The largest hash output of any supported function (SHA-512).
pub const MAX_HASH_LEN: usize = 64;

/// A Merkle hash tree function (RFC 7574 §7.6, Table 5), by its wire code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum HashAlgorithm {
    /// SHA-1 (code 0): what libswift speaks. 20 bytes.
    Sha1 = 0,
    /// SHA-224 (code 1). 28 bytes.
    Sha224 = 1,
    /// SHA-256 (code 2): the RFC default. 32 bytes.
    Sha256 = 2,
    /// SHA-384 (code 3). 48 bytes.
    Sha384 = 3,
    /// SHA-512 (code 4). 64 bytes.
    Sha512 = 4,
}

impl HashAlgorithm {
    /// Every algorithm, in code order.
    pub const ALL: [Self; 5] = [
        Self::Sha1,
        Self::Sha224,
        Self::Sha256,
        Self::Sha384,
        Self::Sha512,
    ];

    /// The algorithm with wire code `code`, if assigned.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Sha1,
            1 => Self::Sha224,
            2 => Self::Sha256,
            3 => Self::Sha384,
            4 => Self::Sha512,
            _ => return None,
        })
    }

    /// The wire code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The output length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha224 => 28,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The algorithm whose output is `len` bytes long (used to infer the function from a swarm
    /// ID's length).
    pub const fn from_output_len(len: usize) -> Option<Self> {
        Some(match len {
            20 => Self::Sha1,
            28 => Self::Sha224,
            32 => Self::Sha256,
            48 => Self::Sha384,
            64 => Self::Sha512,
            _ => return None,
        })
    }

    /// The lowercase name used on command lines (`sha1`, `sha256`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha224 => "sha224",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// The all-zero hash of this length: the hash of an empty leaf (RFC 7574 §5.1).
    pub fn empty(self) -> HashValue {
        HashValue::zero(self.output_len())
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> HashValue {
        self.digest_parts(&[data])
    }

    /// Hashes the concatenation of two hashes: the parent of `left` and `right`.
    pub fn digest_pair(self, left: &HashValue, right: &HashValue) -> HashValue {
        self.digest_parts(&[left.as_bytes(), right.as_bytes()])
    }

    /// Hashes the concatenation of `parts` without copying them together.
    pub fn digest_parts(self, parts: &[&[u8]]) -> HashValue {
        fn run<D: sha1::Digest>(parts: &[&[u8]]) -> HashValue {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            HashValue::from_slice(&d.finalize()).unwrap_or(HashValue::zero(0))
        }
        match self {
            Self::Sha1 => run::<sha1::Sha1>(parts),
            Self::Sha224 => run::<sha2::Sha224>(parts),
            Self::Sha256 => run::<sha2::Sha256>(parts),
            Self::Sha384 => run::<sha2::Sha384>(parts),
            Self::Sha512 => run::<sha2::Sha512>(parts),
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for HashAlgorithm {
    type Err = UnknownHashAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s) || s.eq_ignore_ascii_case(a.dashed()))
            .ok_or(UnknownHashAlgorithm)
    }
}

impl HashAlgorithm {
    const fn dashed(self) -> &'static str {
        match self {
            Self::Sha1 => "sha-1",
            Self::Sha224 => "sha-224",
            Self::Sha256 => "sha-256",
            Self::Sha384 => "sha-384",
            Self::Sha512 => "sha-512",
        }
    }
}

/// The error of parsing a [`HashAlgorithm`] name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownHashAlgorithm;

impl fmt::Display for UnknownHashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown hash function (expected sha1, sha224, sha256, sha384 or sha512)")
    }
}

impl core::error::Error for UnknownHashAlgorithm {}

/// A hash value of 0 to 64 bytes, stored inline (no allocation).
// Word alignment keeps copies of messages holding hashes on aligned moves, which the codec's
// hot path needs to avoid store-forwarding stalls.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub struct HashValue {
    bytes: [u8; MAX_HASH_LEN],
    len: u8,
}

impl HashValue {
    /// `len` zero bytes (`len` is capped at [`MAX_HASH_LEN`]).
    pub const fn zero(len: usize) -> Self {
        let len = if len > MAX_HASH_LEN {
            MAX_HASH_LEN
        } else {
            len
        };
        Self {
            len: len as u8,
            bytes: [0; MAX_HASH_LEN],
        }
    }

    /// Copies a hash out of a slice; `None` if it is longer than [`MAX_HASH_LEN`].
    #[inline]
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > MAX_HASH_LEN {
            return None;
        }
        let mut v = Self::zero(bytes.len());
        // Fixed-length copies for the real hash sizes compile to a few register moves; a
        // variable-length memcpy here made codec decoding stall on store forwarding.
        match bytes.len() {
            20 => v.bytes[..20].copy_from_slice(bytes),
            28 => v.bytes[..28].copy_from_slice(bytes),
            32 => v.bytes[..32].copy_from_slice(bytes),
            48 => v.bytes[..48].copy_from_slice(bytes),
            64 => v.bytes.copy_from_slice(bytes),
            n => v.bytes[..n].copy_from_slice(bytes),
        }
        Some(v)
    }

    /// Parses lowercase or uppercase hex; `None` on odd length, bad digits or more than 64 bytes.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() % 2 != 0 || hex.len() / 2 > MAX_HASH_LEN {
            return None;
        }
        let mut v = Self::zero(hex.len() / 2);
        base16ct::mixed::decode(hex, &mut v.bytes[..hex.len() / 2]).ok()?;
        Some(v)
    }

    /// The hash bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The length in bytes.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the hash has no bytes at all.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether every byte is zero: the empty-leaf hash of RFC 7574 §5.1.
    pub fn is_zero(&self) -> bool {
        self.as_bytes().iter().all(|&b| b == 0)
    }
}

impl PartialEq for HashValue {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for HashValue {}

impl core::hash::Hash for HashValue {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialOrd for HashValue {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for HashValue {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl AsRef<[u8]> for HashValue {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Display for HashValue {
    /// Lowercase hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for HashValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HashValue({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn known_digests() {
        // SHA-1("Hello world!\n") is the swarm ID of the RFC 7574 §8.16 example.
        assert_eq!(
            HashAlgorithm::Sha1.digest(b"Hello world!\n").to_string(),
            "47a013e660d408619d894b20806b1d5086aab03b"
        );
        assert_eq!(
            HashAlgorithm::Sha256.digest(b"Hello world!\n").to_string(),
            "0ba904eae8773b70c75333db4de2f3ac45a8ad4ddba1b242f0b3cfc199391dd8"
        );
        for a in HashAlgorithm::ALL {
            assert_eq!(a.digest(b"x").len(), a.output_len());
            assert_eq!(HashAlgorithm::from_code(a.code()), Some(a));
            assert_eq!(HashAlgorithm::from_output_len(a.output_len()), Some(a));
            assert_eq!(a.name().parse::<HashAlgorithm>(), Ok(a));
        }
        assert_eq!(HashAlgorithm::from_code(5), None);
        assert!("md5".parse::<HashAlgorithm>().is_err());
    }

    #[test]
    fn pair_is_concatenation() {
        let a = HashAlgorithm::Sha256;
        let (l, r) = (a.digest(b"l"), a.digest(b"r"));
        let mut cat = [0u8; 64];
        cat[..32].copy_from_slice(l.as_bytes());
        cat[32..].copy_from_slice(r.as_bytes());
        assert_eq!(a.digest_pair(&l, &r), a.digest(&cat));
    }

    #[test]
    fn hex_round_trip() {
        let h = HashValue::from_hex("47A013e660d408619d894b20806b1d5086aab03b").unwrap();
        assert_eq!(h.to_string(), "47a013e660d408619d894b20806b1d5086aab03b");
        assert_eq!(HashValue::from_hex("abc"), None);
        assert_eq!(HashValue::from_hex("zz"), None);
        assert!(HashValue::zero(20).is_zero());
    }
}
