//! The audit trail as JSON, schema version 1 ([`SCHEMA_VERSION`]).
//!
//! Every event serializes (with any serde format; JSON lines in
//! [`JsonLinesSink`](super::JsonLinesSink)) to one object with `"v": 1`, a `"type"`
//! (`decision`, `policy`, `token` or `gap`), an `"id"` and an RFC 3339 `"at"` in UTC.
//! Absent values are left out; lists are always written. The schema is documented in
//! `docs/audit.md` and as a JSON Schema in `docs/audit.schema.json`; version 1 only ever
//! gains optional fields. JSON escapes every control character, so no value taken from a
//! request can break a line or forge one.

use std::{
    fmt,
    net::SocketAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Serialize, Serializer, ser::SerializeStruct};

use super::{AuditEvent, AuditIdentity, EventId, Outcome, PolicyEvent, TokenEvent};
use crate::{context::Lane, error::BranchOutcome};

/// The version of the JSON schema, written as `"v"` in every event.
pub const SCHEMA_VERSION: u8 = 1;

/// A time as RFC 3339 in UTC with microseconds (`2026-11-28T14:45:15.123456Z`).
pub(crate) struct Rfc3339(pub(crate) SystemTime);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Times before 1970 do not occur in an audit trail; they are written as the epoch.
        let since = self.0.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let secs = since.as_secs();
        let (days, rest) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
            rest / 3600,
            rest / 60 % 60,
            rest % 60,
            since.subsec_micros()
        )
    }
}

/// The proleptic Gregorian date of a count of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Starts an event object with the fields every event has.
fn head<S: Serializer>(
    s: S,
    kind: &'static str,
    id: EventId,
    at: SystemTime,
) -> Result<S::SerializeStruct, S::Error> {
    let mut st = s.serialize_struct("Event", 20)?;
    st.serialize_field("v", &SCHEMA_VERSION)?;
    st.serialize_field("type", kind)?;
    st.serialize_field("id", &id)?;
    st.serialize_field("at", &format_args!("{}", Rfc3339(at)))?;
    Ok(st)
}

/// Writes `value` under `key` if there is one.
fn opt<S: SerializeStruct, T: Serialize + ?Sized>(
    st: &mut S,
    key: &'static str,
    value: Option<&T>,
) -> Result<(), S::Error> {
    match value {
        Some(v) => st.serialize_field(key, v),
        None => st.skip_field(key),
    }
}

/// A list of shared strings (serde writes `Arc<str>` only with its `rc` feature).
struct Strs<'a>(&'a [std::sync::Arc<str>]);

impl Serialize for Strs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|v| &**v))
    }
}

/// One identity of a decision, borrowed from wherever the decision is kept.
pub(crate) struct IdentityView<'a> {
    pub(crate) kind: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) issuer: Option<&'a str>,
    pub(crate) assurance: &'a str,
    pub(crate) token_id: Option<&'a str>,
}

impl Serialize for IdentityView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Identity", 5)?;
        st.serialize_field("kind", self.kind)?;
        st.serialize_field("subject", self.subject)?;
        opt(&mut st, "issuer", self.issuer)?;
        st.serialize_field("assurance", self.assurance)?;
        opt(&mut st, "token_id", self.token_id)?;
        st.end()
    }
}

impl AuditIdentity {
    /// The identity as the schema writes it.
    pub(crate) fn view(&self) -> IdentityView<'_> {
        IdentityView {
            kind: self.kind.as_str(),
            subject: &self.subject,
            issuer: self.issuer.as_ref().map(|i| i.as_str()),
            assurance: self.assurance.as_str(),
            token_id: self.token_id.as_deref(),
        }
    }
}

impl Serialize for AuditIdentity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.view().serialize(s)
    }
}

/// What one branch of a combined mechanism said, borrowed.
pub(crate) struct BranchView<'a> {
    pub(crate) mechanism: &'a str,
    pub(crate) reason: &'a str,
}

impl Serialize for BranchView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Branch", 2)?;
        st.serialize_field("mechanism", self.mechanism)?;
        st.serialize_field("reason", self.reason)?;
        st.end()
    }
}

impl BranchOutcome {
    /// The branch as the schema writes it.
    pub(crate) fn view(&self) -> BranchView<'_> {
        BranchView {
            mechanism: &self.mechanism,
            reason: self.reason,
        }
    }
}

impl Serialize for BranchOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.view().serialize(s)
    }
}

