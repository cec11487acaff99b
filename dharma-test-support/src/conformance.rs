//! The conformance world and cases: one topology and one list of requests with their
//! expected outcomes, run against every adapter.

use std::{collections::HashMap, sync::Arc, time::Duration};

use dharma_core::{
    Enforcer, IdentityKind, Lane, Rejection,
    audit::MemoryAuditSink,
    error::ForbiddenReason,
    jwks::CachePolicy,
    mechanism::api_key::ApiKeyVerifier,
    mechanism::combine::AnyOf,
    mechanism::jwt::{IssuerSpec, JwtVerifier, VerifyingKey},
    mechanism::network::NetworkVerifier,
    model::{AuthorizationRequest, Authorizer, Domain, Endpoint, Rule, Topology},
    state::{FailMode, MemoryReplayGuard, MemoryRevocations, Revocation},
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
    /// The route whose handler ran, or `none`.
    pub handler: String,
    /// The expected `Allow` of a `405`.
    pub allow: Option<String>,
    /// The expected audit reason.
    pub reason: String,
    /// The expected lane of the audit event, when it is checked.
    pub lane: Option<String>,
    /// The expected `WWW-Authenticate`, when it is checked.
    pub www_authenticate: Option<String>,
    /// The expected `error` of the JSON body, when it is checked.
    pub error: Option<String>,
    /// Whether gRPC cannot express the case.
    #[serde(default)]
    pub http_only: bool,
    /// Whether the world's replay guard is full of unexpired tokens when the case runs (a
    /// token store that cannot answer: each one-time endpoint's fail mode decides).
    #[serde(default)]
    pub store_full: bool,
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
        404 | 405 => 12,
        500 => 13,
        503 => 14,
        other => panic!("no gRPC mapping for {other}"),
    }
}

/// The routes every HTTP adapter's app registers (method, pattern in axum's syntax), most
/// specific first (actix-web matches in registration order). Each handler answers with its
/// route in the `x-handler` header and the body.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/shop.Health/Check"),
    ("POST", "/shop.Orders/Get"),
    ("POST", "/shop.Orders/Create"),
    ("POST", "/shop.Orders/Redeem"),
    ("POST", "/shop.Orders/Claim"),
    ("POST", "/shop.Admin/Purge"),
    ("POST", "/shop.Catalog/List"),
    ("POST", "/shop.Catalog/Browse"),
    ("POST", "/shop.Stock/Sync"),
    ("POST", "/shop.Secret/Get"),
    ("POST", "/vault.Keys/Rotate"),
    ("POST", "/remote.Orders/Get"),
    ("GET", "/users/admin"),
    ("GET", "/users/{id}"),
    ("DELETE", "/docs/admin/{*rest}"),
    ("GET", "/docs/{*rest}"),
    ("GET", "/reports/{id}"),
    ("POST", "/shop.Orders/Refund"),
    ("POST", "/shop.Orders/Export"),
    ("POST", "/shop.Orders/Bulk"),
    ("POST", "/shop.Orders/Cancel"),
    ("POST", "/shop.Orders/Ship"),
    ("GET", "/accounts/{id}"),
];

/// The prefix of the nested router (axum `nest`, actix-web `scope`) and its routes.
pub const NESTED: (&str, &[(&str, &str)]) = ("/nested", &[("GET", "/items/{id}")]);

/// The enforcer, its audit trail and the tokens the cases name.
pub struct World {
    /// The enforcer every adapter wraps.
    pub enforcer: Enforcer,
    /// Where its decisions go.
    pub audit: Arc<MemoryAuditSink>,
    tokens: HashMap<&'static str, String>,
    replay: Arc<MemoryReplayGuard>,
    key: TestKey,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World").finish_non_exhaustive()
    }
}

const ISS: &str = "https://idp.shop.example";

/// Allows members of the organisation `acme` (the `org` claim): a rule written in code.
#[derive(Debug)]
struct OrgMember;

