//! The conformance suite (`dharma-test-support/conformance/cases.toml`) through axum over
//! real HTTP on 127.0.0.1: every route of the suite has a handler that answers with its
//! route, so each case shows which handler ran.
#![expect(clippy::unwrap_used, reason = "tests")]

use axum::{
    Router,
    routing::{MethodFilter, on},
};
use dharma_axum::DharmaLayer;
use dharma_test_support::{
    conformance::{NESTED, ROUTES, run_http, world},
    server::serve_axum,
};

/// A router with a handler for each (method, route) that answers with `answer(route)`.
fn routes(pairs: &[(&str, &'static str)], answer: impl Fn(&str) -> &'static str) -> Router {
    pairs
        .iter()
        .fold(Router::new(), |router, &(method, route)| {
            let filter =
                MethodFilter::try_from(http::Method::from_bytes(method.as_bytes()).unwrap())
                    .unwrap();
            let answer = answer(route);
            router.route(
                route,
                on(
                    filter,
                    move || async move { ([("x-handler", answer)], answer) },
                ),
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_axum() {
    let world = world();
    let layer = DharmaLayer::new(world.enforcer.clone());
    let (prefix, nested) = NESTED;
    // The nested router's handlers answer with the whole route, as the policy names it.
    let inner = routes(nested, |r| {
        Box::leak(format!("{prefix}{r}").into_boxed_str())
    });
    let app = routes(ROUTES, |r| Box::leak(r.to_owned().into_boxed_str()))
        .fallback(|| async { "fallback" })
        .layer(layer.clone())
        // The layer inside `nest` sees the path without its prefix; dharma decides on the
        // whole path all the same.
        .nest(prefix, inner.layer(layer));
    let base = format!("http://{}", serve_axum(app).await);
    assert!(run_http(&world, &base).await >= 40);
}
