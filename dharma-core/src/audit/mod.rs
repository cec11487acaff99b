//! Accountability: every decision, allow or deny, and every token activity becomes an
//! event of the audit trail.
//!
//! Events ([`AuditEvent`] for decisions, [`PolicyEvent`], [`TokenEvent`]) go to an
//! [`AuditSink`]:
//!
//! - [`TracingAuditSink`] (the default) writes one `tracing` event per audit event under
//!   the target `dharma::audit`;
//! - [`JsonLinesSink`] writes them as JSON lines ([schema](json)) to a file through a
//!   bounded queue, with rotation and an explicit [`Overflow`] policy;
//! - `OtelAuditSink` (feature `otel`) emits them as OpenTelemetry log records;
//! - [`MemoryAuditSink`] keeps them, for tests; [`FanOut`] sends them to several sinks.
//!
//! Events never contain a token, key or secret: they name a token by its `jti` or a
//! digest.
//!
//! ```
//! use std::sync::Arc;
//! use dharma_core::audit::{AuditSink, MemoryAuditSink};
//!
//! let sink = Arc::new(MemoryAuditSink::default());
//! // Enforcer::builder(topology).audit(sink.clone()) ... then, after some requests:
//! assert!(sink.events().is_empty());
//! ```

mod event;
mod file;
pub mod json;
mod memory;
#[cfg(feature = "otel")]
mod otel;
mod trace;

use std::{fmt::Debug, sync::Arc};

pub(crate) use event::Level;
pub use event::{
    AuditEvent, AuditIdentity, EventId, Outcome, PolicyEvent, TokenActivity, TokenEvent,
};
pub use file::{AuditStats, FileSinkError, JsonLinesSink, JsonLinesSinkBuilder, Overflow};
pub use json::GapEvent;
pub use memory::MemoryAuditSink;
#[cfg(feature = "otel")]
pub use otel::OtelAuditSink;
pub use trace::TracingAuditSink;

pub use crate::error::AuditUnavailable;

/// The tracing target of [`TracingAuditSink`].
pub const AUDIT_TARGET: &str = "dharma::audit";

/// Where audit events go. Runs on the request path: it must not wait on disk or network
/// I/O (hand the event to a queue, as [`JsonLinesSink`] does).
pub trait AuditSink: Send + Sync + Debug {
    /// Records one decision.
    fn record(&self, event: &AuditEvent);

    /// Takes one decision from the enforcer, which calls this (not [`record`](Self::record))
    /// and hands the event over, so a sink that keeps it need not copy it. The sink may
    /// say that it cannot take the event now: if the decision admits a request, the
    /// enforcer then refuses it (`503`, `audit_unavailable`) instead, so nothing is
    /// admitted unrecorded. Only a sink configured to deny on overflow
    /// ([`Overflow::Deny`]) says so; the default calls `record` and accepts.
    fn try_record(&self, event: AuditEvent) -> Result<(), AuditUnavailable> {
        self.record(&event);
        Ok(())
    }

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

/// Sends each event to several sinks.
#[derive(Debug, Default)]
pub struct FanOut(pub Vec<Arc<dyn AuditSink>>);

impl AuditSink for FanOut {
    fn record(&self, event: &AuditEvent) {
        for sink in &self.0 {
            sink.record(event);
        }
    }

    /// Hands the event to every sink (a copy to all but the last), and refuses if any of
    /// them refused.
    fn try_record(&self, event: AuditEvent) -> Result<(), AuditUnavailable> {
        let Some((last, rest)) = self.0.split_last() else {
            return Ok(());
        };
        let mut result = Ok(());
        for sink in rest {
            if let Err(e) = sink.try_record(event.clone()) {
                result = Err(e);
            }
        }
        if let Err(e) = last.try_record(event) {
            result = Err(e);
        }
        result
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
