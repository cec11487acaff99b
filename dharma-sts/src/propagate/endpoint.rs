//! Sources that ask a token endpoint: RFC 8693 exchange and client credentials, cached.

use std::{
    fmt,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use dharma_core::{
    BoxFuture,
    transport::{HttpClient, HttpError, HyperClient, basic_credentials, form_body},
};
use http::{HeaderValue, Method, Uri, header};
use moka::future::Cache;
use ring::rand::{SecureRandom, SystemRandom};

use super::{Outbound, OutboundToken, SourceError, TokenResponse, TokenSource};
use crate::request::{ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE};

/// The largest token endpoint answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// How a client proves itself to the token endpoint.
enum Auth {
    /// At the transport (mTLS through the HTTP client, or network isolation).
    Transport,
    /// `client_secret_basic` (the header value, built once).
    Basic(HeaderValue),
    /// `client_secret_post`.
    Post { id: String, secret: String },
    /// A bearer credential of the caller's own (an x5c JWT it signs, for dharma's STS).
    Bearer(Arc<dyn TokenSource>),
}

/// A token endpoint, and how this client authenticates to it.
pub struct TokenEndpoint {
    uri: Uri,
    auth: Auth,
    http: Arc<dyn HttpClient>,
    timeout: Duration,
    resource: bool,
}

impl fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.auth {
            Auth::Transport => "transport",
            Auth::Basic(_) => "client_secret_basic",
            Auth::Post { .. } => "client_secret_post",
            Auth::Bearer(_) => "bearer",
        };
        f.debug_struct("TokenEndpoint")
            .field("uri", &self.uri)
            .field("auth", &auth)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Builds a [`TokenEndpoint`].
#[must_use]
pub struct TokenEndpointBuilder {
    uri: String,
    auth: Auth,
    http: Option<Arc<dyn HttpClient>>,
    timeout: Duration,
    resource: bool,
}

impl fmt::Debug for TokenEndpointBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEndpointBuilder")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// Why an endpoint cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenEndpointError {
    /// The URL does not parse, or is `http` off the loopback interface.
    #[error("token endpoint {0:?} must be an https URL (http only on 127.0.0.1 or ::1)")]
    Uri(String),
    /// The default HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}

impl TokenEndpointBuilder {
    /// Authenticates with HTTP Basic (`client_secret_basic`).
    pub fn client_secret_basic(mut self, id: &str, secret: &str) -> Self {
        if let Ok(value) = basic_credentials(id, secret) {
            self.auth = Auth::Basic(value);
        }
        self
    }
    /// Authenticates with the id and secret in the form (`client_secret_post`).
    pub fn client_secret_post(mut self, id: &str, secret: &str) -> Self {
        self.auth = Auth::Post {
            id: id.to_owned(),
            secret: secret.to_owned(),
        };
        self
    }
    /// Authenticates with a bearer credential from `source` (for dharma's STS, whose
    /// trust mechanism may be an x5c JWT the caller signs with its certificate).
    pub fn bearer(mut self, source: Arc<dyn TokenSource>) -> Self {
        self.auth = Auth::Bearer(source);
        self
    }
    /// Sends the audience as `resource` (RFC 8707) instead of `audience`: for servers
    /// that take resource indicators.
    pub fn audience_as_resource(mut self) -> Self {
        self.resource = true;
        self
    }
    /// The HTTP client (default: hyper with rustls and the webpki roots). Bring one with
    /// a client certificate for mTLS.
    pub fn http_client(mut self, client: Arc<dyn HttpClient>) -> Self {
        self.http = Some(client);
        self
    }
    /// How long one request may take (default 5 seconds).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Validates the endpoint.
    pub fn build(self) -> Result<TokenEndpoint, TokenEndpointError> {
        let bad = || TokenEndpointError::Uri(self.uri.clone());
        let uri: Uri = self.uri.parse().map_err(|_| bad())?;
        let loopback = matches!(uri.host(), Some("127.0.0.1" | "[::1]" | "localhost"));
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if loopback => {}
            _ => return Err(bad()),
        }
        let http = match self.http {
            Some(http) => http,
            None => {
                Arc::new(HyperClient::new().map_err(|e| TokenEndpointError::Client(e.to_string()))?)
            }
        };
        Ok(TokenEndpoint {
            uri,
            auth: self.auth,
            http,
            timeout: self.timeout,
            resource: self.resource,
        })
    }
}

impl TokenEndpoint {
    /// Starts configuring the token endpoint at `uri`.
    pub fn builder(uri: &str) -> TokenEndpointBuilder {
        TokenEndpointBuilder {
            uri: uri.to_owned(),
            auth: Auth::Transport,
            http: None,
            timeout: Duration::from_secs(5),
            resource: false,
        }
    }

