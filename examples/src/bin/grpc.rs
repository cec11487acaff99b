//! dharma in a tonic gRPC service: the standard health service behind a boundary endpoint
//! that needs a token with the `health:read` scope. Run with
//! `cargo run -p dharma-examples --bin grpc`.

use std::sync::Arc;

use dharma_core::{
    Enforcer,
    mechanism::jwt::{IssuerSpec, JwtVerifier, VerifyingKey},
    model::{Domain, Endpoint, Topology},
};
use dharma_test_support::{TestKey, keys};
use dharma_tonic::{BearerInterceptor, DharmaGrpcLayer};
use tonic::{service::interceptor::InterceptedService, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = TestKey::generate("ES256", "grpc-1");
    let jwt = JwtVerifier::builder()
        .issuer(
            IssuerSpec::new("https://idp.example")
                .keys([VerifyingKey::from_jwk(&key.jwk())?])
                .audience("platform"),
        )
        .build()?;
    let topology = Topology::builder()
        .domain(Domain::builder("outer").access("oauth"))
        .endpoint(
            Endpoint::boundary("outer", "/grpc.health.v1.Health/Check")
                .methods(["POST"])
                .scopes(["health:read"]),
        )
        .build()?;
    let (_reporter, health) = tonic_health::server::health_reporter();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tonic::transport::Server::builder()
        .layer(DharmaGrpcLayer::new(
            Enforcer::builder(topology)
                .mechanism("oauth", Arc::new(jwt))
                .build()?,
        ))
        .add_service(health)
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);

    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let good = key.sign(&keys::claims(
        "https://idp.example",
        "platform",
        "health:read",
    ));
    for (what, token) in [("a token with health:read", Some(good)), ("no token", None)] {
        let interceptor = BearerInterceptor::from_source(move || token.clone());
        let mut client = HealthClient::new(InterceptedService::new(channel.clone(), interceptor));
        match client
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
        {
            Ok(r) => println!(
                "Check with {what}: OK, status {:?}",
                r.into_inner().status()
            ),
            Err(s) => println!("Check with {what}: {:?} \"{}\"", s.code(), s.message()),
        }
    }
    Ok(())
}
