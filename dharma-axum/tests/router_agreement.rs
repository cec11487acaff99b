//! Property: on random route sets, dharma classifies every path to the route axum's
//! router runs (or to none where axum has none).
#![expect(clippy::unwrap_used, reason = "tests")]

use axum::{Router, body::Body, routing::get};
use dharma_core::model::{Domain, Endpoint, Topology};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use proptest::prelude::*;
use tower::ServiceExt;

/// A segment of a route: literals, or a parameter named by its position (axum refuses
/// two names for one position).
fn route() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(vec!["a", "b", "ab", "{p}"]), 1..=3),
        any::<bool>(),
    )
        .prop_map(|(segs, tail)| {
            let mut out = String::new();
            for (i, s) in segs.iter().enumerate() {
                out.push('/');
                out.push_str(&s.replace("{p}", &format!("{{p{i}}}")));
            }
            if tail {
                out.push_str(&format!("/{{*t{}}}", segs.len()));
            }
            out
        })
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!["a", "b", "ab", "c", "a;b", "%C3%A9"]),
        0..=5,
    )
    .prop_map(|segs| {
        if segs.is_empty() {
            "/".into()
        } else {
            segs.iter().map(|s| format!("/{s}")).collect()
        }
    })
}

async fn axum_choice(app: &Router, path: &str) -> Option<String> {
    let response = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    if response.status() != StatusCode::OK {
        return None;
    }
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Some(String::from_utf8(body.to_vec()).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn dharma_chooses_the_route_axum_runs(
        routes in prop::collection::btree_set(route(), 1..8),
        paths in prop::collection::vec(path(), 1..12),
    ) {
        let topology = routes
            .iter()
            .fold(Topology::builder().domain(Domain::builder("d")), |b, r| {
                b.endpoint(Endpoint::public("d", r).name(r))
            })
            .build();
        // A set dharma refuses (a parameter and a tail at one position) is one axum
        // refuses too; the property is about the others.
        let Ok(topology) = topology else { return Ok(()) };
        let app = routes.iter().fold(Router::new(), |app, r| {
            let answer = r.clone();
            app.route(r, get(move || async move { answer }))
        });
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        for path in &paths {
            let ours = topology
                .classify(&Method::GET, path)
                .endpoint()
                .map(|e| e.name().to_owned());
            let theirs = rt.block_on(axum_choice(&app, path));
            prop_assert_eq!(ours, theirs, "path {}", path);
        }
    }
}
