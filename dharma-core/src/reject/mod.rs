//! How a refusal is told to the client: over HTTP ([`Denial::status`],
//! [`Denial::www_authenticate`], [`Denial::body`]) and over gRPC ([`Denial::grpc_code`]),
//! both chosen from the rejection's [`Category`]. The reason itself, with every detail,
//! goes to the audit trail only.
//!
//! | category | HTTP | `WWW-Authenticate` | gRPC |
//! | --- | --- | --- | --- |
//! | unauthenticated | 401 | `Bearer` (no error code) | `UNAUTHENTICATED` |
//! | invalid credentials | 401 | `Bearer error="invalid_token"` | `UNAUTHENTICATED` |
//! | malformed | 400 | `Bearer error="invalid_request"` | `INVALID_ARGUMENT` |
//! | insufficient scope | 403 | `Bearer error="insufficient_scope", scope="..."` | `PERMISSION_DENIED` |
//! | forbidden | 403 | none | `PERMISSION_DENIED` |
//! | not found | 404 | none | `UNIMPLEMENTED` |
//! | method not allowed | 405 (with `Allow`) | none | `UNIMPLEMENTED` |
//! | internal (router disagrees) | 500 | none | `INTERNAL` |
//! | unavailable | 503 | none | `UNAVAILABLE` |
//!
//! ```
//! use dharma_core::reject::{Denial, Rejection, TokenError};
//!
//! let denial = Denial::new(Rejection::InvalidToken(TokenError::BadSignature), None);
//! assert_eq!(denial.status(), 401);
//! assert_eq!(
//!     denial.www_authenticate().unwrap(),
//!     r#"Bearer error="invalid_token", error_description="the access token is invalid""#
//! );
//! assert_eq!(denial.grpc_code(), 16); // UNAUTHENTICATED
//! ```

mod body;
mod grpc_status;
mod http_response;

use std::{fmt, sync::Arc};

pub use crate::error::{
    Category, ForbiddenReason, KeySourceError, MalformedRequest, Rejection, TokenError,
    UnavailableError,
};
pub use body::{DenialBody, DenialRenderer};

/// A rejection rendered for the client.
#[derive(Debug, Clone)]
pub struct Denial {
    rejection: Rejection,
    realm: Option<Arc<str>>,
    renderer: Option<DenialRenderer>,
}

impl Denial {
    /// Renders `rejection`, with `realm` in challenges when given.
    pub fn new(rejection: Rejection, realm: Option<Arc<str>>) -> Self {
        Self {
            rejection,
            realm,
            renderer: None,
        }
    }

    /// The reason (for audit and logs; never sent to the client as is).
    pub fn rejection(&self) -> &Rejection {
        &self.rejection
    }

    /// What kind of refusal it is.
    pub fn category(&self) -> Category {
        self.rejection.category()
    }

    /// The OAuth2 error code of RFC 6750, if the rejection has one.
    pub fn error_code(&self) -> Option<&'static str> {
        match self.category() {
            Category::Malformed => Some("invalid_request"),
            Category::InvalidCredentials => Some("invalid_token"),
            Category::InsufficientScope => Some("insufficient_scope"),
            _ => None,
        }
    }

    /// A fixed phrase for the client, if the rejection has one; details stay in the
    /// audit trail.
    fn description(&self) -> Option<&'static str> {
        match self.rejection.primary() {
            Rejection::MalformedRequest(MalformedRequest::Credentials(_)) => {
                Some("the authorization header is malformed")
            }
            Rejection::MalformedRequest(MalformedRequest::Path(_)) => {
                Some("the request path is not in normal form")
            }
            Rejection::MalformedRequest(MalformedRequest::Forwarded(_)) => {
                Some("a forwarded header is malformed")
            }
            Rejection::MalformedRequest(MalformedRequest::Method) => {
                Some("the method is not supported")
            }
            Rejection::InvalidToken(e) => Some(e.description()),
            Rejection::InsufficientScope { .. } => {
                Some("the access token does not grant the required scope")
            }
            _ => None,
        }
    }

    /// The authentication challenge that tells the client what would help (RFC 6750
    /// section 3), for the categories where another credential could: unauthenticated,
    /// invalid credentials, malformed, insufficient scope.
    pub fn challenge(&self) -> Option<Challenge> {
        if !matches!(
            self.category(),
            Category::Unauthenticated
                | Category::InvalidCredentials
                | Category::Malformed
                | Category::InsufficientScope
        ) {
            return None;
        }
        let mut c = Challenge::new("Bearer");
        if let Some(realm) = &self.realm {
            c = c.param("realm", realm);
        }
        if let Some(code) = self.error_code() {
            c = c.param("error", code);
        }
        if let Some(desc) = self.description() {
            c = c.param("error_description", desc);
        }
        if let Rejection::InsufficientScope { required } = self.rejection.primary() {
            let scopes: Vec<&str> = required.iter().map(|s| s.as_str()).collect();
            c = c.param("scope", &scopes.join(" "));
        }
        Some(c)
    }
}

/// An authentication challenge (RFC 9110 section 11.6.1): a scheme and its parameters,
/// as data, written out as a header value by [`Display`](fmt::Display).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    scheme: &'static str,
    params: Vec<(&'static str, String)>,
}

impl Challenge {
    /// A challenge of `scheme` (`Bearer`, `DPoP`) with no parameters.
    pub fn new(scheme: &'static str) -> Self {
        Self {
            scheme,
            params: Vec::new(),
        }
    }

