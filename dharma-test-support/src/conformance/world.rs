//! The world every case runs in: one topology, one enforcer, and the tokens the cases name.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use dharma_core::{
    Enforcer, IdentityKind, Lane, Rejection,
    audit::{
        AuditEvent, AuditSink, AuditUnavailable, JsonLinesSink, MemoryAuditSink, Outcome, Overflow,
        PolicyEvent, TokenEvent,
    },
    error::ForbiddenReason,
    jwks::CachePolicy,
    mechanism::api_key::ApiKeyVerifier,
    mechanism::combine::AnyOf,
    mechanism::jwt::{IssuerSpec, JwtVerifier, VerifyingKey},
    mechanism::network::NetworkVerifier,
    model::{AuthorizationRequest, Authorizer, Domain, Endpoint, Rule, Topology},
    state::{FailMode, MemoryReplayGuard, MemoryRevocations, Revocation},
};
use serde_json::json;

use super::Case;
use crate::{TestKey, b64, keys::claims};

/// The enforcer, its audit trail and the tokens the cases name.
pub struct World {
    /// The enforcer every adapter wraps.
    pub enforcer: Enforcer,
    /// Where its decisions go.
    pub audit: Arc<MemoryAuditSink>,
    tokens: HashMap<&'static str, String>,
    replay: Arc<MemoryReplayGuard>,
    trail: Arc<Trail>,
    key: TestKey,
}

/// The world's audit trail: every event in memory, where the cases read them; while a
/// case says the trail is failing, admissions also go through a JSON-lines sink that
/// denies on overflow and writes to `/dev/full`, which it cannot.
#[derive(Debug)]
struct Trail {
    memory: Arc<MemoryAuditSink>,
    failing: AtomicBool,
    file: JsonLinesSink,
}

impl AuditSink for Trail {
    fn record(&self, event: &AuditEvent) {
        self.memory.record(event);
    }

    fn try_record(&self, event: AuditEvent) -> Result<(), AuditUnavailable> {
        if self.failing.load(Ordering::SeqCst) && event.outcome == Outcome::Allow {
            self.file.try_record(event.clone())?;
        }
        self.memory.try_record(event)
    }

    fn record_policy(&self, event: &PolicyEvent) {
        self.memory.record_policy(event);
    }

    fn record_token(&self, event: &TokenEvent) {
        self.memory.record_token(event);
    }
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
        .endpoint(
            Endpoint::boundary("shop", "/shop.Orders/Sync")
                .methods(["POST"])
                .rule(Rule::from_domain("partner.example")),
        )
        .roles_claim("realm_access.roles")
        .realm("shop")
        .build()
        .unwrap();
    let audit = Arc::new(MemoryAuditSink::default());
    let trail = Arc::new(Trail {
        memory: audit.clone(),
        failing: AtomicBool::new(false),
        file: JsonLinesSink::builder("/dev/full")
            .overflow(Overflow::Deny)
            .build()
            .unwrap(),
    });
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
        .audit(trail.clone())
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
    // Workloads named by SPIFFE IDs (as JWT-SVIDs name them): one of the partner's trust
    // domain, one of a domain whose name merely starts with it.
    for (name, sub) in [
        ("partner", "spiffe://partner.example/ns/sync/sa/agent"),
        (
            "lookalike",
            "spiffe://partner.example.evil/ns/sync/sa/agent",
        ),
    ] {
        let mut workload = claims(ISS, "shop", "orders:read");
        workload["sub"] = json!(sub);
        tokens.insert(name, key.sign(&workload));
    }
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
        trail,
        key,
    }
}

impl World {
    /// Puts the world in the state a case needs (the decisions this takes are not the
    /// case's, and leave the audit trail):
    /// - `audit_failing`: admissions go through the failing file sink as well; one
    ///   admission is written to it first, so that its writer has found the device full;
    /// - `store_full`: fresh tokens are used at the one-time endpoint until the replay guard
    ///   is full.
    pub async fn prepare(&self, case: &Case) {
        self.trail
            .failing
            .store(case.audit_failing, Ordering::SeqCst);
        if case.audit_failing {
            let token = self.key.sign(&claims(ISS, "shop", "orders:read"));
            crate::decide_bearer(
                &self.enforcer,
                http::Method::POST,
                "/shop.Health/Check",
                &token,
            )
            .await;
            assert!(self.trail.file.flush().is_err(), "/dev/full is full");
        }
        if case.store_full {
            while !self.replay.is_full() {
                let token = self.key.sign(&claims(ISS, "shop", "orders:read"));
                crate::decide_bearer(
                    &self.enforcer,
                    http::Method::POST,
                    "/shop.Orders/Redeem",
                    &token,
                )
                .await;
            }
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
