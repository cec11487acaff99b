//! The inner domain (tonic): the ledger, whose `Record` is a boundary endpoint taking the
//! outer domain's JWTs; the inventory, interior, trusting the inner network; and the inner
//! token service, which gives inner consumers fresh JWTs to carry for accountability.

use std::{
    convert::Infallible,
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use dharma_core::{
    Assurance, InboundToken, SecurityContext, mechanism::x5c::X5cJwtVerifier,
    transport::HyperClient,
};
use dharma_sts::{
    ClientPolicy, Signer, SigningKey, TokenService,
    propagate::{Exchange, Outbound, TokenEndpoint, TokenSource},
};
use dharma_tonic::{BearerInterceptor, DharmaGrpcLayer};
use tonic::{
    Request, Response, Status, body::Body, codegen::http, server::NamedService,
    service::interceptor::InterceptedService, transport::Channel,
};
use tonic_prost::ProstCodec;

use crate::{
    deployment::{Deployment, Error, INNER_NETWORK, INNER_STS, serve_axum},
    outer::who,
};

type Reply = Pin<Box<dyn Future<Output = Result<Response<String>, Status>> + Send>>;
type Handler = Arc<dyn Fn(String, Request<String>) -> Reply + Send + Sync>;

/// Calls a unary method with a string message, with `token` as bearer, from `from` (the
/// inner network's address, or none).
pub(crate) async fn call(
    server: SocketAddr,
    from: Option<IpAddr>,
    path: &str,
    token: Option<&str>,
) -> Result<String, Status> {
    let channel = Channel::from_shared(format!("http://{server}"))
        .map_err(|e| Status::internal(e.to_string()))?
        .local_address(from)
        .connect()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let token = token.map(str::to_owned);
    let interceptor = BearerInterceptor::from_source(move || token.clone());
    let mut client = tonic::client::Grpc::new(InterceptedService::new(channel, interceptor));
    client
        .ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path =
        http::uri::PathAndQuery::try_from(path).map_err(|e| Status::internal(e.to_string()))?;
    client
        .unary(
            Request::new(String::new()),
            path,
            ProstCodec::<String, String>::default(),
        )
        .await
        .map(Response::into_inner)
}

macro_rules! grpc_service {
    ($ty:ident, $name:literal) => {
        #[derive(Clone)]
        struct $ty(Handler);

        impl NamedService for $ty {
            const NAME: &'static str = $name;
        }

        impl<B> tower_service::Service<http::Request<B>> for $ty
        where
            B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
            B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
        {
            type Response = http::Response<Body>;
            type Error = Infallible;
            type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }

            fn call(&mut self, request: http::Request<B>) -> Self::Future {
                let method = request
                    .uri()
                    .path()
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let handler = self.0.clone();
                Box::pin(async move {
                    let unary = Unary(handler, method);
                    let mut grpc =
                        tonic::server::Grpc::new(ProstCodec::<String, String>::default());
                    Ok(grpc.unary(unary, request).await)
                })
            }
        }
    };
}

#[derive(Clone)]
struct Unary(Handler, String);

impl tonic::server::UnaryService<String> for Unary {
    type Response = String;
    type Future = Reply;
    fn call(&mut self, request: Request<String>) -> Reply {
        (self.0)(self.1.clone(), request)
    }
}

grpc_service!(Ledger, "inner.Ledger");
grpc_service!(Inventory, "inner.Inventory");

fn context(request: &Request<String>) -> Result<SecurityContext, Status> {
    request
        .extensions()
        .get::<SecurityContext>()
        .cloned()
        .ok_or_else(|| Status::internal("reached without a security context"))
}

