//! The organisation CA: certificate chains validated with rustls-webpki, identities read
//! from the leaf's SANs (SPIFFE ID or DNS name, never the subject CN), and a cache of
//! validated chains so a repeated chain costs no path building.
//!
//! ```
//! use dharma_core::{Decision, Enforcer, RequestView};
//! use dharma_core::mechanism::mtls::MtlsVerifier;
//! use dharma_core::model::{Domain, Endpoint, Topology};
//! use dharma_core::pki::OrgCa;
//! # use dharma_test_support::pki::{Ca, Leaf};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let root = Ca::root("Org Root");
//! # let issuing = root.intermediate("Org Issuing", None);
//! # let leaf = issuing.issue(&Leaf::dns("billing.internal"));
//! # let deeper = issuing.intermediate("Deeper", None).issue(&Leaf::dns("x.internal"));
//! // The organisation's root; chains may hold one intermediate.
//! let ca = OrgCa::from_pem(&root.pem())?.max_intermediates(1);
//! let mtls = MtlsVerifier::builder().org_ca(ca).allow("billing.internal").build()?;
//! let topology = Topology::builder()
//!     .domain(Domain::builder("inner").trust("mtls"))
//!     .endpoint(Endpoint::interior("inner", "/ledger"))
//!     .build()?;
//! let enforcer = Enforcer::builder(topology).mechanism("mtls", std::sync::Arc::new(mtls)).build()?;
//! let headers = http::HeaderMap::new();
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let view = RequestView::new(&http::Method::GET, "/ledger", &headers).with_peer_certificates(&leaf.chain);
//! let Decision::Allow(permit) = enforcer.decide(&view).await else { panic!("refused") };
//! assert_eq!(permit.context().principal().unwrap().subject(), "billing.internal");
//! // Two intermediates: the path is too long.
//! let view = RequestView::new(&http::Method::GET, "/ledger", &headers).with_peer_certificates(&deeper.chain);
//! let Decision::Deny(denial) = enforcer.decide(&view).await else { panic!("admitted") };
//! assert_eq!(denial.rejection().code(), "certificate_path_too_long");
//! # });
//! # Ok(()) }
//! ```
pub use crate::error::CertificateError;

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use moka::{Expiry, sync::Cache};
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use serde_json::{Value, json};
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::{
    extensions::GeneralName,
    oid_registry::{OID_EC_P256, OID_NIST_EC_P384, OID_SIG_ED25519},
    public_key::PublicKey,
};

use crate::{jose::VerifyingKey, names::SpiffeId, util::truncate};

/// A CA bundle that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// No certificate in the bundle.
    #[error("the CA bundle holds no certificate")]
    Empty,
    /// A certificate of the bundle does not parse.
    #[error("CA certificate {0} is not a usable trust anchor")]
    BadAnchor(usize),
    /// The PEM text is malformed.
    #[error("the CA bundle is not valid PEM")]
    Pem,
}

impl From<webpki::Error> for CertificateError {
    #[expect(
        deprecated,
        reason = "older webpki versions report RequiredEkuNotFound"
    )]
    fn from(e: webpki::Error) -> Self {
        use webpki::Error as E;
        match e {
            E::CertExpired { .. } => Self::Expired,
            E::CertNotValidYet { .. } => Self::NotYetValid,
            // A chain that names the CA but was signed by another key does not lead to it.
            E::UnknownIssuer | E::InvalidSignatureForPublicKey => Self::UnknownIssuer,
            E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => Self::WrongUsage,
            E::MaximumPathDepthExceeded | E::PathLenConstraintViolated => Self::PathTooLong,
            other => Self::Invalid(truncate(&format!("{other:?}"), 64)),
        }
    }
}

/// The identity a leaf certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertIdentity {
    /// Its SPIFFE ID (the URI SAN), if any.
    pub(crate) spiffe_id: Option<SpiffeId>,
    /// Its DNS SANs.
    pub(crate) dns_names: Vec<String>,
    /// The SHA-256 thumbprint of the DER, base64url (`x5t#S256`).
    pub(crate) thumbprint: String,
}

impl CertIdentity {
    /// The name to use: the SPIFFE ID, else the first DNS name. The subject's common name
    /// is never used: name constraints of the CA bind SANs, not the common name, so a
    /// name read from it could be one the CA was not allowed to vouch for.
    pub(crate) fn name(&self) -> Option<&str> {
        self.spiffe_id
            .as_ref()
            .map(SpiffeId::as_str)
            .or(self.dns_names.first().map(String::as_str))
    }

    /// The identity as claims (`spiffe_id`, `dns`, `x5t#S256`).
    pub(crate) fn claims(&self) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        if let Some(id) = &self.spiffe_id {
            m.insert("spiffe_id".into(), json!(id.as_str()));
        }
        if !self.dns_names.is_empty() {
            m.insert("dns".into(), json!(self.dns_names));
        }
        m.insert("x5t#S256".into(), json!(self.thumbprint));
        m
    }
}

