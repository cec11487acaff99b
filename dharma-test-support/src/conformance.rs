//! The conformance world and cases: one topology and one list of requests with their
//! expected outcomes, run against every adapter.

use std::{collections::HashMap, sync::Arc};

use dharma_core::{
    Enforcer,
    apikey::ApiKeyVerifier,
    audit::MemoryAuditSink,
    combine::AnyOf,
    jwks::CachePolicy,
    jwt::{IssuerSpec, JwtVerifier, VerifyingKey},
    model::{Domain, Endpoint, Topology},
    network::NetworkVerifier,
};
use serde::Deserialize;
use serde_json::json;

use crate::{TestKey, b64, keys::claims};

/// One request and what every adapter must answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case checks.
    pub name: String,
    /// The HTTP method (gRPC is always POST).
    #[serde(default = "post")]
    pub method: String,
    /// The path (a gRPC method path).
    pub path: String,
    /// A token of the world, sent as `Authorization: Bearer`.
    pub token: Option<String>,
    /// A literal `Authorization` value.
    pub authorization: Option<String>,
    /// An API key, sent as `x-api-key`.
    pub api_key: Option<String>,
    /// The client address. Tests connect from loopback, which the world trusts as a proxy,
    /// so the address travels as the `x-forwarded-for` hop that proxy appended.
    pub peer: Option<String>,
    /// Any other request headers (gRPC metadata).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// The expected HTTP status.
    pub status: u16,
    /// The expected audit reason.
    pub reason: String,
    /// The expected `WWW-Authenticate`, when it is checked.
    pub www_authenticate: Option<String>,
    /// The expected `error` of the JSON body, when it is checked.
    pub error: Option<String>,
    /// Whether gRPC cannot express the case.
    #[serde(default)]
    pub http_only: bool,
}

fn post() -> String {
    "POST".into()
}

#[derive(Deserialize)]
struct File {
    case: Vec<Case>,
}

/// Every case.
pub fn cases() -> Vec<Case> {
    let file: File = toml::from_str(include_str!("../conformance/cases.toml")).unwrap();
    file.case
}

/// The gRPC status code a case's HTTP status maps to.
pub fn grpc_code(status: u16) -> i32 {
    match status {
        200 => 0,
        400 => 3,
        401 => 16,
        403 => 7,
        404 => 12,
        503 => 14,
        other => panic!("no gRPC mapping for {other}"),
    }
}

/// The enforcer, its audit trail and the tokens the cases name.
pub struct World {
    /// The enforcer every adapter wraps.
    pub enforcer: Enforcer,
    /// Where its decisions go.
    pub audit: Arc<MemoryAuditSink>,
    tokens: HashMap<&'static str, String>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World").finish_non_exhaustive()
    }
}

const ISS: &str = "https://idp.shop.example";

