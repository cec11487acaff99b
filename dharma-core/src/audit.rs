//! Accountability: every decision, allow or deny, becomes an [`AuditEvent`].
//!
//! Events go to an [`AuditSink`]. The default, [`TracingAuditSink`], writes one `tracing`
//! event per decision under the target `dharma::audit`. Events never contain a token:
//! they name it by its `jti` or a digest.
//!
//! ```
//! use std::sync::Arc;
//! use dharma_core::audit::{AuditSink, MemoryAuditSink};
//!
//! let sink = Arc::new(MemoryAuditSink::default());
//! // Enforcer::builder(topology).audit(sink.clone()) ... then, after some requests:
//! assert!(sink.events().is_empty());
//! ```

use std::{
    fmt::{self, Debug, Display},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use http::Method;

use crate::{
    context::{Assurance, IdentityKind, Lane},
    error::BranchOutcome,
    names::{DomainName, Issuer, MechanismName},
};

/// The tracing target of [`TracingAuditSink`].
pub const AUDIT_TARGET: &str = "dharma::audit";

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The request was admitted.
    Allow,
    /// The request was refused.
    Deny,
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

/// A policy change: a reload applied, or one refused (the previous policy stays).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PolicyEvent {
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

/// What a token service did with a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenActivity {
    /// A token was issued to an authenticated client for itself (client credentials).
    Issued,
    /// A token was issued in exchange for another (RFC 8693).
    Exchanged,
    /// A request for a token was refused; the reason is its OAuth error code.
    Refused,
}

impl TokenActivity {
    /// `issued`, `exchanged` or `refused`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issued => "issued",
            Self::Exchanged => "exchanged",
            Self::Refused => "refused",
        }
    }
}

/// A record of one token activity: a token issued or exchanged, or a request for one
/// refused. It names tokens by their `jti` or digest, never by the token.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TokenEvent {
    /// When.
    pub at: SystemTime,
    /// What happened.
    pub activity: TokenActivity,
    /// `issued`, `exchanged`, or the OAuth error code of a refusal (`invalid_target`, ...).
    pub reason: &'static str,
    /// The reason in words, for operators (may quote truncated request data).
    pub detail: Option<String>,
    /// The issuer of the new token (the token service).
    pub issuer: Option<Arc<str>>,
    /// The authenticated client that asked.
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
    /// The new token's `jti`.
    pub token_id: Option<Arc<str>>,
}

impl TokenEvent {
    /// An event with nothing known yet but what happened and when.
    pub fn new(activity: TokenActivity, reason: &'static str, at: SystemTime) -> Self {
        Self {
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

/// Where audit events go. Must not block for long: it runs on the request path.
pub trait AuditSink: Send + Sync + Debug {
    /// Records one decision.
    fn record(&self, event: &AuditEvent);

    /// Records a policy change. By default it is written by [`TracingAuditSink`], so a
    /// sink that only cares about decisions still leaves a trace of every reload.
    fn record_policy(&self, event: &PolicyEvent) {
        TracingAuditSink.record_policy(event);
    }

    /// Records a token activity. By default it is written by [`TracingAuditSink`], so a
    /// sink that only cares about decisions still leaves a trace of every token issued.
    fn record_token(&self, event: &TokenEvent) {
        TracingAuditSink.record_token(event);
    }
}

/// Writes each event as a `tracing` event under [`AUDIT_TARGET`]: allows at `INFO`,
/// denies at `WARN`, infrastructure failures at `ERROR`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingAuditSink;

/// Writes the items of a list separated by commas, each with `item`; allocates nothing,
/// and runs only when a subscriber records the event.
struct Joined<'a, T>(&'a [T], fn(&T, &mut fmt::Formatter<'_>) -> fmt::Result);

impl<T> Display for Joined<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, item) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            (self.1)(item, f)?;
        }
        Ok(())
    }
}

