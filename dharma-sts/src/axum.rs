//! The token service's routes for axum.

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    extract::State,
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use dharma_axum::Authorized;

use crate::{TokenService, request::MAX_BODY, service::FormEndpoint};

/// `POST /token` (the token endpoint), `POST /revoke` (the RFC 7009 revocation endpoint,
/// when the service [revokes](TokenService::revokes)) and `GET /jwks.json` (the signer's
/// public keys), to be nested where the service lives and put behind dharma's layer: the
/// form endpoints read the client from the security context dharma sets (a route outside
/// the layer answers `500`, never a token).
///
/// ```
/// use std::sync::Arc;
/// use dharma_core::jose::Algorithm;
/// use dharma_sts::{ClientPolicy, Signer, SigningKey, TokenService};
///
/// let signer = Arc::new(Signer::key_set(SigningKey::generate(Algorithm::Es256)?));
/// let sts = TokenService::builder("https://sts.example", signer)
///     .client(ClientPolicy::new("spiffe://example.org/a").client_credentials().audience("b"))
///     .build()?;
/// let app: axum::Router = axum::Router::new().nest("/sts", dharma_sts::axum::routes(Arc::new(sts)));
/// // app.layer(DharmaLayer::new(enforcer)) ...
/// # let _ = app;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn routes(service: Arc<TokenService>) -> Router {
    let mut router = Router::new()
        .route("/token", post(token))
        .route("/jwks.json", get(jwks));
    if service.revokes() {
        router = router.route("/revoke", post(revoke));
    }
    router.with_state(service)
}

async fn form(
    endpoint: FormEndpoint,
    service: &TokenService,
    caller: &dharma_core::SecurityContext,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let body = axum::body::to_bytes(body, MAX_BODY).await.ok();
    service
        .answer(endpoint, caller, content_type, body.as_deref())
        .await
        .map(Body::from)
        .into_response()
}

async fn token(
    State(service): State<Arc<TokenService>>,
    Authorized(caller): Authorized,
    headers: HeaderMap,
    body: Body,
) -> Response {
    form(FormEndpoint::Token, &service, &caller, &headers, body).await
}

async fn revoke(
    State(service): State<Arc<TokenService>>,
    Authorized(caller): Authorized,
    headers: HeaderMap,
    body: Body,
) -> Response {
    form(FormEndpoint::Revocation, &service, &caller, &headers, body).await
}

async fn jwks(State(service): State<Arc<TokenService>>) -> Response {
    service.jwks_response().map(Body::from).into_response()
}
