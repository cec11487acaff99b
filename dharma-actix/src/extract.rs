//! Extractors for handlers behind [`DharmaMiddleware`](crate::DharmaMiddleware).

use std::future::{Ready, ready};

use actix_web::{
    FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, dev::Payload,
    http::StatusCode,
};
use dharma_core::SecurityContext;
use serde::de::DeserializeOwned;

/// The security context of an admitted request.
#[derive(Debug, Clone)]
pub struct Authorized(pub SecurityContext);

/// The principal's claims, deserialized into `T`.
#[derive(Debug, Clone)]
pub struct Claims<T>(pub T);

/// Why an extractor failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ExtractError {
    /// No security context: the route is not behind the middleware (a server bug, `500`).
    NotBehindDharma,
    /// The claims do not have the shape the handler asks for. The request was allowed and
    /// audited as such; the handler's expectation is a server bug the policy does not
    /// guarantee (`500`). Require the claims on the endpoint so that dharma refuses tokens
    /// without them.
    ClaimsShape,
}

impl std::fmt::Display for ExtractError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotBehindDharma => {
                f.write_str("no security context: the route is not behind DharmaMiddleware")
            }
            Self::ClaimsShape => f.write_str("the claims do not match the handler's type"),
        }
    }
}

impl ResponseError for ExtractError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotBehindDharma | Self::ClaimsShape => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::NotBehindDharma | Self::ClaimsShape => {
                HttpResponse::InternalServerError().body("internal error")
            }
        }
    }
}

fn context(req: &HttpRequest) -> Result<SecurityContext, ExtractError> {
    req.extensions()
        .get::<SecurityContext>()
        .cloned()
        .ok_or(ExtractError::NotBehindDharma)
}

impl FromRequest for Authorized {
    type Error = ExtractError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(context(req).map(Authorized))
    }
}

impl<T: DeserializeOwned> FromRequest for Claims<T> {
    type Error = ExtractError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(context(req).and_then(|ctx| {
            ctx.claims()
                .deserialize()
                .map(Claims)
                .map_err(|_| ExtractError::ClaimsShape)
        }))
    }
}
