//! The axum middleware over real HTTP on 127.0.0.1: every rejection mapped as RFC 6750
//! says, undeclared endpoints denied, the extractors, and one audit event per request.
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use std::sync::Arc;

use axum::{
    Router,
    routing::{get, post},
};
use dharma_axum::{Authorized, Claims, DharmaLayer};
use dharma_core::{
    Authenticated, BoxFuture, Enforcer, Identity, IdentityKind, Lane, RequestView, Unmatched,
    Verifier,
    audit::{MemoryAuditSink, Outcome},
    mechanism::jwt::{IssuerSpec, JwtVerifier},
    model::{Domain, Endpoint, Topology},
    reject::Rejection,
};
use dharma_test_support::{
    TestKey,
    client::{get as http_get, send},
    keys::{claims, jwks},
    server::serve_axum,
    server::{Reply, TestServer},
};
use http::Method;
use serde_json::json;

/// A custom trust mechanism: requests from the loopback interface are trusted.
#[derive(Debug)]
struct Loopback;

impl Verifier for Loopback {
    fn verify<'a>(
        &'a self,
        req: &'a RequestView<'a>,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
        let result = match req.peer() {
            Some(p) if p.ip().is_loopback() => Ok(Authenticated::new(vec![Identity::new(
                IdentityKind::Workload,
                p.ip().to_string(),
            )])),
            _ => Err(Rejection::MissingCredentials),
        };
        Box::pin(async move { result })
    }
}

struct App {
    base: String,
    audit: Arc<MemoryAuditSink>,
    key: TestKey,
    iss: String,
    jwks: TestServer,
}

async fn app(unmatched: Unmatched) -> App {
    let key = TestKey::generate("ES256", "k1");
    let jwks_server = TestServer::start().await;
    jwks_server.set("/jwks", Reply::json(&jwks(&[&key])));
    let iss = jwks_server.url("");
    let jwt = JwtVerifier::builder()
        .issuer(
            IssuerSpec::new(&iss)
                .jwks_uri(&jwks_server.url("/jwks"))
                .audience("orders-api"),
        )
        .build()
        .unwrap();
    let topology = Topology::builder()
        .domain(Domain::builder("outer").trust("org-jwt").access("org-jwt"))
        .domain(
            Domain::builder("inner")
                .parent("outer")
                .access("org-jwt")
                .trust("network"),
        )
        .endpoint(Endpoint::public("outer", "/health").methods(["GET"]))
        .endpoint(
            Endpoint::boundary("outer", "/orders/{id}")
                .methods(["GET"])
                .scopes(["orders:read"])
                .claim_equals("tenant", "acme"),
        )
        .endpoint(Endpoint::boundary("inner", "/payments").methods(["POST"]))
        .endpoint(Endpoint::interior("inner", "/ledger").methods(["GET"]))
        .realm("orders")
        .unmatched(unmatched)
        .build()
        .unwrap();
    let audit = Arc::new(MemoryAuditSink::default());
    let enforcer = Enforcer::builder(topology)
        .mechanism("org-jwt", Arc::new(jwt))
        .mechanism("network", Arc::new(Loopback))
        .audit(audit.clone())
        .build()
        .unwrap();

    #[derive(serde::Deserialize)]
    struct OrderClaims {
        sub: String,
        tenant: String,
    }
    async fn order(Claims(c): Claims<OrderClaims>) -> String {
        format!("{} of {}", c.sub, c.tenant)
    }
    async fn whoami(Authorized(ctx): Authorized) -> String {
        let p = ctx.principal().unwrap();
        format!(
            "{}:{}:{}",
            ctx.lane().as_str(),
            p.kind().as_str(),
            p.subject()
        )
    }
    let router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/orders/{id}", get(order))
        .route("/payments", post(whoami))
        .route("/ledger", get(whoami))
        .route("/admin", get(|| async { "secret" }))
        .layer(DharmaLayer::new(enforcer));
    App {
        base: format!("http://{}", serve_axum(router).await),
        audit,
        key,
        iss,
        jwks: jwks_server,
    }
}