impl Authorizer for OrgMember {
    fn authorize(&self, request: &AuthorizationRequest<'_>) -> Result<(), Rejection> {
        match request.principal.claims().str("org") {
            Some("acme") => Ok(()),
            _ => Err(ForbiddenReason::Authorizer("not a member of acme".into()).into()),
        }
    }
}

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
            Endpoint::boundary("shop", "/shop.Orders/Redeem")
                .methods(["POST"])
                .scopes(["orders:read"])
                .one_time(),
        )
        .endpoint(
            Endpoint::boundary("shop", "/shop.Orders/Claim")
                .methods(["POST"])
                .scopes(["orders:read"])
                .one_time()
                .on_store_failure(FailMode::Open),
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
        .endpoint(
            Endpoint::boundary("shop", "/shop.Catalog/Browse")
                .methods(["POST"])
                .optional(),
        )
        .endpoint(Endpoint::interior("shop", "/shop.Stock/Sync").methods(["POST"]))
        .endpoint(Endpoint::interior("vault", "/vault.Keys/Rotate").methods(["POST"]))
        .endpoint(Endpoint::boundary("remote", "/remote.Orders/Get").methods(["POST"]))
        .endpoint(
            Endpoint::boundary("shop", "/users/admin")
                .methods(["GET"])
                .claim_equals("role", "admin"),
        )
        .endpoint(Endpoint::boundary("shop", "/users/{id}").methods(["GET"]))
        .endpoint(
            Endpoint::boundary("shop", "/docs/admin/{*rest}")
                .methods(["DELETE"])
                .claim_equals("role", "admin"),
        )
        .endpoint(Endpoint::public("shop", "/docs/{*rest}").methods(["GET"]))
        .endpoint(Endpoint::boundary("shop", "/nested/items/{id}").methods(["GET"]))
        .endpoint(Endpoint::boundary("shop", "/reports/{id}").methods(["GET"]))
        // Declared, but the routers have only `/reports/{id}`: they would run that route's
        // handler for `/reports/annual`, so dharma refuses the request.
        .endpoint(
            Endpoint::boundary("shop", "/reports/annual")
                .methods(["GET"])
                .claim_equals("role", "admin"),
        )
        .endpoint(
            Endpoint::boundary("shop", "/shop.Orders/Refund")
                .methods(["POST"])
                .rule(Rule::role("support")),
        )
        .endpoint(
            Endpoint::boundary("shop", "/accounts/{id}")
                .methods(["GET"])
                .rule(Rule::any([
                    Rule::claim("role").equals("admin"),
                    Rule::claim("sub").equals_param("id"),
                ])),
        )
        .endpoint(
            Endpoint::boundary("shop", "/shop.Orders/Export")
                .methods(["POST"])
                .rule(Rule::all([
                    Rule::lane(Lane::Access),
                    Rule::not(Rule::claim("suspended").equals(true)),
                ])),
        )
        .endpoint(
            Endpoint::boundary("shop", "/shop.Orders/Bulk")
                .methods(["POST"])
                .rule(Rule::kind(IdentityKind::ClientApp)),
        )
        .endpoint(
            Endpoint::boundary("shop", "/shop.Orders/Cancel")
                .methods(["POST"])
                .rule(Rule::authorizer("org-member")),
        )
        .endpoint(
            Endpoint::boundary("shop", "/shop.Orders/Ship")
                .methods(["POST"])
                .rule(Rule::all([
                    Rule::claim("region").one_of(["eu", "us"]),
                    Rule::claim("email").exists(),
                ])),
        )
        .roles_claim("realm_access.roles")
        .realm("shop")
        .build()
        .unwrap();
    let audit = Arc::new(MemoryAuditSink::default());
    // Room for 16 tokens (one per shard): the cases marked `store_full` fill it.
    let replay = Arc::new(MemoryReplayGuard::with_capacity(16));
    // Revoked a minute ago: the token `revoked` by its id, and every token of `mallory`
    // issued until then.
    let revoked = claims(ISS, "shop", "orders:read");
    let revocations = Arc::new(MemoryRevocations::default());
    let minute_ago = std::time::SystemTime::now() - Duration::from_secs(60);
    for revocation in [
        Revocation::Token {
            issuer: ISS.into(),
            token_id: revoked["jti"].as_str().unwrap().into(),
        },
        Revocation::Subject {
            issuer: ISS.into(),
            subject: "mallory".into(),
        },
    ] {
        revocations
            .insert(&revocation, minute_ago, Duration::from_secs(3600))
            .unwrap();
    }
    let enforcer = Enforcer::builder(topology)
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
        .replay_guard(replay.clone())
        .authorizer("org-member", Arc::new(OrgMember))
        .revocations(revocations)
        .audit(audit.clone())
        .build()
        .unwrap();

    let mut tokens = HashMap::new();
    tokens.insert("read", key.sign(&claims(ISS, "shop", "orders:read")));
    tokens.insert("once", key.sign(&claims(ISS, "shop", "orders:read")));
    for name in ["fresh_a", "fresh_b"] {
        tokens.insert(name, key.sign(&claims(ISS, "shop", "orders:read")));
    }
    tokens.insert("revoked", key.sign(&revoked));
    let mut mallory = claims(ISS, "shop", "orders:read");
    mallory["sub"] = json!("mallory");
    mallory["iat"] = json!(crate::now() - 120);
    tokens.insert("mallory_before", key.sign(&mallory));
    mallory["iat"] = json!(crate::now());
    tokens.insert("mallory_after", key.sign(&mallory));
    let mut support = claims(ISS, "shop", "orders:read");
    support["realm_access"] = json!({"roles": ["support"]});
    support["org"] = json!("acme");
    support["region"] = json!("eu");
    support["email"] = json!("sam@shop.example");
    tokens.insert("support", key.sign(&support));
    let mut suspended = claims(ISS, "shop", "orders:read");
    suspended["suspended"] = json!(true);
    tokens.insert("suspended", key.sign(&suspended));
    let mut machine = claims(ISS, "shop", "orders:read");
    machine["sub"] = json!("batch-app");
    machine["client_id"] = json!("batch-app");
    tokens.insert("machine", key.sign(&machine));
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
    // Signed by the trusted key, so only the strict JSON reader refuses them: `sub`
    // repeated under an escaped name (a lenient parser keeps the second), and nesting
    // deeper than dharma reads.
    let header = json!({"alg": "ES256", "kid": "shop-1", "typ": "at+jwt"}).to_string();
    let read = claims(ISS, "shop", "orders:read").to_string();
    let repeated = read.replacen('{', r#"{"\u0073ub":"admin","#, 1);
    tokens.insert("repeated_sub", key.sign_raw(&header, &repeated));
    let deep = read.replacen(
        '{',
        &format!(r#"{{"x":{}0{},"#, "[".repeat(65), "]".repeat(65)),
        1,
    );
    tokens.insert("deep", key.sign_raw(&header, &deep));
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
        replay,
        key,
    }
}

impl World {
    /// Puts the world in the state a case needs: for `store_full`, uses fresh tokens at the
    /// one-time endpoint until the replay guard is full (their decisions are not the
    /// case's, and leave the audit trail).
    pub async fn prepare(&self, case: &Case) {
        if !case.store_full {
            return;
        }
        let method = http::Method::POST;
        while !self.replay.is_full() {
            let token = self.key.sign(&claims(ISS, "shop", "orders:read"));
            let mut headers = http::HeaderMap::new();
            headers.insert(
                http::header::AUTHORIZATION,
                http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
            );
            let request = dharma_core::RequestView::new(&method, "/shop.Orders/Redeem", &headers);
            let _ = self.enforcer.decide(&request).await;
        }
        self.audit.take();
    }

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
        if let Some(lane) = &case.lane {
            assert_eq!(
                events[0].lane.map(|l| l.as_str()),
                Some(lane.as_str()),
                "{}: audited lane",
                case.name
            );
        }
    }
}

