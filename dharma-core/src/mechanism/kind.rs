//! Mechanism kinds: how a `[mechanisms.NAME]` table of the configuration file becomes a
//! live instance.
//!
//! Each built-in mechanism owns its kind (its settings type and factory) in its module;
//! users register their own with [`ConfigLoader::kind`](crate::config::ConfigLoader::kind).
//!
//! ```
//! use std::sync::Arc;
//! use dharma_core::{Authenticated, BoxFuture, Identity, IdentityKind, Rejection, RequestView, Verifier};
//! use dharma_core::config::Config;
//! use dharma_core::mechanism::{BuildContext, Instance, KindError, MechanismKind};
//!
//! /// Trusts a fixed header value (a sketch: use a real mechanism in production).
//! #[derive(Debug)]
//! struct SharedSecret { header: http::HeaderName, value: String }
//!
//! impl Verifier for SharedSecret {
//!     fn verify<'a>(&'a self, req: &'a RequestView<'a>) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
//!         let ok = req.headers().get(&self.header).is_some_and(|v| v.as_bytes() == self.value.as_bytes());
//!         Box::pin(async move {
//!             if ok {
//!                 Ok(Authenticated::new(vec![Identity::new(IdentityKind::Workload, "peer")]))
//!             } else {
//!                 Err(Rejection::MissingCredentials)
//!             }
//!         })
//!     }
//! }
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct SharedSecretSettings { header: String, value: String }
//!
//! struct SharedSecretKind;
//!
//! impl MechanismKind for SharedSecretKind {
//!     type Settings = SharedSecretSettings;
//!
//!     fn check(&self, s: &SharedSecretSettings) -> Result<(), KindError> {
//!         http::HeaderName::try_from(s.header.as_str())
//!             .map(drop)
//!             .map_err(|_| KindError::setting("header", "not a header name"))
//!     }
//!
//!     fn build(&self, s: &SharedSecretSettings, _: &BuildContext<'_>) -> Result<Instance, KindError> {
//!         let header = http::HeaderName::try_from(s.header.as_str())
//!             .map_err(|_| KindError::setting("header", "not a header name"))?;
//!         Ok(Instance::new(SharedSecret { header, value: s.value.clone() }))
//!     }
//! }
//!
//! let config = Config::from_toml(r#"
//!     [mechanisms.mesh]
//!     kind = "shared_secret"
//!     header = "x-mesh"
//!     value = "s3cret"
//!
//!     [[domains]]
//!     name = "inner"
//!     trust = "mesh"
//! "#)?;
//! let loaded = config.loader().kind("shared_secret", SharedSecretKind).load()?;
//! assert!(loaded.mechanisms().get("mesh").is_some());
//! # Ok::<(), dharma_core::config::ConfigError>(())
//! ```

use std::{any::Any, error::Error as StdError, fmt, sync::Arc};

use serde::de::DeserializeOwned;

use super::Verifier;
use crate::{clock::Clock, transport::HttpClient};

/// One kind of mechanism: the settings its table holds and how to build an instance.
pub trait MechanismKind: Send + Sync + 'static {
    /// The table's keys, `kind` excepted. Use `#[serde(deny_unknown_fields)]` so that a
    /// misspelt key is an error that names it.
    type Settings: DeserializeOwned + Send + Sync + 'static;

    /// Checks what can be checked offline: names, URLs, numbers that must fit together.
    /// Must not touch the network, files or secrets (`dharma check` runs it in CI).
    fn check(&self, _settings: &Self::Settings) -> Result<(), KindError> {
        Ok(())
    }

    /// The other mechanisms the settings name. They are built first and reached through
    /// [`BuildContext::instance`]; an unknown name or a cycle is an error of the file.
    fn references<'s>(&self, _settings: &'s Self::Settings) -> Vec<Reference<'s>> {
        Vec::new()
    }

    /// Whether an instance may be kept when a reload brings the same settings again
    /// (keeping warm keys and caches). Say no when the settings name a file whose
    /// content may change under the same name.
    fn reusable(&self, _settings: &Self::Settings) -> bool {
        true
    }

    /// Builds the instance; may read files and secrets the settings name.
    fn build(
        &self,
        settings: &Self::Settings,
        ctx: &BuildContext<'_>,
    ) -> Result<Instance, KindError>;
}

