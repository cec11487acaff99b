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

/// Decides `method path` with `token` as `Authorization: Bearer` at `enforcer`: `(200,
/// "allowed")`, or the denial's status and audit code.
pub async fn decide_bearer(
    enforcer: &dharma_core::Enforcer,
    method: http::Method,
    path: &str,
    token: &str,
) -> (u16, String) {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    match enforcer
        .decide(&dharma_core::RequestView::new(&method, path, &headers))
        .await
    {
        dharma_core::Decision::Allow(_) => (200, "allowed".into()),
        dharma_core::Decision::Deny(d) => (d.status().as_u16(), d.rejection().code().into()),
    }
}
