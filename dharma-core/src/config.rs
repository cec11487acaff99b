//! The declarative configuration file (TOML): mechanisms, domains and endpoints, with the
//! same meaning as the builder API.
//!
//! ```
//! use dharma_core::config::Config;
//!
//! let config = Config::from_toml(r#"
//!     [enforcer]
//!     realm = "orders"
//!
//!     [mechanisms.org-jwt]
//!     kind = "jwt"
//!     require_type = ["at+jwt"]
//!
//!     [[mechanisms.org-jwt.issuers]]
//!     issuer = "https://idp.example"
//!     discovery = true
//!     audiences = ["orders-api"]
//!
//!     [[domains]]
//!     name = "outer"
//!     relation = "coarse-grained platform services"
//!     trust = "org-jwt"
//!     access = "org-jwt"
//!
//!     [[endpoints]]
//!     domain = "outer"
//!     path = "/orders/{id}"
//!     methods = ["GET"]
//!     exposure = "boundary"
//!     scopes = ["orders:read"]
//!     claims = { tenant = "acme" }
//! "#)?;
//! let loaded = config.load()?;
//! assert_eq!(loaded.enforcer().topology().endpoints().len(), 1);
//! # Ok::<(), dharma_core::config::ConfigError>(())
//! ```
//!
//! Claim rules: a plain value means "equals"; `{ present = true }` and
//! `{ contains = value }` are the other forms. Unknown keys are errors, and every error
//! names the key or item it is about.

use std::{collections::BTreeMap, path::Path, sync::Arc, time::Duration};

use serde::Deserialize;
use serde_json::Value;

use crate::{
    Enforcer,
    audit::AuditSink,
    clock::Clock,
    enforcer::Unmatched,
    jwks::{CachePolicy, HttpClient, KeySourceError, RefreshHandle},
    jwt::{Algorithm, IssuerSpec, JwtConfigError, JwtVerifier},
    model::{ClaimRule, Domain, Endpoint, Exposure, Topology, TopologyError},
    verifier::Verifier,
};