/// A decision, borrowed: the one place the decision's schema is written, for an
/// [`AuditEvent`] and for the copy a [`JsonLinesSink`](super::JsonLinesSink) queues.
/// `I` and `B` serialize as the lists of identities and branches.
pub(crate) struct DecisionView<'a, I, B> {
    pub(crate) id: EventId,
    pub(crate) at: SystemTime,
    pub(crate) revision: u64,
    pub(crate) outcome: Outcome,
    pub(crate) reason: &'static str,
    pub(crate) detail: Option<&'a str>,
    pub(crate) status: u16,
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) endpoint: Option<&'a str>,
    pub(crate) domain: Option<&'a str>,
    pub(crate) lane: Option<Lane>,
    pub(crate) mechanism: Option<&'a str>,
    pub(crate) identities: I,
    pub(crate) branches: B,
}

impl<I: Serialize, B: Serialize> Serialize for DecisionView<'_, I, B> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = head(s, "decision", self.id, self.at)?;
        st.serialize_field("revision", &self.revision)?;
        st.serialize_field("outcome", self.outcome.as_str())?;
        st.serialize_field("reason", self.reason)?;
        opt(&mut st, "detail", self.detail)?;
        st.serialize_field("status", &self.status)?;
        st.serialize_field("method", self.method)?;
        st.serialize_field("path", self.path)?;
        opt(&mut st, "peer", self.peer.as_ref())?;
        opt(&mut st, "endpoint", self.endpoint)?;
        opt(&mut st, "domain", self.domain)?;
        opt(&mut st, "lane", self.lane.map(Lane::as_str))?;
        opt(&mut st, "mechanism", self.mechanism)?;
        st.serialize_field("identities", &self.identities)?;
        st.serialize_field("branches", &self.branches)?;
        st.end()
    }
}

impl AuditEvent {
    /// The decision as the schema writes it.
    pub(crate) fn view(&self) -> DecisionView<'_, &[AuditIdentity], &[BranchOutcome]> {
        DecisionView {
            id: self.id,
            at: self.at,
            revision: self.revision,
            outcome: self.outcome,
            reason: self.reason,
            detail: self.detail.as_deref(),
            status: self.status,
            method: self.method.as_str(),
            path: &self.path,
            peer: self.peer,
            endpoint: self.endpoint.as_deref(),
            domain: self.domain.as_ref().map(|d| d.as_str()),
            lane: self.lane,
            mechanism: self.mechanism.as_ref().map(|m| m.as_str()),
            identities: &self.identities,
            branches: &self.branches,
        }
    }
}

impl Serialize for AuditEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.view().serialize(s)
    }
}

impl Serialize for PolicyEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = head(s, "policy", self.id, self.at)?;
        st.serialize_field("revision", &self.revision)?;
        st.serialize_field("applied", &self.applied)?;
        st.serialize_field("reason", self.reason)?;
        st.serialize_field("source", &*self.source)?;
        opt(&mut st, "detail", self.detail.as_deref())?;
        st.end()
    }
}

impl Serialize for TokenEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = head(s, "token", self.id, self.at)?;
        st.serialize_field("activity", self.activity.as_str())?;
        st.serialize_field("reason", self.reason)?;
        opt(&mut st, "detail", self.detail.as_deref())?;
        opt(&mut st, "issuer", self.issuer.as_deref())?;
        opt(&mut st, "client", self.client.as_deref())?;
        opt(&mut st, "subject", self.subject.as_deref())?;
        opt(&mut st, "subject_issuer", self.subject_issuer.as_deref())?;
        opt(
            &mut st,
            "subject_token_id",
            self.subject_token_id.as_deref(),
        )?;
        st.serialize_field("actors", &Strs(&self.actors))?;
        st.serialize_field("audience", &Strs(&self.audience))?;
        opt(&mut st, "scope", self.scope.as_deref())?;
        opt(&mut st, "token_id", self.token_id.as_deref())?;
        st.end()
    }
}

/// Events a sink lost (its queue was full, or its writer failed), written when it can
/// write again.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GapEvent {
    /// The event's id.
    pub id: EventId,
    /// When the gap was written.
    pub at: SystemTime,
    /// How many events were lost since the last gap event.
    pub dropped: u64,
}

impl Serialize for GapEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = head(s, "gap", self.id, self.at)?;
        st.serialize_field("dropped", &self.dropped)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, micros: u64) -> String {
        Rfc3339(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros)).to_string()
    }

    #[test]
    fn rfc3339_in_utc_with_microseconds() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(at(1_795_877_115, 123_456), "2026-11-28T14:45:15.123456Z");
        assert_eq!(at(4_107_542_399, 999_999), "2100-02-28T23:59:59.999999Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000000Z");
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(Rfc3339(before).to_string(), "1970-01-01T00:00:00.000000Z");
    }
}
