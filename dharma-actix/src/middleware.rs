//! The middleware: a `Transform` that wraps each worker's service.

use std::{
    future::{Ready, ready},
    rc::Rc,
};

use actix_web::{
    Error, HttpMessage,
    body::{EitherBody, MessageBody},
    dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready},
};
use dharma_core::{Decision, Enforcer, PeerCertificates, RequestView};
use futures_util::future::LocalBoxFuture;

use crate::translate::{denial_response, headers, method, route};

/// Decides every request with the core enforcer before the app sees it. Clones share the
/// enforcer (keys and caches), so build it once and clone it into every worker's `App`.
#[derive(Debug, Clone)]
pub struct DharmaMiddleware {
    enforcer: Enforcer,
}

impl DharmaMiddleware {
    /// A middleware deciding with `enforcer`.
    pub fn new(enforcer: Enforcer) -> Self {
        Self { enforcer }
    }
}

impl<S, B> Transform<S, ServiceRequest> for DharmaMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = DharmaService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(DharmaService {
            service: Rc::new(service),
            enforcer: self.enforcer.clone(),
        }))
    }
}

/// The per-worker service made by [`DharmaMiddleware`].
#[derive(Debug)]
pub struct DharmaService<S> {
    service: Rc<S>,
    enforcer: Enforcer,
}

impl<S, B> Service<ServiceRequest> for DharmaService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        let enforcer = self.enforcer.clone();
        Box::pin(async move {
            let decision = {
                let headers = headers(request.headers());
                let certs = request.conn_data::<PeerCertificates>().cloned();
                // actix-web routes in registration order: the pattern its resource map
                // matches for this path is checked against the endpoint dharma chose,
                // where another declared pattern could have taken the path (looking it up
                // walks the resource map, so it is skipped where it cannot matter).
                let snapshot = enforcer.snapshot();
                let route = snapshot
                    .topology()
                    .route_check_needed(request.path())
                    .then(|| request.match_pattern().map(|p| route(&p)))
                    .flatten();
                // Both `http` versions accept the same method tokens, so the stand-in is
                // not expected; if it is needed, the enforcer refuses the request.
                let (method, supported) = match method(request.method()) {
                    Some(m) => (m, true),
                    None => (http::Method::CONNECT, false),
                };
                let mut view = RequestView::new(&method, request.path(), &headers);
                if !supported {
                    view = view.with_unsupported_method();
                }
                if let Some(route) = &route {
                    view = view.with_route(route);
                }
                if let Some(peer) = request.peer_addr() {
                    view = view.with_peer(peer);
                }
                if let Some(PeerCertificates(chain)) = &certs {
                    view = view.with_peer_certificates(chain);
                }
                enforcer.decide_on(&snapshot, &view).await
            };
            match decision {
                Decision::Allow(permit) => {
                    let (context, inbound) = permit.into_parts();
                    request.extensions_mut().insert(context);
                    if let Some(token) = inbound {
                        request.extensions_mut().insert(token);
                    }
                    service
                        .call(request)
                        .await
                        .map(ServiceResponse::map_into_left_body)
                }
                Decision::Deny(denial) => {
                    let (req, _) = request.into_parts();
                    Ok(ServiceResponse::new(req, denial_response(&denial)).map_into_right_body())
                }
            }
        })
    }
}
