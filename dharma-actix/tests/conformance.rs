//! The conformance suite (`dharma-test-support/conformance/cases.toml`) through actix-web
//! over real HTTP on 127.0.0.1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use actix_web::{App, HttpResponse, HttpServer, web};
use dharma_actix::DharmaMiddleware;
use dharma_test_support::{
    client::send,
    conformance::{cases, check_http, world},
};

#[actix_web::test]
async fn conformance_actix() {
    let world = world();
    let enforcer = world.enforcer.clone();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(DharmaMiddleware::new(enforcer.clone()))
            .default_service(web::to(|| async { HttpResponse::Ok().body("ok") }))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    let running = server.run();
    let stop = running.handle();
    actix_web::rt::spawn(running);
    let base = format!("http://{addr}");
    // The HTTP client runs on a Tokio runtime of its own, on a blocking thread, so the
    // actix runtime of this test keeps serving.
    let results = actix_web::rt::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut ran = 0;
            for case in cases() {
                let headers = world.headers(&case);
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let method = http::Method::from_bytes(case.method.as_bytes()).unwrap();
                let r = send(method, &format!("{base}{}", case.path), &headers, None).await;
                check_http(
                    &case,
                    r.status.as_u16(),
                    r.header("www-authenticate"),
                    &r.body,
                );
                world.check_audit(&case);
                ran += 1;
            }
            ran
        })
    })
    .await;
    stop.stop(true).await;
    let ran = results.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    assert!(ran >= 20);
}
