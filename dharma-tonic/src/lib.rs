//! tonic (gRPC) adapter for dharma.
//!
//! This crate will hold a tower layer for `tonic::transport::Server::builder().layer(..)`
//! that classifies gRPC methods (`/package.Service/Method`) as dharma endpoints, runs the
//! same [`dharma_core::Enforcer`] as the HTTP adapters and maps denials to gRPC statuses
//! (`UNAUTHENTICATED`, `PERMISSION_DENIED`, `UNAVAILABLE`), plus a client layer that
//! attaches tokens to outgoing calls. It is not written yet.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
