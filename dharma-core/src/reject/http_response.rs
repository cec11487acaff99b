//! Denials as HTTP responses: status, `WWW-Authenticate`, `Allow`, and a small JSON body.

use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::{Category, Denial, Rejection};

impl Category {
    /// The HTTP status.
    pub fn http_status(self) -> StatusCode {
        match self {
            Self::Unauthenticated | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Malformed => StatusCode::BAD_REQUEST,
            Self::InsufficientScope | Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `error` of the JSON body for categories without an RFC 6750 code.
    fn http_error(self) -> &'static str {
        match self {
            Self::Forbidden | Self::InsufficientScope => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unavailable => "temporarily_unavailable",
            Self::Internal => "internal_error",
            Self::Unauthenticated | Self::InvalidCredentials | Self::Malformed => "unauthorized",
        }
    }
}

impl Rejection {
    /// The HTTP status this rejection answers with.
    pub fn status(&self) -> StatusCode {
        self.category().http_status()
    }
}

impl Denial {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.category().http_status()
    }

    /// The `WWW-Authenticate` value (RFC 6750 section 3), for 400, 401 and scope-related
    /// 403: the [`challenge`](Self::challenge) written out.
    pub fn www_authenticate(&self) -> Option<HeaderValue> {
        // A challenge is written in escaped visible ASCII only, so this cannot fail.
        self.challenge()
            .and_then(|c| HeaderValue::from_str(&c.to_string()).ok())
    }

    /// The response headers: `WWW-Authenticate` when the status calls for it, `Allow` on
    /// `405`, the body's `Content-Type` and `Cache-Control: no-store`.
    pub fn headers(&self) -> HeaderMap {
        self.response_parts().1
    }

    /// Status, headers and body, rendering the body once: what an adapter answers with.
    pub fn response_parts(&self) -> (StatusCode, HeaderMap, String) {
        let body = self.rendered();
        let mut headers = HeaderMap::with_capacity(4);
        if let Some(challenge) = self.www_authenticate() {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Rejection::MethodNotAllowed { allow } = self.rejection().primary()
            && let Ok(value) = HeaderValue::from_str(allow)
        {
            headers.insert(header::ALLOW, value);
        }
        headers.insert(header::CONTENT_TYPE, body.content_type);
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        (self.status(), headers, body.body)
    }

    /// The `error` member of a body: the RFC 6750 code, or a word for the category.
    pub(super) fn error(&self) -> &'static str {
        self.error_code()
            .unwrap_or_else(|| self.category().http_error())
    }
}
