//! Monomorphic leaf and parent hashing for the tree code.
//!
//! [`crate::hash::HashAlgorithm::digest`] picks the function at run time on every call and returns a
//! [`crate::hash::HashValue`]; that is fine for one-off hashes, but the tree loops hash millions
//! of nodes. They are written once, generic over a RustCrypto [`Digest`], and the
//! [`with_digest!`] macro selects the instantiation once per call into the tree code.

use sha1::Digest;

use crate::hash::MAX_HASH_LEN;

/// A hash output buffer big enough for any supported function; only the first `output_len`
/// bytes are meaningful.
pub(crate) type Buf = [u8; MAX_HASH_LEN];

/// The all-zero buffer: the hash of an empty leaf or of a subtree of empty leaves.
pub(crate) const ZERO: Buf = [0; MAX_HASH_LEN];

/// Writes `H(data)` into `out`.
#[inline]
pub(crate) fn leaf<D: Digest>(data: &[u8], out: &mut Buf) {
    let d = D::digest(data);
    out[..d.len()].copy_from_slice(&d);
}

/// Writes `H(left ‖ right)` into `out` (RFC 7574 §5.1: parent of two hashes).
#[inline]
pub(crate) fn parent<D: Digest>(left: &[u8], right: &[u8], out: &mut Buf) {
    let mut h = D::new();
    h.update(left);
    h.update(right);
    let d = h.finalize();
    out[..d.len()].copy_from_slice(&d);
}

/// Runs `$body` with `$d` bound to the RustCrypto digest type of `$alg`.
macro_rules! with_digest {
    ($alg:expr, $d:ident => $body:expr) => {
        match $alg {
            $crate::hash::HashAlgorithm::Sha1 => {
                type $d = sha1::Sha1;
                $body
            }
            $crate::hash::HashAlgorithm::Sha224 => {
                type $d = sha2::Sha224;
                $body
            }
            $crate::hash::HashAlgorithm::Sha256 => {
                type $d = sha2::Sha256;
                $body
            }
            $crate::hash::HashAlgorithm::Sha384 => {
                type $d = sha2::Sha384;
                $body
            }
            $crate::hash::HashAlgorithm::Sha512 => {
                type $d = sha2::Sha512;
                $body
            }
        }
    };
}
pub(crate) use with_digest;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::HashAlgorithm;

    #[test]
    fn agrees_with_hash_algorithm() {
        for alg in HashAlgorithm::ALL {
            let n = alg.output_len();
            let mut l = ZERO;
            with_digest!(alg, D => leaf::<D>(b"left", &mut l));
            assert_eq!(&l[..n], alg.digest(b"left").as_bytes());
            let r = alg.digest(b"right");
            let mut p = ZERO;
            with_digest!(alg, D => parent::<D>(&l[..n], r.as_bytes(), &mut p));
            let expect = alg.digest_pair(&alg.digest(b"left"), &r);
            assert_eq!(&p[..n], expect.as_bytes());
        }
    }
}
