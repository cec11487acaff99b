//! A real TLS listener on 127.0.0.1 serving an axum app whose interior endpoint trusts
//! mutual TLS: `curl` with and without a client certificate gets the right answers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::{path::Path, process::Command, sync::Arc};

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
    tls::{serve_axum_tls, server_config},
};

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Runs curl; returns (status, body).
fn curl(port: u16, ca: &str, client: Option<(&str, &str)>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "10",
        "--cacert",
        ca,
        "--resolve",
        &format!("localhost:{port}:127.0.0.1"),
    ]);
    if let Some((cert, key)) = client {
        cmd.args(["--cert", cert, "--key", key]);
    }
    cmd.args([
        "-w",
        "\n%{http_code}",
        &format!("https://localhost:{port}/internal"),
    ]);
    let out = cmd.output().expect("curl must be installed");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_and_without_a_client_certificate() {
    let root = Ca::root("Org Root");
    let issuing = root.intermediate("Org Issuing", Some(0));
    let server = issuing.issue(&Leaf::server());
    let client = issuing.issue(&Leaf::spiffe("spiffe://example.org/ns/orders/sa/api"));
    let stranger_root = Ca::root("Org Root");
    let stranger = stranger_root.issue(&Leaf::spiffe("spiffe://example.org/ns/orders/sa/api"));

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

    let dir = std::env::temp_dir().join(format!("dharma-mtls-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = write(&dir, "ca.pem", &root.pem());
    let cert = write(&dir, "client.pem", &client.chain_pem());
    let key = write(&dir, "client.key", &client.key_pem());
    let bad_cert = write(&dir, "stranger.pem", &stranger.chain_pem());
    let bad_key = write(&dir, "stranger.key", &stranger.key_pem());

    let result = tokio::task::spawn_blocking(move || {
        (
            curl(port, &ca, Some((&cert, &key))),
            curl(port, &ca, None),
            curl(port, &ca, Some((&bad_cert, &bad_key))),
        )
    })
    .await
    .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(
        result.0,
        (200, "spiffe://example.org/ns/orders/sa/api".to_owned())
    );
    assert_eq!(result.1.0, 401);
    assert_eq!(result.2.0, 403);
    let reasons: Vec<_> = audit.events().iter().map(|e| e.reason).collect();
    assert_eq!(
        reasons,
        ["allowed", "missing_credentials", "certificate_untrusted"]
    );
}
