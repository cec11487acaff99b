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
//! let enforcer = Enforcer::builder(topology).build()?;
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

use std::{
    collections::BTreeMap,
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use arc_swap::ArcSwap;

use crate::{
    audit::{AuditEvent, AuditIdentity, AuditSink, Outcome, PolicyEvent, TracingAuditSink},
    clock::{Clock, SystemClock},
    context::{Identity, Lane, SecurityContext, principal},
    error::{MalformedRequest, Rejection},
    mechanism::{BranchOutcome, Verifier},
    model::{
        Classified, Endpoint, Exposure, Topology, TopologyError, TopologyErrorKind, Unmatched,
        check_request_path,
    },
    names::MechanismName,
    reject::Denial,
    request::RequestView,
    util::truncate,
};

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

/// Live mechanism instances by name: what a [`Topology`]'s mechanism names stand for.
///
/// Cloning shares the instances, so a reload that hands the same instance back keeps
/// its key set and verified tokens warm.
#[derive(Clone, Default)]
pub struct Mechanisms {
    by_name: BTreeMap<String, Arc<dyn Verifier>>,
}

impl fmt::Debug for Mechanisms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.by_name.iter()).finish()
    }
}

impl Mechanisms {
    /// No mechanisms.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the instance behind `name`.
    #[must_use]
    pub fn with(mut self, name: &str, verifier: Arc<dyn Verifier>) -> Self {
        self.insert(name, verifier);
        self
    }

    /// Adds (or replaces) the instance behind `name`, returning the one replaced.
    pub fn insert(&mut self, name: &str, verifier: Arc<dyn Verifier>) -> Option<Arc<dyn Verifier>> {
        self.by_name.insert(name.to_owned(), verifier)
    }

    /// The instance behind `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Verifier>> {
        self.by_name.get(name)
    }

    /// Every name and instance, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<dyn Verifier>)> {
        self.by_name.iter().map(|(n, v)| (n.as_str(), v))
    }
}

/// One policy in force: a topology bound to the instances of its mechanisms. A request
/// is decided on the snapshot that was current when its decision began, whatever
/// reloads happen meanwhile.
#[derive(Debug)]
pub struct Snapshot {
    revision: u64,
    topology: Arc<Topology>,
    /// The instance of each of `topology.mechanisms()`, in the same order.
    verifiers: Vec<Arc<dyn Verifier>>,
}

