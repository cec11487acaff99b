//! API keys: they identify a client application and authenticate nothing.
//!
//! A key names a client; the identity it yields is
//! [`Identified`](crate::Assurance::Identified), so it never becomes the principal of an
//! endpoint that needs an authenticated one (the default) unless the endpoint
//! [allows identified callers](crate::model::EndpointBuilder::allow_identified). Combine it
//! with a real mechanism (`AllOf`) to know both the application and the user. Keys are kept
//! only as SHA-256 digests and compared in constant time.
//!
//! ```
//! use dharma_core::mechanism::api_key::ApiKeyVerifier;
//!
//! let keys = ApiKeyVerifier::builder()
//!     .header("x-api-key")?
//!     .key("billing-app", "k3y-for-billing")
//!     .key_digest("reports-app", "0b5bd1c9b1f0fd9f7bd4e9b6cba1d8a8f0a6d4c6b4f2b1a7c6e2d3f4a5b6c7d8")?
//!     .build();
//! # let _ = keys;
//! # Ok::<(), dharma_core::mechanism::api_key::ApiKeyError>(())
//! ```

use std::sync::Arc;

use http::HeaderName;

use crate::{
    context::{Identity, IdentityKind},
    error::{CredentialsError, MalformedRequest, Rejection, TokenError},
    mechanism::{Authenticated, Verifier},
    request::RequestView,
    util::{BoxFuture, truncate},
};

/// An API key configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyError {
    /// The header name is not a valid HTTP header name.
    #[error("invalid header name {0:?}")]
    Header(String),
    /// A digest is not 64 hexadecimal characters.
    #[error("digest of client {0:?} is not a hex SHA-256")]
    Digest(String),
}

/// Builds an [`ApiKeyVerifier`].
#[derive(Debug)]
#[must_use]
pub struct ApiKeyVerifierBuilder {
    header: HeaderName,
    keys: Vec<([u8; 32], Arc<str>)>,
}

impl ApiKeyVerifierBuilder {
    /// The header carrying the key (default `x-api-key`).
    pub fn header(mut self, name: &str) -> Result<Self, ApiKeyError> {
        self.header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ApiKeyError::Header(truncate(name, 64)))?;
        Ok(self)
    }
    /// A key for `client`, given in clear (it is hashed at once).
    pub fn key(mut self, client: &str, key: &str) -> Self {
        self.keys.push((digest(key.as_bytes()), client.into()));
        self
    }
    /// A key for `client`, given as the hex SHA-256 of the key.
    pub fn key_digest(mut self, client: &str, sha256_hex: &str) -> Result<Self, ApiKeyError> {
        let bad = || ApiKeyError::Digest(truncate(client, 64));
        if sha256_hex.len() != 64 {
            return Err(bad());
        }
        let mut d = [0u8; 32];
        for (i, byte) in d.iter_mut().enumerate() {
            let hex = sha256_hex.get(2 * i..2 * i + 2).ok_or_else(bad)?;
            *byte = u8::from_str_radix(hex, 16).map_err(|_| bad())?;
        }
        self.keys.push((d, client.into()));
        Ok(self)
    }
    /// Finishes the verifier.
    pub fn build(self) -> ApiKeyVerifier {
        ApiKeyVerifier {
            header: self.header,
            keys: self.keys,
        }
    }
}

