//! Two enforcers sharing one real `redis-server` on 127.0.0.1: a one-time token used at
//! one is refused at the other (also when raced across both), a revocation at one is
//! enforced by the other within a measured time, an instance started later reads the
//! revocations, keys are scoped and hashed, and killing Redis mid-run gives each
//! endpoint's fail mode, without a panic, until Redis is back.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use dharma_core::{
    Enforcer,
    audit::MemoryAuditSink,
    mechanism::jwt::{IssuerSpec, JwtVerifier, VerifyingKey},
    model::{Domain, Endpoint, Topology},
    state::{FailMode, Revocation},
};
use dharma_redis::RedisTokenState;
use dharma_test_support::{TestKey, decide_bearer, keys::claims, redis::RedisServer};
use http::Method;
use serde_json::json;

const ISS: &str = "https://idp.example";
const HOUR: Duration = Duration::from_secs(3600);

struct Instance {
    enforcer: Enforcer,
    state: Arc<RedisTokenState>,
    audit: Arc<MemoryAuditSink>,
}

async fn instance(redis: &RedisServer, key: &TestKey) -> Instance {
    let state = Arc::new(
        RedisTokenState::builder(&redis.url())
            .max_staleness(Duration::from_secs(2))
            .connect()
            .await
            .unwrap(),
    );
    let jwt = JwtVerifier::builder()
        .issuer(
            IssuerSpec::new(ISS)
                .keys([VerifyingKey::from_jwk(&key.jwk()).unwrap()])
                .audience("shop"),
        )
        .build()
        .unwrap();
    let topology = Topology::builder()
        .domain(Domain::builder("shop").access("jwt"))
        .endpoint(Endpoint::boundary("shop", "/orders"))
        .endpoint(Endpoint::boundary("shop", "/orders-open").on_store_failure(FailMode::Open))
        .endpoint(Endpoint::boundary("shop", "/redeem").one_time())
        .endpoint(
            Endpoint::boundary("shop", "/redeem-open")
                .one_time()
                .on_store_failure(FailMode::Open),
        )
        .build()
        .unwrap();
    let audit = Arc::new(MemoryAuditSink::default());
    let enforcer = Enforcer::builder(topology)
        .mechanism("jwt", Arc::new(jwt))
        .replay_guard(state.clone())
        .revocations(state.clone())
        .audit(audit.clone())
        .build()
        .unwrap();
    Instance {
        enforcer,
        state,
        audit,
    }
}

/// The status and audit reason of a `GET path` with the token.
async fn call(enforcer: &Enforcer, path: &str, token: &str) -> (u16, String) {
    decide_bearer(enforcer, Method::GET, path, token).await
}