impl App {
    fn token(&self, tenant: &str, scope: &str) -> String {
        let mut c = claims(&self.iss, "orders-api", scope);
        c["tenant"] = json!(tenant);
        self.key.sign(&c)
    }
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

#[tokio::test]
async fn admitted_requests_reach_handlers_with_their_context() {
    let a = app(Unmatched::Deny).await;
    let token = a.token("acme", "orders:read");
    let r = http_get(&a.url("/orders/7"), Some(&token)).await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "alice of acme"));
    let r = send(
        Method::HEAD,
        &a.url("/orders/7"),
        &[("authorization", &format!("Bearer {token}"))],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "HEAD is served by a GET endpoint");
    // Hierarchical endpoint: inner boundary, reached with the outer trust mechanism.
    let r = send(
        Method::POST,
        &a.url("/payments"),
        &[("authorization", &format!("Bearer {token}"))],
        None,
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.body.as_str()),
        (200, "access:end_user:alice")
    );
    // Interior endpoint of the inner domain: trusted by the network mechanism.
    let r = http_get(&a.url("/ledger"), None).await;
    assert_eq!(
        (r.status.as_u16(), r.body.as_str()),
        (200, "trust:workload:127.0.0.1")
    );
    // Public endpoint: no credentials needed, still audited.
    assert_eq!(http_get(&a.url("/health"), None).await.status, 200);
    let events = a.audit.events();
    assert_eq!(events.len(), 5);
    assert!(events.iter().all(|e| e.outcome == Outcome::Allow));
    assert_eq!(events[3].lane, Some(Lane::Trust));
    assert_eq!(events[3].mechanism.as_ref().unwrap().as_str(), "network");
    assert_eq!(events[4].lane, Some(Lane::Public));
    assert!(
        events[0]
            .identities
            .iter()
            .any(|i| i.kind == IdentityKind::ClientApp && &*i.subject == "web-app")
    );
}

#[tokio::test]
async fn rejections_follow_rfc6750() {
    let a = app(Unmatched::Deny).await;
    let good = a.token("acme", "orders:read");
    // No credentials: bare challenge with the realm.
    let r = http_get(&a.url("/orders/7"), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="orders""#)
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // Another scheme counts as no bearer credentials.
    let r = send(
        Method::GET,
        &a.url("/orders/7"),
        &[("authorization", "Basic dXNlcjpwYXNz")],
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    // Malformed: repeated header, bad syntax, suspicious path.
    let auth = format!("Bearer {good}");
    let r = send(
        Method::GET,
        &a.url("/orders/7"),
        &[("authorization", &auth), ("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            r#"Bearer realm="orders", error="invalid_request", error_description="the authorization header is malformed""#
        )
    );
    let r = send(
        Method::GET,
        &a.url("/orders/7"),
        &[("authorization", "Bearer a b")],
        None,
    )
    .await;
    assert_eq!(r.status, 400);
    let r = http_get(&a.url("/orders/%2e%2e"), Some(&good)).await;
    assert_eq!(r.status, 400);
    // Invalid token.
    let r = http_get(&a.url("/orders/7"), Some("e30.e30.e30")).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            r#"Bearer realm="orders", error="invalid_token", error_description="the access token is invalid""#
        )
    );
    assert_eq!(r.json()["error"], "invalid_token");
    // Missing scope: 403 insufficient_scope with the scope.
    let r = http_get(&a.url("/orders/7"), Some(&a.token("acme", "profile"))).await;
    assert_eq!(r.status, 403);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .ends_with(r#"scope="orders:read""#)
    );
    // Wrong claim: 403 without a challenge (another token would not help).
    let r = http_get(
        &a.url("/orders/7"),
        Some(&a.token("umbrella", "orders:read")),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("www-authenticate"), None);
    assert_eq!(r.body, r#"{"error":"forbidden"}"#);
    // Undeclared route: denied even though the router has it.
    let r = http_get(&a.url("/admin"), Some(&good)).await;
    assert_eq!(r.status, 404);
    assert_ne!(r.body, "secret");
    let reasons: Vec<_> = a.audit.events().iter().map(|e| e.reason).collect();
    assert_eq!(
        reasons,
        [
            "missing_credentials",
            "missing_credentials",
            "malformed_credentials",
            "malformed_credentials",
            "malformed_path",
            "token_malformed",
            "insufficient_scope",
            "claim_requirement_failed",
            "no_endpoint",
        ]
    );
    for e in a.audit.events() {
        assert!(
            !format!("{e:?}").contains(&good[..30]),
            "token in audit event"
        );
    }
    let forbidden = &a.audit.events()[7];
    assert_eq!(
        &*forbidden.identities[0].subject, "alice",
        "a deny after authentication names who"
    );
}

#[tokio::test]
async fn key_source_down_is_503_with_detail_only_in_audit() {
    let a = app(Unmatched::Deny).await;
    a.jwks.set(
        "/jwks",
        Reply::status(502, "bad gateway from upstream 10.1.2.3"),
    );
    let r = http_get(&a.url("/orders/7"), Some(&a.token("acme", "orders:read"))).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body, r#"{"error":"temporarily_unavailable"}"#);
    assert_eq!(r.header("www-authenticate"), None);
    let e = &a.audit.events()[0];
    assert_eq!(e.reason, "key_source_unavailable");
    assert!(e.detail.as_deref().unwrap().contains("502"));
    assert!(!r.body.contains("10.1.2.3"));
}

#[tokio::test]
async fn unmatched_allow_lets_undeclared_routes_through() {
    let a = app(Unmatched::Allow).await;
    let r = http_get(&a.url("/admin"), None).await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "secret"));
    assert_eq!(a.audit.events()[0].lane, Some(Lane::Unmatched));
    // Declared endpoints are still enforced.
    assert_eq!(http_get(&a.url("/orders/7"), None).await.status, 401);
}

