//! Endpoints: what a service exposes, to whom, and what a caller must hold.
//!
//! ```
//! use dharma_core::model::Endpoint;
//!
//! let orders = Endpoint::boundary("outer", "/orders/{id}")
//!     .methods(["GET", "HEAD"])
//!     .scopes(["orders:read"])
//!     .claim_equals("tenant", "acme");
//! # let _ = orders;
//! ```

use std::sync::Arc;

use http::Method;
use serde_json::Value;

use super::path::PathPattern;
use super::rule::{AuthorizationRequest, Rule};
use crate::state::FailMode;
use crate::{
    context::{Claims, Lane},
    error::{ForbiddenReason, Rejection},
    names::{DomainName, MechanismName, Scope},
};

/// Who may reach an endpoint, and so which of its domain's mechanisms checks a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Exposure {
    /// Reachable by services of the domain; checked with the domain's trust mechanism.
    Interior,
    /// Reachable from outside the domain; checked with the domain's access mechanism.
    Boundary,
    /// Both: the trust mechanism is tried first (the fast lane), then the access mechanism.
    InteriorAndBoundary,
    /// Reachable by anyone with no mechanism (health checks, discovery documents).
    /// Still audited.
    Public,
}

impl Exposure {
    /// Whether services inside the domain reach it through the trust mechanism.
    pub fn is_interior(self) -> bool {
        matches!(self, Self::Interior | Self::InteriorAndBoundary)
    }
    /// Whether callers outside the domain reach it through the access mechanism.
    pub fn is_boundary(self) -> bool {
        matches!(self, Self::Boundary | Self::InteriorAndBoundary)
    }
}

impl Exposure {
    /// The configuration-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interior => "interior",
            Self::Boundary => "boundary",
            Self::InteriorAndBoundary => "interior+boundary",
            Self::Public => "public",
        }
    }
}

/// A rule on one claim of the principal.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClaimRule {
    /// The claim exists.
    Present,
    /// The claim equals the value.
    Equals(Value),
    /// The claim is an array holding the value, or equals it.
    Contains(Value),
}

impl ClaimRule {
    fn holds(&self, claim: Option<&Value>) -> bool {
        match (self, claim) {
            (_, None) => false,
            (Self::Present, Some(_)) => true,
            (Self::Equals(v), Some(c)) => c == v,
            (Self::Contains(v), Some(Value::Array(items))) => items.contains(v),
            (Self::Contains(v), Some(c)) => c == v,
        }
    }
}

/// What a principal must hold to use an endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Requirements {
    scopes: Vec<Scope>,
    claims: Vec<(Arc<str>, ClaimRule)>,
    rules: Vec<Rule>,
}

impl Requirements {
    pub(crate) fn from_parts(
        scopes: Vec<Scope>,
        claims: Vec<(Arc<str>, ClaimRule)>,
        rules: Vec<Rule>,
    ) -> Self {
        Self {
            scopes,
            claims,
            rules,
        }
    }

    /// The rules (all must hold), checked after scopes and claim rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The scopes required (all of them).
    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }

    /// The claim rules (all must hold).
    pub fn claims(&self) -> &[(Arc<str>, ClaimRule)] {
        &self.claims
    }

    /// Whether there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty() && self.claims.is_empty() && self.rules.is_empty()
    }

    /// Checks the rules.
    pub(crate) fn check_rules(&self, request: &AuthorizationRequest<'_>) -> Result<(), Rejection> {
        self.rules.iter().try_for_each(|r| r.check(request))
    }

    /// Checks the principal's claims against the scopes and claim rules.
    pub fn check(&self, claims: &Claims) -> Result<(), Rejection> {
        if !self.scopes.iter().all(|s| claims.has_scope(s.as_str())) {
            return Err(Rejection::InsufficientScope {
                required: self.scopes.clone(),
            });
        }
        for (name, rule) in &self.claims {
            if !rule.holds(claims.get(name)) {
                return Err(ForbiddenReason::Claim {
                    claim: name.clone(),
                }
                .into());
            }
        }
        Ok(())
    }
}

