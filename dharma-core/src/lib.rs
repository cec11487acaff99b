#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod audit;
pub mod clock;
pub mod config;
mod context;
mod enforcer;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod jose;
mod json;
pub mod jwks;
pub mod mechanism;
pub mod model;
pub mod names;
pub mod pki;
pub mod reject;
mod request;
pub mod state;
mod task;
pub mod transport;
mod util;

pub use context::{Assurance, Claims, Identity, IdentityKind, InboundToken, Lane, SecurityContext};
pub use enforcer::{Decision, Enforcer, EnforcerBuilder, Mechanisms, Permit, Snapshot};
pub use error::CredentialsError;
pub use error::Rejection;
pub use mechanism::{Authenticated, BranchOutcome, TokenVerifier, Verifier};
pub use model::Unmatched;
pub use reject::Denial;
pub use request::{PeerCertificates, RequestView};
pub use util::BoxFuture;
