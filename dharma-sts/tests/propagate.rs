//! Outbound propagation: a burst of calls costs one exchange at the real token service,
//! a `401` costs exactly one more, and the layer works under a hyper client (to an axum
//! service behind dharma) and a tonic channel (to a tonic service behind dharma).

#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use std::{
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{Router, routing::get};
use bytes::Bytes;
use common::*;
use dharma_axum::{Authorized, DharmaLayer};
use dharma_core::{
    InboundToken,
    audit::{MemoryAuditSink, TokenActivity},
    jose::Algorithm,
    mechanism::jwt::{IssuerSpec, JwtVerifier},
    model::{Domain, Endpoint},
};
use dharma_sts::{
    ClientPolicy, Signer, SigningKey, TokenService,
    propagate::{Exchange, Forward, PropagateLayer, SourceError, StaticToken, TokenEndpoint},
};
use dharma_test_support::{TestKey, keys::claims, server::serve_axum};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tower::{Layer, ServiceExt, service_fn};

const IDP: &str = "https://idp.example";
const STS: &str = "https://sts.outer.example";

struct World {
    idp: TestKey,
    audit: Arc<MemoryAuditSink>,
    base: String,
    exchange: Arc<Exchange>,
}

async fn world() -> World {
    let org = Org::new();
    let idp = TestKey::generate("ES256", "idp");
    let subject = jwt_verifier(&idp, IDP, "outer");
    let audit = Arc::new(MemoryAuditSink::default());
    let signer = Signer::key_set(SigningKey::generate(Algorithm::Es256).unwrap());
    let sts = TokenService::builder(STS, Arc::new(signer))
        .client(
            ClientPolicy::new(GATEWAY_ID)
                .exchange()
                .audience("orders")
                .scope("orders:read"),
        )
        .subject_tokens(Arc::new(subject))
        .audit(audit.clone())
        .build()
        .unwrap();
    let base = serve(&org, Arc::new(sts), audit.clone()).await;
    // The gateway authenticates to the token service with its own x5c JWT.
    let own = StaticToken::new(&workload_token(&org.gateway, GATEWAY_ID, "outer"));
    let endpoint = TokenEndpoint::builder(&format!("{base}/sts/token"))
        .bearer(Arc::new(own))
        .build()
        .unwrap();
    World {
        idp,
        audit,
        base,
        exchange: Arc::new(Exchange::new(endpoint)),
    }
}

impl World {
    fn exchanges(&self) -> usize {
        self.audit
            .token_events()
            .iter()
            .filter(|e| e.activity == TokenActivity::Exchanged)
            .count()
    }
}

