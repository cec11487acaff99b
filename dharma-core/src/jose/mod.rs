//! JOSE: signature algorithms, JSON Web Keys and compact JWS, with no policy.
//!
//! The JWT and x5c mechanisms verify with it; it depends on nothing else in the crate
//! but the strict JSON reader, so a token service can share it.

mod alg;
pub(crate) mod b64;
mod jwk;
pub(crate) mod jws;
#[cfg(test)]
mod vectors;

pub use crate::error::JwkSetError;
pub use alg::{Algorithm, AlgorithmSet};
pub use jwk::{JwkError, VerifyingKey};
pub(crate) use jwk::{JwkSet, select_key};
