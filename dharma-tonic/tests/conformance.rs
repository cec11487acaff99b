//! The conformance suite (`dharma-test-support/conformance/cases.toml`) through a real
//! tonic server on 127.0.0.1, called with a real tonic client.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use dharma_core::SecurityContext;
use dharma_test_support::conformance::{cases, grpc_code, world};
use dharma_tonic::{BearerInterceptor, DharmaGrpcLayer};
use http::uri::PathAndQuery;
use tonic::{
    Request, Response, Status,
    body::Body,
    client::Grpc,
    metadata::MetadataValue,
    server::{NamedService, UnaryService},
    service::interceptor::InterceptedService,
    transport::{Channel, Server},
};
use tonic_prost::ProstCodec;

/// A unary method that answers with an empty message and its route in the `x-handler`
/// metadata, and says whether it saw a context.
#[derive(Clone)]
struct Empty(String);

impl UnaryService<()> for Empty {
    type Response = ();
    type Future = Pin<Box<dyn Future<Output = Result<Response<()>, Status>> + Send>>;
    fn call(&mut self, request: Request<()>) -> Self::Future {
        let admitted = request.extensions().get::<SecurityContext>().is_some();
        let route = self.0.clone();
        Box::pin(async move {
            if admitted {
                let mut response = Response::new(());
                response
                    .metadata_mut()
                    .insert("x-handler", route.parse().unwrap());
                Ok(response)
            } else {
                Err(Status::internal("reached without a security context"))
            }
        })
    }
}

macro_rules! grpc_service {
    ($ty:ident, $name:literal) => {
        #[derive(Clone)]
        struct $ty;
        impl NamedService for $ty {
            const NAME: &'static str = $name;
        }
        impl<B> tower::Service<http::Request<B>> for $ty
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
                // The service is the handler; the method is the last segment of its route.
                let method = request
                    .uri()
                    .path()
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let route = format!("/{}/{method}", $name);
                Box::pin(async move {
                    let mut grpc = tonic::server::Grpc::new(ProstCodec::<(), ()>::default());
                    Ok(grpc.unary(Empty(route), request).await)
                })
            }
        }
    };
}

grpc_service!(Health, "shop.Health");
grpc_service!(Orders, "shop.Orders");
grpc_service!(Admin, "shop.Admin");
grpc_service!(Catalog, "shop.Catalog");
grpc_service!(Stock, "shop.Stock");
grpc_service!(Secret, "shop.Secret");
grpc_service!(Keys, "vault.Keys");
grpc_service!(Remote, "remote.Orders");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_tonic() {
    let world = world();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Server::builder()
        .layer(DharmaGrpcLayer::new(world.enforcer.clone()))
        .add_service(Health)
        .add_service(Orders)
        .add_service(Admin)
        .add_service(Catalog)
        .add_service(Stock)
        .add_service(Secret)
        .add_service(Keys)
        .add_service(Remote);
    tokio::spawn(
        router.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();

    let mut ran = 0;
    for case in cases().into_iter().filter(|c| !c.http_only) {
        assert_eq!(case.method, "POST", "{}: gRPC calls are POST", case.name);
        world.prepare(&case).await;
        let headers = world.headers(&case);
        // Tokens go through the client interceptor; other metadata is set by hand.
        let token = headers
            .iter()
            .find(|(k, v)| k == "authorization" && case.token.is_some() && v.starts_with("Bearer "))
            .map(|(_, v)| v.trim_start_matches("Bearer ").to_owned());
        let interceptor = BearerInterceptor::from_source(move || token.clone());
        let mut client = Grpc::new(InterceptedService::new(channel.clone(), interceptor));
        let mut request = Request::new(());
        for (k, v) in &headers {
            if case.token.is_none() || k != "authorization" {
                request.metadata_mut().insert(
                    tonic::metadata::MetadataKey::from_bytes(k.as_bytes()).unwrap(),
                    MetadataValue::try_from(v.as_str()).unwrap(),
                );
            }
        }
        client.ready().await.unwrap();
        let path = PathAndQuery::try_from(case.path.as_str()).unwrap();
        let result = client
            .unary(request, path, ProstCodec::<(), ()>::default())
            .await;
        let (code, handler) = match &result {
            Ok(response) => (
                0,
                response
                    .metadata()
                    .get("x-handler")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            ),
            Err(status) => (status.code() as i32, None),
        };
        assert_eq!(
            handler.as_deref().unwrap_or("none"),
            case.handler,
            "{}: the handler that ran",
            case.name
        );
        assert_eq!(
            code,
            grpc_code(case.status),
            "{}: gRPC status {result:?}",
            case.name
        );
        if let Err(status) = &result {
            assert!(
                !status.message().contains("eyJ") && !status.message().contains("127.0.0.1:9"),
                "{}: leak",
                case.name
            );
        }
        world.check_audit(&case);
        ran += 1;
    }
    assert!(ran >= 18);
}
