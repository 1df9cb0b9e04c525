//! Membership certificates (RFC 7574 §3.10, §12.2): a tracker, acting as certificate
//! authority, signs that a peer at an address belongs to a swarm for a while; peers send these
//! certificates in PEX_REScert and check the ones they receive against the tracker's key.
//!
//! The format (docs/membership.md):
//!
//! - an X.509 v3 certificate in DER, at most [`MAX_CERT_LEN`] bytes;
//! - signed with Ed25519 (RFC 8410: algorithm OID 1.3.101.112, no parameters) by the
//!   tracker's key, the only key this module trusts ([`TrackerKey`]);
//! - the validity window (notBefore, notAfter) is checked against a time the caller gives in
//!   UNIX seconds: the core never reads a clock;
//! - a subject alternative name extension with exactly one IP address (the peer's IP), one URI
//!   `ppspp:swarm:<swarm id in lowercase hex>` and one URI `ppspp:port:<decimal UDP port>`;
//!   other names are ignored.
//!
//! Every check that fails returns its own [`CertError`]; no input panics.
//!
//! ```
//! use ppspp_core::membership::{self, CertError, TrackerKey};
//!
//! let key = TrackerKey::from_bytes([7; 32]);
//! assert_eq!(membership::verify(b"\x30\x00", &key, 0), Err(CertError::Malformed));
//! ```

use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;
use core::net::{IpAddr, SocketAddr};

/// The largest certificate accepted (the tracker's are about 350 bytes). Bounds the work a
/// peer can make us do per PEX_REScert.
pub const MAX_CERT_LEN: usize = 2048;

/// The URI prefix of the swarm name in the subject alternative name.
pub const SWARM_URI_PREFIX: &str = "ppspp:swarm:";
/// The URI prefix of the peer's UDP port in the subject alternative name.
pub const PORT_URI_PREFIX: &str = "ppspp:port:";

/// The tracker's Ed25519 public key: the certificate authority a swarm trusts.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrackerKey([u8; 32]);

impl TrackerKey {
    /// The key from its 32 raw bytes (RFC 8032 encoding).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key from 64 hex digits (either case); `None` for anything else.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        let n = base16ct::mixed::decode(hex.trim(), &mut out).ok()?.len();
        (n == 32).then_some(Self(out))
    }

    /// The 32 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for TrackerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TrackerKey(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// What a certificate states: the peer at `addr` is a member of `swarm` from `not_before` to
/// `not_after` (UNIX seconds, inclusive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberCert {
    /// The swarm ID (the bytes named by the `ppspp:swarm:` URI).
    pub swarm: Vec<u8>,
    /// The peer's UDP address.
    pub addr: SocketAddr,
    /// Start of validity, UNIX seconds.
    pub not_before: u64,
    /// End of validity, UNIX seconds.
    pub not_after: u64,
}

/// Why a certificate was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertError {
    /// Longer than [`MAX_CERT_LEN`].
    TooLarge,
    /// Not a DER X.509 certificate.
    Malformed,
    /// Not version 3 (extensions need v3).
    NotV3,
    /// Not signed with Ed25519, or the two algorithm fields disagree.
    Algorithm,
    /// The signature does not verify with the tracker's key.
    Signature,
    /// `now` is before notBefore.
    NotYetValid,
    /// `now` is after notAfter.
    Expired,
    /// No subject alternative name, or a swarm, IP address or port missing from it.
    MissingName,
    /// More than one swarm, IP address or port, or one that does not parse.
    BadName,
    /// Valid, but for another swarm.
    WrongSwarm,
    /// Valid, but for another address than the one it must prove.
    WrongAddress,
    /// Built without the `membership` feature: no certificate can be checked.
    Unsupported,
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooLarge => "certificate too large",
            Self::Malformed => "not a DER X.509 certificate",
            Self::NotV3 => "not an X.509 v3 certificate",
            Self::Algorithm => "not an Ed25519 signature",
            Self::Signature => "bad signature",
            Self::NotYetValid => "certificate not yet valid",
            Self::Expired => "certificate expired",
            Self::MissingName => {
                "swarm, IP address or port missing from the subject alternative name"
            }
            Self::BadName => "ambiguous or malformed subject alternative name",
            Self::WrongSwarm => "certificate for another swarm",
            Self::WrongAddress => "certificate for another address",
            Self::Unsupported => "built without membership certificate support",
        })
    }
}

