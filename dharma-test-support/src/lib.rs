//! Shared test fixtures for dharma's tests, examples and benches: real keys generated
//! at run time, token minting (including deliberately broken tokens), a JWKS server on
//! 127.0.0.1 that counts its requests, a small HTTP client, and the launcher of the real
//! OpenID provider (`oidc-provider` from npm).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test fixtures fail loudly"
)]

pub mod client;
pub mod conformance;
pub mod idp;
pub mod keys;
pub mod pki;
pub mod redis;
pub mod server;
pub mod tls;

pub use keys::{TestKey, b64, b64_decode, tamper};

/// Seconds since the Unix epoch, now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
