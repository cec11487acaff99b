//! JWTs signed with an organisation-issued certificate: the trust mechanism of the outer
//! domain in the three-tier deployment.
//!
//! The token carries its certificate chain in the `x5c` header. The chain is validated
//! against the organisation CA (rustls-webpki, cached by digest), the leaf's key verifies
//! the signature (the algorithm fixed by that key), and the workload identity comes from
//! the leaf (SPIFFE ID or DNS SAN). Claims may be bound to that identity (`iss`, `sub`
//! or `azp` must equal it), and leaves may be pinned by `x5t#S256`.
//!
//! The signing workload is the principal. The users and clients a token names are
//! authenticated only when its signer is a listed token service
//! ([`token_service`](X5cJwtVerifierBuilder::token_service)); otherwise they are recorded
//! for accountability, so one compromised workload cannot speak for every user.
//!
//! ```
//! use dharma_core::mechanism::x5c::{X5cBinding, X5cJwtVerifier};
//! use dharma_core::pki::OrgCa;
//! # use dharma_test_support::{keys::claims, pki::{Ca, Leaf}};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let root = Ca::root("Org Root");
//! # let sts = root.issue(&Leaf::spiffe("spiffe://example.org/ns/outer/sa/sts"));
//! # let token = sts.signer("sts").sign_with_header(
//! #     serde_json::json!({"x5c": sts.x5c(), "kid": null}),
//! #     &claims("spiffe://example.org/ns/outer/sa/sts", "inner", "payments"),
//! # );
//! let verifier = X5cJwtVerifier::builder(OrgCa::from_pem(&root.pem())?)
//!     .audience("inner")
//!     .trust_domain("example.org")?
//!     .bind(X5cBinding::Issuer) // iss must be the certificate's SPIFFE ID
//!     .token_service("spiffe://example.org/ns/outer/sa/sts") // it may assert users
//!     .build()?;
//! let caller = verifier.verify_token(&token)?;
//! let workload = caller.identities().last().unwrap();
//! assert_eq!(workload.subject(), "spiffe://example.org/ns/outer/sa/sts");
//! assert!(caller.identities()[0].is_authenticated()); // the user the STS vouches for
//! # Ok(()) }
//! ```

pub(crate) mod settings;

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use rustls_pki_types::CertificateDer;
use std::borrow::Cow;

use super::token::{ClaimRules, Payload};
use crate::{
    clock::{Clock, SystemClock},
    context::{Claims, Identity, IdentityKind},
    error::{MalformedRequest, Rejection, TokenError},
    jose::jws::{Compact, Scratch},
    mechanism::mtls::{MtlsConfigError, check_identity, matches_any},
    mechanism::{Authenticated, TokenVerifier, Verifier},
    names::{Audience, Issuer, NameError},
    pki::{CertificateError, OrgCa},
    request::RequestView,
    util::{BoxFuture, truncate},
};

/// A claim that must name the certificate's workload identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum X5cBinding {
    /// `iss` equals the identity.
    Issuer,
    /// `sub` equals the identity.
    Subject,
    /// `azp` equals the identity.
    AuthorizedParty,
}

impl X5cBinding {
    fn claim(self) -> &'static str {
        match self {
            Self::Issuer => "iss",
            Self::Subject => "sub",
            Self::AuthorizedParty => "azp",
        }
    }
}

/// An x5c verifier configuration that cannot work.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum X5cConfigError {
    /// No audience: tokens meant for other services would be accepted.
    #[error("no audience configured")]
    NoAudience,
    /// An audience does not parse.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The trust domain is invalid.
    #[error(transparent)]
    TrustDomain(#[from] MtlsConfigError),
    /// A token service entry that names every workload of a trust domain, which would let
    /// any workload assert users again.
    #[error(
        "token service {0:?} names every workload of a trust domain: list the token services' own SPIFFE IDs (or a path below the trust domain)"
    )]
    TokenServiceTooBroad(String),
}

/// Builds an [`X5cJwtVerifier`].
#[derive(Debug)]
#[must_use]
pub struct X5cJwtVerifierBuilder {
    ca: OrgCa,
    audiences: Vec<String>,
    trust_domain: Option<String>,
    allow: Vec<String>,
    bindings: Vec<X5cBinding>,
    pins: Vec<String>,
    token_services: Vec<String>,
    leeway: Duration,
    types: Vec<String>,
    max_token_bytes: usize,
    clock: Arc<dyn Clock>,
}