/// What a validated chain yields.
#[derive(Debug)]
pub(crate) struct ValidatedChain {
    /// The leaf's identity.
    pub(crate) identity: CertIdentity,
    /// The leaf's key, when it can verify JWS signatures.
    pub(crate) key: Result<VerifyingKey, CertificateError>,
    /// The leaf's `notAfter`, in Unix seconds.
    pub(crate) not_after: u64,
}

/// The SHA-256 thumbprint of a certificate, base64url without padding.
pub fn thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, der))
}

/// Reads identity, key and expiry from a leaf certificate.
pub(crate) fn read_leaf(der: &CertificateDer<'_>) -> Result<ValidatedChain, CertificateError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|_| CertificateError::Invalid("leaf does not parse".into()))?;
    let mut spiffe = Vec::new();
    let mut dns_names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::URI(uri) if uri.starts_with("spiffe://") => spiffe.push(*uri),
                GeneralName::DNSName(dns) => dns_names.push(truncate(dns, 253)),
                _ => {}
            }
        }
    }
    // The SPIFFE X.509-SVID profile allows exactly one SPIFFE ID.
    let spiffe_id = match spiffe.as_slice() {
        [] => None,
        [one] => Some(
            one.parse::<SpiffeId>()
                .map_err(|_| CertificateError::NoIdentity)?,
        ),
        _ => return Err(CertificateError::NoIdentity),
    };
    let not_after = u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0);
    let key = spki_key(cert.public_key());
    Ok(ValidatedChain {
        identity: CertIdentity {
            spiffe_id,
            dns_names,
            thumbprint: thumbprint(der.as_ref()),
        },
        key,
        not_after,
    })
}

/// The leaf's public key as a verifying key, through the same checks as a JWK.
fn spki_key(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
) -> Result<VerifyingKey, CertificateError> {
    let unsupported = |what: &str| CertificateError::UnsupportedKey(what.to_owned());
    let b = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
    let jwk = if spki.algorithm.algorithm == OID_SIG_ED25519 {
        json!({"kty": "OKP", "crv": "Ed25519", "x": b(&spki.subject_public_key.data)})
    } else {
        match spki.parsed().map_err(|_| unsupported("unparsable key"))? {
            PublicKey::RSA(rsa) => json!({"kty": "RSA", "n": b(rsa.modulus), "e": b(rsa.exponent)}),
            PublicKey::EC(point) => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok());
                let (crv, len) = match curve {
                    Some(c) if c == OID_EC_P256 => ("P-256", 32),
                    Some(c) if c == OID_NIST_EC_P384 => ("P-384", 48),
                    _ => return Err(unsupported("EC curve")),
                };
                let data = point.data();
                if data.len() != 1 + 2 * len || data.first() != Some(&4) {
                    return Err(unsupported("compressed or malformed EC point"));
                }
                let (x, y) = data.get(1..).unwrap_or_default().split_at(len);
                json!({"kty": "EC", "crv": crv, "x": b(x), "y": b(y)})
            }
            _ => return Err(unsupported("key type")),
        }
    };
    VerifyingKey::from_jwk(&jwk).map_err(|e| CertificateError::UnsupportedKey(e.to_string()))
}

/// The extended key usage a leaf certificate must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeafUsage {
    /// TLS client authentication (mutual TLS clients, workloads signing x5c tokens).
    ClientAuth,
    /// TLS server authentication.
    ServerAuth,
}

type ChainCache = Cache<[u8; 32], Arc<(ValidatedChain, Duration)>>;

/// The cache of validated chains: one per set of validation rules.
fn chain_cache() -> ChainCache {
    Cache::builder()
        .max_capacity(10_000)
        .expire_after(UntilNotAfter)
        .build()
}

struct UntilNotAfter;

impl Expiry<[u8; 32], Arc<(ValidatedChain, Duration)>> for UntilNotAfter {
    fn expire_after_create(
        &self,
        _: &[u8; 32],
        v: &Arc<(ValidatedChain, Duration)>,
        _: Instant,
    ) -> Option<Duration> {
        Some(v.1)
    }
}

/// The organisation CA bundle and the validation rules for chains that lead to it.
#[derive(Clone)]
pub struct OrgCa {
    anchors: Arc<Vec<TrustAnchor<'static>>>,
    max_intermediates: usize,
    usage: KeyUsage,
    cache: ChainCache,
    path_builds: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for OrgCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgCa")
            .field("anchors", &self.anchors.len())
            .field("max_intermediates", &self.max_intermediates)
            .finish_non_exhaustive()
    }
}

