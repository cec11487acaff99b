//! The audit trail as OpenTelemetry log records (feature `otel`).

use std::{fmt, sync::Arc};

use opentelemetry::logs::{AnyValue, LogRecord, Logger, Severity};

use super::{AuditEvent, AuditSink, Level, PolicyEvent, TokenEvent};

/// Emits each audit event as an OpenTelemetry log record through `logger` (from the
/// application's `LoggerProvider`). Event names are `dharma.decision`, `dharma.policy` and
/// `dharma.token`; attributes carry the fields of the [JSON schema](super::json) under
/// `dharma.` (`dharma.outcome`, `dharma.reason`, ...), with the request's method and path as
/// `http.request.method` and `url.path`. Give the provider a batch processor: a simple one
/// exports on the request path.
pub struct OtelAuditSink<L> {
    logger: L,
}

impl<L> fmt::Debug for OtelAuditSink<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtelAuditSink").finish_non_exhaustive()
    }
}

impl<L: Logger> OtelAuditSink<L> {
    /// A sink emitting through `logger`.
    pub fn new(logger: L) -> Self {
        Self { logger }
    }

    /// A record of the event `name` at `at`, with its severity as number and text.
    fn start(&self, name: &'static str, at: std::time::SystemTime, level: Level) -> L::LogRecord {
        let severity = match level {
            Level::Info => Severity::Info,
            Level::Warn => Severity::Warn,
            Level::Error => Severity::Error,
        };
        let mut r = self.logger.create_log_record();
        r.set_event_name(name);
        r.set_timestamp(at);
        r.set_severity_number(severity);
        r.set_severity_text(severity.name());
        r
    }
}

fn text(value: &str) -> AnyValue {
    AnyValue::from(value.to_owned())
}

fn list(values: &[Arc<str>]) -> AnyValue {
    values.iter().map(|v| text(v)).collect()
}

/// Adds `key` if there is a value.
fn opt<R: LogRecord>(record: &mut R, key: &'static str, value: Option<&str>) {
    if let Some(v) = value {
        record.add_attribute(key, text(v));
    }
}

impl<L: Logger + Send + Sync> AuditSink for OtelAuditSink<L> {
    fn record(&self, e: &AuditEvent) {
        let mut r = self.start("dharma.decision", e.at, e.level());
        r.set_body(AnyValue::from("dharma decision"));
        r.add_attribute("dharma.id", e.id.to_string());
        r.add_attribute(
            "dharma.revision",
            i64::try_from(e.revision).unwrap_or(i64::MAX),
        );
        r.add_attribute("dharma.outcome", e.outcome.as_str());
        r.add_attribute("dharma.reason", e.reason);
        opt(&mut r, "dharma.detail", e.detail.as_deref());
        r.add_attribute("dharma.status", i64::from(e.status));
        r.add_attribute("http.request.method", text(e.method.as_str()));
        r.add_attribute("url.path", text(&e.path));
        if let Some(peer) = e.peer {
            r.add_attribute("client.address", peer.ip().to_string());
        }
        opt(&mut r, "dharma.endpoint", e.endpoint.as_deref());
        opt(
            &mut r,
            "dharma.domain",
            e.domain.as_ref().map(|d| d.as_str()),
        );
        opt(&mut r, "dharma.lane", e.lane.map(|l| l.as_str()));
        opt(
            &mut r,
            "dharma.mechanism",
            e.mechanism.as_ref().map(|m| m.as_str()),
        );
        let identities: AnyValue = e
            .identities
            .iter()
            .map(|i| {
                let mut fields = vec![
                    ("kind", text(i.kind.as_str())),
                    ("subject", text(&i.subject)),
                    ("assurance", text(i.assurance.as_str())),
                ];
                if let Some(issuer) = &i.issuer {
                    fields.push(("issuer", text(issuer.as_str())));
                }
                if let Some(id) = &i.token_id {
                    fields.push(("token_id", text(id)));
                }
                fields.into_iter().collect::<AnyValue>()
            })
            .collect();
        r.add_attribute("dharma.identities", identities);
        self.logger.emit(r);
    }

