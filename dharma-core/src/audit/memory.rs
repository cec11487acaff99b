//! A sink that keeps events in memory, for tests.

use std::sync::Mutex;

use super::{AuditEvent, AuditSink, AuditUnavailable, PolicyEvent, TokenEvent};

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

    fn try_record(&self, event: AuditEvent) -> Result<(), AuditUnavailable> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event);
        Ok(())
    }

    fn record_policy(&self, event: &PolicyEvent) {
        self.policy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone());
    }
}
