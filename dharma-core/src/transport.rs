//! The HTTP client that fetches key sets and discovery documents and calls introspection
//! endpoints, as a trait so users can bring their own (a proxy, a private CA, a service
//! mesh's client).
//!
//! ```
//! use dharma_core::transport::{HttpClient, HttpError, HttpResponse};
//! use dharma_core::BoxFuture;
//!
//! /// Serves one fixed key set, e.g. for an air-gapped deployment.
//! #[derive(Debug)]
//! struct Fixed(&'static str);
//!
//! impl HttpClient for Fixed {
//!     fn send<'a>(&'a self, _request: http::Request<bytes::Bytes>, _max: usize) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
//!         let body = bytes::Bytes::from_static(self.0.as_bytes());
//!         Box::pin(async move { Ok(HttpResponse::new(http::StatusCode::OK, Default::default(), body)) })
//!     }
//! }
//! ```

pub use crate::error::HttpError;

use std::fmt::Debug;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri};

use crate::util::BoxFuture;

/// A response: status, headers and the whole body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl HttpResponse {
    /// A response.
    pub fn new(status: StatusCode, headers: HeaderMap, body: Bytes) -> Self {
        Self {
            status,
            headers,
            body,
        }
    }
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }
}

/// Sends a request and reads the whole response. Implementations must stop reading a body
/// past `max_body` bytes (and fail with [`HttpError::TooLarge`]); dharma applies its own
/// timeout around the call.
pub trait HttpClient: Send + Sync + Debug {
    /// Sends `request`.
    fn send<'a>(
        &'a self,
        request: http::Request<Bytes>,
        max_body: usize,
    ) -> BoxFuture<'a, Result<HttpResponse, HttpError>>;
}

/// A client that sends nothing: it stands in where keys are fixed, and where a
/// configuration is checked offline.
#[derive(Debug)]
pub(crate) struct Offline;

impl HttpClient for Offline {
    fn send<'a>(
        &'a self,
        _: http::Request<Bytes>,
        _: usize,
    ) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
        Box::pin(async { Err(HttpError::Transport("no HTTP client configured".into())) })
    }
}

/// `application/x-www-form-urlencoded` encoding of one name or value (the body of
/// introspection and token requests, and client credentials in HTTP Basic, RFC 6749
/// §2.3.1).
///
/// ```
/// assert_eq!(dharma_core::transport::form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
/// assert_eq!(dharma_core::transport::form_encode("abc-._*"), "abc-._*");
/// ```
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => {
                let _ = std::fmt::Write::write_fmt(&mut out, format_args!("%{b:02X}"));
            }
        }
    }
    out
}

/// An `application/x-www-form-urlencoded` body of `pairs`, in order.
///
/// ```
/// let body = dharma_core::transport::form_body(&[("grant_type", "client_credentials"), ("scope", "a b")]);
/// assert_eq!(body, "grant_type=client_credentials&scope=a+b");
/// ```
pub fn form_body(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The `Authorization` value of HTTP Basic client authentication (`client_secret_basic`,
/// RFC 6749 §2.3.1: id and secret form-encoded, then base64), marked sensitive.
///
/// ```
/// let value = dharma_core::transport::basic_credentials("a b", "s:x").unwrap();
/// assert_eq!(value, "Basic YStiOnMlM0F4");
/// assert!(value.is_sensitive());
/// ```
pub fn basic_credentials(
    id: &str,
    secret: &str,
) -> Result<http::HeaderValue, http::header::InvalidHeaderValue> {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let pair = format!("{}:{}", form_encode(id), form_encode(secret));
    let mut value = http::HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(pair)))?;
    value.set_sensitive(true);
    Ok(value)
}

/// `GET uri` with `Accept: application/json`.
pub(crate) async fn get_json(
    client: &dyn HttpClient,
    uri: &Uri,
    max_body: usize,
) -> Result<HttpResponse, HttpError> {
    let request = http::Request::get(uri.clone())
        .header(http::header::ACCEPT, "application/json")
        .body(Bytes::new())
        .map_err(|e| HttpError::Transport(e.to_string()))?;
    client.send(request, max_body).await
}

#[cfg(feature = "http-client")]
pub use hyper_client::HyperClient;

#[cfg(feature = "http-client")]
mod hyper_client {
    use super::*;
    use http_body_util::{BodyExt, Full, Limited};
    use hyper_rustls::HttpsConnector;
    use hyper_util::{
        client::legacy::{Client, connect::HttpConnector},
        rt::TokioExecutor,
    };

    /// The default client: hyper with rustls (ring) and the Mozilla root certificates,
    /// HTTP/1.1, plain `http` allowed only where the key source allows it (loopback).
    #[derive(Clone)]
    pub struct HyperClient {
        client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    }

    impl std::fmt::Debug for HyperClient {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("HyperClient").finish_non_exhaustive()
        }
    }

    impl HyperClient {
        /// A client that trusts the Mozilla root certificates.
        pub fn new() -> Result<Self, HttpError> {
            Self::over(HttpConnector::new())
        }

        /// A client like [`new`](Self::new) whose connections leave from `local`: for a
        /// service on a host with several addresses, calling one that trusts the network
        /// of one of them.
        pub fn bound_to(local: std::net::IpAddr) -> Result<Self, HttpError> {
            let mut http = HttpConnector::new();
            http.set_local_address(Some(local));
            Self::over(http)
        }

        /// rustls (ring) with the Mozilla roots over `http`'s connections.
        fn over(mut http: HttpConnector) -> Result<Self, HttpError> {
            http.enforce_http(false);
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_webpki_roots(std::sync::Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .map_err(|e| HttpError::Transport(e.to_string()))?
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            Ok(Self::from_connector(connector))
        }

        /// A client with your own TLS configuration (a private CA, client certificates).
        pub fn with_tls_config(config: rustls::ClientConfig) -> Self {
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(config)
                .https_or_http()
                .enable_http1()
                .build();
            Self::from_connector(connector)
        }

        fn from_connector(connector: HttpsConnector<HttpConnector>) -> Self {
            let client = Client::builder(TokioExecutor::new()).build(connector);
            Self { client }
        }
    }

    impl HttpClient for HyperClient {
        fn send<'a>(
            &'a self,
            request: http::Request<Bytes>,
            max_body: usize,
        ) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
            Box::pin(async move {
                let request = request.map(Full::new);
                let response = self
                    .client
                    .request(request)
                    .await
                    .map_err(|e| HttpError::Transport(error_chain(&e)))?;
                let (parts, body) = response.into_parts();
                if let Some(len) = parts
                    .headers
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<usize>().ok())
                    && len > max_body
                {
                    return Err(HttpError::TooLarge { limit: max_body });
                }
                let body = Limited::new(body, max_body).collect().await.map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        HttpError::TooLarge { limit: max_body }
                    } else {
                        HttpError::Transport(e.to_string())
                    }
                })?;
                Ok(HttpResponse::new(
                    parts.status,
                    parts.headers,
                    body.to_bytes(),
                ))
            })
        }
    }

    fn error_chain(e: &dyn std::error::Error) -> String {
        let mut out = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            out.push_str(": ");
            out.push_str(&s.to_string());
            source = s.source();
        }
        out
    }
}