    fn record_policy(&self, e: &PolicyEvent) {
        let mut r = self.start("dharma.policy", e.at, e.level());
        r.set_body(AnyValue::from("dharma policy"));
        r.add_attribute("dharma.id", e.id.to_string());
        r.add_attribute(
            "dharma.revision",
            i64::try_from(e.revision).unwrap_or(i64::MAX),
        );
        r.add_attribute("dharma.applied", e.applied);
        r.add_attribute("dharma.reason", e.reason);
        r.add_attribute("dharma.source", text(&e.source));
        opt(&mut r, "dharma.detail", e.detail.as_deref());
        self.logger.emit(r);
    }

    fn record_token(&self, e: &TokenEvent) {
        let mut r = self.start("dharma.token", e.at, e.level());
        r.set_body(AnyValue::from("dharma token"));
        r.add_attribute("dharma.id", e.id.to_string());
        r.add_attribute("dharma.activity", e.activity.as_str());
        r.add_attribute("dharma.reason", e.reason);
        opt(&mut r, "dharma.detail", e.detail.as_deref());
        opt(&mut r, "dharma.issuer", e.issuer.as_deref());
        opt(&mut r, "dharma.client", e.client.as_deref());
        opt(&mut r, "dharma.subject", e.subject.as_deref());
        opt(&mut r, "dharma.subject_issuer", e.subject_issuer.as_deref());
        opt(
            &mut r,
            "dharma.subject_token_id",
            e.subject_token_id.as_deref(),
        );
        r.add_attribute("dharma.actors", list(&e.actors));
        r.add_attribute("dharma.audience", list(&e.audience));
        opt(&mut r, "dharma.scope", e.scope.as_deref());
        opt(&mut r, "dharma.token_id", e.token_id.as_deref());
        self.logger.emit(r);
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use opentelemetry::logs::LoggerProvider;
    use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider};

    use super::*;
    use crate::audit::TokenActivity;
    use crate::{
        Decision, Enforcer, RequestView,
        model::{Domain, Endpoint, Topology},
    };

    fn attribute(record: &opentelemetry_sdk::logs::SdkLogRecord, key: &str) -> Option<AnyValue> {
        record
            .attributes_iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v.clone())
    }

    #[tokio::test]
    async fn decisions_and_token_events_become_log_records() {
        let exporter = InMemoryLogExporter::default();
        let provider = SdkLoggerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let sink = Arc::new(OtelAuditSink::new(provider.logger("dharma")));
        let topology = Topology::builder()
            .domain(Domain::builder("edge"))
            .endpoint(Endpoint::public("edge", "/health").methods(["GET"]))
            .build()
            .unwrap();
        let enforcer = Enforcer::builder(topology)
            .audit(sink.clone())
            .build()
            .unwrap();
        let headers = http::HeaderMap::new();
        for path in ["/health", "/admin"] {
            let view = RequestView::new(&http::Method::GET, path, &headers);
            let _: Decision = enforcer.decide(&view).await;
        }
        let mut token = TokenEvent::new(TokenActivity::Revoked, "subject", SystemTime::now());
        token.subject = Some("bob".into());
        sink.record_token(&token);

        let logs = exporter.get_emitted_logs().unwrap();
        assert_eq!(logs.len(), 3);
        let (allow, deny, revoked) = (&logs[0].record, &logs[1].record, &logs[2].record);
        assert_eq!(allow.event_name(), Some("dharma.decision"));
        assert_eq!(allow.severity_number(), Some(Severity::Info));
        assert_eq!(
            attribute(allow, "dharma.outcome"),
            Some(AnyValue::from("allow"))
        );
        assert_eq!(attribute(allow, "url.path"), Some(text("/health")));
        assert_eq!(deny.severity_number(), Some(Severity::Warn));
        assert_eq!(
            attribute(deny, "dharma.reason"),
            Some(AnyValue::from("no_endpoint"))
        );
        assert_eq!(
            attribute(deny, "dharma.status"),
            Some(AnyValue::from(404_i64))
        );
        assert_eq!(revoked.event_name(), Some("dharma.token"));
        assert_eq!(attribute(revoked, "dharma.subject"), Some(text("bob")));
    }
}
