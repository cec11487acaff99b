//! The DHARMA gateway flow against a real OpenID provider (`oidc-provider` on 127.0.0.1):
//! a client's opaque access token is introspected and exchanged (with curl, as any
//! client would) for a JWT signed with the token service's organisation certificate; a
//! downstream axum service accepts it through its x5c trust mechanism, a service of
//! another audience refuses it, and a revoked subject token gets nothing. And the other
//! way round: the propagation layer exchanges at the provider itself (its RFC 8693 grant
//! added with `registerGrantType`).

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::{process::Command, sync::Arc, time::Duration};

use axum::{Router, routing::get};
use common::*;
use dharma_axum::{Authorized, DharmaLayer};
use dharma_core::{
    InboundToken,
    audit::{MemoryAuditSink, TokenActivity},
    mechanism::introspection::{ClientAuth, IntrospectionVerifier},
    model::{Domain, Endpoint},
};
use dharma_sts::{
    ClientPolicy, Signer, TokenService,
    propagate::{Exchange, PropagateLayer, SourceError, TokenEndpoint},
};
use dharma_test_support::{
    client::get as http_get,
    idp::{CLIENT_ID, CLIENT_SECRET, Idp, OPAQUE_RESOURCE},
    server::serve_axum,
};
use serde_json::Value;

/// An outer service for `audience`: `/orders` interior, needing `orders:read`.
async fn downstream(org: &Org, audience: &str) -> String {
    let enforcer = guard(
        Domain::builder("outer").trust("org-jwt"),
        [Endpoint::interior("outer", "/orders")
            .methods(["GET"])
            .scopes(["orders:read"])],
        ("org-jwt", Arc::new(org.x5c_verifier(audience))),
        Arc::default(),
    );
    async fn who(Authorized(ctx): Authorized) -> String {
        ctx.identities()
            .iter()
            .map(|i| format!("{}:{}", i.kind().as_str(), i.subject()))
            .collect::<Vec<_>>()
            .join(" ")
    }
    let app = Router::new()
        .route("/orders", get(who))
        .layer(DharmaLayer::new(enforcer));
    format!("http://{}", serve_axum(app).await)
}

