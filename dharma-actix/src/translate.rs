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

/// An actix-web resource pattern in axum's syntax, which the core reads: `{id}` and
/// `{id:regex}` become `{id}`, `{tail}*` and `{tail:.*}` become `{*tail}`. A pattern
/// with a segment that mixes text and parameters becomes one the core never agrees
/// with, so such a route is refused rather than guessed at.
pub(crate) fn route(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let rest = pattern.strip_prefix('/').unwrap_or(pattern);
    for segment in rest.split('/') {
        out.push('/');
        let (body, starred) = match segment.strip_suffix('*') {
            Some(body) => (body, true),
            None => (segment, false),
        };
        match body.strip_prefix('{').and_then(|b| b.strip_suffix('}')) {
            Some(inner) if !inner.contains(['{', '}']) => {
                let (name, regex) = inner.split_once(':').unwrap_or((inner, ""));
                if starred || regex == ".*" || regex == ".+" {
                    out.push_str("{*");
                } else {
                    out.push('{');
                }
                out.push_str(name);
                out.push('}');
            }
            _ if segment.contains(['{', '}']) => out.push_str("{}%"),
            _ => out.push_str(segment),
        }
    }
    out
}

/// The response for a denial: the same status, headers and body as every adapter.
pub fn denial_response(denial: &Denial) -> HttpResponse {
    let (status, headers, body) = denial.response_parts();
    let status = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::FORBIDDEN);
    let mut response = HttpResponse::build(status);
    for (name, value) in &headers {
        response.append_header((name.as_str(), value.as_bytes()));
    }
    response.body(body)
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

#[cfg(test)]
mod tests {
    #[test]
    fn actix_patterns_in_axum_syntax() {
        for (actix, axum) in [
            ("/users/{id}", "/users/{id}"),
            ("/users/{id:\\d+}", "/users/{id}"),
            ("/files/{tail}*", "/files/{*tail}"),
            ("/files/{tail:.*}", "/files/{*tail}"),
            ("/api/v1/", "/api/v1/"),
            ("/", "/"),
        ] {
            assert_eq!(super::route(actix), axum, "{actix}");
        }
        // Text beside a parameter is not a pattern the core can agree with.
        assert_eq!(super::route("/f/{name}.txt"), "/f/{}%");
    }
}