/// A mechanism named by another one's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reference<'s> {
    /// Its name.
    pub name: &'s str,
    /// The kind it must be, if only one will do.
    pub kind: Option<&'static str>,
}

impl<'s> Reference<'s> {
    /// Any mechanism called `name`.
    pub fn any(name: &'s str) -> Self {
        Self { name, kind: None }
    }
    /// A mechanism called `name` of kind `kind`.
    pub fn of_kind(name: &'s str, kind: &'static str) -> Self {
        Self {
            name,
            kind: Some(kind),
        }
    }
}

/// A live mechanism: the verifier the enforcer calls, and the same value as its own
/// type for mechanisms built on top of it (the accountability reader on a JWT verifier).
#[derive(Clone)]
pub struct Instance {
    verifier: Arc<dyn Verifier>,
    typed: Arc<dyn Any + Send + Sync>,
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.verifier.fmt(f)
    }
}

impl Instance {
    /// Wraps a verifier.
    pub fn new<V: Verifier + 'static>(verifier: V) -> Self {
        let shared = Arc::new(verifier);
        Self {
            verifier: shared.clone(),
            typed: shared,
        }
    }

    /// Wraps a verifier registered in code (its type is not known).
    pub(crate) fn from_dyn(verifier: Arc<dyn Verifier>) -> Self {
        Self {
            typed: Arc::new(verifier.clone()),
            verifier,
        }
    }

    /// The verifier.
    pub fn verifier(&self) -> &Arc<dyn Verifier> {
        &self.verifier
    }

    /// The instance as `V`, if that is its type.
    pub fn downcast<V: Verifier + 'static>(&self) -> Option<Arc<V>> {
        self.typed.clone().downcast::<V>().ok()
    }
}

/// What building a mechanism may use besides its settings.
pub struct BuildContext<'a> {
    pub(crate) name: &'a str,
    pub(crate) client: Option<&'a Arc<dyn HttpClient>>,
    pub(crate) clock: Option<&'a Arc<dyn Clock>>,
    pub(crate) instances: &'a dyn Fn(&str) -> Option<Instance>,
}

impl fmt::Debug for BuildContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildContext")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl BuildContext<'_> {
    /// The mechanism's name in the file.
    pub fn name(&self) -> &str {
        self.name
    }
    /// The HTTP client given to the loader, if any (otherwise mechanisms use their default).
    pub fn http_client(&self) -> Option<Arc<dyn HttpClient>> {
        self.client.cloned()
    }
    /// The clock given to the loader, if any.
    pub fn clock(&self) -> Option<Arc<dyn Clock>> {
        self.clock.cloned()
    }
    /// A mechanism the settings named in [`MechanismKind::references`].
    pub fn instance(&self, name: &str) -> Option<Instance> {
        (self.instances)(name)
    }
}

/// Why a mechanism's settings cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KindError {
    /// A setting is wrong; `at` is its key under the mechanism's table (empty for the
    /// table as a whole).
    #[error("{at}: {message}")]
    Setting {
        /// The key, e.g. `issuers[0].algorithms`.
        at: String,
        /// What is wrong.
        message: String,
    },
    /// A file the settings name cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// An environment variable the settings name is not set.
    #[error("{at}: environment variable {var:?} is not set")]
    Secret {
        /// The key that names it.
        at: String,
        /// The variable.
        var: String,
    },
    /// The mechanism refuses the settings (its builder's error).
    #[error(transparent)]
    Invalid(Box<dyn StdError + Send + Sync>),
}

impl KindError {
    /// A wrong setting at `at` (a key under the mechanism's table, or `""`).
    pub fn setting(at: &str, message: impl Into<String>) -> Self {
        Self::Setting {
            at: at.to_owned(),
            message: message.into(),
        }
    }

    /// The mechanism's own error.
    pub fn invalid(error: impl StdError + Send + Sync + 'static) -> Self {
        Self::Invalid(Box::new(error))
    }
}

/// Reads a file the settings name.
pub(crate) fn read_file(path: &str) -> Result<String, KindError> {
    std::fs::read_to_string(path).map_err(|source| KindError::Io {
        path: path.to_owned(),
        source,
    })
}