fn token(key: &TestKey, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut c = claims(ISS, "shop", "orders:read");
    edit(&mut c);
    key.sign(&c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_used_once_at_one_instance_is_refused_at_the_other() {
    let redis = RedisServer::start();
    let key = TestKey::generate("ES256", "k");
    let (a, b) = (instance(&redis, &key).await, instance(&redis, &key).await);
    let t = token(&key, |_| {});
    assert_eq!(call(&a.enforcer, "/redeem", &t).await.0, 200);
    assert_eq!(
        call(&b.enforcer, "/redeem", &t).await,
        (401, "token_replayed".into())
    );
    assert_eq!(
        call(&a.enforcer, "/redeem", &t).await,
        (401, "token_replayed".into())
    );

    // Raced across both instances: exactly one use is admitted.
    let raced = token(&key, |_| {});
    let calls: Vec<_> = (0..40)
        .map(|n| {
            let e = if n % 2 == 0 {
                a.enforcer.clone()
            } else {
                b.enforcer.clone()
            };
            let t = raced.clone();
            tokio::spawn(async move { call(&e, "/redeem", &t).await.0 })
        })
        .collect();
    let mut admitted = 0;
    for c in calls {
        admitted += usize::from(c.await.unwrap() == 200);
    }
    assert_eq!(admitted, 1);

    // The key is scoped by issuer and hashed: no token id reaches Redis.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("dharma:jti:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.iter()
            .all(|k| k.len() == "dharma:jti:".len() + 64 && !k.contains("jti-"))
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        ttl > 600_000 && ttl <= 900_000,
        "kept until exp and five minutes: {ttl} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_at_one_instance_is_enforced_by_the_other() {
    let redis = RedisServer::start();
    let key = TestKey::generate("ES256", "k");
    let (a, b) = (instance(&redis, &key).await, instance(&redis, &key).await);
    let bob = token(&key, |c| {
        c["sub"] = json!("bob");
        c["iat"] = json!(dharma_test_support::now() - 5);
    });
    assert_eq!(
        call(&b.enforcer, "/orders", &bob).await.0,
        200,
        "verified and cached at b"
    );
    let revocation = Revocation::Subject {
        issuer: ISS.into(),
        subject: "bob".into(),
    };
    let start = Instant::now();
    a.enforcer.revoke(&revocation, HOUR).await.unwrap();
    assert_eq!(
        call(&a.enforcer, "/orders", &bob).await.1,
        "token_revoked",
        "at once where revoked"
    );
    let deadline = start + Duration::from_secs(10);
    while call(&b.enforcer, "/orders", &bob).await.0 == 200 {
        assert!(Instant::now() < deadline, "b never enforced the revocation");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let bound = start.elapsed();
    println!("revocation at a enforced by b after {bound:?}");
    assert_eq!(
        call(&b.enforcer, "/orders", &bob).await,
        (401, "token_revoked".into())
    );

    // An instance started later reads the revocations kept.
    let c = instance(&redis, &key).await;
    assert_eq!(call(&c.enforcer, "/orders", &bob).await.1, "token_revoked");
    assert_eq!(
        a.audit.token_events().len(),
        1,
        "the revocation is audited where it was made"
    );
    // Keeping a revocation longer than the store retains it is refused.
    let too_long = a
        .enforcer
        .revoke(&revocation, Duration::from_secs(48 * 3600))
        .await;
    assert!(too_long.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_gives_each_endpoint_its_fail_mode() {
    let mut redis = RedisServer::start();
    let key = TestKey::generate("ES256", "k");
    let a = instance(&redis, &key).await;
    let used = token(&key, |_| {});
    assert_eq!(call(&a.enforcer, "/redeem", &used).await.0, 200);

    redis.kill();
    // One-time use needs Redis at once: closed refuses, open admits unchecked. A replay
    // this instance saw is still refused (the local tier).
    assert_eq!(
        call(&a.enforcer, "/redeem", &token(&key, |_| {})).await,
        (503, "token_state_unavailable".into())
    );
    assert_eq!(
        call(&a.enforcer, "/redeem-open", &token(&key, |_| {}))
            .await
            .0,
        200
    );
    assert_eq!(
        call(&a.enforcer, "/redeem", &used).await.1,
        "token_replayed"
    );
    let reasons: Vec<_> = a.audit.take().into_iter().map(|e| e.reason).collect();
    assert!(reasons.contains(&"allowed_unchecked"), "{reasons:?}");
    // Revocation checks go on from the local copy until it is too old (2 s here).
    let plain = token(&key, |_| {});
    assert_eq!(call(&a.enforcer, "/orders", &plain).await.0, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        call(&a.enforcer, "/orders", &plain).await,
        (503, "token_state_unavailable".into())
    );
    assert_eq!(call(&a.enforcer, "/orders-open", &plain).await.0, 200);
    assert!(a.state.as_ref().revoke_is_refused_while_down().await);

    // Back on the same port (empty: nothing was persisted), the instance recovers.
    let _redis = RedisServer::start_on(redis.port());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if call(&a.enforcer, "/orders", &plain).await.0 == 200
            && call(&a.enforcer, "/redeem", &token(&key, |_| {})).await.0 == 200
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Revoking while Redis is down fails (the caller learns it did not take).
trait RevokeWhileDown {
    async fn revoke_is_refused_while_down(&self) -> bool;
}

impl RevokeWhileDown for RedisTokenState {
    async fn revoke_is_refused_while_down(&self) -> bool {
        let r = Revocation::Token {
            issuer: ISS.into(),
            token_id: "x".into(),
        };
        dharma_core::state::RevocationList::revoke(self, &r, std::time::SystemTime::now(), HOUR)
            .await
            .is_err()
    }
}
