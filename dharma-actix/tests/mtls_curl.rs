//! actix-web over rustls on 127.0.0.1 with `on_connect(dharma_actix::on_connect)`: the
//! client's certificate chain reaches the mTLS mechanism; `curl` with and without one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, web};
use dharma_actix::{Authorized, DharmaMiddleware, on_connect};
use dharma_core::{
    Enforcer,
    audit::MemoryAuditSink,
    model::{Domain, Endpoint, Topology},
    mtls::MtlsVerifier,
    pki::OrgCa,
};
use dharma_test_support::{
    pki::{Ca, Leaf},
    tls::{CurlFiles, curl, server_config},
};

async fn who(Authorized(ctx): Authorized) -> HttpResponse {
    HttpResponse::Ok().body(ctx.principal().unwrap().subject().to_owned())
}

#[actix_web::test]
async fn curl_with_and_without_a_client_certificate() {
    let root = Ca::root("Org Root");
    let issuing = root.intermediate("Org Issuing", Some(0));
    let server_leaf = issuing.issue(&Leaf::server());
    let client = issuing.issue(&Leaf::spiffe("spiffe://example.org/ns/orders/sa/api"));
    let stranger =
        Ca::root("Org Root").issue(&Leaf::spiffe("spiffe://example.org/ns/orders/sa/api"));
    let mtls = MtlsVerifier::builder()
        .org_ca(OrgCa::from_pem(&root.pem()).unwrap())
        .trust_domain("example.org")
        .unwrap()
        .build()
        .unwrap();
    let topology = Topology::builder()
        .mechanism("mtls", Arc::new(mtls))
        .domain(Domain::builder("outer").trust("mtls"))
        .endpoint(Endpoint::interior("outer", "/internal").methods(["GET"]))
        .build()
        .unwrap();
    let audit = Arc::new(MemoryAuditSink::default());
    let enforcer = Enforcer::builder(topology).audit(audit.clone()).build();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(DharmaMiddleware::new(enforcer.clone()))
            .route("/internal", web::get().to(who))
    })
    .on_connect(on_connect)
    .workers(1)
    .disable_signals()
    .bind_rustls_0_23("127.0.0.1:0", (*server_config(&server_leaf)).clone())
    .unwrap();
    let port = server.addrs()[0].port();
    let running = server.run();
    let stop = running.handle();
    actix_web::rt::spawn(running);

    let files = CurlFiles::new("actix-mtls", &root.pem());
    let good = files.client("client", &client);
    let bad = files.client("stranger", &stranger);
    let ca = files.ca.clone();
    let results = actix_web::rt::task::spawn_blocking(move || {
        [
            curl(port, "/internal", &ca, Some(&good)),
            curl(port, "/internal", &ca, None),
            curl(port, "/internal", &ca, Some(&bad)),
        ]
    })
    .await
    .unwrap();
    stop.stop(true).await;
    assert_eq!(
        results[0],
        (200, "spiffe://example.org/ns/orders/sa/api".to_owned())
    );
    assert_eq!(results[1].0, 401);
    assert_eq!(results[2].0, 403);
    let reasons: Vec<_> = audit.events().iter().map(|e| e.reason).collect();
    assert_eq!(
        reasons,
        ["allowed", "missing_credentials", "certificate_untrusted"]
    );
}