impl X5cJwtVerifierBuilder {
    /// A signer (SPIFFE ID, `spiffe://td/path/*` prefix, or DNS name) that is a token
    /// service: the users and clients its tokens name are authenticated. Repeatable.
    ///
    /// By default the principal of an x5c token is the workload that signed it, and the
    /// subjects its claims name (`sub`, `client_id`) are kept for accountability only: any
    /// workload holding an organisation certificate can sign a token, and none of them
    /// should be able to speak for every user. A token service (the domain's STS) is the
    /// one that may; so may a token bound by [`X5cBinding::Subject`], whose subject is
    /// the signer itself.
    pub fn token_service(mut self, signer: &str) -> Self {
        self.token_services.push(signer.to_owned());
        self
    }
    /// Accepts tokens addressed to this audience (repeatable; at least one).
    pub fn audience(mut self, audience: &str) -> Self {
        self.audiences.push(audience.to_owned());
        self
    }
    /// Requires the leaf's SPIFFE ID to be in this trust domain.
    pub fn trust_domain(mut self, domain: &str) -> Result<Self, X5cConfigError> {
        self.trust_domain = Some(crate::mechanism::mtls::trust_domain(domain)?);
        Ok(self)
    }
    /// Allows leaf identities matching this pattern (repeatable; see the mTLS allow-list).
    pub fn allow(mut self, pattern: &str) -> Self {
        self.allow.push(pattern.to_owned());
        self
    }
    /// Requires a claim to equal the leaf's identity (repeatable).
    pub fn bind(mut self, binding: X5cBinding) -> Self {
        self.bindings.push(binding);
        self
    }
    /// Accepts only leaves with this SHA-256 thumbprint, base64url (repeatable).
    pub fn pin_x5t_s256(mut self, thumbprint: &str) -> Self {
        self.pins.push(thumbprint.to_owned());
        self
    }
    /// Clock skew tolerated on `exp`, `nbf` and `iat` (default 30 seconds).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }
    /// Requires the header `typ` (repeatable).
    pub fn require_type(mut self, typ: &str) -> Self {
        self.types.push(super::token::media_type(typ));
        self
    }
    /// The clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// Validates the configuration.
    pub fn build(self) -> Result<X5cJwtVerifier, X5cConfigError> {
        let audiences = self
            .audiences
            .iter()
            .map(|a| a.parse())
            .collect::<Result<Vec<Audience>, _>>()?;
        if audiences.is_empty() {
            return Err(X5cConfigError::NoAudience);
        }
        if let Some(broad) = self.token_services.iter().find(|p| {
            p.strip_suffix("/*")
                .and_then(|prefix| prefix.strip_prefix("spiffe://"))
                .is_some_and(|td| !td.contains('/'))
                || p.as_str() == "*"
        }) {
            return Err(X5cConfigError::TokenServiceTooBroad(broad.clone()));
        }
        Ok(X5cJwtVerifier {
            ca: self.ca,
            audiences,
            trust_domain: self.trust_domain,
            allow: self.allow,
            bindings: self.bindings,
            pins: self.pins,
            token_services: self.token_services,
            rules: ClaimRules {
                leeway: self.leeway.as_secs(),
                types: self.types,
                required: Vec::new(),
                accept_scp: false,
            },
            max_token_bytes: self.max_token_bytes,
            clock: self.clock,
        })
    }
}

/// Verifies bearer JWTs signed by the key of an `x5c` certificate from the organisation CA.
pub struct X5cJwtVerifier {
    ca: OrgCa,
    audiences: Vec<Audience>,
    trust_domain: Option<String>,
    allow: Vec<String>,
    bindings: Vec<X5cBinding>,
    pins: Vec<String>,
    token_services: Vec<String>,
    rules: ClaimRules,
    max_token_bytes: usize,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for X5cJwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X5cJwtVerifier")
            .field("ca", &self.ca)
            .field("audiences", &self.audiences)
            .field("trust_domain", &self.trust_domain)
            .field("bindings", &self.bindings)
            .field("token_services", &self.token_services)
            .finish_non_exhaustive()
    }
}

fn x5c_chain(
    value: Option<Result<Vec<Cow<'_, str>>, TokenError>>,
) -> Result<Vec<CertificateDer<'static>>, Rejection> {
    let bad = || {
        Rejection::from(TokenError::Malformed(
            "x5c is not an array of base64 certificates",
        ))
    };
    let list = value.ok_or(TokenError::Malformed("no x5c header"))??;
    if list.is_empty() || list.len() > 8 {
        return Err(bad());
    }
    list.iter()
        .map(|s| {
            STANDARD
                .decode(s.as_bytes())
                .map(CertificateDer::from)
                .map_err(|_| bad())
        })
        .collect()
}

