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

mod snapshot;
#[cfg(test)]
mod tests;
mod token_state;

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use arc_swap::ArcSwap;

pub use snapshot::{Mechanisms, Snapshot};

use crate::{
    audit::{
        AuditEvent, AuditIdentity, AuditSink, EventId, Outcome, PolicyEvent, TracingAuditSink,
    },
    clock::{Clock, SystemClock},
    context::{Identity, InboundToken, Lane, SecurityContext, principal},
    error::{MalformedRequest, Rejection, UnavailableError},
    mechanism::{BranchOutcome, Verifier},
    model::{
        AuthorizationRequest, Authorizer, Classified, Endpoint, Exposure, Topology, TopologyError,
        TopologyErrorKind, Unmatched, check_request_path,
    },
    names::MechanismName,
    reject::{Denial, DenialRenderer},
    request::RequestView,
    state::{ReplayGuard, RevocationList},
    util::truncate,
};
use token_state::Checked;

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
#[derive(Clone)]
pub struct Permit {
    context: SecurityContext,
    inbound: Option<InboundToken>,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("context", &self.context)
            .field("inbound_token", &self.inbound.is_some())
            .finish()
    }
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
    /// Takes the context and, when a mechanism read the request's bearer token, the
    /// token (for the request's extensions, so handlers can propagate it).
    pub fn into_parts(self) -> (SecurityContext, Option<InboundToken>) {
        (self.context, self.inbound)
    }
}

struct Inner {
    current: ArcSwap<Snapshot>,
    audit: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    renderer: Option<DenialRenderer>,
    replay: Option<Arc<dyn ReplayGuard>>,
    revocations: Option<Arc<dyn RevocationList>>,
    authorizers: Authorizers,
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
    renderer: Option<DenialRenderer>,
    replay: Option<Arc<dyn ReplayGuard>>,
    revocations: Option<Arc<dyn RevocationList>>,
    authorizers: Authorizers,
}

/// The authorizers rules name, by name.
pub(crate) type Authorizers = std::collections::HashMap<Arc<str>, Arc<dyn Authorizer>>;

impl EnforcerBuilder {
    /// Registers an [`Authorizer`] under the name rules give it
    /// ([`Rule::authorizer`](crate::model::Rule::authorizer)).
    pub fn authorizer(mut self, name: &str, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizers.insert(name.into(), authorizer);
        self
    }
    /// Remembers tokens used at one-time endpoints ([`EndpointBuilder::one_time`]);
    /// required if the topology has any.
    ///
    /// [`EndpointBuilder::one_time`]: crate::model::EndpointBuilder::one_time
    pub fn replay_guard(mut self, guard: Arc<dyn ReplayGuard>) -> Self {
        self.replay = Some(guard);
        self
    }
    /// Refuses revoked tokens on every request (see [`Enforcer::revoke`]).
    pub fn revocations(mut self, list: Arc<dyn RevocationList>) -> Self {
        self.revocations = Some(list);
        self
    }
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
    /// Renders the bodies of denials with `renderer` (an RFC 9457 problem, the
    /// application's own JSON) in every adapter; status, `WWW-Authenticate` and `Allow`
    /// stay dharma's.
    pub fn render_denials(mut self, renderer: DenialRenderer) -> Self {
        self.renderer = Some(renderer);
        self
    }
    /// Finishes the enforcer: fails if the topology names a mechanism with no instance.
    pub fn build(self) -> Result<Enforcer, TopologyError> {
        check_policy(&self.topology, self.replay.is_some(), &self.authorizers)?;
        let snapshot = Snapshot::bind(self.topology, &self.mechanisms, 1)?;
        Ok(Enforcer {
            inner: Arc::new(Inner {
                current: ArcSwap::from_pointee(snapshot),
                audit: self.audit,
                clock: self.clock,
                renderer: self.renderer,
                replay: self.replay,
                revocations: self.revocations,
                authorizers: self.authorizers,
                revisions: AtomicU64::new(1),
                reloading: std::sync::Mutex::new(()),
            }),
        })
    }
}

/// Refuses a topology that needs what the enforcer lacks: a replay guard for one-time
/// endpoints, the authorizers its rules name.
fn check_policy(
    topology: &Topology,
    has_guard: bool,
    authorizers: &Authorizers,
) -> Result<(), TopologyError> {
    if let Some(e) = topology.endpoints().iter().find(|e| e.one_time())
        && !has_guard
    {
        return Err(TopologyError::new(
            format!("endpoint {:?}", e.name()),
            TopologyErrorKind::NoReplayGuard,
        ));
    }
    if let Some(name) = topology
        .authorizers()
        .into_iter()
        .find(|n| !authorizers.contains_key(*n))
    {
        return Err(TopologyError::new(
            "rules".to_owned(),
            TopologyErrorKind::UnknownAuthorizer(name.to_owned()),
        ));
    }
    Ok(())
}