fn request(inbound: Option<&InboundToken>) -> Request<Full<Bytes>> {
    let mut request = Request::get("http://downstream.invalid/orders")
        .body(Full::default())
        .unwrap();
    if let Some(token) = inbound {
        request.extensions_mut().insert(token.clone());
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_costs_one_exchange_and_a_401_one_more() {
    let w = world().await;
    let inbound = InboundToken::new(&w.idp.sign(&claims(IDP, "outer", "orders:read")));
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let reject_next = Arc::new(AtomicBool::new(false));
    let downstream = {
        let seen = seen.clone();
        let reject_next = reject_next.clone();
        service_fn(move |request: Request<Full<Bytes>>| {
            let auth = request.headers()["authorization"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(
                request.extensions().get::<InboundToken>().is_none(),
                "the inbound token went on"
            );
            seen.lock().unwrap().push(auth);
            let status = if reject_next.swap(false, Ordering::SeqCst) {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::OK
            };
            async move {
                let mut response = Response::new(Full::<Bytes>::default());
                *response.status_mut() = status;
                Ok::<_, Infallible>(response)
            }
        })
    };
    let client = PropagateLayer::new(w.exchange.clone(), "orders").layer(downstream);

    let calls = (0..1000).map(|_| client.clone().oneshot(request(Some(&inbound))));
    let answers = futures_util::future::join_all(calls).await;
    assert!(
        answers
            .iter()
            .all(|r| r.as_ref().unwrap().status() == StatusCode::OK)
    );
    assert_eq!(
        w.exchanges(),
        1,
        "a thousand concurrent calls, one exchange"
    );
    let first = seen.lock().unwrap()[0].clone();
    assert!(seen.lock().unwrap().iter().all(|a| *a == first));
    assert!(
        !first.contains(inbound.secret()),
        "the exchanged token, not the inbound one"
    );
    let minted = claims_of(first.strip_prefix("Bearer ").unwrap());
    assert_eq!(
        (minted["sub"].as_str(), minted["aud"].as_str()),
        (Some("alice"), Some("orders"))
    );

    // The downstream refuses the token once: the next call exchanges again, once.
    reject_next.store(true, Ordering::SeqCst);
    let refused = client
        .clone()
        .oneshot(request(Some(&inbound)))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    for _ in 0..3 {
        let ok = client
            .clone()
            .oneshot(request(Some(&inbound)))
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
    }
    assert_eq!(w.exchanges(), 2, "one new exchange after the 401");
    let last = seen.lock().unwrap().last().unwrap().clone();
    assert_ne!(last, first);

    // Another subject is another exchange; no inbound token, no call at all.
    let other = InboundToken::new(&w.idp.sign(&claims(IDP, "outer", "orders:read")));
    client.clone().oneshot(request(Some(&other))).await.unwrap();
    assert_eq!(w.exchanges(), 3);
    let calls_before = seen.lock().unwrap().len();
    let error = client.clone().oneshot(request(None)).await.unwrap_err();
    assert_eq!(
        error.downcast_ref::<SourceError>(),
        Some(&SourceError::NoInboundToken)
    );
    assert_eq!(seen.lock().unwrap().len(), calls_before, "nothing was sent");

    // A subject the token service refuses: the call fails with its OAuth error.
    let stranger = InboundToken::new(&TestKey::generate("ES256", "idp").sign(&claims(
        IDP,
        "outer",
        "orders:read",
    )));
    let error = client
        .clone()
        .oneshot(request(Some(&stranger)))
        .await
        .unwrap_err();
    match error.downcast_ref::<SourceError>() {
        Some(SourceError::Refused(e)) => assert_eq!(e.code().as_str(), "invalid_request"),
        other => panic!("{other:?}"),
    }
}

/// A downstream axum service behind dharma, trusting the token service's key set.
async fn orders_service(sts_base: &str) -> String {
    let verifier = JwtVerifier::builder()
        .issuer(
            IssuerSpec::new(STS)
                .jwks_uri(&format!("{sts_base}/sts/jwks.json"))
                .audience("orders"),
        )
        .build()
        .unwrap();
    let enforcer = guard(
        Domain::builder("outer").trust("sts-jwt"),
        [Endpoint::interior("outer", "/orders")
            .methods(["GET"])
            .scopes(["orders:read"])],
        ("sts-jwt", Arc::new(verifier)),
        Arc::default(),
    );
    async fn who(Authorized(ctx): Authorized) -> String {
        ctx.principal().unwrap().subject().to_owned()
    }
    let app = Router::new()
        .route("/orders", get(who))
        .layer(DharmaLayer::new(enforcer));
    format!("http://{}", serve_axum(app).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_hyper_client() {
    let w = world().await;
    let orders = orders_service(&w.base).await;
    let hyper = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let client = PropagateLayer::new(w.exchange.clone(), "orders")
        .scope("orders:read")
        .layer(hyper);
    let inbound = InboundToken::new(&w.idp.sign(&claims(IDP, "outer", "orders:read")));
    for _ in 0..3 {
        let mut request = Request::get(format!("{orders}/orders"))
            .body(Full::default())
            .unwrap();
        request.extensions_mut().insert(inbound.clone());
        let response = client.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap();
        assert_eq!(body.to_bytes(), "alice");
    }
    assert_eq!(w.exchanges(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_tonic_channel() {
    use tonic::transport::{Channel, Server};
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    // The inner service forwards the caller's JWT (accountability in the inner domain):
    // its dharma accepts the IdP's tokens for "outer".
    let idp = TestKey::generate("ES256", "idp");
    let audit = Arc::new(MemoryAuditSink::default());
    let enforcer = guard(
        Domain::builder("inner").access("jwt"),
        [Endpoint::boundary("inner", "/grpc.health.v1.Health/Check").methods(["POST"])],
        ("jwt", Arc::new(jwt_verifier(&idp, IDP, "outer"))),
        audit.clone(),
    );
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Behind dharma's layer, a layer that notes the inbound token the handler would see.
    let seen = Arc::new(Mutex::new(None::<String>));
    let note = {
        let seen = seen.clone();
        tower::util::MapRequestLayer::new(move |request: Request<tonic::body::Body>| {
            *seen.lock().unwrap() = request
                .extensions()
                .get::<InboundToken>()
                .map(|t| t.secret().to_owned());
            request
        })
    };
    let server = Server::builder()
        .layer(
            tower::ServiceBuilder::new()
                .layer(dharma_tonic::DharmaGrpcLayer::new(enforcer))
                .layer(note),
        )
        .add_service(health)
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);

    let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let channel = PropagateLayer::new(Arc::new(Forward), "inner").layer(channel);
    let mut client = HealthClient::new(channel);
    let token = idp.sign(&claims(IDP, "outer", ""));
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request.extensions_mut().insert(InboundToken::new(&token));
    let answer = client.check(request).await;
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(seen.lock().unwrap().as_deref(), Some(token.as_str()));
    assert_eq!(audit.events()[0].identities[0].subject.as_ref(), "alice");

    // Without an inbound token the source has nothing to forward: no request is sent.
    let refused = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("no inbound token"),
        "{refused:?}"
    );
    assert_eq!(audit.events().len(), 1);
}

/// The flow in miniature: a client calls the gateway (dharma admits its JWT); the
/// gateway's handler calls the orders service with the token exchanged for it, taking
/// the inbound token from its own request's extensions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_propagates_the_token_it_was_admitted_with() {
    use axum::{Extension, extract::State};

    let w = world().await;
    let orders = orders_service(&w.base).await;
    let enforcer = guard(
        Domain::builder("outer").access("idp"),
        [Endpoint::boundary("outer", "/summary").methods(["GET"])],
        ("idp", Arc::new(jwt_verifier(&w.idp, IDP, "outer"))),
        Arc::default(),
    );
    type Downstream = tower::util::BoxCloneSyncService<
        Request<Full<Bytes>>,
        Response<hyper::body::Incoming>,
        dharma_sts::propagate::BoxError,
    >;
    let hyper = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let downstream: Downstream = tower::util::BoxCloneSyncService::new(
        PropagateLayer::new(w.exchange.clone(), "orders").layer(hyper),
    );
    async fn summary(
        State((downstream, orders)): State<(Downstream, String)>,
        Extension(inbound): Extension<InboundToken>,
    ) -> String {
        let mut request = Request::get(format!("{orders}/orders"))
            .body(Full::default())
            .unwrap();
        request.extensions_mut().insert(inbound);
        let response = downstream.oneshot(request).await.unwrap();
        let status = response.status();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        format!("{status} {}", String::from_utf8_lossy(&body))
    }
    let app = Router::new()
        .route("/summary", get(summary))
        .with_state((downstream, orders))
        .layer(DharmaLayer::new(enforcer));
    let gateway = format!("http://{}", serve_axum(app).await);
    let token = w.idp.sign(&claims(IDP, "outer", "orders:read"));
    let resp = dharma_test_support::client::get(&format!("{gateway}/summary"), Some(&token)).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.body, "200 OK alice");
    assert_eq!(w.exchanges(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_reqwest_client() {
    use dharma_sts::propagate::ReqwestService;

    let w = world().await;
    let orders = orders_service(&w.base).await;
    let client = PropagateLayer::new(w.exchange.clone(), "orders")
        .layer(ReqwestService::new(reqwest::Client::new()));
    let inbound = InboundToken::new(&w.idp.sign(&claims(IDP, "outer", "orders:read")));
    for _ in 0..2 {
        let request = Request::get(format!("{orders}/orders"))
            .extension(inbound.clone())
            .body(reqwest::Body::from(""))
            .unwrap();
        let response = client.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap();
        assert_eq!(body.to_bytes(), "alice");
    }
    assert_eq!(w.exchanges(), 1);
}
