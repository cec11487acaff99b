//! End to end against a real OpenID provider (`oidc-provider` 9 from npm) on 127.0.0.1:
//! it issues client-credentials JWT access tokens, an axum app protected by dharma admits
//! them and refuses tampered, expired, wrong-audience and wrong-scope ones.

use std::{sync::Arc, time::Duration};

use axum::{Router, routing::get};
use dharma_axum::{Authorized, DharmaLayer};
use dharma_core::{
    Enforcer,
    audit::{MemoryAuditSink, Outcome},
    clock::{Clock, ManualClock},
    mechanism::jwt::{IssuerSpec, JwtVerifier},
    model::{Domain, Endpoint, Topology},
};
use dharma_test_support::{
    client::get as http_get,
    idp::{Idp, OTHER_RESOURCE, RESOURCE},
    server::serve_axum,
    tamper,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_tokens_through_axum() {
    let idp = Idp::start().await;
    let clock = Arc::new(ManualClock::starting_now());
    let jwt = JwtVerifier::builder()
        .issuer(IssuerSpec::new(idp.issuer()).discovery().audience(RESOURCE))
        .require_type("at+jwt")
        .leeway(Duration::from_secs(5))
        .clock(clock.clone())
        .build()
        .unwrap();
    jwt.warm_up()
        .await
        .expect("keys load from the provider's discovery document");
    let audit = Arc::new(MemoryAuditSink::default());
    let topology = Topology::builder()
        .domain(
            Domain::builder("outer")
                .relation("coarse-grained services")
                .access("oauth"),
        )
        .endpoint(
            Endpoint::boundary("outer", "/orders")
                .methods(["GET"])
                .scopes(["orders:read"]),
        )
        .endpoint(
            Endpoint::boundary("outer", "/orders/write")
                .methods(["GET"])
                .scopes(["orders:write"]),
        )
        .build()
        .unwrap();
    let enforcer = Enforcer::builder(topology)
        .mechanism("oauth", Arc::new(jwt.clone()))
        .audit(audit.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    async fn who(Authorized(ctx): Authorized) -> String {
        let p = ctx.principal().unwrap();
        format!("{}:{}", p.kind().as_str(), p.subject())
    }
    let app = Router::new()
        .route("/orders", get(who))
        .route("/orders/write", get(who))
        .layer(DharmaLayer::new(enforcer));
    let base = format!("http://{}", serve_axum(app).await);

    // A genuine token is admitted, and the handler sees the client as the principal.
    let read = idp.token(RESOURCE, "orders:read").await;
    let resp = http_get(&format!("{base}/orders"), Some(&read)).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.body, "client_app:svc-client");
    // Again: served from the verified-token cache.
    assert_eq!(
        http_get(&format!("{base}/orders"), Some(&read))
            .await
            .status,
        200
    );

    // Wrong scope: 403 insufficient_scope naming the scope.
    let resp = http_get(&format!("{base}/orders/write"), Some(&read)).await;
    assert_eq!(resp.status, 403);
    assert_eq!(
        resp.header("www-authenticate").unwrap(),
        r#"Bearer error="insufficient_scope", error_description="the access token does not grant the required scope", scope="orders:write""#
    );

    // Tampered: the scope widened, the signature kept.
    let tampered = tamper(&read, |c| c["scope"] = "orders:read orders:write".into());
    let resp = http_get(&format!("{base}/orders/write"), Some(&tampered)).await;
    assert_eq!(resp.status, 401);
    assert!(
        resp.header("www-authenticate")
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );

    // Wrong audience: a token for another resource server.
    let other = idp.token(OTHER_RESOURCE, "orders:read").await;
    let resp = http_get(&format!("{base}/orders"), Some(&other)).await;
    assert_eq!(resp.status, 401);

    // Expired: the same genuine token, an hour later.
    clock.advance(Duration::from_secs(3600));
    let resp = http_get(&format!("{base}/orders"), Some(&read)).await;
    assert_eq!(resp.status, 401);
    assert!(
        resp.header("www-authenticate")
            .unwrap()
            .contains("the access token expired")
    );

    // No token at all.
    let resp = http_get(&format!("{base}/orders"), None).await;
    assert_eq!(resp.status, 401);
    assert_eq!(resp.header("www-authenticate").unwrap(), "Bearer");

    let reasons: Vec<_> = audit
        .events()
        .iter()
        .map(|e| (e.outcome, e.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            (Outcome::Allow, "allowed"),
            (Outcome::Allow, "allowed"),
            (Outcome::Deny, "insufficient_scope"),
            (Outcome::Deny, "token_bad_signature"),
            (Outcome::Deny, "token_wrong_audience"),
            (Outcome::Deny, "token_expired"),
            (Outcome::Deny, "missing_credentials"),
        ]
    );
    let allowed = &audit.events()[0];
    assert_eq!(allowed.identities[0].subject.as_ref(), "svc-client");
    assert!(allowed.peer.unwrap().ip().is_loopback());
    // The audit trail names tokens by jti, never by value.
    let jti = allowed.identities[0].token_id.clone().unwrap();
    assert!(!read.contains(&*jti) || jti.len() < 64);
    for e in audit.events() {
        let text = format!("{e:?}");
        assert!(
            !text.contains(&read[..40]),
            "token leaked into audit: {text}"
        );
    }
    // One discovery + one JWKS fetch served everything.
    assert_eq!(jwt.key_fetches()[0].1, 1);
    let _ = clock.now();
}
