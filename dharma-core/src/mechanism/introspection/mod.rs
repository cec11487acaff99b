//! OAuth2 token introspection (RFC 7662): the access mechanism for opaque tokens.
//!
//! The verifier asks the authorization server about each bearer token it has not seen,
//! authenticating as a client (`client_secret_basic` or `client_secret_post`). Answers are
//! cached: active ones until `min(exp, max_ttl)`, inactive ones for `inactive_ttl`;
//! concurrent requests with one token share one call. A cached answer is only ever the
//! token's claims: the endpoint's scopes and claim rules are checked against them on every
//! request, so it is never reused for a different requirement, and each verifier (with its
//! audiences) has its own cache. When the endpoint errs or times out, the request fails
//! closed with `503` and the audit reason `introspection_unavailable`.
//!
//! ```
//! use dharma_core::mechanism::introspection::{ClientAuth, IntrospectionVerifier};
//!
//! let opaque = IntrospectionVerifier::builder("https://as.example/oauth2/introspect")
//!     .client("orders-api", "s3cret", ClientAuth::Basic)
//!     .audience("urn:orders")
//!     .build()?;
//! # let _ = opaque;
//! # Ok::<(), dharma_core::mechanism::introspection::IntrospectionConfigError>(())
//! ```

pub(crate) mod settings;

pub use crate::error::IntrospectionError;

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{Method, Uri, header};
use moka::{Expiry, future::Cache};
use serde_json::Value;

use crate::transport::{basic_credentials, form_body};
use crate::{
    clock::{Clock, SystemClock},
    context::{Claims, Confirmation},
    error::{MalformedRequest, Rejection, TokenError, UnavailableError},
    jwks::SourceError,
    mechanism::cache::TokenCache,
    mechanism::token::identities_of,
    mechanism::{Authenticated, TokenVerifier, Verifier},
    names::{Audience, Issuer, NameError},
    request::RequestView,
    transport::HttpClient,
    util::{BoxFuture, truncate},
};

/// How the verifier authenticates to the introspection endpoint (RFC 6749 section 2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret (`client_secret_basic`).
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Post,
}

/// An introspection configuration that cannot work.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum IntrospectionConfigError {
    /// The endpoint URL is unusable.
    #[error(transparent)]
    Endpoint(#[from] SourceError),
    /// No client credentials.
    #[error("introspection needs a client id and secret")]
    NoClient,
    /// No audience: every active token of the authorization server, for any resource,
    /// would be accepted.
    #[error(
        "introspection needs an audience: set the resource this service is (the aud the authorization server puts in its tokens)"
    )]
    NoAudience,
    /// An audience or issuer does not parse.
    #[error(transparent)]
    Name(#[from] NameError),
    /// No HTTP client is available.
    #[error("no HTTP client: enable the http-client feature or provide one")]
    NoHttpClient,
}

/// What the authorization server said about a token.
#[derive(Debug)]
enum Answer {
    Active { claims: Claims, exp: Option<u64> },
    Inactive,
    UnsupportedType,
}

#[derive(Debug)]
struct Cached {
    answer: Answer,
    ttl: Duration,
    /// When reuse ends, in the injected clock's Unix seconds.
    until: u64,
}

/// What a token's answer decided, for every later request with the token: answered from
/// the same sharded cache as the JWT mechanism's verified tokens, so a hit costs a digest,
/// a lookup and the validity check.
#[derive(Debug)]
struct Decided {
    outcome: Result<Authenticated, TokenError>,
    exp: Option<u64>,
    until: u64,
}

impl Decided {
    /// The answer at `now`: the token's `exp` is checked on every use.
    fn at(&self, now: u64) -> Result<Authenticated, Rejection> {
        if let Some(exp) = self.exp
            && now >= exp
        {
            return Err(TokenError::Expired { now, exp }.into());
        }
        self.outcome.clone().map_err(Rejection::from)
    }
}

struct ByAnswer;