/// The exchange as the gateway sends it, with curl.
fn curl_exchange(base: &str, gateway: &str, subject: &str, audience: &str) -> (u16, Value) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-X", "POST"])
        .arg(format!("{base}/sts/token"))
        .args(["-H", &format!("authorization: Bearer {gateway}")])
        .args(["--data-urlencode", &format!("grant_type={EXCHANGE}")])
        .args(["--data-urlencode", &format!("subject_token={subject}")])
        .args([
            "--data-urlencode",
            &format!("subject_token_type={ACCESS_TOKEN}"),
        ])
        .args(["--data-urlencode", &format!("audience={audience}")])
        .args(["--data-urlencode", "scope=orders:read"])
        .args(["-w", "\n%{http_code}"])
        .output()
        .expect("curl must be installed");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), serde_json::from_str(body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_flow_against_a_real_provider() {
    let idp = Idp::start().await;
    let org = Org::new();
    let audit = Arc::new(MemoryAuditSink::default());
    let introspection = IntrospectionVerifier::builder(&idp.introspection_endpoint())
        .client(CLIENT_ID, CLIENT_SECRET, ClientAuth::Basic)
        .audience(OPAQUE_RESOURCE)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let signer = Signer::certificate(&org.sts.chain_pem(), &org.sts.key_pem()).unwrap();
    let sts = TokenService::builder(STS_ID, Arc::new(signer))
        .client(
            ClientPolicy::new(GATEWAY_ID)
                .exchange()
                .audience("orders")
                .scope("orders:read")
                .scope("orders:write"),
        )
        .subject_tokens(Arc::new(introspection))
        .audit(audit.clone())
        .build()
        .unwrap();
    let sts_base = serve(&org, Arc::new(sts), audit.clone()).await;
    let orders = downstream(&org, "orders").await;
    let billing = downstream(&org, "billing").await;
    let gateway = workload_token(&org.gateway, GATEWAY_ID, "outer");

    // The client's opaque token: meaningless to the outer services.
    let opaque = idp.token(OPAQUE_RESOURCE, "orders:read").await;
    assert_eq!(opaque.split('.').count(), 1, "an opaque token");
    assert_eq!(
        http_get(&format!("{orders}/orders"), Some(&opaque))
            .await
            .status,
        401
    );

    // The gateway exchanges it.
    let (status, body) = curl_exchange(&sts_base, &gateway, &opaque, "orders");
    assert_eq!(status, 200, "{body}");
    let jwt = body["access_token"].as_str().unwrap().to_owned();
    let header = header_of(&jwt);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["x5c"].as_array().unwrap().len(), 1);
    assert!(header.get("kid").is_none());
    let claims = claims_of(&jwt);
    assert_eq!(claims["iss"], STS_ID);
    assert_eq!(claims["sub"], CLIENT_ID);
    assert_eq!(claims["aud"], "orders");
    assert_eq!(claims["scope"], "orders:read");
    assert!(body["expires_in"].as_u64().unwrap() <= 300);

    // The downstream service accepts it with no key set to fetch; the user the token
    // service vouches for is the principal, and the token service is the workload.
    let resp = http_get(&format!("{orders}/orders"), Some(&jwt)).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(
        resp.body,
        format!("end_user:{CLIENT_ID} client_app:{GATEWAY_ID} workload:{STS_ID}")
    );
    // An outsider holding it cannot use it elsewhere: another audience refuses it.
    let resp = http_get(&format!("{billing}/orders"), Some(&jwt)).await;
    assert_eq!(resp.status, 401);
    assert!(
        resp.header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );

    // A revoked subject token is refused (the provider says it is inactive).
    let revoked = idp.token(OPAQUE_RESOURCE, "orders:read").await;
    idp.revoke(&revoked).await;
    let (status, body) = curl_exchange(&sts_base, &gateway, &revoked, "orders");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request");
    // An audience the gateway may not ask for.
    let (status, body) = curl_exchange(&sts_base, &gateway, &opaque, "billing");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target"))
    );

    let events = audit.token_events();
    let outcomes: Vec<_> = events.iter().map(|e| (e.activity, e.reason)).collect();
    assert_eq!(
        outcomes,
        [
            (TokenActivity::Exchanged, "exchanged"),
            (TokenActivity::Refused, "invalid_request"),
            (TokenActivity::Refused, "invalid_target"),
        ]
    );
    let exchanged = &events[0];
    assert_eq!(exchanged.client.as_deref(), Some(GATEWAY_ID));
    assert_eq!(exchanged.subject.as_deref(), Some(CLIENT_ID));
    assert_eq!(exchanged.issuer.as_deref(), Some(STS_ID));
    assert_eq!(exchanged.token_id.as_deref(), claims["jti"].as_str());
    for e in &events {
        let text = format!("{e:?}");
        assert!(!text.contains(&opaque) && !text.contains(&revoked) && !text.contains(&jwt));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propagation_exchanges_at_the_provider() {
    use bytes::Bytes;
    use http::{Method, Request, Response};
    use http_body_util::Full;
    use std::sync::Mutex;
    use tower::{Layer, ServiceExt, service_fn};

    let idp = Idp::start().await;
    let endpoint = TokenEndpoint::builder(&format!("{}/token", idp.issuer()))
        .client_secret_basic(CLIENT_ID, CLIENT_SECRET)
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let downstream = {
        let seen = seen.clone();
        service_fn(move |request: Request<Full<Bytes>>| {
            let auth = request.headers()["authorization"].to_str().unwrap();
            seen.lock()
                .unwrap()
                .push(auth.trim_start_matches("Bearer ").to_owned());
            async { Ok::<_, std::convert::Infallible>(Response::new(Full::<Bytes>::default())) }
        })
    };
    let exchange = Arc::new(Exchange::new(endpoint));
    let client = PropagateLayer::new(exchange.clone(), "orders")
        .scope("orders:read")
        .layer(downstream);
    let call = |inbound: &InboundToken| {
        let mut request = Request::get("http://orders.invalid/")
            .body(Full::default())
            .unwrap();
        request.extensions_mut().insert(inbound.clone());
        client.clone().oneshot(request)
    };

    let subject = idp.token(OPAQUE_RESOURCE, "orders:read orders:write").await;
    let inbound = InboundToken::new(&subject);
    call(&inbound).await.unwrap();
    call(&inbound).await.unwrap();
    let tokens = seen.lock().unwrap().clone();
    assert_eq!(tokens.len(), 2);
    assert_eq!(
        tokens[0], tokens[1],
        "the second call used the cached token"
    );
    assert_ne!(tokens[0], subject);

    // The provider says what it issued: active, for svc-client, narrowed to orders:read.
    let basic = format!(
        "Basic {}",
        base64_encode(format!("{CLIENT_ID}:{CLIENT_SECRET}").as_bytes())
    );
    let answer = dharma_test_support::client::send(
        Method::POST,
        &idp.introspection_endpoint(),
        &[("authorization", basic.as_str())],
        Some(&[("token", tokens[0].as_str())]),
    )
    .await
    .json();
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], CLIENT_ID);
    assert_eq!(answer["scope"], "orders:read");

    // A revoked subject token: the provider refuses the exchange and nothing is sent.
    let revoked = idp.token(OPAQUE_RESOURCE, "orders:read").await;
    idp.revoke(&revoked).await;
    let error = call(&InboundToken::new(&revoked)).await.unwrap_err();
    match error.downcast_ref::<SourceError>() {
        Some(SourceError::Refused(e)) => assert_eq!(e.code().as_str(), "invalid_request"),
        other => panic!("{other:?}"),
    }
    assert_eq!(seen.lock().unwrap().len(), 2);
}

