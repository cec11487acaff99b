//! The one trait every trust and access mechanism implements.
//!
//! A mechanism looks at the [`RequestView`] and either names the identities it
//! authenticated or refuses with a [`Rejection`]. It is async (it may need keys or an
//! introspection answer), object-safe and shared, so library users can write their own
//! and register them next to the built-in ones.
//!
//! ```
//! use dharma_core::{Authenticated, Identity, IdentityKind, RequestView, Verifier};
//! use dharma_core::reject::Rejection;
//! use dharma_core::util::BoxFuture;
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

use std::fmt::Debug;

use crate::{context::Identity, reject::Rejection, request::RequestView, util::BoxFuture};

/// A trust or access mechanism.
pub trait Verifier: Send + Sync + Debug {
    /// Authenticates the request, or refuses it.
    fn verify<'a>(
        &'a self,
        request: &'a RequestView<'a>,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>>;
}

/// What a mechanism established: one or more identities.
#[derive(Debug, Clone)]
pub struct Authenticated {
    identities: Vec<Identity>,
}

impl Authenticated {
    /// The identities, principal first.
    pub fn new(identities: Vec<Identity>) -> Self {
        Self { identities }
    }

    /// The identities.
    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    pub(crate) fn into_identities(self) -> Vec<Identity> {
        self.identities
    }
}
