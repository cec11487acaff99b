//! Cedar policies as a dharma [`Authorizer`]: the principal, action, resource and context
//! of a Cedar request are built from the request's security context and its endpoint,
//! and Cedar's own evaluator decides.
//!
//! | Cedar | built from |
//! | --- | --- |
//! | principal | `Dharma::EndUser`, `Dharma::ClientApp`, `Dharma::Workload` or `Dharma::Domain` (the principal's kind) named by its subject; attributes `issuer` (when there is one), `scopes` and `roles` (sets of strings) and `claims` (a record of the token's claims Cedar can hold: strings, booleans, integers, sets and records); a member of `Dharma::Role::"r"` for each role |
//! | action | `Dharma::Action::"GET"` (the request method) |
//! | resource | `Dharma::Endpoint` named by the endpoint's name, attributes `domain` and `path` (the pattern); a member of `Dharma::TrustDomain::"d"` |
//! | context | `path` (the request path), `lane` (`access`, `trust`, ...) and `params` (the path parameters, decoded) |
//!
//! ```
//! use std::sync::Arc;
//! use dharma_cedar::CedarAuthorizer;
//! use dharma_core::model::{Domain, Endpoint, Rule, Topology};
//!
//! let cedar = CedarAuthorizer::from_policies(r#"
//!     permit(principal in Dharma::Role::"admin", action, resource);
//!     permit(principal, action == Dharma::Action::"GET", resource)
//!         when { principal.claims has sub && context.params has id
//!                && principal.claims.sub == context.params.id };
//! "#)?;
//! let topology = Topology::builder()
//!     .domain(Domain::builder("outer").access("jwt"))
//!     .endpoint(Endpoint::boundary("outer", "/users/{id}").rule(Rule::authorizer("cedar")))
//!     .build()?;
//! # let _ = topology;
//! // Enforcer::builder(topology).authorizer("cedar", Arc::new(cedar)) ...
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

use std::{
    collections::{HashMap, HashSet},
    fmt,
    str::FromStr,
    sync::RwLock,
};

use cedar_policy::{
    Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet, Request,
    RestrictedExpression,
};
use dharma_core::{
    IdentityKind, Rejection,
    error::ForbiddenReason,
    model::{AuthorizationRequest, Authorizer},
};
use serde_json::Value;

/// Why policies cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CedarError {
    /// The policies do not parse.
    #[error("the Cedar policies do not parse: {0}")]
    Parse(String),
}

/// Decides requests with Cedar policies; see the [crate] documentation for what Cedar
/// sees. Register it with `EnforcerBuilder::authorizer` and name it in a rule.
pub struct CedarAuthorizer {
    policies: PolicySet,
    cedar: cedar_policy::Authorizer,
    /// Entity type names, parsed once (parsing one costs more than a policy evaluation's
    /// share of a request).
    types: Types,
    /// Each endpoint's resource entity (it depends on the endpoint only), by name and
    /// pattern.
    resources: RwLock<HashMap<(String, String), Entity>>,
}

/// The entity types this crate uses.
struct Types {
    end_user: EntityTypeName,
    client_app: EntityTypeName,
    workload: EntityTypeName,
    domain: EntityTypeName,
    role: EntityTypeName,
    action: EntityTypeName,
    endpoint: EntityTypeName,
    trust_domain: EntityTypeName,
}

impl Types {
    fn new() -> Result<Self, CedarError> {
        let name =
            |n: &str| EntityTypeName::from_str(n).map_err(|e| CedarError::Parse(e.to_string()));
        Ok(Self {
            end_user: name("Dharma::EndUser")?,
            client_app: name("Dharma::ClientApp")?,
            workload: name("Dharma::Workload")?,
            domain: name("Dharma::Domain")?,
            role: name("Dharma::Role")?,
            action: name("Dharma::Action")?,
            endpoint: name("Dharma::Endpoint")?,
            trust_domain: name("Dharma::TrustDomain")?,
        })
    }

    fn of(&self, kind: IdentityKind) -> &EntityTypeName {
        match kind {
            IdentityKind::EndUser => &self.end_user,
            IdentityKind::ClientApp => &self.client_app,
            IdentityKind::Workload => &self.workload,
            _ => &self.domain,
        }
    }
}

impl fmt::Debug for CedarAuthorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CedarAuthorizer")
            .field("policies", &self.policies.policies().count())
            .finish()
    }
}

fn uid(kind: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(kind.clone(), EntityId::new(id))
}

/// A JSON value as Cedar holds it; `None` for what Cedar cannot (nulls, fractions, numbers
/// out of range), which is left out.
fn cedar_value(value: &Value) -> Option<RestrictedExpression> {
    Some(match value {
        Value::String(s) => RestrictedExpression::new_string(s.clone()),
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::Number(n) => RestrictedExpression::new_long(n.as_i64()?),
        Value::Array(items) => RestrictedExpression::new_set(items.iter().filter_map(cedar_value)),
        Value::Object(map) => RestrictedExpression::new_record(
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), cedar_value(v)?))),
        )
        .ok()?,
        Value::Null => return None,
    })
}

