//! actix-web 4 adapter for dharma.
//!
//! This crate will hold an actix-web `Transform` middleware and extractors for the
//! [`dharma_core::SecurityContext`], built on the same [`dharma_core::Enforcer`] as
//! `dharma-axum`, so that a request gets the same decision, status code and
//! `WWW-Authenticate` challenge whichever framework serves it. It is not written yet:
//! use `dharma-axum` today.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
