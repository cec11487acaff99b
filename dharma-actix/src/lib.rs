//! actix-web 4 middleware for [dharma](dharma_core), with the same decisions, status codes,
//! `WWW-Authenticate` challenges and bodies as `dharma-axum`: every decision is made by the
//! core [`Enforcer`](dharma_core::Enforcer); this crate only translates.
//!
//! ```
//! use std::sync::Arc;
//! use actix_web::{App, HttpResponse, web};
//! use dharma_actix::{Authorized, DharmaMiddleware};
//! use dharma_core::{Enforcer, mechanism::network::NetworkVerifier};
//! use dharma_core::model::{Domain, Endpoint, Topology};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let topology = Topology::builder()
//!     .domain(Domain::builder("inner").trust("inside"))
//!     .endpoint(Endpoint::interior("inner", "/ledger").methods(["GET"]))
//!     .build()?;
//! let inside = NetworkVerifier::builder().allow_loopback().build();
//! // Build once, share with every worker.
//! let enforcer = Enforcer::builder(topology).mechanism("inside", Arc::new(inside)).build()?;
//!
//! async fn ledger(Authorized(ctx): Authorized) -> HttpResponse {
//!     HttpResponse::Ok().body(ctx.principal().map(|p| p.subject().to_owned()).unwrap_or_default())
//! }
//! let make_app = move || {
//!     App::new()
//!         .wrap(DharmaMiddleware::new(enforcer.clone()))
//!         .route("/ledger", web::get().to(ledger))
//! };
//! // HttpServer::new(make_app).bind(..)?.run()
//! # let _ = make_app; Ok(()) }
//! ```
//!
//! The peer address comes from the connection. For mutual TLS over rustls, enable the
//! `rustls` feature and add one line to the server, `.on_connect(dharma_actix::on_connect)`,
//! so the client's certificate chain reaches the mechanisms.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod extract;
mod middleware;
mod translate;

pub use extract::{Authorized, Claims, ExtractError};
pub use middleware::{DharmaMiddleware, DharmaService};
pub use translate::denial_response;
#[cfg(feature = "rustls")]
pub use translate::on_connect;