/// The service's own token from the provider (client credentials with a resource
/// indicator), cached per audience, reaching a downstream that verifies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_from_the_provider() {
    use dharma_core::{
        mechanism::jwt::{IssuerSpec, JwtVerifier},
        model::{Domain, Endpoint},
    };
    use dharma_sts::propagate::ClientCredentials;
    use dharma_test_support::idp::RESOURCE;
    use tower::{Layer, ServiceExt};

    let idp = Idp::start().await;
    let endpoint = TokenEndpoint::builder(&format!("{}/token", idp.issuer()))
        .client_secret_basic(CLIENT_ID, CLIENT_SECRET)
        .audience_as_resource()
        .build()
        .unwrap();
    let verifier = JwtVerifier::builder()
        .issuer(IssuerSpec::new(idp.issuer()).discovery().audience(RESOURCE))
        .require_type("at+jwt")
        .build()
        .unwrap();
    let enforcer = guard(
        Domain::builder("outer").access("idp"),
        [Endpoint::boundary("outer", "/orders")
            .methods(["GET"])
            .scopes(["orders:read"])],
        ("idp", Arc::new(verifier)),
        Arc::default(),
    );
    async fn who(Authorized(ctx): Authorized) -> String {
        let p = ctx.principal().unwrap();
        format!("{}:{}", p.kind().as_str(), p.subject())
    }
    let app = Router::new()
        .route("/orders", get(who))
        .layer(DharmaLayer::new(enforcer));
    let orders = format!("http://{}", serve_axum(app).await);

    let source = Arc::new(ClientCredentials::new(endpoint));
    let hyper = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let client = PropagateLayer::new(source, RESOURCE)
        .scope("orders:read")
        .layer(hyper);
    for _ in 0..2 {
        let request = http::Request::get(format!("{orders}/orders"))
            .body(http_body_util::Full::default())
            .unwrap();
        let response = client.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(body, format!("client_app:{CLIENT_ID}"));
    }
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}
