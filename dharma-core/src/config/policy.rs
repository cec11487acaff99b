//! The file as data: its sections, and the offline checks that turn it into a
//! [`Topology`] and an ordered list of mechanisms to build.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    ConfigError,
    kinds::{CUSTOM, Kinds, Parsed, section},
};
use crate::model::{ClaimRule, Domain, Endpoint, Rule, Topology, Unmatched};
use crate::state::FailMode;
use crate::{IdentityKind, Lane};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    #[serde(default)]
    enforcer: EnforcerSection,
    #[serde(default)]
    mechanisms: BTreeMap<String, toml::Table>,
    #[serde(default)]
    domains: Vec<DomainSection>,
    #[serde(default)]
    endpoints: Vec<EndpointSection>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct EnforcerSection {
    #[serde(default)]
    unmatched: UnmatchedSetting,
    #[serde(skip_serializing_if = "Option::is_none")]
    realm: Option<String>,
    #[serde(default)]
    preflight: PreflightSetting,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles_claim: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum PreflightSetting {
    #[default]
    Decide,
    Pass,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum UnmatchedSetting {
    #[default]
    Deny,
    Allow,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct DomainSection {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    relation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trust: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct EndpointSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    domain: String,
    path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    methods: Vec<String>,
    exposure: ExposureSetting,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    claims: BTreeMap<String, toml::Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    allow_identified: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    optional: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<RuleSection>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    one_time: bool,
    #[serde(default, skip_serializing_if = "is_closed")]
    on_store_failure: FailMode,
}

/// A rule as written: a table with exactly one form (see the module documentation).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RuleSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    all: Option<Vec<RuleSection>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    any: Option<Vec<RuleSection>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not: Option<Box<RuleSection>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    claim: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exists: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    equals: Option<toml::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contains: Option<toml::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    one_of: Option<Vec<toml::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    equals_param: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<KindSetting>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from_domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lane: Option<LaneSetting>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorizer: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
enum KindSetting {
    EndUser,
    ClientApp,
    Workload,
    Domain,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
enum LaneSetting {
    Trust,
    Access,
    Public,
    Anonymous,
}

impl RuleSection {
    /// The rule, or what is wrong with it (`at` says where, as `any[1].not`).
    fn to_rule(&self, at: &str) -> Result<Rule, String> {
        let problem = |what: &str| Err(format!("{at}: {what}"));
        let nested = |list: &[RuleSection], name: &str| {
            list.iter()
                .enumerate()
                .map(|(i, r)| r.to_rule(&format!("{at}.{name}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
        };
        let tests = [
            self.exists.is_some(),
            self.equals.is_some(),
            self.contains.is_some(),
            self.one_of.is_some(),
            self.equals_param.is_some(),
        ];
        let forms = [
            self.all.is_some(),
            self.any.is_some(),
            self.not.is_some(),
            self.scope.is_some(),
            self.role.is_some(),
            self.claim.is_some(),
            self.kind.is_some(),
            self.from_domain.is_some(),
            self.lane.is_some(),
            self.authorizer.is_some(),
        ];
        if forms.iter().filter(|f| **f).count() != 1 {
            return problem(
                "use exactly one of all, any, not, scope, role, claim, kind, from_domain, lane, authorizer",
            );
        }
        let test_count = tests.iter().filter(|t| **t).count();
        if self.claim.is_some() != (test_count == 1) || test_count > 1 {
            return problem(
                "a claim takes exactly one of exists, equals, contains, one_of, equals_param (and they need a claim)",
            );
        }
        let json =
            |v: &toml::Value| to_json(v).ok_or_else(|| format!("{at}: a value JSON cannot hold"));
        Ok(match self {
            Self {
                all: Some(list), ..
            } => Rule::all(nested(list, "all")?),
            Self {
                any: Some(list), ..
            } => Rule::any(nested(list, "any")?),
            Self {
                not: Some(rule), ..
            } => Rule::not(rule.to_rule(&format!("{at}.not"))?),
            Self { scope: Some(s), .. } => {
                Rule::scope(s).map_err(|e| format!("{at}.scope: {e}"))?
            }
            Self { role: Some(r), .. } => Rule::role(r),
            Self { kind: Some(k), .. } => Rule::kind(match k {
                KindSetting::EndUser => IdentityKind::EndUser,
                KindSetting::ClientApp => IdentityKind::ClientApp,
                KindSetting::Workload => IdentityKind::Workload,
                KindSetting::Domain => IdentityKind::Domain,
            }),
            Self {
                from_domain: Some(d),
                ..
            } => Rule::from_domain(d),
            Self { lane: Some(l), .. } => Rule::lane(match l {
                LaneSetting::Trust => Lane::Trust,
                LaneSetting::Access => Lane::Access,
                LaneSetting::Public => Lane::Public,
                LaneSetting::Anonymous => Lane::Anonymous,
            }),
            Self {
                authorizer: Some(a),
                ..
            } => Rule::authorizer(a),
            Self { claim: Some(c), .. } => {
                let claim = Rule::claim(c);
                match self {
                    Self {
                        exists: Some(true), ..
                    } => claim.exists(),
                    Self {
                        exists: Some(false),
                        ..
                    } => Rule::not(Rule::claim(c).exists()),
                    Self {
                        equals: Some(v), ..
                    } => claim.equals(json(v)?),
                    Self {
                        contains: Some(v), ..
                    } => claim.contains(json(v)?),
                    Self {
                        one_of: Some(vs), ..
                    } => claim.one_of(vs.iter().map(json).collect::<Result<Vec<_>, _>>()?),
                    Self {
                        equals_param: Some(p),
                        ..
                    } => claim.equals_param(p),
                    _ => return problem("a claim needs a test"),
                }
            }
            _ => return problem("a rule needs a form"),
        })
    }
}

fn is_closed(mode: &FailMode) -> bool {
    *mode == FailMode::Closed
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
enum ExposureSetting {
    #[serde(rename = "interior")]
    Interior,
    #[serde(rename = "boundary")]
    Boundary,
    #[serde(rename = "interior+boundary")]
    InteriorAndBoundary,
    #[serde(rename = "public")]
    Public,
}

/// One `[mechanisms.NAME]` table, parsed and checked offline.
pub(super) struct Declared {
    pub(super) key: String,
    pub(super) kind: String,
    /// The table as written (`kind` included): a reload compares it to reuse instances.
    pub(super) table: toml::Table,
    /// `None` for `custom`, whose verifier comes from code.
    pub(super) parsed: Option<Box<dyn Parsed>>,
}

impl Declared {
    pub(super) fn references(&self) -> Vec<&str> {
        self.parsed
            .as_ref()
            .map(|p| p.references().iter().map(|r| r.name).collect())
            .unwrap_or_default()
    }
}

/// What the offline checks produce: the topology, and the mechanisms in build order
/// (each after those it names).
pub(super) struct Checked {
    pub(super) topology: Topology,
    pub(super) mechanisms: Vec<Declared>,
}

impl File {
    pub(super) fn mechanisms(&self) -> impl Iterator<Item = (&str, &toml::Table)> {
        self.mechanisms
            .iter()
            .map(|(name, table)| (name.as_str(), table))
    }

    /// Checks everything offline; `registered` are the names of verifiers given in code.
    pub(super) fn validate(
        &self,
        kinds: &Kinds,
        registered: &[String],
    ) -> Result<Topology, ConfigError> {
        self.check(kinds, registered).map(|c| c.topology)
    }

    pub(super) fn check(
        &self,
        kinds: &Kinds,
        registered: &[String],
    ) -> Result<Checked, ConfigError> {
        let mut declared = Vec::with_capacity(self.mechanisms.len());
        for (key, table) in &self.mechanisms {
            declared.push(declare(kinds, key, table)?);
        }
        let mechanisms = in_build_order(declared)?;
        let topology = self.topology()?;
        // Every mechanism a domain names is declared in the file or registered in code.
        for (domain, name) in topology.domains().iter().flat_map(|d| {
            d.trust()
                .into_iter()
                .chain(d.access())
                .map(move |m| (d.name(), m))
        }) {
            let known = mechanisms.iter().any(|m| m.key == name.as_str())
                || registered.iter().any(|r| r == name.as_str());
            if !known {
                return Err(ConfigError::Topology(crate::model::TopologyError::new(
                    format!("domain {:?}", domain.as_str()),
                    crate::model::TopologyErrorKind::UnknownMechanism(name.to_string()),
                )));
            }
        }
        Ok(Checked {
            topology,
            mechanisms,
        })
    }

    /// The domains and endpoints, validated.
    fn topology(&self) -> Result<Topology, ConfigError> {
        let mut topology = Topology::builder().unmatched(match self.enforcer.unmatched {
            UnmatchedSetting::Deny => Unmatched::Deny,
            UnmatchedSetting::Allow => Unmatched::Allow,
        });
        if let Some(claim) = &self.enforcer.roles_claim {
            topology = topology.roles_claim(claim);
        }
        if let Some(realm) = &self.enforcer.realm {
            topology = topology.realm(realm);
        }
        if let PreflightSetting::Pass = self.enforcer.preflight {
            topology = topology.pass_preflights();
        }
        for d in &self.domains {
            let mut b = Domain::builder(&d.name);
            if let Some(r) = &d.relation {
                b = b.relation(r);
            }
            if let Some(p) = &d.parent {
                b = b.parent(p);
            }
            if let Some(t) = &d.trust {
                b = b.trust(t);
            }
            if let Some(a) = &d.access {
                b = b.access(a);
            }
            topology = topology.domain(b);
        }
        for (index, e) in self.endpoints.iter().enumerate() {
            let mut b = match e.exposure {
                ExposureSetting::Interior => Endpoint::interior(&e.domain, &e.path),
                ExposureSetting::Boundary => Endpoint::boundary(&e.domain, &e.path),
                ExposureSetting::InteriorAndBoundary => {
                    Endpoint::interior_and_boundary(&e.domain, &e.path)
                }
                ExposureSetting::Public => Endpoint::public(&e.domain, &e.path),
            }
            .methods(&e.methods)
            .scopes(&e.scopes);
            if let Some(n) = &e.name {
                b = b.name(n);
            }
            if e.allow_identified {
                b = b.allow_identified();
            }
            if e.optional {
                b = b.optional();
            }
            if let Some(rule) = &e.rule {
                let rule = rule
                    .to_rule("rule")
                    .map_err(|problem| ConfigError::Rule { index, problem })?;
                b = b.rule(rule);
            }
            if e.one_time {
                b = b.one_time();
            }
            b = b.on_store_failure(e.on_store_failure);
            for (claim, value) in &e.claims {
                let rule = claim_rule(value).ok_or(ConfigError::ClaimRule {
                    index,
                    claim: claim.clone(),
                })?;
                b = b.claim(claim, rule);
            }
            topology = topology.endpoint(b);
        }
        Ok(topology.build()?)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomSection {}

/// Parses and checks one mechanism table.
fn declare(kinds: &Kinds, key: &str, table: &toml::Table) -> Result<Declared, ConfigError> {
    let unknown = || ConfigError::Kind {
        key: key.to_owned(),
        known: kinds.names(),
    };
    let Some(toml::Value::String(kind)) = table.get("kind") else {
        return Err(unknown());
    };
    let mut settings = table.clone();
    settings.remove("kind");
    let parsed = if kind == CUSTOM {
        section::<CustomSection>(key, &settings)?;
        None
    } else {
        let parsed = kinds.parse(kind, key, &settings).ok_or_else(unknown)??;
        parsed.check().map_err(|e| ConfigError::mechanism(key, e))?;
        Some(parsed)
    };
    Ok(Declared {
        key: key.to_owned(),
        kind: kind.clone(),
        table: table.clone(),
        parsed,
    })
}

/// Orders mechanisms so that each comes after those it names; refuses unknown names,
/// names of the wrong kind and cycles.
fn in_build_order(mut pending: Vec<Declared>) -> Result<Vec<Declared>, ConfigError> {
    for d in &pending {
        for r in d.parsed.iter().flat_map(|p| p.references()) {
            let problem = match pending.iter().find(|o| o.key == r.name) {
                None => "unknown mechanism".to_owned(),
                Some(other) => match r.kind {
                    Some(kind) if kind != other.kind => format!("not a {kind} mechanism"),
                    _ => continue,
                },
            };
            return Err(ConfigError::Reference {
                key: d.key.clone(),
                name: r.name.to_owned(),
                problem,
            });
        }
    }
    let mut ordered: Vec<Declared> = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready = pending.iter().position(|d| {
            d.references()
                .iter()
                .all(|r| ordered.iter().any(|o| o.key == *r))
        });
        let Some(index) = ready else {
            // Every one left names another one left: a cycle.
            let d = pending.remove(0);
            let name = d
                .references()
                .into_iter()
                .find(|r| !ordered.iter().any(|o| o.key == *r))
                .unwrap_or_default()
                .to_owned();
            return Err(ConfigError::Reference {
                key: d.key,
                name,
                problem: "cycle through".to_owned(),
            });
        };
        ordered.push(pending.remove(index));
    }
    Ok(ordered)
}

fn claim_rule(value: &toml::Value) -> Option<ClaimRule> {
    if let toml::Value::Table(t) = value {
        return match (t.len(), t.get("present"), t.get("contains")) {
            (1, Some(toml::Value::Boolean(true)), None) => Some(ClaimRule::Present),
            (1, None, Some(v)) => Some(ClaimRule::Contains(to_json(v)?)),
            _ => None,
        };
    }
    Some(ClaimRule::Equals(to_json(value)?))
}

fn to_json(value: &toml::Value) -> Option<Value> {
    serde_json::to_value(value).ok()
}
