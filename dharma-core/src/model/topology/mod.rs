//! The validated whole: domains in their hierarchy, endpoints, and the names of the
//! mechanisms they use. A topology is data: it holds no mechanism instance, so tools can
//! read and check a policy without building anything, and a reload can pair a new
//! topology with the instances already running.
//!
//! ```
//! use dharma_core::model::{Domain, Endpoint, Topology};
//!
//! // Mechanisms are named here; their instances are supplied to the enforcer.
//! let topology = Topology::builder()
//!     .domain(Domain::builder("outer").trust("org-jwt").access("org-jwt"))
//!     .domain(Domain::builder("inner").parent("outer").access("org-jwt").trust("network"))
//!     .endpoint(Endpoint::boundary("inner", "/payments").methods(["POST"]))
//!     .build()?;
//!
//! let ep = topology.classify(&http::Method::POST, "/payments").endpoint().unwrap();
//! assert!(ep.is_hierarchical()); // inner's access mechanism is outer's trust mechanism
//! assert_eq!(topology.mechanisms().len(), 2);
//! # Ok::<(), dharma_core::model::TopologyError>(())
//! ```

use std::sync::Arc;

use http::Method;

use super::{
    domain::{Domain, DomainBuilder},
    endpoint::{Endpoint, EndpointBuilder, Exposure, Requirements},
    path::{PathPattern, PatternError},
    routes::{Classified, Routes},
};
use crate::{
    context::Lane,
    names::{DomainName, MechanismName, NameError},
};

/// A topology that cannot be built, naming the offending domain, endpoint or mechanism.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{item}: {kind}")]
pub struct TopologyError {
    item: String,
    kind: TopologyErrorKind,
}

impl TopologyError {
    pub(crate) fn new(item: String, kind: TopologyErrorKind) -> Self {
        Self { item, kind }
    }
    /// The offending item, as `domain "inner"`, `endpoint "GET /x"` or `mechanism "m"`.
    pub fn item(&self) -> &str {
        &self.item
    }
    /// What is wrong with it.
    pub fn kind(&self) -> &TopologyErrorKind {
        &self.kind
    }
}

/// What is wrong with a topology item.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyErrorKind {
    /// A name does not parse.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// Declared twice.
    #[error("declared more than once")]
    Duplicate,
    /// The parent domain is not declared.
    #[error("parent domain {0:?} is not declared")]
    UnknownParent(String),
    /// Following parents leads back to the domain.
    #[error("the parent chain forms a cycle")]
    Cycle,
    /// A mechanism the topology names has no instance.
    #[error("mechanism {0:?} is not registered")]
    UnknownMechanism(String),
    /// The endpoint's domain is not declared.
    #[error("domain {0:?} is not declared")]
    UnknownDomain(String),
    /// An interior endpoint in a domain without a trust mechanism.
    #[error("interior endpoint in domain {0:?}, which has no trust mechanism")]
    NoTrustMechanism(String),
    /// A boundary endpoint in a domain without an access mechanism.
    #[error("boundary endpoint in domain {0:?}, which has no access mechanism")]
    NoAccessMechanism(String),
    /// The path pattern does not parse.
    #[error(transparent)]
    InvalidPattern(#[from] PatternError),
    /// A method that does not parse.
    #[error("invalid method {0:?}")]
    InvalidMethod(String),
    /// Another endpoint matches the same requests.
    #[error("matches the same requests as endpoint {0:?}")]
    Overlap(String),
    /// Credentials are optional, yet the endpoint requires scopes or claims (which no
    /// anonymous caller meets), or is public (which needs none anyway).
    #[error("optional credentials with requirements, or on a public endpoint")]
    OptionalMisused,
    /// A rule names a path parameter the endpoint's pattern does not have.
    #[error("a rule reads the path parameter {0:?}, which the pattern does not have")]
    UnknownParam(String),
    /// Rules on a public endpoint, which establishes no identity to check.
    #[error("rules on a public endpoint, which establishes no identity")]
    RulesOnPublic,
    /// A rule names an authorizer the enforcer does not have.
    #[error("authorizer {0:?} is not registered")]
    UnknownAuthorizer(String),
    /// One-time use on a public endpoint, which reads no token.
    #[error("one-time use on a public endpoint, which reads no token")]
    OneTimeOnPublic,
    /// An endpoint admits tokens once, and the enforcer has no replay guard.
    #[error("the endpoint admits tokens once, and the enforcer has no replay guard")]
    NoReplayGuard,
    /// The path pattern cannot be routed beside another one: a parameter and a tail at
    /// the same position, which axum's router refuses too.
    #[error(
        "path pattern conflicts with endpoint {0:?}: a parameter and a tail at one position cannot be told apart"
    )]
    RouteConflict(String),
}

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

