//! Where an issuer's keys come from, checked when configured.
//!
//! ```
//! use dharma_core::jwks::KeySource;
//!
//! assert!(KeySource::jwks_uri("https://idp.example/jwks").is_ok());
//! assert!(KeySource::jwks_uri("http://127.0.0.1:8080/jwks").is_ok()); // loopback may be plain http
//! assert!(KeySource::jwks_uri("http://idp.example/jwks").is_err());
//! ```

use std::{fmt, net::IpAddr, sync::Arc};

use http::Uri;

use crate::jose::VerifyingKey;

/// A key source URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key source URL {url:?}: {reason}")]
pub struct SourceError {
    url: String,
    reason: &'static str,
}

/// Where an issuer's signing keys come from.
#[derive(Clone)]
#[non_exhaustive]
pub enum KeySource {
    /// A JWK Set URL.
    JwksUri(Uri),
    /// OIDC discovery: `{issuer}/.well-known/openid-configuration` names the JWK Set URL.
    /// The document's `issuer` must equal the configured issuer.
    Discovery(Uri),
    /// A fixed set of keys that is never refreshed.
    Static(Arc<[Arc<VerifyingKey>]>),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::JwksUri(u) => f.debug_tuple("JwksUri").field(&u.to_string()).finish(),
            Self::Discovery(u) => f.debug_tuple("Discovery").field(&u.to_string()).finish(),
            Self::Static(keys) => f.debug_tuple("Static").field(&keys.len()).finish(),
        }
    }
}

impl KeySource {
    /// Keys from a JWK Set URL (`https`, or `http` on a loopback address).
    pub fn jwks_uri(url: &str) -> Result<Self, SourceError> {
        Ok(Self::JwksUri(check_url(url)?))
    }

    /// Keys found through OIDC discovery from the issuer URL (`https`, or `http` on
    /// loopback).
    pub fn discovery(issuer: &str) -> Result<Self, SourceError> {
        check_url(issuer)?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        Ok(Self::Discovery(check_url(&url)?))
    }

    /// A fixed set of keys.
    pub fn fixed(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        Self::Static(keys.into_iter().map(Arc::new).collect())
    }
}

/// Parses a URL and refuses anything but `https`, or `http` to a loopback host.
pub(crate) fn check_url(url: &str) -> Result<Uri, SourceError> {
    let err = |reason| SourceError {
        url: crate::util::truncate(url, 128),
        reason,
    };
    let uri: Uri = url.parse().map_err(|_| err("not a URL"))?;
    let host = uri.host().ok_or(err("no host"))?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback(host) => Ok(uri),
        Some("http") => Err(err("plain http is only allowed to a loopback address")),
        _ => Err(err("scheme must be https")),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("https://idp.example/x").is_ok());
        assert!(check_url("http://[::1]:80/x").is_ok());
        assert!(check_url("http://localhost/x").is_ok());
        assert!(check_url("http://127.9.9.9/x").is_ok());
        assert!(check_url("http://10.0.0.1/x").is_err());
        assert!(check_url("ftp://idp.example/x").is_err());
        assert!(check_url("/relative").is_err());
        match KeySource::discovery("http://127.0.0.1:9/realm/").unwrap() {
            KeySource::Discovery(u) => {
                assert_eq!(
                    u.to_string(),
                    "http://127.0.0.1:9/realm/.well-known/openid-configuration"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