    /// Posts a token request and reads the answer.
    async fn request(
        &self,
        call: Outbound<'_>,
        mut form: Vec<(&str, &str)>,
    ) -> Result<TokenResponse, SourceError> {
        let target = if self.resource {
            "resource"
        } else {
            "audience"
        };
        form.push((target, call.audience));
        if let Some(scope) = call.scope {
            form.push(("scope", scope));
        }
        if let Auth::Post { id, secret } = &self.auth {
            form.push(("client_id", id));
            form.push(("client_secret", secret));
        }
        let body = form_body(&form);
        let unavailable = |e: &dyn fmt::Display| SourceError::Unavailable(e.to_string());
        let mut request = http::Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(Bytes::from(body))
            .map_err(|e| unavailable(&e))?;
        let authorization = match &self.auth {
            Auth::Basic(value) => Some(value.clone()),
            Auth::Bearer(source) => {
                let own = source.token(Outbound::new(&self.uri.to_string())).await?;
                let mut value = HeaderValue::from_str(&format!("Bearer {}", own.secret()))
                    .map_err(|e| unavailable(&e))?;
                value.set_sensitive(true);
                Some(value)
            }
            Auth::Transport | Auth::Post { .. } => None,
        };
        if let Some(value) = authorization {
            request.headers_mut().insert(header::AUTHORIZATION, value);
        }
        let answer = tokio::time::timeout(self.timeout, self.http.send(request, MAX_ANSWER))
            .await
            .map_err(|_| SourceError::Unavailable("timed out".into()))?
            .map_err(|e: HttpError| unavailable(&e))?;
        TokenResponse::parse(answer.status().as_u16(), answer.body())
    }
}

/// A cached token and until when it is handed out.
struct Cached {
    token: OutboundToken,
    fresh_until: Instant,
}

/// Tokens by (audience, subject token, scope), kept until shortly before they expire.
struct TokenCache {
    cache: Cache<[u8; 32], Arc<Cached>>,
    rng: SystemRandom,
}

impl TokenCache {
    fn new(capacity: u64) -> Self {
        Self {
            // Freshness is the entry's own (checked on every read, which costs less
            // than per-entry expiry in the cache); the cache's time to live only
            // collects entries nobody asked for again.
            cache: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(Duration::from_secs(24 * 3600))
                .build(),
            rng: SystemRandom::new(),
        }
    }

    /// The key: SHA-256 over the audience, the scope and the subject token's digest,
    /// each length-prefixed, so no two calls share a key by concatenation.
    fn key(call: Outbound<'_>) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for part in [
            Some(call.audience.as_bytes()),
            call.scope.map(str::as_bytes),
            call.inbound.map(|t| &t.digest()[..]),
        ] {
            match part {
                Some(p) => {
                    ctx.update(&(p.len() as u64 + 1).to_be_bytes());
                    ctx.update(p);
                }
                None => ctx.update(&0u64.to_be_bytes()),
            }
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        key
    }

    /// How long to keep a token that expires in `expires_in` seconds: until a tenth of
    /// its life (at least five seconds) before it expires, less up to another tenth at
    /// random, so that instances holding the same token do not all refresh together.
    fn ttl(&self, expires_in: Option<u64>) -> Duration {
        let Some(life) = expires_in else {
            return Duration::ZERO;
        };
        let margin = (life / 10).max(5);
        let mut byte = [0u8; 2];
        let jitter = match self.rng.fill(&mut byte) {
            Ok(()) => u64::from(u16::from_be_bytes(byte)) * (life / 10) / u64::from(u16::MAX),
            Err(_) => life / 20,
        };
        Duration::from_secs(life.saturating_sub(margin).saturating_sub(jitter))
    }

    /// The cached token for `call`, or the one `fetch` gets (once, however many callers
    /// wait for the same key). The fetch is not even built on a hit.
    async fn get<F>(
        &self,
        call: Outbound<'_>,
        fetch: impl FnOnce() -> F,
    ) -> Result<OutboundToken, SourceError>
    where
        F: Future<Output = Result<TokenResponse, SourceError>>,
    {
        let key = Self::key(call);
        if let Some(hit) = self.cache.get(&key).await {
            if Instant::now() < hit.fresh_until {
                return Ok(hit.token.clone());
            }
            self.cache.invalidate(&key).await;
        }
        let cached = self
            .cache
            .try_get_with(key, async {
                let answer = fetch().await?;
                Ok(Arc::new(Cached {
                    fresh_until: Instant::now() + self.ttl(answer.expires_in),
                    token: answer.token,
                }))
            })
            .await
            .map_err(|e: Arc<SourceError>| (*e).clone())?;
        Ok(cached.token.clone())
    }

    async fn forget(&self, call: Outbound<'_>, token: &OutboundToken) {
        let key = Self::key(call);
        if self
            .cache
            .get(&key)
            .await
            .is_some_and(|c| c.token == *token)
        {
            self.cache.invalidate(&key).await;
        }
    }
}

