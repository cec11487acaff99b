//! The conformance suite (`dharma-test-support/conformance/cases.toml`) through axum over
//! real HTTP on 127.0.0.1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use axum::Router;
use dharma_axum::DharmaLayer;
use dharma_test_support::{
    client::send,
    conformance::{cases, check_http, world},
    server::serve_axum,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_axum() {
    let world = world();
    let app = Router::new()
        .fallback(|| async { "ok" })
        .layer(DharmaLayer::new(world.enforcer.clone()));
    let base = format!("http://{}", serve_axum(app).await);
    let all = cases();
    assert!(all.len() >= 20);
    for case in &all {
        let headers = world.headers(case);
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let method = http::Method::from_bytes(case.method.as_bytes()).unwrap();
        let r = send(method, &format!("{base}{}", case.path), &headers, None).await;
        check_http(
            case,
            r.status.as_u16(),
            r.header("www-authenticate"),
            &r.body,
        );
        world.check_audit(case);
    }
}
