//! The decision point: classify a request to its endpoint, run the domain's mechanism,
//! check the endpoint's requirements, audit, and say allow or deny.
//!
//! Adapters call [`Enforcer::decide`] and translate the [`Decision`] into their
//! framework's response; nothing is decided anywhere else.
//!
//! ```
//! use std::sync::Arc;
//! use dharma_core::{Decision, Enforcer, RequestView};
//! use dharma_core::model::{Domain, Endpoint, Topology};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let topology = Topology::builder()
//!     .domain(Domain::builder("edge"))
//!     .endpoint(Endpoint::public("edge", "/health").methods(["GET"]))
//!     .build()?;
//! let enforcer = Enforcer::builder(topology).build();
//!
//! let headers = http::HeaderMap::new();
//! let health = RequestView::new(&http::Method::GET, "/health", &headers);
//! assert!(matches!(enforcer.decide(&health).await, Decision::Allow(_)));
//!
//! // Anything not declared is denied by default.
//! let other = RequestView::new(&http::Method::GET, "/admin", &headers);
//! match enforcer.decide(&other).await {
//!     Decision::Deny(denial) => assert_eq!(denial.status(), 404),
//!     Decision::Allow(_) => unreachable!(),
//! }
//! # Ok::<(), dharma_core::model::TopologyError>(())
//! # }).unwrap();
//! ```

use std::{fmt, sync::Arc};

use crate::{
    audit::{AuditEvent, AuditIdentity, AuditSink, Outcome, TracingAuditSink},
    clock::{Clock, SystemClock},
    context::{Identity, Lane, SecurityContext, principal},
    model::{Classified, Endpoint, Exposure, Topology, check_request_path},
    names::MechanismName,
    reject::{Denial, MalformedRequest, Rejection},
    request::RequestView,
    util::truncate,
    verifier::BranchOutcome,
};

/// What to do with a request that matches no declared endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Unmatched {
    /// Refuse it with `404` (the default).
    #[default]
    Deny,
    /// Let it through with no identities (audited as `unmatched`).
    Allow,
}

/// The outcome of [`Enforcer::decide`].
#[derive(Debug)]
#[must_use]
pub enum Decision {
    /// Admit the request; put the permit's context into the request.
    Allow(Permit),
    /// Answer the request with the denial.
    Deny(Denial),
}

/// Proof of an allow decision. Only the enforcer creates one.
#[derive(Debug, Clone)]
pub struct Permit {
    context: SecurityContext,
}

impl Permit {
    /// The security context of the admitted request.
    pub fn context(&self) -> &SecurityContext {
        &self.context
    }
    /// Takes the context.
    pub fn into_context(self) -> SecurityContext {
        self.context
    }
}

struct Inner {
    topology: Topology,
    audit: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    unmatched: Unmatched,
    realm: Option<Arc<str>>,
}

/// Decides requests against a [`Topology`]. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Enforcer {
    inner: Arc<Inner>,
}

