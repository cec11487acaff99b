//! A local secure token service (STS) for dharma.
//!
//! In the DHARMA three-tier deployment the outer domain's gateway exchanges a client's
//! opaque token for a JWT signed with an organisation-issued certificate, and inner
//! consumers get fresh JWTs from their domain's token service. This crate is that
//! service, framework-neutral at its core ([`TokenService`]) with ready routes for axum
//! and actix-web (features `axum`, `actix`):
//!
//! - **minting** short-lived JWTs (`typ` `at+jwt`) signed with a certificate whose chain
//!   travels in `x5c`, or with keys published as a JWK Set and rotated with an overlap
//!   ([`Signer`]);
//! - **RFC 8693 token exchange**, where subject and actor tokens are checked by dharma
//!   mechanisms (a JWT verifier, an x5c verifier, introspection) and exchanges only
//!   narrow (audience, scope, lifetime), with delegation recorded in `act`;
//! - the **client-credentials** grant for a client's own token;
//! - **revocation** (RFC 7009) of the tokens it issued, into a
//!   [`RevocationList`](dharma_core::state::RevocationList) that the enforcers accepting
//!   them consult;
//! - an **audit** event ([`TokenEvent`](dharma_core::audit::TokenEvent)) for every token
//!   issued and every request refused, naming tokens by id, never by value.
//!
//! The token endpoint is an endpoint of its domain: dharma authenticates the caller (mTLS,
//! an x5c JWT, network isolation) before the service sees the request, and each client's
//! [`ClientPolicy`] says what it may obtain. Errors are those of RFC 6749 §5.2 and RFC
//! 8693 §2.2.2 ([`OAuthError`]).
//!
//! ```
//! use std::sync::Arc;
//! use dharma_core::jose::Algorithm;
//! use dharma_sts::{ClientPolicy, Signer, SigningKey, TokenService};
//!
//! let signer = Arc::new(Signer::key_set(SigningKey::generate(Algorithm::Es256)?));
//! let sts = TokenService::builder("https://sts.inner.example", signer)
//!     .client(
//!         ClientPolicy::new("spiffe://example.org/ns/inner/sa/reports")
//!             .client_credentials()
//!             .audience("payments")
//!             .scope("payments:read"),
//!     )
//!     .build()?;
//! # let _ = sts;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;
mod error;
mod key;
mod mint;
mod narrow;
mod policy;
pub mod propagate;
mod request;
mod revoke;
mod service;
mod signer;

pub use error::{ErrorCode, OAuthError};
pub use key::{KeyError, SigningKey};
pub use mint::IssuedToken;
pub use policy::ClientPolicy;
pub use request::{
    ACCESS_TOKEN_TYPE, Grant, JWT_TYPE, MAX_BODY, PresentedToken, TOKEN_EXCHANGE, TokenRequest,
    TokenType,
};
pub use revoke::{REVOCATION_MARGIN, RevocationRequest, Revoked};
pub use service::{StsConfigError, TokenService, TokenServiceBuilder};
pub use signer::Signer;