/// Parses `der` and checks its signature against `key` and its validity at `now_unix`.
/// The caller still compares the swarm and the address with what it expects (see
/// [`check`]).
pub fn verify(der: &[u8], key: &TrackerKey, now_unix: u64) -> Result<MemberCert, CertError> {
    let (cert, tbs, sig) = imp::decode(der)?;
    imp::check_signature(key, tbs, &sig)?;
    if now_unix < cert.not_before {
        return Err(CertError::NotYetValid);
    }
    if now_unix > cert.not_after {
        return Err(CertError::Expired);
    }
    Ok(cert)
}

/// [`verify`], then that the certificate is for `swarm` and, if given, for `addr`.
pub fn check(
    der: &[u8],
    key: &TrackerKey,
    now_unix: u64,
    swarm: &[u8],
    addr: Option<SocketAddr>,
) -> Result<MemberCert, CertError> {
    let cert = verify(der, key, now_unix)?;
    if cert.swarm != swarm {
        return Err(CertError::WrongSwarm);
    }
    if addr.is_some_and(|a| !same_addr(a, cert.addr)) {
        return Err(CertError::WrongAddress);
    }
    Ok(cert)
}

/// Parses `der` without checking the signature or the time: what an unauthenticated
/// certificate claims (for diagnostics and fuzzing; never trust it).
pub fn parse_unverified(der: &[u8]) -> Result<MemberCert, CertError> {
    imp::decode(der).map(|(c, _, _)| c)
}

/// Addresses equal, an IPv4-mapped IPv6 address being the IPv4 one (a dual-stack socket
/// reports IPv4 peers that way).
pub(crate) fn same_addr(a: SocketAddr, b: SocketAddr) -> bool {
    fn canon(ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        }
    }
    a.port() == b.port() && canon(a.ip()) == canon(b.ip())
}

/// The swarm URI for `swarm`: `ppspp:swarm:` and the ID in lowercase hex.
pub fn swarm_uri(swarm: &[u8]) -> alloc::string::String {
    let mut s = alloc::string::String::from(SWARM_URI_PREFIX);
    for b in swarm {
        let _ = fmt::Write::write_fmt(&mut s, format_args!("{b:02x}"));
    }
    s
}

/// The port URI for `port`: `ppspp:port:` and the port in decimal.
pub fn port_uri(port: u16) -> alloc::string::String {
    alloc::format!("{PORT_URI_PREFIX}{port}")
}

/// Collects the names of interest from the subject alternative name.
#[cfg(feature = "membership")]
#[derive(Default)]
struct Names {
    swarm: Option<Vec<u8>>,
    ip: Option<IpAddr>,
    port: Option<u16>,
}

#[cfg(feature = "membership")]
impl Names {
    fn uri(&mut self, uri: &str) -> Result<(), CertError> {
        if let Some(hex) = uri.strip_prefix(SWARM_URI_PREFIX) {
            let id = base16ct::mixed::decode_vec(hex)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or(CertError::BadName)?;
            if self.swarm.replace(id).is_some() {
                return Err(CertError::BadName);
            }
        } else if let Some(dec) = uri.strip_prefix(PORT_URI_PREFIX) {
            // Digits only: `u16::from_str` would also take a leading `+`.
            if dec.is_empty() || dec.len() > 5 || !dec.bytes().all(|c| c.is_ascii_digit()) {
                return Err(CertError::BadName);
            }
            let port: u16 = dec.parse().map_err(|_| CertError::BadName)?;
            if port == 0 || self.port.replace(port).is_some() {
                return Err(CertError::BadName);
            }
        }
        Ok(())
    }

    fn ip(&mut self, raw: &[u8]) -> Result<(), CertError> {
        let ip = match raw.len() {
            4 => IpAddr::V4(core::net::Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])),
            16 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(raw);
                IpAddr::V6(core::net::Ipv6Addr::from(b))
            }
            _ => return Err(CertError::BadName),
        };
        if self.ip.replace(ip).is_some() {
            return Err(CertError::BadName);
        }
        Ok(())
    }

    fn finish(self) -> Result<(Vec<u8>, SocketAddr), CertError> {
        match (self.swarm, self.ip, self.port) {
            (Some(s), Some(ip), Some(port)) => Ok((s, SocketAddr::new(ip, port))),
            _ => Err(CertError::MissingName),
        }
    }
}