/// Domains, endpoints and the names of the mechanisms they use, validated together,
/// with what the enforcer does with requests to no endpoint.
#[derive(Debug, Clone)]
pub struct Topology {
    mechanisms: Vec<MechanismName>,
    domains: Vec<Domain>,
    endpoints: Vec<Endpoint>,
    routes: Routes,
    unmatched: Unmatched,
    realm: Option<Arc<str>>,
    pass_preflights: bool,
    roles_claim: Arc<str>,
}

impl Topology {
    /// The claim [`Rule::role`](super::Rule::role) reads (dotted for nested objects).
    pub fn roles_claim(&self) -> &str {
        &self.roles_claim
    }

    /// The authorizers the endpoints' rules name.
    pub fn authorizers(&self) -> Vec<&str> {
        let mut names = Vec::new();
        for rule in self.endpoints.iter().flat_map(|e| e.requirements().rules()) {
            rule.authorizers(&mut names);
        }
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Starts declaring a topology.
    pub fn builder() -> TopologyBuilder {
        TopologyBuilder::default()
    }

    /// Every domain, in declaration order.
    pub fn domains(&self) -> &[Domain] {
        &self.domains
    }

    /// A domain by name.
    pub fn domain(&self, name: &str) -> Option<&Domain> {
        self.domains.iter().find(|d| d.name.as_str() == name)
    }

    /// Every endpoint, in declaration order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The mechanisms the domains name, each once, in the order first named.
    pub fn mechanisms(&self) -> &[MechanismName] {
        &self.mechanisms
    }

    /// What happens to a request that matches no endpoint.
    pub fn unmatched(&self) -> Unmatched {
        self.unmatched
    }

    /// The `realm` of `WWW-Authenticate` challenges.
    pub fn realm(&self) -> Option<&Arc<str>> {
        self.realm.as_ref()
    }

    /// Whether CORS preflights to declared paths pass to the application.
    pub fn passes_preflights(&self) -> bool {
        self.pass_preflights
    }

    /// The hierarchical endpoints (see [`Endpoint::is_hierarchical`]).
    pub fn hierarchical_endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.endpoints.iter().filter(|e| e.hierarchical)
    }

    /// Where a request goes. The path is matched first, as axum's router (matchit) and
    /// actix-router match it: the most specific pattern wins, a literal segment over a
    /// parameter over a tail, leftmost first. Then the method picks the endpoint among
    /// those declared for that pattern. `path` must be in normal form
    /// (see [`check_request_path`](super::check_request_path)).
    pub fn classify(&self, method: &Method, path: &str) -> Classified<'_> {
        self.routes.classify(&self.endpoints, method, path)
    }

    /// Whether the router's choice of route must be checked for `path`: only when another
    /// declared pattern matches some of the same paths as the one `path` leads to. A route
    /// the router chose for such a path can lead only to an overlapping pattern, so for an
    /// uncontested one the check is skipped (and adapters need not look the route up).
    pub fn route_check_needed(&self, path: &str) -> bool {
        self.routes.check_needed(path)
    }

    /// Whether a router's choice for a request agrees with dharma's: `route` is the
    /// pattern the framework's router matched (axum's syntax, `{id}` and `{*rest}`), and
    /// it must lead to the same declared path pattern as `path` does. A route that
    /// cannot be read never agrees.
    pub fn route_agrees(&self, path: &str, route: &str) -> bool {
        self.routes.agrees(path, route)
    }

    /// Whether the router's `route` for `path` must refuse the request: the path's pattern
    /// is contested and the route leads to another one.
    pub(crate) fn route_leads_elsewhere(&self, path: &str, route: &str) -> bool {
        self.routes.leads_elsewhere(path, route)
    }
}

/// Collects domains and endpoints, then validates them in [`build`](Self::build).
#[derive(Debug, Default, Clone)]
#[must_use]
pub struct TopologyBuilder {
    domains: Vec<DomainBuilder>,
    endpoints: Vec<EndpointBuilder>,
    unmatched: Unmatched,
    realm: Option<String>,
    pass_preflights: bool,
    roles_claim: Option<String>,
}

