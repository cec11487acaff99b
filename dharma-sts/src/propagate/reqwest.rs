//! reqwest as a tower service of `http` requests, for [`PropagateLayer`](super::PropagateLayer).

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use tower_service::Service;

/// A [`reqwest::Client`] that takes `http::Request`s, so that the propagation layer (and
/// any tower layer) can wrap it. Extensions travel with the request, so the
/// [`InboundToken`](dharma_core::InboundToken) put on it reaches the layer.
///
/// ```
/// use std::sync::Arc;
/// use dharma_sts::propagate::{Forward, PropagateLayer, ReqwestService};
/// use tower_layer::Layer;
///
/// let client = PropagateLayer::new(Arc::new(Forward), "inner")
///     .layer(ReqwestService::new(reqwest::Client::new()));
/// // let request = http::Request::get(url).extension(inbound).body(reqwest::Body::from(""))?;
/// // tower::ServiceExt::oneshot(client, request).await?
/// # let _ = client;
/// ```
#[derive(Debug, Clone)]
pub struct ReqwestService(reqwest::Client);

impl ReqwestService {
    /// Wraps `client`.
    pub fn new(client: reqwest::Client) -> Self {
        Self(client)
    }
}

/// The response future of [`ReqwestService`].
pub type ReqwestFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<reqwest::Body>, reqwest::Error>> + Send>>;

impl Service<http::Request<reqwest::Body>> for ReqwestService {
    type Response = http::Response<reqwest::Body>;
    type Error = reqwest::Error;
    type Future = ReqwestFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<reqwest::Body>) -> Self::Future {
        let client = self.0.clone();
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)?;
            let response = client.execute(request).await?;
            Ok(response.into())
        })
    }
}