/// A certificate held for sending: its DER bytes and when it stops being valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HeldCert {
    pub(crate) der: Bytes,
    pub(crate) not_after: u64,
}

#[cfg(feature = "membership")]
mod imp {
    use super::{CertError, MemberCert, Names, TrackerKey};
    use x509_cert::Certificate;
    use x509_cert::certificate::Version;
    use x509_cert::der::asn1::ObjectIdentifier;
    use x509_cert::der::oid::AssociatedOid;
    use x509_cert::der::{Decode, Header, Reader, SliceReader, Tag};
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::pkix::name::GeneralName;

    /// id-Ed25519 (RFC 8410).
    const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

    /// The parsed claims, the signed bytes (the TBSCertificate as received) and the
    /// signature.
    pub(super) fn decode(der: &[u8]) -> Result<(MemberCert, &[u8], [u8; 64]), CertError> {
        if der.len() > super::MAX_CERT_LEN {
            return Err(CertError::TooLarge);
        }
        let cert = Certificate::from_der(der).map_err(|_| CertError::Malformed)?;
        // The signature covers the TBSCertificate's bytes as sent: take them from the input
        // rather than re-encoding the parsed structure.
        let tbs = {
            let mut r = SliceReader::new(der).map_err(|_| CertError::Malformed)?;
            let outer = Header::decode(&mut r).map_err(|_| CertError::Malformed)?;
            if outer.tag != Tag::Sequence {
                return Err(CertError::Malformed);
            }
            r.tlv_bytes().map_err(|_| CertError::Malformed)?
        };
        let t = &cert.tbs_certificate;
        if t.version != Version::V3 {
            return Err(CertError::NotV3);
        }
        let alg_ok = |a: &x509_cert::spki::AlgorithmIdentifierOwned| {
            a.oid == ED25519 && a.parameters.is_none()
        };
        if !alg_ok(&cert.signature_algorithm) || !alg_ok(&t.signature) {
            return Err(CertError::Algorithm);
        }
        let sig: [u8; 64] = cert
            .signature
            .as_bytes()
            .and_then(|b| b.try_into().ok())
            .ok_or(CertError::Algorithm)?;
        let not_before = t.validity.not_before.to_unix_duration().as_secs();
        let not_after = t.validity.not_after.to_unix_duration().as_secs();
        let mut names = Names::default();
        let mut seen_san = false;
        for ext in t.extensions.iter().flatten() {
            if ext.extn_id != SubjectAltName::OID {
                continue;
            }
            if seen_san {
                return Err(CertError::BadName);
            }
            seen_san = true;
            let san = SubjectAltName::from_der(ext.extn_value.as_bytes())
                .map_err(|_| CertError::BadName)?;
            for name in &san.0 {
                match name {
                    GeneralName::UniformResourceIdentifier(u) => names.uri(u.as_str())?,
                    GeneralName::IpAddress(ip) => names.ip(ip.as_bytes())?,
                    _ => {}
                }
            }
        }
        let (swarm, addr) = names.finish()?;
        Ok((
            MemberCert {
                swarm,
                addr,
                not_before,
                not_after,
            },
            tbs,
            sig,
        ))
    }

    pub(super) fn check_signature(
        key: &TrackerKey,
        tbs: &[u8],
        sig: &[u8; 64],
    ) -> Result<(), CertError> {
        let vk = ed25519_dalek::VerifyingKey::from_bytes(key.as_bytes())
            .map_err(|_| CertError::Signature)?;
        let sig = ed25519_dalek::Signature::from_bytes(sig);
        // Strict: no malleable signatures, no small-order keys.
        vk.verify_strict(tbs, &sig)
            .map_err(|_| CertError::Signature)
    }
}

#[cfg(not(feature = "membership"))]
mod imp {
    use super::{CertError, MemberCert, TrackerKey};

    pub(super) fn decode(der: &[u8]) -> Result<(MemberCert, &[u8], [u8; 64]), CertError> {
        if der.len() > super::MAX_CERT_LEN {
            return Err(CertError::TooLarge);
        }
        Err(CertError::Unsupported)
    }