impl TopologyBuilder {
    /// The claim that lists the principal's roles for [`Rule::role`](super::Rule::role)
    /// (default `roles`; dotted for nested objects, as Keycloak's `realm_access.roles`).
    pub fn roles_claim(mut self, claim: &str) -> Self {
        self.roles_claim = Some(claim.to_owned());
        self
    }

    /// What to do with requests to no declared endpoint (default: refuse with `404`).
    pub fn unmatched(mut self, unmatched: Unmatched) -> Self {
        self.unmatched = unmatched;
        self
    }

    /// The `realm` of `WWW-Authenticate` challenges. Control characters are replaced.
    pub fn realm(mut self, realm: &str) -> Self {
        self.realm = Some(realm.to_owned());
        self
    }

    /// Lets CORS preflights (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
    /// to declared paths through to the application, unauthenticated and audited, for a
    /// CORS layer placed between dharma and the handlers to answer. Browsers send
    /// preflights without credentials, so a mechanism could only refuse them.
    ///
    /// By default a preflight is decided like any request (usually `405`, as `OPTIONS` is
    /// rarely declared); the other way to serve CORS is a CORS layer outside dharma, which
    /// answers preflights before they reach it. Either way, the CORS layer must answer
    /// every preflight itself: one passed through must not reach a handler.
    pub fn pass_preflights(mut self) -> Self {
        self.pass_preflights = true;
        self
    }

    /// Declares a domain.
    pub fn domain(mut self, domain: DomainBuilder) -> Self {
        self.domains.push(domain);
        self
    }

    /// Declares an endpoint.
    pub fn endpoint(mut self, endpoint: EndpointBuilder) -> Self {
        self.endpoints.push(endpoint);
        self
    }

    /// Validates everything and derives the hierarchical endpoints.
    pub fn build(self) -> Result<Topology, TopologyError> {
        let domains = build_domains(self.domains)?;
        let mut mechanisms: Vec<MechanismName> = Vec::new();
        for name in domains.iter().flat_map(|d| d.trust.iter().chain(&d.access)) {
            if !mechanisms.contains(name) {
                mechanisms.push(name.clone());
            }
        }
        let endpoints = self
            .endpoints
            .into_iter()
            .map(|spec| build_endpoint(spec, &domains, &mechanisms))
            .collect::<Result<Vec<_>, _>>()?;
        let routes = Routes::build(&endpoints)?;
        Ok(Topology {
            mechanisms,
            domains,
            endpoints,
            routes,
            unmatched: self.unmatched,
            realm: self.realm.map(Arc::from),
            pass_preflights: self.pass_preflights,
            roles_claim: self.roles_claim.as_deref().unwrap_or("roles").into(),
        })
    }
}

fn build_domains(specs: Vec<DomainBuilder>) -> Result<Vec<Domain>, TopologyError> {
    let mut domains: Vec<Domain> = Vec::with_capacity(specs.len());
    for spec in &specs {
        let item = || format!("domain {:?}", spec.name);
        let wrap = |e: NameError| TopologyError::new(item(), e.into());
        let name: DomainName = spec.name.parse().map_err(wrap)?;
        if domains.iter().any(|d| d.name == name) {
            return Err(TopologyError::new(item(), TopologyErrorKind::Duplicate));
        }
        let mechanism = |m: &Option<String>| -> Result<Option<MechanismName>, TopologyError> {
            m.as_deref().map(str::parse).transpose().map_err(wrap)
        };
        domains.push(Domain {
            name,
            relation: spec.relation.clone(),
            parent: spec
                .parent
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(wrap)?,
            trust: mechanism(&spec.trust)?,
            access: mechanism(&spec.access)?,
        });
    }
    for d in &domains {
        let item = || format!("domain {:?}", d.name.as_str());
        let mut seen = 0;
        let mut cursor = d.parent.as_ref();
        while let Some(p) = cursor {
            let Some(parent) = domains.iter().find(|x| &x.name == p) else {
                return Err(TopologyError::new(
                    item(),
                    TopologyErrorKind::UnknownParent(p.to_string()),
                ));
            };
            seen += 1;
            if parent.name == d.name || seen > domains.len() {
                return Err(TopologyError::new(item(), TopologyErrorKind::Cycle));
            }
            cursor = parent.parent.as_ref();
        }
    }
    Ok(domains)
}

