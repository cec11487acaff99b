//! Building a [`JwtVerifier`]: its configuration, checked whole.

use std::{sync::Arc, time::Duration};

use super::headers::Headers;
use super::issuer::{IssuerEntry, IssuerMatch, IssuerSpec, SourceSpec};
use super::verifier::{Inner, JwtVerifier, TokenMemory};
use crate::{
    clock::{Clock, SystemClock},
    jose::AlgorithmSet,
    jwks::{CachePolicy, KeySource, KeyStore, PolicyError, SourceError},
    mechanism::{
        cache::{KeyedHash, TokenCache},
        token::ClaimRules,
    },
    names::{Audience, Issuer, NameError},
    transport::{HttpClient, Offline},
};

/// A JWT verifier configuration that cannot work.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum JwtConfigError {
    /// No issuer is configured.
    #[error("no issuer configured")]
    NoIssuer,
    /// An issuer, audience or key id does not parse.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The same issuer twice.
    #[error("issuer {0:?} is configured twice")]
    DuplicateIssuer(String),
    /// An issuer has no audience: tokens meant for other services would be accepted.
    #[error("issuer {0:?} has no audience")]
    NoAudience(String),
    /// An issuer has no key source.
    #[error("issuer {0:?} has no key source")]
    NoKeySource(String),
    /// An issuer allows no algorithm.
    #[error("issuer {0:?} allows no algorithm")]
    NoAlgorithm(String),
    /// A key source URL is unusable.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The cache policy is inconsistent.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// An issuer template without exactly one `{tenant}`, or with a listed tenant that
    /// cannot be one.
    #[error(
        "issuer template {0:?} needs one {{tenant}} and tenants of letters, digits, '.', '_' or '-'"
    )]
    Template(String),
    /// An issuer template with discovery, which is per issuer.
    #[error("issuer template {0:?} needs a jwks_uri: discovery is per issuer")]
    TemplateDiscovery(String),
    /// A token size limit below any real token.
    #[error("max_token_bytes must be at least 64")]
    TokenLimit,
    /// No HTTP client is available (the `http-client` feature is off and none was given).
    #[error("no HTTP client: enable the http-client feature or provide one")]
    NoHttpClient,
    /// The default HTTP client could not be created.
    #[error("default HTTP client: {0}")]
    HttpClient(String),
    /// The system's random source failed (the token cache's key is drawn from it).
    #[error("the system's random source failed")]
    Random,
}

/// Builds a [`JwtVerifier`].
#[derive(Debug)]
#[must_use]
pub struct JwtVerifierBuilder {
    issuers: Vec<IssuerSpec>,
    audiences: Vec<String>,
    leeway: Duration,
    types: Vec<String>,
    required: Vec<String>,
    bound: bool,
    accept_scp: bool,
    max_token_bytes: usize,
    policy: CachePolicy,
    token_cache_capacity: u64,
    client: Option<Arc<dyn HttpClient>>,
    clock: Arc<dyn Clock>,
}

