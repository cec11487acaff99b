//! dharma in an actix-web service: the same topology, decisions and answers as the axum
//! quickstart. Run with `cargo run -p dharma-examples --bin actix`.

use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, web};
use dharma_actix::{Authorized, DharmaMiddleware};
use dharma_core::{
    Enforcer,
    mechanism::jwt::{IssuerSpec, JwtVerifier, VerifyingKey},
    model::{Domain, Endpoint, Topology},
};
use dharma_test_support::{TestKey, client, keys};

async fn order(Authorized(ctx): Authorized) -> HttpResponse {
    let caller = ctx
        .principal()
        .map(|p| p.subject().to_owned())
        .unwrap_or_default();
    HttpResponse::Ok().body(format!("order 42 for {caller}"))
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The issuer's key; a real service would use `.discovery()` and `warm_up()`.
    let key = TestKey::generate("ES256", "actix-1");
    let jwt = JwtVerifier::builder()
        .issuer(
            IssuerSpec::new("https://idp.example")
                .keys([VerifyingKey::from_jwk(&key.jwk())?])
                .audience("orders-api"),
        )
        .build()?;
    let topology = Topology::builder()
        .domain(Domain::builder("outer").access("oauth"))
        .endpoint(
            Endpoint::boundary("outer", "/orders/{id}")
                .methods(["GET"])
                .scopes(["orders:read"]),
        )
        .realm("orders")
        .build()?;
    // Built once: every worker shares its keys and caches.
    let enforcer = Enforcer::builder(topology)
        .mechanism("oauth", Arc::new(jwt))
        .build()?;
    let server = HttpServer::new(move || {
        App::new()
            .wrap(DharmaMiddleware::new(enforcer.clone()))
            .route("/orders/{id}", web::get().to(order))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or("the server has no address")?;
    let base = format!("http://{addr}");
    let running = server.run();
    let stop = running.handle();
    actix_web::rt::spawn(running);

    let good = key.sign(&keys::claims(
        "https://idp.example",
        "orders-api",
        "orders:read",
    ));
    let lines = actix_web::rt::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let mut lines = Vec::new();
            for (what, token) in [
                ("a token with orders:read", Some(good.as_str())),
                ("no token", None),
            ] {
                let r = client::get(&format!("{base}/orders/42"), token).await;
                lines.push(format!(
                    "GET /orders/42 with {what}: {} {}",
                    r.status, r.body
                ));
                if let Some(challenge) = r.header("www-authenticate") {
                    lines.push(format!("    WWW-Authenticate: {challenge}"));
                }
            }
            Ok::<_, std::io::Error>(lines)
        })
    })
    .await??;
    stop.stop(true).await;
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
