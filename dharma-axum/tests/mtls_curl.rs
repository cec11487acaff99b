//! A real TLS listener on 127.0.0.1 serving an axum app whose interior endpoint trusts
//! mutual TLS: `curl` with and without a client certificate gets the right answers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::sync::Arc;

use axum::{Router, routing::get};
use dharma_axum::{Authorized, DharmaLayer};
use dharma_core::{
    Enforcer,
    audit::MemoryAuditSink,
    model::{Domain, Endpoint, Topology},
    mtls::MtlsVerifier,
    pki::OrgCa,
};
use dharma_test_support::{
    pki::{Ca, Leaf},
    tls::{CurlFiles, curl, serve_axum_tls, server_config},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_and_without_a_client_certificate() {
    let root = Ca::root("Org Root");
    let issuing = root.intermediate("Org Issuing", Some(0));
    let server = issuing.issue(&Leaf::server());
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
    async fn who(Authorized(ctx): Authorized) -> String {
        ctx.principal().unwrap().subject().to_owned()
    }
    let app = Router::new()
        .route("/internal", get(who))
        .layer(DharmaLayer::new(
            Enforcer::builder(topology).audit(audit.clone()).build(),
        ));
    let port = serve_axum_tls(app, server_config(&server)).await.port();

    let files = CurlFiles::new("axum-mtls", &root.pem());
    let good = files.client("client", &client);
    let bad = files.client("stranger", &stranger);
    let ca = files.ca.clone();
    let results = tokio::task::spawn_blocking(move || {
        [
            curl(port, "/internal", &ca, Some(&good)),
            curl(port, "/internal", &ca, None),
            curl(port, "/internal", &ca, Some(&bad)),
        ]
    })
    .await
    .unwrap();
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
