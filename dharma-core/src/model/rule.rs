//! Rules beyond scopes: what an endpoint asks of the principal, the other identities, the
//! path and the lane, combined with all, any and not.
//!
//! ```
//! use dharma_core::model::{Endpoint, Rule};
//!
//! // `/users/{id}`: an admin, or the user the path names.
//! let endpoint = Endpoint::boundary("outer", "/users/{id}").rule(Rule::any([
//!     Rule::role("admin"),
//!     Rule::claim("sub").equals_param("id"),
//! ]));
//! ```

use std::{borrow::Cow, fmt, sync::Arc};

use serde_json::Value;

use crate::{
    Identity, IdentityKind, Lane,
    error::{ForbiddenReason, Rejection},
    names::Scope,
};

use super::Endpoint;

/// A test on one claim (a dotted path reaches into objects: `realm_access.roles`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClaimTest {
    /// The claim exists.
    Exists,
    /// The claim equals the value.
    Equals(Value),
    /// The claim is an array holding the value, or equals it.
    Contains(Value),
    /// The claim equals one of the values.
    OneOf(Vec<Value>),
    /// The claim equals the path parameter (a string claim, or a number written the same).
    EqualsParam(Arc<str>),
}

/// What an endpoint requires beyond scopes; see the [module](self) documentation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Rule {
    /// The principal holds the scope.
    Scope(Scope),
    /// The principal's roles (the claim named by
    /// [`TopologyBuilder::roles_claim`](super::TopologyBuilder::roles_claim), `roles` by
    /// default: an array of strings, or one string) include the role.
    Role(Arc<str>),
    /// A claim of the principal passes a test.
    Claim {
        /// The claim, dotted for nested objects.
        path: Arc<str>,
        /// The test.
        test: ClaimTest,
    },
    /// The principal is of this kind.
    Kind(IdentityKind),
    /// The request comes from this trust domain: an authenticated workload's SPIFFE ID is
    /// in it (`spiffe://{domain}/...`), or an identity of kind
    /// [`Domain`](IdentityKind::Domain) names it.
    FromDomain(Arc<str>),
    /// The request was admitted through this lane.
    Lane(Lane),
    /// Every rule holds.
    All(Vec<Rule>),
    /// At least one rule holds.
    Any(Vec<Rule>),
    /// The rule does not hold.
    Not(Box<Rule>),
    /// The named [`Authorizer`] allows the request.
    Authorizer(Arc<str>),
}

/// A claim rule being built: [`Rule::claim`] and then its test.
#[derive(Debug, Clone)]
#[must_use]
pub struct ClaimRuleBuilder(Arc<str>);

impl ClaimRuleBuilder {
    fn with(self, test: ClaimTest) -> Rule {
        Rule::Claim { path: self.0, test }
    }
    /// The claim exists.
    pub fn exists(self) -> Rule {
        self.with(ClaimTest::Exists)
    }
    /// The claim equals `value`.
    pub fn equals(self, value: impl Into<Value>) -> Rule {
        self.with(ClaimTest::Equals(value.into()))
    }
    /// The claim holds `value` (or equals it).
    pub fn contains(self, value: impl Into<Value>) -> Rule {
        self.with(ClaimTest::Contains(value.into()))
    }
    /// The claim equals one of `values`.
    pub fn one_of<V: Into<Value>>(self, values: impl IntoIterator<Item = V>) -> Rule {
        self.with(ClaimTest::OneOf(
            values.into_iter().map(Into::into).collect(),
        ))
    }
    /// The claim equals the path parameter `name`.
    pub fn equals_param(self, name: &str) -> Rule {
        self.with(ClaimTest::EqualsParam(name.into()))
    }
}

