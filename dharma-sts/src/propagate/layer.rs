//! The tower layer that puts the outbound token on outgoing requests.

use std::{
    fmt,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use dharma_core::InboundToken;
use http::{HeaderValue, Request, Response, StatusCode, header};
use tower_layer::Layer;
use tower_service::Service;

use super::{Outbound, TokenSource};

/// The error of a [`Propagate`] service: the source's or the inner service's.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The response future of [`Propagate`].
pub type PropagateResponseFuture<T> =
    Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send + 'static>>;

/// Attaches `Authorization: Bearer <token>` from a [`TokenSource`] to every request sent
/// through it, for one audience (one downstream service: a layer per channel or client).
///
/// The request's [`InboundToken`] extension, if the handler copied one onto it, is taken
/// off the request and handed to the source. A `401` answer is reported to the source,
/// which drops the token; the response goes back to the caller as it came (a request
/// body cannot be sent twice, so there is no retry here). If the source has no token,
/// the request is not sent and the call fails with the source's error.
#[derive(Clone)]
pub struct PropagateLayer {
    source: Arc<dyn TokenSource>,
    audience: Arc<str>,
    scope: Option<Arc<str>>,
}

impl fmt::Debug for PropagateLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PropagateLayer")
            .field("source", &self.source)
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .finish()
    }
}

impl PropagateLayer {
    /// Tokens from `source` for `audience`.
    pub fn new(source: Arc<dyn TokenSource>, audience: &str) -> Self {
        Self {
            source,
            audience: audience.into(),
            scope: None,
        }
    }

    /// Asks for this scope (space-separated).
    #[must_use]
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = Some(scope.into());
        self
    }
}

impl<S> Layer<S> for PropagateLayer {
    type Service = Propagate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Propagate {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`PropagateLayer`] makes.
#[derive(Clone, Debug)]
pub struct Propagate<S> {
    inner: S,
    layer: PropagateLayer,
}

impl<S, B, R> Service<Request<B>> for Propagate<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Send + 'static,
    R: Send + 'static,
{
    type Response = Response<R>;
    type Error = BoxError;
    type Future = PropagateResponseFuture<Response<R>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone that was made ready is the one that is called (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let inbound = request.extensions_mut().remove::<InboundToken>();
            let call = Outbound {
                audience: &layer.audience,
                scope: layer.scope.as_deref(),
                inbound: inbound.as_ref(),
            };
            let token = layer.source.token(call).await?;
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.secret()))?;
            value.set_sensitive(true);
            request.headers_mut().insert(header::AUTHORIZATION, value);
            let response = inner.call(request).await.map_err(Into::into)?;
            if response.status() == StatusCode::UNAUTHORIZED {
                layer.source.refused(call, &token).await;
            }
            Ok(response)
        })
    }
}
