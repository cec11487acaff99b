//! The JWT mechanism: bearer access tokens signed by configured issuers.
//!
//! ```
//! use std::time::Duration;
//! use dharma_core::mechanism::jwt::{IssuerSpec, JwtVerifier, VerifyingKey};
//! # use dharma_test_support::{TestKey, keys::claims};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
//! # let key = TestKey::generate("ES256", "k1");
//! # let token = key.sign(&claims("https://idp.example", "orders-api", "orders:read"));
//! // In production the keys come from the issuer: `.discovery()` or `.jwks_uri(url)`,
//! // then `verifier.warm_up().await?` before the service reports ready and
//! // `verifier.spawn_refresh()` to keep them fresh. Here, one fixed key:
//! let verifier = JwtVerifier::builder()
//!     .issuer(IssuerSpec::new("https://idp.example").keys([VerifyingKey::from_jwk(&key.jwk())?]).audience("orders-api"))
//!     .require_type("at+jwt")
//!     .leeway(Duration::from_secs(30))
//!     .build()?;
//! let caller = verifier.verify_token(&token).await?;
//! assert!(caller.identities()[0].claims().has_scope("orders:read"));
//!
//! // Certificate-bound tokens (RFC 8705): `cnf.x5t#S256` must name the client's TLS
//! // certificate, checked on every request, cached tokens included.
//! let bound = JwtVerifier::builder()
//!     .issuer(IssuerSpec::new("https://idp.example").discovery().audience("orders-api"))
//!     .require_certificate_binding()
//!     .build()?;
//! # let _ = bound;
//! # Ok::<(), Box<dyn std::error::Error>>(()) })
//! # }
//! ```

use std::{fmt, sync::Arc, time::Duration};

use super::issuer::{IssuerEntry, IssuerMatch, IssuerSpec, SourceSpec};
use crate::mechanism::cache::TokenCache;

use crate::mechanism::token::{ClaimRules, Payload, check_confirmation, check_unbound};
use crate::{
    clock::{Clock, SystemClock},
    error::{MalformedRequest, Rejection, TokenError, UnavailableError},
    jose::{
        Algorithm, AlgorithmSet, VerifyingKey,
        jws::{Compact, Scratch},
    },
    jwks::{
        CachePolicy, KeyLookupError, KeySource, KeySourceError, KeyStatus, KeyStore, PolicyError,
        SourceError, spawn_refresher,
    },
    mechanism::{Authenticated, BackgroundTask, TokenVerifier, Verifier},
    names::{Audience, Issuer, NameError},
    request::RequestView,
    transport::{HttpClient, Offline},
    util::BoxFuture,
};

/// What is remembered of a verified token.
#[derive(Debug)]
struct Verified {
    authenticated: Authenticated,
    exp: u64,
    /// The issuer entry whose key set verified it.
    store: usize,
    thumbprint: [u8; 32],
    /// How long the token has left (until `exp`, measured when verified).
    ttl: Duration,
}

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
                cache: (self.token_cache_capacity > 0)
                    .then(|| TokenCache::new(self.token_cache_capacity)),
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

struct Inner {
    issuers: Vec<IssuerEntry>,
    rules: ClaimRules,
    max_token_bytes: usize,
    bound: bool,
    cache: Option<TokenCache<Verified>>,
    clock: Arc<dyn Clock>,
}

/// Verifies bearer JWTs from the `Authorization` header against trusted issuers' keys.
/// Cheap to clone: clones share keys and caches.
#[derive(Clone)]
pub struct JwtVerifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuers", &self.inner.issuers)
            .field("rules", &self.inner.rules)
            .field("max_token_bytes", &self.inner.max_token_bytes)
            .field("cache", &self.inner.cache)
            .finish()
    }
}