/// RFC 8693 token exchange of the inbound token, per audience: the next hop gets a
/// token for itself alone, with no more scope and no longer life than the inbound one
/// (as the token service allows).
///
/// ```no_run
/// use std::sync::Arc;
/// use dharma_sts::propagate::{TokenEndpoint, Exchange, PropagateLayer};
///
/// let sts = TokenEndpoint::builder("https://sts.outer.example/sts/token").build()?;
/// let layer = PropagateLayer::new(Arc::new(Exchange::new(sts)), "orders");
/// # Ok::<(), dharma_sts::propagate::TokenEndpointError>(())
/// ```
pub struct Exchange {
    endpoint: TokenEndpoint,
    cache: TokenCache,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("endpoint", &self.endpoint)
            .field("cached", &self.cache.cache.entry_count())
            .finish()
    }
}

impl Exchange {
    /// Exchanges at `endpoint`, caching up to 10,000 tokens.
    pub fn new(endpoint: TokenEndpoint) -> Self {
        Self::with_capacity(endpoint, 10_000)
    }
    /// Exchanges at `endpoint`, caching up to `capacity` tokens.
    pub fn with_capacity(endpoint: TokenEndpoint, capacity: u64) -> Self {
        Self {
            endpoint,
            cache: TokenCache::new(capacity),
        }
    }
}

impl TokenSource for Exchange {
    fn token<'a>(
        &'a self,
        call: Outbound<'a>,
    ) -> BoxFuture<'a, Result<OutboundToken, SourceError>> {
        Box::pin(async move {
            let inbound = call.inbound.ok_or(SourceError::NoInboundToken)?;
            let fetch = || {
                let form = vec![
                    ("grant_type", TOKEN_EXCHANGE),
                    ("subject_token", inbound.secret()),
                    ("subject_token_type", ACCESS_TOKEN_TYPE),
                    ("requested_token_type", ACCESS_TOKEN_TYPE),
                ];
                self.endpoint.request(call, form)
            };
            self.cache.get(call, fetch).await
        })
    }

    fn refused<'a>(&'a self, call: Outbound<'a>, token: &'a OutboundToken) -> BoxFuture<'a, ()> {
        Box::pin(self.cache.forget(call, token))
    }
}

/// The service's own token (RFC 6749 §4.4), per audience: for calls made on the
/// service's behalf rather than a caller's.
pub struct ClientCredentials {
    endpoint: TokenEndpoint,
    cache: TokenCache,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    /// Asks `endpoint`, caching up to 1,000 tokens.
    pub fn new(endpoint: TokenEndpoint) -> Self {
        Self {
            endpoint,
            cache: TokenCache::new(1_000),
        }
    }
}

impl TokenSource for ClientCredentials {
    fn token<'a>(
        &'a self,
        call: Outbound<'a>,
    ) -> BoxFuture<'a, Result<OutboundToken, SourceError>> {
        Box::pin(async move {
            // The service's own token does not depend on the request being served.
            let call = Outbound {
                inbound: None,
                ..call
            };
            let fetch = || {
                self.endpoint
                    .request(call, vec![("grant_type", "client_credentials")])
            };
            self.cache.get(call, fetch).await
        })
    }

    fn refused<'a>(&'a self, call: Outbound<'a>, token: &'a OutboundToken) -> BoxFuture<'a, ()> {
        let call = Outbound {
            inbound: None,
            ..call
        };
        Box::pin(async move { self.cache.forget(call, token).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dharma_core::InboundToken;

    #[test]
    fn keys_separate_their_parts() {
        let a = InboundToken::new("tok");
        let one = TokenCache::key(Outbound::new("ab").scope("c").inbound(&a));
        let two = TokenCache::key(Outbound::new("a").scope("bc").inbound(&a));
        let three = TokenCache::key(Outbound::new("ab").inbound(&a));
        let four = TokenCache::key(Outbound::new("ab").scope("").inbound(&a));
        assert_ne!(one, two);
        assert_ne!(three, four, "no scope is not an empty scope");
        assert_eq!(
            one,
            TokenCache::key(Outbound::new("ab").scope("c").inbound(&a))
        );
    }

    #[test]
    fn tokens_leave_the_cache_before_they_expire() {
        let cache = TokenCache::new(10);
        for _ in 0..100 {
            let ttl = cache.ttl(Some(300)).as_secs();
            assert!((240..=270).contains(&ttl), "{ttl}");
        }
        assert_eq!(cache.ttl(Some(4)), Duration::ZERO);
        assert_eq!(cache.ttl(None), Duration::ZERO);
    }

    #[test]
    fn endpoints_are_https_or_loopback() {
        assert!(
            TokenEndpoint::builder("https://sts.example/token")
                .build()
                .is_ok()
        );
        assert!(
            TokenEndpoint::builder("http://127.0.0.1:8080/token")
                .build()
                .is_ok()
        );
        assert!(
            TokenEndpoint::builder("http://sts.example/token")
                .build()
                .is_err()
        );
        assert!(TokenEndpoint::builder("ftp://sts.example").build().is_err());
        assert!(TokenEndpoint::builder("not a url").build().is_err());
    }
}
