//! RFC 7662 introspection against the real OpenID provider (opaque tokens) and against a
//! programmable server for the failure modes.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::{sync::Arc, time::Duration};

use dharma_core::{
    Decision, Enforcer, IdentityKind, Rejection, RequestView,
    audit::MemoryAuditSink,
    mechanism::introspection::{ClientAuth, IntrospectionVerifier},
    model::{Domain, Endpoint, Topology},
    reject::TokenError,
};
use dharma_test_support::{
    idp::{
        CLIENT_ID, CLIENT_SECRET, Idp, OPAQUE_RESOURCE, POST_CLIENT_ID, POST_CLIENT_SECRET,
        RESOURCE,
    },
    server::{Reply, TestServer},
};
use serde_json::json;

fn verifier(endpoint: &str, audience: &str) -> IntrospectionVerifier {
    IntrospectionVerifier::builder(endpoint)
        .client(CLIENT_ID, CLIENT_SECRET, ClientAuth::Basic)
        .audience(audience)
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_tokens_from_the_provider() {
    let idp = Idp::start().await;
    let v = verifier(&idp.introspection_endpoint(), OPAQUE_RESOURCE);
    let token = idp.token(OPAQUE_RESOURCE, "orders:read").await;

    // Active: the client is the principal; the second check is served from the cache.
    let a = v.verify_token(&token).await.unwrap();
    assert_eq!(a.identities()[0].kind(), IdentityKind::ClientApp);
    assert_eq!(a.identities()[0].subject(), CLIENT_ID);
    assert!(a.identities()[0].claims().has_scope("orders:read"));
    v.verify_token(&token).await.unwrap();
    assert_eq!(v.calls(), 1);

    // client_secret_post works too.
    let post = IntrospectionVerifier::builder(&idp.introspection_endpoint())
        .client(POST_CLIENT_ID, POST_CLIENT_SECRET, ClientAuth::Post)
        .audience(OPAQUE_RESOURCE)
        .build()
        .unwrap();
    post.verify_token(&token).await.unwrap();

    // Inactive: a made-up token; the answer is cached for a while.
    for _ in 0..3 {
        let e = v.verify_token("made-up-token").await.unwrap_err();
        assert!(
            matches!(e, Rejection::InvalidToken(TokenError::Inactive)),
            "{e:?}"
        );
        assert_eq!(e.status(), 401);
    }
    assert_eq!(v.calls(), 2);

    // Revoked: a fresh verifier (no cached answer) sees it inactive.
    idp.revoke(&token).await;
    let fresh = verifier(&idp.introspection_endpoint(), OPAQUE_RESOURCE);
    let e = fresh.verify_token(&token).await.unwrap_err();
    assert!(
        matches!(e, Rejection::InvalidToken(TokenError::Inactive)),
        "{e:?}"
    );

    // A JWT access token: the provider answers 400 unsupported_token_type, the client 401.
    let jwt = idp.token(RESOURCE, "orders:read").await;
    let e = v.verify_token(&jwt).await.unwrap_err();
    assert!(
        matches!(e, Rejection::InvalidToken(TokenError::UnsupportedTokenType)),
        "{e:?}"
    );
    assert_eq!(e.status(), 401);

    // Wrong audience: a verifier for another resource refuses the token, with its own call.
    let token = idp.token(OPAQUE_RESOURCE, "orders:read").await;
    let other = verifier(&idp.introspection_endpoint(), "urn:dharma:elsewhere");
    assert!(matches!(
        other.verify_token(&token).await,
        Err(Rejection::InvalidToken(TokenError::WrongAudience))
    ));
    v.verify_token(&token).await.unwrap();
    assert_eq!(other.calls(), 1);

    // Wrong client credentials are the verifier's problem: 503, not 401.
    let wrong = IntrospectionVerifier::builder(&idp.introspection_endpoint())
        .client(CLIENT_ID, "not-the-secret", ClientAuth::Basic)
        .audience(OPAQUE_RESOURCE)
        .build()
        .unwrap();
    let e = wrong.verify_token(&token).await.unwrap_err();
    assert_eq!(
        (e.status().as_u16(), e.code()),
        (503, "introspection_unavailable")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_answers_never_satisfy_another_requirement() {
    let server = TestServer::start().await;
    let exp = dharma_test_support::now() + 600;
    server.set(
        "/introspect",
        Reply::json(&json!({"active": true, "sub": "alice", "client_id": "app", "scope": "orders:read", "aud": "api", "exp": exp}))
            .delay(Duration::from_millis(100)),
    );
    let v = verifier(&server.url("/introspect"), "api");
    let audit = Arc::new(MemoryAuditSink::default());
    let topology = Topology::builder()
        .domain(Domain::builder("outer").access("opaque"))
        .endpoint(Endpoint::boundary("outer", "/read").scopes(["orders:read"]))
        .endpoint(Endpoint::boundary("outer", "/write").scopes(["orders:write"]))
        .build()
        .unwrap();
    let enforcer = Enforcer::builder(topology)
        .mechanism("opaque", Arc::new(v.clone()))
        .audit(audit.clone())
        .build()
        .unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", "Bearer opaque-1".parse().unwrap());

    // 20 concurrent requests with one token: one call.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (e, h) = (enforcer.clone(), headers.clone());
        tasks.push(tokio::spawn(async move {
            matches!(
                e.decide(&RequestView::new(&http::Method::GET, "/read", &h))
                    .await,
                Decision::Allow(_)
            )
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap());
    }
    assert_eq!(server.hits("/introspect"), 1);
    // The cached answer is checked against /write's requirement and refused.
    match enforcer
        .decide(&RequestView::new(&http::Method::GET, "/write", &headers))
        .await
    {
        Decision::Deny(d) => assert_eq!(d.status(), 403),
        Decision::Allow(_) => panic!("a cached answer satisfied another scope"),
    }
    assert_eq!(server.hits("/introspect"), 1);
    // A verifier with another audience has its own answers.
    let other = verifier(&server.url("/introspect"), "other-api");
    assert!(other.verify_token("opaque-1").await.is_err());
    assert_eq!(server.hits("/introspect"), 2);
}

#[tokio::test]
async fn failures_fail_closed() {
    let server = TestServer::start().await;
    let cases = [
        ("/down", None),
        (
            "/slow",
            Some(Reply::json(&json!({"active": true})).delay(Duration::from_secs(3))),
        ),
        ("/garbage", Some(Reply::status(200, "<html>"))),
        ("/no-active", Some(Reply::json(&json!({"sub": "alice"})))),
        (
            "/error",
            Some(Reply::status(500, "{\"error\":\"server_error\"}")),
        ),
    ];
    for (path, reply) in cases {
        if let Some(r) = reply {
            server.set(path, r);
        }
        let url = if path == "/down" {
            "http://127.0.0.1:9/introspect".to_owned()
        } else {
            server.url(path)
        };
        let started = std::time::Instant::now();
        let e = verifier(&url, "api").verify_token("t").await.unwrap_err();
        assert_eq!(
            (e.status().as_u16(), e.code()),
            (503, "introspection_unavailable"),
            "{path}: {e:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{path}: the timeout bounds the wait"
        );
    }
    // An expired answer is refused even when the server says active.
    server.set(
        "/expired",
        Reply::json(&json!({"active": true, "sub": "a", "aud": "api", "exp": 1000})),
    );
    let e = verifier(&server.url("/expired"), "api")
        .verify_token("t")
        .await
        .unwrap_err();
    assert!(
        matches!(e, Rejection::InvalidToken(TokenError::Inactive)),
        "{e:?}"
    );
}

/// The reproductions: with no audience any active token of the authorization
/// server was accepted, and an answer about a refresh token was accepted as an access
/// token.
#[tokio::test]
async fn only_bearer_access_tokens_for_this_audience() {
    let no_audience = IntrospectionVerifier::builder("http://127.0.0.1:9/introspect")
        .client(CLIENT_ID, CLIENT_SECRET, ClientAuth::Basic)
        .build()
        .unwrap_err();
    assert!(
        no_audience.to_string().contains("needs an audience"),
        "{no_audience}"
    );

    let server = TestServer::start().await;
    let exp = dharma_test_support::now() + 600;
    let answer = |extra: serde_json::Value| {
        let mut a =
            json!({"active": true, "sub": "alice", "client_id": "app", "aud": "api", "exp": exp});
        for (k, v) in extra.as_object().unwrap() {
            a[k] = v.clone();
        }
        Reply::json(&a)
    };
    for (path, extra, code) in [
        ("/bearer", json!({"token_type": "Bearer"}), None),
        ("/untyped", json!({}), None),
        (
            "/refresh",
            json!({"token_type": "refresh_token"}),
            Some("token_type_rejected"),
        ),
        (
            "/dpop",
            json!({"token_type": "DPoP"}),
            Some("token_type_rejected"),
        ),
        (
            "/odd",
            json!({"token_type": 7}),
            Some("token_type_rejected"),
        ),
        (
            "/bound",
            json!({"cnf": {"jkt": "x"}}),
            Some("token_confirmation_unverifiable"),
        ),
        (
            "/elsewhere",
            json!({"aud": "billing"}),
            Some("token_wrong_audience"),
        ),
        (
            "/no-aud",
            json!({"aud": null}),
            Some("token_wrong_audience"),
        ),
    ] {
        server.set(path, answer(extra));
        let got = verifier(&server.url(path), "api")
            .verify_token("t")
            .await
            .map(|_| ())
            .map_err(|e| e.code());
        assert_eq!(got, code.map_or(Ok(()), Err), "{path}");
    }
}

/// Answers are reused for as long as the injected clock says: `max_ttl` for an active
/// answer, never past the token's `exp`, `inactive_ttl` for an inactive one.
#[tokio::test]
async fn answers_are_reused_on_the_injected_clock() {
    let server = TestServer::start().await;
    let clock = Arc::new(dharma_core::clock::ManualClock::starting_now());
    let now = dharma_test_support::now();
    let v = IntrospectionVerifier::builder(&server.url("/introspect"))
        .client(CLIENT_ID, CLIENT_SECRET, ClientAuth::Basic)
        .audience("api")
        .max_ttl(Duration::from_secs(60))
        .inactive_ttl(Duration::from_secs(10))
        .clock(clock.clone())
        .build()
        .unwrap();
    let active = |exp: u64| {
        Reply::json(
            &json!({"active": true, "aud": "api", "sub": "u", "client_id": "c", "exp": exp}),
        )
    };

    server.set("/introspect", active(now + 3600));
    assert!(v.verify_token("long").await.is_ok());
    assert!(v.verify_token("long").await.is_ok());
    assert_eq!(server.hits("/introspect"), 1, "a hit asks nothing");
    clock.advance(Duration::from_secs(61));
    assert!(v.verify_token("long").await.is_ok());
    assert_eq!(server.hits("/introspect"), 2, "past max_ttl, asked again");

    // A token expiring before max_ttl: refused at its exp, by the cached answer's exp.
    let at = dharma_test_support::now() + 61;
    server.set("/introspect", active(at + 30));
    assert!(v.verify_token("short").await.is_ok());
    clock.advance(Duration::from_secs(31));
    server.set("/introspect", Reply::json(&json!({"active": false})));
    let err = v.verify_token("short").await.unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::InvalidToken(TokenError::Expired { .. } | TokenError::Inactive)
        ),
        "{err:?}"
    );

    // Inactive answers are reused for inactive_ttl only.
    let calls = server.hits("/introspect");
    assert!(v.verify_token("revoked").await.is_err());
    assert!(v.verify_token("revoked").await.is_err());
    assert_eq!(server.hits("/introspect"), calls + 1);
    clock.advance(Duration::from_secs(11));
    server.set("/introspect", active(dharma_test_support::now() + 3600));
    assert!(
        v.verify_token("revoked").await.is_ok(),
        "asked again, now active"
    );
}
