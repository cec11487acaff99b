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

/// Records the client's TLS certificate chain for the connection, where the middleware
/// finds it. The one line a server adds: `HttpServer::new(..).on_connect(dharma_actix::on_connect)`
/// (with `bind_rustls_0_23`; needs this crate's `rustls` feature).
#[cfg(feature = "rustls")]
pub fn on_connect(connection: &dyn std::any::Any, data: &mut actix_web::dev::Extensions) {
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;
    if let Some(tls) = connection.downcast_ref::<Tls>()
        && let Some(chain) = tls.get_ref().1.peer_certificates()
    {
        let chain = chain.iter().map(|c| c.clone().into_owned()).collect();
        data.insert(dharma_core::PeerCertificates(chain));
    }
}