impl fmt::Debug for Enforcer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enforcer")
            .field("topology", &self.inner.topology)
            .field("unmatched", &self.inner.unmatched)
            .field("realm", &self.inner.realm)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Enforcer`].
#[derive(Debug)]
#[must_use]
pub struct EnforcerBuilder {
    topology: Topology,
    audit: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    unmatched: Unmatched,
    realm: Option<Arc<str>>,
}

impl EnforcerBuilder {
    /// Where audit events go (default: [`TracingAuditSink`]).
    pub fn audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = sink;
        self
    }
    /// The clock for audit timestamps.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// What to do with requests to no declared endpoint.
    pub fn unmatched(mut self, unmatched: Unmatched) -> Self {
        self.unmatched = unmatched;
        self
    }
    /// The `realm` of `WWW-Authenticate` challenges. Control characters are replaced.
    pub fn realm(mut self, realm: &str) -> Self {
        self.realm = Some(realm.into());
        self
    }
    /// Finishes the enforcer.
    pub fn build(self) -> Enforcer {
        Enforcer {
            inner: Arc::new(Inner {
                topology: self.topology,
                audit: self.audit,
                clock: self.clock,
                unmatched: self.unmatched,
                realm: self.realm,
            }),
        }
    }
}

/// What is known about a request when its decision is audited.
struct Trail<'r, 'a> {
    request: &'r RequestView<'a>,
    endpoint: Option<&'r Endpoint>,
    lane: Option<Lane>,
    mechanism: Option<MechanismName>,
    branches: Vec<BranchOutcome>,
}

impl Enforcer {
    /// Starts building an enforcer for a topology.
    pub fn builder(topology: Topology) -> EnforcerBuilder {
        EnforcerBuilder {
            topology,
            audit: Arc::new(TracingAuditSink),
            clock: Arc::new(SystemClock),
            unmatched: Unmatched::Deny,
            realm: None,
        }
    }

    /// The topology decided against.
    pub fn topology(&self) -> &Topology {
        &self.inner.topology
    }

    /// Decides one request. Every call emits exactly one audit event.
    pub async fn decide(&self, request: &RequestView<'_>) -> Decision {
        let mut trail = Trail {
            request,
            endpoint: None,
            lane: None,
            mechanism: None,
            branches: Vec::new(),
        };
        if request.has_unsupported_method() {
            return self.deny(&trail, MalformedRequest::Method.into());
        }
        if let Err(e) = check_request_path(request.path()) {
            return self.deny(&trail, MalformedRequest::from(e).into());
        }
        let topology = &self.inner.topology;
        let endpoint = match topology.classify(request.method(), request.path()) {
            Classified::Endpoint(endpoint) => endpoint,
            Classified::MethodNotAllowed { allow } => {
                let allow = allow.clone();
                return self.deny(&trail, Rejection::MethodNotAllowed { allow });
            }
            _ => {
                return match self.inner.unmatched {
                    Unmatched::Deny => self.deny(&trail, Rejection::NoEndpoint),
                    Unmatched::Allow => {
                        trail.lane = Some(Lane::Unmatched);
                        self.allow(&trail, None, Vec::new())
                    }
                };
            }
        };
        trail.endpoint = Some(endpoint);
        if let Some(route) = request.route()
            && topology.route_leads_elsewhere(request.path(), route)
        {
            let route = truncate(route, 256);
            return self.deny(&trail, Rejection::RouteMismatch { route });
        }
        if endpoint.exposure() == Exposure::Public {
            trail.lane = Some(Lane::Public);
            return self.allow(&trail, Some(endpoint), Vec::new());
        }
        let mut outcome = None;
        // The fast lane first: the trust mechanism, then the access mechanism.
        for (lane, name, verifier) in endpoint.lanes() {
            let result = verifier.verify(request).await;
            let ok = result.is_ok();
            outcome = Some((*lane, name, result));
            if ok {
                break;
            }
        }
        let Some((lane, name, result)) = outcome else {
            // Unreachable for a validated topology; fail closed all the same.
            return self.deny(&trail, Rejection::NoEndpoint);
        };
        trail.lane = Some(lane);
        trail.mechanism = Some(name.clone());
        let mut identities = match result {
            Ok(authenticated) => {
                let (identities, branches) = authenticated.into_parts(name.as_str());
                trail.branches = branches;
                identities
            }
            Err(rejection) => {
                trail.branches = rejection.branch_outcomes().to_vec();
                return self.deny(&trail, rejection);
            }
        };
        identities.sort_by_key(Identity::assurance_rank);
        let checked = match principal(&identities, endpoint.allows_identified()) {
            Some(p) => endpoint.requirements().check(p.claims()),
            None => Err(Rejection::NotAuthenticated),
        };
        if let Err(rejection) = checked {
            return self.deny_authenticated(&trail, &identities, rejection);
        }
        self.allow(&trail, Some(endpoint), identities)
    }

    fn allow(
        &self,
        trail: &Trail<'_, '_>,
        endpoint: Option<&Endpoint>,
        identities: Vec<Identity>,
    ) -> Decision {
        self.record(trail, &identities, Outcome::Allow, "allowed", None, 200);
        let context = SecurityContext::new(
            endpoint.map(|e| e.name_arc().clone()),
            endpoint.map(|e| e.domain().clone()),
            trail.lane.unwrap_or(Lane::Unmatched),
            identities,
        );
        Decision::Allow(Permit { context })
    }

    fn deny(&self, trail: &Trail<'_, '_>, rejection: Rejection) -> Decision {
        self.deny_authenticated(trail, &[], rejection)
    }

    fn deny_authenticated(
        &self,
        trail: &Trail<'_, '_>,
        identities: &[Identity],
        rejection: Rejection,
    ) -> Decision {
        self.record(
            trail,
            identities,
            Outcome::Deny,
            rejection.code(),
            Some(rejection.to_string()),
            rejection.status().as_u16(),
        );
        Decision::Deny(Denial::new(rejection, self.inner.realm.clone()))
    }

    fn record(
        &self,
        trail: &Trail<'_, '_>,
        identities: &[Identity],
        outcome: Outcome,
        reason: &'static str,
        detail: Option<String>,
        status: u16,
    ) {
        let event = AuditEvent {
            at: self.inner.clock.now(),
            outcome,
            reason,
            detail,
            status,
            method: trail.request.method().clone(),
            path: truncate(trail.request.path(), 256),
            peer: trail.request.peer(),
            endpoint: trail.endpoint.map(|e| e.name_arc().clone()),
            domain: trail.endpoint.map(|e| e.domain().clone()),
            lane: trail.lane,
            mechanism: trail.mechanism.clone(),
            identities: identities
                .iter()
                .map(|i| AuditIdentity {
                    kind: i.kind(),
                    subject: i.subject_arc().clone(),
                    issuer: i.issuer().cloned(),
                    assurance: i.assurance(),
                    token_id: i.token_id_arc().cloned(),
                })
                .collect(),
            branches: trail.branches.clone(),
        };
        self.inner.audit.record(&event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Authenticated, IdentityKind, Verifier,
        audit::MemoryAuditSink,
        model::{Domain, Endpoint},
        reject::{TokenError, UnavailableError},
        util::BoxFuture,
    };
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Trusts one peer address; counts its calls.
    #[derive(Debug, Default)]
    struct Peer(AtomicUsize);
    impl Verifier for Peer {
        fn verify<'a>(
            &'a self,
            r: &'a RequestView<'a>,
        ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
            self.0.fetch_add(1, Ordering::Relaxed);
            let ok = r.peer().is_some_and(|p| p.ip().to_string() == "10.0.0.1");
            Box::pin(async move {
                if ok {
                    Ok(Authenticated::new(vec![Identity::new(
                        IdentityKind::Workload,
                        "svc",
                    )]))
                } else {
                    Err(Rejection::MissingCredentials)
                }
            })
        }
    }

    /// Accepts the header `x-token: good`, with a scope claim.
    #[derive(Debug, Default)]
    struct Header(AtomicUsize);
    impl Verifier for Header {
        fn verify<'a>(
            &'a self,
            r: &'a RequestView<'a>,
        ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
            self.0.fetch_add(1, Ordering::Relaxed);
            let result = match r.headers().get("x-token").map(|v| v.as_bytes()) {
                Some(b"good") => Ok(Authenticated::new(vec![
                    Identity::new(IdentityKind::EndUser, "mallory").for_accountability(false),
                    Identity::new(IdentityKind::EndUser, "alice")
                        .with_claims(crate::Claims::from_json(r#"{"scope":"s"}"#).unwrap()),
                ])),
                Some(b"down") => Err(Rejection::Unavailable(UnavailableError::KeySource(
                    crate::jwks::KeySourceError::Timeout,
                ))),
                Some(_) => Err(TokenError::BadSignature.into()),
                None => Err(Rejection::MissingCredentials),
            };
            Box::pin(async move { result })
        }
    }

    fn enforcer(peer: Arc<Peer>, header: Arc<Header>, audit: Arc<MemoryAuditSink>) -> Enforcer {
        let topology = Topology::builder()
            .mechanism("peer", peer)
            .mechanism("header", header)
            .domain(Domain::builder("d").trust("peer").access("header"))
            .endpoint(Endpoint::interior("d", "/in"))
            .endpoint(Endpoint::boundary("d", "/out").scopes(["s"]))
            .endpoint(Endpoint::interior_and_boundary("d", "/both"))
            .build()
            .unwrap();
        Enforcer::builder(topology).audit(audit).build()
    }

    async fn decide(
        e: &Enforcer,
        path: &str,
        peer: &str,
        token: Option<&'static str>,
    ) -> Result<SecurityContext, Denial> {
        let mut headers = http::HeaderMap::new();
        if let Some(t) = token {
            headers.insert("x-token", http::HeaderValue::from_static(t));
        }
        let view =
            RequestView::new(&http::Method::GET, path, &headers).with_peer(peer.parse().unwrap());
        match e.decide(&view).await {
            Decision::Allow(p) => Ok(p.into_context()),
            Decision::Deny(d) => Err(d),
        }
    }

    /// The issue's reproduction: the actix adapter refused a method it could not convert
    /// on its own, outside the core and unaudited. Now the core decides and audits it.
    #[tokio::test]
    async fn an_unsupported_method_is_refused_and_audited() {
        let audit = Arc::new(MemoryAuditSink::default());
        let e = enforcer(
            Arc::new(Peer::default()),
            Arc::new(Header::default()),
            audit.clone(),
        );
        let headers = http::HeaderMap::new();
        let view = RequestView::new(&http::Method::GET, "/in", &headers)
            .with_peer("10.0.0.1:1".parse().unwrap())
            .with_unsupported_method();
        match e.decide(&view).await {
            Decision::Deny(d) => assert_eq!(d.status(), 400),
            Decision::Allow(_) => panic!("allowed"),
        }
        let events = audit.take();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, "malformed_method");
    }

    #[tokio::test]
    async fn exposure_selects_the_mechanism() {
        let (peer, header, audit) = (
            Arc::new(Peer::default()),
            Arc::new(Header::default()),
            Arc::new(MemoryAuditSink::default()),
        );
        let e = enforcer(peer.clone(), header.clone(), audit.clone());
        // Interior: only the trust mechanism; a good access token does not help.
        assert_eq!(
            decide(&e, "/in", "10.0.0.1:1", None).await.unwrap().lane(),
            Lane::Trust
        );
        assert_eq!(
            decide(&e, "/in", "10.9.9.9:1", Some("good"))
                .await
                .unwrap_err()
                .status(),
            401
        );
        assert_eq!(header.0.load(Ordering::Relaxed), 0);
        // Boundary: only the access mechanism; being inside does not help.
        assert_eq!(
            decide(&e, "/out", "10.0.0.1:1", None)
                .await
                .unwrap_err()
                .status(),
            401
        );
        let ctx = decide(&e, "/out", "10.9.9.9:1", Some("good"))
            .await
            .unwrap();
        assert_eq!(ctx.lane(), Lane::Access);
        // Requirements are checked against the authenticated principal, never an
        // accountability-only identity.
        assert_eq!(ctx.principal().unwrap().subject(), "alice");
        assert_eq!(ctx.identities()[1].subject(), "mallory");
        assert_eq!(
            ctx.principal().unwrap().mechanism().unwrap().as_str(),
            "header"
        );
        // Both: the trust mechanism first (fast lane), then the access mechanism.
        let before = header.0.load(Ordering::Relaxed);
        assert_eq!(
            decide(&e, "/both", "10.0.0.1:1", Some("good"))
                .await
                .unwrap()
                .lane(),
            Lane::Trust
        );
        assert_eq!(
            header.0.load(Ordering::Relaxed),
            before,
            "the fast lane decided alone"
        );
        assert_eq!(
            decide(&e, "/both", "10.9.9.9:1", Some("good"))
                .await
                .unwrap()
                .lane(),
            Lane::Access
        );
        let denied = decide(&e, "/both", "10.9.9.9:1", Some("bad"))
            .await
            .unwrap_err();
        assert_eq!(denied.rejection().code(), "token_bad_signature");
        assert_eq!(audit.events().len(), 7, "one audit event per decision");
    }

    #[tokio::test]
    async fn unavailable_is_503_and_audited_as_such() {
        let audit = Arc::new(MemoryAuditSink::default());
        let e = enforcer(Arc::default(), Arc::default(), audit.clone());
        let d = decide(&e, "/out", "10.9.9.9:1", Some("down"))
            .await
            .unwrap_err();
        assert_eq!(d.status(), 503);
        let ev = &audit.events()[0];
        assert_eq!((ev.reason, ev.status), ("key_source_unavailable", 503));
        assert_eq!(
            ev.detail.as_deref(),
            Some("unavailable: key source timed out")
        );
    }
}
