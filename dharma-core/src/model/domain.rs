//! Trust domains: groups of services that talk to each other in a privileged way.
//!
//! ```
//! use dharma_core::model::Domain;
//!
//! let inner = Domain::builder("payments")
//!     .relation("fine-grained payment services on one network segment")
//!     .parent("outer")
//!     .trust("network")
//!     .access("org-jwt");
//! # let _ = inner;
//! ```

use crate::names::{DomainName, MechanismName};

/// A validated trust domain, part of a [`Topology`](super::Topology).
#[derive(Debug, Clone)]
pub struct Domain {
    pub(super) name: DomainName,
    pub(super) relation: Option<String>,
    pub(super) parent: Option<DomainName>,
    pub(super) trust: Option<MechanismName>,
    pub(super) access: Option<MechanismName>,
}

impl Domain {
    /// Starts declaring a domain.
    pub fn builder(name: &str) -> DomainBuilder {
        DomainBuilder {
            name: name.to_owned(),
            relation: None,
            parent: None,
            trust: None,
            access: None,
        }
    }

    /// Its name.
    pub fn name(&self) -> &DomainName {
        &self.name
    }
    /// Why its services are grouped (for reports and diagrams).
    pub fn relation(&self) -> Option<&str> {
        self.relation.as_deref()
    }
    /// The enclosing domain.
    pub fn parent(&self) -> Option<&DomainName> {
        self.parent.as_ref()
    }
    /// The mechanism that checks requests from inside (interior endpoints).
    pub fn trust(&self) -> Option<&MechanismName> {
        self.trust.as_ref()
    }
    /// The mechanism that checks requests from outside (boundary endpoints).
    pub fn access(&self) -> Option<&MechanismName> {
        self.access.as_ref()
    }
}

/// Declares a domain; validated when the [`Topology`](super::Topology) is built.
#[derive(Debug, Clone)]
#[must_use]
pub struct DomainBuilder {
    pub(super) name: String,
    pub(super) relation: Option<String>,
    pub(super) parent: Option<String>,
    pub(super) trust: Option<String>,
    pub(super) access: Option<String>,
}

impl DomainBuilder {
    /// Describes why these services form a domain.
    pub fn relation(mut self, relation: &str) -> Self {
        self.relation = Some(relation.to_owned());
        self
    }
    /// Nests the domain inside another.
    pub fn parent(mut self, parent: &str) -> Self {
        self.parent = Some(parent.to_owned());
        self
    }
    /// The registered mechanism that checks requests from inside the domain.
    pub fn trust(mut self, mechanism: &str) -> Self {
        self.trust = Some(mechanism.to_owned());
        self
    }
    /// The registered mechanism that checks requests from outside the domain.
    pub fn access(mut self, mechanism: &str) -> Self {
        self.access = Some(mechanism.to_owned());
        self
    }
}
