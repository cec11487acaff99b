//! Who can reach an endpoint, and through which mechanism: read from the policy alone.
//!
//! The callers are the outside client and the services of each domain. A domain's
//! services hold its trust mechanism's credential (they are inside it); the outside client
//! holds the credentials of the mechanisms that are no domain's trust mechanism and do not
//! ask for an internal network. An endpoint admits a caller on its interior lane if the
//! caller satisfies its domain's trust mechanism, and on its boundary lane if it satisfies
//! the access mechanism; so a parent domain's services reach a child's boundary when the
//! child's access mechanism is the parent's trust mechanism (a hierarchical endpoint).

use std::fmt;

use dharma_core::model::Endpoint;

use crate::policy::Policy;

/// A class of callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A client outside every domain.
    Outside,
    /// The services of a domain.
    Services(String),
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Outside => f.write_str("outside client"),
            Self::Services(domain) => write!(f, "{domain} services"),
        }
    }
}

/// How an endpoint admits a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A public endpoint: anyone.
    Public,
    /// On the interior lane, through the domain's trust mechanism.
    Interior(String),
    /// On the boundary lane, through the domain's access mechanism.
    Boundary(String),
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Public => f.write_str("public"),
            Self::Interior(m) => write!(f, "interior via {m}"),
            Self::Boundary(m) => write!(f, "boundary via {m}"),
        }
    }
}

/// Every caller class of the policy: the outside client, then each domain's services.
pub fn callers(policy: &Policy) -> Vec<Caller> {
    std::iter::once(Caller::Outside)
        .chain(
            policy
                .topology
                .domains()
                .iter()
                .map(|d| Caller::Services(d.name().as_str().to_owned())),
        )
        .collect()
}

/// The mechanism a lane of `endpoint` uses: (interior, boundary).
pub fn mechanisms(policy: &Policy, endpoint: &Endpoint) -> (Option<String>, Option<String>) {
    let Some(domain) = policy.topology.domain(endpoint.domain().as_str()) else {
        return (None, None);
    };
    let exposure = endpoint.exposure();
    let name = |m: Option<&dharma_core::names::MechanismName>| m.map(|m| m.as_str().to_owned());
    (
        name(domain.trust()).filter(|_| exposure.is_interior()),
        name(domain.access()).filter(|_| exposure.is_boundary()),
    )
}

/// How `caller` reaches `endpoint`, if it can.
pub fn route(policy: &Policy, endpoint: &Endpoint, caller: &Caller) -> Option<Route> {
    if endpoint.exposure().as_str() == "public" {
        return Some(Route::Public);
    }
    let (interior, boundary) = mechanisms(policy, endpoint);
    if let Some(m) = interior.filter(|m| satisfies(policy, caller, m, 0)) {
        return Some(Route::Interior(m));
    }
    boundary
        .filter(|m| satisfies(policy, caller, m, 0))
        .map(Route::Boundary)
}

/// Whether `caller` holds what `mechanism` asks for.
fn satisfies(policy: &Policy, caller: &Caller, mechanism: &str, depth: usize) -> bool {
    if depth > 8 {
        return false;
    }
    match policy.kind(mechanism) {
        Some("any_of") => policy
            .parts(mechanism)
            .iter()
            .any(|m| satisfies(policy, caller, m, depth + 1)),
        Some("all_of") => policy
            .parts(mechanism)
            .iter()
            .all(|m| satisfies(policy, caller, m, depth + 1)),
        // Carried for accountability: it admits nothing and refuses nothing by itself.
        Some("accountability_jwt") => true,
        _ => holds(policy, caller, mechanism, depth),
    }
}

/// Whether `caller` holds a credential of `mechanism` itself.
fn holds(policy: &Policy, caller: &Caller, mechanism: &str, depth: usize) -> bool {
    let trust_of = |domain: &dharma_core::model::Domain| {
        domain
            .trust()
            .is_some_and(|t| t.as_str() == mechanism || names(policy, t.as_str(), mechanism, depth))
    };
    match caller {
        Caller::Services(name) => policy.topology.domain(name).is_some_and(trust_of),
        Caller::Outside => {
            policy.kind(mechanism) != Some("network")
                && !policy.topology.domains().iter().any(trust_of)
        }
    }
}

/// Whether the combinator `outer` names `inner` (a domain trusting `any_of [a, b]` holds
/// `a` and `b`).
fn names(policy: &Policy, outer: &str, inner: &str, depth: usize) -> bool {
    depth < 8
        && policy
            .parts(outer)
            .iter()
            .any(|m| *m == inner || names(policy, m, inner, depth + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_tier_deployment_is_reached_as_the_model_says() {
        let policy = Policy::parse(include_str!("../../examples/three-tier/dharma.toml")).unwrap();
        let reach = |name: &str, caller: &Caller| {
            let endpoint = policy
                .topology
                .endpoints()
                .iter()
                .find(|e| e.name() == name)
                .unwrap();
            route(&policy, endpoint, caller).map(|r| r.to_string())
        };
        let outside = Caller::Outside;
        let outer = Caller::Services("outer".into());
        let inner = Caller::Services("inner".into());
        assert_eq!(
            reach("gateway.read-order", &outside).as_deref(),
            Some("boundary via client-token")
        );
        assert_eq!(reach("gateway.read-order", &outer), None);
        assert_eq!(reach("orders.get", &outside), None, "interior");
        assert_eq!(
            reach("orders.get", &outer).as_deref(),
            Some("interior via org-jwt")
        );
        // Hierarchical: inner's boundary takes outer's trust mechanism.
        assert_eq!(
            reach("ledger.record", &outer).as_deref(),
            Some("boundary via org-jwt")
        );
        assert_eq!(reach("ledger.record", &outside), None);
        assert_eq!(reach("inventory.reserve", &outer), None);
        assert_eq!(
            reach("inventory.reserve", &inner).as_deref(),
            Some("interior via inner-trust")
        );
        assert_eq!(
            reach("ledger.balance", &inner).as_deref(),
            Some("interior via inner-trust")
        );
        assert_eq!(reach("billing.health", &outside).as_deref(), Some("public"));
    }
}
