//! OAuth 2.0 error responses (RFC 6749 §5.2, RFC 8693 §2.2.2).

use std::borrow::Cow;

use http::StatusCode;

/// An OAuth error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request is malformed, or a subject or actor token is invalid or unacceptable
    /// by policy (RFC 8693 §2.2.2 names this code for every bad subject or actor token).
    InvalidRequest,
    /// The caller is not an authenticated client.
    InvalidClient,
    /// The grant (an authorization code, a refresh token) is invalid. This service never
    /// answers it (RFC 8693 §2.2.2 sends every bad subject or actor token to
    /// `invalid_request`), but other servers do.
    InvalidGrant,
    /// The client may not use this grant type.
    UnauthorizedClient,
    /// The grant type is not one this service knows.
    UnsupportedGrantType,
    /// The scope is malformed, or nothing of what was asked can be granted.
    InvalidScope,
    /// The service will not issue a token for the audience or resource asked for.
    InvalidTarget,
    /// The service does not revoke tokens of this type (RFC 7009 §2.2.1): here, it
    /// revokes none, having no revocation list.
    UnsupportedTokenType,
    /// A source the service depends on (an introspection endpoint, a key set) did not
    /// answer; the client may retry.
    TemporarilyUnavailable,
    /// The service failed (signing); nothing about the request.
    ServerError,
}

impl ErrorCode {
    /// The code as it is written in the response.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
        }
    }

    /// The code named by `name`, if it is one of these.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::InvalidRequest,
            Self::InvalidClient,
            Self::InvalidGrant,
            Self::UnauthorizedClient,
            Self::UnsupportedGrantType,
            Self::InvalidScope,
            Self::InvalidTarget,
            Self::UnsupportedTokenType,
            Self::TemporarilyUnavailable,
            Self::ServerError,
        ]
        .into_iter()
        .find(|c| c.as_str() == name)
    }

    /// The HTTP status of the response.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient => StatusCode::UNAUTHORIZED,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A refused token request: the code and a description for the client's developer.
///
/// The description never quotes a token, a key or an internal error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    code: ErrorCode,
    description: Cow<'static, str>,
}

impl OAuthError {
    /// An error with its description.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    pub(crate) fn request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The JSON body: `error` and `error_description`, the description limited to the
    /// characters RFC 6749 allows in it (others become `?`).
    pub fn body(&self) -> Vec<u8> {
        let description: String = self
            .description
            .chars()
            .take(200)
            .map(|c| match c {
                ' ' | '!' | '#'..='[' | ']'..='~' => c,
                _ => '?',
            })
            .collect();
        serde_json::json!({"error": self.code.as_str(), "error_description": description})
            .to_string()
            .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_keep_to_the_rfc_character_set() {
        let e = OAuthError::request("bad \"x\"\n\\ é");
        let body: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert_eq!(body["error_description"], "bad ?x??? ?");
        assert_eq!(e.code().status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            ErrorCode::TemporarilyUnavailable.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
