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
//!     [mechanisms.inside]
//!     kind = "network"
//!     allow = ["10.20.0.0/16"]
//!
//!     [[domains]]
//!     name = "outer"
//!     relation = "coarse-grained platform services"
//!     trust = "inside"
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
//! Mechanism kinds and their keys:
//!
//! | `kind` | keys |
//! | --- | --- |
//! | `jwt` | `issuers` (`issuer`, `jwks_uri` or `discovery = true`, `audiences`, `algorithms`), `audiences`, `leeway_seconds`, `require_type`, `require_claims`, `accept_scp_array`, `max_token_bytes`, `token_cache_capacity`, `require_certificate_binding`, `jwks` (cache policy) |
//! | `x5c_jwt` | `ca_file` or `ca_pem`, `max_intermediates`, `audiences`, `trust_domain`, `allow`, `bind` (`iss`, `sub`, `azp`), `pins`, `token_services`, `leeway_seconds`, `require_type` |
//! | `mtls` | `ca_file` or `ca_pem` or `trust_tls_layer = true`, `max_intermediates`, `trust_domain`, `allow` |
//! | `introspection` | `endpoint`, `client_id`, `client_secret` or `client_secret_env`, `client_auth` (`basic`, `post`), `audiences`, `issuer`, `max_ttl_seconds`, `inactive_ttl_seconds`, `timeout_ms` |
//! | `network` | `allow`, `allow_loopback`, `trusted_proxies`, `forwarded_header` (`x-forwarded-for`, `forwarded`) |
//! | `api_key` | `header`, `clients` (`client`, `sha256`) |
//! | `accountability_jwt` | `jwt` (the name of a `jwt` mechanism) |
//! | `all_of`, `any_of` | `mechanisms` (names, in order) |
//! | `custom` | none: register the verifier with [`ConfigLoader::mechanism`] |
//!
//! Claim rules: a plain value means "equals"; `{ present = true }` and
//! `{ contains = value }` are the other forms. Unknown keys are errors, and every error
//! names the key or item it is about.

mod mechanism;
#[cfg(test)]
mod tests;

use std::{collections::BTreeMap, path::Path, sync::Arc};

use serde::Deserialize;
use serde_json::Value;

use crate::{
    Enforcer, Mechanisms,
    audit::AuditSink,
    clock::Clock,
    jwks::{KeySourceError, RefreshHandle},
    mechanism::Verifier,
    mechanism::api_key::ApiKeyError,
    mechanism::introspection::IntrospectionConfigError,
    mechanism::jwt::{JwtConfigError, JwtVerifier},
    mechanism::network::NetworkError,
    model::Unmatched,
    model::{ClaimRule, Domain, Endpoint, Topology, TopologyError},
    transport::HttpClient,
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
    /// A key of a mechanism table is unknown or has the wrong type.
    #[error("{key}: {message}")]
    Field {
        /// The full key, e.g. `mechanisms.org-jwt.leeway_seconds`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A mechanism's `kind` is missing or unknown.
    #[error(
        "mechanisms.{0}: kind must be one of jwt, x5c_jwt, introspection, mtls, network, api_key, accountability_jwt, all_of, any_of, custom"
    )]
    Kind(String),
    /// A mechanism's settings are inconsistent.
    #[error("mechanisms.{key}: {source}")]
    Mechanism {
        /// The mechanism's key.
        key: String,
        /// Why.
        source: MechanismError,
    },
    /// A mechanism names another that does not exist (or is of the wrong kind), or
    /// mechanisms name each other in a cycle.
    #[error("mechanisms.{key}: {problem} {name:?}")]
    Reference {
        /// The mechanism's key.
        key: String,
        /// The name it refers to.
        name: String,
        /// `unknown mechanism`, `not a jwt mechanism`, `cycle through`.
        problem: &'static str,
    },
    /// `client_secret_env` names an environment variable that is not set.
    #[error("mechanisms.{key}.client_secret_env: environment variable {var:?} is not set")]
    Secret {
        /// The mechanism's key.
        key: String,
        /// The variable.
        var: String,
    },
    /// A mechanism is `kind = "custom"` but no verifier was registered under its name.
    #[error(
        "mechanisms.{0}: kind \"custom\" needs a verifier registered with ConfigLoader::mechanism"
    )]
    MissingCustom(String),
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

/// Why one mechanism's settings cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MechanismError {
    /// JWT settings.
    #[error(transparent)]
    Jwt(#[from] JwtConfigError),
    /// Introspection settings.
    #[error(transparent)]
    Introspection(#[from] IntrospectionConfigError),
    /// A network.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// API key settings.
    #[error(transparent)]
    ApiKey(#[from] ApiKeyError),
    /// Mutual-TLS settings.
    #[error(transparent)]
    Mtls(#[from] crate::mechanism::mtls::MtlsConfigError),
    /// x5c settings.
    #[error(transparent)]
    X5c(#[from] crate::mechanism::x5c::X5cConfigError),
    /// The CA bundle.
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    enforcer: EnforcerSection,
    #[serde(default)]
    mechanisms: BTreeMap<String, toml::Table>,
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
    /// The HTTP client for key sets and introspection.
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
        let context = mechanism::Context {
            client: self.client,
            clock: self.clock.clone(),
            custom: self.custom,
        };
        let built = mechanism::build_all(file.mechanisms, &context)?;
        let mut topology = Topology::builder().unmatched(match file.enforcer.unmatched {
            UnmatchedSetting::Deny => Unmatched::Deny,
            UnmatchedSetting::Allow => Unmatched::Allow,
        });
        if let Some(realm) = &file.enforcer.realm {
            topology = topology.realm(realm);
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
            for (claim, value) in e.claims {
                let rule = claim_rule(value).ok_or(ConfigError::ClaimRule {
                    index,
                    claim: claim.clone(),
                })?;
                b = b.claim(&claim, rule);
            }
            topology = topology.endpoint(b);
        }
        let mut mechanisms = Mechanisms::new();
        for (name, verifier) in &built.verifiers {
            mechanisms.insert(name, verifier.clone());
        }
        let mut enforcer = Enforcer::builder(topology.build()?).mechanisms(&mechanisms);
        if let Some(audit) = self.audit {
            enforcer = enforcer.audit(audit);
        }
        if let Some(clock) = self.clock {
            enforcer = enforcer.clock(clock);
        }
        Ok(Loaded {
            enforcer: enforcer.build()?,
            mechanisms,
            jwt: built.jwt,
        })
    }
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
    mechanisms: Mechanisms,
    jwt: Vec<(String, JwtVerifier)>,
}

impl Loaded {
    /// The enforcer to hand to an adapter.
    pub fn enforcer(&self) -> &Enforcer {
        &self.enforcer
    }

    /// The mechanism instances, by name.
    pub fn mechanisms(&self) -> &Mechanisms {
        &self.mechanisms
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