impl JwtVerifier {
    /// Starts configuring a verifier.
    pub fn builder() -> JwtVerifierBuilder {
        JwtVerifierBuilder {
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

    /// Loads every issuer's keys now. Call it before the service reports ready.
    pub async fn warm_up(&self) -> Result<(), KeySourceError> {
        for entry in &self.inner.issuers {
            if entry.store.next_refresh().is_some() {
                entry.store.refresh().await?;
            }
        }
        Ok(())
    }

    /// Starts a background task (on the current Tokio runtime) that refreshes keys before
    /// they expire. The task stops when the handle is dropped or stopped.
    pub fn spawn_refresh(&self) -> BackgroundTask {
        spawn_refresher(
            self.inner.issuers.iter().map(|i| i.store.clone()).collect(),
            self.inner.clock.clone(),
        )
    }

    /// How many key fetches have started, per issuer (for metrics and tests).
    pub fn key_fetches(&self) -> Vec<(Issuer, u64)> {
        self.inner
            .issuers
            .iter()
            .map(|i| (i.store.issuer().clone(), i.store.fetch_count()))
            .collect()
    }

    /// The longest token accepted.
    pub fn max_token_bytes(&self) -> usize {
        self.inner.max_token_bytes
    }

    /// Verifies one token.
    pub async fn verify_token(&self, token: &str) -> Result<Authenticated, Rejection> {
        let inner = &*self.inner;
        if token.len() > inner.max_token_bytes {
            return Err(TokenError::TooLarge {
                len: token.len(),
                max: inner.max_token_bytes,
            }
            .into());
        }
        // The digest names the token in the cache; without a cache it is needed only
        // for a token without `jti` (its audit name).
        let digest = inner
            .cache
            .as_ref()
            .map(|_| crate::mechanism::token::digest(token));
        if let (Some(cache), Some(digest)) = (&inner.cache, &digest)
            && let Some(hit) = cache.get(digest)
            && let Some(answer) = self.check_cached(&hit, digest, cache)
        {
            return answer;
        }
        let (verified, authenticated) = self.verify_cold(token, digest.as_ref()).await?;
        if let (Some(cache), Some(digest)) = (&inner.cache, digest) {
            // A token with no time left is not remembered.
            if !verified.ttl.is_zero() {
                cache.insert(digest, verified);
            }
        }
        Ok(authenticated)
    }

    /// The answer for a cached token, or `None` when its key set is past the stale window:
    /// the token is then verified again, which refreshes the key set (and fails with
    /// `503` only if the issuer is down).
    fn check_cached(
        &self,
        hit: &Verified,
        digest: &[u8; 32],
        cache: &TokenCache<Verified>,
    ) -> Option<Result<Authenticated, Rejection>> {
        let inner = &*self.inner;
        let now = inner.clock.unix_seconds();
        if now > hit.exp.saturating_add(inner.rules.leeway) {
            cache.remove(digest);
            return Some(Err(TokenError::Expired { now, exp: hit.exp }.into()));
        }
        let Some(entry) = inner.issuers.get(hit.store) else {
            return Some(Err(TokenError::KeyRevoked.into()));
        };
        match entry.store.status(&hit.thumbprint) {
            KeyStatus::Current => Some(Ok(hit.authenticated.clone())),
            KeyStatus::Gone => {
                cache.remove(digest);
                Some(Err(TokenError::KeyRevoked.into()))
            }
            KeyStatus::Unavailable => {
                cache.remove(digest);
                None
            }
        }
    }

    /// Verifies a token not in the cache. The work is synchronous whenever the issuer's
    /// key set in hand can answer, so the token's decoding buffers never live in a future;
    /// only a key set that must be fetched first is waited for.
    async fn verify_cold(
        &self,
        token: &str,
        digest: Option<&[u8; 32]>,
    ) -> Result<(Verified, Authenticated), Rejection> {
        let (store, kid, alg) = match self.verify_now(token, digest, None)? {
            Cold::Done(verified, authenticated) => return Ok((verified, authenticated)),
            Cold::NeedKey { store, kid, alg } => (store, kid, alg),
        };
        let entry = self
            .inner
            .issuers
            .get(store)
            .ok_or(TokenError::KeyRevoked)?;
        let key = entry
            .store
            .key(kid.as_deref(), alg)
            .await
            .map_err(|e| key_error(e, kid.as_deref()))?;
        match self.verify_now(token, digest, Some(key))? {
            Cold::Done(verified, authenticated) => Ok((verified, authenticated)),
            // With the key given, the token needs nothing more.
            Cold::NeedKey { .. } => Err(TokenError::KeyRevoked.into()),
        }
    }

    /// Verifies with the key set in hand, or with `key` when the slow path fetched it.
    fn verify_now(
        &self,
        token: &str,
        digest: Option<&[u8; 32]>,
        key: Option<Arc<VerifyingKey>>,
    ) -> Result<Cold, Rejection> {
        let inner = &*self.inner;
        let mut scratch = Scratch::new();
        let jws = Compact::parse(token, &mut scratch)?;
        let payload = jws.payload()?;
        let claims = Payload::read(&payload)?;
        let iss = Payload::string(claims.iss).unwrap_or_default();
        let (index, entry, tenant) = inner
            .issuers
            .iter()
            .enumerate()
            .find_map(|(i, e)| e.matcher.matches(&iss).map(|tenant| (i, e, tenant)))
            .ok_or_else(|| TokenError::UntrustedIssuer(crate::util::truncate(&iss, 64)))?;
        if !entry.algorithms.contains(jws.alg()) {
            return Err(TokenError::UnsupportedAlgorithm(jws.alg().name().to_owned()).into());
        }
        inner.rules.check_type(jws.typ())?;
        let key = match key {
            Some(key) => key,
            None => match entry.store.key_now(jws.kid(), jws.alg()) {
                Some(found) => found.map_err(|e| key_error(e, jws.kid()))?,
                None => {
                    return Ok(Cold::NeedKey {
                        store: index,
                        kid: jws.kid().map(str::to_owned),
                        alg: jws.alg(),
                    });
                }
            },
        };
        jws.verify(&key)?;
        let now = inner.clock.unix_seconds();
        let exp = inner.rules.check(&claims, &entry.audiences, now)?;
        // A template's tokens name their own issuer, the tenant's.
        let tenant_issuer = match tenant {
            None => None,
            Some(tenant) => Some((
                iss.parse::<Issuer>()
                    .map_err(|_| TokenError::UntrustedIssuer(crate::util::truncate(&iss, 64)))?,
                Arc::<str>::from(tenant),
            )),
        };
        let names = claims.names();
        let identities = match tenant_issuer {
            None => names.identities(payload, Some(&entry.issuer), token, digest)?,
            Some((issuer, tenant)) => names
                .identities(payload, Some(&issuer), token, digest)?
                .into_iter()
                .map(|i| i.with_tenant(tenant.clone()))
                .collect(),
        };
        let authenticated = Authenticated::new(identities);
        let verified = Verified {
            authenticated: authenticated.clone(),
            exp,
            store: index,
            thumbprint: *key.thumbprint(),
            ttl: Duration::from_secs(exp.saturating_sub(now)),
        };
        Ok(Cold::Done(verified, authenticated))
    }
}

/// What verifying with the key set in hand came to.
enum Cold {
    Done(Verified, Authenticated),
    /// The issuer's key set must be fetched before the token can be checked.
    NeedKey {
        store: usize,
        kid: Option<String>,
        alg: Algorithm,
    },
}

fn key_error(error: KeyLookupError, kid: Option<&str>) -> Rejection {
    match error {
        KeyLookupError::Unknown => TokenError::UnknownKey {
            kid: kid.map(|k| crate::util::truncate(k, 64)),
        }
        .into(),
        KeyLookupError::Unavailable(e) => Rejection::Unavailable(e.into()),
    }
}

impl TokenVerifier for JwtVerifier {
    fn verify_token<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
        Box::pin(async move {
            let authenticated = JwtVerifier::verify_token(self, token).await?;
            check_unbound(&authenticated, self.inner.bound)?;
            Ok(authenticated)
        })
    }
}

impl Verifier for JwtVerifier {
    fn verify<'a>(
        &'a self,
        request: &'a RequestView<'a>,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
        Box::pin(async move {
            let authenticated = match request.bearer_token() {
                Ok(Some(token)) => self.verify_token(token).await?,
                Ok(None) => return Err(Rejection::MissingCredentials),
                Err(e) => return Err(MalformedRequest::from(e).into()),
            };
            check_confirmation(&authenticated, request, self.inner.bound)?;
            Ok(authenticated)
        })
    }

    fn warm_up(&self) -> BoxFuture<'_, Result<(), UnavailableError>> {
        Box::pin(async move { Ok(JwtVerifier::warm_up(self).await?) })
    }

    fn spawn_background(&self) -> Option<BackgroundTask> {
        Some(self.spawn_refresh())
    }
}
