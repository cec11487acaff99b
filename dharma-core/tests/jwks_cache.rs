//! The JWKS cache against a real HTTP server on 127.0.0.1: rotation, unknown-kid storms,
//! an issuer that is down, slow, or answers garbage, and the background refresh.
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use std::{sync::Arc, time::Duration};

use dharma_core::{
    Rejection,
    clock::{Clock, ManualClock},
    jwks::{CachePolicy, KeySourceError},
    mechanism::jwt::{IssuerSpec, JwtVerifier},
    reject::{TokenError, UnavailableError},
};
use dharma_test_support::{
    TestKey,
    keys::{claims, jwks},
    server::{Reply, TestServer},
};
use serde_json::json;

const AUD: &str = "api";

struct Setup {
    server: TestServer,
    clock: Arc<ManualClock>,
    verifier: JwtVerifier,
    iss: String,
}

fn policy() -> CachePolicy {
    CachePolicy::default()
        .min_refresh_interval(Duration::from_secs(10))
        .min_ttl(Duration::from_secs(30))
        .default_ttl(Duration::from_secs(300))
        .stale_if_error(Duration::from_secs(600))
        .fetch_timeout(Duration::from_millis(300))
        .max_response_bytes(16 * 1024)
}

async fn setup(keys: &[&TestKey], policy: CachePolicy) -> Setup {
    let server = TestServer::start().await;
    server.set("/jwks", Reply::json(&jwks(keys)));
    let iss = server.url("");
    let clock = Arc::new(ManualClock::starting_now());
    let verifier = JwtVerifier::builder()
        .issuer(
            IssuerSpec::new(&iss)
                .jwks_uri(&server.url("/jwks"))
                .audience(AUD),
        )
        .cache_policy(policy)
        .clock(clock.clone())
        .build()
        .unwrap();
    Setup {
        server,
        clock,
        verifier,
        iss,
    }
}

impl Setup {
    /// Whether a token signed now by `key` is admitted.
    async fn admits_fresh(&self, key: &TestKey) -> bool {
        self.verifier
            .verify_token(&token(key, &self.iss, &self.clock))
            .await
            .is_ok()
    }
}

fn token(key: &TestKey, iss: &str, clock: &ManualClock) -> String {
    let mut c = claims(iss, AUD, "read");
    let now = clock.unix_seconds();
    c["iat"] = json!(now);
    c["exp"] = json!(now + 7200);
    key.sign(&c)
}