impl Snapshot {
    /// Binds `topology` to `mechanisms`: every mechanism it names must be there.
    fn bind(
        topology: Topology,
        mechanisms: &Mechanisms,
        revision: u64,
    ) -> Result<Self, TopologyError> {
        let verifiers = topology
            .mechanisms()
            .iter()
            .map(|name| {
                mechanisms.get(name.as_str()).cloned().ok_or_else(|| {
                    let user = topology
                        .domains()
                        .iter()
                        .find(|d| d.trust() == Some(name) || d.access() == Some(name))
                        .map_or_else(String::new, |d| d.name().to_string());
                    TopologyError::new(
                        format!("domain {user:?}"),
                        TopologyErrorKind::UnknownMechanism(name.to_string()),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            revision,
            topology: Arc::new(topology),
            verifiers,
        })
    }

    /// The revision: 1 for the policy the enforcer was built with, one more for each
    /// policy applied since.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The topology.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }
}

struct Inner {
    current: ArcSwap<Snapshot>,
    audit: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    /// The last revision handed out; reloads are numbered in the order they are applied.
    revisions: AtomicU64,
    /// Serializes reloads, so revisions are applied in order.
    reloading: std::sync::Mutex<()>,
}

/// Decides requests against the policy in force. Cheap to clone; clones share
/// everything, reloads included.
#[derive(Clone)]
pub struct Enforcer {
    inner: Arc<Inner>,
}

impl fmt::Debug for Enforcer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enforcer")
            .field("policy", &self.inner.current.load())
            .finish_non_exhaustive()
    }
}

/// Builds an [`Enforcer`].
#[derive(Debug)]
#[must_use]
pub struct EnforcerBuilder {
    topology: Topology,
    mechanisms: Mechanisms,
    audit: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
}

impl EnforcerBuilder {
    /// The instance behind a mechanism name of the topology.
    pub fn mechanism(mut self, name: &str, verifier: Arc<dyn Verifier>) -> Self {
        self.mechanisms.insert(name, verifier);
        self
    }
    /// Instances for the topology's mechanism names (added to any given one by one).
    pub fn mechanisms(mut self, mechanisms: &Mechanisms) -> Self {
        for (name, verifier) in mechanisms.iter() {
            self.mechanisms.insert(name, verifier.clone());
        }
        self
    }
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
    /// Finishes the enforcer: fails if the topology names a mechanism with no instance.
    pub fn build(self) -> Result<Enforcer, TopologyError> {
        let snapshot = Snapshot::bind(self.topology, &self.mechanisms, 1)?;
        Ok(Enforcer {
            inner: Arc::new(Inner {
                current: ArcSwap::from_pointee(snapshot),
                audit: self.audit,
                clock: self.clock,
                revisions: AtomicU64::new(1),
                reloading: std::sync::Mutex::new(()),
            }),
        })
    }
}

/// What is known about a request when its decision is audited.
struct Trail<'r, 'a> {
    request: &'r RequestView<'a>,
    snapshot: &'r Snapshot,
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
            mechanisms: Mechanisms::new(),
            audit: Arc::new(TracingAuditSink),
            clock: Arc::new(SystemClock),
        }
    }

    /// The policy in force now. Adapters that must ask the topology something before
    /// deciding (actix-web's route lookup) take a snapshot and decide on it with
    /// [`decide_on`](Self::decide_on), so the question and the decision see one policy.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.current.load_full()
    }

    /// The topology in force now.
    pub fn topology(&self) -> Arc<Topology> {
        self.inner.current.load().topology.clone()
    }

    /// The revision of the policy in force now (see [`Snapshot::revision`]).
    pub fn revision(&self) -> u64 {
        self.inner.current.load().revision
    }

    /// Replaces the policy: `topology` bound to `mechanisms`. Requests already being
    /// decided finish on the policy they started with; later ones see the new one whole.
    /// If a mechanism is missing the policy in force stays. Either way the change is
    /// audited ([`AuditSink::record_policy`]), with `source` saying where it came from.
    ///
    /// Hand back the instances that did not change (clones of the same `Arc`) and their
    /// keys and cached tokens stay warm.
    pub fn reload(
        &self,
        topology: Topology,
        mechanisms: &Mechanisms,
        source: &str,
    ) -> Result<u64, TopologyError> {
        let _serial = self
            .inner
            .reloading
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let revision = self.inner.revisions.load(Ordering::Relaxed) + 1;
        match Snapshot::bind(topology, mechanisms, revision) {
            Ok(snapshot) => {
                self.inner.revisions.store(revision, Ordering::Relaxed);
                self.inner.current.store(Arc::new(snapshot));
                self.record_policy(source, "policy_applied", None);
                Ok(revision)
            }
            Err(e) => {
                self.refuse_policy(source, "policy_invalid", &e);
                Err(e)
            }
        }
    }

    /// Audits a policy that was refused before it reached [`reload`](Self::reload)
    /// (a file that does not parse, a mechanism that cannot be built): the policy in
    /// force stays, and the audit trail says why.
    pub fn refuse_policy(&self, source: &str, reason: &'static str, error: &dyn fmt::Display) {
        self.record_policy(source, reason, Some(error.to_string()));
    }

    fn record_policy(&self, source: &str, reason: &'static str, detail: Option<String>) {
        self.inner.audit.record_policy(&PolicyEvent {
            at: self.inner.clock.now(),
            revision: self.revision(),
            applied: detail.is_none(),
            reason,
            source: source.into(),
            detail,
        });
    }

    /// Decides one request on the policy in force. Every call emits exactly one audit
    /// event.
    pub async fn decide(&self, request: &RequestView<'_>) -> Decision {
        let snapshot = self.snapshot();
        self.decide_on(&snapshot, request).await
    }

    /// Decides one request on `snapshot` (taken with [`snapshot`](Self::snapshot)).
    pub async fn decide_on(&self, snapshot: &Snapshot, request: &RequestView<'_>) -> Decision {
        let mut trail = Trail {
            request,
            snapshot,
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
        let topology = &*snapshot.topology;
        let endpoint = match topology.classify(request.method(), request.path()) {
            Classified::Endpoint(endpoint) => endpoint,
            Classified::MethodNotAllowed { allow } => {
                let allow = allow.clone();
                return self.deny(&trail, Rejection::MethodNotAllowed { allow });
            }
            _ => {
                return match topology.unmatched() {
                    Unmatched::Deny => self.deny(&trail, Rejection::NoEndpoint),
                    _ => {
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
        for (lane, name, slot) in endpoint.lanes() {
            let Some(verifier) = snapshot.verifiers.get(*slot) else {
                continue;
            };
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
        let realm = trail.snapshot.topology.realm().cloned();
        Decision::Deny(Denial::new(rejection, realm))
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
            revision: trail.snapshot.revision,
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
            .domain(Domain::builder("d").trust("peer").access("header"))
            .endpoint(Endpoint::interior("d", "/in"))
            .endpoint(Endpoint::boundary("d", "/out").scopes(["s"]))
            .endpoint(Endpoint::interior_and_boundary("d", "/both"))
            .build()
            .unwrap();
        Enforcer::builder(topology)
            .mechanism("peer", peer)
            .mechanism("header", header)
            .audit(audit)
            .build()
            .unwrap()
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

    /// A verifier that waits until released, to hold a decision in flight.
    #[derive(Debug, Default)]
    struct Gate(tokio::sync::Notify);
    impl Verifier for Gate {
        fn verify<'a>(
            &'a self,
            _: &'a RequestView<'a>,
        ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
            Box::pin(async move {
                self.0.notified().await;
                Ok(Authenticated::new(vec![Identity::new(
                    IdentityKind::Workload,
                    "svc",
                )]))
            })
        }
    }

    #[tokio::test]
    async fn reload_swaps_whole_policies_and_in_flight_requests_keep_theirs() {
        let audit = Arc::new(MemoryAuditSink::default());
        let gate = Arc::new(Gate::default());
        let mechanisms = Mechanisms::new().with("gate", gate.clone());
        let first = Topology::builder()
            .domain(Domain::builder("d").trust("gate"))
            .endpoint(Endpoint::interior("d", "/old"))
            .build()
            .unwrap();
        let e = Enforcer::builder(first)
            .mechanisms(&mechanisms)
            .audit(audit.clone())
            .build()
            .unwrap();
        assert_eq!(e.revision(), 1);

        let in_flight = tokio::spawn({
            let e = e.clone();
            async move { decide(&e, "/old", "10.0.0.1:1", None).await }
        });
        tokio::task::yield_now().await;

        let second = Topology::builder()
            .domain(Domain::builder("d").trust("gate"))
            .endpoint(Endpoint::interior("d", "/new"))
            .build()
            .unwrap();
        assert_eq!(e.reload(second, &mechanisms, "code").unwrap(), 2);
        assert_eq!(e.revision(), 2);
        // A new request sees the new policy whole.
        assert_eq!(
            decide(&e, "/old", "10.0.0.1:1", None)
                .await
                .unwrap_err()
                .status(),
            404
        );
        // The request that started before the reload finishes on the old one.
        gate.0.notify_one();
        let ctx = in_flight.await.unwrap().unwrap();
        assert_eq!(ctx.endpoint(), Some("* /old"));

        let revisions: Vec<_> = audit
            .events()
            .iter()
            .map(|ev| (ev.path.clone(), ev.revision))
            .collect();
        assert_eq!(revisions, [("/old".into(), 2), ("/old".into(), 1)]);
        let policy = audit.policy_events();
        assert_eq!(policy.len(), 1);
        assert!(policy[0].applied);
        assert_eq!(
            (policy[0].revision, policy[0].reason),
            (2, "policy_applied")
        );
    }

    #[tokio::test]
    async fn a_policy_with_a_missing_mechanism_is_refused_and_the_old_one_stays() {
        let audit = Arc::new(MemoryAuditSink::default());
        let e = enforcer(Arc::default(), Arc::default(), audit.clone());
        let broken = Topology::builder()
            .domain(Domain::builder("d").trust("nobody"))
            .endpoint(Endpoint::interior("d", "/in"))
            .build()
            .unwrap();
        let err = e
            .reload(broken, &Mechanisms::new(), "policy.toml")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"domain "d": mechanism "nobody" is not registered"#
        );
        assert_eq!(e.revision(), 1);
        assert!(decide(&e, "/in", "10.0.0.1:1", None).await.is_ok());
        let policy = audit.policy_events();
        assert_eq!(policy.len(), 1);
        assert!(!policy[0].applied);
        assert_eq!(policy[0].reason, "policy_invalid");
        assert_eq!(&*policy[0].source, "policy.toml");
        assert_eq!(policy[0].revision, 1);
        assert!(policy[0].detail.as_deref().unwrap().contains("nobody"));
    }
}
