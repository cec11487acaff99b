//! Why a request's credentials, path or certificate chain cannot be used.

/// The `Authorization` header is present but cannot be read as bearer credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// More than one `Authorization` header.
    #[error("more than one authorization header")]
    Repeated,
    /// The header value is not visible ASCII.
    #[error("authorization header is not visible ASCII")]
    NotAscii,
    /// `Bearer` with no token or a token outside the RFC 6750 `b64token` syntax.
    #[error("bearer credentials do not match the b64token syntax")]
    BadSyntax,
}

/// A request path that is not in normal form. Such requests are refused with `400` before
/// any endpoint is matched, so a router and dharma can never disagree about where they go:
/// a path in normal form has exactly one spelling, and routers that decode it (actix-web)
/// and routers that do not (axum, tonic) see the same segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("path does not start with '/'")]
    NotAbsolute,
    /// A `.` or `..` segment.
    #[error("path has a dot segment")]
    DotSegment,
    /// Two slashes in a row.
    #[error("path has an empty segment")]
    EmptySegment,
    /// A percent-encoded `/` or `\`.
    #[error("path has an encoded separator")]
    EncodedSeparator,
    /// A percent-encoded character that needs no encoding (`%61` for `a`, `%2E` for `.`):
    /// a second spelling of a path that routers which decode and routers which do not
    /// would match differently.
    #[error("path encodes a character that needs no encoding")]
    NeedlessEncoding,
    /// A `%` not followed by two hexadecimal digits.
    #[error("path has a malformed percent-encoding")]
    BadEncoding,
    /// A byte outside the RFC 3986 path characters (`\\`, `"`, `{`, space, non-ASCII...).
    #[error("path has a character outside RFC 3986 segments")]
    BadCharacter,
}

/// Why a presented certificate chain is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// No certificate was presented.
    #[error("no certificate")]
    Missing,
    /// The leaf has expired.
    #[error("certificate expired")]
    Expired,
    /// The leaf is not valid yet.
    #[error("certificate not valid yet")]
    NotYetValid,
    /// The chain does not lead to the organisation CA.
    #[error("certificate not issued by the organisation CA")]
    UnknownIssuer,
    /// The certificate is not meant for this use (extended key usage).
    #[error("certificate not valid for this usage")]
    WrongUsage,
    /// More intermediates than allowed, or a path-length constraint broken.
    #[error("certificate path too long")]
    PathTooLong,
    /// The certificate is malformed or otherwise invalid.
    #[error("certificate invalid: {0}")]
    Invalid(String),
    /// The leaf names no usable identity, or several SPIFFE IDs.
    #[error("certificate names no usable identity")]
    NoIdentity,
    /// The identity is outside the configured trust domain or allow-list.
    #[error("certificate identity {0:?} is not allowed")]
    NotAllowed(String),
    /// The leaf's key cannot verify signatures (x5c).
    #[error("certificate key is unsupported: {0}")]
    UnsupportedKey(String),
    /// The leaf is not the pinned certificate.
    #[error("certificate is not pinned")]
    NotPinned,
}

impl CertificateError {
    /// A stable code for audit records.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "certificate_missing",
            Self::Expired => "certificate_expired",
            Self::NotYetValid => "certificate_not_yet_valid",
            Self::UnknownIssuer => "certificate_untrusted",
            Self::WrongUsage => "certificate_wrong_usage",
            Self::PathTooLong => "certificate_path_too_long",
            Self::Invalid(_) => "certificate_invalid",
            Self::NoIdentity => "certificate_no_identity",
            Self::NotAllowed(_) => "certificate_identity_not_allowed",
            Self::UnsupportedKey(_) => "certificate_key_unsupported",
            Self::NotPinned => "certificate_not_pinned",
        }
    }
}
