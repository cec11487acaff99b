//! The middleware service.

use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
};

use axum::extract::{ConnectInfo, MatchedPath, OriginalUri};
use axum_core::{body::Body, response::Response};
use dharma_core::{Decision, Enforcer, PeerCertificates, RequestView};
use http::Request;
use tower_service::Service;

use crate::response::denial_response;

/// The future of [`Dharma`]: the decision, then the inner service's response.
pub type ResponseFuture<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

/// Decides every request before the inner service sees it. Made by [`DharmaLayer`](crate::DharmaLayer).
#[derive(Debug, Clone)]
pub struct Dharma<S> {
    inner: S,
    enforcer: Enforcer,
}

impl<S> Dharma<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, enforcer: Enforcer) -> Self {
        Self { inner, enforcer }
    }
}

impl<S, B> Service<Request<B>> for Dharma<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone is not ready; keep the ready one for this request (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let enforcer = self.enforcer.clone();
        Box::pin(async move {
            let decision = {
                // Inside `Router::nest` the URI has lost its prefix; the policy speaks of
                // the whole path, which axum keeps as the original URI. Behind
                // `Router::layer` the router has already chosen a route: dharma checks
                // that it leads to the endpoint the path does.
                let extensions = request.extensions();
                let path = match extensions.get::<OriginalUri>() {
                    Some(OriginalUri(uri)) => uri.path(),
                    None => request.uri().path(),
                };
                let mut view = RequestView::new(request.method(), path, request.headers());
                if let Some(route) = extensions.get::<MatchedPath>() {
                    view = view.with_route(route.as_str());
                }
                if let Some(ConnectInfo(peer)) =
                    request.extensions().get::<ConnectInfo<SocketAddr>>()
                {
                    view = view.with_peer(*peer);
                }
                if let Some(PeerCertificates(chain)) =
                    request.extensions().get::<PeerCertificates>()
                {
                    view = view.with_peer_certificates(chain);
                }
                enforcer.decide(&view).await
            };
            match decision {
                Decision::Allow(permit) => {
                    let (context, inbound) = permit.into_parts();
                    request.extensions_mut().insert(context);
                    if let Some(token) = inbound {
                        request.extensions_mut().insert(token);
                    }
                    inner.call(request).await
                }
                Decision::Deny(denial) => Ok(denial_response(&denial)),
            }
        })
    }
}

#[expect(
    dead_code,
    reason = "compile-time check that the middleware stays Send"
)]
fn assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Dharma<axum::routing::Router>>();
    is_send::<Body>();
}