fn digest(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Equal without an early exit.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Identifies client applications by an API key header.
#[derive(Clone)]
pub struct ApiKeyVerifier {
    header: HeaderName,
    keys: Vec<([u8; 32], Arc<str>)>,
}

impl std::fmt::Debug for ApiKeyVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyVerifier")
            .field("header", &self.header)
            .field(
                "clients",
                &self.keys.iter().map(|(_, c)| c).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ApiKeyVerifier {
    /// Starts configuring.
    pub fn builder() -> ApiKeyVerifierBuilder {
        ApiKeyVerifierBuilder {
            header: HeaderName::from_static("x-api-key"),
            keys: Vec::new(),
        }
    }

    fn check(&self, request: &RequestView<'_>) -> Result<Authenticated, Rejection> {
        let mut values = request.headers().get_all(&self.header).iter();
        let Some(value) = values.next() else {
            return Err(Rejection::MissingCredentials);
        };
        if values.next().is_some() {
            return Err(MalformedRequest::from(CredentialsError::Repeated).into());
        }
        let presented = digest(value.as_bytes());
        // Look at every key, so the time taken does not depend on which one matched.
        let mut found: Option<&Arc<str>> = None;
        for (d, client) in &self.keys {
            if same(d, &presented) {
                found = Some(client);
            }
        }
        match found {
            Some(client) => Ok(Authenticated::new(vec![
                Identity::new(IdentityKind::ClientApp, client.clone()).identified_only(),
            ])),
            None => Err(TokenError::UnknownApiKey.into()),
        }
    }
}

impl Verifier for ApiKeyVerifier {
    fn verify<'a>(
        &'a self,
        request: &'a RequestView<'a>,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
        let result = self.check(request);
        Box::pin(async move { result })
    }
}

/// `kind = "api_key"`: the header and the clients with their key digests.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiKeySettings {
    header: Option<String>,
    #[serde(default)]
    clients: Vec<ApiClientSettings>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiClientSettings {
    client: String,
    sha256: String,
}

impl ApiKeySettings {
    fn verifier(&self) -> Result<ApiKeyVerifier, super::KindError> {
        let mut b = ApiKeyVerifier::builder();
        if let Some(h) = &self.header {
            b = b.header(h).map_err(super::KindError::invalid)?;
        }
        for c in &self.clients {
            b = b
                .key_digest(&c.client, &c.sha256)
                .map_err(super::KindError::invalid)?;
        }
        Ok(b.build())
    }
}

/// Builds [`ApiKeyVerifier`]s.
pub(crate) struct ApiKeyKind;

impl super::MechanismKind for ApiKeyKind {
    type Settings = ApiKeySettings;

    fn check(&self, settings: &ApiKeySettings) -> Result<(), super::KindError> {
        settings.verifier().map(drop)
    }

    fn build(
        &self,
        settings: &ApiKeySettings,
        _: &super::BuildContext<'_>,
    ) -> Result<super::Instance, super::KindError> {
        settings.verifier().map(super::Instance::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Assurance;
    use http::{HeaderMap, HeaderValue, Method};

    fn check(v: &ApiKeyVerifier, values: &[&'static str]) -> Result<Authenticated, Rejection> {
        let mut h = HeaderMap::new();
        for value in values {
            h.append("x-api-key", HeaderValue::from_static(value));
        }
        v.check(&RequestView::new(&Method::GET, "/", &h))
    }

    #[test]
    fn identifies_and_never_authenticates() {
        let sha_of_secret2 = "35224d0d3465d74e855f8d69a136e79c744ea35a675d3393360a327cbf6359a2";
        let v = ApiKeyVerifier::builder()
            .key("app-1", "secret1")
            .key_digest("app-2", sha_of_secret2)
            .unwrap()
            .build();
        let a = check(&v, &["secret1"]).unwrap();
        assert_eq!(a.identities()[0].subject(), "app-1");
        assert_eq!(a.identities()[0].assurance(), Assurance::Identified);
        assert_eq!(
            check(&v, &["secret2"]).unwrap().identities()[0].subject(),
            "app-2"
        );
        assert_eq!(check(&v, &["nope"]).unwrap_err().code(), "api_key_unknown");
        assert_eq!(check(&v, &[]).unwrap_err().code(), "missing_credentials");
        assert_eq!(
            check(&v, &["secret1", "secret1"]).unwrap_err().status(),
            400
        );
        assert!(!format!("{v:?}").contains("secret"));
    }

    #[test]
    fn bad_config() {
        assert!(ApiKeyVerifier::builder().header("bad header").is_err());
        assert!(ApiKeyVerifier::builder().key_digest("a", "abc").is_err());
        assert!(
            ApiKeyVerifier::builder()
                .key_digest("a", &"zz".repeat(32))
                .is_err()
        );
    }
}
