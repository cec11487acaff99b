//! Extractors for handlers behind [`DharmaLayer`](crate::DharmaLayer).

use axum_core::{
    extract::FromRequestParts,
    response::{IntoResponse, Response},
};
use dharma_core::SecurityContext;
use http::{StatusCode, request::Parts};
use serde::de::DeserializeOwned;

/// The security context of an admitted request.
///
/// ```
/// use dharma_axum::Authorized;
/// async fn handler(Authorized(ctx): Authorized) -> String {
///     ctx.principal().map(|p| p.subject().to_owned()).unwrap_or_default()
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Authorized(pub SecurityContext);

/// The principal's claims, deserialized into `T`.
///
/// ```
/// use dharma_axum::Claims;
/// #[derive(serde::Deserialize)]
/// struct Mine { sub: String, scope: String }
/// async fn handler(Claims(c): Claims<Mine>) -> String { c.sub }
/// ```
#[derive(Debug, Clone)]
pub struct Claims<T>(pub T);

/// Why an extractor failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ExtractError {
    /// No security context: the route is not behind `DharmaLayer` (a server bug, `500`).
    NotBehindDharma,
    /// The claims do not have the shape the handler asks for. The request was allowed and
    /// audited as such; the handler's expectation is a server bug the policy does not
    /// guarantee (`500`). Require the claims on the endpoint so that dharma refuses tokens
    /// without them.
    ClaimsShape,
}

impl IntoResponse for ExtractError {
    fn into_response(self) -> Response {
        match self {
            Self::NotBehindDharma | Self::ClaimsShape => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authorized {
    type Rejection = ExtractError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<SecurityContext>()
            .cloned()
            .map(Authorized)
            .ok_or(ExtractError::NotBehindDharma)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Claims<T> {
    type Rejection = ExtractError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ctx = parts
            .extensions
            .get::<SecurityContext>()
            .ok_or(ExtractError::NotBehindDharma)?;
        ctx.claims()
            .deserialize()
            .map(Claims)
            .map_err(|_| ExtractError::ClaimsShape)
    }
}
