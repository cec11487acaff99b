//! Why a request was refused, and how that is told to the client.
//!
//! Every refusal is a [`Rejection`] with a typed reason for the audit trail. A
//! [`Denial`] renders it for HTTP exactly as RFC 6750 section 3 asks, without details
//! that would help an attacker (those stay in the audit event):
//!
//! | rejection | status | `WWW-Authenticate` |
//! | --- | --- | --- |
//! | no credentials | 401 | `Bearer` (no error code) |
//! | bad token | 401 | `Bearer error="invalid_token"` |
//! | malformed request | 400 | `Bearer error="invalid_request"` |
//! | missing scope | 403 | `Bearer error="insufficient_scope", scope="..."` |
//! | other policy refusal | 403 | none |
//! | no endpoint declared | 404 | none |
//! | path declared, method not | 405 (with `Allow`) | none |
//! | the router chose another route than dharma | 500 | none |
//! | key source down, no usable cached key | 503 | none |
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
//! ```

use std::sync::Arc;

use http::{HeaderValue, StatusCode};

use crate::{
    jwks::KeySourceError, mechanism::BranchOutcome, model::PathError, names::Scope,
    request::CredentialsError,
};

/// A refusal, with the reason kept for the audit trail.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The request carries no credentials the mechanism understands.
    #[error("no credentials")]
    MissingCredentials,
    /// The request is malformed (repeated or unreadable credentials, a suspicious path).
    #[error("malformed request: {0}")]
    MalformedRequest(#[from] MalformedRequest),
    /// The credentials were presented and are not valid.
    #[error("invalid token: {0}")]
    InvalidToken(#[from] TokenError),
    /// The principal lacks scopes the endpoint requires.
    #[error("insufficient scope: requires {}", scope_list(required))]
    InsufficientScope {
        /// Every scope the endpoint requires.
        required: Vec<Scope>,
    },
    /// No identity the endpoint accepts as its principal: nothing authenticated (an API
    /// key alone only identifies).
    #[error("no authenticated principal")]
    NotAuthenticated,
    /// A client certificate (mutual TLS) or a token's `x5c` chain is refused. Answered
    /// `403` without a challenge: another bearer token would not help.
    #[error("certificate refused: {0}")]
    Certificate(crate::pki::CertificateError),
    /// The principal is authenticated but a policy rule refuses it.
    #[error("forbidden: {0}")]
    Forbidden(#[from] ForbiddenReason),
    /// The request matches no declared endpoint.
    #[error("no endpoint matches the request")]
    NoEndpoint,
    /// Endpoints are declared for the path but none for the method. Answered `405` with
    /// `Allow`.
    #[error("method not declared for the path (allowed: {allow})")]
    MethodNotAllowed {
        /// The declared methods, comma-separated.
        allow: Arc<str>,
    },
    /// The framework's router chose a route that leads to another declared path than the
    /// request's own: dharma and the router disagree on which handler runs, so the request
    /// is refused (`500`) and the audit trail names both. Declare an endpoint for the route,
    /// or register routes so that the most specific one matches first.
    #[error("the router chose route {route:?}, which is not the declared endpoint for the path")]
    RouteMismatch {
        /// The route the router reported.
        route: String,
    },
    /// A mechanism could not decide because what it depends on is unavailable.
    #[error("unavailable: {0}")]
    Unavailable(#[from] UnavailableError),
    /// A combined mechanism refused: the rejection told to the client, and what every
    /// branch that ran said.
    #[error("{chosen} (branches: {})", outcome_list(outcomes))]
    Branches {
        /// The rejection that answers the request.
        chosen: Box<Rejection>,
        /// Each branch that ran, in order.
        outcomes: Vec<BranchOutcome>,
    },
}

fn outcome_list(outcomes: &[BranchOutcome]) -> String {
    outcomes
        .iter()
        .map(|o| format!("{}: {}", o.mechanism, o.reason))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a request is malformed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedRequest {
    /// The `Authorization` header cannot be read.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The path is not in normal form.
    #[error(transparent)]
    Path(#[from] PathError),
    /// A method the core cannot represent.
    #[error("unsupported method")]
    Method,
    /// A trusted proxy sent a `Forwarded` or `X-Forwarded-For` hop that is not an address.
    #[error("forwarded hop {0:?} is not an IP address")]
    Forwarded(String),
}

/// Why an authenticated principal is refused.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ForbiddenReason {
    /// The request does not come from an allowed network (network isolation).
    #[error("client address {0} is not in an allowed network")]
    UntrustedNetwork(String),
    /// A mechanism needs the transport peer and the adapter did not give it.
    #[error("the transport peer is unknown")]
    UnknownPeer,
    /// The peer is a trusted proxy that named no client beyond the trusted proxies.
    #[error("a trusted proxy forwarded no client address")]
    NoForwardedClient,
    /// A claim the endpoint requires is missing or has another value.
    #[error("claim {claim:?} does not meet the endpoint's requirement")]
    Claim {
        /// The claim's name.
        claim: Arc<str>,
    },
}

/// What a mechanism depended on and could not reach.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum UnavailableError {
    /// No usable signing keys: the key source failed and no cached keys are left.
    #[error(transparent)]
    KeySource(#[from] KeySourceError),
    /// The introspection endpoint failed, timed out or answered nonsense.
    #[error(transparent)]
    Introspection(#[from] crate::mechanism::introspection::IntrospectionError),
}

/// Why a token is not valid. `Display` quotes and truncates anything the token said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Longer than the configured maximum.
    #[error("token of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a compact JWS, bad base64url, or bad JSON.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` is `none`, unknown, or not allowed for this issuer.
    #[error("algorithm {0:?} is not accepted")]
    UnsupportedAlgorithm(String),
    /// `alg` does not match the algorithm the key is for.
    #[error("algorithm {header:?} does not match the key's algorithm {key}")]
    AlgorithmMismatch {
        /// What the header said.
        header: String,
        /// What the key is for.
        key: &'static str,
    },
    /// A `crit` header names an extension that is not understood.
    #[error("critical header {0:?} is not understood")]
    CriticalHeader(String),
    /// No key of the issuer has this `kid` (or no `kid` and the choice is ambiguous).
    #[error("no key {kid:?} for the issuer")]
    UnknownKey {
        /// The `kid` of the header, if any.
        kid: Option<String>,
    },
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// `iss` is missing or not a configured issuer.
    #[error("issuer {0:?} is not trusted")]
    UntrustedIssuer(String),
    /// `aud` does not name an accepted audience.
    #[error("audience is not accepted")]
    WrongAudience,
    /// `exp` has passed (beyond the leeway).
    #[error("expired at {exp}, now {now}")]
    Expired {
        /// Now, in Unix seconds.
        now: u64,
        /// The `exp` claim.
        exp: u64,
    },
    /// `nbf` is in the future (beyond the leeway).
    #[error("not valid before {nbf}, now {now}")]
    NotYetValid {
        /// Now, in Unix seconds.
        now: u64,
        /// The `nbf` claim.
        nbf: u64,
    },
    /// `iat` is in the future (beyond the leeway).
    #[error("issued in the future at {iat}, now {now}")]
    IssuedInFuture {
        /// Now, in Unix seconds.
        now: u64,
        /// The `iat` claim.
        iat: u64,
    },
    /// A required claim is missing or has the wrong JSON type.
    #[error("claim {0:?} is missing or malformed")]
    Claim(String),
    /// The `typ` header is not one of the accepted types.
    #[error("token type {0:?} is not accepted")]
    WrongType(String),
    /// The token is bound to a certificate (`cnf.x5t#S256`, RFC 8705) other than the
    /// client's, or the client presented none.
    #[error("token is not bound to the client certificate")]
    CertificateBinding,
    /// The token carries a confirmation (`cnf`) that dharma cannot check: a method other
    /// than `x5t#S256`, or not an object (RFC 7800).
    #[error("the token's confirmation method cannot be checked")]
    UnverifiableConfirmation,
    /// An API key that names no client.
    #[error("API key is not known")]
    UnknownApiKey,
    /// The authorization server does not know the token (introspection: `active: false`).
    #[error("token is not active")]
    Inactive,
    /// The introspection endpoint refused the token's type (`unsupported_token_type`).
    #[error("token type is not supported by the introspection endpoint")]
    UnsupportedTokenType,
    /// The key that verified a cached token has left the key set.
    #[error("the signing key is no longer published")]
    KeyRevoked,
}

impl TokenError {
    /// A stable code for audit records.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "token_too_large",
            Self::Malformed(_) => "token_malformed",
            Self::UnsupportedAlgorithm(_) => "token_algorithm_unsupported",
            Self::AlgorithmMismatch { .. } => "token_algorithm_mismatch",
            Self::CriticalHeader(_) => "token_critical_header",
            Self::UnknownKey { .. } => "token_unknown_key",
            Self::BadSignature => "token_bad_signature",
            Self::UntrustedIssuer(_) => "token_untrusted_issuer",
            Self::WrongAudience => "token_wrong_audience",
            Self::Expired { .. } => "token_expired",
            Self::NotYetValid { .. } => "token_not_yet_valid",
            Self::IssuedInFuture { .. } => "token_issued_in_future",
            Self::Claim(_) => "token_claim_invalid",
            Self::WrongType(_) => "token_type_rejected",
            Self::KeyRevoked => "token_key_revoked",
            Self::UnknownApiKey => "api_key_unknown",
            Self::CertificateBinding => "token_certificate_binding",
            Self::UnverifiableConfirmation => "token_confirmation_unverifiable",
            Self::Inactive => "token_inactive",
            Self::UnsupportedTokenType => "token_type_unsupported",
        }
    }

    /// What the client is told (a fixed phrase; details stay in the audit trail).
    fn description(&self) -> &'static str {
        match self {
            Self::Expired { .. } => "the access token expired",
            _ => "the access token is invalid",
        }
    }
}

impl Rejection {
    /// A combined mechanism's refusal.
    pub fn branches(chosen: Rejection, outcomes: Vec<BranchOutcome>) -> Self {
        Self::Branches {
            chosen: Box::new(chosen.primary().clone()),
            outcomes,
        }
    }

    /// The rejection that answers the request (inside a combined mechanism's refusal).
    pub fn primary(&self) -> &Rejection {
        match self {
            Self::Branches { chosen, .. } => chosen.primary(),
            other => other,
        }
    }

    /// What the branches of a combined mechanism said (empty for a single mechanism).
    pub fn branch_outcomes(&self) -> &[BranchOutcome] {
        match self {
            Self::Branches { outcomes, .. } => outcomes,
            _ => &[],
        }
    }

    /// Whether the request simply carried no credentials for the mechanism.
    pub fn is_missing_credentials(&self) -> bool {
        matches!(self.primary(), Self::MissingCredentials)
    }

    /// A stable code for audit records (`missing_credentials`, `token_expired`, ...).
    pub fn code(&self) -> &'static str {
        match self.primary() {
            Self::MissingCredentials => "missing_credentials",
            Self::MalformedRequest(MalformedRequest::Credentials(_)) => "malformed_credentials",
            Self::MalformedRequest(MalformedRequest::Path(_)) => "malformed_path",
            Self::MalformedRequest(MalformedRequest::Forwarded(_)) => "malformed_forwarded",
            Self::MalformedRequest(MalformedRequest::Method) => "malformed_method",
            Self::InvalidToken(e) => e.code(),
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::Forbidden(ForbiddenReason::Claim { .. }) => "claim_requirement_failed",
            Self::Forbidden(ForbiddenReason::UntrustedNetwork(_)) => "untrusted_network",
            Self::Forbidden(ForbiddenReason::UnknownPeer) => "unknown_peer",
            Self::Forbidden(ForbiddenReason::NoForwardedClient) => "forwarded_client_unknown",
            Self::NotAuthenticated => "no_authenticated_principal",
            Self::Certificate(e) => e.code(),
            Self::NoEndpoint => "no_endpoint",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::RouteMismatch { .. } => "route_mismatch",
            Self::Unavailable(UnavailableError::KeySource(_)) => "key_source_unavailable",
            Self::Unavailable(UnavailableError::Introspection(_)) => "introspection_unavailable",
            Self::Branches { .. } => "branches",
        }
    }

    /// The HTTP status this rejection answers with.
    pub fn status(&self) -> StatusCode {
        match self.primary() {
            Self::MissingCredentials | Self::NotAuthenticated | Self::InvalidToken(_) => {
                StatusCode::UNAUTHORIZED
            }
            Self::MalformedRequest(_) => StatusCode::BAD_REQUEST,
            Self::InsufficientScope { .. } | Self::Forbidden(_) | Self::Certificate(_) => {
                StatusCode::FORBIDDEN
            }
            Self::NoEndpoint => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::RouteMismatch { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Branches { .. } => StatusCode::UNAUTHORIZED,
        }
    }
}

fn scope_list(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(Scope::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A rejection rendered for HTTP: status, challenge and a small JSON body.
#[derive(Debug, Clone)]
pub struct Denial {
    rejection: Rejection,
    realm: Option<Arc<str>>,
}

impl Denial {
    /// Renders `rejection`, with `realm` in challenges when given.
    pub fn new(rejection: Rejection, realm: Option<Arc<str>>) -> Self {
        Self { rejection, realm }
    }

    /// The reason (for audit and logs; never sent to the client as is).
    pub fn rejection(&self) -> &Rejection {
        &self.rejection
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.rejection.status()
    }

    /// The OAuth2 error code of RFC 6750, if the rejection has one.
    pub fn error_code(&self) -> Option<&'static str> {
        match self.rejection.primary() {
            Rejection::MalformedRequest(_) => Some("invalid_request"),
            Rejection::InvalidToken(_) => Some("invalid_token"),
            Rejection::InsufficientScope { .. } => Some("insufficient_scope"),
            _ => None,
        }
    }

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

    /// The `WWW-Authenticate` value (RFC 6750 section 3), for 400, 401 and scope-related 403.
    pub fn www_authenticate(&self) -> Option<HeaderValue> {
        let challenge = match self.rejection.primary() {
            Rejection::MissingCredentials
            | Rejection::NotAuthenticated
            | Rejection::MalformedRequest(_)
            | Rejection::InvalidToken(_)
            | Rejection::InsufficientScope { .. } => self.challenge(),
            _ => return None,
        };
        // The challenge is made only of escaped visible ASCII, so this cannot fail.
        HeaderValue::from_str(&challenge).ok()
    }

    fn challenge(&self) -> String {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(realm) = &self.realm {
            params.push(("realm", realm.to_string()));
        }
        if let Some(code) = self.error_code() {
            params.push(("error", code.to_owned()));
        }
        if let Some(desc) = self.description() {
            params.push(("error_description", desc.to_owned()));
        }
        if let Rejection::InsufficientScope { required } = self.rejection.primary() {
            params.push(("scope", scope_list(required)));
        }
        let mut out = String::from("Bearer");
        for (i, (name, value)) in params.iter().enumerate() {
            out.push_str(if i == 0 { " " } else { ", " });
            out.push_str(name);
            out.push_str("=\"");
            push_quoted(&mut out, value);
            out.push('"');
        }
        out
    }

    /// The gRPC status code (numeric, as in `grpc-status`) that carries this denial:
    /// `UNAUTHENTICATED` (16) for missing or invalid credentials, `PERMISSION_DENIED` (7)
    /// for an insufficient scope or a refused caller, `INVALID_ARGUMENT` (3) for a
    /// malformed request, `UNIMPLEMENTED` (12) for an undeclared method, `UNAVAILABLE` (14)
    /// when the decision could not be made.
    pub fn grpc_code(&self) -> i32 {
        match self.status() {
            StatusCode::UNAUTHORIZED => 16,
            StatusCode::FORBIDDEN => 7,
            StatusCode::BAD_REQUEST => 3,
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => 12,
            StatusCode::SERVICE_UNAVAILABLE => 14,
            StatusCode::INTERNAL_SERVER_ERROR => 13,
            _ => 2,
        }
    }

    /// The gRPC status message: the fixed description, or the error code, never details.
    pub fn grpc_message(&self) -> &'static str {
        self.description().unwrap_or(match self.status() {
            StatusCode::UNAUTHORIZED => "authentication required",
            StatusCode::FORBIDDEN => "permission denied",
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => "method not exposed",
            StatusCode::SERVICE_UNAVAILABLE => "temporarily unavailable",
            StatusCode::INTERNAL_SERVER_ERROR => "internal error",
            _ => "request refused",
        })
    }

    /// The response headers: `WWW-Authenticate` when the status calls for it, `Allow` on
    /// `405`, `Content-Type: application/json` and `Cache-Control: no-store`.
    pub fn headers(&self) -> http::HeaderMap {
        let mut headers = http::HeaderMap::with_capacity(3);
        if let Some(challenge) = self.www_authenticate() {
            headers.insert(http::header::WWW_AUTHENTICATE, challenge);
        }
        if let Rejection::MethodNotAllowed { allow } = self.rejection.primary()
            && let Ok(value) = HeaderValue::from_str(allow)
        {
            headers.insert(http::header::ALLOW, value);
        }
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        headers
    }

    /// The response body: `{"error": ..., "error_description": ...}` with fixed phrases.
    pub fn body(&self) -> String {
        let error = self.error_code().unwrap_or(match self.status() {
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::SERVICE_UNAVAILABLE => "temporarily_unavailable",
            StatusCode::INTERNAL_SERVER_ERROR => "internal_error",
            _ => "unauthorized",
        });
        let mut body = serde_json::Map::new();
        body.insert("error".into(), error.into());
        if let Some(desc) = self.description() {
            body.insert("error_description".into(), desc.into());
        }
        serde_json::Value::Object(body).to_string()
    }
}

/// Appends `value` as the inside of an RFC 9110 quoted-string: `"` and `\` are escaped and
/// anything that is not visible ASCII or a space becomes `?`.
fn push_quoted(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' ' | '!'..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
