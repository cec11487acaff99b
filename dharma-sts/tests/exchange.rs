//! RFC 8693 exchange and the client-credentials grant through the axum routes, over
//! real HTTP on 127.0.0.1: narrowing, delegation, every error code, client
//! authentication, the published key set and its rotation, and the audit trail.

#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use dharma_core::{
    audit::{MemoryAuditSink, TokenActivity},
    clock::ManualClock,
    jose::{Algorithm, VerifyingKey},
    mechanism::jwt::{IssuerSpec, JwtVerifier},
};
use dharma_sts::{ClientPolicy, Signer, SigningKey, TokenService};
use dharma_test_support::{TestKey, keys::claims, now};
use serde_json::{Value, json};

const IDP: &str = "https://idp.example";
const STS: &str = "https://sts.outer.example";

struct World {
    clock: Arc<ManualClock>,
    org: Org,
    idp: TestKey,
    sts: Arc<TokenService>,
    audit: Arc<MemoryAuditSink>,
    base: String,
    gateway: String,
}

async fn world() -> World {
    let clock = Arc::new(ManualClock::starting_now());
    let org = Org::new();
    let idp = TestKey::generate("ES256", "idp");
    let subject = JwtVerifier::builder()
        .issuer(
            IssuerSpec::new(IDP)
                .keys([VerifyingKey::from_jwk(&idp.jwk()).unwrap()])
                .audience("outer"),
        )
        .clock(clock.clone())
        .build()
        .unwrap();
    let subject = Arc::new(subject);
    let audit = Arc::new(MemoryAuditSink::default());
    let signer =
        Signer::key_set(SigningKey::generate(Algorithm::Es256).unwrap()).clock(clock.clone());
    let signer = Arc::new(signer);
    let sts = TokenService::builder(STS, signer)
        .client(
            ClientPolicy::new(GATEWAY_ID)
                .exchange()
                .audience("orders")
                .audience("https://billing.example/api")
                .scope("orders:read")
                .scope("orders:write")
                .scope("billing:read"),
        )
        .client(
            ClientPolicy::new(BATCH_ID)
                .client_credentials()
                .audience("orders")
                .scope("orders:read"),
        )
        .subject_tokens(subject.clone())
        .actor_tokens(subject)
        .audit(audit.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let sts = Arc::new(sts);
    let base = serve(&org, sts.clone(), audit.clone()).await;
    let gateway = workload_token(&org.gateway, GATEWAY_ID, "outer");
    World {
        clock,
        org,
        idp,
        sts,
        audit,
        base,
        gateway,
    }
}

impl World {
    fn subject(&self, edit: impl FnOnce(&mut Value)) -> String {
        let mut c = claims(IDP, "outer", "orders:read orders:write profile");
        edit(&mut c);
        self.idp.sign(&c)
    }

    async fn exchange(
        &self,
        subject: &str,
        extra: &[(&str, &str)],
    ) -> dharma_test_support::client::Response {
        let mut form = vec![
            ("grant_type", EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN),
        ];
        form.extend_from_slice(extra);
        post(&self.base, Some(&self.gateway), &form).await
    }

    /// A verifier of the STS's tokens for `audience`, reading its published key set.
    fn downstream(&self, audience: &str) -> JwtVerifier {
        JwtVerifier::builder()
            .issuer(
                IssuerSpec::new(STS)
                    .jwks_uri(&format!("{}/sts/jwks.json", self.base))
                    .audience(audience),
            )
            .require_type("at+jwt")
            .clock(self.clock.clone())
            .build()
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchanges_only_narrow() {
    let w = world().await;
    // A fractional `exp` bounds the lifetime as a whole one does.
    let subject = w.subject(|c| c["exp"] = json!(now() as f64 + 120.5));
    let resp = w
        .exchange(
            &subject,
            &[
                ("audience", "orders"),
                ("scope", "orders:write billing:read"),
            ],
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let body = resp.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    // billing:read is allowed by policy but not held by the subject.
    assert_eq!(body["scope"], "orders:write");
    let expires_in = body["expires_in"].as_u64().unwrap();
    assert!((110..=120).contains(&expires_in), "{expires_in}");
    let token = body["access_token"].as_str().unwrap();
    let claims = claims_of(token);
    assert_eq!(claims["iss"], STS);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], "orders");
    assert_eq!(claims["client_id"], GATEWAY_ID);
    assert_eq!(claims["scope"], "orders:write");
    assert!(claims.get("act").is_none());
    assert_eq!(header_of(token)["typ"], "at+jwt");
    assert_eq!(header_of(token)["kid"], w.sts.signer().kid());

    // A downstream service that trusts the STS's key set accepts it for its audience...
    assert_eq!(
        verified_by(&w.downstream("orders"), token).await,
        Ok("alice".to_owned())
    );
    // ...and one with another audience refuses it.
    assert_eq!(
        verified_by(&w.downstream("billing"), token).await,
        Err("token_wrong_audience".to_owned())
    );

    // No scope asked: what the subject holds that the policy allows. A resource URI as
    // the target, and a JWT asked for.
    let resp = w
        .exchange(
            &w.subject(|_| {}),
            &[
                ("resource", "https://billing.example/api"),
                ("requested_token_type", JWT),
            ],
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let body = resp.json();
    assert_eq!(body["scope"], "orders:read orders:write");
    assert_eq!(body["issued_token_type"], JWT);
    assert_eq!(body["expires_in"], 300, "the service's maximum");
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "https://billing.example/api");

    let events = w.audit.token_events();
    assert_eq!(events.len(), 2);
    let e = &events[0];
    assert_eq!(e.activity, TokenActivity::Exchanged);
    assert_eq!(e.client.as_deref(), Some(GATEWAY_ID));
    assert_eq!(e.subject.as_deref(), Some("alice"));
    assert_eq!(e.subject_issuer.as_deref(), Some(IDP));
    assert!(e.subject_token_id.as_deref().unwrap().starts_with("jti-"));
    assert_eq!(e.audience, ["orders".into()]);
    assert_eq!(e.scope.as_deref(), Some("orders:write"));
    assert_eq!(e.token_id.as_deref(), claims_of(token)["jti"].as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_is_recorded_and_bounded() {
    let w = world().await;
    let actor = w.idp.sign(&{
        let mut c = claims(IDP, "outer", "");
        c["sub"] = json!("reports");
        c["client_id"] = json!("reports");
        c
    });
    let with_actor = |extra: &'static [(&'static str, &'static str)]| {
        let mut form: Vec<(&str, &str)> = vec![
            ("audience", "orders"),
            ("actor_token", actor.as_str()),
            ("actor_token_type", JWT),
        ];
        form.extend_from_slice(extra);
        form
    };

    // The subject was already delegated once; may_act names the actor by issuer and subject.
    let subject = w.subject(|c| {
        c["act"] = json!({"sub": "frontend", "iss": IDP});
        c["may_act"] = json!({"sub": "reports", "iss": IDP});
    });
    let resp = w.exchange(&subject, &with_actor(&[])).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let claims = claims_of(resp.json()["access_token"].as_str().unwrap());
    assert_eq!(
        claims["act"],
        json!({"sub": "reports", "iss": IDP, "act": {"sub": "frontend", "iss": IDP}})
    );
    assert_eq!(claims["sub"], "alice");
    let event = w.audit.token_events().pop().unwrap();
    assert_eq!(event.actors, ["reports".into(), "frontend".into()]);

    // may_act naming the same subject at another issuer: refused.
    let subject =
        w.subject(|c| c["may_act"] = json!({"sub": "reports", "iss": "https://other.example"}));
    let resp = w.exchange(&subject, &with_actor(&[])).await;
    assert!(assert_error(&resp, 400, "invalid_request").contains("may_act"));
    // may_act without an actor token: the calling client must be the one named.
    let subject = w.subject(|c| c["may_act"] = json!({"sub": GATEWAY_ID}));
    let resp = w.exchange(&subject, &[("audience", "orders")]).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let subject = w.subject(|c| c["may_act"] = json!({"sub": "someone-else"}));
    let resp = w.exchange(&subject, &[("audience", "orders")]).await;
    assert_error(&resp, 400, "invalid_request");

    // Two prior actors and this one make three: the default cap. One more is refused.
    let subject = w.subject(|c| c["act"] = json!({"sub": "b", "act": {"sub": "c"}}));
    let resp = w.exchange(&subject, &with_actor(&[])).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let subject =
        w.subject(|c| c["act"] = json!({"sub": "b", "act": {"sub": "c", "act": {"sub": "d"}}}));
    let resp = w.exchange(&subject, &with_actor(&[])).await;
    assert!(assert_error(&resp, 400, "invalid_request").contains("longer than 3"));
    // An act that is not an object.
    let subject = w.subject(|c| c["act"] = json!("frontend"));
    let resp = w.exchange(&subject, &[("audience", "orders")]).await;
    assert!(assert_error(&resp, 400, "invalid_request").contains("act claim"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_rfc_code() {
    let w = world().await;
    let good = w.subject(|_| {});
    let expired = w.subject(|c| {
        c["exp"] = json!(now() - 120);
        c["iat"] = json!(now() - 600);
    });
    let other_audience = w.idp.sign(&claims(IDP, "elsewhere", "orders:read"));
    let forged = TestKey::generate("ES256", "idp").sign(&claims(IDP, "outer", "orders:read"));
    let batch = workload_token(&w.org.batch, BATCH_ID, "outer");
    let stranger = workload_token(&w.org.stranger, STRANGER_ID, "outer");

    let exchange = |subject: &str| {
        vec![
            ("grant_type", EXCHANGE),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "orders"),
        ]
        .into_iter()
        .chain([("subject_token", subject)])
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect::<Vec<_>>()
    };
    let with = |mut form: Vec<(String, String)>, k: &str, v: &str| {
        form.retain(|(name, _)| name != k);
        form.push((k.to_owned(), v.to_owned()));
        form
    };
    type Case<'a> = (&'a str, &'a str, Vec<(String, String)>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "no policy",
            &stranger,
            exchange(&good),
            400,
            "unauthorized_client",
        ),
        (
            "grant not in policy",
            &batch,
            exchange(&good),
            400,
            "unauthorized_client",
        ),
        (
            "client credentials not in policy",
            &w.gateway,
            vec![
                ("grant_type".into(), "client_credentials".into()),
                ("audience".into(), "orders".into()),
            ],
            400,
            "unauthorized_client",
        ),
        (
            "audience not allowed",
            &w.gateway,
            with(exchange(&good), "audience", "payments"),
            400,
            "invalid_target",
        ),
        (
            "two audiences",
            &w.gateway,
            {
                let mut f = exchange(&good);
                f.push(("resource".into(), "https://billing.example/api".into()));
                f
            },
            400,
            "invalid_target",
        ),
        (
            "no audience",
            &w.gateway,
            with(exchange(&good), "audience", ""),
            400,
            "invalid_request",
        ),
        (
            "scope not grantable",
            &w.gateway,
            with(exchange(&good), "scope", "admin"),
            400,
            "invalid_scope",
        ),
        (
            "unknown grant",
            &w.gateway,
            with(exchange(&good), "grant_type", "password"),
            400,
            "unsupported_grant_type",
        ),
        (
            "expired subject",
            &w.gateway,
            exchange(&expired),
            400,
            "invalid_request",
        ),
        (
            "subject for another audience",
            &w.gateway,
            exchange(&other_audience),
            400,
            "invalid_request",
        ),
        (
            "forged subject",
            &w.gateway,
            exchange(&forged),
            400,
            "invalid_request",
        ),
        (
            "not a token",
            &w.gateway,
            exchange("not-a-token"),
            400,
            "invalid_request",
        ),
        (
            "client_id of another client",
            &w.gateway,
            with(exchange(&good), "client_id", BATCH_ID),
            401,
            "invalid_client",
        ),
        (
            "secret in the body",
            &w.gateway,
            with(exchange(&good), "client_secret", "s"),
            400,
            "invalid_request",
        ),
    ];
    for (name, credential, form, status, code) in &cases {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let resp = post(&w.base, Some(credential), &form).await;
        assert_eq!(resp.status, *status, "{name}: {}", resp.body);
        assert_eq!(resp.json()["error"], *code, "{name}: {}", resp.body);
        assert_eq!(resp.header("cache-control"), Some("no-store"), "{name}");
    }
    let refused: Vec<&str> = w
        .audit
        .token_events()
        .iter()
        .filter(|e| e.activity == TokenActivity::Refused)
        .map(|e| e.reason)
        .collect();
    let expected: Vec<&str> = cases.iter().map(|c| c.4).collect();
    assert_eq!(refused, expected, "every refusal is audited with its code");
    for event in w.audit.token_events() {
        let text = format!("{event:?}");
        for token in [&good, &expired, &forged, &other_audience] {
            let signature = token.rsplit('.').next().unwrap();
            assert!(
                !text.contains(signature),
                "a token reached the audit trail: {text}"
            );
        }
    }

    // Client authentication is dharma's: no credential, or one from outside the
    // organisation, never reaches the service.
    let resp = post(&w.base, None, &[("grant_type", "client_credentials")]).await;
    assert_eq!(resp.status, 401);
    assert_eq!(resp.header("www-authenticate"), Some("Bearer"));
    let outsider_ca = dharma_test_support::pki::Ca::root("Outsider Root");
    let outsider = outsider_ca.issue(&dharma_test_support::pki::Leaf::spiffe(GATEWAY_ID));
    let resp = post(
        &w.base,
        Some(&workload_token(&outsider, GATEWAY_ID, "outer")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert!(matches!(resp.status.as_u16(), 401 | 403), "{}", resp.status);
    assert_eq!(
        w.audit.token_events().len(),
        cases.len(),
        "nothing reached the service"
    );

    // A body over the limit is refused in the OAuth shape, and audited.
    let big = "x".repeat(dharma_sts::MAX_BODY + 1);
    let resp = post(
        &w.base,
        Some(&w.gateway),
        &[("grant_type", "client_credentials"), ("pad", &big)],
    )
    .await;
    assert!(assert_error(&resp, 400, "invalid_request").contains("bytes"));
    assert_eq!(w.audit.token_events().len(), cases.len() + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_and_key_rotation() {
    let w = world().await;
    let batch = workload_token(&w.org.batch, BATCH_ID, "outer");
    let form = [("grant_type", "client_credentials"), ("audience", "orders")];
    let resp = post(&w.base, Some(&batch), &form).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let body = resp.json();
    assert_eq!(
        body["scope"], "orders:read",
        "the policy's scopes when none are asked"
    );
    let first = body["access_token"].as_str().unwrap().to_owned();
    let claims = claims_of(&first);
    assert_eq!(claims["sub"], BATCH_ID);
    assert_eq!(claims["client_id"], BATCH_ID);
    let event = w.audit.token_events().pop().unwrap();
    assert_eq!(event.activity, TokenActivity::Issued);
    assert_eq!(event.subject.as_deref(), Some(BATCH_ID));

    let downstream = w.downstream("orders");
    assert_eq!(
        verified_by(&downstream, &first).await,
        Ok(BATCH_ID.to_owned())
    );

    // Rotate in two steps. The next key is staged (published, not signing); once the
    // downstream's key set goes stale it fetches the set with the staged key in it; after
    // the rotation new tokens carry the new key, the downstream knows it without another
    // fetch, and the token signed before still verifies (the old key stays published).
    let old_kid = w.sts.signer().kid();
    w.sts
        .signer()
        .stage(SigningKey::generate(Algorithm::EdDsa).unwrap());
    assert_eq!(w.sts.signer().kid(), old_kid);
    w.clock.advance(Duration::from_secs(301));
    let resp = post(&w.base, Some(&batch), &form).await;
    let before = resp.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        verified_by(&downstream, &before).await,
        Ok(BATCH_ID.to_owned())
    );
    let fetches = downstream.key_fetches()[0].1;
    assert_eq!(fetches, 2, "the stale key set was fetched again");
    w.sts.signer().rotate().unwrap();
    let resp = post(&w.base, Some(&batch), &form).await;
    let second = resp.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(header_of(&second)["alg"], "EdDSA");
    assert_ne!(header_of(&second)["kid"], old_kid);
    assert_eq!(
        verified_by(&downstream, &second).await,
        Ok(BATCH_ID.to_owned())
    );
    assert_eq!(
        verified_by(&downstream, &before).await,
        Ok(BATCH_ID.to_owned())
    );
    assert_eq!(
        downstream.key_fetches()[0].1,
        fetches,
        "no fetch for the new key"
    );

    let jwks = dharma_test_support::client::get(&format!("{}/sts/jwks.json", w.base), None).await;
    assert_eq!(jwks.status, 200);
    let kids: Vec<String> = jwks.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            assert!(k.get("d").is_none(), "a private key member was published");
            k["kid"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(kids, [w.sts.signer().kid(), old_kid]);

    // Asking for a scope outside the policy.
    let resp = post(
        &w.base,
        Some(&batch),
        &[
            ("grant_type", "client_credentials"),
            ("audience", "orders"),
            ("scope", "orders:write"),
        ],
    )
    .await;
    assert_error(&resp, 400, "invalid_scope");
}

/// The introspection endpoint behind the subject-token check is down: the client may
/// retry (`503 temporarily_unavailable`), and the refusal is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_subject_check_is_temporarily_unavailable() {
    use dharma_core::mechanism::introspection::{ClientAuth, IntrospectionVerifier};
    use dharma_test_support::server::{Reply, TestServer};

    let org = Org::new();
    let server = TestServer::start().await;
    server.set("/introspect", Reply::status(500, "down"));
    let introspection = IntrospectionVerifier::builder(&server.url("/introspect"))
        .client("sts", "secret", ClientAuth::Basic)
        .audience("outer")
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let audit = Arc::new(MemoryAuditSink::default());
    let signer = Signer::key_set(SigningKey::generate(Algorithm::Es256).unwrap());
    let sts = TokenService::builder(STS, Arc::new(signer))
        .client(ClientPolicy::new(GATEWAY_ID).exchange().audience("orders"))
        .subject_tokens(Arc::new(introspection))
        .audit(audit.clone())
        .build()
        .unwrap();
    let base = serve(&org, Arc::new(sts), audit.clone()).await;
    let gateway = workload_token(&org.gateway, GATEWAY_ID, "outer");
    let resp = post(
        &base,
        Some(&gateway),
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", "an-opaque-token"),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "orders"),
        ],
    )
    .await;
    assert_error(&resp, 503, "temporarily_unavailable");
    assert_eq!(server.hits("/introspect"), 1);
    let event = audit.token_events().pop().unwrap();
    assert_eq!(event.reason, "temporarily_unavailable");
    assert_eq!(event.client.as_deref(), Some(GATEWAY_ID));
}

/// An inner domain whose trust mechanism is network isolation: its consumers get fresh
/// tokens from the local token service, named by the workload address dharma saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inner_consumers_behind_network_isolation_get_fresh_tokens() {
    use axum::Router;
    use dharma_axum::DharmaLayer;
    use dharma_core::{
        mechanism::network::NetworkVerifier,
        model::{Domain, Endpoint},
    };

    let audit = Arc::new(MemoryAuditSink::default());
    let signer = Signer::key_set(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let sts = TokenService::builder("https://sts.inner.example", Arc::new(signer))
        .client(
            ClientPolicy::new("127.0.0.1")
                .client_credentials()
                .audience("payments")
                .scope("payments:read"),
        )
        .audit(audit.clone())
        .build()
        .unwrap();
    let enforcer = guard(
        Domain::builder("inner").trust("isolation"),
        [Endpoint::interior("inner", "/sts/token").methods(["POST"])],
        (
            "isolation",
            Arc::new(NetworkVerifier::builder().allow_loopback().build()),
        ),
        audit.clone(),
    );
    let app = Router::new()
        .nest("/sts", dharma_sts::axum::routes(Arc::new(sts)))
        .layer(DharmaLayer::new(enforcer));
    let base = format!(
        "http://{}",
        dharma_test_support::server::serve_axum(app).await
    );
    let resp = post(
        &base,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("audience", "payments"),
        ],
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let claims = claims_of(resp.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "127.0.0.1");
    assert_eq!(claims["scope"], "payments:read");
    assert_eq!(audit.token_events()[0].activity, TokenActivity::Issued);
}
