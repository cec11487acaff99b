//! One request through each adapter, in process (no network), against the same handler
//! without dharma, and through two peer middleware crates on the same ES256 tokens:
//!
//! - `axum/bare`, `axum/dharma_warm` (a token seen before), `axum/dharma_cold` (a new token
//!   per request), `axum/axum_jwt_auth` (0.7, `LocalDecoder`, its `Claims` extractor, scope
//!   checked in the handler), `axum/tower_oauth2_rs` (tower-oauth2-resource-server 0.12, a
//!   static JWK Set). The peers remember no token, so each request is a cold one for them.
//! - `actix/bare`, `actix/dharma_warm`, `tonic/bare`, `tonic/dharma_warm`.
//!
//! `cargo bench -p dharma-benches --bench middleware`
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "benches")]

use std::hint::black_box;

use axum::{Router, body::Body, routing::get};
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use dharma_benches::{
    AUDIENCE, GRPC_PATH, ISSUER, PATH, ROUTE, SCOPE, enforcer, fresh_passes, jwt_verifier, load,
    token, tokens,
};
use dharma_test_support::{TestKey, keys::jwks};
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value};
use tower::{Layer, ServiceExt};

const POOL: usize = 500;

fn get_request(token: &str) -> http::Request<Body> {
    http::Request::get(PATH)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

/// Sends one request to an axum app and reads the whole response.
async fn call(app: &Router, token: &str) -> Bytes {
    let response = app.clone().oneshot(get_request(token)).await.unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap().to_bytes()
}

fn axum_jwt_auth_app(key: &TestKey) -> Router {
    use axum_jwt_auth::{Claims, Decoder, LocalDecoder};
    use jsonwebtoken10::{Algorithm, DecodingKey, Validation};
    let jwk = key.jwk();
    let decoding =
        DecodingKey::from_ec_components(jwk["x"].as_str().unwrap(), jwk["y"].as_str().unwrap())
            .unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    let decoder: Decoder<Map<String, Value>> = std::sync::Arc::new(
        LocalDecoder::builder()
            .keys(vec![decoding])
            .validation(validation)
            .build()
            .unwrap(),
    );
    async fn order(claims: Claims<Map<String, Value>>) -> Result<&'static str, http::StatusCode> {
        let scoped = claims.claims.get("scope").and_then(Value::as_str);
        match scoped {
            Some(s) if s.split(' ').any(|s| s == SCOPE) => Ok("order 42"),
            _ => Err(http::StatusCode::FORBIDDEN),
        }
    }
    Router::new().route(ROUTE, get(order)).with_state(decoder)
}

async fn tower_oauth2_app(key: &TestKey) -> Router {
    use tower_oauth2_resource_server::{server::OAuth2ResourceServer, tenant::TenantConfiguration};
    let tenant = TenantConfiguration::static_builder(jwks(&[key]).to_string())
        .identifier(ISSUER)
        .audiences(&[AUDIENCE])
        .build()
        .unwrap();
    let server = <OAuth2ResourceServer>::builder()
        .add_tenant(tenant)
        .build()
        .await
        .unwrap();
    Router::new()
        .route(ROUTE, get(|| async { "order 42" }))
        .layer(server.into_layer::<Body>())
}

fn axum(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = TestKey::generate("ES256", "k");
    let token = token(&key);
    let pool = tokens(&key, POOL);
    let mut group = c.benchmark_group("axum");

    let bare = load::axum_app(None);
    group.bench_function("bare", |b| {
        b.iter(|| rt.block_on(call(&bare, black_box(&token))))
    });
    let warm = load::axum_app(Some(enforcer(jwt_verifier(&key, 10_000))));
    rt.block_on(call(&warm, &token));
    group.bench_function("dharma_warm", |b| {
        b.iter(|| rt.block_on(call(&warm, black_box(&token))))
    });
    group.bench_function("dharma_cold", |b| {
        b.iter_custom(|iters| {
            fresh_passes(
                iters,
                &pool,
                || load::axum_app(Some(enforcer(jwt_verifier(&key, 10_000)))),
                |app, t| {
                    rt.block_on(call(app, t));
                },
            )
        })
    });
    let peer = axum_jwt_auth_app(&key);
    rt.block_on(call(&peer, &token));
    group.bench_function("axum_jwt_auth", |b| {
        b.iter(|| rt.block_on(call(&peer, black_box(&token))))
    });
    let peer = rt.block_on(tower_oauth2_app(&key));
    rt.block_on(call(&peer, &token));
    group.bench_function("tower_oauth2_rs", |b| {
        b.iter(|| rt.block_on(call(&peer, black_box(&token))))
    });
    group.finish();
}

fn actix(c: &mut Criterion) {
    use actix_web::{App, test};
    let rt = actix_web::rt::Runtime::new().unwrap();
    let key = TestKey::generate("ES256", "k");
    let token = token(&key);
    let request = || {
        test::TestRequest::get()
            .uri(PATH)
            .insert_header(("authorization", format!("Bearer {token}")))
            .to_request()
    };
    let mut group = c.benchmark_group("actix");

    let bare = rt.block_on(test::init_service(
        App::new().configure(load::actix_routes(false)),
    ));
    group.bench_function("bare", |b| {
        b.iter(|| {
            rt.block_on(async {
                let response = test::call_service(&bare, request()).await;
                assert_eq!(response.status(), 200);
                test::read_body(response).await
            })
        })
    });
    let protected = rt.block_on(test::init_service(
        App::new()
            .wrap(dharma_actix::DharmaMiddleware::new(enforcer(jwt_verifier(
                &key, 10_000,
            ))))
            .configure(load::actix_routes(true)),
    ));
    group.bench_function("dharma_warm", |b| {
        b.iter(|| {
            rt.block_on(async {
                let response = test::call_service(&protected, request()).await;
                assert_eq!(response.status(), 200);
                test::read_body(response).await
            })
        })
    });
    group.finish();
}

fn grpc_request(token: &str) -> http::Request<Full<Bytes>> {
    // An empty HealthCheckRequest: the 5-byte gRPC frame header and no message bytes.
    http::Request::post(GRPC_PATH)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap()
}

/// Sends one gRPC call and reads the whole response, trailers included; returns the
/// `grpc-status`.
async fn grpc_call<S>(service: &S, token: &str) -> Option<String>
where
    S: tower::Service<http::Request<Full<Bytes>>, Response = http::Response<tonic::body::Body>>
        + Clone,
    S::Error: std::fmt::Debug,
{
    let response = service.clone().oneshot(grpc_request(token)).await.unwrap();
    let collected = response.into_body().collect().await.unwrap();
    collected
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn tonic(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = TestKey::generate("ES256", "k");
    let token = token(&key);
    let mut group = c.benchmark_group("tonic");

    let (_reporter, bare) = tonic_health::server::health_reporter();
    assert_eq!(rt.block_on(grpc_call(&bare, &token)).as_deref(), Some("0"));
    group.bench_function("bare", |b| {
        b.iter(|| rt.block_on(grpc_call(&bare, black_box(&token))))
    });
    let (_reporter, health) = tonic_health::server::health_reporter();
    let protected =
        dharma_tonic::DharmaGrpcLayer::new(enforcer(jwt_verifier(&key, 10_000))).layer(health);
    assert_eq!(
        rt.block_on(grpc_call(&protected, &token)).as_deref(),
        Some("0")
    );
    group.bench_function("dharma_warm", |b| {
        b.iter(|| rt.block_on(grpc_call(&protected, black_box(&token))))
    });
    group.finish();
}

criterion_group!(benches, axum, actix, tonic);
criterion_main!(benches);
