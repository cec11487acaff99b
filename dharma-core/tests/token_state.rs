//! Replay and revocation with the in-memory stores, through an enforcer loaded from a
//! file with a real key-set server on 127.0.0.1: one-time endpoints under concurrent use,
//! revocation by token id, subject and client (also of tokens the verifier has cached),
//! the audit trail, fail modes when a store cannot answer, and policies refused for want
//! of a replay guard.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::{sync::Arc, time::Duration};

use dharma_core::{
    Enforcer,
    audit::{MemoryAuditSink, TokenActivity},
    config::{Config, Loaded},
    model::{Domain, Endpoint, Topology, TopologyErrorKind},
    state::{MemoryReplayGuard, MemoryRevocations, Revocation},
};
use dharma_test_support::{
    TestKey, decide_bearer,
    keys::{claims, jwks},
    server::{Reply, TestServer},
};
use http::Method;
use serde_json::{Value, json};

const HOUR: Duration = Duration::from_secs(3600);

struct World {
    loaded: Loaded,
    key: TestKey,
    issuer: String,
    audit: Arc<MemoryAuditSink>,
    _server: TestServer,
}

async fn world(guard: MemoryReplayGuard) -> World {
    let key = TestKey::generate("ES256", "k1");
    let server = TestServer::start().await;
    server.set("/keys", Reply::json(&jwks(&[&key])));
    let issuer = server.url("");
    let config = format!(
        r#"
        [mechanisms.login]
        kind = "jwt"
        [[mechanisms.login.issuers]]
        issuer = "{issuer}"
        jwks_uri = "{issuer}/keys"
        audiences = ["shop"]

        [[domains]]
        name = "shop"
        access = "login"

        [[endpoints]]
        domain = "shop"
        path = "/orders"
        exposure = "boundary"

        [[endpoints]]
        domain = "shop"
        path = "/redeem"
        exposure = "boundary"
        one_time = true

        [[endpoints]]
        domain = "shop"
        path = "/redeem-open"
        exposure = "boundary"
        one_time = true
        on_store_failure = "open"
        "#
    );
    let audit = Arc::new(MemoryAuditSink::default());
    let loaded = Config::from_toml(&config)
        .unwrap()
        .loader()
        .replay_guard(Arc::new(guard))
        .revocations(Arc::new(MemoryRevocations::default()))
        .audit(audit.clone())
        .start()
        .await
        .unwrap();
    World {
        loaded,
        key,
        issuer,
        audit,
        _server: server,
    }
}

impl World {
    fn token(&self, edit: impl FnOnce(&mut Value)) -> String {
        let mut c = claims(&self.issuer, "shop", "orders:read");
        edit(&mut c);
        self.key.sign(&c)
    }
    fn enforcer(&self) -> &Enforcer {
        self.loaded.enforcer()
    }
}

