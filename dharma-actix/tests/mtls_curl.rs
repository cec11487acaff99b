//! actix-web over rustls on 127.0.0.1 with `on_connect(dharma_actix::on_connect)`: the
//! client's certificate chain reaches the mTLS mechanism; `curl` with and without one.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, web};
use dharma_actix::{Authorized, DharmaMiddleware, on_connect};
use dharma_test_support::tls::{mtls_world, server_config};

async fn who(Authorized(ctx): Authorized) -> HttpResponse {
    HttpResponse::Ok().body(ctx.principal().unwrap().subject().to_owned())
}

#[actix_web::test]
async fn curl_with_and_without_a_client_certificate() {
    let world = Arc::new(mtls_world("GET", "/internal"));
    let enforcer = world.enforcer.clone();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(DharmaMiddleware::new(enforcer.clone()))
            .route("/internal", web::get().to(who))
    })
    .on_connect(on_connect)
    .workers(1)
    .disable_signals()
    .bind_rustls_0_23("127.0.0.1:0", (*server_config(&world.server)).clone())
    .unwrap();
    let port = server.addrs()[0].port();
    let running = server.run();
    let stop = running.handle();
    actix_web::rt::spawn(running);
    let w = world.clone();
    let checked =
        actix_web::rt::task::spawn_blocking(move || w.check_with_curl(port, "/internal")).await;
    stop.stop(true).await;
    checked.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
}