impl Rule {
    /// The principal holds `scope` (checked when the topology is built).
    pub fn scope(scope: &str) -> Result<Self, crate::names::NameError> {
        Ok(Self::Scope(scope.parse()?))
    }
    /// The principal has `role`.
    pub fn role(role: &str) -> Self {
        Self::Role(role.into())
    }
    /// A claim of the principal (`a.b` for nested objects); finish with its test.
    pub fn claim(path: &str) -> ClaimRuleBuilder {
        ClaimRuleBuilder(path.into())
    }
    /// The principal is of `kind`.
    pub fn kind(kind: IdentityKind) -> Self {
        Self::Kind(kind)
    }
    /// The request comes from the trust domain `name`.
    pub fn from_domain(name: &str) -> Self {
        Self::FromDomain(name.into())
    }
    /// The request was admitted through `lane`.
    pub fn lane(lane: Lane) -> Self {
        Self::Lane(lane)
    }
    /// Every rule holds.
    pub fn all(rules: impl IntoIterator<Item = Rule>) -> Self {
        Self::All(rules.into_iter().collect())
    }
    /// At least one rule holds.
    pub fn any(rules: impl IntoIterator<Item = Rule>) -> Self {
        Self::Any(rules.into_iter().collect())
    }
    /// The rule does not hold.
    #[expect(
        clippy::should_implement_trait,
        reason = "a rule combinator, not negation"
    )]
    pub fn not(rule: Rule) -> Self {
        Self::Not(Box::new(rule))
    }
    /// The [`Authorizer`] registered under `name` allows the request.
    pub fn authorizer(name: &str) -> Self {
        Self::Authorizer(name.into())
    }

    /// The authorizers the rule names.
    pub(crate) fn authorizers<'r>(&'r self, out: &mut Vec<&'r str>) {
        match self {
            Self::Authorizer(name) => out.push(name),
            Self::All(rules) | Self::Any(rules) => rules.iter().for_each(|r| r.authorizers(out)),
            Self::Not(rule) => rule.authorizers(out),
            _ => {}
        }
    }

    /// The path parameters the rule reads.
    pub(crate) fn params<'r>(&'r self, out: &mut Vec<&'r str>) {
        match self {
            Self::Claim {
                test: ClaimTest::EqualsParam(name),
                ..
            } => out.push(name),
            Self::All(rules) | Self::Any(rules) => rules.iter().for_each(|r| r.params(out)),
            Self::Not(rule) => rule.params(out),
            _ => {}
        }
    }

    /// Evaluates the rule: `Ok` if it holds, else the refusal.
    pub(crate) fn check(&self, input: &AuthorizationRequest<'_>) -> Result<(), Rejection> {
        match self {
            Self::Scope(scope) => {
                if input.principal.claims().has_scope(scope.as_str()) {
                    Ok(())
                } else {
                    Err(Rejection::InsufficientScope {
                        required: vec![scope.clone()],
                    })
                }
            }
            Self::All(rules) => rules.iter().try_for_each(|r| r.check(input)),
            Self::Any(rules) => {
                if rules.iter().any(|r| r.check(input).is_ok()) {
                    Ok(())
                } else {
                    Err(refused("rule_failed"))
                }
            }
            Self::Not(rule) => match rule.check(input) {
                Ok(()) => Err(refused("rule_failed")),
                Err(_) => Ok(()),
            },
            Self::Authorizer(name) => match input.authorizers.get(name) {
                Some(authorizer) => authorizer.authorize(input),
                // Names are checked when the policy is bound; fail closed all the same.
                None => Err(refused("rule_failed")),
            },
            leaf => {
                if leaf.holds(input) {
                    Ok(())
                } else {
                    Err(leaf.refusal())
                }
            }
        }
    }

    fn holds(&self, input: &AuthorizationRequest<'_>) -> bool {
        let claims = input.principal.claims();
        match self {
            Self::Role(role) => input.roles().contains(&&**role),
            Self::Claim { path, test } => {
                let value = claim_at(claims.as_map(), path);
                match (test, value) {
                    (_, None) => false,
                    (ClaimTest::Exists, Some(_)) => true,
                    (ClaimTest::Equals(v), Some(c)) => c == v,
                    (ClaimTest::Contains(v), Some(Value::Array(items))) => items.contains(v),
                    (ClaimTest::Contains(v), Some(c)) => c == v,
                    (ClaimTest::OneOf(vs), Some(c)) => vs.contains(c),
                    (ClaimTest::EqualsParam(name), Some(c)) => {
                        input.param(name).is_some_and(|p| match c {
                            Value::String(s) => *s == *p,
                            Value::Number(n) => n.to_string() == *p,
                            _ => false,
                        })
                    }
                }
            }
            Self::Kind(kind) => input.principal.kind() == *kind,
            Self::FromDomain(domain) => input.identities.iter().any(|i| {
                let spiffe = i
                    .subject()
                    .strip_prefix("spiffe://")
                    .and_then(|rest| rest.strip_prefix(&**domain))
                    .is_some_and(|rest| rest.starts_with('/'));
                i.is_authenticated()
                    && (spiffe || (i.kind() == IdentityKind::Domain && i.subject() == &**domain))
            }),
            Self::Lane(lane) => input.lane == *lane,
            _ => false,
        }
    }

    fn refusal(&self) -> Rejection {
        match self {
            Self::Claim { path, .. } => ForbiddenReason::Claim {
                claim: path.clone(),
            }
            .into(),
            Self::Role(_) => refused("role_missing"),
            Self::Kind(_) => refused("identity_kind_refused"),
            Self::FromDomain(_) => refused("domain_refused"),
            Self::Lane(_) => refused("lane_refused"),
            _ => refused("rule_failed"),
        }
    }
}

fn refused(code: &'static str) -> Rejection {
    ForbiddenReason::Rule { code }.into()
}

