//! Why a token is not valid.

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
    /// The token was revoked (by its id, its subject or its client).
    #[error("token is revoked")]
    Revoked,
    /// The endpoint admits a token once, and this one was used before.
    #[error("token was already used")]
    Replayed,
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
            Self::Revoked => "token_revoked",
            Self::Replayed => "token_replayed",
        }
    }

    /// What the client is told (a fixed phrase; details stay in the audit trail).
    pub(crate) fn description(&self) -> &'static str {
        match self {
            Self::Expired { .. } => "the access token expired",
            _ => "the access token is invalid",
        }
    }
}