/// The status and audit reason of a `GET path` with the token.
async fn call(enforcer: &Enforcer, path: &str, token: &str) -> (u16, String) {
    decide_bearer(enforcer, Method::GET, path, token).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_one_time_token_is_admitted_once_even_when_raced() {
    let w = world(MemoryReplayGuard::default()).await;
    let token = w.token(|_| {});
    let calls: Vec<_> = (0..32)
        .map(|_| {
            let (e, t) = (w.enforcer().clone(), token.clone());
            tokio::spawn(async move { call(&e, "/redeem", &t).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for c in calls {
        outcomes.push(c.await.unwrap());
    }
    let admitted = outcomes.iter().filter(|o| o.0 == 200).count();
    assert_eq!(admitted, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| o.0 == 200 || *o == (401, "token_replayed".into()))
    );
    // Another token is fresh; the used one still works where use is not limited.
    assert_eq!(call(w.enforcer(), "/redeem", &w.token(|_| {})).await.0, 200);
    assert_eq!(call(w.enforcer(), "/orders", &token).await.0, 200);

    let replays: Vec<_> = w
        .audit
        .token_events()
        .into_iter()
        .filter(|e| e.activity == TokenActivity::ReplayDetected)
        .collect();
    assert_eq!(replays.len(), 31);
    assert_eq!(replays[0].subject.as_deref(), Some("alice"));
    assert!(replays[0].token_id.as_deref().unwrap().starts_with("jti-"));
    assert!(
        !format!("{replays:?}").contains(&token),
        "no token in the audit trail"
    );
}

#[tokio::test]
async fn revocation_is_checked_on_every_request_cached_or_not() {
    let w = world(MemoryReplayGuard::default()).await;
    let e = w.enforcer();
    let by_id = w.token(|_| {});
    let jti = by_id.split('.').nth(1).map(|p| {
        let c: Value = serde_json::from_slice(&dharma_test_support::keys::b64_decode(p)).unwrap();
        c["jti"].as_str().unwrap().to_owned()
    });
    let earlier = dharma_test_support::now() - 60;
    let bob = w.token(|c| {
        c["sub"] = json!("bob");
        c["iat"] = json!(earlier);
    });
    let rogue = w.token(|c| {
        c["client_id"] = json!("rogue-app");
        c["iat"] = json!(earlier);
    });
    // Each is verified (and cached) before its revocation.
    for t in [&by_id, &bob, &rogue] {
        assert_eq!(call(e, "/orders", t).await.0, 200);
    }
    let issuer = w.issuer.clone();
    for r in [
        Revocation::Token {
            issuer: issuer.clone(),
            token_id: jti.unwrap(),
        },
        Revocation::Subject {
            issuer: issuer.clone(),
            subject: "bob".into(),
        },
        Revocation::Client {
            issuer: issuer.clone(),
            client: "rogue-app".into(),
        },
    ] {
        e.revoke(&r, HOUR).await.unwrap();
    }
    for t in [&by_id, &bob, &rogue] {
        assert_eq!(call(e, "/orders", t).await, (401, "token_revoked".into()));
    }
    // Bob's next token, issued after the revocation, is admitted.
    let later = w.token(|c| {
        c["sub"] = json!("bob");
        c["iat"] = json!(dharma_test_support::now() + 1);
    });
    assert_eq!(call(e, "/orders", &later).await.0, 200);
    let revoked: Vec<_> = w
        .audit
        .token_events()
        .into_iter()
        .filter(|e| e.activity == TokenActivity::Revoked)
        .map(|e| (e.reason, e.subject, e.client))
        .collect();
    assert_eq!(
        revoked,
        [
            ("token", None, None),
            ("subject", Some("bob".into()), None),
            ("client", None, Some("rogue-app".into())),
        ]
    );
}

#[tokio::test]
async fn a_store_that_cannot_answer_fails_each_endpoint_its_way() {
    // Room for one token per shard: full after at most 16 first uses.
    let w = world(MemoryReplayGuard::with_capacity(16)).await;
    let e = w.enforcer();
    // Fill every shard (16 first uses admitted), seeing refusals on the way.
    let (mut admitted, mut refused) = (0, 0);
    for _ in 0..2000 {
        match call(e, "/redeem", &w.token(|_| {})).await {
            (200, _) => admitted += 1,
            (503, reason) => {
                assert_eq!(reason, "token_state_unavailable");
                refused += 1;
            }
            other => panic!("{other:?}"),
        }
        if admitted == 16 {
            break;
        }
    }
    assert_eq!(admitted, 16);
    // Full now: closed refuses every fresh token.
    for _ in 0..4 {
        let answer = call(e, "/redeem", &w.token(|_| {})).await;
        assert_eq!(
            answer,
            (503, "token_state_unavailable".into()),
            "after {refused} refusals"
        );
    }
    for _ in 0..4 {
        assert_eq!(call(e, "/redeem-open", &w.token(|_| {})).await.0, 200);
    }
    let reasons: Vec<_> = w.audit.take().into_iter().map(|e| e.reason).collect();
    assert_eq!(
        &reasons[reasons.len() - 4..],
        ["allowed_unchecked"; 4],
        "open: admitted, and audited so"
    );
}

#[test]
fn policies_that_need_a_replay_guard_are_refused_without_one() {
    let topology = |public: bool| {
        let endpoint = if public {
            Endpoint::public("shop", "/redeem")
        } else {
            Endpoint::boundary("shop", "/redeem")
        };
        Topology::builder()
            .domain(Domain::builder("shop").access("jwt"))
            .endpoint(endpoint.one_time())
            .build()
    };
    assert!(matches!(
        topology(true).unwrap_err().kind(),
        TopologyErrorKind::OneTimeOnPublic
    ));
    let jwt = || -> Arc<dyn dharma_core::Verifier> {
        Arc::new(
            dharma_core::mechanism::api_key::ApiKeyVerifier::builder()
                .key("app", "k")
                .build(),
        )
    };
    let without = Enforcer::builder(topology(false).unwrap())
        .mechanism("jwt", jwt())
        .build();
    assert!(matches!(
        without.unwrap_err().kind(),
        TopologyErrorKind::NoReplayGuard
    ));
    // Nor can a reload bring one-time endpoints to an enforcer without a guard.
    let plain = Topology::builder()
        .domain(Domain::builder("shop").access("jwt"))
        .endpoint(Endpoint::boundary("shop", "/orders"))
        .build()
        .unwrap();
    let e = Enforcer::builder(plain)
        .mechanism("jwt", jwt())
        .build()
        .unwrap();
    let mechanisms = dharma_core::Mechanisms::new().with("jwt", jwt());
    let refused = e.reload(topology(false).unwrap(), &mechanisms, "code");
    assert!(matches!(
        refused.unwrap_err().kind(),
        TopologyErrorKind::NoReplayGuard
    ));
    assert_eq!(e.revision(), 1);
}
