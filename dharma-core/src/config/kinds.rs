//! The registry of mechanism kinds the file's `kind` keys name: the built-in ones and
//! those users register, each behind one object-safe face.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::ConfigError;
use crate::mechanism::{
    BuildContext, Instance, KindError, MechanismKind, Reference,
    accountability::AccountabilityKind, api_key::ApiKeyKind, combine::CombinedKind,
    introspection::settings::IntrospectionKind, jwt::settings::JwtKind, mtls::settings::MtlsKind,
    network::settings::NetworkKind, x5c::settings::X5cKind,
};

/// The `kind` of mechanisms whose verifier is registered in code.
pub(super) const CUSTOM: &str = "custom";

/// One mechanism's settings, parsed by its kind.
pub(super) trait Parsed: Send + Sync {
    fn check(&self) -> Result<(), KindError>;
    fn references(&self) -> Vec<Reference<'_>>;
    fn reusable(&self) -> bool;
    fn build(&self, ctx: &BuildContext<'_>) -> Result<Instance, KindError>;
}

/// A kind, whatever its settings type.
trait Erased: Send + Sync {
    fn parse(&self, key: &str, table: &toml::Table) -> Result<Box<dyn Parsed>, ConfigError>;
}

struct Typed<K: MechanismKind> {
    kind: Arc<K>,
    settings: K::Settings,
}

impl<K: MechanismKind> Parsed for Typed<K> {
    fn check(&self) -> Result<(), KindError> {
        self.kind.check(&self.settings)
    }
    fn references(&self) -> Vec<Reference<'_>> {
        self.kind.references(&self.settings)
    }
    fn reusable(&self) -> bool {
        self.kind.reusable(&self.settings)
    }
    fn build(&self, ctx: &BuildContext<'_>) -> Result<Instance, KindError> {
        self.kind.build(&self.settings, ctx)
    }
}

struct ErasedKind<K>(Arc<K>);

impl<K: MechanismKind> Erased for ErasedKind<K> {
    fn parse(&self, key: &str, table: &toml::Table) -> Result<Box<dyn Parsed>, ConfigError> {
        Ok(Box::new(Typed {
            kind: self.0.clone(),
            settings: section::<K::Settings>(key, table)?,
        }))
    }
}

/// Deserializes a mechanism's table, naming the exact key of any error.
pub(super) fn section<T: DeserializeOwned>(
    key: &str,
    table: &toml::Table,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
        let path = e.path().to_string();
        ConfigError::Field {
            key: if path == "." {
                format!("mechanisms.{key}")
            } else {
                format!("mechanisms.{key}.{path}")
            },
            message: e
                .into_inner()
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        }
    })
}

/// The kinds a loader knows, in the order they were registered.
#[derive(Clone)]
pub(super) struct Kinds {
    kinds: Vec<(String, Arc<dyn Erased>)>,
}

impl std::fmt::Debug for Kinds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.kinds.iter().map(|(n, _)| n))
            .finish()
    }
}

impl Kinds {
    /// The built-in kinds.
    pub(super) fn builtin() -> Self {
        let mut kinds = Self { kinds: Vec::new() };
        kinds.register("jwt", JwtKind);
        kinds.register("x5c_jwt", X5cKind);
        kinds.register("introspection", IntrospectionKind);
        kinds.register("mtls", MtlsKind);
        kinds.register("network", NetworkKind);
        kinds.register("api_key", ApiKeyKind);
        kinds.register("accountability_jwt", AccountabilityKind);
        kinds.register("all_of", CombinedKind { all: true });
        kinds.register("any_of", CombinedKind { all: false });
        kinds
    }

    /// Adds (or replaces) a kind.
    pub(super) fn register<K: MechanismKind>(&mut self, name: &str, kind: K) {
        let erased: Arc<dyn Erased> = Arc::new(ErasedKind(Arc::new(kind)));
        match self.kinds.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = erased,
            None => self.kinds.push((name.to_owned(), erased)),
        }
    }

    /// Parses a table of kind `kind`; `None` if no such kind is registered.
    pub(super) fn parse(
        &self,
        kind: &str,
        key: &str,
        table: &toml::Table,
    ) -> Option<Result<Box<dyn Parsed>, ConfigError>> {
        self.kinds
            .iter()
            .find(|(n, _)| n == kind)
            .map(|(_, k)| k.parse(key, table))
    }

    /// Every kind name, `custom` last, comma-separated.
    pub(super) fn names(&self) -> String {
        let mut names: Vec<&str> = self.kinds.iter().map(|(n, _)| n.as_str()).collect();
        names.push(CUSTOM);
        names.join(", ")
    }
}
