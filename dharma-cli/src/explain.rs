//! `dharma explain`: per endpoint, what the policy asks and who can reach it.

use std::fmt::Write;

use dharma_core::model::{ClaimRule, Endpoint};

use crate::{
    policy::Policy,
    reach::{callers, mechanisms, route},
};

/// The methods of an endpoint, or `*`.
pub(crate) fn methods(endpoint: &Endpoint) -> String {
    endpoint.methods().map_or_else(
        || "*".to_owned(),
        |ms| ms.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(","),
    )
}

/// A mechanism with its kind, expanded when it combines others.
fn describe(policy: &Policy, mechanism: &str) -> String {
    let kind = policy.kind(mechanism).unwrap_or("custom");
    let parts = policy.parts(mechanism);
    if parts.is_empty() {
        match policy
            .table(mechanism)
            .and_then(|t| t.get("jwt"))
            .and_then(toml::Value::as_str)
        {
            Some(jwt) => format!("{mechanism} ({kind} of {jwt})"),
            None => format!("{mechanism} ({kind})"),
        }
    } else {
        let parts: Vec<String> = parts.iter().map(|m| describe(policy, m)).collect();
        format!("{mechanism} ({kind}: {})", parts.join(", "))
    }
}

/// What the endpoint requires beyond its mechanism, one item per entry.
pub(crate) fn requirements(endpoint: &Endpoint) -> Vec<String> {
    let r = endpoint.requirements();
    let mut out = Vec::new();
    if !r.scopes().is_empty() {
        let scopes: Vec<&str> = r.scopes().iter().map(|s| s.as_str()).collect();
        out.push(format!("scopes {}", scopes.join(" ")));
    }
    for (claim, rule) in r.claims() {
        out.push(match rule {
            ClaimRule::Present => format!("claim {claim} present"),
            ClaimRule::Equals(v) => format!("claim {claim} = {v}"),
            ClaimRule::Contains(v) => format!("claim {claim} contains {v}"),
            _ => format!("claim {claim}"),
        });
    }
    out.extend(r.rules().iter().map(|rule| format!("rule {rule}")));
    if endpoint.one_time() {
        out.push(format!(
            "one-time tokens (store failure: {:?})",
            endpoint.on_store_failure()
        ));
    }
    if endpoint.credentials_optional() {
        out.push("credentials optional (none: anonymous)".into());
    }
    if endpoint.allows_identified() {
        out.push("identified callers allowed".into());
    }
    out
}

/// The explanation of every endpoint of the policy, as text.
pub fn explain(policy: &Policy) -> String {
    let mut out = String::new();
    let callers = callers(policy);
    for endpoint in policy.topology.endpoints() {
        let domain = policy.topology.domain(endpoint.domain().as_str());
        let _ = writeln!(
            out,
            "{} {}  ({})",
            methods(endpoint),
            endpoint.path().as_str(),
            endpoint.name()
        );
        let relation = domain
            .and_then(|d| d.relation())
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        let parent = domain
            .and_then(|d| d.parent())
            .map(|p| format!(", inside {p}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  domain      {}{relation}{parent}",
            endpoint.domain().as_str()
        );
        let hierarchical = if endpoint.is_hierarchical() {
            " (hierarchical: its access mechanism is the parent's trust mechanism)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  exposure    {}{hierarchical}",
            endpoint.exposure().as_str()
        );
        let (interior, boundary) = mechanisms(policy, endpoint);
        let lanes: Vec<String> = [("trust", interior), ("access", boundary)]
            .into_iter()
            .filter_map(|(lane, m)| m.map(|m| format!("{lane}: {}", describe(policy, &m))))
            .collect();
        let lanes = if lanes.is_empty() {
            "none".to_owned()
        } else {
            lanes.join(", then ")
        };
        let _ = writeln!(out, "  mechanisms  {lanes}");
        let requires = requirements(endpoint);
        if !requires.is_empty() {
            let _ = writeln!(out, "  requires    {}", requires.join("; "));
        }
        let reach: Vec<String> = callers
            .iter()
            .map(|c| match route(policy, endpoint, c) {
                Some(r) => format!("{c}: yes ({r})"),
                None => format!("{c}: no"),
            })
            .collect();
        let _ = writeln!(out, "  callers     {}", reach.join("; "));
        out.push('\n');
    }
    out
}