/// A validated endpoint, part of a [`Topology`](super::Topology).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub(super) name: Arc<str>,
    pub(super) domain: DomainName,
    pub(super) methods: Option<Vec<Method>>,
    pub(super) path: PathPattern,
    pub(super) exposure: Exposure,
    pub(super) requirements: Requirements,
    pub(super) hierarchical: bool,
    pub(super) allow_identified: bool,
    pub(super) optional: bool,
    pub(super) one_time: bool,
    pub(super) on_store_failure: FailMode,
    /// The mechanisms that may admit a request, fast lane first, each with its position
    /// in [`Topology::mechanisms`](super::Topology::mechanisms).
    pub(super) lanes: Vec<(Lane, MechanismName, usize)>,
}

impl Endpoint {
    /// An endpoint reachable from outside `domain` (checked with its access mechanism).
    pub fn boundary(domain: &str, path: &str) -> EndpointBuilder {
        EndpointBuilder::new(domain, path, Exposure::Boundary)
    }
    /// An endpoint reachable by services of `domain` (checked with its trust mechanism).
    pub fn interior(domain: &str, path: &str) -> EndpointBuilder {
        EndpointBuilder::new(domain, path, Exposure::Interior)
    }
    /// An endpoint that is both interior and boundary of `domain`.
    pub fn interior_and_boundary(domain: &str, path: &str) -> EndpointBuilder {
        EndpointBuilder::new(domain, path, Exposure::InteriorAndBoundary)
    }
    /// An endpoint that needs no credentials (still audited).
    pub fn public(domain: &str, path: &str) -> EndpointBuilder {
        EndpointBuilder::new(domain, path, Exposure::Public)
    }

    /// Its name in audit records (`GET /orders/{id}` unless named).
    pub fn name(&self) -> &str {
        &self.name
    }
    pub(crate) fn name_arc(&self) -> &Arc<str> {
        &self.name
    }
    /// Its trust domain.
    pub fn domain(&self) -> &DomainName {
        &self.domain
    }
    /// Its methods (`None`: any method).
    pub fn methods(&self) -> Option<&[Method]> {
        self.methods.as_deref()
    }
    /// Its path pattern.
    pub fn path(&self) -> &PathPattern {
        &self.path
    }
    /// Who may reach it.
    pub fn exposure(&self) -> Exposure {
        self.exposure
    }
    /// What a principal must hold.
    pub fn requirements(&self) -> &Requirements {
        &self.requirements
    }
    /// Whether it is a hierarchical endpoint: a boundary endpoint of an inner domain whose
    /// access mechanism is the outer domain's trust mechanism, so it is at the same time
    /// an interior endpoint of the outer domain.
    pub fn is_hierarchical(&self) -> bool {
        self.hierarchical
    }

    /// Whether an identified-only caller (an API key) may be the principal.
    pub fn allows_identified(&self) -> bool {
        self.allow_identified
    }

    /// Whether credentials are optional: a request with none is admitted as anonymous.
    pub fn credentials_optional(&self) -> bool {
        self.optional
    }

    /// Whether a token is admitted here once only.
    pub fn one_time(&self) -> bool {
        self.one_time
    }

    /// What to do when the replay guard or the revocation list cannot answer.
    pub fn on_store_failure(&self) -> FailMode {
        self.on_store_failure
    }

    pub(crate) fn lanes(&self) -> &[(Lane, MechanismName, usize)] {
        &self.lanes
    }

    /// Whether the endpoint serves `method` (an endpoint with `GET` also serves `HEAD`).
    pub(crate) fn serves(&self, method: &Method) -> bool {
        match &self.methods {
            None => true,
            Some(ms) => ms
                .iter()
                .any(|m| m == method || (*m == Method::GET && *method == Method::HEAD)),
        }
    }

    pub(super) fn methods_overlap(&self, other: &Endpoint) -> bool {
        match (&self.methods, &other.methods) {
            (None, _) | (_, None) => true,
            (Some(a), Some(b)) => a.iter().any(|m| b.contains(m)),
        }
    }
}

/// Declares an endpoint; validated when the [`Topology`](super::Topology) is built.
#[derive(Debug, Clone)]
#[must_use]
pub struct EndpointBuilder {
    pub(super) domain: String,
    pub(super) path: String,
    pub(super) exposure: Exposure,
    pub(super) name: Option<String>,
    pub(super) methods: Vec<String>,
    pub(super) scopes: Vec<String>,
    pub(super) claims: Vec<(String, ClaimRule)>,
    pub(super) rules: Vec<Rule>,
    pub(super) allow_identified: bool,
    pub(super) optional: bool,
    pub(super) one_time: bool,
    pub(super) on_store_failure: FailMode,
}