    pub(super) fn check_signature(
        _key: &TrackerKey,
        _tbs: &[u8],
        _sig: &[u8; 64],
    ) -> Result<(), CertError> {
        Err(CertError::Unsupported)
    }
}

/// A swarm's membership policy (RFC 7574 §12.2.2, tracker as certification authority): the
/// tracker key certificates must be signed with, whether they are required, and this peer's
/// own certificate.
///
/// The core never reads a clock: certificate times are compared with the endpoint's wall
/// clock, [`EndpointConfig::unix_time_at_zero`](crate::EndpointConfig::unix_time_at_zero)
/// plus the time since the driver's epoch.
#[derive(Clone, Debug)]
pub struct Membership {
    pub(crate) key: TrackerKey,
    pub(crate) require: bool,
    pub(crate) own: Option<Bytes>,
}

impl Membership {
    /// Certificates signed by `key`; not required, no certificate of our own.
    pub fn new(key: TrackerKey) -> Self {
        Self {
            key,
            require: false,
            own: None,
        }
    }

    /// A private swarm: only peers that present a valid certificate for their own address
    /// are talked to, and PEX addresses count only with a certificate (docs/membership.md).
    pub fn require(&mut self, require: bool) -> &mut Self {
        self.require = require;
        self
    }

    /// Our own certificate, sent with every handshake.
    pub fn own_cert(&mut self, der: Option<Bytes>) -> &mut Self {
        self.own = der;
        self
    }

    /// The tracker key.
    pub fn key(&self) -> &TrackerKey {
        &self.key
    }

    /// Whether certificates are required.
    pub fn required(&self) -> bool {
        self.require
    }
}