#[tokio::test]
async fn rotation_picks_up_a_new_kid_and_drops_tokens_of_a_removed_key() {
    let a = TestKey::generate("ES256", "a");
    let b = TestKey::generate("EdDSA", "b");
    let s = setup(&[&a], policy()).await;
    let token_a = token(&a, &s.iss, &s.clock);
    assert!(s.verifier.verify_token(&token_a).await.is_ok());
    assert_eq!(s.server.hits("/jwks"), 1);

    // The issuer rotates in key b. Within the minimum interval, b is unknown and no fetch
    // happens; after it, the unknown kid triggers one fetch.
    s.server.set("/jwks", Reply::json(&jwks(&[&a, &b])));
    let token_b = token(&b, &s.iss, &s.clock);
    let err = s.verifier.verify_token(&token_b).await.unwrap_err();
    assert!(
        matches!(err, Rejection::InvalidToken(TokenError::UnknownKey { .. })),
        "{err:?}"
    );
    assert_eq!(s.server.hits("/jwks"), 1);
    s.clock.advance(Duration::from_secs(11));
    assert!(s.verifier.verify_token(&token_b).await.is_ok());
    assert_eq!(s.server.hits("/jwks"), 2);

    // Key a leaves the set: the cached token a is refused, although it was verified.
    s.server.set("/jwks", Reply::json(&jwks(&[&b])));
    s.clock.advance(Duration::from_secs(301));
    let fresh_b = token(&b, &s.iss, &s.clock);
    assert!(s.verifier.verify_token(&fresh_b).await.is_ok());
    assert_eq!(s.server.hits("/jwks"), 3);
    let err = s.verifier.verify_token(&token_a).await.unwrap_err();
    assert!(
        matches!(err, Rejection::InvalidToken(TokenError::KeyRevoked)),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_storm_causes_one_fetch() {
    let good = TestKey::generate("ES256", "good");
    let s = setup(&[&good], policy()).await;
    s.verifier.warm_up().await.unwrap();
    assert_eq!(s.server.hits("/jwks"), 1);
    // Past the minimum interval, 1000 tokens with made-up kids arrive at once.
    s.clock.advance(Duration::from_secs(11));
    let attacker = TestKey::generate("ES256", "x");
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let mut c = claims(&s.iss, AUD, "read");
        c["exp"] = json!(s.clock.unix_seconds() + 600);
        let t = attacker.sign_with_header(json!({"kid": format!("kid-{i}")}), &c);
        let v = s.verifier.clone();
        tasks.push(tokio::spawn(async move { v.verify_token(&t).await }));
    }
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        assert!(
            matches!(err, Rejection::InvalidToken(TokenError::UnknownKey { .. })),
            "{err:?}"
        );
    }
    assert_eq!(
        s.server.hits("/jwks"),
        2,
        "1000 unknown kids must cause one fetch"
    );
    assert_eq!(
        s.server.total_hits(),
        2,
        "a kid is never sent to the issuer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cold_misses_share_one_fetch() {
    let key = TestKey::generate("ES256", "k");
    let s = setup(&[&key], policy()).await;
    s.server.set(
        "/jwks",
        Reply::json(&jwks(&[&key])).delay(Duration::from_millis(100)),
    );
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let t = token(&key, &s.iss, &s.clock);
        let v = s.verifier.clone();
        tasks.push(tokio::spawn(async move { v.verify_token(&t).await }));
    }
    for t in tasks {
        assert!(t.await.unwrap().is_ok());
    }
    assert_eq!(s.server.hits("/jwks"), 1);
}

#[tokio::test]
async fn issuer_down_serves_stale_keys_for_a_bounded_time() {
    let key = TestKey::generate("ES256", "k");
    let s = setup(&[&key], policy()).await;
    s.verifier.warm_up().await.unwrap();
    s.server.set("/jwks", Reply::status(500, "down"));

    // Expired (300 s default TTL) but within stale-if-error (600 s): still verifies, and
    // the failed refresh did not replace the keys.
    s.clock.advance(Duration::from_secs(400));
    assert!(s.admits_fresh(&key).await);
    assert_eq!(s.server.hits("/jwks"), 2);
    // Failures are retried at most once per minimum interval.
    assert!(s.admits_fresh(&key).await);
    assert_eq!(s.server.hits("/jwks"), 2);

    // Past the stale window: 503, with the reason kept for the audit trail.
    s.clock.advance(Duration::from_secs(600));
    let cached = token(&key, &s.iss, &s.clock);
    let err = s.verifier.verify_token(&cached).await.unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::Unavailable(UnavailableError::KeySource(KeySourceError::Status(500)))
        ),
        "{err:?}"
    );
    assert_eq!(err.status(), 503);

    // The issuer comes back: keys load again.
    s.server.set("/jwks", Reply::json(&jwks(&[&key])));
    s.clock.advance(Duration::from_secs(11));
    assert!(s.verifier.verify_token(&cached).await.is_ok());
}

/// The reproduction: a token served from the token cache got 503 once its key
/// set passed the stale window, though the issuer was up: the hit path never asked for a
/// refresh.
#[tokio::test]
async fn a_hot_token_refreshes_a_stale_key_set() {
    let key = TestKey::generate("ES256", "k");
    let s = setup(&[&key], policy()).await;
    let hot = token(&key, &s.iss, &s.clock);
    assert!(s.verifier.verify_token(&hot).await.is_ok());
    assert_eq!(s.server.hits("/jwks"), 1);
    // Past the TTL (300 s) and the stale window (600 s), with no other traffic.
    s.clock.advance(Duration::from_secs(1000));
    assert!(s.verifier.verify_token(&hot).await.is_ok());
    assert_eq!(s.server.hits("/jwks"), 2);
    // Cached again under the fresh set.
    assert!(s.verifier.verify_token(&hot).await.is_ok());
    assert_eq!(s.server.hits("/jwks"), 2);
    // With the issuer down past the stale window, the hot token is refused with 503.
    s.server.set("/jwks", Reply::status(500, "down"));
    s.clock.advance(Duration::from_secs(1000));
    let err = s.verifier.verify_token(&hot).await.unwrap_err();
    assert_eq!(err.status(), 503, "{err:?}");
}

