//! JWT bearer tokens: the access mechanism of OAuth2 resource servers and the trust
//! mechanism of domains whose services sign tokens with organisation-issued keys.
//!
//! The rules, all on by default:
//! - the key decides the algorithm: a header's `alg` must be one the key is for; `none`
//!   and HMAC are not representable; unknown `crit` is refused; `jku`, `x5u`, `jwk` and
//!   `x5c` are never followed or trusted;
//! - `iss` must be a configured issuer, `aud` one of its audiences, `exp` present and not
//!   passed, `nbf` and `iat` not in the future (with leeway);
//! - optional `typ` check (`at+jwt`, RFC 9068), required claims, a size limit;
//! - keys come from the [`jwks`](crate::jwks) cache; verified tokens are remembered until
//!   their `exp`, so a repeated token costs a hash and a lookup.

pub(crate) mod settings;

mod builder;
mod headers;
mod issuer;
mod verifier;

pub use crate::jose::{Algorithm, AlgorithmSet, JwkError, VerifyingKey};
pub use builder::{JwtConfigError, JwtVerifierBuilder};
pub use issuer::IssuerSpec;
pub use verifier::JwtVerifier;
