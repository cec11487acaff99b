//! The actix-web routes answer as the axum ones do: a grant, a refusal with its RFC code,
//! the key set, and client authentication left to dharma's middleware.

#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

mod common;

use std::{sync::Arc, sync::mpsc, thread};

use actix_web::{App, HttpMessage, HttpRequest, HttpServer, web};
use common::*;
use dharma_actix::DharmaMiddleware;
use dharma_core::{
    Enforcer, InboundToken,
    audit::{MemoryAuditSink, TokenActivity},
    jose::Algorithm,
    model::{Domain, Endpoint},
    state::MemoryRevocations,
};
use dharma_sts::{ClientPolicy, Signer, SigningKey, TokenService};
use dharma_test_support::client::get;

/// Serves the token service with actix-web on a thread of its own; stops when the
/// returned handle is dropped.
fn serve_actix(
    enforcer: Enforcer,
    sts: Arc<TokenService>,
) -> (String, actix_web::dev::ServerHandle) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                App::new()
                    .wrap(DharmaMiddleware::new(enforcer.clone()))
                    .route("/inbound", web::get().to(inbound))
                    .service(
                        web::scope("/sts").configure(dharma_sts::actix::configure(sts.clone())),
                    )
            })
            .workers(1)
            .disable_signals()
            .bind("127.0.0.1:0")
            .unwrap();
            let addr = server.addrs()[0];
            let running = server.run();
            tx.send((format!("http://{addr}"), running.handle()))
                .unwrap();
            running.await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// Echoes the inbound token the middleware put in the request's extensions.
async fn inbound(request: HttpRequest) -> String {
    request
        .extensions()
        .get::<InboundToken>()
        .map_or_else(|| "none".to_owned(), |t| t.secret().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_middleware_hands_handlers_the_inbound_token() {
    let org = Org::new();
    let signer = Signer::key_set(SigningKey::generate(Algorithm::Es256).unwrap());
    let sts = TokenService::builder("https://sts.example", Arc::new(signer))
        .build()
        .unwrap();
    let enforcer = guard(
        Domain::builder("outer").trust("org-jwt"),
        [Endpoint::interior("outer", "/inbound").methods(["GET"])],
        ("org-jwt", Arc::new(org.x5c_verifier("outer"))),
        Arc::default(),
    );
    let (base, server) = serve_actix(enforcer, Arc::new(sts));
    let token = workload_token(&org.batch, BATCH_ID, "outer");
    let resp = get(&format!("{base}/inbound"), Some(&token)).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, token);
    server.stop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_routes_answer_like_axum() {
    let org = Org::new();
    let audit = Arc::new(MemoryAuditSink::default());
    let signer = Signer::key_set(SigningKey::generate(Algorithm::Es384).unwrap());
    let sts = TokenService::builder("https://sts.example", Arc::new(signer))
        .client(
            ClientPolicy::new(BATCH_ID)
                .client_credentials()
                .audience("orders")
                .scope("orders:read"),
        )
        .audit(audit.clone())
        .build()
        .unwrap();
    let sts = Arc::new(sts);
    let (base, server) = serve_actix(enforcer(&org, audit.clone()), sts.clone());
    let batch = workload_token(&org.batch, BATCH_ID, "outer");

    let resp = post(
        &base,
        Some(&batch),
        &[("grant_type", "client_credentials"), ("audience", "orders")],
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    assert_eq!(resp.header("pragma"), Some("no-cache"));
    let token = resp.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(header_of(&token)["alg"], "ES384");
    assert_eq!(claims_of(&token)["sub"], BATCH_ID);

    let resp = post(
        &base,
        Some(&batch),
        &[
            ("grant_type", "client_credentials"),
            ("audience", "billing"),
        ],
    )
    .await;
    assert_error(&resp, 400, "invalid_target");
    let resp = post(&base, Some(&batch), &[("grant_type", "refresh_token")]).await;
    assert_error(&resp, 400, "unsupported_grant_type");
    let resp = post(&base, None, &[("grant_type", "client_credentials")]).await;
    assert_eq!(resp.status, 401);
    assert_eq!(resp.header("www-authenticate"), Some("Bearer"));

    // A body over the limit is refused with the OAuth shape, not read whole.
    let big = "x".repeat(dharma_sts::MAX_BODY + 1);
    let resp = post(
        &base,
        Some(&batch),
        &[("grant_type", "client_credentials"), ("pad", &big)],
    )
    .await;
    assert_error(&resp, 400, "invalid_request");

    let jwks = get(&format!("{base}/sts/jwks.json"), None).await;
    assert_eq!(jwks.status, 200);
    assert_eq!(jwks.json(), sts.signer().jwks());
    assert_eq!(audit.token_events().len(), 4);
    server.stop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_routes_revoke_like_axum() {
    let org = Org::new();
    let audit = Arc::new(MemoryAuditSink::default());
    let signer = Signer::key_set(SigningKey::generate(Algorithm::Es256).unwrap());
    let sts = TokenService::builder("https://sts.example", Arc::new(signer))
        .client(
            ClientPolicy::new(BATCH_ID)
                .client_credentials()
                .audience("orders"),
        )
        .revocations(Arc::new(MemoryRevocations::default()))
        .audit(audit.clone())
        .build()
        .unwrap();
    let (base, server) = serve_actix(revoking_enforcer(&org, audit.clone()), Arc::new(sts));
    let batch = workload_token(&org.batch, BATCH_ID, "outer");
    let resp = post(
        &base,
        Some(&batch),
        &[("grant_type", "client_credentials"), ("audience", "orders")],
    )
    .await;
    let token = resp.json()["access_token"].as_str().unwrap().to_owned();
    let resp = post_to(&base, "/sts/revoke", Some(&batch), &[("token", &token)]).await;
    assert_eq!((resp.status.as_u16(), resp.body.as_str()), (200, ""));
    let jti = claims_of(&token)["jti"].as_str().unwrap().to_owned();
    let last = audit.token_events().pop().unwrap();
    assert_eq!(last.activity, TokenActivity::Revoked);
    assert_eq!(last.token_id.as_deref(), Some(jti.as_str()));
    assert_error(
        &post_to(&base, "/sts/revoke", Some(&batch), &[]).await,
        400,
        "invalid_request",
    );
    server.stop(true).await;
}