#[cfg(all(test, feature = "membership"))]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use ppspp_tracker::ca::Authority;
    use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ED25519, SanType};

    const NOW: u64 = 1_800_000_000;
    const SWARM: [u8; 20] = [0xab; 20];

    fn addr() -> SocketAddr {
        "192.0.2.7:6778".parse().unwrap()
    }

    fn ca() -> (Authority, TrackerKey) {
        let a = Authority::generate().unwrap();
        let k = TrackerKey::from_bytes(a.public_key());
        (a, k)
    }

    /// A certificate with exactly the names given, signed by `key` (rcgen's default validity:
    /// 1975 to 4096).
    fn with_names(key: &KeyPair, names: Vec<SanType>) -> Vec<u8> {
        let mut p = CertificateParams::default();
        p.subject_alt_names = names;
        p.self_signed(key).unwrap().der().to_vec()
    }

    fn uri(s: &str) -> SanType {
        SanType::URI(s.try_into().unwrap())
    }

    #[test]
    fn issued_certificate_verifies_with_its_claims() {
        let (mut a, k) = ca();
        let der = a.issue(&SWARM, addr(), NOW, 3600).unwrap();
        let c = verify(&der, &k, NOW).unwrap();
        assert_eq!(c.swarm, SWARM);
        assert_eq!(c.addr, addr());
        assert_eq!(c.not_after, NOW + 3600);
        assert!(c.not_before <= NOW);
        assert_eq!(check(&der, &k, NOW, &SWARM, Some(addr())), Ok(c.clone()));
        // An IPv4-mapped IPv6 view of the same address is the same address.
        let mapped: SocketAddr = "[::ffff:192.0.2.7]:6778".parse().unwrap();
        assert!(check(&der, &k, NOW, &SWARM, Some(mapped)).is_ok());
        assert_eq!(parse_unverified(&der), Ok(c));
    }

    #[test]
    fn ipv6_address() {
        let (mut a, k) = ca();
        let v6: SocketAddr = "[2001:db8::5]:9".parse().unwrap();
        let der = a.issue(&SWARM, v6, NOW, 60).unwrap();
        assert_eq!(verify(&der, &k, NOW).unwrap().addr, v6);
    }

    #[test]
    fn each_failed_check_has_its_error() {
        let (mut a, k) = ca();
        let (_, other) = ca();
        let der = a.issue(&SWARM, addr(), NOW, 3600).unwrap();
        assert_eq!(verify(&der, &other, NOW), Err(CertError::Signature));
        assert_eq!(verify(&der, &k, NOW + 3601), Err(CertError::Expired));
        assert_eq!(verify(&der, &k, NOW - 10_000), Err(CertError::NotYetValid));
        assert_eq!(
            check(&der, &k, NOW, &[0xcd; 20], Some(addr())),
            Err(CertError::WrongSwarm)
        );
        let elsewhere: SocketAddr = "192.0.2.7:6779".parse().unwrap();
        assert_eq!(
            check(&der, &k, NOW, &SWARM, Some(elsewhere)),
            Err(CertError::WrongAddress)
        );
        assert_eq!(verify(&[], &k, NOW), Err(CertError::Malformed));
        assert_eq!(
            verify(&der[..der.len() - 1], &k, NOW),
            Err(CertError::Malformed)
        );
        assert_eq!(
            verify(&[0x30; MAX_CERT_LEN + 1], &k, NOW),
            Err(CertError::TooLarge)
        );
    }

    #[test]
    fn any_flipped_bit_is_rejected() {
        let (mut a, k) = ca();
        let der = a.issue(&SWARM, addr(), NOW, 3600).unwrap();
        for i in 0..der.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = der.clone();
                bad[i] ^= bit;
                assert!(
                    verify(&bad, &k, NOW).is_err(),
                    "byte {i} bit {bit:#x} accepted"
                );
            }
        }
    }

    #[test]
    fn names_must_be_complete_and_unambiguous() {
        let key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
        let k = TrackerKey::from_bytes(key.public_key_raw().try_into().unwrap());
        let swarm = uri(&swarm_uri(&SWARM));
        let port = uri(&port_uri(6778));
        let ip = SanType::IpAddress(addr().ip());
        let ok = with_names(&key, vec![swarm.clone(), ip.clone(), port.clone()]);
        assert_eq!(verify(&ok, &k, NOW).unwrap().addr, addr());
        for (names, want) in [
            (vec![swarm.clone(), ip.clone()], CertError::MissingName),
            (vec![ip.clone(), port.clone()], CertError::MissingName),
            (vec![swarm.clone(), port.clone()], CertError::MissingName),
            (
                vec![swarm.clone(), swarm.clone(), ip.clone(), port.clone()],
                CertError::BadName,
            ),
            (
                vec![swarm.clone(), ip.clone(), ip.clone(), port.clone()],
                CertError::BadName,
            ),
            (
                vec![swarm.clone(), ip.clone(), uri("ppspp:port:+5")],
                CertError::BadName,
            ),
            (
                vec![swarm.clone(), ip.clone(), uri("ppspp:port:70000")],
                CertError::BadName,
            ),
            (
                vec![swarm.clone(), ip.clone(), uri("ppspp:port:0")],
                CertError::BadName,
            ),
            (
                vec![uri("ppspp:swarm:abc"), ip.clone(), port.clone()],
                CertError::BadName,
            ),
            (
                vec![uri("ppspp:swarm:zz"), ip.clone(), port.clone()],
                CertError::BadName,
            ),
        ] {
            let der = with_names(&key, names.clone());
            assert_eq!(verify(&der, &k, NOW), Err(want), "{names:?}");
        }
        // Other names are ignored.
        let extra = with_names(
            &key,
            vec![
                SanType::DnsName("x.example".try_into().unwrap()),
                swarm,
                ip,
                port,
            ],
        );
        assert!(verify(&extra, &k, NOW).is_ok());
    }

    #[test]
    fn only_ed25519() {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let der = with_names(
            &key,
            vec![
                uri(&swarm_uri(&SWARM)),
                SanType::IpAddress(addr().ip()),
                uri(&port_uri(1)),
            ],
        );
        assert_eq!(
            verify(&der, &TrackerKey::from_bytes([1; 32]), NOW),
            Err(CertError::Algorithm)
        );
    }

    #[test]
    fn tracker_key_hex() {
        let k = TrackerKey::from_hex(&"0A".repeat(32)).unwrap();
        assert_eq!(k.as_bytes(), &[10; 32]);
        assert!(TrackerKey::from_hex(&"0a".repeat(31)).is_none());
        assert!(TrackerKey::from_hex(&"zz".repeat(32)).is_none());
    }
}
