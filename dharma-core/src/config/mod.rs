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
//! // Offline: no network, file or secret is touched.
//! let topology = config.validate()?;
//! assert_eq!(topology.endpoints().len(), 1);
//! // Building the mechanisms makes the enforcer.
//! let loaded = config.load()?;
//! assert_eq!(loaded.enforcer().topology().endpoints().len(), 1);
//! # Ok::<(), dharma_core::config::ConfigError>(())
//! ```
//!
//! In a service, [`start`] loads a file, warms every mechanism up (signing keys are
//! fetched before the service reports ready) and starts their background work;
//! [`ConfigLoader::watch`] reloads the file when it changes (see [`Loaded::reload`]).
//!
//! Mechanism kinds and their keys:
//!
//! | `kind` | keys |
//! | --- | --- |
//! | `jwt` | `issuers` (`issuer`, or `issuer_template` with `{tenant}` and optional `tenants`; `jwks_uri` or `discovery = true`, `audiences`, `algorithms`), `audiences`, `leeway_seconds`, `require_type`, `require_claims`, `accept_scp_array`, `max_token_bytes`, `token_cache_capacity`, `require_certificate_binding`, `jwks` (cache policy) |
//! | `x5c_jwt` | `ca_file` or `ca_pem`, `max_intermediates`, `audiences`, `trust_domain`, `allow`, `bind` (`iss`, `sub`, `azp`), `pins`, `token_services`, `leeway_seconds`, `require_type` |
//! | `mtls` | `ca_file` or `ca_pem` or `trust_tls_layer = true`, `max_intermediates`, `trust_domain`, `allow` |
//! | `introspection` | `endpoint`, `client_id`, `client_secret` or `client_secret_env`, `client_auth` (`basic`, `post`), `audiences`, `issuer`, `max_ttl_seconds`, `inactive_ttl_seconds`, `timeout_ms` |
//! | `network` | `allow`, `allow_loopback`, `trusted_proxies`, `forwarded_header` (`x-forwarded-for`, `forwarded`) |
//! | `api_key` | `header`, `clients` (`client`, `sha256`) |
//! | `accountability_jwt` | `jwt` (the name of a `jwt` mechanism) |
//! | `all_of`, `any_of` | `mechanisms` (names, in order) |
//! | `custom` | none: register the verifier with [`ConfigLoader::mechanism`] |
//! | yours | register a [`MechanismKind`](crate::mechanism::MechanismKind) with [`ConfigLoader::kind`] |
//!
//! Endpoint keys: `domain`, `path`, `exposure` (`interior`, `boundary`,
//! `interior+boundary`, `public`), `name`, `methods`, `scopes`, `claims`,
//! `allow_identified`, `optional`, `rule` (see below), `one_time` (admit each token once: give the loader a
//! [`ReplayGuard`](crate::state::ReplayGuard) with [`ConfigLoader::replay_guard`]) and
//! `on_store_failure` (`closed`, the default, or `open`).
//!
//! Claim rules: a plain value means "equals"; `{ present = true }` and
//! `{ contains = value }` are the other forms.
//!
//! A `rule` is a table of one form ([`Rule`](crate::model::Rule)): `{ role = "admin" }`
//! (the claim `[enforcer] roles_claim` names, `roles` by default, dotted for nested objects);
//! `{ claim = "a.b", equals = v }` or `contains = v`, `one_of = [..]`, `exists = true`,
//! `equals_param = "id"` (the path parameter); `{ scope = "s" }`; `{ kind = "workload" }`
//! (`end_user`, `client_app`, `workload`, `domain`); `{ from_domain = "outer" }`;
//! `{ lane = "trust" }` (`access`, ...); `{ authorizer = "name" }` (registered in code with
//! [`EnforcerBuilder::authorizer`](crate::EnforcerBuilder::authorizer)); and
//! `{ all = [..] }`, `{ any = [..] }`, `{ not = {..} }`. Unknown keys are errors, and every error
//! names the key or item it is about.

mod kinds;
mod load;
mod policy;
#[cfg(test)]
mod rule_tests;
#[cfg(test)]
mod tests;
#[cfg(feature = "watch")]
mod watch;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

pub use load::{ConfigLoader, Loaded};