/// A configuration that cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key, or a value of the wrong type (the message gives the
    /// line, column and key).
    #[error("{0}")]
    Syntax(#[from] toml::de::Error),
    /// A mechanism's settings are inconsistent.
    #[error("mechanisms.{key}: {source}")]
    Mechanism {
        /// The mechanism's key.
        key: String,
        /// Why.
        source: JwtConfigError,
    },
    /// A `kind = "custom"` mechanism has settings: they belong to its code.
    #[error("mechanisms.{0}: a custom mechanism takes no settings besides kind")]
    CustomSettings(String),
    /// A mechanism is `kind = "custom"` but no verifier was registered under its name.
    #[error(
        "mechanisms.{0}: kind \"custom\" needs a verifier registered with ConfigLoader::mechanism"
    )]
    MissingCustom(String),
    /// An algorithm name is not supported.
    #[error("mechanisms.{key}.issuers[{index}].algorithms: unsupported algorithm {name:?}")]
    Algorithm {
        /// The mechanism's key.
        key: String,
        /// The issuer's position.
        index: usize,
        /// The name.
        name: String,
    },
    /// An issuer has both or neither of `jwks_uri` and `discovery`.
    #[error("mechanisms.{key}.issuers[{index}]: set exactly one of jwks_uri and discovery = true")]
    KeySource {
        /// The mechanism's key.
        key: String,
        /// The issuer's position.
        index: usize,
    },
    /// A claim rule is neither a value, `{ present = true }` nor `{ contains = .. }`.
    #[error(
        "endpoints[{index}].claims.{claim}: use a value, {{ present = true }} or {{ contains = value }}"
    )]
    ClaimRule {
        /// The endpoint's position.
        index: usize,
        /// The claim.
        claim: String,
    },
    /// The domains and endpoints do not form a valid topology.
    #[error(transparent)]
    Topology(#[from] TopologyError),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    enforcer: EnforcerSection,
    #[serde(default)]
    mechanisms: BTreeMap<String, MechanismSection>,
    #[serde(default)]
    domains: Vec<DomainSection>,
    #[serde(default)]
    endpoints: Vec<EndpointSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnforcerSection {
    #[serde(default)]
    unmatched: UnmatchedSetting,
    realm: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum UnmatchedSetting {
    #[default]
    Deny,
    Allow,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum MechanismKind {
    Jwt,
    Custom,
}

/// One table for every kind, so that TOML errors keep the exact key they are about.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MechanismSection {
    kind: MechanismKind,
    #[serde(default)]
    issuers: Vec<IssuerSection>,
    #[serde(default)]
    audiences: Vec<String>,
    leeway_seconds: Option<u64>,
    #[serde(default)]
    require_type: Vec<String>,
    #[serde(default)]
    require_claims: Vec<String>,
    max_token_bytes: Option<usize>,
    token_cache_capacity: Option<u64>,
    jwks: Option<JwksSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerSection {
    issuer: String,
    jwks_uri: Option<String>,
    #[serde(default)]
    discovery: bool,
    #[serde(default)]
    audiences: Vec<String>,
    algorithms: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwksSection {
    default_ttl_seconds: Option<u64>,
    min_ttl_seconds: Option<u64>,
    max_ttl_seconds: Option<u64>,
    min_refresh_interval_seconds: Option<u64>,
    stale_if_error_seconds: Option<u64>,
    fetch_timeout_ms: Option<u64>,
    max_response_bytes: Option<usize>,
    refresh_at_percent: Option<u8>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainSection {
    name: String,
    relation: Option<String>,
    parent: Option<String>,
    trust: Option<String>,
    access: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointSection {
    name: Option<String>,
    domain: String,
    path: String,
    #[serde(default)]
    methods: Vec<String>,
    exposure: ExposureSetting,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    claims: BTreeMap<String, toml::Value>,
    #[serde(default)]
    allow_identified: bool,
}

#[derive(Debug, Deserialize)]
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

/// A parsed configuration file, ready to be loaded with [`Config::loader`].
#[derive(Debug)]
pub struct Config {
    file: File,
}

impl Config {
    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            file: toml::from_str(text)?,
        })
    }

    /// Reads and parses a file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Loads with default options (system clock, tracing audit, default HTTP client).
    pub fn load(self) -> Result<Loaded, ConfigError> {
        self.loader().load()
    }

    /// Starts loading with options: custom mechanisms, HTTP client, clock, audit sink.
    pub fn loader(self) -> ConfigLoader {
        ConfigLoader {
            config: self,
            custom: Vec::new(),
            client: None,
            clock: None,
            audit: None,
        }
    }
}

/// Turns a [`Config`] into an [`Enforcer`], with what only code can provide.
#[must_use]
pub struct ConfigLoader {
    config: Config,
    custom: Vec<(String, Arc<dyn Verifier>)>,
    client: Option<Arc<dyn HttpClient>>,
    clock: Option<Arc<dyn Clock>>,
    audit: Option<Arc<dyn AuditSink>>,
}

impl std::fmt::Debug for ConfigLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigLoader")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ConfigLoader {
    /// Registers a verifier for a `kind = "custom"` mechanism (or one the file does not
    /// mention).
    pub fn mechanism(mut self, name: &str, verifier: Arc<dyn Verifier>) -> Self {
        self.custom.push((name.to_owned(), verifier));
        self
    }
    /// The HTTP client for key sets.
    pub fn http_client(mut self, client: Arc<dyn HttpClient>) -> Self {
        self.client = Some(client);
        self
    }
    /// The clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }
    /// The audit sink.
    pub fn audit(mut self, audit: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Builds the mechanisms, validates the topology and makes the enforcer.
    pub fn load(self) -> Result<Loaded, ConfigError> {
        let file = self.config.file;
        let mut topology = Topology::builder();
        let mut jwt = Vec::new();
        let in_file: Vec<String> = file.mechanisms.keys().cloned().collect();
        for (key, section) in file.mechanisms {
            let verifier: Arc<dyn Verifier> = match section.kind {
                MechanismKind::Jwt => {
                    let v = build_jwt(&key, section, self.client.clone(), self.clock.clone())?;
                    jwt.push((key.clone(), v.clone()));
                    Arc::new(v)
                }
                MechanismKind::Custom => {
                    if !section.is_bare() {
                        return Err(ConfigError::CustomSettings(key));
                    }
                    match self.custom.iter().find(|(n, _)| *n == key) {
                        Some((_, v)) => v.clone(),
                        None => return Err(ConfigError::MissingCustom(key)),
                    }
                }
            };
            topology = topology.mechanism(&key, verifier);
        }
        for (name, verifier) in &self.custom {
            if !in_file.contains(name) {
                topology = topology.mechanism(name, verifier.clone());
            }
        }
        for d in file.domains {
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
        for (index, e) in file.endpoints.into_iter().enumerate() {
            let exposure = match e.exposure {
                ExposureSetting::Interior => Exposure::Interior,
                ExposureSetting::Boundary => Exposure::Boundary,
                ExposureSetting::InteriorAndBoundary => Exposure::InteriorAndBoundary,
                ExposureSetting::Public => Exposure::Public,
            };
            let mut b = match exposure {
                Exposure::Interior => Endpoint::interior(&e.domain, &e.path),
                Exposure::InteriorAndBoundary => {
                    Endpoint::interior_and_boundary(&e.domain, &e.path)
                }
                Exposure::Public => Endpoint::public(&e.domain, &e.path),
                _ => Endpoint::boundary(&e.domain, &e.path),
            }
            .methods(&e.methods)
            .scopes(&e.scopes);
            if let Some(n) = &e.name {
                b = b.name(n);
            }
            if e.allow_identified {
                b = b.allow_identified();
            }
            for (claim, value) in e.claims {
                b = b.claim(
                    &claim,
                    claim_rule(value).ok_or(ConfigError::ClaimRule {
                        index,
                        claim: claim.clone(),
                    })?,
                );
            }
            topology = topology.endpoint(b);
        }
        let mut enforcer =
            Enforcer::builder(topology.build()?).unmatched(match file.enforcer.unmatched {
                UnmatchedSetting::Deny => Unmatched::Deny,
                UnmatchedSetting::Allow => Unmatched::Allow,
            });
        if let Some(realm) = &file.enforcer.realm {
            enforcer = enforcer.realm(realm);
        }
        if let Some(audit) = self.audit {
            enforcer = enforcer.audit(audit);
        }
        if let Some(clock) = self.clock {
            enforcer = enforcer.clock(clock);
        }
        Ok(Loaded {
            enforcer: enforcer.build(),
            jwt,
        })
    }
}

impl MechanismSection {
    fn is_bare(&self) -> bool {
        self.issuers.is_empty()
            && self.audiences.is_empty()
            && self.leeway_seconds.is_none()
            && self.require_type.is_empty()
            && self.require_claims.is_empty()
            && self.max_token_bytes.is_none()
            && self.token_cache_capacity.is_none()
            && self.jwks.is_none()
    }
}

fn build_jwt(
    key: &str,
    s: MechanismSection,
    client: Option<Arc<dyn HttpClient>>,
    clock: Option<Arc<dyn Clock>>,
) -> Result<JwtVerifier, ConfigError> {
    let mut b = JwtVerifier::builder();
    for (index, i) in s.issuers.into_iter().enumerate() {
        let mut spec = IssuerSpec::new(&i.issuer);
        spec = match (&i.jwks_uri, i.discovery) {
            (Some(uri), false) => spec.jwks_uri(uri),
            (None, true) => spec.discovery(),
            _ => {
                return Err(ConfigError::KeySource {
                    key: key.to_owned(),
                    index,
                });
            }
        };
        for a in &i.audiences {
            spec = spec.audience(a);
        }
        if let Some(names) = i.algorithms {
            let algs = names
                .iter()
                .map(|n| {
                    Algorithm::from_name(n).ok_or_else(|| ConfigError::Algorithm {
                        key: key.to_owned(),
                        index,
                        name: n.clone(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            spec = spec.algorithms(algs);
        }
        b = b.issuer(spec);
    }
    for a in &s.audiences {
        b = b.audience(a);
    }
    if let Some(l) = s.leeway_seconds {
        b = b.leeway(Duration::from_secs(l));
    }
    for t in &s.require_type {
        b = b.require_type(t);
    }
    for c in &s.require_claims {
        b = b.require_claim(c);
    }
    if let Some(m) = s.max_token_bytes {
        b = b.max_token_bytes(m);
    }
    if let Some(c) = s.token_cache_capacity {
        b = b.token_cache_capacity(c);
    }
    if let Some(j) = s.jwks {
        let mut p = CachePolicy::default();
        let secs = Duration::from_secs;
        if let Some(v) = j.default_ttl_seconds {
            p = p.default_ttl(secs(v));
        }
        if let Some(v) = j.min_ttl_seconds {
            p = p.min_ttl(secs(v));
        }
        if let Some(v) = j.max_ttl_seconds {
            p = p.max_ttl(secs(v));
        }
        if let Some(v) = j.min_refresh_interval_seconds {
            p = p.min_refresh_interval(secs(v));
        }
        if let Some(v) = j.stale_if_error_seconds {
            p = p.stale_if_error(secs(v));
        }
        if let Some(v) = j.fetch_timeout_ms {
            p = p.fetch_timeout(Duration::from_millis(v));
        }
        if let Some(v) = j.max_response_bytes {
            p = p.max_response_bytes(v);
        }
        if let Some(v) = j.refresh_at_percent {
            p = p.refresh_at_percent(v);
        }
        b = b.cache_policy(p);
    }
    if let Some(c) = client {
        b = b.http_client(c);
    }
    if let Some(c) = clock {
        b = b.clock(c);
    }
    b.build().map_err(|source| ConfigError::Mechanism {
        key: key.to_owned(),
        source,
    })
}

fn claim_rule(value: toml::Value) -> Option<ClaimRule> {
    if let toml::Value::Table(t) = &value {
        return match (t.len(), t.get("present"), t.get("contains")) {
            (1, Some(toml::Value::Boolean(true)), None) => Some(ClaimRule::Present),
            (1, None, Some(v)) => Some(ClaimRule::Contains(to_json(v.clone())?)),
            _ => None,
        };
    }
    Some(ClaimRule::Equals(to_json(value)?))
}

fn to_json(value: toml::Value) -> Option<Value> {
    serde_json::to_value(value).ok()
}

/// A loaded configuration: the enforcer and the JWT verifiers it built (to warm up and
/// refresh).
#[derive(Debug)]
pub struct Loaded {
    enforcer: Enforcer,
    jwt: Vec<(String, JwtVerifier)>,
}

impl Loaded {
    /// The enforcer to hand to an adapter.
    pub fn enforcer(&self) -> &Enforcer {
        &self.enforcer
    }

    /// A JWT mechanism by name.
    pub fn jwt(&self, name: &str) -> Option<&JwtVerifier> {
        self.jwt.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Loads every JWT mechanism's keys.
    pub async fn warm_up(&self) -> Result<(), KeySourceError> {
        for (_, v) in &self.jwt {
            v.warm_up().await?;
        }
        Ok(())
    }

    /// Starts background key refresh for every JWT mechanism.
    pub fn spawn_refresh(&self) -> Vec<RefreshHandle> {
        self.jwt.iter().map(|(_, v)| v.spawn_refresh()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [enforcer]
        unmatched = "deny"
        realm = "shop"

        [mechanisms.org-jwt]
        kind = "jwt"
        audiences = ["platform"]
        leeway_seconds = 10
        require_type = ["at+jwt"]
        require_claims = ["jti"]
        max_token_bytes = 4096
        token_cache_capacity = 100

        [[mechanisms.org-jwt.issuers]]
        issuer = "https://idp.example"
        jwks_uri = "https://idp.example/jwks"
        algorithms = ["RS256", "ES256"]

        [mechanisms.org-jwt.jwks]
        min_refresh_interval_seconds = 5
        stale_if_error_seconds = 60
        fetch_timeout_ms = 1500

        [mechanisms.network]
        kind = "custom"

        [[domains]]
        name = "outer"
        relation = "coarse-grained platform services"
        trust = "org-jwt"
        access = "org-jwt"

        [[domains]]
        name = "inner"
        parent = "outer"
        trust = "network"
        access = "org-jwt"

        [[endpoints]]
        domain = "outer"
        path = "/health"
        exposure = "public"

        [[endpoints]]
        name = "read order"
        domain = "outer"
        path = "/orders/{id}"
        methods = ["GET"]
        exposure = "boundary"
        scopes = ["orders:read"]
        claims = { tenant = "acme", groups = { contains = "buyers" }, email = { present = true } }

        [[endpoints]]
        domain = "inner"
        path = "/payments"
        methods = ["POST"]
        exposure = "interior+boundary"
    "#;

    #[derive(Debug)]
    struct Nobody;
    impl Verifier for Nobody {
        fn verify<'a>(
            &'a self,
            _: &'a crate::RequestView<'a>,
        ) -> crate::util::BoxFuture<'a, Result<crate::Authenticated, crate::Rejection>> {
            Box::pin(async { Err(crate::Rejection::MissingCredentials) })
        }
    }

    fn load(text: &str) -> Result<Loaded, ConfigError> {
        Config::from_toml(text)?
            .loader()
            .mechanism("network", Arc::new(Nobody))
            .load()
    }

    #[test]
    fn good_file_means_what_the_builder_means() {
        let loaded = load(GOOD).unwrap();
        let t = loaded.enforcer().topology();
        assert_eq!(t.domains().len(), 2);
        assert_eq!(
            t.domain("inner").unwrap().trust().unwrap().as_str(),
            "network"
        );
        let names: Vec<_> = t.endpoints().iter().map(|e| e.name()).collect();
        assert_eq!(names, ["* /health", "read order", "POST /payments"]);
        let order = &t.endpoints()[1];
        assert_eq!(order.exposure(), Exposure::Boundary);
        assert_eq!(order.requirements().scopes()[0].as_str(), "orders:read");
        let rules: Vec<_> = order
            .requirements()
            .claims()
            .iter()
            .map(|(n, r)| (n.to_string(), r.clone()))
            .collect();
        assert_eq!(
            rules,
            [
                ("email".to_owned(), ClaimRule::Present),
                ("groups".to_owned(), ClaimRule::Contains("buyers".into())),
                ("tenant".to_owned(), ClaimRule::Equals("acme".into())),
            ]
        );
        let payments = &t.endpoints()[2];
        assert_eq!(payments.exposure(), Exposure::InteriorAndBoundary);
        assert!(payments.is_hierarchical());
        assert!(loaded.jwt("org-jwt").is_some());

        // The same thing through the builder API.
        let built = Topology::builder()
            .mechanism("org-jwt", Arc::new(Nobody))
            .mechanism("network", Arc::new(Nobody))
            .domain(Domain::builder("outer").trust("org-jwt").access("org-jwt"))
            .domain(
                Domain::builder("inner")
                    .parent("outer")
                    .trust("network")
                    .access("org-jwt"),
            )
            .endpoint(Endpoint::public("outer", "/health"))
            .endpoint(
                Endpoint::boundary("outer", "/orders/{id}")
                    .name("read order")
                    .methods(["GET"])
                    .scopes(["orders:read"])
                    .claim("email", ClaimRule::Present)
                    .claim("groups", ClaimRule::Contains("buyers".into()))
                    .claim_equals("tenant", "acme"),
            )
            .endpoint(Endpoint::interior_and_boundary("inner", "/payments").methods(["POST"]))
            .build()
            .unwrap();
        for (a, b) in t.endpoints().iter().zip(built.endpoints()) {
            assert_eq!(a.name(), b.name());
            assert_eq!(a.exposure(), b.exposure());
            assert_eq!(a.requirements(), b.requirements());
            assert_eq!(a.is_hierarchical(), b.is_hierarchical());
            assert_eq!(a.methods(), b.methods());
        }
    }

    fn error(text: &str) -> String {
        load(text).unwrap_err().to_string()
    }

    fn with(replace: &str, by: &str) -> String {
        assert!(GOOD.contains(replace), "{replace}");
        GOOD.replacen(replace, by, 1)
    }

    #[test]
    fn errors_point_to_the_offending_key() {
        let e = error(&with("relation = \"coarse", "relashun = \"coarse"));
        assert!(
            e.contains("unknown field `relashun`") && e.contains("line"),
            "{e}"
        );
        let e = error(&with("exposure = \"boundary\"", "exposure = \"sideways\""));
        assert!(e.contains("sideways") && e.contains("exposure"), "{e}");
        let e = error(&with("leeway_seconds = 10", "leeway_seconds = \"ten\""));
        assert!(e.contains("leeway_seconds"), "{e}");
        let e = error(&with("kind = \"jwt\"", "kind = \"saml\""));
        assert!(e.contains("saml"), "{e}");
    }

    #[test]
    fn semantic_errors_name_the_item() {
        assert_eq!(
            error(&with("domain = \"inner\"", "domain = \"nowhere\"")),
            r#"endpoint "POST /payments": domain "nowhere" is not declared"#
        );
        assert_eq!(
            error(&with("parent = \"outer\"", "parent = \"outre\"")),
            r#"domain "inner": parent domain "outre" is not declared"#
        );
        assert_eq!(
            error(&with("audiences = [\"platform\"]", "")),
            r#"mechanisms.org-jwt: issuer "https://idp.example" has no audience"#
        );
        assert_eq!(
            error(&with(
                "jwks_uri = \"https://idp.example/jwks\"",
                "jwks_uri = \"https://idp.example/jwks\"\ndiscovery = true"
            )),
            "mechanisms.org-jwt.issuers[0]: set exactly one of jwks_uri and discovery = true"
        );
        assert_eq!(
            error(&with("\"RS256\", \"ES256\"", "\"RS256\", \"HS256\"")),
            r#"mechanisms.org-jwt.issuers[0].algorithms: unsupported algorithm "HS256""#
        );
        assert!(
            error(&with("https://idp.example/jwks", "http://idp.example/jwks"))
                .contains("plain http")
        );
        assert_eq!(
            error(&with(
                "email = { present = true }",
                "email = { present = true, extra = 1 }"
            )),
            "endpoints[1].claims.email: use a value, { present = true } or { contains = value }"
        );
        assert_eq!(
            error(&with(
                "min_refresh_interval_seconds = 5",
                "min_refresh_interval_seconds = 500"
            )),
            "mechanisms.org-jwt: invalid JWKS cache policy: min_ttl is shorter than min_refresh_interval"
        );
        assert_eq!(
            error(&with(
                "kind = \"custom\"",
                "kind = \"custom\"\nleeway_seconds = 1"
            )),
            "mechanisms.network: a custom mechanism takes no settings besides kind"
        );
        let e = Config::from_toml(GOOD)
            .unwrap()
            .load()
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("mechanisms.network: kind \"custom\" needs a verifier"),
            "{e}"
        );
        let e = Config::from_file("/nonexistent/dharma.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot read /nonexistent/dharma.toml"), "{e}");
    }
}