/// Writes text that came with the request (a path, an unverified `sub` or `jti`, a detail
/// quoting the token) with control characters and `\` escaped as `\u{..}`, so a value
/// cannot break or forge an audit line.
struct Escaped<T>(T);

impl<T: Display> Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Escape<'a, 'b>(&'a mut fmt::Formatter<'b>);
        impl fmt::Write for Escape<'_, '_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                for c in s.chars() {
                    if c.is_control() || c == '\\' {
                        write!(self.0, "\\u{{{:x}}}", u32::from(c))?;
                    } else {
                        fmt::Write::write_char(self.0, c)?;
                    }
                }
                Ok(())
            }
        }
        fmt::Write::write_fmt(&mut Escape(f), format_args!("{}", self.0))
    }
}

/// The distinct token ids of the identities (consecutive repeats written once).
struct TokenIds<'a>(&'a [AuditIdentity]);

impl Display for TokenIds<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last: Option<&str> = None;
        for id in self.0.iter().filter_map(|i| i.token_id.as_deref()) {
            if last != Some(id) {
                if last.is_some() {
                    f.write_str(",")?;
                }
                f.write_str(id)?;
                last = Some(id);
            }
        }
        Ok(())
    }
}

impl AuditSink for TracingAuditSink {
    fn record(&self, e: &AuditEvent) {
        let subjects = Joined(&e.identities, |i, f| {
            write!(f, "{}:{}", i.kind.as_str(), i.subject)
        });
        let token_ids = TokenIds(&e.identities);
        let branches = Joined(&e.branches, |b, f| {
            write!(f, "{}:{}", b.mechanism, b.reason)
        });
        macro_rules! emit {
            ($level:expr) => {
                tracing::event!(
                    target: AUDIT_TARGET,
                    $level,
                    outcome = ?e.outcome,
                    revision = e.revision,
                    reason = e.reason,
                    detail = e.detail.as_deref().map(|d| tracing::field::display(Escaped(d))),
                    status = e.status,
                    method = %e.method,
                    path = %Escaped(&e.path),
                    peer = e.peer.map(tracing::field::display),
                    endpoint = e.endpoint.as_deref(),
                    domain = e.domain.as_ref().map(|d| d.as_str()),
                    lane = e.lane.map(|l| l.as_str()),
                    mechanism = e.mechanism.as_ref().map(|m| m.as_str()),
                    subjects = %Escaped(&subjects),
                    token_ids = %Escaped(&token_ids),
                    branches = %Escaped(&branches),
                    "dharma decision"
                )
            };
        }
        match (e.outcome, e.status) {
            (Outcome::Allow, _) => emit!(tracing::Level::INFO),
            (Outcome::Deny, 500..) => emit!(tracing::Level::ERROR),
            (Outcome::Deny, _) => emit!(tracing::Level::WARN),
        }
    }

    fn record_policy(&self, e: &PolicyEvent) {
        macro_rules! emit {
            ($level:expr) => {
                tracing::event!(
                    target: AUDIT_TARGET,
                    $level,
                    revision = e.revision,
                    applied = e.applied,
                    reason = e.reason,
                    source = %Escaped(&e.source),
                    detail = e.detail.as_deref().map(|d| tracing::field::display(Escaped(d))),
                    "dharma policy"
                )
            };
        }
        if e.applied {
            emit!(tracing::Level::INFO);
        } else {
            emit!(tracing::Level::ERROR);
        }
    }

    fn record_token(&self, event: &TokenEvent) {
        Self::token_event(event);
    }
}