/// What an HTTP adapter's server answered.
#[derive(Debug)]
pub struct Answer<'a> {
    /// The status.
    pub status: u16,
    /// `WWW-Authenticate`.
    pub www_authenticate: Option<&'a str>,
    /// `Allow`.
    pub allow: Option<&'a str>,
    /// `x-handler`: the route whose handler ran.
    pub handler: Option<&'a str>,
    /// The body.
    pub body: &'a str,
}

impl<'a> Answer<'a> {
    /// The parts of a response the cases check.
    pub fn of(r: &'a crate::client::Response) -> Self {
        Self {
            status: r.status.as_u16(),
            www_authenticate: r.header("www-authenticate"),
            allow: r.header("allow"),
            handler: r.header("x-handler"),
            body: &r.body,
        }
    }
}

/// Runs every case over HTTP against `base` (`http://127.0.0.1:port`) and returns how many
/// ran. The cases are checked one by one, each with its audit event.
pub async fn run_http(world: &World, base: &str) -> usize {
    let mut ran = 0;
    for case in cases() {
        world.prepare(&case).await;
        let headers = world.headers(&case);
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let method = http::Method::from_bytes(case.method.as_bytes()).unwrap();
        let r = crate::client::send(method, &format!("{base}{}", case.path), &headers, None).await;
        check_http(&case, Answer::of(&r));
        world.check_audit(&case);
        ran += 1;
    }
    ran
}

/// Checks an HTTP answer against a case.
pub fn check_http(case: &Case, answer: Answer<'_>) {
    let Answer {
        status,
        www_authenticate,
        allow,
        handler,
        body,
    } = answer;
    assert_eq!(status, case.status, "{}: status (body {body})", case.name);
    assert_eq!(
        handler.unwrap_or("none"),
        case.handler,
        "{}: the handler that ran",
        case.name
    );
    if case.status == 405 || case.allow.is_some() {
        assert_eq!(allow, case.allow.as_deref(), "{}: Allow", case.name);
    }
    if let Some(expected) = &case.www_authenticate {
        assert_eq!(
            www_authenticate,
            Some(expected.as_str()),
            "{}: WWW-Authenticate",
            case.name
        );
    }
    if status == 200 {
        if case.method != "HEAD" {
            assert_eq!(body, case.handler, "{}: handler's answer", case.name);
        }
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
