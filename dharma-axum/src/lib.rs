//! axum and tower middleware for [dharma](dharma_core): in-process enforcement of trust
//! domains, endpoint exposure and endpoint requirements.
//!
//! The [`DharmaLayer`] classifies each request to its declared endpoint, runs the
//! endpoint's domain mechanism through the core [`Enforcer`](dharma_core::Enforcer),
//! puts the [`SecurityContext`](dharma_core::SecurityContext) into the request
//! extensions and answers refusals itself (RFC 6750 challenges, `404` for undeclared
//! endpoints, `503` when keys are unavailable). Handlers read the caller with the
//! [`Authorized`] or [`Claims`] extractors; when a mechanism read the request's bearer
//! token, it is there too as an [`InboundToken`](dharma_core::InboundToken), for calls
//! onward (`dharma_sts::propagate`).
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use dharma_axum::{Authorized, DharmaLayer};
//! use dharma_core::{Enforcer, mechanism::jwt::{IssuerSpec, JwtVerifier}};
//! use dharma_core::model::{Domain, Endpoint, Topology};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let jwt = JwtVerifier::builder()
//!     .issuer(IssuerSpec::new("https://idp.example").discovery().audience("orders-api"))
//!     .build()?;
//! let topology = Topology::builder()
//!     .domain(Domain::builder("outer").access("oauth"))
//!     .endpoint(Endpoint::boundary("outer", "/orders/{id}").methods(["GET"]).scopes(["orders:read"]))
//!     .build()?;
//!
//! async fn order(Authorized(ctx): Authorized) -> String {
//!     format!("hello {}", ctx.principal().map(|p| p.subject()).unwrap_or("?"))
//! }
//!
//! let app: Router = Router::new()
//!     .route("/orders/{id}", get(order))
//!     .layer(DharmaLayer::new(Enforcer::builder(topology).mechanism("oauth", Arc::new(jwt)).build()?));
//! # let _ = app; Ok(()) }
//! ```
//!
//! To give mechanisms the peer address, serve the app with
//! `into_make_service_with_connect_info::<SocketAddr>()`. For mutual TLS, the server's
//! accept loop inserts the client's chain into each request as
//! [`PeerCertificates`](dharma_core::PeerCertificates) (rustls:
//! `connection.peer_certificates()`), where the layer finds it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod extract;
mod layer;
mod response;
mod service;

pub use extract::{Authorized, Claims, ExtractError};
pub use layer::DharmaLayer;
pub use response::denial_response;
pub use service::{Dharma, ResponseFuture};
