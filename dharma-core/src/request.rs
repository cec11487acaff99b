//! The framework-neutral view of a request that adapters fill in.
//!
//! ```
//! use dharma_core::RequestView;
//! use http::{HeaderMap, HeaderValue, Method, header::AUTHORIZATION};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc.def.ghi"));
//! let view = RequestView::new(&Method::GET, "/orders/7", &headers)
//!     .with_peer("127.0.0.1:50000".parse().unwrap());
//! assert_eq!(view.bearer_token(), Ok(Some("abc.def.ghi")));
//! ```

use std::{net::SocketAddr, sync::Arc};

use http::{HeaderMap, Method, header::AUTHORIZATION};
use rustls_pki_types::CertificateDer;

use crate::error::CredentialsError;

/// What a mechanism may look at: method, path, headers and the transport peer.
///
/// Adapters build it from their framework's request without copying the headers.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    method: &'a Method,
    path: &'a str,
    headers: &'a HeaderMap,
    peer: Option<SocketAddr>,
    peer_certificates: &'a [CertificateDer<'static>],
    route: Option<&'a str>,
    unsupported_method: bool,
}

/// The client's TLS certificate chain (leaf first), as a TLS server puts it into request
/// extensions for adapters to find.
///
/// A server that terminates mutual TLS inserts it once per connection; the adapters hand
/// it to mechanisms through [`RequestView::peer_certificates`].
#[derive(Debug, Clone, Default)]
pub struct PeerCertificates(pub Arc<[CertificateDer<'static>]>);

impl<'a> RequestView<'a> {
    /// A view of a request with no peer information.
    ///
    /// `path` is the URI path without the query string.
    pub fn new(method: &'a Method, path: &'a str, headers: &'a HeaderMap) -> Self {
        Self {
            method,
            path,
            headers,
            peer: None,
            peer_certificates: &[],
            route: None,
            unsupported_method: false,
        }
    }

    /// A view of an `http::Request` (its method, path and headers).
    pub fn from_http<B>(request: &'a http::Request<B>) -> Self {
        Self::new(request.method(), request.uri().path(), request.headers())
    }

    /// Sets the transport peer's address.
    #[must_use]
    pub fn with_peer(mut self, peer: SocketAddr) -> Self {
        self.peer = Some(peer);
        self
    }

    /// Sets the peer's certificate chain (leaf first), as presented during the TLS handshake.
    #[must_use]
    pub fn with_peer_certificates(mut self, chain: &'a [CertificateDer<'static>]) -> Self {
        self.peer_certificates = chain;
        self
    }

    /// Sets the route pattern the framework's router matched for this request (axum's
    /// syntax: `/users/{id}`, `/files/{*path}`). The enforcer refuses the request when the
    /// route leads elsewhere than the path does (see
    /// [`Topology::route_agrees`](crate::model::Topology::route_agrees)).
    #[must_use]
    pub fn with_route(mut self, route: &'a str) -> Self {
        self.route = Some(route);
        self
    }

    /// Marks the request's method as one the adapter could not represent as an
    /// `http::Method` (the view's method is then a stand-in). The enforcer refuses such a
    /// request (`400`), audited like every other decision.
    #[must_use]
    pub fn with_unsupported_method(mut self) -> Self {
        self.unsupported_method = true;
        self
    }

    /// Whether the adapter could not represent the method.
    pub fn has_unsupported_method(&self) -> bool {
        self.unsupported_method
    }

    /// Whether this is a CORS preflight: `OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`.
    pub fn is_cors_preflight(&self) -> bool {
        *self.method == Method::OPTIONS
            && self.headers.contains_key(http::header::ORIGIN)
            && self
                .headers
                .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// The route pattern the framework's router matched, when the adapter knows it.
    pub fn route(&self) -> Option<&'a str> {
        self.route
    }

    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request path (no query string).
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The transport peer, when the adapter knows it.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The peer's TLS certificate chain, leaf first; empty without mutual TLS.
    pub fn peer_certificates(&self) -> &'a [CertificateDer<'static>] {
        self.peer_certificates
    }

    /// The bearer token of the `Authorization` header (RFC 6750 section 2.1).
    ///
    /// `Ok(None)` when there is no `Authorization` header or it uses another scheme.
    pub fn bearer_token(&self) -> Result<Option<&'a str>, CredentialsError> {
        let mut values = self.headers.get_all(AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(CredentialsError::Repeated);
        }
        let value = value.as_bytes();
        let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
            Some(space) => value.split_at(space),
            None => (value, &b""[..]),
        };
        if !scheme.eq_ignore_ascii_case(b"bearer") {
            // Another scheme: not ours, but the header must still be visible ASCII.
            return if value
                .iter()
                .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
            {
                Ok(None)
            } else {
                Err(CredentialsError::NotAscii)
            };
        }
        // `"Bearer" 1*SP b64token`: spaces only.
        let token = rest
            .get(rest.iter().take_while(|&&b| b == b' ').count()..)
            .unwrap_or_default();
        let body_len = token.len() - token.iter().rev().take_while(|&&b| b == b'=').count();
        let body = token.get(..body_len).unwrap_or_default();
        if body.is_empty()
            || !body
                .iter()
                .all(|&b| B64TOKEN.get(usize::from(b)) == Some(&true))
        {
            return Err(if token.is_ascii() {
                CredentialsError::BadSyntax
            } else {
                CredentialsError::NotAscii
            });
        }
        // Only ASCII is left: the conversion cannot fail.
        std::str::from_utf8(token)
            .map(Some)
            .map_err(|_| CredentialsError::NotAscii)
    }
}

