//! Token state that outlives a request: one-time use of tokens (replay) and revocation.
//!
//! An endpoint may require that a token be used once ([`one_time`]); the enforcer then asks
//! a [`ReplayGuard`] whether the token's id was seen before, for as long as the token
//! lives. Tokens can be revoked by token id, subject or client ([`Revocation`]); with a
//! [`RevocationList`] configured, the enforcer refuses revoked tokens on every request,
//! including those whose verification was answered from a cache.
//!
//! The stores here keep their state in memory, for one instance. Instances that share
//! traffic must share this state too, or a token used once at one is fresh at another.
//! When a store cannot answer, each endpoint's [`FailMode`] decides: refuse (`503`, the
//! default) or admit.
//!
//! [`one_time`]: crate::model::EndpointBuilder::one_time

mod replay;
mod revocation;

pub use replay::{MemoryReplayGuard, ReplayGuard};
pub use revocation::{MemoryRevocations, Revocation, RevocationList};

pub use crate::error::StoreError;
use crate::{Identity, context::Assurance};

/// What to do when the replay guard or the revocation list cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailMode {
    /// Refuse the request (`503`): a replayed or revoked token is never admitted. The
    /// default.
    #[default]
    Closed,
    /// Admit the request as if the token were fresh and not revoked; the audit event's
    /// reason says so (`allowed_unchecked`).
    Open,
}

/// What the stores know of one token: read from an identity a mechanism established.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TokenFacts<'a> {
    /// Its issuer (empty if none).
    pub issuer: &'a str,
    /// Its `jti`, or its digest.
    pub token_id: &'a str,
    /// Its subject.
    pub subject: &'a str,
    /// The client it was issued to (`client_id`, else `azp`).
    pub client: Option<&'a str>,
    /// When it was issued (`iat`, seconds since the epoch).
    pub issued_at: Option<u64>,
    /// When it expires (`exp`, seconds since the epoch).
    pub expires_at: Option<u64>,
}

impl<'a> TokenFacts<'a> {
    /// The facts of an identity that a token established and that may authorize (tokens
    /// carried for accountability only are not checked: they admit nothing).
    pub fn of(identity: &'a Identity) -> Option<Self> {
        if matches!(identity.assurance(), Assurance::Accountability { .. }) {
            return None;
        }
        let claims = identity.claims();
        let seconds = |name| {
            claims
                .get(name)
                .and_then(serde_json::Value::as_f64)
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map(|v| v as u64)
        };
        Some(Self {
            issuer: identity.issuer().map_or("", |i| i.as_str()),
            token_id: identity.token_id()?,
            subject: identity.subject(),
            client: claims.str("client_id").or_else(|| claims.str("azp")),
            issued_at: seconds("iat"),
            expires_at: seconds("exp"),
        })
    }
}
