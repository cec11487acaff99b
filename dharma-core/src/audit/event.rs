//! The events of the audit trail: decisions, policy changes and token activity.

use std::{
    fmt,
    net::SocketAddr,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::SystemTime,
};

use http::Method;

use crate::{
    context::{Assurance, IdentityKind, Lane},
    error::BranchOutcome,
    names::{DomainName, Issuer, MechanismName},
};

/// Names one audit event, unique across processes: 64 random bits drawn once per process,
/// then a counter. Written as 32 hexadecimal digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(u128);

impl EventId {
    /// The next id of this process.
    pub fn next() -> Self {
        static PREFIX: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let prefix = *PREFIX.get_or_init(|| {
            let mut bytes = [0u8; 8];
            // A failing system RNG leaves the prefix zero: ids stay unique in the process.
            let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
            u64::from_be_bytes(bytes)
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self((u128::from(prefix) << 64) | u128::from(n))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The request was admitted.
    Allow,
    /// The request was refused.
    Deny,
}

impl Outcome {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

/// How loudly a log-shaped sink (`tracing`, OpenTelemetry) reports an event: the one
/// mapping they share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// Admissions, applied policies, tokens issued and revoked.
    Info,
    /// Refusals of the client's making, refused token requests, replays.
    Warn,
    /// Refusals of the server's making (5xx) and refused policies.
    Error,
}

/// One identity as the audit trail records it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditIdentity {
    /// What it stands for.
    pub kind: IdentityKind,
    /// Its subject.
    pub subject: Arc<str>,
    /// Its issuer, if any.
    pub issuer: Option<Issuer>,
    /// How far it may be relied on.
    pub assurance: Assurance,
    /// The token's `jti` or digest, never the token.
    pub token_id: Option<Arc<str>>,
}

/// A record of one decision.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuditEvent {
    /// The decision's id.
    pub id: EventId,
    /// When the decision was made.
    pub at: SystemTime,
    /// The revision of the policy the decision was made on (see
    /// [`Enforcer::revision`](crate::Enforcer::revision)).
    pub revision: u64,
    /// Allow or deny.
    pub outcome: Outcome,
    /// A stable reason code (`allowed`, `token_expired`, `insufficient_scope`, ...).
    pub reason: &'static str,
    /// The reason in words, for operators (may quote truncated request data).
    pub detail: Option<String>,
    /// The status the client gets.
    pub status: u16,
    /// The request method.
    pub method: Method,
    /// The request path, truncated.
    pub path: String,
    /// The transport peer.
    pub peer: Option<SocketAddr>,
    /// The endpoint that matched.
    pub endpoint: Option<Arc<str>>,
    /// Its domain.
    pub domain: Option<DomainName>,
    /// How the request was (or would have been) admitted.
    pub lane: Option<Lane>,
    /// The mechanism that ran.
    pub mechanism: Option<MechanismName>,
    /// The identities established (also on a deny after authentication).
    pub identities: Vec<AuditIdentity>,
    /// What each branch of a combined mechanism said.
    pub branches: Vec<BranchOutcome>,
}

impl AuditEvent {
    /// Allowed: info; refused with a 5xx: error; otherwise refused: warn.
    pub(crate) fn level(&self) -> Level {
        match (self.outcome, self.status) {
            (Outcome::Allow, _) => Level::Info,
            (Outcome::Deny, 500..) => Level::Error,
            (Outcome::Deny, _) => Level::Warn,
        }
    }
}

/// A policy change: a reload applied, or one refused (the previous policy stays).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PolicyEvent {
    /// The event's id.
    pub id: EventId,
    /// When.
    pub at: SystemTime,
    /// The revision in force after the event.
    pub revision: u64,
    /// Whether the new policy was applied.
    pub applied: bool,
    /// `policy_applied`, or why it was refused (`policy_invalid`, `policy_unreadable`,
    /// `mechanism_unavailable`).
    pub reason: &'static str,
    /// Where the policy came from (a file path, or `code`).
    pub source: Arc<str>,
    /// The error, for a refused policy.
    pub detail: Option<String>,
}

impl PolicyEvent {
    /// Applied: info; refused: error.
    pub(crate) fn level(&self) -> Level {
        if self.applied {
            Level::Info
        } else {
            Level::Error
        }
    }
}

/// What happened to a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenActivity {
    /// A token was issued to an authenticated client for itself (client credentials).
    Issued,
    /// A token was issued in exchange for another (RFC 8693).
    Exchanged,
    /// A request for a token was refused; the reason is its OAuth error code.
    Refused,
    /// Tokens were revoked (by token id, subject or client).
    Revoked,
    /// A one-time token was presented again.
    ReplayDetected,
}

impl TokenActivity {
    /// `issued`, `exchanged`, `refused`, `revoked` or `replay_detected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issued => "issued",
            Self::Exchanged => "exchanged",
            Self::Refused => "refused",
            Self::Revoked => "revoked",
            Self::ReplayDetected => "replay_detected",
        }
    }
}

/// A record of one token activity: a token issued or exchanged, a request for one
/// refused, a revocation, a replay. It names tokens by their `jti` or digest, never by
/// the token.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TokenEvent {
    /// The event's id.
    pub id: EventId,
    /// When.
    pub at: SystemTime,
    /// What happened.
    pub activity: TokenActivity,
    /// `issued`, `exchanged`, or the OAuth error code of a refusal (`invalid_target`, ...).
    pub reason: &'static str,
    /// The reason in words, for operators (may quote truncated request data).
    pub detail: Option<String>,
    /// The issuer of the token (for an issued token, the token service).
    pub issuer: Option<Arc<str>>,
    /// The authenticated client that asked, or the client a revocation names.
    pub client: Option<Arc<str>>,
    /// The subject the token speaks for.
    pub subject: Option<Arc<str>>,
    /// The issuer of the subject token.
    pub subject_issuer: Option<Arc<str>>,
    /// The subject token's `jti` or digest.
    pub subject_token_id: Option<Arc<str>>,
    /// The delegation chain of the new token, current actor first (RFC 8693 `act`).
    pub actors: Vec<Arc<str>>,
    /// The audiences asked for (on a refusal) or granted.
    pub audience: Vec<Arc<str>>,
    /// The scope granted (or asked for, on a refusal).
    pub scope: Option<Arc<str>>,
    /// The token's `jti`.
    pub token_id: Option<Arc<str>>,
}

impl TokenEvent {
    /// A refused request or a replay: warn; otherwise info.
    pub(crate) fn level(&self) -> Level {
        match self.activity {
            TokenActivity::Refused | TokenActivity::ReplayDetected => Level::Warn,
            _ => Level::Info,
        }
    }

    /// An event with nothing known yet but what happened and when.
    pub fn new(activity: TokenActivity, reason: &'static str, at: SystemTime) -> Self {
        Self {
            id: EventId::next(),
            at,
            activity,
            reason,
            detail: None,
            issuer: None,
            client: None,
            subject: None,
            subject_issuer: None,
            subject_token_id: None,
            actors: Vec::new(),
            audience: Vec::new(),
            scope: None,
            token_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_distinct_and_32_hex_digits() {
        let a = EventId::next();
        let b = EventId::next();
        assert_ne!(a, b);
        let text = a.to_string();
        assert_eq!(text.len(), 32);
        assert!(text.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(text[..16], b.to_string()[..16], "one prefix per process");
    }
}
