//! What a reload swaps: a topology bound to live mechanism instances.

use std::{collections::BTreeMap, fmt, sync::Arc};

use crate::{
    mechanism::Verifier,
    model::{Topology, TopologyError, TopologyErrorKind},
};

/// Live mechanism instances by name: what a [`Topology`]'s mechanism names stand for.
///
/// Cloning shares the instances, so a reload that hands the same instance back keeps
/// its key set and verified tokens warm.
#[derive(Clone, Default)]
pub struct Mechanisms {
    by_name: BTreeMap<String, Arc<dyn Verifier>>,
}

impl fmt::Debug for Mechanisms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.by_name.iter()).finish()
    }
}

impl Mechanisms {
    /// No mechanisms.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the instance behind `name`.
    #[must_use]
    pub fn with(mut self, name: &str, verifier: Arc<dyn Verifier>) -> Self {
        self.insert(name, verifier);
        self
    }

    /// Adds (or replaces) the instance behind `name`, returning the one replaced.
    pub fn insert(&mut self, name: &str, verifier: Arc<dyn Verifier>) -> Option<Arc<dyn Verifier>> {
        self.by_name.insert(name.to_owned(), verifier)
    }

    /// The instance behind `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Verifier>> {
        self.by_name.get(name)
    }

    /// Every name and instance, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<dyn Verifier>)> {
        self.by_name.iter().map(|(n, v)| (n.as_str(), v))
    }
}

/// One policy in force: a topology bound to the instances of its mechanisms. A request
/// is decided on the snapshot that was current when its decision began, whatever
/// reloads happen meanwhile.
#[derive(Debug)]
pub struct Snapshot {
    pub(super) revision: u64,
    pub(super) topology: Arc<Topology>,
    /// The instance of each of `topology.mechanisms()`, in the same order.
    pub(super) verifiers: Vec<Arc<dyn Verifier>>,
}

impl Snapshot {
    /// Binds `topology` to `mechanisms`: every mechanism it names must be there.
    pub(super) fn bind(
        topology: Topology,
        mechanisms: &Mechanisms,
        revision: u64,
    ) -> Result<Self, TopologyError> {
        let verifiers = topology
            .mechanisms()
            .iter()
            .map(|name| {
                mechanisms.get(name.as_str()).cloned().ok_or_else(|| {
                    let user = topology
                        .domains()
                        .iter()
                        .find(|d| d.trust() == Some(name) || d.access() == Some(name))
                        .map_or_else(String::new, |d| d.name().to_string());
                    TopologyError::new(
                        format!("domain {user:?}"),
                        TopologyErrorKind::UnknownMechanism(name.to_string()),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            revision,
            topology: Arc::new(topology),
            verifiers,
        })
    }

    /// The revision: 1 for the policy the enforcer was built with, one more for each
    /// policy applied since.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The topology.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }
}