use self::{kinds::Kinds, policy::File};
use crate::{
    error::UnavailableError,
    mechanism::KindError,
    model::{Topology, TopologyError},
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
    /// A key of a mechanism table is unknown, has the wrong type or a wrong value.
    #[error("{key}: {message}")]
    Field {
        /// The full key, e.g. `mechanisms.org-jwt.leeway_seconds`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A mechanism's `kind` is missing or unknown.
    #[error("mechanisms.{key}: kind must be one of {known}")]
    Kind {
        /// The mechanism's key.
        key: String,
        /// The kinds the loader knows.
        known: String,
    },
    /// A mechanism refuses its settings.
    #[error("mechanisms.{key}: {source}")]
    Mechanism {
        /// The mechanism's key.
        key: String,
        /// Why.
        source: KindError,
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
        problem: String,
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
    /// A rule does not have one form.
    #[error("endpoints[{index}].rule: {problem}")]
    Rule {
        /// The endpoint's position.
        index: usize,
        /// What is wrong, and where in the rule.
        problem: String,
    },
    /// The domains and endpoints do not form a valid topology.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// A mechanism could not load what it needs (its signing keys) while warming up.
    #[error("mechanisms.{key}: {source}")]
    Unavailable {
        /// The mechanism's key.
        key: String,
        /// Why.
        source: UnavailableError,
    },
    /// Reloading from the file, or watching it, needs a configuration read from a file.
    #[error("the configuration was not read from a file")]
    NoFile,
    /// The file cannot be watched.
    #[error("cannot watch {path}: {message}")]
    Watch {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

impl ConfigError {
    /// A mechanism's error, with its keys made full.
    pub(crate) fn mechanism(key: &str, error: KindError) -> Self {
        let full = |at: &str| {
            if at.is_empty() {
                format!("mechanisms.{key}")
            } else {
                format!("mechanisms.{key}.{at}")
            }
        };
        match error {
            KindError::Setting { at, message } => Self::Field {
                key: full(&at),
                message,
            },
            KindError::Secret { at, var } => Self::Field {
                key: full(&at),
                message: format!("environment variable {var:?} is not set"),
            },
            KindError::Io { path, source } => Self::Io { path, source },
            other => Self::Mechanism {
                key: key.to_owned(),
                source: other,
            },
        }
    }

    /// The stable reason a refused reload is audited with.
    pub(crate) fn audit_reason(&self) -> &'static str {
        match self {
            Self::Io { .. } | Self::NoFile => "policy_unreadable",
            Self::Unavailable { .. } => "mechanism_unavailable",
            _ => "policy_invalid",
        }
    }
}

/// A parsed configuration file: the policy as data, serializable, checked offline with
/// [`validate`](Self::validate) and loaded with [`load`](Self::load) or a
/// [`loader`](Self::loader).
#[derive(Debug, Clone)]
pub struct Config {
    file: File,
    source: Option<PathBuf>,
    /// The SHA-256 of the file's bytes, when read from a file: a watcher reloads only
    /// what changed.
    digest: Option<[u8; 32]>,
}

impl Config {
    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            file: toml::from_str(text)?,
            source: None,
            digest: None,
        })
    }

    /// Reads and parses a file (and remembers it, for [`Loaded::reload`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        Self::from_bytes(path, read(path)?)
    }

    /// Parses the bytes read from `path`.
    fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self, ConfigError> {
        let digest = digest(&bytes);
        let text = String::from_utf8(bytes).map_err(|e| ConfigError::Io {
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        Ok(Self {
            source: Some(path.to_owned()),
            digest: Some(digest),
            ..Self::from_toml(&text)?
        })
    }

    /// The file it was read from.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The mechanisms the file declares, by name, with their settings as written (`kind`
    /// included): what tools read to describe a policy without building anything.
    pub fn mechanisms(&self) -> impl Iterator<Item = (&str, &toml::Table)> {
        self.file.mechanisms()
    }

    /// Writes the configuration back as TOML.
    pub fn to_toml(&self) -> String {
        // Every part of the file is a TOML value already; writing one cannot fail.
        toml::to_string(&self.file).unwrap_or_default()
    }

    /// Checks the whole file offline, with the built-in kinds: every mechanism's settings
    /// and references, every domain and endpoint. No network, file or secret is touched
    /// and nothing is built, so CI and tools can run it. A `custom` mechanism is taken on
    /// trust (its verifier is registered in code).
    pub fn validate(&self) -> Result<Topology, ConfigError> {
        self.file.validate(&Kinds::builtin(), &[])
    }

    /// Loads with default options (system clock, tracing audit, default HTTP client).
    pub fn load(self) -> Result<Loaded, ConfigError> {
        self.loader().load()
    }

    /// Starts loading with options: custom mechanisms and kinds, HTTP client, clock,
    /// audit sink, watching.
    pub fn loader(self) -> ConfigLoader {
        ConfigLoader::new(self)
    }
}

/// Loads the file at `path`, warms every mechanism up and starts their background work:
/// the one call a service needs. Keep the [`Loaded`] for as long as the service runs.
///
/// ```no_run
/// # async fn run() -> Result<(), dharma_core::config::ConfigError> {
/// let dharma = dharma_core::config::start("dharma.toml").await?;
/// let enforcer = dharma.enforcer().clone(); // hand it to an adapter
/// # let _ = enforcer; Ok(()) }
/// ```
pub async fn start(path: impl AsRef<Path>) -> Result<Loaded, ConfigError> {
    Config::from_file(path)?.loader().start().await
}

/// Reads a configuration file's bytes.
fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The SHA-256 of a configuration file's bytes.
fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

/// How an `Arc<str>` source names itself in policy audit events.
fn source_name(source: Option<&Path>) -> Arc<str> {
    source.map_or_else(|| "code".into(), |p| p.display().to_string().into())
}

#[cfg(feature = "watch")]
use watch::{Watcher, watch_file};

/// Stands in for the watcher when the `watch` feature is off.
#[cfg(not(feature = "watch"))]
#[derive(Debug)]
pub(crate) struct Watcher;

#[cfg(not(feature = "watch"))]
fn watch_file(shared: &Arc<load::Shared>) -> Result<Watcher, ConfigError> {
    Err(ConfigError::Watch {
        path: shared
            .source
            .as_ref()
            .map_or_else(String::new, |p| p.display().to_string()),
        message: "dharma-core was built without the watch feature".into(),
    })
}