/// The value at a dotted path of a claims object: `a.b` is `{"a": {"b": ...}}`. A claim
/// whose own name has a dot is found too (`"a.b"` at the top).
fn claim_at<'c>(claims: &'c serde_json::Map<String, Value>, path: &str) -> Option<&'c Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// Decides a request by code: the rule [`Rule::authorizer`] names it. Synchronous, on the
/// request path: it must not block.
pub trait Authorizer: Send + Sync + fmt::Debug {
    /// `Ok` to allow; a refusal otherwise (usually
    /// [`ForbiddenReason::Authorizer`](crate::error::ForbiddenReason::Authorizer), `403`
    /// with the reason in the audit trail only).
    fn authorize(&self, request: &AuthorizationRequest<'_>) -> Result<(), Rejection>;
}

/// What rules and authorizers see of a request.
#[derive(Debug)]
#[non_exhaustive]
pub struct AuthorizationRequest<'a> {
    /// The principal.
    pub principal: &'a Identity,
    /// Every identity established, principal included.
    pub identities: &'a [Identity],
    /// The endpoint.
    pub endpoint: &'a Endpoint,
    /// The request method.
    pub method: &'a http::Method,
    /// The request path (normal form).
    pub path: &'a str,
    /// The lane the request was admitted through.
    pub lane: Lane,
    pub(crate) roles_claim: &'a str,
    pub(crate) authorizers: &'a crate::enforcer::Authorizers,
}

impl AuthorizationRequest<'_> {
    /// The path parameter `name` of the endpoint's pattern, percent-decoded.
    pub fn param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.endpoint.path().param(self.path, name)
    }

    /// Every path parameter of the endpoint's pattern with its value, percent-decoded
    /// (parameters whose value does not decode are left out).
    pub fn params(&self) -> Vec<(&str, Cow<'_, str>)> {
        self.endpoint
            .path()
            .as_str()
            .split('/')
            .filter_map(|seg| {
                let inner = seg.strip_prefix('{')?.strip_suffix('}')?;
                Some(inner.strip_prefix('*').unwrap_or(inner))
            })
            .filter_map(|name| Some((name, self.param(name)?)))
            .collect()
    }

    /// The principal's roles: the strings of the topology's roles claim.
    pub fn roles(&self) -> Vec<&str> {
        match claim_at(self.principal.claims().as_map(), self.roles_claim) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(s)) => vec![s.as_str()],
            _ => Vec::new(),
        }
    }
}