impl X5cJwtVerifier {
    /// Starts configuring a verifier trusting certificates of `ca`.
    pub fn builder(ca: OrgCa) -> X5cJwtVerifierBuilder {
        X5cJwtVerifierBuilder {
            ca,
            audiences: Vec::new(),
            trust_domain: None,
            allow: Vec::new(),
            bindings: Vec::new(),
            pins: Vec::new(),
            token_services: Vec::new(),
            leeway: Duration::from_secs(30),
            types: Vec::new(),
            max_token_bytes: 16 * 1024,
            clock: Arc::new(SystemClock),
        }
    }

    /// Verifies one token.
    pub fn verify_token(&self, token: &str) -> Result<Authenticated, Rejection> {
        if token.len() > self.max_token_bytes {
            return Err(TokenError::TooLarge {
                len: token.len(),
                max: self.max_token_bytes,
            }
            .into());
        }
        let mut scratch = Scratch::new();
        let jws = Compact::parse(token, &mut scratch)?;
        let chain = x5c_chain(jws.x5c())?;
        let leaf = chain
            .first()
            .ok_or(TokenError::Malformed("no x5c header"))?;
        let thumbprint = crate::pki::thumbprint(leaf.as_ref());
        if let Some(x5t) = jws.x5t_s256()
            && x5t.as_deref() != Some(thumbprint.as_str())
        {
            return Err(TokenError::Malformed("x5t#S256 does not match the x5c leaf").into());
        }
        if !self.pins.is_empty() && !self.pins.contains(&thumbprint) {
            return Err(Rejection::Certificate(CertificateError::NotPinned));
        }
        let validated = self
            .ca
            .validate(&chain, self.clock.now())
            .map_err(Rejection::Certificate)?;
        let (chain_info, _) = &*validated;
        check_identity(
            &chain_info.identity,
            self.trust_domain.as_deref(),
            &self.allow,
        )
        .map_err(Rejection::Certificate)?;
        let key = chain_info
            .key
            .as_ref()
            .map_err(|e| Rejection::Certificate(e.clone()))?;
        self.rules.check_type(jws.typ())?;
        jws.verify(key)?;
        let claims = Payload::read(jws.payload()?)?;
        self.rules
            .check(&claims, &self.audiences, self.clock.unix_seconds())?;
        // The token is bound to the certificate that signed it; a further confirmation
        // (RFC 7800) is one this mechanism cannot check, so it is refused.
        if claims.has_confirmation() {
            return Err(TokenError::UnverifiableConfirmation.into());
        }
        let workload = chain_info
            .identity
            .name()
            .ok_or(Rejection::Certificate(CertificateError::NoIdentity))?;
        for binding in &self.bindings {
            if Payload::string(claims.find(binding.claim())).as_deref() != Some(workload) {
                return Err(TokenError::Claim(binding.claim().to_owned()).into());
            }
        }
        let issuer = Payload::string(claims.iss).and_then(|s| s.parse::<Issuer>().ok());
        let asserts_users = self.bindings.contains(&X5cBinding::Subject)
            || matches_any(&chain_info.identity, &self.token_services);
        let names = claims.names();
        let mut identities = names
            .identities(jws.into_payload(), issuer.as_ref(), token, None)
            .unwrap_or_default();
        if !asserts_users {
            identities = identities
                .into_iter()
                .map(|i| i.for_accountability(true))
                .collect();
        }
        identities.push(
            Identity::new(IdentityKind::Workload, truncate(workload, 256))
                .with_claims(Claims::new(chain_info.identity.claims())),
        );
        Ok(Authenticated::new(identities))
    }
}

impl TokenVerifier for X5cJwtVerifier {
    fn verify_token<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
        let result = X5cJwtVerifier::verify_token(self, token);
        Box::pin(async move { result })
    }
}

impl Verifier for X5cJwtVerifier {
    fn verify<'a>(
        &'a self,
        request: &'a RequestView<'a>,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
        let result = match request.bearer_token() {
            Ok(Some(token)) => self.verify_token(token),
            Ok(None) => Err(Rejection::MissingCredentials),
            Err(e) => Err(MalformedRequest::from(e).into()),
        };
        Box::pin(async move { result })
    }
}
