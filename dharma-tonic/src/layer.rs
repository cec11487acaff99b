//! The server-side layer: a plain tower layer, async all the way.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use dharma_core::{Decision, Denial, Enforcer, RequestView};
use tonic::{
    Code, Status,
    body::Body,
    transport::server::{TcpConnectInfo, TlsConnectInfo},
};
use tower_layer::Layer;
use tower_service::Service;

/// Wraps a tonic server's services in [`DharmaGrpc`].
#[derive(Debug, Clone)]
pub struct DharmaGrpcLayer {
    enforcer: Enforcer,
}

impl DharmaGrpcLayer {
    /// A layer deciding with `enforcer`.
    pub fn new(enforcer: Enforcer) -> Self {
        Self { enforcer }
    }
}

impl<S> Layer<S> for DharmaGrpcLayer {
    type Service = DharmaGrpc<S>;
    fn layer(&self, inner: S) -> Self::Service {
        DharmaGrpc {
            inner,
            enforcer: self.enforcer.clone(),
        }
    }
}

/// Decides every call before the service sees it.
#[derive(Debug, Clone)]
pub struct DharmaGrpc<S> {
    inner: S,
    enforcer: Enforcer,
}

/// The future of [`DharmaGrpc`].
pub type ResponseFuture<E> = Pin<Box<dyn Future<Output = Result<http::Response<Body>, E>> + Send>>;

/// The gRPC status for a denial: its code and fixed message, never details.
pub fn denial_status(denial: &Denial) -> Status {
    Status::new(Code::from_i32(denial.grpc_code()), denial.grpc_message())
}

impl<S, B> Service<http::Request<B>> for DharmaGrpc<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let enforcer = self.enforcer.clone();
        Box::pin(async move {
            let decision = {
                let extensions = request.extensions();
                let tls = extensions.get::<TlsConnectInfo<TcpConnectInfo>>();
                let peer = extensions
                    .get::<TcpConnectInfo>()
                    .and_then(TcpConnectInfo::remote_addr)
                    .or_else(|| tls.and_then(|t| t.get_ref().remote_addr()));
                let certs = tls.and_then(TlsConnectInfo::peer_certs);
                let mut view = RequestView::from_http(&request);
                if let Some(peer) = peer {
                    view = view.with_peer(peer);
                }
                if let Some(chain) = &certs {
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
                Decision::Deny(denial) => Ok(denial_status(&denial).into_http()),
            }
        })
    }
}
