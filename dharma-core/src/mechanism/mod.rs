//! Trust and access mechanisms: the one trait they implement, and the built-in ones.
//!
//! | module | mechanism |
//! | --- | --- |
//! | [`jwt`] | JWT bearer tokens from issuers with JWK Sets (OAuth2, OpenID Connect) |
//! | [`x5c`] | JWTs signed with organisation-issued certificates carried in `x5c` |
//! | [`mtls`] | client certificates of mutual TLS |
//! | [`network`] | the caller's network (isolation), with trusted proxies |
//! | [`introspection`] | opaque tokens through RFC 7662 introspection |
//! | [`api_key`] | API keys that identify (not authenticate) a client |
//! | [`accountability`] | a propagated JWT that names the end user, for the audit trail only |
//! | [`combine`] | all of / any of several mechanisms |
//!
//! A mechanism looks at the [`RequestView`] and either names the identities it
//! authenticated or refuses with a [`Rejection`]. It is async (it may need keys or an
//! introspection answer), object-safe and shared, so library users can write their own
//! and register them next to the built-in ones.
//!
//! ```
//! use dharma_core::{Authenticated, Identity, IdentityKind, RequestView, Verifier};
//! use dharma_core::reject::Rejection;
//! use dharma_core::BoxFuture;
//!
//! /// Trusts requests that come from the loopback interface.
//! #[derive(Debug)]
//! struct Loopback;
//!
//! impl Verifier for Loopback {
//!     fn verify<'a>(&'a self, req: &'a RequestView<'a>) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
//!         let result = match req.peer() {
//!             Some(peer) if peer.ip().is_loopback() => Ok(Authenticated::new(vec![
//!                 Identity::new(IdentityKind::Workload, peer.to_string()),
//!             ])),
//!             _ => Err(Rejection::MissingCredentials),
//!         };
//!         Box::pin(async move { result })
//!     }
//! }
//! ```

pub mod accountability;
pub mod api_key;
mod cache;
pub mod combine;
pub mod introspection;
pub mod jwt;
mod kind;
pub mod mtls;
pub mod network;
pub(crate) mod token;
pub mod x5c;

use std::fmt::Debug;

pub use crate::{error::BranchOutcome, task::BackgroundTask};
pub use kind::{BuildContext, Instance, KindError, MechanismKind, Reference};

use crate::{
    context::Identity,
    error::{Rejection, UnavailableError},
    request::RequestView,
    util::BoxFuture,
};

/// A trust or access mechanism.
pub trait Verifier: Send + Sync + Debug {
    /// Authenticates the request, or refuses it.
    fn verify<'a>(
        &'a self,
        request: &'a RequestView<'a>,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>>;

    /// Loads what the mechanism needs before the service reports ready (signing keys).
    /// By default there is nothing to load.
    fn warm_up(&self) -> BoxFuture<'_, Result<(), UnavailableError>> {
        Box::pin(async { Ok(()) })
    }

    /// Starts the mechanism's background work (refreshing keys before they expire) on
    /// the current Tokio runtime. The work stops when the task is dropped. By default
    /// there is none.
    ///
    /// A mechanism built on others (a combination, the accountability reader) leaves
    /// theirs to them: the loader warms up and starts every named mechanism once.
    fn spawn_background(&self) -> Option<BackgroundTask> {
        None
    }
}

/// A mechanism that can check a token handed to it outside a request: the subject and
/// actor tokens of a token exchange, which arrive in a form body rather than in the
/// `Authorization` header. The JWT, x5c and introspection mechanisms implement it, with
/// the same checks, caches and identities as for a bearer token.
pub trait TokenVerifier: Send + Sync + Debug {
    /// Verifies `token` as if it were the request's bearer token.
    fn verify_token<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>>;
}

/// What a mechanism established: one or more identities.
#[derive(Debug, Clone)]
pub struct Authenticated {
    identities: Vec<Identity>,
    branches: Vec<BranchOutcome>,
}

impl Authenticated {
    /// The identities, principal first.
    pub fn new(identities: Vec<Identity>) -> Self {
        Self {
            identities,
            branches: Vec::new(),
        }
    }

    /// Records the outcomes of the branches of a combined mechanism.
    #[must_use]
    pub fn with_branches(mut self, branches: Vec<BranchOutcome>) -> Self {
        self.branches = branches;
        self
    }

    /// The identities.
    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    /// The outcomes of the branches of a combined mechanism (empty otherwise).
    pub fn branches(&self) -> &[BranchOutcome] {
        &self.branches
    }

    /// The identities, each naming `mechanism` unless it names one already, and the
    /// branch outcomes.
    pub(crate) fn into_parts(self, mechanism: &str) -> (Vec<Identity>, Vec<BranchOutcome>) {
        let identities = self
            .identities
            .into_iter()
            .map(|mut i| {
                i.name_mechanism(mechanism);
                i
            })
            .collect();
        (identities, self.branches)
    }
}
