#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod apikey;
pub mod audit;
pub mod clock;
pub mod combine;
pub mod config;
mod context;
mod enforcer;
pub mod introspect;
mod json;
pub mod jwks;
pub mod jwt;
pub mod model;
pub mod mtls;
pub mod names;
pub mod network;
pub mod pki;
pub mod propagate;
pub mod reject;
mod request;
pub mod util;
mod verifier;

pub use context::{Assurance, Claims, Identity, IdentityKind, Lane, SecurityContext};
pub use enforcer::{Decision, Enforcer, EnforcerBuilder, Mechanisms, Permit, Snapshot};
pub use model::Unmatched;
pub use reject::{Denial, Rejection};
pub use request::{CredentialsError, PeerCertificates, RequestView};
pub use verifier::{Authenticated, BranchOutcome, Verifier};
