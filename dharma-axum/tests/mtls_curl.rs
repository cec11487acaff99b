//! A real TLS listener on 127.0.0.1 serving an axum app whose interior endpoint trusts
//! mutual TLS: `curl` with and without a client certificate gets the right answers.

use std::sync::Arc;

use axum::{Router, routing::get};
use dharma_axum::{Authorized, DharmaLayer};
use dharma_test_support::tls::{mtls_world, serve_axum_tls, server_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_and_without_a_client_certificate() {
    let world = Arc::new(mtls_world("GET", "/internal"));
    async fn who(Authorized(ctx): Authorized) -> String {
        ctx.principal().unwrap().subject().to_owned()
    }
    let app = Router::new()
        .route("/internal", get(who))
        .layer(DharmaLayer::new(world.enforcer.clone()));
    let port = serve_axum_tls(app, server_config(&world.server))
        .await
        .port();
    let w = world.clone();
    tokio::task::spawn_blocking(move || w.check_with_curl(port, "/internal"))
        .await
        .unwrap();
}