impl Expiry<[u8; 32], Arc<Cached>> for ByAnswer {
    fn expire_after_create(
        &self,
        _: &[u8; 32],
        value: &Arc<Cached>,
        _: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Builds an [`IntrospectionVerifier`].
#[must_use]
pub struct IntrospectionVerifierBuilder {
    endpoint: String,
    client: Option<(String, String, ClientAuth)>,
    audiences: Vec<String>,
    issuer: Option<String>,
    max_ttl: Duration,
    inactive_ttl: Duration,
    timeout: Duration,
    capacity: u64,
    max_response_bytes: usize,
    http: Option<Arc<dyn HttpClient>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for IntrospectionVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionVerifierBuilder")
            .field("endpoint", &self.endpoint)
            .field(
                "client",
                &self.client.as_ref().map(|(id, _, auth)| (id, auth)),
            )
            .finish_non_exhaustive()
    }
}

impl IntrospectionVerifierBuilder {
    /// The client credentials the verifier introspects with.
    pub fn client(mut self, id: &str, secret: &str, auth: ClientAuth) -> Self {
        self.client = Some((id.to_owned(), secret.to_owned(), auth));
        self
    }
    /// Requires `aud` to name this audience (repeatable; at least one is required, so that
    /// a token the authorization server issued for another resource is not accepted).
    pub fn audience(mut self, audience: &str) -> Self {
        self.audiences.push(audience.to_owned());
        self
    }
    /// Requires `iss`, when the answer has one, to be this issuer; identities name it.
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.issuer = Some(issuer.to_owned());
        self
    }
    /// Longest time an active answer is reused (default 60 seconds).
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }
    /// How long an inactive answer is reused (default 10 seconds).
    pub fn inactive_ttl(mut self, ttl: Duration) -> Self {
        self.inactive_ttl = ttl;
        self
    }
    /// Timeout of one call (default 5 seconds).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// How many answers to keep (default 10 000).
    pub fn cache_capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }
    /// The HTTP client.
    pub fn http_client(mut self, client: Arc<dyn HttpClient>) -> Self {
        self.http = Some(client);
        self
    }
    /// The clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Validates the configuration.
    pub fn build(self) -> Result<IntrospectionVerifier, IntrospectionConfigError> {
        let endpoint = crate::jwks::check_url(&self.endpoint)?;
        let (client_id, secret, auth) = self.client.ok_or(IntrospectionConfigError::NoClient)?;
        if client_id.is_empty() {
            return Err(IntrospectionConfigError::NoClient);
        }
        let audiences = self
            .audiences
            .iter()
            .map(|a| a.parse())
            .collect::<Result<Vec<Audience>, _>>()?;
        if audiences.is_empty() {
            return Err(IntrospectionConfigError::NoAudience);
        }
        let issuer = self.issuer.as_deref().map(str::parse).transpose()?;
        let http = match self.http {
            Some(h) => h,
            None => default_client()?,
        };
        Ok(IntrospectionVerifier {
            inner: Arc::new(Inner {
                endpoint,
                client_id,
                secret,
                auth,
                audiences,
                issuer,
                max_ttl: self.max_ttl,
                inactive_ttl: self.inactive_ttl,
                timeout: self.timeout,
                max_response_bytes: self.max_response_bytes,
                http,
                clock: self.clock,
                cache: Cache::builder()
                    .max_capacity(self.capacity)
                    .expire_after(ByAnswer)
                    .build(),
                decided: TokenCache::new(self.capacity),
                calls: AtomicU64::new(0),
            }),
        })
    }
}

#[cfg(feature = "http-client")]
fn default_client() -> Result<Arc<dyn HttpClient>, IntrospectionConfigError> {
    crate::transport::HyperClient::new()
        .map(|c| Arc::new(c) as Arc<dyn HttpClient>)
        .map_err(|_| IntrospectionConfigError::NoHttpClient)
}

#[cfg(not(feature = "http-client"))]
fn default_client() -> Result<Arc<dyn HttpClient>, IntrospectionConfigError> {
    Err(IntrospectionConfigError::NoHttpClient)
}