/// The inner token service: exchanges outer JWTs (checked with the organisation's x5c
/// mechanism) for inner JWTs, for the inner network's workloads. Its listener is bound
/// first, since the policy names its key set's address.
pub(crate) fn token_service(
    deployment: &Deployment,
    listener: tokio::net::TcpListener,
) -> Result<(), Error> {
    let loaded = deployment.load()?;
    let org_jwt = loaded
        .instance::<X5cJwtVerifier>("org-jwt")
        .ok_or("the policy has no org-jwt x5c mechanism")?;
    let signer = Signer::key_set(SigningKey::generate(dharma_core::jose::Algorithm::Es256)?);
    let sts = TokenService::builder(INNER_STS, Arc::new(signer))
        .client(
            ClientPolicy::new(&INNER_NETWORK.to_string())
                .exchange()
                .audience("inner")
                .scope("orders:read")
                .scope("orders:write"),
        )
        .subject_tokens(org_jwt)
        .audit(deployment.audit.clone())
        .build()?;
    let app = axum::Router::new().nest("/inner-sts", dharma_sts::axum::routes(Arc::new(sts)));
    serve_axum(listener, app, loaded.enforcer().clone());
    Ok(())
}

/// The ledger and the inventory, each a tonic server behind dharma; their addresses.
pub(crate) async fn services(
    deployment: &Deployment,
    inner_sts: SocketAddr,
) -> Result<(SocketAddr, SocketAddr), Error> {
    // The inventory: reserves stock for whoever the carried JWT names.
    let inventory: Handler = Arc::new(|_method, request| {
        Box::pin(async move {
            let ctx = context(&request)?;
            let accountable: Vec<String> = ctx
                .identities()
                .iter()
                .filter(|i| matches!(i.assurance(), Assurance::Accountability { .. }))
                .map(|i| i.subject().to_owned())
                .collect();
            Ok(Response::new(format!(
                "stock reserved by {} on behalf of {}",
                who(&ctx),
                accountable.join(", ")
            )))
        })
    });
    let inventory_addr = grpc(deployment, Inventory(inventory)).await?;

    // The ledger: records the order, then has the inventory reserve stock with a fresh
    // inner JWT from the inner token service, called from the inner network.
    let endpoint = TokenEndpoint::builder(&format!("http://{inner_sts}/inner-sts/token"))
        .http_client(Arc::new(HyperClient::bound_to(INNER_NETWORK)?))
        .build()?;
    let exchange = Arc::new(Exchange::new(endpoint));
    let ledger: Handler = Arc::new(move |method, request| {
        let exchange = exchange.clone();
        Box::pin(async move {
            let ctx = context(&request)?;
            if method != "Record" {
                return Ok(Response::new(format!("balance read by {}", who(&ctx))));
            }
            let inbound = request
                .extensions()
                .get::<InboundToken>()
                .cloned()
                .ok_or_else(|| Status::internal("no inbound token"))?;
            let call = Outbound::new("inner")
                .scope("orders:write")
                .inbound(&inbound);
            let inner_jwt = exchange
                .token(call)
                .await
                .map_err(|e| Status::unavailable(format!("inner token service: {e}")))?;
            let reserved = call_inventory(inventory_addr, inner_jwt.secret()).await?;
            Ok(Response::new(format!(
                "recorded by the ledger for {}; {reserved}",
                who(&ctx)
            )))
        })
    });
    let ledger_addr = grpc(deployment, Ledger(ledger)).await?;
    Ok((ledger_addr, inventory_addr))
}

async fn call_inventory(inventory: SocketAddr, token: &str) -> Result<String, Status> {
    call(
        inventory,
        Some(INNER_NETWORK),
        "/inner.Inventory/Reserve",
        Some(token),
    )
    .await
}

async fn grpc<S>(deployment: &Deployment, service: S) -> Result<SocketAddr, Error>
where
    S: tower_service::Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Error = Infallible,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let enforcer = deployment.load()?.enforcer().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tonic::transport::Server::builder()
        .layer(DharmaGrpcLayer::new(enforcer))
        .add_service(service)
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);
    Ok(addr)
}
