//! Turning the core's denial into an axum response: the adapter's one translation.

use axum_core::{body::Body, response::Response};
use dharma_core::Denial;

/// The response for a denial: its status, headers (`WWW-Authenticate`, `Allow`, the
/// body's content type, `no-store`) and body.
pub fn denial_response(denial: &Denial) -> Response {
    let (status, headers, body) = denial.response_parts();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
