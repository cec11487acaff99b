//! The token service's routes for actix-web.

use std::sync::Arc;

use actix_web::{
    HttpRequest, HttpResponse,
    http::header,
    web::{self, Payload, ServiceConfig},
};
use dharma_actix::Authorized;
use futures_util::StreamExt;

use crate::{TokenService, request::MAX_BODY, service::FormEndpoint};

/// Registers `POST /token`, `POST /revoke` (when the service
/// [revokes](TokenService::revokes)) and `GET /jwks.json` (see [`axum::routes`](crate::axum::routes)
/// for what they are); use it in a scope wrapped by dharma's middleware.
///
/// ```
/// # use std::sync::Arc;
/// # use dharma_core::jose::Algorithm;
/// # use dharma_sts::{ClientPolicy, Signer, SigningKey, TokenService};
/// # let signer = Arc::new(Signer::key_set(SigningKey::generate(Algorithm::Es256)?));
/// # let sts = Arc::new(TokenService::builder("https://sts.example", signer)
/// #     .client(ClientPolicy::new("spiffe://example.org/a").client_credentials().audience("b"))
/// #     .build()?);
/// let app = actix_web::App::new()
///     .service(actix_web::web::scope("/sts").configure(dharma_sts::actix::configure(sts)));
/// # let _ = app;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn configure(service: Arc<TokenService>) -> impl FnOnce(&mut ServiceConfig) {
    move |config| {
        let revokes = service.revokes();
        config
            .app_data(web::Data::from(service))
            .route("/token", web::post().to(token))
            .route("/jwks.json", web::get().to(jwks));
        if revokes {
            config.route("/revoke", web::post().to(revoke));
        }
    }
}

fn respond(response: http::Response<Vec<u8>>) -> HttpResponse {
    let (parts, body) = response.into_parts();
    let status = actix_web::http::StatusCode::from_u16(parts.status.as_u16())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::build(status);
    for (name, value) in &parts.headers {
        out.insert_header((name.as_str(), value.as_bytes()));
    }
    out.body(body)
}

/// Reads the body up to the limit; `None` when it is larger or the stream fails.
async fn read(mut payload: Payload) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.ok()?;
        if body.len() + chunk.len() > MAX_BODY {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

async fn form(
    endpoint: FormEndpoint,
    service: &TokenService,
    caller: &dharma_core::SecurityContext,
    request: &HttpRequest,
    payload: Payload,
) -> HttpResponse {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let body = read(payload).await;
    respond(
        service
            .answer(endpoint, caller, content_type, body.as_deref())
            .await,
    )
}

async fn token(
    service: web::Data<TokenService>,
    Authorized(caller): Authorized,
    request: HttpRequest,
    payload: Payload,
) -> HttpResponse {
    form(FormEndpoint::Token, &service, &caller, &request, payload).await
}

async fn revoke(
    service: web::Data<TokenService>,
    Authorized(caller): Authorized,
    request: HttpRequest,
    payload: Payload,
) -> HttpResponse {
    form(
        FormEndpoint::Revocation,
        &service,
        &caller,
        &request,
        payload,
    )
    .await
}

async fn jwks(service: web::Data<TokenService>) -> HttpResponse {
    respond(service.jwks_response())
}