impl EndpointBuilder {
    fn new(domain: &str, path: &str, exposure: Exposure) -> Self {
        Self {
            domain: domain.to_owned(),
            path: path.to_owned(),
            exposure,
            name: None,
            methods: Vec::new(),
            scopes: Vec::new(),
            claims: Vec::new(),
            rules: Vec::new(),
            allow_identified: false,
            optional: false,
            one_time: false,
            on_store_failure: FailMode::Closed,
        }
    }

    /// Admits each token once (by issuer and `jti`, or digest), for as long as it lives:
    /// a second request with it is refused (`401`, `token_replayed`), at this instance or,
    /// with a shared [`ReplayGuard`](crate::state::ReplayGuard), at any other. The enforcer
    /// needs a replay guard.
    pub fn one_time(mut self) -> Self {
        self.one_time = true;
        self
    }

    /// What to do when the replay guard or the revocation list cannot answer (default
    /// [`FailMode::Closed`]: refuse with `503`).
    pub fn on_store_failure(mut self, mode: FailMode) -> Self {
        self.on_store_failure = mode;
        self
    }

    /// Makes credentials optional: a request that carries none is admitted as anonymous
    /// (no identity, lane [`Anonymous`](crate::Lane::Anonymous), audited), while one whose
    /// credentials are bad is refused as usual. The endpoint can then require no scope or
    /// claim: an anonymous caller could not meet it.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// Accepts a caller that is only identified (an API key) as the principal. By default
    /// an endpoint needs an authenticated principal.
    pub fn allow_identified(mut self) -> Self {
        self.allow_identified = true;
        self
    }

    /// Names the endpoint for audit records.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Restricts the endpoint to these methods (default: any method).
    pub fn methods<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, methods: I) -> Self {
        self.methods
            .extend(methods.into_iter().map(|m| m.as_ref().to_owned()));
        self
    }

    /// Requires these scopes (all of them).
    pub fn scopes<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, scopes: I) -> Self {
        self.scopes
            .extend(scopes.into_iter().map(|s| s.as_ref().to_owned()));
        self
    }

    /// Requires a claim rule.
    pub fn claim(mut self, name: &str, rule: ClaimRule) -> Self {
        self.claims.push((name.to_owned(), rule));
        self
    }

    /// Requires a rule (all of an endpoint's rules must hold): roles, claims (nested,
    /// against path parameters), the identity's kind and domain, the lane, combinations,
    /// and [`Authorizer`](super::Authorizer)s. See [`Rule`].
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Requires a claim to equal a value.
    pub fn claim_equals(self, name: &str, value: impl Into<Value>) -> Self {
        self.claim(name, ClaimRule::Equals(value.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reqs(scopes: &[&str], claims: Vec<(&str, ClaimRule)>) -> Requirements {
        Requirements {
            scopes: scopes.iter().map(|s| s.parse().unwrap()).collect(),
            claims: claims.into_iter().map(|(n, r)| (Arc::from(n), r)).collect(),
            rules: Vec::new(),
        }
    }

    #[test]
    fn scope_requirements() {
        let claims = Claims::from_json(r#"{"scope":"a b"}"#).unwrap();
        assert!(reqs(&["a"], vec![]).check(&claims).is_ok());
        assert!(reqs(&["a", "b"], vec![]).check(&claims).is_ok());
        match reqs(&["a", "c"], vec![]).check(&claims) {
            Err(Rejection::InsufficientScope { required }) => assert_eq!(required.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn claim_requirements() {
        let claims = Claims::from_json(r#"{"tenant":"acme","groups":["x","y"]}"#).unwrap();
        assert!(
            reqs(&[], vec![("tenant", ClaimRule::Equals("acme".into()))])
                .check(&claims)
                .is_ok()
        );
        assert!(
            reqs(&[], vec![("groups", ClaimRule::Contains("y".into()))])
                .check(&claims)
                .is_ok()
        );
        assert!(
            reqs(&[], vec![("tenant", ClaimRule::Present)])
                .check(&claims)
                .is_ok()
        );
        for rule in [
            ("tenant", ClaimRule::Equals("evil".into())),
            ("groups", ClaimRule::Contains("z".into())),
            ("missing", ClaimRule::Present),
        ] {
            assert!(matches!(
                reqs(&[], vec![rule]).check(&claims),
                Err(Rejection::Forbidden(ForbiddenReason::Claim { .. }))
            ));
        }
    }
}
