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

use super::{builder::JwtVerifierBuilder, headers::Headers, issuer::IssuerEntry};
use crate::mechanism::cache::{KeyedHash, TokenCache};

use crate::mechanism::token::{ClaimRules, Payload, check_confirmation, check_unbound};
use crate::{
    clock::{Clock, unix_seconds},
    error::{MalformedRequest, Rejection, TokenError, UnavailableError},
    jose::{
        Algorithm, VerifyingKey,
        jws::{Compact, Scratch, Split},
    },
    jwks::{KeyLookupError, KeySourceError, KeyStatus, spawn_refresher},
    mechanism::{Authenticated, BackgroundTask, TokenVerifier, Verifier},
    names::Issuer,
    request::RequestView,
    util::BoxFuture,
};

/// What is remembered of a verified token.
#[derive(Debug)]
pub(super) struct Verified {
    authenticated: Authenticated,
    exp: u64,
    /// The issuer entry whose key set verified it.
    store: usize,
    thumbprint: [u8; 32],
    /// How long the token has left (until `exp`, measured when verified).
    ttl: Duration,
}

/// The verified tokens, each under the keyed hash of its signature segment.
pub(super) struct TokenMemory {
    pub(super) name: KeyedHash,
    pub(super) tokens: TokenCache<Cached, 16>,
}

/// A verified token as the cache keeps it, under the keyed hash of its signature segment.
#[derive(Debug)]
pub(super) struct Cached {
    /// The token's header and payload segments (without the signature, the token is no
    /// credential): a hit must present them unchanged.
    signing_input: Box<str>,
    verified: Verified,
}

pub(super) struct Inner {
    pub(super) issuers: Vec<IssuerEntry>,
    pub(super) rules: ClaimRules,
    pub(super) max_token_bytes: usize,
    pub(super) bound: bool,
    pub(super) cache: Option<TokenMemory>,
    pub(super) headers: Headers,
    pub(super) clock: Arc<dyn Clock>,
}

/// Verifies bearer JWTs from the `Authorization` header against trusted issuers' keys.
/// Cheap to clone: clones share keys and caches.
#[derive(Clone)]
pub struct JwtVerifier {
    pub(super) inner: Arc<Inner>,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuers", &self.inner.issuers)
            .field("rules", &self.inner.rules)
            .field("max_token_bytes", &self.inner.max_token_bytes)
            .field("cache", &self.inner.cache.as_ref().map(|c| &c.tokens))
            .finish()
    }
}

impl JwtVerifier {
    /// Starts configuring a verifier.
    pub fn builder() -> JwtVerifierBuilder {
        JwtVerifierBuilder::new()
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
        // The cache names a token by a keyed hash of its signature segment and keeps its
        // signing input, compared on every hit: a hit is the very token verified before,
        // and no signature is kept.
        let split = Split::of(token)?;
        let named = inner
            .cache
            .as_ref()
            .map(|cache| (&cache.tokens, cache.name.of(split.signature.as_bytes())));
        if let Some((cache, key)) = &named
            && let Some(hit) = cache.get(key)
            && *hit.signing_input == *split.signing_input
            && let Some(answer) = self.check_cached(&hit.verified, key, cache)
        {
            return answer;
        }
        let (verified, authenticated) = self.verify_cold(token, split).await?;
        // A token with no time left is not remembered.
        if let Some((cache, key)) = named
            && !verified.ttl.is_zero()
        {
            let signing_input = split.signing_input.into();
            cache.insert(
                key,
                Cached {
                    signing_input,
                    verified,
                },
            );
        }
        Ok(authenticated)
    }

    /// The answer for a cached token, or `None` when its key set is past the stale window:
    /// the token is then verified again, which refreshes the key set (and fails with
    /// `503` only if the issuer is down).
    fn check_cached(
        &self,
        hit: &Verified,
        digest: &[u8; 16],
        cache: &TokenCache<Cached, 16>,
    ) -> Option<Result<Authenticated, Rejection>> {
        let inner = &*self.inner;
        let time = inner.clock.now();
        let now = unix_seconds(time);
        if now > hit.exp.saturating_add(inner.rules.leeway) {
            cache.remove(digest);
            return Some(Err(TokenError::Expired { now, exp: hit.exp }.into()));
        }
        let Some(entry) = inner.issuers.get(hit.store) else {
            return Some(Err(TokenError::KeyRevoked.into()));
        };
        match entry.store.status(&hit.thumbprint, time) {
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
        split: Split<'_>,
    ) -> Result<(Verified, Authenticated), Rejection> {
        let (store, kid, alg) = match self.verify_now(token, split, None)? {
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
        match self.verify_now(token, split, Some(key))? {
            Cold::Done(verified, authenticated) => Ok((verified, authenticated)),
            // With the key given, the token needs nothing more.
            Cold::NeedKey { .. } => Err(TokenError::KeyRevoked.into()),
        }
    }

    /// Verifies with the key set in hand, or with `key` when the slow path fetched it.
    fn verify_now(
        &self,
        token: &str,
        split: Split<'_>,
        key: Option<Arc<VerifyingKey>>,
    ) -> Result<Cold, Rejection> {
        let inner = &*self.inner;
        // One reading of the clock serves the key set's freshness and the claims.
        let time = inner.clock.now();
        let mut scratch = Scratch::new();
        let known = inner.headers.get(split.header);
        let jws = Compact::read_known(split, &mut scratch, known.as_deref())?;
        let claims = Payload::read(jws.payload()?)?;
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
            None => match entry.store.key_now(jws.kid(), jws.alg(), time) {
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
        if let Some(header) = jws.known_header() {
            inner.headers.keep(header);
        }
        let now = unix_seconds(time);
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
        let payload = jws.into_payload();
        let identities = match tenant_issuer {
            None => names.identities(payload, Some(&entry.issuer), token, None)?,
            Some((issuer, tenant)) => {
                names.identities(payload, Some(&issuer), token, Some(tenant))?
            }
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