    /// Adds a parameter. Its value is written as a quoted string, escaped, with anything
    /// but visible ASCII and spaces replaced by `?`.
    #[must_use]
    pub fn param(mut self, name: &'static str, value: &str) -> Self {
        self.params.push((name, value.to_owned()));
        self
    }

    /// The scheme.
    pub fn scheme(&self) -> &str {
        self.scheme
    }

    /// The parameters, in order.
    pub fn params(&self) -> &[(&'static str, String)] {
        &self.params
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme)?;
        for (i, (name, value)) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            write!(f, "{name}=\"")?;
            for c in value.chars() {
                match c {
                    '"' | '\\' => write!(f, "\\{c}")?,
                    ' ' | '!'..='~' => write!(f, "{c}")?,
                    _ => f.write_str("?")?,
                }
            }
            f.write_str("\"")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::StatusCode;

    use super::*;
    use crate::error::CredentialsError;

    fn www(r: Rejection, realm: Option<&str>) -> Option<String> {
        Denial::new(r, realm.map(Arc::from))
            .www_authenticate()
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn missing_credentials_is_a_bare_challenge() {
        let d = Denial::new(Rejection::MissingCredentials, None);
        assert_eq!(d.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(www(Rejection::MissingCredentials, None).unwrap(), "Bearer");
        assert_eq!(
            www(Rejection::MissingCredentials, Some("orders")).unwrap(),
            r#"Bearer realm="orders""#
        );
        assert_eq!(d.body(), r#"{"error":"unauthorized"}"#);
    }

    #[test]
    fn invalid_token_challenge() {
        let r = Rejection::InvalidToken(TokenError::Expired { now: 2, exp: 1 });
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.code(), "token_expired");
        assert_eq!(
            www(r, Some("a\"b\\c\u{7f}")).unwrap(),
            r#"Bearer realm="a\"b\\c?", error="invalid_token", error_description="the access token expired""#
        );
    }

    #[test]
    fn malformed_request_is_400() {
        let r = Rejection::MalformedRequest(CredentialsError::Repeated.into());
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(
            www(r, None)
                .unwrap()
                .starts_with(r#"Bearer error="invalid_request""#)
        );
    }

    #[test]
    fn insufficient_scope_names_scopes() {
        let r = Rejection::InsufficientScope {
            required: vec!["a:read".parse().unwrap(), "b".parse().unwrap()],
        };
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            www(r.clone(), None).unwrap(),
            r#"Bearer error="insufficient_scope", error_description="the access token does not grant the required scope", scope="a:read b""#
        );
        let body: serde_json::Value = serde_json::from_str(&Denial::new(r, None).body()).unwrap();
        assert_eq!(body["error"], "insufficient_scope");
    }

    #[test]
    fn unavailable_and_not_found_have_no_challenge_and_no_detail() {
        let r = Rejection::Unavailable(KeySourceError::Timeout.into());
        let d = Denial::new(r, None);
        assert_eq!(d.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(d.www_authenticate().is_none());
        assert_eq!(d.body(), r#"{"error":"temporarily_unavailable"}"#);
        let d = Denial::new(Rejection::NoEndpoint, None);
        assert_eq!(d.status(), StatusCode::NOT_FOUND);
        assert!(d.www_authenticate().is_none());
    }

    #[test]
    fn token_error_display_quotes_untrusted_text() {
        let e = TokenError::UnsupportedAlgorithm("none\"".into());
        assert_eq!(e.to_string(), r#"algorithm "none\"" is not accepted"#);
    }

    /// gRPC codes come from the category, not from an HTTP status: a route the router
    /// and dharma disagree on is `INTERNAL`, an undeclared method `UNIMPLEMENTED`.
    #[test]
    fn grpc_codes_follow_the_category() {
        let cases = [
            (Rejection::MissingCredentials, Category::Unauthenticated, 16),
            (
                Rejection::InvalidToken(TokenError::BadSignature),
                Category::InvalidCredentials,
                16,
            ),
            (
                Rejection::MalformedRequest(MalformedRequest::Method),
                Category::Malformed,
                3,
            ),
            (
                Rejection::InsufficientScope { required: vec![] },
                Category::InsufficientScope,
                7,
            ),
            (
                Rejection::Forbidden(ForbiddenReason::UnknownPeer),
                Category::Forbidden,
                7,
            ),
            (Rejection::NoEndpoint, Category::NotFound, 12),
            (
                Rejection::MethodNotAllowed {
                    allow: "GET".into(),
                },
                Category::MethodNotAllowed,
                12,
            ),
            (
                Rejection::RouteMismatch { route: "/x".into() },
                Category::Internal,
                13,
            ),
            (
                Rejection::Unavailable(KeySourceError::Timeout.into()),
                Category::Unavailable,
                14,
            ),
        ];
        for (rejection, category, code) in cases {
            let d = Denial::new(rejection, None);
            assert_eq!((d.category(), d.grpc_code()), (category, code));
            assert!(!d.grpc_message().is_empty());
        }
    }

    /// A challenge is data until it is written: scheme and parameters, in order.
    #[test]
    fn challenges_are_data() {
        let d = Denial::new(
            Rejection::InsufficientScope {
                required: vec!["a".parse().unwrap()],
            },
            Some("shop".into()),
        );
        let c = d.challenge().unwrap();
        assert_eq!(c.scheme(), "Bearer");
        let names: Vec<_> = c.params().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["realm", "error", "error_description", "scope"]);
        assert_eq!(
            Challenge::new("DPoP")
                .param("algs", "ES256 EdDSA")
                .to_string(),
            r#"DPoP algs="ES256 EdDSA""#
        );
        assert!(
            Denial::new(Rejection::NoEndpoint, None)
                .challenge()
                .is_none()
        );
    }
}
