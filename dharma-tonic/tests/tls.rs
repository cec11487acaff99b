//! tonic over TLS on 127.0.0.1: the client certificate tonic received reaches the mTLS
//! mechanism through the layer.

use dharma_test_support::tls::{CLIENT_ID, mtls_world};
use dharma_tonic::DharmaGrpcLayer;
use tonic::{
    Code,
    transport::{Certificate, Channel, ClientTlsConfig, Identity, Server, ServerTlsConfig},
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_reach_the_mechanism() {
    let world = mtls_world("POST", "/grpc.health.v1.Health/Check");
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            world.server.chain_pem(),
            world.server.key_pem(),
        ))
        .client_ca_root(Certificate::from_pem(world.root.pem()))
        .client_auth_optional(true);
    let server = Server::builder()
        .tls_config(tls)
        .unwrap()
        .layer(DharmaGrpcLayer::new(world.enforcer.clone()))
        .add_service(health)
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);

    let connect = |identity: Option<Identity>| {
        let root_pem = world.root.pem();
        async move {
            let mut tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(root_pem))
                .domain_name("localhost");
            if let Some(id) = identity {
                tls = tls.identity(id);
            }
            let channel = Channel::from_shared(format!("https://127.0.0.1:{port}"))
                .unwrap()
                .tls_config(tls)
                .unwrap()
                .connect()
                .await
                .unwrap();
            HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
        }
    };
    let with_cert = connect(Some(Identity::from_pem(
        world.client.chain_pem(),
        world.client.key_pem(),
    )))
    .await;
    assert!(with_cert.is_ok(), "{with_cert:?}");
    let without = connect(None).await.unwrap_err();
    assert_eq!(without.code(), Code::Unauthenticated);
    let events = world.audit.events();
    assert_eq!(events[0].reason, "allowed");
    assert_eq!(&*events[0].identities[0].subject, CLIENT_ID);
    assert!(events[0].peer.unwrap().ip().is_loopback());
    assert_eq!(events[1].reason, "missing_credentials");
}
