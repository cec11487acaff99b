//! Outbound propagation: the token a service attaches when it calls another.
//!
//! A [`TokenSource`] answers "which token for this call?" from the audience called, the
//! scope wanted and the token the current request came in with ([`InboundToken`]):
//!
//! | source | the outgoing token |
//! | --- | --- |
//! | [`Forward`] | the inbound token as it is (a propagated JWT for accountability) |
//! | [`Exchange`] | the inbound token exchanged (RFC 8693) for one per audience, at dharma's STS or any RFC 8693 server |
//! | [`ClientCredentials`] | the service's own token (RFC 6749 §4.4) |
//! | [`StaticToken`] | one fixed token |
//!
//! Exchanged and client-credentials tokens are cached by audience, subject-token digest
//! and scope until shortly before they expire (with jitter, so a fleet does not refresh
//! at once); concurrent calls for one key share one request to the token endpoint; a
//! token the downstream answers `401` to is dropped, so the next call gets a new one.
//!
//! [`PropagateLayer`] is a tower layer for outgoing `http::Request`s: hyper clients,
//! tonic channels, reqwest (through `ReqwestService`, feature `reqwest`), and anything
//! else that is a tower service. It takes the
//! [`InboundToken`] from the outgoing request's extensions (the handler copies it from
//! its own request), sets `Authorization: Bearer`, and reports `401`s to the source.
//!
//! ```
//! use std::sync::Arc;
//! use dharma_sts::propagate::{Forward, PropagateLayer};
//!
//! let layer = PropagateLayer::new(Arc::new(Forward), "inner");
//! // tower::ServiceBuilder::new().layer(layer).service(channel_or_hyper_client)
//! # let _ = layer;
//! ```

mod endpoint;
mod layer;
#[cfg(feature = "reqwest")]
mod reqwest;
mod response;

use std::{fmt, sync::Arc};

use dharma_core::{BoxFuture, InboundToken};

use crate::error::OAuthError;

pub use endpoint::{
    ClientCredentials, Exchange, TokenEndpoint, TokenEndpointBuilder, TokenEndpointError,
};
pub use layer::{BoxError, Propagate, PropagateLayer, PropagateResponseFuture};
#[cfg(feature = "reqwest")]
pub use reqwest::{ReqwestFuture, ReqwestService};
pub use response::TokenResponse;

/// One outbound call, as a source sees it.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct Outbound<'a> {
    /// The audience (or resource) called.
    pub audience: &'a str,
    /// The scope wanted, space-separated (none: what the source grants by default).
    pub scope: Option<&'a str>,
    /// The token of the request being served, if any.
    pub inbound: Option<&'a InboundToken>,
}

impl<'a> Outbound<'a> {
    /// A call to `audience`.
    pub fn new(audience: &'a str) -> Self {
        Self {
            audience,
            scope: None,
            inbound: None,
        }
    }
    /// With the scope wanted.
    #[must_use]
    pub fn scope(mut self, scope: &'a str) -> Self {
        self.scope = Some(scope);
        self
    }
    /// On behalf of the request that came in with `inbound`.
    #[must_use]
    pub fn inbound(mut self, inbound: &'a InboundToken) -> Self {
        self.inbound = Some(inbound);
        self
    }
}

impl fmt::Debug for Outbound<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbound")
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .field("inbound", &self.inbound.is_some())
            .finish()
    }
}

/// A token to send. No `Debug` of its value.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboundToken(Arc<str>);

impl OutboundToken {
    /// Wraps a token.
    pub fn new(token: &str) -> Self {
        Self(token.into())
    }
    /// The token.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OutboundToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OutboundToken({} bytes)", self.0.len())
    }
}

/// Why a source has no token for a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The source needs the inbound token and the call has none.
    #[error("no inbound token to propagate")]
    NoInboundToken,
    /// The token endpoint refused (its OAuth error).
    #[error("the token endpoint refused: {0}")]
    Refused(OAuthError),
    /// The token endpoint could not be reached, timed out, or answered out of protocol.
    #[error("the token endpoint is unavailable: {0}")]
    Unavailable(String),
}

/// Where outbound tokens come from. Async and object-safe, shared as
/// `Arc<dyn TokenSource>`.
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// The token for `call`.
    fn token<'a>(&'a self, call: Outbound<'a>)
    -> BoxFuture<'a, Result<OutboundToken, SourceError>>;

    /// The downstream answered `401` to `token`: forget it, so the next call for the same
    /// key gets a new one. By default there is nothing to forget.
    fn refused<'a>(&'a self, call: Outbound<'a>, token: &'a OutboundToken) -> BoxFuture<'a, ()> {
        let _ = (call, token);
        Box::pin(async {})
    }
}

/// Sends the inbound token on, unchanged: where the next hop accepts the same token (a
/// propagated JWT the inner domain reads for accountability).
#[derive(Debug, Clone, Copy, Default)]
pub struct Forward;

impl TokenSource for Forward {
    fn token<'a>(
        &'a self,
        call: Outbound<'a>,
    ) -> BoxFuture<'a, Result<OutboundToken, SourceError>> {
        let token = call
            .inbound
            .map(|t| OutboundToken::new(t.secret()))
            .ok_or(SourceError::NoInboundToken);
        Box::pin(async move { token })
    }
}

/// Sends one fixed token.
#[derive(Clone)]
pub struct StaticToken(OutboundToken);

impl StaticToken {
    /// A source that always answers `token`.
    pub fn new(token: &str) -> Self {
        Self(OutboundToken::new(token))
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken(..)")
    }
}

impl TokenSource for StaticToken {
    fn token<'a>(&'a self, _: Outbound<'a>) -> BoxFuture<'a, Result<OutboundToken, SourceError>> {
        let token = self.0.clone();
        Box::pin(async move { Ok(token) })
    }
}
