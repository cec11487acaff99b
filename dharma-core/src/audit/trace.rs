//! The default sink: one `tracing` event per audit event.

use std::{
    fmt::{self, Display},
    sync::Arc,
};

use super::{AUDIT_TARGET, AuditEvent, AuditIdentity, AuditSink, Level, PolicyEvent, TokenEvent};

/// Runs a local `emit!` at the `tracing` level of an event's [`Level`] (`tracing` takes
/// the level as a constant).
macro_rules! at_level {
    ($level:expr, $emit:ident) => {
        match $level {
            Level::Info => $emit!(tracing::Level::INFO),
            Level::Warn => $emit!(tracing::Level::WARN),
            Level::Error => $emit!(tracing::Level::ERROR),
        }
    };
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
                    id = %e.id,
                    outcome = e.outcome.as_str(),
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
        at_level!(e.level(), emit);
    }

    fn record_policy(&self, e: &PolicyEvent) {
        macro_rules! emit {
            ($level:expr) => {
                tracing::event!(
                    target: AUDIT_TARGET,
                    $level,
                    id = %e.id,
                    revision = e.revision,
                    applied = e.applied,
                    reason = e.reason,
                    source = %Escaped(&e.source),
                    detail = e.detail.as_deref().map(|d| tracing::field::display(Escaped(d))),
                    "dharma policy"
                )
            };
        }
        at_level!(e.level(), emit);
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
                    id = %e.id,
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
        at_level!(e.level(), emit);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::super::{EventId, Outcome};
    use super::*;
    use crate::context::{Assurance, IdentityKind};
    use http::Method;
    use std::time::SystemTime;

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
            id: EventId::next(),
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