fn build_endpoint(
    spec: EndpointBuilder,
    domains: &[Domain],
    mechanisms: &[MechanismName],
) -> Result<Endpoint, TopologyError> {
    let methods = spec
        .methods
        .iter()
        .map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).map_err(|_| m.clone()))
        .collect::<Result<Vec<_>, _>>();
    let name: Arc<str> = match &spec.name {
        Some(n) => n.as_str().into(),
        None if spec.methods.is_empty() => format!("* {}", spec.path).into(),
        None => format!(
            "{} {}",
            spec.methods.join(",").to_ascii_uppercase(),
            spec.path
        )
        .into(),
    };
    let item = || format!("endpoint {:?}", &*name);
    let methods =
        methods.map_err(|m| TopologyError::new(item(), TopologyErrorKind::InvalidMethod(m)))?;
    let path: PathPattern = spec
        .path
        .parse()
        .map_err(|e: PatternError| TopologyError::new(item(), e.into()))?;
    let Some(domain) = domains.iter().find(|d| d.name.as_str() == spec.domain) else {
        return Err(TopologyError::new(
            item(),
            TopologyErrorKind::UnknownDomain(spec.domain.clone()),
        ));
    };
    if spec.exposure.is_interior() && domain.trust.is_none() {
        return Err(TopologyError::new(
            item(),
            TopologyErrorKind::NoTrustMechanism(spec.domain.clone()),
        ));
    }
    if spec.exposure.is_boundary() && domain.access.is_none() {
        return Err(TopologyError::new(
            item(),
            TopologyErrorKind::NoAccessMechanism(spec.domain.clone()),
        ));
    }
    if spec.optional
        && (spec.exposure == Exposure::Public
            || !spec.scopes.is_empty()
            || !spec.claims.is_empty()
            || !spec.rules.is_empty())
    {
        return Err(TopologyError::new(
            item(),
            TopologyErrorKind::OptionalMisused,
        ));
    }
    if spec.exposure == Exposure::Public && !spec.rules.is_empty() {
        return Err(TopologyError::new(item(), TopologyErrorKind::RulesOnPublic));
    }
    let mut params = Vec::new();
    spec.rules.iter().for_each(|r| r.params(&mut params));
    if let Some(missing) = params.iter().find(|name| {
        let (plain, tail) = (format!("{{{name}}}"), format!("{{*{name}}}"));
        !spec.path.split('/').any(|seg| seg == plain || seg == tail)
    }) {
        return Err(TopologyError::new(
            item(),
            TopologyErrorKind::UnknownParam((*missing).to_owned()),
        ));
    }
    if spec.one_time && spec.exposure == Exposure::Public {
        return Err(TopologyError::new(
            item(),
            TopologyErrorKind::OneTimeOnPublic,
        ));
    }
    let scopes = spec
        .scopes
        .iter()
        .map(|s| s.parse())
        .collect::<Result<Vec<_>, NameError>>()
        .map_err(|e| TopologyError::new(item(), e.into()))?;
    let mut lanes = Vec::new();
    let resolve = |name: &MechanismName| {
        mechanisms
            .iter()
            .position(|m| m == name)
            .map(|slot| (name.clone(), slot))
    };
    if spec.exposure.is_interior()
        && let Some((name, slot)) = domain.trust.as_ref().and_then(resolve)
    {
        lanes.push((Lane::Trust, name, slot));
    }
    if spec.exposure.is_boundary()
        && domain.access != domain.trust.clone().filter(|_| spec.exposure.is_interior())
        && let Some((name, slot)) = domain.access.as_ref().and_then(resolve)
    {
        lanes.push((Lane::Access, name, slot));
    }
    let hierarchical = spec.exposure.is_boundary()
        && domain.parent.as_ref().is_some_and(|p| {
            domains
                .iter()
                .find(|d| &d.name == p)
                .is_some_and(|parent| parent.trust.is_some() && parent.trust == domain.access)
        });
    Ok(Endpoint {
        name: name.clone(),
        domain: domain.name.clone(),
        methods: (!methods.is_empty()).then_some(methods),
        path,
        exposure: spec.exposure,
        requirements: Requirements::from_parts(
            scopes,
            spec.claims
                .into_iter()
                .map(|(n, r)| (Arc::from(n), r))
                .collect(),
            spec.rules,
        ),
        hierarchical,
        allow_identified: spec.allow_identified,
        optional: spec.optional,
        one_time: spec.one_time,
        on_store_failure: spec.on_store_failure,
        lanes,
    })
}

#[cfg(test)]
mod tests;
