//! Between actix-web's types (its own `http` 0.2 re-export) and the core's (`http` 1).

use actix_web::{
    HttpResponse,
    http::{StatusCode, header::HeaderMap as ActixHeaders},
};
use dharma_core::Denial;

/// The request method in the core's type. `None` for a method `http` cannot represent.
pub(crate) fn method(m: &actix_web::http::Method) -> Option<http::Method> {
    http::Method::from_bytes(m.as_str().as_bytes()).ok()
}

/// The request headers in the core's type (header names and values are byte-identical).
pub(crate) fn headers(from: &ActixHeaders) -> http::HeaderMap {
    let mut out = http::HeaderMap::with_capacity(from.len());
    for (name, value) in from {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_str().as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            out.append(n, v);
        }
    }
    out
}

/// The response for a denial: the same status, headers and body as every adapter.
pub fn denial_response(denial: &Denial) -> HttpResponse {
    let status = StatusCode::from_u16(denial.status().as_u16()).unwrap_or(StatusCode::FORBIDDEN);
    let mut response = HttpResponse::build(status);
    for (name, value) in &denial.headers() {
        response.append_header((name.as_str(), value.as_bytes()));
    }
    response.body(denial.body())
}