/// A rule as the file writes it, on one line: `{ role = "admin" }`, `{ all = [...] }`.
///
/// ```
/// use dharma_core::model::Rule;
///
/// let rule = Rule::any([Rule::role("admin"), Rule::claim("sub").equals_param("id")]);
/// assert_eq!(
///     rule.to_string(),
///     r#"{ any = [{ role = "admin" }, { claim = "sub", equals_param = "id" }] }"#
/// );
/// ```
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, name: &str, rules: &[Rule]| {
            write!(f, "{{ {name} = [")?;
            for (i, rule) in rules.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{rule}")?;
            }
            f.write_str("] }")
        };
        match self {
            Self::Scope(scope) => write!(f, "{{ scope = {:?} }}", scope.as_str()),
            Self::Role(role) => write!(f, "{{ role = {role:?} }}"),
            Self::Claim { path, test } => {
                write!(f, "{{ claim = {path:?}, ")?;
                match test {
                    ClaimTest::Exists => f.write_str("exists = true")?,
                    ClaimTest::Equals(v) => write!(f, "equals = {v}")?,
                    ClaimTest::Contains(v) => write!(f, "contains = {v}")?,
                    ClaimTest::OneOf(vs) => {
                        f.write_str("one_of = [")?;
                        for (i, v) in vs.iter().enumerate() {
                            if i > 0 {
                                f.write_str(", ")?;
                            }
                            write!(f, "{v}")?;
                        }
                        f.write_str("]")?;
                    }
                    ClaimTest::EqualsParam(p) => write!(f, "equals_param = {p:?}")?,
                }
                f.write_str(" }")
            }
            Self::Kind(kind) => write!(f, "{{ kind = {:?} }}", kind.as_str()),
            Self::FromDomain(domain) => write!(f, "{{ from_domain = {domain:?} }}"),
            Self::Lane(lane) => write!(f, "{{ lane = {:?} }}", lane.as_str()),
            Self::All(rules) => list(f, "all", rules),
            Self::Any(rules) => list(f, "any", rules),
            Self::Not(rule) => write!(f, "{{ not = {rule} }}"),
            Self::Authorizer(name) => write!(f, "{{ authorizer = {name:?} }}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{
        Claims,
        enforcer::Authorizers,
        model::{Domain, Topology},
    };

    fn topology() -> Topology {
        Topology::builder()
            .domain(Domain::builder("d").access("m"))
            .endpoint(Endpoint::boundary("d", "/users/{id}/files/{*rest}"))
            .build()
            .unwrap()
    }

    fn check(
        rule: &Rule,
        claims: serde_json::Value,
        kind: IdentityKind,
        path: &str,
        lane: Lane,
    ) -> bool {
        let topology = topology();
        let principal = Identity::new(kind, claims["sub"].as_str().unwrap_or("x"))
            .with_claims(Claims::from_json(&claims.to_string()).unwrap());
        let identities = [principal.clone()];
        let request = AuthorizationRequest {
            principal: &principal,
            identities: &identities,
            endpoint: &topology.endpoints()[0],
            method: &http::Method::GET,
            path,
            lane,
            roles_claim: "realm_access.roles",
            authorizers: &Authorizers::new(),
        };
        rule.check(&request).is_ok()
    }

    const USER: IdentityKind = IdentityKind::EndUser;
    const PATH: &str = "/users/alice/files/a/b";

    #[test]
    fn leaves() {
        let c =
            json!({"sub": "alice", "realm_access": {"roles": ["support"]}, "n": 7, "tags": ["x"]});
        let yes = |r: Rule| check(&r, c.clone(), USER, PATH, Lane::Access);
        assert!(yes(Rule::role("support")) && !yes(Rule::role("admin")));
        assert!(yes(Rule::claim("realm_access.roles").contains("support")));
        assert!(yes(Rule::claim("n").one_of([6, 7])) && !yes(Rule::claim("n").one_of([1])));
        assert!(yes(Rule::claim("tags").exists()) && !yes(Rule::claim("nope").exists()));
        assert!(yes(Rule::claim("sub").equals_param("id")));
        assert!(yes(Rule::kind(USER)) && !yes(Rule::kind(IdentityKind::Workload)));
        assert!(yes(Rule::lane(Lane::Access)) && !yes(Rule::lane(Lane::Trust)));
        assert!(!yes(Rule::scope("s").unwrap()), "no scope claim");
        assert!(!yes(Rule::from_domain("outer")));
    }

    #[test]
    fn combinators() {
        let c = json!({"sub": "alice", "n": 7});
        let yes = |r: Rule| check(&r, c.clone(), USER, PATH, Lane::Access);
        let t = Rule::claim("n").equals(7);
        let f = Rule::claim("n").equals(8);
        assert!(yes(Rule::all([t.clone(), t.clone()])) && !yes(Rule::all([t.clone(), f.clone()])));
        assert!(yes(Rule::any([f.clone(), t.clone()])) && !yes(Rule::any([f.clone()])));
        assert!(yes(Rule::not(f.clone())) && !yes(Rule::not(t)));
        assert!(!yes(Rule::any([])), "an empty any holds nothing");
        assert!(!yes(Rule::authorizer("unregistered")), "fails closed");
    }

    #[test]
    fn path_parameters_are_decoded_and_numbers_compare_as_written() {
        let param = |path| {
            topology().endpoints()[0]
                .path()
                .param(path, "id")
                .map(|p| p.into_owned())
        };
        assert_eq!(
            param("/users/auth0%7C42/files/x").as_deref(),
            Some("auth0|42")
        );
        assert_eq!(param("/users/%ZZ/files/x"), None);
        assert_eq!(
            param("/users/%+1/files/x"),
            None,
            "two hexadecimal digits, no sign"
        );
        let rest = topology().endpoints()[0]
            .path()
            .param(PATH, "rest")
            .map(|p| p.into_owned());
        assert_eq!(rest.as_deref(), Some("a/b"));
        let c = json!({"sub": 42});
        assert!(check(
            &Rule::claim("sub").equals_param("id"),
            c.clone(),
            USER,
            "/users/42/files/x",
            Lane::Access
        ));
        assert!(!check(
            &Rule::claim("sub").equals_param("id"),
            c,
            USER,
            "/users/43/files/x",
            Lane::Access
        ));
    }

    #[test]
    fn from_domain_reads_spiffe_ids_of_authenticated_workloads() {
        let topology = topology();
        let run = |identity: Identity| {
            let identities = [identity.clone()];
            Rule::from_domain("outer.example").check(&AuthorizationRequest {
                principal: &identity,
                identities: &identities,
                endpoint: &topology.endpoints()[0],
                method: &http::Method::GET,
                path: PATH,
                lane: Lane::Trust,
                roles_claim: "roles",
                authorizers: &Authorizers::new(),
            })
        };
        let workload = |id: &str| Identity::new(IdentityKind::Workload, id);
        assert!(run(workload("spiffe://outer.example/gw")).is_ok());
        assert!(run(workload("spiffe://outer.example.evil/gw")).is_err());
        assert!(run(workload("spiffe://outer.example/gw").for_accountability(true)).is_err());
        assert!(run(Identity::new(IdentityKind::Domain, "outer.example")).is_ok());
    }
}