#[tokio::test]
async fn slow_issuer_times_out() {
    let key = TestKey::generate("ES256", "k");
    let s = setup(&[&key], policy()).await;
    s.server.set(
        "/jwks",
        Reply::json(&jwks(&[&key])).delay(Duration::from_secs(5)),
    );
    let started = std::time::Instant::now();
    let err = s.verifier.warm_up().await.unwrap_err();
    assert!(matches!(err, KeySourceError::Timeout), "{err:?}");
    let err = s
        .verifier
        .verify_token(&token(&key, &s.iss, &s.clock))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the timeout bounds the wait"
    );
}

#[tokio::test]
async fn oversized_and_malformed_key_sets_are_refused_without_losing_good_keys() {
    let key = TestKey::generate("ES256", "k");
    // Oversized.
    let s = setup(&[&key], policy()).await;
    let padding = "x".repeat(20 * 1024);
    s.server.set(
        "/jwks",
        Reply::json(&json!({"keys": [key.jwk()], "pad": padding})),
    );
    let err = s.verifier.warm_up().await.unwrap_err();
    assert!(matches!(err, KeySourceError::Http(_)), "{err:?}");
    // Malformed JSON.
    for (body, expect_invalid) in [
        ("{\"keys\": [", true),
        ("[]", true),
        ("{\"keys\": [{\"kty\": \"oct\", \"k\": \"AAAA\"}]}", false),
    ] {
        let s = setup(&[&key], policy()).await;
        s.server.set("/jwks", Reply::status(200, body));
        let err = s.verifier.warm_up().await.unwrap_err();
        if expect_invalid {
            assert!(
                matches!(err, KeySourceError::InvalidJwks(_)),
                "{body}: {err:?}"
            );
        } else {
            assert!(
                matches!(err, KeySourceError::NoUsableKeys { skipped: 1 }),
                "{body}: {err:?}"
            );
        }
    }
    // One unparseable key among good ones: the good ones work.
    let s = setup(&[&key], policy()).await;
    s.server.set(
        "/jwks",
        Reply::json(&json!({"keys": [{"kty": "RSA", "n": "!!"}, key.jwk(), "junk"]})),
    );
    assert!(s.admits_fresh(&key).await);
    // A garbage refresh never replaces the last good keys.
    s.server.set("/jwks", Reply::status(200, "<html>"));
    s.clock.advance(Duration::from_secs(301));
    assert!(s.admits_fresh(&key).await);
    assert_eq!(s.server.hits("/jwks"), 2);
}

#[tokio::test]
async fn cache_control_max_age_within_bounds() {
    let key = TestKey::generate("ES256", "k");
    let s = setup(&[&key], policy()).await;
    s.server.set(
        "/jwks",
        Reply::json(&jwks(&[&key])).cache_control("public, max-age=60"),
    );
    s.verifier.warm_up().await.unwrap();
    s.clock.advance(Duration::from_secs(59));
    assert!(s.admits_fresh(&key).await);
    assert_eq!(s.server.hits("/jwks"), 1);
    s.clock.advance(Duration::from_secs(2));
    assert!(s.admits_fresh(&key).await);
    assert_eq!(s.server.hits("/jwks"), 2);
    // max-age=1 is raised to min_ttl (30 s).
    s.server.set(
        "/jwks",
        Reply::json(&jwks(&[&key])).cache_control("max-age=1"),
    );
    s.clock.advance(Duration::from_secs(61));
    assert!(s.admits_fresh(&key).await);
    assert_eq!(s.server.hits("/jwks"), 3);
    s.clock.advance(Duration::from_secs(20));
    assert!(s.admits_fresh(&key).await);
    assert_eq!(s.server.hits("/jwks"), 3);
}