#[tokio::test]
async fn extractor_without_the_layer_is_a_server_error() {
    async fn whoami(Authorized(_): Authorized) -> &'static str {
        "unreachable"
    }
    let addr = serve_axum(Router::new().route("/", get(whoami))).await;
    let r = http_get(&format!("http://{addr}/"), None).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.body, "internal error");
}

/// The issue's reproduction: `Claims<T>` answered 401 after the audit trail said the
/// request was allowed. A handler that asks for claims the policy does not guarantee is a
/// server bug: 500, and the one audit event stays the decision that was made.
#[tokio::test]
async fn claims_of_the_wrong_shape_are_a_server_error_not_a_refusal() {
    #[derive(serde::Deserialize)]
    struct Needs {
        #[expect(dead_code, reason = "only its presence is asked for")]
        tenant: String,
    }
    async fn handler(Claims(_): Claims<Needs>) -> &'static str {
        "unreachable"
    }
    let topology = Topology::builder()
        .domain(Domain::builder("edge"))
        .endpoint(Endpoint::public("edge", "/open"))
        .build()
        .unwrap();
    let audit = Arc::new(MemoryAuditSink::default());
    let enforcer = Enforcer::builder(topology)
        .audit(audit.clone())
        .build()
        .unwrap();
    let app = Router::new()
        .route("/open", get(handler))
        .layer(DharmaLayer::new(enforcer));
    let addr = serve_axum(app).await;
    let r = http_get(&format!("http://{addr}/open"), None).await;
    assert_eq!(
        (r.status.as_u16(), r.body.as_str()),
        (500, "internal error")
    );
    let events = audit.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reason, "allowed");
}

/// Denials rendered by the application (here RFC 9457 problem details): the body and its
/// content type change, the status and challenge stay dharma's.
#[tokio::test]
async fn denials_can_be_rendered_as_problem_details() {
    /// Never sees credentials.
    #[derive(Debug)]
    struct Nobody;
    impl Verifier for Nobody {
        fn verify<'a>(
            &'a self,
            _: &'a RequestView<'a>,
        ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
            Box::pin(async { Err(Rejection::MissingCredentials) })
        }
    }
    let topology = Topology::builder()
        .domain(Domain::builder("edge").access("nobody"))
        .endpoint(Endpoint::boundary("edge", "/orders").methods(["GET"]))
        .realm("shop")
        .build()
        .unwrap();
    let enforcer = Enforcer::builder(topology)
        .mechanism("nobody", Arc::new(Nobody))
        .render_denials(dharma_core::reject::DenialRenderer::problem_json())
        .build()
        .unwrap();
    let app = Router::new()
        .route("/orders", get(|| async { "orders" }))
        .layer(DharmaLayer::new(enforcer));
    let addr = serve_axum(app).await;
    let r = http_get(&format!("http://{addr}/orders"), None).await;
    assert_eq!(r.status.as_u16(), 401);
    assert_eq!(r.header("www-authenticate"), Some(r#"Bearer realm="shop""#));
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let body = r.json();
    assert_eq!(
        (
            body["type"].as_str(),
            body["title"].as_str(),
            body["status"].as_u64()
        ),
        (Some("about:blank"), Some("Unauthorized"), Some(401))
    );
    assert_eq!(body["error"], "unauthorized");
    // A 405 keeps its Allow header.
    let r = send(Method::POST, &format!("http://{addr}/orders"), &[], None).await;
    assert_eq!(r.status.as_u16(), 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    assert_eq!(r.json()["status"], 405);
}