struct Inner {
    endpoint: Uri,
    client_id: String,
    secret: String,
    auth: ClientAuth,
    audiences: Vec<Audience>,
    issuer: Option<Issuer>,
    max_ttl: Duration,
    inactive_ttl: Duration,
    timeout: Duration,
    max_response_bytes: usize,
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    /// Answers by token digest, so concurrent lookups of one token share one call.
    cache: Cache<[u8; 32], Arc<Cached>>,
    /// What the answers decided, by token digest.
    decided: TokenCache<Decided>,
    calls: AtomicU64,
}

/// Verifies opaque bearer tokens by asking the authorization server. Cheap to clone.
#[derive(Clone)]
pub struct IntrospectionVerifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for IntrospectionVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionVerifier")
            .field("endpoint", &self.inner.endpoint.to_string())
            .field("client_id", &self.inner.client_id)
            .field("auth", &self.inner.auth)
            .field("audiences", &self.inner.audiences)
            .finish_non_exhaustive()
    }
}

impl IntrospectionVerifier {
    /// Starts configuring a verifier for an introspection endpoint URL (`https`, or `http`
    /// on loopback).
    pub fn builder(endpoint: &str) -> IntrospectionVerifierBuilder {
        IntrospectionVerifierBuilder {
            endpoint: endpoint.to_owned(),
            client: None,
            audiences: Vec::new(),
            issuer: None,
            max_ttl: Duration::from_secs(60),
            inactive_ttl: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            capacity: 10_000,
            max_response_bytes: 64 * 1024,
            http: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// How many introspection calls have started (for metrics and tests).
    pub fn calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    /// Verifies one token.
    pub async fn verify_token(&self, token: &str) -> Result<Authenticated, Rejection> {
        let inner = &*self.inner;
        let digest = crate::mechanism::token::digest(token);
        let now = inner.clock.unix_seconds();
        if let Some(hit) = inner.decided.get(&digest) {
            if now < hit.until {
                return hit.at(now);
            }
            // Past reuse: ask again.
            inner.decided.remove(&digest);
            inner.cache.invalidate(&digest).await;
        }
        let cached = inner
            .cache
            .try_get_with(digest, self.introspect(token))
            .await
            .map_err(|e| Rejection::Unavailable(UnavailableError::Introspection((*e).clone())))?;
        let (outcome, exp) = match &cached.answer {
            Answer::Inactive => (Err(TokenError::Inactive), None),
            Answer::UnsupportedType => (Err(TokenError::UnsupportedTokenType), None),
            Answer::Active { claims, exp } => (self.decide(token, &digest, claims), *exp),
        };
        let decided = Decided {
            outcome,
            exp,
            until: cached.until,
        };
        let answer = decided.at(now);
        inner.decided.insert(digest, decided);
        answer
    }

    /// What an active answer's claims decide, whenever the token is used: the audience,
    /// the token type, no confirmation, the issuer, and the identities.
    fn decide(
        &self,
        token: &str,
        digest: &[u8; 32],
        claims: &Claims,
    ) -> Result<Authenticated, TokenError> {
        let inner = &*self.inner;
        if !audience_ok(claims.get("aud"), &inner.audiences) {
            return Err(TokenError::WrongAudience);
        }
        // RFC 7662 `token_type` is the OAuth 2.0 token type: only a bearer access token is
        // accepted (a refresh token, or a DPoP- or certificate-bound token whose proof this
        // mechanism does not check, is refused).
        if let Some(kind) = claims.get("token_type")
            && !kind
                .as_str()
                .is_some_and(|k| k.eq_ignore_ascii_case("bearer"))
        {
            let kind = kind.as_str().unwrap_or("(not a string)");
            return Err(TokenError::WrongType(truncate(kind, 32)));
        }
        if *claims.confirmation() != Confirmation::None {
            return Err(TokenError::UnverifiableConfirmation);
        }
        let issuer = match (claims.str("iss"), &inner.issuer) {
            (Some(iss), Some(expected)) if iss != expected.as_str() => {
                return Err(TokenError::UntrustedIssuer(truncate(iss, 64)));
            }
            (Some(iss), None) => iss.parse().ok(),
            (_, expected) => expected.clone(),
        };
        let identities = identities_of(claims, issuer.as_ref(), token, Some(digest))?;
        Ok(Authenticated::new(identities))
    }

    async fn introspect(&self, token: &str) -> Result<Arc<Cached>, IntrospectionError> {
        let inner = &*self.inner;
        inner.calls.fetch_add(1, Ordering::Relaxed);
        let mut form = vec![("token", token), ("token_type_hint", "access_token")];
        if inner.auth == ClientAuth::Post {
            form.push(("client_id", &inner.client_id));
            form.push(("client_secret", &inner.secret));
        }
        let body = form_body(&form);
        let mut request = http::Request::builder()
            .method(Method::POST)
            .uri(inner.endpoint.clone())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json");
        if inner.auth == ClientAuth::Basic {
            let value = basic_credentials(&inner.client_id, &inner.secret).map_err(|_| {
                IntrospectionError::InvalidResponse("client credentials are not header-safe")
            })?;
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = request
            .body(Bytes::from(body))
            .map_err(|_| IntrospectionError::InvalidResponse("request could not be built"))?;
        let response = tokio::time::timeout(
            inner.timeout,
            inner.http.send(request, inner.max_response_bytes),
        )
        .await
        .map_err(|_| IntrospectionError::Timeout)??;
        let doc = crate::json::object(response.body()).ok();
        let status = response.status().as_u16();
        let now = inner.clock.unix_seconds();
        let cached = |answer: Answer, ttl: Duration| {
            Arc::new(Cached {
                answer,
                ttl,
                until: now.saturating_add(ttl.as_secs()),
            })
        };
        if status == 400
            && doc
                .as_ref()
                .and_then(|d| d.get("error"))
                .is_some_and(|e| e == "unsupported_token_type")
        {
            return Ok(cached(Answer::UnsupportedType, inner.inactive_ttl));
        }
        if status != 200 {
            return Err(IntrospectionError::Status(status));
        }
        let doc = doc.ok_or(IntrospectionError::InvalidResponse("not a JSON object"))?;
        let inactive = || cached(Answer::Inactive, inner.inactive_ttl);
        match doc.get("active") {
            Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => return Ok(inactive()),
            _ => return Err(IntrospectionError::InvalidResponse("no boolean \"active\"")),
        }
        let exp = match doc.get("exp") {
            None => None,
            Some(v) => Some(v.as_u64().ok_or(IntrospectionError::InvalidResponse(
                "\"exp\" is not a number",
            ))?),
        };
        let ttl = match exp {
            Some(exp) if exp <= now => return Ok(inactive()),
            Some(exp) => inner.max_ttl.min(Duration::from_secs(exp - now)),
            None => inner.max_ttl,
        };
        Ok(cached(
            Answer::Active {
                claims: Claims::new(doc),
                exp,
            },
            ttl,
        ))
    }
}

fn audience_ok(aud: Option<&Value>, accepted: &[Audience]) -> bool {
    let accepts = |a: &str| accepted.iter().any(|x| x.as_str() == a);
    match aud {
        Some(Value::String(a)) => accepts(a),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(accepts),
        _ => false,
    }
}

impl TokenVerifier for IntrospectionVerifier {
    fn verify_token<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
        Box::pin(IntrospectionVerifier::verify_token(self, token))
    }
}

impl Verifier for IntrospectionVerifier {
    fn verify<'a>(
        &'a self,
        request: &'a RequestView<'a>,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
        Box::pin(async move {
            match request.bearer_token() {
                Ok(Some(token)) => self.verify_token(token).await,
                Ok(None) => Err(Rejection::MissingCredentials),
                Err(e) => Err(MalformedRequest::from(e).into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config() {
        assert!(matches!(
            IntrospectionVerifier::builder("http://as.example/x")
                .client("a", "b", ClientAuth::Basic)
                .build(),
            Err(IntrospectionConfigError::Endpoint(_))
        ));
        assert!(matches!(
            IntrospectionVerifier::builder("https://as.example/x").build(),
            Err(IntrospectionConfigError::NoClient)
        ));
    }
}