fn strings<'a>(items: impl IntoIterator<Item = &'a str>) -> RestrictedExpression {
    RestrictedExpression::new_set(
        items
            .into_iter()
            .map(|s| RestrictedExpression::new_string(s.to_owned())),
    )
}

impl CedarAuthorizer {
    /// Policies in Cedar's syntax.
    pub fn from_policies(text: &str) -> Result<Self, CedarError> {
        let policies = PolicySet::from_str(text).map_err(|e| CedarError::Parse(e.to_string()))?;
        Ok(Self {
            policies,
            cedar: cedar_policy::Authorizer::new(),
            types: Types::new()?,
            resources: RwLock::new(HashMap::new()),
        })
    }

    /// The Cedar request and entities for a dharma request (public so that the cost of
    /// building them can be measured apart from Cedar's evaluation).
    pub fn cedar_request(
        &self,
        request: &AuthorizationRequest<'_>,
    ) -> Result<(Request, Entities), String> {
        let p = request.principal;
        let roles = request.roles();
        let t = &self.types;
        let role_uids: HashSet<EntityUid> = roles.iter().map(|r| uid(&t.role, r)).collect();
        let principal_uid = uid(t.of(p.kind()), p.subject());
        let mut attrs = HashMap::from([
            ("scopes".to_owned(), strings(p.claims().scopes())),
            ("roles".to_owned(), strings(roles.iter().copied())),
            (
                "claims".to_owned(),
                cedar_value(&Value::Object(p.claims().as_map().clone()))
                    .unwrap_or_else(|| RestrictedExpression::new_set([])),
            ),
        ]);
        if let Some(issuer) = p.issuer() {
            attrs.insert(
                "issuer".to_owned(),
                RestrictedExpression::new_string(issuer.as_str().to_owned()),
            );
        }
        let principal =
            Entity::new(principal_uid.clone(), attrs, role_uids).map_err(|e| e.to_string())?;
        let endpoint = request.endpoint;
        let resource = self.resource(endpoint)?;
        let resource_uid = resource.uid();
        let params =
            RestrictedExpression::new_record(request.params().into_iter().map(|(k, v)| {
                (
                    k.to_owned(),
                    RestrictedExpression::new_string(v.into_owned()),
                )
            }))
            .map_err(|e| e.to_string())?;
        let context = Context::from_pairs([
            (
                "path".to_owned(),
                RestrictedExpression::new_string(request.path.to_owned()),
            ),
            (
                "lane".to_owned(),
                RestrictedExpression::new_string(request.lane.as_str().to_owned()),
            ),
            ("params".to_owned(), params),
        ])
        .map_err(|e| e.to_string())?;
        let action = uid(&t.action, request.method.as_str());
        let cedar_request = Request::new(principal_uid, action, resource_uid, context, None)
            .map_err(|e| e.to_string())?;
        let entities =
            Entities::from_entities([principal, resource], None).map_err(|e| e.to_string())?;
        Ok((cedar_request, entities))
    }

    /// The resource entity of an endpoint, built once.
    fn resource(&self, endpoint: &dharma_core::model::Endpoint) -> Result<Entity, String> {
        let key = (
            endpoint.name().to_owned(),
            endpoint.path().as_str().to_owned(),
        );
        if let Some(entity) = self
            .resources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(entity.clone());
        }
        let domain = endpoint.domain().as_str();
        let entity = Entity::new(
            uid(&self.types.endpoint, endpoint.name()),
            HashMap::from([
                (
                    "domain".to_owned(),
                    RestrictedExpression::new_string(domain.to_owned()),
                ),
                (
                    "path".to_owned(),
                    RestrictedExpression::new_string(key.1.clone()),
                ),
            ]),
            HashSet::from([uid(&self.types.trust_domain, domain)]),
        )
        .map_err(|e| e.to_string())?;
        self.resources
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, entity.clone());
        Ok(entity)
    }

    /// Cedar's decision on a request built by [`cedar_request`](Self::cedar_request).
    pub fn decide(&self, request: &Request, entities: &Entities) -> Result<(), String> {
        let response = self.cedar.is_authorized(request, &self.policies, entities);
        match response.decision() {
            Decision::Allow => Ok(()),
            Decision::Deny => {
                let errors: Vec<String> = response
                    .diagnostics()
                    .errors()
                    .map(ToString::to_string)
                    .collect();
                Err(if errors.is_empty() {
                    "cedar: no policy permits the request, or one forbids it".to_owned()
                } else {
                    format!("cedar: denied; policies in error: {}", errors.join("; "))
                })
            }
        }
    }
}

impl Authorizer for CedarAuthorizer {
    fn authorize(&self, request: &AuthorizationRequest<'_>) -> Result<(), Rejection> {
        let refuse = |why: String| Rejection::from(ForbiddenReason::Authorizer(why));
        let (cedar_request, entities) = self
            .cedar_request(request)
            .map_err(|e| refuse(format!("cedar: cannot build the request: {e}")))?;
        self.decide(&cedar_request, &entities).map_err(refuse)
    }
}