impl JwtVerifierBuilder {
    pub(super) fn new() -> Self {
        Self {
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: Duration::from_secs(30),
            types: Vec::new(),
            required: Vec::new(),
            bound: false,
            accept_scp: false,
            max_token_bytes: 8 * 1024,
            policy: CachePolicy::default(),
            token_cache_capacity: 10_000,
            client: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Trusts an issuer (repeatable).
    pub fn issuer(mut self, issuer: IssuerSpec) -> Self {
        self.issuers.push(issuer);
        self
    }
    /// An audience accepted from every issuer that names none of its own.
    pub fn audience(mut self, audience: &str) -> Self {
        self.audiences.push(audience.to_owned());
        self
    }
    /// Clock skew tolerated on `exp`, `nbf` and `iat` (default 30 seconds).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }
    /// Requires the header `typ` to be this (repeatable), e.g. `at+jwt` for RFC 9068
    /// access tokens. Compared case-insensitively, `application/` optional.
    pub fn require_type(mut self, typ: &str) -> Self {
        self.types.push(crate::mechanism::token::media_type(typ));
        self
    }
    /// Accepts a `scp` claim that is an array of scopes (as Okta and Microsoft Entra write
    /// it) in tokens checked under the RFC 9068 profile. That profile applies whenever
    /// `at+jwt` is required: `sub`, `client_id`, `jti` and `iat` must be present and `scope`
    /// must be one space-delimited string; without this option a token with `scp` is
    /// refused, since `scp` is not part of the profile.
    pub fn accept_scp_array(mut self) -> Self {
        self.accept_scp = true;
        self
    }
    /// Requires a claim to be present (repeatable).
    pub fn require_claim(mut self, name: &str) -> Self {
        self.required.push(name.to_owned());
        self
    }
    /// Requires certificate-bound tokens (RFC 8705): `cnf.x5t#S256` must be the SHA-256
    /// thumbprint of the client's mutual-TLS certificate. Without this, a token that
    /// carries a `cnf` is still checked against it (and refused when it cannot be).
    pub fn require_certificate_binding(mut self) -> Self {
        self.bound = true;
        self
    }
    /// Longest token accepted, in bytes (default 8 KiB).
    pub fn max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = max;
        self
    }
    /// How keys are cached.
    pub fn cache_policy(mut self, policy: CachePolicy) -> Self {
        self.policy = policy;
        self
    }
    /// How many verified tokens to remember (default 10 000; 0 turns the cache off).
    pub fn token_cache_capacity(mut self, capacity: u64) -> Self {
        self.token_cache_capacity = capacity;
        self
    }
    /// The HTTP client for key sets and discovery.
    pub fn http_client(mut self, client: Arc<dyn HttpClient>) -> Self {
        self.client = Some(client);
        self
    }
    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Validates the configuration.
    pub fn build(self) -> Result<JwtVerifier, JwtConfigError> {
        if self.issuers.is_empty() {
            return Err(JwtConfigError::NoIssuer);
        }
        if self.max_token_bytes < 64 {
            return Err(JwtConfigError::TokenLimit);
        }
        self.policy.validate()?;
        let default_audiences = parse_all::<Audience>(&self.audiences)?;
        let mut client = self.client;
        let mut issuers: Vec<IssuerEntry> = Vec::with_capacity(self.issuers.len());
        for spec in self.issuers {
            let issuer: Issuer = spec.issuer.parse()?;
            let matcher = if spec.template {
                if matches!(spec.source, SourceSpec::Discovery) {
                    return Err(JwtConfigError::TemplateDiscovery(spec.issuer));
                }
                IssuerMatch::template(&spec.issuer, &spec.tenants)
                    .map_err(|_| JwtConfigError::Template(spec.issuer.clone()))?
            } else {
                IssuerMatch::Exact(issuer.clone())
            };
            if issuers.iter().any(|i| i.matcher.same_as(&matcher)) {
                return Err(JwtConfigError::DuplicateIssuer(spec.issuer));
            }
            let mut audiences = parse_all::<Audience>(&spec.audiences)?;
            if audiences.is_empty() {
                audiences = default_audiences.clone();
            }
            if audiences.is_empty() {
                return Err(JwtConfigError::NoAudience(spec.issuer));
            }
            let algorithms = spec.algorithms.unwrap_or_else(AlgorithmSet::all);
            if algorithms.is_empty() {
                return Err(JwtConfigError::NoAlgorithm(spec.issuer));
            }
            let source = match spec.source {
                SourceSpec::None => return Err(JwtConfigError::NoKeySource(spec.issuer)),
                SourceSpec::JwksUri(url) => KeySource::jwks_uri(&url)?,
                SourceSpec::Discovery => KeySource::discovery(&spec.issuer)?,
                SourceSpec::Static(keys) => KeySource::fixed(keys),
            };
            let http: Arc<dyn HttpClient> = match (&client, &source) {
                (Some(c), _) => c.clone(),
                (None, KeySource::Static(_)) => Arc::new(Offline),
                (None, _) => {
                    let c = default_client()?;
                    client = Some(c.clone());
                    c
                }
            };
            let store = KeyStore::new(
                issuer.clone(),
                source,
                self.policy.clone(),
                http,
                self.clock.clone(),
            );
            issuers.push(IssuerEntry {
                issuer,
                matcher,
                audiences,
                algorithms,
                store,
            });
        }
        Ok(JwtVerifier {
            inner: Arc::new(Inner {
                issuers,
                rules: ClaimRules {
                    leeway: self.leeway.as_secs(),
                    types: self.types,
                    required: self.required,
                    accept_scp: self.accept_scp,
                },
                max_token_bytes: self.max_token_bytes,
                bound: self.bound,
                cache: match self.token_cache_capacity {
                    0 => None,
                    capacity => Some(TokenMemory {
                        name: KeyedHash::random().map_err(|_| JwtConfigError::Random)?,
                        tokens: TokenCache::new(capacity),
                    }),
                },
                headers: Headers::default(),
                clock: self.clock,
            }),
        })
    }
}

fn parse_all<T: std::str::FromStr<Err = NameError>>(items: &[String]) -> Result<Vec<T>, NameError> {
    items.iter().map(|s| s.parse()).collect()
}

#[cfg(feature = "http-client")]
fn default_client() -> Result<Arc<dyn HttpClient>, JwtConfigError> {
    crate::transport::HyperClient::new()
        .map(|c| Arc::new(c) as Arc<dyn HttpClient>)
        .map_err(|e| JwtConfigError::HttpClient(e.to_string()))
}

#[cfg(not(feature = "http-client"))]
fn default_client() -> Result<Arc<dyn HttpClient>, JwtConfigError> {
    Err(JwtConfigError::NoHttpClient)
}
