//! Turning the core's denial into an axum response: the adapter's one translation.

use axum_core::{body::Body, response::Response};
use dharma_core::Denial;

/// The response for a denial: its status, headers (`WWW-Authenticate`, JSON content type,
/// `no-store`) and fixed JSON body.
pub fn denial_response(denial: &Denial) -> Response {
    let mut response = Response::new(Body::from(denial.body()));
    *response.status_mut() = denial.status();
    *response.headers_mut() = denial.headers();
    response
}