impl TracingAuditSink {
    fn token_event(e: &TokenEvent) {
        fn names(list: &[Arc<str>]) -> Escaped<Joined<'_, Arc<str>>> {
            Escaped(Joined(list, |a, f| f.write_str(a)))
        }
        macro_rules! emit {
            ($level:expr) => {
                tracing::event!(
                    target: AUDIT_TARGET,
                    $level,
                    activity = e.activity.as_str(),
                    reason = e.reason,
                    detail = e.detail.as_deref().map(|d| tracing::field::display(Escaped(d))),
                    issuer = e.issuer.as_deref().map(|v| tracing::field::display(Escaped(v))),
                    client = e.client.as_deref().map(|v| tracing::field::display(Escaped(v))),
                    subject = e.subject.as_deref().map(|v| tracing::field::display(Escaped(v))),
                    subject_issuer = e.subject_issuer.as_deref().map(|v| tracing::field::display(Escaped(v))),
                    subject_token_id = e.subject_token_id.as_deref().map(|v| tracing::field::display(Escaped(v))),
                    actors = %names(&e.actors),
                    audience = %names(&e.audience),
                    scope = e.scope.as_deref().map(|v| tracing::field::display(Escaped(v))),
                    token_id = e.token_id.as_deref(),
                    "dharma token"
                )
            };
        }
        match e.activity {
            TokenActivity::Refused => emit!(tracing::Level::WARN),
            _ => emit!(tracing::Level::INFO),
        }
    }
}

/// Keeps events in memory. For tests and for inspecting a few requests.
#[derive(Debug, Default)]
pub struct MemoryAuditSink {
    events: Mutex<Vec<AuditEvent>>,
    policy: Mutex<Vec<PolicyEvent>>,
    tokens: Mutex<Vec<TokenEvent>>,
}

impl MemoryAuditSink {
    /// A copy of every event so far.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Takes the events, leaving none.
    pub fn take(&self) -> Vec<AuditEvent> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A copy of every policy event so far.
    pub fn policy_events(&self) -> Vec<PolicyEvent> {
        self.policy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl MemoryAuditSink {
    /// A copy of every token event so far.
    pub fn token_events(&self) -> Vec<TokenEvent> {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl AuditSink for MemoryAuditSink {
    fn record_token(&self, event: &TokenEvent) {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone());
    }

    fn record(&self, event: &AuditEvent) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone());
    }

    fn record_policy(&self, event: &PolicyEvent) {
        self.policy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone());
    }
}

/// Sends each event to several sinks.
#[derive(Debug, Default)]
pub struct FanOut(pub Vec<Arc<dyn AuditSink>>);

impl AuditSink for FanOut {
    fn record(&self, event: &AuditEvent) {
        for sink in &self.0 {
            sink.record(event);
        }
    }

    fn record_policy(&self, event: &PolicyEvent) {
        for sink in &self.0 {
            sink.record_policy(event);
        }
    }

    fn record_token(&self, event: &TokenEvent) {
        for sink in &self.0 {
            sink.record_token(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::context::Assurance;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The issue's reproduction: control characters in an unverified `sub` or `jti`
    /// reached audit lines as they were, so a token could write lines of its own.
    #[test]
    fn request_text_cannot_break_an_audit_line() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let event = AuditEvent {
            at: SystemTime::UNIX_EPOCH,
            revision: 1,
            outcome: Outcome::Deny,
            reason: "token_expired",
            detail: Some("claim \"x\nINFO forged\" is malformed".into()),
            status: 401,
            method: Method::GET,
            path: "/a\u{1b}[2J".into(),
            peer: None,
            endpoint: None,
            domain: None,
            lane: None,
            mechanism: None,
            identities: vec![AuditIdentity {
                kind: IdentityKind::EndUser,
                subject: "mallory\nINFO dharma::audit: outcome=Allow".into(),
                issuer: None,
                assurance: Assurance::Accountability { verified: false },
                token_id: Some("jti\r\u{0}\\x".into()),
            }],
            branches: Vec::new(),
        };
        tracing::subscriber::with_default(subscriber, || TracingAuditSink.record(&event));
        let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(!out.contains('\u{1b}') && !out.contains('\r') && !out.contains('\u{0}'));
        assert!(out.contains(r"mallory\u{a}INFO"), "{out}");
        assert!(out.contains(r"jti\u{d}\u{0}\u{5c}x"), "{out}");
        assert!(out.contains(r"/a\u{1b}[2J"), "{out}");
    }
}
