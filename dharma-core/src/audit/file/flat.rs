//! A decision copied into the queue's own slot, so that nothing a deciding thread
//! allocated or shares is freed or touched by the writer.
//!
//! Handing the writer the [`AuditEvent`] itself means the writer frees, on its core, the
//! path and identity list a deciding thread allocated, and releases the reference counts
//! of names every decision shares: the allocator and those counts then move between cores
//! on every decision. A [`FlatDecision`] holds the event's text inline (each string as a
//! two-byte length and its bytes) and its scalars by value; the deciding thread drops the
//! event where it built it, and the writer reads the copy in place.

use std::{net::SocketAddr, time::SystemTime};

use serde::{
    Serialize, Serializer,
    ser::{Error as _, SerializeSeq},
};

use crate::{
    audit::{
        AuditEvent, AuditIdentity, EventId, Outcome,
        json::{BranchView, DecisionView, IdentityView},
    },
    context::Lane,
    error::BranchOutcome,
};

/// Bytes of text a queued decision holds inline. A decision with more (a long path, a
/// long denial detail, many identities) is queued as it is, boxed.
const TEXT: usize = 384;
/// The length written for an absent string.
const ABSENT: u16 = u16::MAX;
/// What the writer says if a copy does not read back (it always does: the sink wrote it).
const UNREADABLE: &str = "a queued decision does not read back";

/// A decision as the queue holds it: no heap, no shared counts.
pub(super) struct FlatDecision {
    id: EventId,
    at: SystemTime,
    revision: u64,
    outcome: Outcome,
    reason: &'static str,
    status: u16,
    peer: Option<SocketAddr>,
    lane: Option<Lane>,
    len: usize,
    /// The method, path, detail, endpoint, domain and mechanism, then the identities and
    /// the branches, each list led by its count.
    text: [u8; TEXT],
}

/// Writes strings and counts into a slot's text.
struct Encoder<'a> {
    text: &'a mut [u8; TEXT],
    len: usize,
}

impl Encoder<'_> {
    fn bytes(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.len.checked_add(bytes.len())?;
        self.text.get_mut(self.len..end)?.copy_from_slice(bytes);
        self.len = end;
        Some(())
    }

    fn count(&mut self, n: usize) -> Option<()> {
        let n = u16::try_from(n).ok().filter(|n| *n != ABSENT)?;
        self.bytes(&n.to_le_bytes())
    }

    fn str(&mut self, s: &str) -> Option<()> {
        self.count(s.len())?;
        self.bytes(s.as_bytes())
    }

    fn opt(&mut self, s: Option<&str>) -> Option<()> {
        match s {
            Some(s) => self.str(s),
            None => self.bytes(&ABSENT.to_le_bytes()),
        }
    }
}

/// Reads back what an [`Encoder`] wrote.
#[derive(Clone, Copy)]
struct Decoder<'a> {
    rest: &'a [u8],
}

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.rest.split_at_checked(n)?;
        self.rest = rest;
        Some(head)
    }

    fn count(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    fn opt(&mut self) -> Option<Option<&'a str>> {
        match self.count()? {
            ABSENT => Some(None),
            n => std::str::from_utf8(self.take(usize::from(n))?)
                .ok()
                .map(Some),
        }
    }

    fn str(&mut self) -> Option<&'a str> {
        self.opt()?
    }

    fn identity(&mut self) -> Option<IdentityView<'a>> {
        Some(IdentityView {
            kind: self.str()?,
            subject: self.str()?,
            issuer: self.opt()?,
            assurance: self.str()?,
            token_id: self.opt()?,
        })
    }

    fn branch(&mut self) -> Option<BranchView<'a>> {
        Some(BranchView {
            mechanism: self.str()?,
            reason: self.str()?,
        })
    }
}

/// A list in a slot's text: its count and the bytes from its first item on, read again
/// as it is written out.
#[derive(Clone, Copy)]
struct List<'a, T> {
    count: u16,
    from: Decoder<'a>,
    item: fn(&mut Decoder<'a>) -> Option<T>,
}

impl<'a, T> List<'a, T> {
    /// Reads the list's count and checks every item, leaving `d` after the list.
    fn read(d: &mut Decoder<'a>, item: fn(&mut Decoder<'a>) -> Option<T>) -> Option<Self> {
        let count = d.count()?;
        let from = *d;
        for _ in 0..count {
            item(d)?;
        }
        Some(Self { count, from, item })
    }
}

impl<T: Serialize> Serialize for List<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(usize::from(self.count)))?;
        let mut d = self.from;
        for _ in 0..self.count {
            let item = (self.item)(&mut d).ok_or_else(|| S::Error::custom(UNREADABLE))?;
            seq.serialize_element(&item)?;
        }
        seq.end()
    }
}