/// What is known about a request when its decision is audited.
struct Trail<'r, 'a> {
    request: &'r RequestView<'a>,
    snapshot: &'r Snapshot,
    endpoint: Option<&'r Endpoint>,
    lane: Option<Lane>,
    mechanism: Option<MechanismName>,
    branches: Vec<BranchOutcome>,
    /// The reason an admission is audited with.
    allowed: &'static str,
}

impl Enforcer {
    /// Starts building an enforcer for a topology.
    pub fn builder(topology: Topology) -> EnforcerBuilder {
        EnforcerBuilder {
            topology,
            mechanisms: Mechanisms::new(),
            audit: Arc::new(TracingAuditSink),
            clock: Arc::new(SystemClock),
            renderer: None,
            replay: None,
            revocations: None,
            authorizers: Authorizers::new(),
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
        let bound = check_policy(
            &topology,
            self.inner.replay.is_some(),
            &self.inner.authorizers,
        )
        .and_then(|()| Snapshot::bind(topology, mechanisms, revision));
        match bound {
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
            id: EventId::next(),
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
            allowed: "allowed",
        };
        if request.has_unsupported_method() {
            return self.deny(&trail, MalformedRequest::Method.into());
        }
        if let Err(e) = check_request_path(request.path()) {
            return self.deny(&trail, MalformedRequest::from(e).into());
        }
        let topology = &*snapshot.topology;
        if topology.passes_preflights() && request.is_cors_preflight() {
            return match topology.classify(request.method(), request.path()) {
                Classified::NoEndpoint => self.deny(&trail, Rejection::NoEndpoint),
                _ => {
                    trail.lane = Some(Lane::Preflight);
                    self.allow(&trail, None, Vec::new())
                }
            };
        }
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
            Err(rejection)
                if endpoint.credentials_optional() && rejection.is_missing_credentials() =>
            {
                trail.branches = rejection.branch_outcomes().to_vec();
                trail.lane = Some(Lane::Anonymous);
                return self.allow(&trail, Some(endpoint), Vec::new());
            }
            Err(rejection) => {
                trail.branches = rejection.branch_outcomes().to_vec();
                return self.deny(&trail, rejection);
            }
        };
        identities.sort_by_key(Identity::assurance_rank);
        let checked = match principal(&identities, endpoint.allows_identified()) {
            Some(p) => endpoint.requirements().check(p.claims()).and_then(|()| {
                endpoint.requirements().check_rules(&AuthorizationRequest {
                    principal: p,
                    identities: &identities,
                    endpoint,
                    method: request.method(),
                    path: request.path(),
                    lane,
                    roles_claim: topology.roles_claim(),
                    authorizers: &self.inner.authorizers,
                })
            }),
            None => Err(Rejection::NotAuthenticated),
        };
        if let Err(rejection) = checked {
            return self.deny_authenticated(&trail, &identities, rejection);
        }
        match self.check_token_state(endpoint, &identities).await {
            Ok(Checked::Fresh) => {}
            Ok(Checked::Unchecked) => trail.allowed = "allowed_unchecked",
            Err(rejection) => return self.deny_authenticated(&trail, &identities, rejection),
        }
        self.allow(&trail, Some(endpoint), identities)
    }

    fn allow(
        &self,
        trail: &Trail<'_, '_>,
        endpoint: Option<&Endpoint>,
        identities: Vec<Identity>,
    ) -> Decision {
        let event = self.event(trail, &identities, Outcome::Allow, trail.allowed, None, 200);
        if let Err(e) = self.inner.audit.try_record(event) {
            // The sink refuses to let anything through unrecorded.
            return self.deny_authenticated(trail, &identities, UnavailableError::from(e).into());
        }
        // The bearer token goes onward only if a mechanism read it (it named an identity).
        let inbound = identities
            .iter()
            .any(|i| i.token_id().is_some())
            .then(|| trail.request.bearer_header())
            .flatten()
            .map(|(value, start)| InboundToken::from_header(value, start));
        let context = SecurityContext::new(
            endpoint.map(|e| e.name_arc().clone()),
            endpoint.map(|e| e.domain().clone()),
            trail.lane.unwrap_or(Lane::Unmatched),
            identities,
        );
        Decision::Allow(Permit { context, inbound })
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
        let event = self.event(
            trail,
            identities,
            Outcome::Deny,
            rejection.code(),
            Some(rejection.to_string()),
            rejection.status().as_u16(),
        );
        // Refused all the same, whether or not the sink had room.
        let _ = self.inner.audit.try_record(event);
        let realm = trail.snapshot.topology.realm().cloned();
        let denial = Denial::new(rejection, realm);
        Decision::Deny(match &self.inner.renderer {
            Some(r) => denial.with_renderer(r.clone()),
            None => denial,
        })
    }

    fn event(
        &self,
        trail: &Trail<'_, '_>,
        identities: &[Identity],
        outcome: Outcome,
        reason: &'static str,
        detail: Option<String>,
        status: u16,
    ) -> AuditEvent {
        AuditEvent {
            id: EventId::next(),
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
        }
    }
}
