//! The quickstart: an axum service protected by dharma, with no external service.
//!
//! The process plays three parts on 127.0.0.1:
//! 1. a token issuer: it generates a signing key and publishes it as a JWK Set;
//! 2. the protected orders service: an axum app behind `DharmaLayer`, configured from
//!    the TOML below (one boundary endpoint needing `orders:read`, a public health check);
//! 3. a client: it calls the service with a good token, with none, and with a token that
//!    lacks the scope, and prints what came back.
//!
//! Run it with `cargo run -p dharma-examples --bin quickstart`. Audit events are printed
//! as `dharma::audit` log lines.

use std::net::SocketAddr;

use axum::{Json, Router, routing::get};
use dharma_axum::{Authorized, DharmaLayer};
use dharma_core::config::Config;
use dharma_test_support::{TestKey, client, keys};

const CONFIG: &str = r#"
[enforcer]
realm = "orders"

[mechanisms.org-jwt]
kind = "jwt"
require_type = ["at+jwt"]

[[mechanisms.org-jwt.issuers]]
issuer = "{ISSUER}"
jwks_uri = "{ISSUER}/jwks"
audiences = ["orders-api"]

[[domains]]
name = "outer"
relation = "coarse-grained order services"
access = "org-jwt"

[[endpoints]]
domain = "outer"
path = "/health"
methods = ["GET"]
exposure = "public"

[[endpoints]]
domain = "outer"
path = "/orders/{id}"
methods = ["GET"]
exposure = "boundary"
scopes = ["orders:read"]
"#;

async fn order(Authorized(ctx): Authorized) -> Json<serde_json::Value> {
    let caller = ctx.principal().map(|p| p.subject().to_owned());
    Json(
        serde_json::json!({ "order": 42, "caller": caller, "domain": ctx.domain().map(|d| d.to_string()) }),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_target(true)
        .without_time()
        .init();

    // 1. The issuer: a fresh key, published on 127.0.0.1.
    let key = TestKey::generate("ES256", "quickstart-1");
    let issuer_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let issuer = format!("http://{}", issuer_listener.local_addr()?);
    let jwks = keys::jwks(&[&key]);
    let issuer_app = Router::new().route("/jwks", get(move || async move { Json(jwks) }));
    tokio::spawn(async move { axum::serve(issuer_listener, issuer_app).await });

    // 2. The service, configured from the file: one call loads it, fetches the keys
    //    before the service serves and keeps them fresh while `dharma` lives. A service
    //    reading a file calls `dharma_core::config::start(path)`.
    let dharma = Config::from_toml(&CONFIG.replace("{ISSUER}", &issuer))?
        .loader()
        .start()
        .await?;
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/orders/{id}", get(order))
        .layer(DharmaLayer::new(dharma.enforcer().clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let service = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });

    // 3. The client.
    let good = key.sign(&keys::claims(&issuer, "orders-api", "orders:read"));
    let unscoped = key.sign(&keys::claims(&issuer, "orders-api", "profile"));
    for (what, token) in [
        ("a token with orders:read", Some(good.as_str())),
        ("no token", None),
        ("a token without the scope", Some(unscoped.as_str())),
    ] {
        let r = client::get(&format!("{service}/orders/42"), token).await;
        println!("GET /orders/42 with {what}: {} {}", r.status, r.body);
        if let Some(challenge) = r.header("www-authenticate") {
            println!("    WWW-Authenticate: {challenge}");
        }
    }
    Ok(())
}
