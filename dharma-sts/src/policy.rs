//! What each client may ask the token service for.

use std::time::Duration;

/// The tokens one client may obtain: for which audiences, with which scopes, through
/// which grants. A client with no policy gets nothing (`unauthorized_client`).
///
/// The client is named as dharma authenticated it at the token endpoint: a SPIFFE ID
/// or DNS name from mTLS or an x5c token, a network workload name, an OAuth client id.
///
/// ```
/// use std::time::Duration;
/// use dharma_sts::ClientPolicy;
///
/// let gateway = ClientPolicy::new("spiffe://example.org/ns/outer/sa/gateway")
///     .exchange()
///     .audience("orders")
///     .scope("orders:read")
///     .max_lifetime(Duration::from_secs(120));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientPolicy {
    pub(crate) client: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) exchange: bool,
    pub(crate) client_credentials: bool,
    pub(crate) max_lifetime: Option<Duration>,
}

impl ClientPolicy {
    /// A policy for `client` that allows nothing yet.
    pub fn new(client: &str) -> Self {
        Self {
            client: client.to_owned(),
            audiences: Vec::new(),
            scopes: Vec::new(),
            exchange: false,
            client_credentials: false,
            max_lifetime: None,
        }
    }

    /// Allows tokens for this audience or resource (repeatable; at least one).
    pub fn audience(mut self, audience: &str) -> Self {
        self.audiences.push(audience.to_owned());
        self
    }

    /// Allows this scope in the tokens (repeatable). Without any, tokens carry no scope.
    pub fn scope(mut self, scope: &str) -> Self {
        self.scopes.push(scope.to_owned());
        self
    }

    /// Allows RFC 8693 token exchange: tokens for the subjects of tokens the client
    /// presents.
    pub fn exchange(mut self) -> Self {
        self.exchange = true;
        self
    }

    /// Allows the client-credentials grant: tokens naming the client itself.
    pub fn client_credentials(mut self) -> Self {
        self.client_credentials = true;
        self
    }

    /// Caps the lifetime of this client's tokens below the service's maximum.
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = Some(lifetime);
        self
    }
}
