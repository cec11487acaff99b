//! The mechanisms of issue #3 through axum over real HTTP: network isolation with spoofed
//! forwarding headers, a propagated token read for accountability, and API keys that
//! identify but never authenticate.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::sync::Arc;

use axum::{Router, routing::get};
use dharma_axum::{Authorized, DharmaLayer};
use dharma_core::{
    Assurance, Enforcer,
    audit::MemoryAuditSink,
    mechanism::accountability::AccountabilityJwt,
    mechanism::api_key::ApiKeyVerifier,
    mechanism::combine::{AllOf, AnyOf},
    mechanism::jwt::{IssuerSpec, JwtVerifier, VerifyingKey},
    mechanism::network::NetworkVerifier,
    model::{Domain, Endpoint, Topology},
};
use dharma_test_support::{TestKey, client::send, keys::claims, server::serve_axum};
use http::Method;

async fn describe(Authorized(ctx): Authorized) -> String {
    ctx.identities()
        .iter()
        .map(|i| {
            format!(
                "{}:{}:{}",
                i.kind().as_str(),
                i.subject(),
                i.assurance().as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

struct App {
    base: String,
    audit: Arc<MemoryAuditSink>,
    sts: TestKey,
}

async fn app(trust_loopback_proxy: bool) -> App {
    let sts = TestKey::generate("ES256", "sts-1");
    let jwt = JwtVerifier::builder()
        .issuer(
            IssuerSpec::new("https://sts.outer")
                .keys([VerifyingKey::from_jwk(&sts.jwk()).unwrap()])
                .audience("inner"),
        )
        .build()
        .unwrap();
    let mut network = NetworkVerifier::builder().allow("10.20.0.0/16").unwrap();
    if trust_loopback_proxy {
        network = network.trusted_proxy("127.0.0.1").unwrap();
    }
    let network = Arc::new(network.build());
    let keys = Arc::new(
        ApiKeyVerifier::builder()
            .key("billing-app", "billing-key")
            .build(),
    );
    let topology = Topology::builder()
        .domain(
            Domain::builder("inner")
                .trust("isolated")
                .access("app-or-user"),
        )
        .endpoint(Endpoint::interior("inner", "/ledger").methods(["GET"]))
        .endpoint(
            Endpoint::boundary("inner", "/quotes")
                .methods(["GET"])
                .allow_identified(),
        )
        .endpoint(Endpoint::boundary("inner", "/payments").methods(["GET"]))
        .build()
        .unwrap();
    let audit = Arc::new(MemoryAuditSink::default());
    let router = Router::new()
        .route("/ledger", get(describe))
        .route("/quotes", get(describe))
        .route("/payments", get(describe))
        .layer(DharmaLayer::new(
            Enforcer::builder(topology)
                .mechanism(
                    "isolated",
                    Arc::new(AllOf::new([
                        ("network", network as _),
                        ("caller", Arc::new(AccountabilityJwt::new(jwt.clone())) as _),
                    ])),
                )
                .mechanism(
                    "app-or-user",
                    Arc::new(AnyOf::new([
                        ("jwt", Arc::new(jwt) as _),
                        ("keys", keys as _),
                    ])),
                )
                .audit(audit.clone())
                .build()
                .unwrap(),
        ));
    App {
        base: format!("http://{}", serve_axum(router).await),
        audit,
        sts,
    }
}

impl App {
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let r = send(Method::GET, &format!("{}{path}", self.base), headers, None).await;
        (r.status.as_u16(), r.body)
    }
}

#[tokio::test]
async fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let a = app(false).await;
    let (status, _) = a.get("/ledger", &[("x-forwarded-for", "10.20.0.1")]).await;
    assert_eq!(status, 403);
    let e = &a.audit.events()[0];
    assert_eq!(e.reason, "untrusted_network");
    assert_eq!(
        e.detail.as_deref(),
        Some(
            "forbidden: client address 127.0.0.1 is not in an allowed network (branches: network: untrusted_network)"
        )
    );
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_proxy_counts_only_its_hops() {
    let a = app(true).await;
    let (status, body) = a.get("/ledger", &[("x-forwarded-for", "10.20.0.1")]).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "workload:10.20.0.1:authenticated")
    );
    // The client wrote an inside address first; the proxy appended the real one.
    let (status, _) = a
        .get("/ledger", &[("x-forwarded-for", "10.20.0.1, 203.0.113.9")])
        .await;
    assert_eq!(status, 403);
    // A proxy hop that is not an address is a malformed request.
    let (status, _) = a
        .get("/ledger", &[("x-forwarded-for", "10.20.0.1, bogus")])
        .await;
    assert_eq!(status, 400);
    let reasons: Vec<_> = a.audit.events().iter().map(|e| e.reason).collect();
    assert_eq!(
        reasons,
        ["allowed", "untrusted_network", "malformed_forwarded"]
    );
}

#[tokio::test]
async fn propagated_token_is_read_for_accountability_only() {
    let a = app(true).await;
    let good = a
        .sts
        .sign(&claims("https://sts.outer", "inner", "payments"));
    let forged =
        TestKey::generate("ES256", "sts-1").sign(&claims("https://sts.outer", "inner", "payments"));
    let bearer = |t: &str| format!("Bearer {t}");
    let (status, body) = a
        .get(
            "/ledger",
            &[
                ("x-forwarded-for", "10.20.0.7"),
                ("authorization", &bearer(&good)),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        "workload:10.20.0.7:authenticated end_user:alice:accountability_verified client_app:web-app:accountability_verified"
    );
    let (status, body) = a
        .get(
            "/ledger",
            &[
                ("x-forwarded-for", "10.20.0.7"),
                ("authorization", &bearer(&forged)),
            ],
        )
        .await;
    assert_eq!(
        status, 200,
        "a bad propagated token does not decide anything"
    );
    assert!(
        body.contains("end_user:alice:accountability_unverified"),
        "{body}"
    );
    // Outside the network, the propagated token does not get anyone in.
    let (status, _) = a.get("/ledger", &[("authorization", &bearer(&good))]).await;
    assert_eq!(status, 403);
    let e = &a.audit.events()[0];
    assert_eq!(e.identities.len(), 3);
    assert_eq!(
        e.identities[1].assurance,
        Assurance::Accountability { verified: true }
    );
    let branches: Vec<_> = e
        .branches
        .iter()
        .map(|b| format!("{}:{}", b.mechanism, b.reason))
        .collect();
    assert_eq!(branches, ["network:allowed", "caller:allowed"]);
}

#[tokio::test]
async fn api_keys_identify_but_do_not_authenticate() {
    let a = app(false).await;
    let key = [("x-api-key", "billing-key")];
    // An endpoint that accepts identified callers.
    let (status, body) = a.get("/quotes", &key).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "client_app:billing-app:identified")
    );
    // An endpoint that needs an authenticated principal.
    let (status, _) = a.get("/payments", &key).await;
    assert_eq!(status, 401);
    assert_eq!(a.audit.events()[1].reason, "no_authenticated_principal");
    // A wrong key, and a token: any_of answers with the informative refusal.
    let (status, _) = a.get("/payments", &[("x-api-key", "guess")]).await;
    assert_eq!(status, 401);
    assert_eq!(a.audit.events()[2].reason, "api_key_unknown");
    let token = a
        .sts
        .sign(&claims("https://sts.outer", "inner", "payments"));
    let (status, body) = a
        .get(
            "/payments",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            "end_user:alice:authenticated client_app:web-app:authenticated"
        )
    );
}