/// Builds the world: a shop domain (boundary endpoints behind a JWT or an API key,
/// interior ones trusted on loopback) and a vault domain trusted only from 10.0.0.0/8,
/// behind a proxy on loopback.
pub fn world() -> World {
    let key = TestKey::generate("ES256", "shop-1");
    let jwt = JwtVerifier::builder()
        .issuer(
            IssuerSpec::new(ISS)
                .keys([VerifyingKey::from_jwk(&key.jwk()).unwrap()])
                .audience("shop"),
        )
        .require_type("at+jwt")
        .build()
        .unwrap();
    // An issuer whose key source is down (nothing listens on port 9 of loopback).
    let remote = JwtVerifier::builder()
        .issuer(
            IssuerSpec::new("https://remote.example")
                .jwks_uri("http://127.0.0.1:9/jwks")
                .audience("shop"),
        )
        .cache_policy(CachePolicy::default().fetch_timeout(std::time::Duration::from_millis(500)))
        .build()
        .unwrap();
    let keys = ApiKeyVerifier::builder()
        .key("catalog-app", "catalog-key")
        .build();
    let topology = Topology::builder()
        .mechanism(
            "loopback",
            Arc::new(NetworkVerifier::builder().allow_loopback().build()),
        )
        .mechanism(
            "ten",
            Arc::new(
                NetworkVerifier::builder()
                    .allow("10.0.0.0/8")
                    .unwrap()
                    .trusted_proxy("127.0.0.1")
                    .unwrap()
                    .build(),
            ),
        )
        .mechanism(
            "app",
            Arc::new(AnyOf::new([
                ("jwt", Arc::new(jwt) as _),
                ("keys", Arc::new(keys) as _),
            ])),
        )
        .mechanism("remote-jwt", Arc::new(remote))
        .domain(Domain::builder("shop").trust("loopback").access("app"))
        .domain(Domain::builder("vault").trust("ten"))
        .domain(Domain::builder("remote").access("remote-jwt"))
        .endpoint(Endpoint::public("shop", "/shop.Health/Check").methods(["POST"]))
        .endpoint(
            Endpoint::boundary("shop", "/shop.Orders/Get")
                .methods(["POST"])
                .scopes(["orders:read"]),
        )
        .endpoint(
            Endpoint::boundary("shop", "/shop.Orders/Create")
                .methods(["POST"])
                .scopes(["orders:write"]),
        )
        .endpoint(
            Endpoint::boundary("shop", "/shop.Admin/Purge")
                .methods(["POST"])
                .claim_equals("role", "admin"),
        )
        .endpoint(
            Endpoint::boundary("shop", "/shop.Catalog/List")
                .methods(["POST"])
                .allow_identified(),
        )
        .endpoint(Endpoint::interior("shop", "/shop.Stock/Sync").methods(["POST"]))
        .endpoint(Endpoint::interior("vault", "/vault.Keys/Rotate").methods(["POST"]))
        .endpoint(Endpoint::boundary("remote", "/remote.Orders/Get").methods(["POST"]))
        .build()
        .unwrap();
    let audit = Arc::new(MemoryAuditSink::default());
    let enforcer = Enforcer::builder(topology)
        .audit(audit.clone())
        .realm("shop")
        .build();

    let mut tokens = HashMap::new();
    tokens.insert("read", key.sign(&claims(ISS, "shop", "orders:read")));
    tokens.insert("write", key.sign(&claims(ISS, "shop", "orders:write")));
    let mut admin = claims(ISS, "shop", "orders:read");
    admin["role"] = json!("admin");
    tokens.insert("admin", key.sign(&admin));
    let mut expired = claims(ISS, "shop", "orders:read");
    expired["exp"] = json!(crate::now() - 3600);
    tokens.insert("expired", key.sign(&expired));
    tokens.insert(
        "forged",
        TestKey::generate("ES256", "shop-1").sign(&claims(ISS, "shop", "orders:read")),
    );
    tokens.insert(
        "other_audience",
        key.sign(&claims(ISS, "elsewhere", "orders:read")),
    );
    tokens.insert(
        "alg_none",
        format!(
            "{}.{}.",
            b64(r#"{"alg":"none"}"#),
            b64(claims(ISS, "shop", "orders:read").to_string())
        ),
    );
    tokens.insert(
        "remote",
        key.sign(&claims("https://remote.example", "shop", "orders:read")),
    );
    World {
        enforcer,
        audit,
        tokens,
    }
}

impl World {
    /// The request headers of a case.
    pub fn headers(&self, case: &Case) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(name) = &case.token {
            let token = self
                .tokens
                .get(name.as_str())
                .unwrap_or_else(|| panic!("no token {name}"));
            out.push(("authorization".into(), format!("Bearer {token}")));
        }
        if let Some(value) = &case.authorization {
            out.push(("authorization".into(), value.clone()));
        }
        if let Some(key) = &case.api_key {
            out.push(("x-api-key".into(), key.clone()));
        }
        if let Some(peer) = &case.peer {
            out.push(("x-forwarded-for".into(), peer.clone()));
        }
        out.extend(case.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }

    /// Checks the audit event of the case just run (the last one) and clears the trail.
    pub fn check_audit(&self, case: &Case) {
        let events = self.audit.take();
        assert_eq!(
            events.len(),
            1,
            "{}: one audit event per request",
            case.name
        );
        assert_eq!(events[0].reason, case.reason, "{}: audit reason", case.name);
        assert_eq!(
            events[0].status, case.status,
            "{}: audited status",
            case.name
        );
    }
}

/// Checks an HTTP answer against a case.
pub fn check_http(case: &Case, status: u16, www_authenticate: Option<&str>, body: &str) {
    assert_eq!(status, case.status, "{}: status (body {body})", case.name);
    if let Some(expected) = &case.www_authenticate {
        assert_eq!(
            www_authenticate,
            Some(expected.as_str()),
            "{}: WWW-Authenticate",
            case.name
        );
    }
    if status == 200 {
        assert_eq!(body, "ok", "{}: handler reached", case.name);
    } else {
        let json: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|_| panic!("{}: body {body}", case.name));
        if let Some(error) = &case.error {
            assert_eq!(json["error"], json!(error), "{}: body error", case.name);
        }
        assert!(
            !body.contains("eyJ"),
            "{}: a token leaked into the body",
            case.name
        );
    }
}