impl FlatDecision {
    /// Copies `event` as the schema writes it, or `None` if its text does not fit.
    pub(super) fn new(event: &AuditEvent) -> Option<Self> {
        let v = event.view();
        let mut text = [0; TEXT];
        let mut e = Encoder {
            text: &mut text,
            len: 0,
        };
        e.str(v.method)?;
        e.str(v.path)?;
        e.opt(v.detail)?;
        e.opt(v.endpoint)?;
        e.opt(v.domain)?;
        e.opt(v.mechanism)?;
        e.count(v.identities.len())?;
        for i in v.identities.iter().map(AuditIdentity::view) {
            e.str(i.kind)?;
            e.str(i.subject)?;
            e.opt(i.issuer)?;
            e.str(i.assurance)?;
            e.opt(i.token_id)?;
        }
        e.count(v.branches.len())?;
        for b in v.branches.iter().map(BranchOutcome::view) {
            e.str(b.mechanism)?;
            e.str(b.reason)?;
        }
        let len = e.len;
        Some(Self {
            id: v.id,
            at: v.at,
            revision: v.revision,
            outcome: v.outcome,
            reason: v.reason,
            status: v.status,
            peer: v.peer,
            lane: v.lane,
            len,
            text,
        })
    }

    /// Writes the decision as the schema has it ([`AuditEvent`]'s serialization).
    pub(super) fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let text = self.text.get(..self.len).unwrap_or_default();
        let mut d = Decoder { rest: text };
        let view = (|| {
            Some(DecisionView {
                id: self.id,
                at: self.at,
                revision: self.revision,
                outcome: self.outcome,
                reason: self.reason,
                method: d.str()?,
                path: d.str()?,
                detail: d.opt()?,
                status: self.status,
                peer: self.peer,
                endpoint: d.opt()?,
                domain: d.opt()?,
                lane: self.lane,
                mechanism: d.opt()?,
                identities: List::read(&mut d, Decoder::identity)?,
                branches: List::read(&mut d, Decoder::branch)?,
            })
        })();
        match view {
            Some(view) => serde_json::to_writer(out, &view),
            None => Err(serde_json::Error::custom(UNREADABLE)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::Method;

    use super::*;
    use crate::{
        context::{Assurance, IdentityKind},
        names::{DomainName, Issuer, MechanismName},
    };

    fn decision() -> AuditEvent {
        AuditEvent {
            id: EventId::next(),
            at: SystemTime::now(),
            revision: 7,
            outcome: Outcome::Deny,
            reason: "insufficient_scope",
            detail: Some("needs \"orders:write\"\n".into()),
            status: 403,
            method: Method::from_bytes(b"PURGE").unwrap(),
            path: "/orders/7?x=ü".into(),
            peer: Some("127.0.0.1:4000".parse().unwrap()),
            endpoint: Some(Arc::from("/orders/{id}")),
            domain: Some("outer".parse::<DomainName>().unwrap()),
            lane: Some(Lane::Access),
            mechanism: Some("either".parse::<MechanismName>().unwrap()),
            identities: vec![
                AuditIdentity {
                    kind: IdentityKind::EndUser,
                    subject: Arc::from("alice"),
                    issuer: Some("https://idp.example".parse::<Issuer>().unwrap()),
                    assurance: Assurance::Authenticated,
                    token_id: Some(Arc::from("j-1")),
                },
                AuditIdentity {
                    kind: IdentityKind::Workload,
                    subject: Arc::from("spiffe://outer/gw"),
                    issuer: None,
                    assurance: Assurance::Accountability { verified: false },
                    token_id: None,
                },
            ],
            branches: vec![BranchOutcome {
                mechanism: Arc::from("jwt"),
                reason: "allowed",
            }],
        }
    }

    fn json(event: &AuditEvent) -> String {
        let mut out = Vec::new();
        FlatDecision::new(event)
            .unwrap()
            .write_json(&mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_queued_decision_writes_what_the_event_serializes_to() {
        let mut event = decision();
        assert_eq!(json(&event), serde_json::to_string(&event).unwrap());
        event.detail = None;
        event.endpoint = None;
        event.domain = None;
        event.mechanism = None;
        event.lane = None;
        event.peer = None;
        event.identities.clear();
        event.branches.clear();
        assert_eq!(json(&event), serde_json::to_string(&event).unwrap());
    }

    #[test]
    fn a_decision_too_long_to_copy_is_refused_not_cut() {
        let mut event = decision();
        event.path = "/".repeat(TEXT);
        assert!(FlatDecision::new(&event).is_none());
        event.path = "/".repeat(TEXT / 4);
        assert!(json(&event).contains(&event.path));
    }
}
