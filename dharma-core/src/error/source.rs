//! Why keys or an introspection answer could not be had.

/// Why keys could not be loaded from a key source. Kept for the audit trail; clients
/// only see a generic `503`.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum KeySourceError {
    /// The fetch did not finish within the timeout.
    #[error("key source timed out")]
    Timeout,
    /// The HTTP client failed.
    #[error("key source unreachable: {0}")]
    Http(#[from] HttpError),
    /// The key source answered with a non-success status.
    #[error("key source answered HTTP {0}")]
    Status(u16),
    /// The JWK Set could not be read.
    #[error(transparent)]
    InvalidJwks(#[from] JwkSetError),
    /// The JWK Set held no usable key.
    #[error("key set has no usable key ({skipped} skipped)")]
    NoUsableKeys {
        /// How many keys were skipped.
        skipped: usize,
    },
    /// The discovery document is unusable.
    #[error("discovery document rejected: {0}")]
    Discovery(&'static str),
    /// No fetch is allowed yet after a recent failure, and no keys are cached.
    #[error("no keys cached and the last fetch failed recently")]
    Backoff,
}

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Connecting, TLS or reading failed.
    #[error("transport error: {0}")]
    Transport(String),
    /// The body was larger than allowed.
    #[error("response body exceeds {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
}

/// A JWK Set document that cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a JWK Set: {0}")]
pub struct JwkSetError(pub(crate) &'static str);

/// Why an introspection call failed. Kept for the audit trail; clients see `503`.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum IntrospectionError {
    /// The call did not finish within the timeout.
    #[error("introspection timed out")]
    Timeout,
    /// The HTTP client failed.
    #[error("introspection endpoint unreachable: {0}")]
    Http(#[from] HttpError),
    /// An unexpected status (a `401` means the verifier's own credentials were refused).
    #[error("introspection endpoint answered HTTP {0}")]
    Status(u16),
    /// The answer is not an RFC 7662 response.
    #[error("introspection response rejected: {0}")]
    InvalidResponse(&'static str),
}