impl OrgCa {
    /// Trust anchors from DER certificates.
    pub fn from_der(certs: &[CertificateDer<'_>]) -> Result<Self, PkiError> {
        if certs.is_empty() {
            return Err(PkiError::Empty);
        }
        let anchors = certs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                webpki::anchor_from_trusted_cert(c)
                    .map(|a| a.to_owned())
                    .map_err(|_| PkiError::BadAnchor(i))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            anchors: Arc::new(anchors),
            max_intermediates: 2,
            usage: KeyUsage::client_auth(),
            cache: chain_cache(),
            path_builds: Arc::default(),
        })
    }

    /// Trust anchors from PEM text (`-----BEGIN CERTIFICATE-----` blocks).
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        Self::from_der(&pem_certificates(pem)?)
    }

    /// At most this many intermediates between the leaf and the CA (default 2).
    #[must_use]
    pub fn max_intermediates(mut self, n: usize) -> Self {
        self.max_intermediates = n;
        // A chain validated under other rules is not valid under these.
        self.cache = chain_cache();
        self
    }

    /// The extended key usage required of leaves (default: client authentication).
    #[must_use]
    pub fn usage(mut self, usage: LeafUsage) -> Self {
        self.usage = match usage {
            LeafUsage::ClientAuth => KeyUsage::client_auth(),
            LeafUsage::ServerAuth => KeyUsage::server_auth(),
        };
        self.cache = chain_cache();
        self
    }

    /// How many chains were validated by building a path (not taken from the cache).
    pub fn path_builds(&self) -> u64 {
        self.path_builds.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Validates `chain` (leaf first) at `now`, or takes the answer from the cache of
    /// validated chains. The leaf's `notAfter` is checked on every call.
    pub(crate) fn validate(
        &self,
        chain: &[CertificateDer<'_>],
        now: SystemTime,
    ) -> Result<Arc<(ValidatedChain, Duration)>, CertificateError> {
        let leaf = chain.first().ok_or(CertificateError::Missing)?;
        let digest = chain_digest(chain);
        let now_secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if let Some(hit) = self.cache.get(&digest) {
            return if now_secs >= hit.0.not_after {
                Err(CertificateError::Expired)
            } else {
                Ok(hit)
            };
        }
        let intermediates = chain.get(1..).unwrap_or_default();
        if intermediates.len() > self.max_intermediates + 1 {
            return Err(CertificateError::PathTooLong);
        }
        self.path_builds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ee = EndEntityCert::try_from(leaf).map_err(CertificateError::from)?;
        let max = self.max_intermediates;
        let check_depth = move |path: &webpki::VerifiedPath<'_>| {
            if path.intermediate_certificates().count() > max {
                Err(webpki::Error::MaximumPathDepthExceeded)
            } else {
                Ok(())
            }
        };
        let time = UnixTime::since_unix_epoch(Duration::from_secs(now_secs));
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &self.anchors,
            intermediates,
            time,
            self.usage,
            None,
            Some(&check_depth),
        )
        .map_err(CertificateError::from)?;
        let validated = read_leaf(leaf)?;
        let ttl = Duration::from_secs(validated.not_after.saturating_sub(now_secs))
            .min(Duration::from_secs(300));
        let entry = Arc::new((validated, ttl));
        self.cache.insert(digest, entry.clone());
        Ok(entry)
    }
}

fn chain_digest(chain: &[CertificateDer<'_>]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for c in chain {
        ctx.update(&(c.len() as u64).to_be_bytes());
        ctx.update(c.as_ref());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The certificates of a PEM bundle.
pub fn pem_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let body = rest.get(start + BEGIN.len()..).ok_or(PkiError::Pem)?;
        let end = body.find(END).ok_or(PkiError::Pem)?;
        let b64: String = body
            .get(..end)
            .ok_or(PkiError::Pem)?
            .split_whitespace()
            .collect();
        out.push(CertificateDer::from(
            STANDARD.decode(b64).map_err(|_| PkiError::Pem)?,
        ));
        rest = body.get(end + END.len()..).unwrap_or_default();
    }
    if out.is_empty() {
        Err(PkiError::Empty)
    } else {
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use dharma_test_support::pki::{Ca, Leaf};

    use super::*;

    /// The issue's reproduction: a clone of an `OrgCa` with stricter rules shared the cache
    /// of chains the looser one had validated.
    #[test]
    fn stricter_clones_do_not_share_validated_chains() {
        let root = Ca::root("Org Root");
        let intermediate = root.intermediate("Org Issuing", Some(0));
        let leaf = intermediate.issue(&Leaf::spiffe("spiffe://example.org/ns/pay/sa/api"));
        let now = UNIX_EPOCH + Duration::from_secs(1_893_456_000);
        let loose = OrgCa::from_der(&[root.der()]).unwrap().max_intermediates(1);
        assert!(loose.validate(&leaf.chain, now).is_ok());
        let strict = loose.clone().max_intermediates(0);
        assert_eq!(
            strict.validate(&leaf.chain, now).unwrap_err(),
            CertificateError::PathTooLong
        );
        let servers = loose.clone().usage(LeafUsage::ServerAuth);
        assert_eq!(
            servers.validate(&leaf.chain, now).unwrap_err(),
            CertificateError::WrongUsage
        );
        // The loose one still has its answer.
        assert!(loose.validate(&leaf.chain, now).is_ok());
    }
}
