//! The tracker as certification authority (RFC 7574 §12.2.2): short-lived membership
//! certificates, X.509 v3 DER signed with Ed25519, stating that the peer at an address is in
//! a swarm. The format is in `docs/membership.md`; `ppspp_core::membership` checks them.
//!
//! The subject public key of a membership certificate is the authority's own: peers have no
//! keys, a certificate vouches for an address (whose return routability the tracker saw),
//! not for a key.

use core::fmt;
use core::net::SocketAddr;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, PKCS_ED25519, SanType,
    SerialNumber, string::Ia5String,
};

/// The default lifetime of a membership certificate: one hour.
pub const DEFAULT_LIFETIME_SECS: u64 = 3600;

/// Certificates are valid from this long before their issuing time: clocks of peers and the
/// tracker may disagree a little.
pub const BACKDATE_SECS: u64 = 300;

/// A failure to load a key or issue a certificate.
#[derive(Debug)]
pub struct CaError(String);

impl fmt::Display for CaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CaError {}

impl From<rcgen::Error> for CaError {
    fn from(e: rcgen::Error) -> Self {
        Self(e.to_string())
    }
}

/// An Ed25519 signing key that issues membership certificates.
pub struct Authority {
    key: KeyPair,
    serial: u64,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("public_key", &self.public_key_hex())
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// A new random key (from the operating system's generator, through ring).
    pub fn generate() -> Result<Self, CaError> {
        Ok(Self {
            key: KeyPair::generate_for(&PKCS_ED25519)?,
            serial: 0,
        })
    }

    /// The key whose RFC 8032 secret is `seed` (deterministic: for the simulator and tests).
    pub fn from_seed(seed: [u8; 32]) -> Result<Self, CaError> {
        // PKCS#8 v1 for Ed25519 (RFC 8410 §7): a fixed prefix, then the 32-byte secret.
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&seed);
        let key = KeyPair::try_from(der)?;
        Ok(Self { key, serial: 0 })
    }

    /// A key from its PKCS#8 PEM (as [`Authority::to_pem`] writes it). Only Ed25519.
    pub fn from_pem(pem: &str) -> Result<Self, CaError> {
        let key = KeyPair::from_pem(pem)?;
        if !key.is_compatible(&PKCS_ED25519) {
            return Err(CaError("the CA key is not an Ed25519 key".into()));
        }
        Ok(Self { key, serial: 0 })
    }

    /// The key as PKCS#8 PEM (secret: store it with restricted permissions).
    pub fn to_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// The 32-byte Ed25519 public key peers check certificates against.
    pub fn public_key(&self) -> [u8; 32] {
        let raw = self.key.public_key_raw();
        let mut out = [0u8; 32];
        // An Ed25519 key pair's raw public key is 32 bytes (checked at load).
        out.copy_from_slice(&raw[..32]);
        out
    }

    /// The public key in lowercase hex (what `--tracker-key` takes).
    pub fn public_key_hex(&self) -> String {
        hex(&self.public_key())
    }

    /// A certificate that the peer at `addr` is in swarm `swarm`, valid from
    /// `now_unix - BACKDATE_SECS` to `now_unix + lifetime_secs` (UNIX seconds).
    pub fn issue(
        &mut self,
        swarm: &[u8],
        addr: SocketAddr,
        now_unix: u64,
        lifetime_secs: u64,
    ) -> Result<Vec<u8>, CaError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "ppspp swarm member");
        params.distinguished_name = dn;
        params.is_ca = IsCa::NoCa;
        let uri = |s: String| -> Result<SanType, CaError> {
            Ia5String::try_from(s)
                .map(SanType::URI)
                .map_err(|e| CaError(e.to_string()))
        };
        params.subject_alt_names = vec![
            uri(format!("ppspp:swarm:{}", hex(swarm)))?,
            SanType::IpAddress(addr.ip()),
            uri(format!("ppspp:port:{}", addr.port()))?,
        ];
        let at = |secs: u64| {
            let secs = i64::try_from(secs).unwrap_or(i64::MAX);
            time::OffsetDateTime::from_unix_timestamp(secs)
                .map_err(|e| CaError(format!("certificate time: {e}")))
        };
        params.not_before = at(now_unix.saturating_sub(BACKDATE_SECS))?;
        params.not_after = at(now_unix.saturating_add(lifetime_secs))?;
        self.serial = self.serial.wrapping_add(1);
        // Unique per issuer run: the issuing time and a counter.
        let mut serial = now_unix.to_be_bytes().to_vec();
        serial.extend_from_slice(&self.serial.to_be_bytes());
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let mut issuer_dn = DistinguishedName::new();
        issuer_dn.push(DnType::CommonName, "ppspp tracker");
        let mut issuer_params = CertificateParams::default();
        issuer_params.distinguished_name = issuer_dn;
        let issuer = Issuer::from_params(&issuer_params, &self.key);
        let cert = params.signed_by(&self.key, &issuer)?;
        Ok(cert.der().to_vec())
    }
}

/// The tracker's certificate settings: the authority, how long certificates last, and the
/// UNIX time at the tracker's time origin (the tracker reads no clock).
#[derive(Debug)]
pub struct Issuing {
    /// The key that signs.
    pub authority: Authority,
    /// Certificate lifetime in seconds.
    pub lifetime_secs: u64,
    /// UNIX seconds at the `now` origin the tracker is given.
    pub unix_at_zero: u64,
}

/// Decodes hex (either case); `None` on an odd length or a non-hex digit.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    base16ct::mixed::decode_vec(s).ok()
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
