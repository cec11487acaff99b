//! tonic (gRPC) layer for [dharma](dharma_core): the same decisions as the HTTP adapters,
//! answered as gRPC statuses.
//!
//! Endpoints are gRPC methods (`/package.Service/Method`, always `POST`); the bearer token
//! travels in the `authorization` metadata; the peer address and, over TLS, the client's
//! certificate chain come from tonic's connection info. Denials map to
//! `UNAUTHENTICATED` (missing or invalid credentials), `PERMISSION_DENIED` (insufficient
//! scope or a refused caller), `INVALID_ARGUMENT` (malformed request), `UNIMPLEMENTED`
//! (undeclared method) and `UNAVAILABLE`, with fixed messages.
//!
//! ```
//! use std::sync::Arc;
//! use dharma_core::{Enforcer, mechanism::network::NetworkVerifier};
//! use dharma_core::model::{Domain, Endpoint, Topology};
//! use dharma_tonic::DharmaGrpcLayer;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let topology = Topology::builder()
//!     .domain(Domain::builder("inner").trust("inside"))
//!     .endpoint(Endpoint::interior("inner", "/ledger.Ledger/Append").methods(["POST"]))
//!     .build()?;
//! let inside = NetworkVerifier::builder().allow_loopback().build();
//! let enforcer = Enforcer::builder(topology).mechanism("inside", Arc::new(inside)).build()?;
//! let layer = DharmaGrpcLayer::new(enforcer);
//! let server = tonic::transport::Server::builder().layer(layer);
//! // server.add_service(LedgerServer::new(ledger)).serve(addr).await?;
//! # let _ = server; Ok(()) }
//! ```
//!
//! Handlers find the [`SecurityContext`](dharma_core::SecurityContext) in
//! `request.extensions()`, with the [`InboundToken`](dharma_core::InboundToken) the call was
//! admitted with (when a mechanism read one). Clients attach tokens with
//! [`BearerInterceptor`], or with `dharma_sts::propagate::PropagateLayer` when getting the
//! token needs I/O.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod layer;

pub use client::BearerInterceptor;
pub use layer::{DharmaGrpc, DharmaGrpcLayer, ResponseFuture, denial_status};