#[tokio::test]
async fn discovery_checks_the_issuer() {
    let key = TestKey::generate("ES256", "k");
    let server = TestServer::start().await;
    let iss = server.url("");
    server.set("/jwks", Reply::json(&jwks(&[&key])));
    server.set(
        "/.well-known/openid-configuration",
        Reply::json(&json!({"issuer": "https://evil.example", "jwks_uri": server.url("/jwks")})),
    );
    let verifier = JwtVerifier::builder()
        .issuer(IssuerSpec::new(&iss).discovery().audience(AUD))
        .build()
        .unwrap();
    let err = verifier.warm_up().await.unwrap_err();
    assert!(matches!(err, KeySourceError::Discovery(_)), "{err:?}");
    assert_eq!(server.hits("/jwks"), 0);
    server.set(
        "/.well-known/openid-configuration",
        Reply::json(&json!({"issuer": iss, "jwks_uri": server.url("/jwks")})),
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    let verifier = JwtVerifier::builder()
        .issuer(IssuerSpec::new(&iss).discovery().audience(AUD))
        .build()
        .unwrap();
    verifier.warm_up().await.unwrap();
    let mut c = claims(&iss, AUD, "read");
    c["sub"] = json!("bob");
    assert!(verifier.verify_token(&key.sign(&c)).await.is_ok());
}

#[tokio::test]
async fn background_refresh_runs_until_stopped() {
    let key = TestKey::generate("ES256", "k");
    let server = TestServer::start().await;
    server.set(
        "/jwks",
        Reply::json(&jwks(&[&key])).cache_control("max-age=1"),
    );
    let verifier = JwtVerifier::builder()
        .issuer(
            IssuerSpec::new(&server.url(""))
                .jwks_uri(&server.url("/jwks"))
                .audience(AUD),
        )
        .cache_policy(
            CachePolicy::default()
                .min_ttl(Duration::from_secs(1))
                .min_refresh_interval(Duration::from_millis(100))
                .refresh_at_percent(50),
        )
        .build()
        .unwrap();
    let handle = verifier.spawn_refresh();
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let fetched = server.hits("/jwks");
    assert!(fetched >= 3, "refreshes before expiry: {fetched}");
    handle.stop();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let after = server.hits("/jwks");
    assert!(
        after <= fetched + 1,
        "the refresher stops: {fetched} then {after}"
    );
}

/// A client of the user's own (a proxy, a private CA, a mesh): dharma fetches through it.
#[derive(Debug)]
struct Recording {
    seen: std::sync::Mutex<Vec<(String, usize)>>,
    body: String,
}

impl dharma_core::transport::HttpClient for Recording {
    fn send<'a>(
        &'a self,
        request: http::Request<bytes::Bytes>,
        max_body: usize,
    ) -> dharma_core::BoxFuture<
        'a,
        Result<dharma_core::transport::HttpResponse, dharma_core::transport::HttpError>,
    > {
        self.seen
            .lock()
            .unwrap()
            .push((request.uri().to_string(), max_body));
        let body = bytes::Bytes::from(self.body.clone());
        Box::pin(async move {
            Ok(dharma_core::transport::HttpResponse::new(
                http::StatusCode::OK,
                http::HeaderMap::new(),
                body,
            ))
        })
    }
}

#[tokio::test]
async fn injected_http_client_is_used() {
    let key = TestKey::generate("EdDSA", "k");
    let client = Arc::new(Recording {
        seen: Default::default(),
        body: jwks(&[&key]).to_string(),
    });
    let iss = "https://idp.example";
    let verifier = JwtVerifier::builder()
        .issuer(
            IssuerSpec::new(iss)
                .jwks_uri("https://idp.example/keys")
                .audience(AUD),
        )
        .cache_policy(policy())
        .http_client(client.clone())
        .build()
        .unwrap();
    assert!(
        verifier
            .verify_token(&key.sign(&claims(iss, AUD, "read")))
            .await
            .is_ok()
    );
    assert_eq!(
        *client.seen.lock().unwrap(),
        [("https://idp.example/keys".to_owned(), 16 * 1024)]
    );
}