impl RequestView<'_> {
    /// The `Authorization` value of a request with a well-formed bearer token, and where
    /// the token starts in it (the token ends the value).
    pub(crate) fn bearer_header(&self) -> Option<(http::HeaderValue, usize)> {
        let token = self.bearer_token().ok().flatten()?;
        let value = self.headers.get(AUTHORIZATION)?;
        Some((value.clone(), value.len().checked_sub(token.len())?))
    }
}

/// The bytes of `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
/// (RFC 6750 section 2.1), `=` excepted: one table lookup per byte of a token.
static B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut c: u8 = 0;
    loop {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/') {
            #[expect(
                clippy::indexing_slicing,
                reason = "a u8 always indexes a 256-entry table"
            )]
            {
                table[c as usize] = true;
            }
        }
        if c == u8::MAX {
            break table;
        }
        c += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn bearer(values: &[&'static str]) -> Result<Option<String>, CredentialsError> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(AUTHORIZATION, HeaderValue::from_static(v));
        }
        let view = RequestView::new(&Method::GET, "/", &headers);
        view.bearer_token().map(|t| t.map(str::to_owned))
    }

    #[test]
    fn reads_bearer_tokens() {
        assert_eq!(bearer(&[]), Ok(None));
        assert_eq!(bearer(&["Bearer a.b.c"]), Ok(Some("a.b.c".into())));
        assert_eq!(bearer(&["bearer  a.b.c"]), Ok(Some("a.b.c".into())));
        assert_eq!(bearer(&["BEARER abc=="]), Ok(Some("abc==".into())));
        assert_eq!(bearer(&["Basic dXNlcjpwYXNz"]), Ok(None));
    }

    #[test]
    fn rejects_malformed_bearer_credentials() {
        assert_eq!(bearer(&["Bearer"]), Err(CredentialsError::BadSyntax));
        assert_eq!(bearer(&["Bearer "]), Err(CredentialsError::BadSyntax));
        assert_eq!(bearer(&["Bearer a b"]), Err(CredentialsError::BadSyntax));
        assert_eq!(bearer(&["Bearer ="]), Err(CredentialsError::BadSyntax));
        assert_eq!(bearer(&["Bearer a=b"]), Err(CredentialsError::BadSyntax));
        assert_eq!(
            bearer(&["Bearer \ta.b.c"]),
            Err(CredentialsError::BadSyntax)
        );
        assert_eq!(bearer(&["Bearer a.b.c "]), Err(CredentialsError::BadSyntax));
        assert_eq!(bearer(&["Bearer a%b"]), Err(CredentialsError::BadSyntax));
        assert_eq!(
            bearer(&["Bearer a", "Bearer b"]),
            Err(CredentialsError::Repeated)
        );
    }

    #[test]
    fn rejects_non_ascii_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        );
        let view = RequestView::new(&Method::GET, "/", &headers);
        assert_eq!(view.bearer_token(), Err(CredentialsError::NotAscii));
    }
}
