//! Mutual TLS: the client's certificate chain is the credential.
//!
//! The chain the TLS layer received (leaf first, in the [`RequestView`]) is validated
//! against the organisation CA with rustls-webpki (client-authentication EKU, validity at
//! the request time, path length), or, with an explicit setting, taken as already
//! validated by the TLS layer. The identity is the SPIFFE ID (checked against the trust
//! domain), else the DNS SAN, else the subject CN.
//!
//! ```
//! use dharma_core::{RequestView, Verifier, mechanism::mtls::MtlsVerifier, pki::OrgCa};
//! # use dharma_test_support::pki::{Ca, Leaf};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! # let root = Ca::root("Org Root");
//! # let client = root.issue(&Leaf::spiffe("spiffe://example.org/ns/payments/sa/api"));
//! # let ca_pem = root.pem();
//! let mtls = MtlsVerifier::builder()
//!     .org_ca(OrgCa::from_pem(&ca_pem)?)
//!     .trust_domain("example.org")?
//!     .allow("spiffe://example.org/ns/payments/*")
//!     .build()?;
//!
//! // The TLS layer hands over the client's chain, leaf first.
//! let headers = http::HeaderMap::new();
//! let request = RequestView::new(&http::Method::GET, "/ledger", &headers)
//!     .with_peer_certificates(&client.chain);
//! let caller = mtls.verify(&request).await?;
//! assert_eq!(caller.identities()[0].subject(), "spiffe://example.org/ns/payments/sa/api");
//! # Ok::<(), Box<dyn std::error::Error>>(()) })
//! # }
//! ```

pub(crate) mod settings;

use std::sync::Arc;

use crate::{
    clock::{Clock, SystemClock},
    context::{Claims, Identity, IdentityKind},
    error::Rejection,
    mechanism::{Authenticated, Verifier},
    pki::{CertificateError, OrgCa, read_leaf},
    request::RequestView,
    util::BoxFuture,
};

/// A mutual-TLS configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MtlsConfigError {
    /// Neither an organisation CA nor `trust_tls_layer` was set (or both were).
    #[error("set exactly one of org_ca and trust_tls_layer")]
    Validation,
    /// The trust domain is not a valid SPIFFE trust domain.
    #[error("invalid trust domain {0:?}")]
    TrustDomain(String),
}

enum Validation {
    OrgCa(OrgCa),
    TlsLayer,
}

/// Builds an [`MtlsVerifier`].
#[must_use]
pub struct MtlsVerifierBuilder {
    ca: Option<OrgCa>,
    tls_layer: bool,
    trust_domain: Option<String>,
    allow: Vec<String>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MtlsVerifierBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtlsVerifierBuilder")
            .field("ca", &self.ca)
            .field("tls_layer", &self.tls_layer)
            .field("trust_domain", &self.trust_domain)
            .field("allow", &self.allow)
            .finish_non_exhaustive()
    }
}

impl MtlsVerifierBuilder {
    /// Validates chains against the organisation CA.
    pub fn org_ca(mut self, ca: OrgCa) -> Self {
        self.ca = Some(ca);
        self
    }
    /// Takes the chain as already validated by the TLS layer (a rustls server configured
    /// with a client-certificate verifier for the same CA). Only the identity is read.
    pub fn trust_tls_layer(mut self) -> Self {
        self.tls_layer = true;
        self
    }
    /// Requires a SPIFFE ID in this trust domain.
    pub fn trust_domain(mut self, domain: &str) -> Result<Self, MtlsConfigError> {
        self.trust_domain = Some(trust_domain(domain)?);
        Ok(self)
    }
    /// Allows identities matching this pattern (repeatable): a SPIFFE ID, a prefix ending
    /// in `/*`, or a DNS name or CN compared exactly. Without any, every identity that
    /// passes the other checks is allowed.
    pub fn allow(mut self, pattern: &str) -> Self {
        self.allow.push(pattern.to_owned());
        self
    }
    /// The clock for validity checks.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// Validates the configuration.
    pub fn build(self) -> Result<MtlsVerifier, MtlsConfigError> {
        let validation = match (self.ca, self.tls_layer) {
            (Some(ca), false) => Validation::OrgCa(ca),
            (None, true) => Validation::TlsLayer,
            _ => return Err(MtlsConfigError::Validation),
        };
        Ok(MtlsVerifier {
            validation,
            trust_domain: self.trust_domain,
            allow: self.allow,
            clock: self.clock,
        })
    }
}

/// Authenticates the client by its TLS certificate.
pub struct MtlsVerifier {
    validation: Validation,
    trust_domain: Option<String>,
    allow: Vec<String>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MtlsVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtlsVerifier")
            .field(
                "tls_layer",
                &matches!(self.validation, Validation::TlsLayer),
            )
            .field("trust_domain", &self.trust_domain)
            .field("allow", &self.allow)
            .finish()
    }
}

impl MtlsVerifier {
    /// Starts configuring.
    pub fn builder() -> MtlsVerifierBuilder {
        MtlsVerifierBuilder {
            ca: None,
            tls_layer: false,
            trust_domain: None,
            allow: Vec::new(),
            clock: Arc::new(SystemClock),
        }
    }

    fn check(&self, request: &RequestView<'_>) -> Result<Authenticated, Rejection> {
        let chain = request.peer_certificates();
        let Some(leaf) = chain.first() else {
            return Err(Rejection::MissingCredentials);
        };
        let identity = match &self.validation {
            Validation::OrgCa(ca) => ca
                .validate(chain, self.clock.now())
                .map_err(Rejection::Certificate)?
                .0
                .identity
                .clone(),
            Validation::TlsLayer => read_leaf(leaf).map_err(Rejection::Certificate)?.identity,
        };
        check_identity(&identity, self.trust_domain.as_deref(), &self.allow)
            .map_err(Rejection::Certificate)?;
        let name = identity
            .name()
            .ok_or(Rejection::Certificate(CertificateError::NoIdentity))?;
        Ok(Authenticated::new(vec![
            Identity::new(IdentityKind::Workload, name).with_claims(Claims::new(identity.claims())),
        ]))
    }
}

/// Checks a SPIFFE trust domain name.
pub(crate) fn trust_domain(domain: &str) -> Result<String, MtlsConfigError> {
    if domain.contains('/')
        || format!("spiffe://{domain}")
            .parse::<crate::names::SpiffeId>()
            .is_err()
    {
        return Err(MtlsConfigError::TrustDomain(crate::util::truncate(
            domain, 64,
        )));
    }
    Ok(domain.to_owned())
}

/// The trust-domain and allow-list rules shared by mTLS and x5c-signed tokens.
pub(crate) fn check_identity(
    identity: &crate::pki::CertIdentity,
    trust_domain: Option<&str>,
    allow: &[String],
) -> Result<(), CertificateError> {
    let name = identity.name().ok_or(CertificateError::NoIdentity)?;
    if let Some(domain) = trust_domain {
        match &identity.spiffe_id {
            Some(id) if id.trust_domain() == domain => {}
            _ => {
                return Err(CertificateError::NotAllowed(crate::util::truncate(
                    name, 128,
                )));
            }
        }
    }
    if allow.is_empty() || matches_any(identity, allow) {
        Ok(())
    } else {
        Err(CertificateError::NotAllowed(crate::util::truncate(
            name, 128,
        )))
    }
}

/// Whether a certificate identity is named by one of `patterns`: a SPIFFE ID matches an
/// exact ID or a `/*` prefix, any other identity its exact name.
pub(crate) fn matches_any(identity: &crate::pki::CertIdentity, patterns: &[String]) -> bool {
    let Some(name) = identity.name() else {
        return false;
    };
    patterns.iter().any(|p| match &identity.spiffe_id {
        Some(id) => id.matches(p),
        None => p == name,
    })
}

impl Verifier for MtlsVerifier {
    fn verify<'a>(
        &'a self,
        request: &'a RequestView<'a>,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
        let result = self.check(request);
        Box::pin(async move { result })
    }
}
