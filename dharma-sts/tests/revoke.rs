//! RFC 7009 revocation through the axum and actix-web routes, over real HTTP on
//! 127.0.0.1: a client revokes a token the service issued to it, and the services that
//! accept the token refuse it from then on (sharing the list in memory, or through a real
//! `redis-server` between instances); tokens of other clients, strangers' strings and
//! expired tokens; malformed requests; the audit trail.

#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use common::*;
use dharma_core::{
    Enforcer,
    audit::{MemoryAuditSink, TokenActivity},
    clock::ManualClock,
    jose::{Algorithm, VerifyingKey},
    mechanism::jwt::{IssuerSpec, JwtVerifier},
    model::{Domain, Endpoint, Topology},
    state::{MemoryRevocations, RevocationList},
};
use dharma_redis::RedisTokenState;
use dharma_sts::{ClientPolicy, REVOCATION_MARGIN, Signer, SigningKey, TokenService};
use dharma_test_support::{client::Response, decide_bearer, redis::RedisServer};
use http::Method;

const STS: &str = "https://sts.outer.example";

struct World {
    clock: Arc<ManualClock>,
    org: Org,
    sts: Arc<TokenService>,
    audit: Arc<MemoryAuditSink>,
    base: String,
}

fn token_service(
    clock: &Arc<ManualClock>,
    list: Option<Arc<dyn RevocationList>>,
    audit: Arc<MemoryAuditSink>,
) -> Arc<TokenService> {
    let signer =
        Signer::key_set(SigningKey::generate(Algorithm::Es256).unwrap()).clock(clock.clone());
    let mut builder = TokenService::builder(STS, Arc::new(signer));
    for client in [BATCH_ID, GATEWAY_ID] {
        builder = builder.client(
            ClientPolicy::new(client)
                .client_credentials()
                .audience("orders"),
        );
    }
    if let Some(list) = list {
        builder = builder.revocations(list);
    }
    Arc::new(builder.audit(audit).clock(clock.clone()).build().unwrap())
}

/// Serves `sts` at `/sts` behind the enforcer of a revoking token service.
async fn serve_revoking(org: &Org, sts: Arc<TokenService>) -> String {
    let app = axum::Router::new()
        .nest("/sts", dharma_sts::axum::routes(sts))
        .layer(dharma_axum::DharmaLayer::new(revoking_enforcer(
            org,
            Arc::default(),
        )));
    format!(
        "http://{}",
        dharma_test_support::server::serve_axum(app).await
    )
}

async fn world(list: Arc<dyn RevocationList>) -> World {
    let clock = Arc::new(ManualClock::starting_now());
    let org = Org::new();
    let audit = Arc::new(MemoryAuditSink::default());
    let sts = token_service(&clock, Some(list), audit.clone());
    let base = serve_revoking(&org, sts.clone()).await;
    World {
        clock,
        org,
        sts,
        audit,
        base,
    }
}

/// The "orders" service: accepts the STS's tokens (its published keys) and consults
/// `list`.
fn orders(sts: &TokenService, list: Arc<dyn RevocationList>, clock: &Arc<ManualClock>) -> Enforcer {
    let keys = sts.signer().jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| VerifyingKey::from_jwk(k).unwrap())
        .collect::<Vec<_>>();
    let jwt = JwtVerifier::builder()
        .issuer(IssuerSpec::new(STS).keys(keys).audience("orders"))
        .require_type("at+jwt")
        .clock(clock.clone())
        .build()
        .unwrap();
    let topology = Topology::builder()
        .domain(Domain::builder("orders").access("sts"))
        .endpoint(Endpoint::boundary("orders", "/orders"))
        .build()
        .unwrap();
    Enforcer::builder(topology)
        .mechanism("sts", Arc::new(jwt))
        .revocations(list)
        .clock(clock.clone())
        .build()
        .unwrap()
}

impl World {
    fn credential(&self, who: &str) -> String {
        let issued = if who == BATCH_ID {
            &self.org.batch
        } else {
            &self.org.gateway
        };
        workload_token(issued, who, "outer")
    }

    /// A token for "orders", issued to `client`.
    async fn issue(&self, client: &str) -> String {
        let resp = post_to(
            &self.base,
            "/sts/token",
            Some(&self.credential(client)),
            &[("grant_type", "client_credentials"), ("audience", "orders")],
        )
        .await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        resp.json()["access_token"].as_str().unwrap().to_owned()
    }

    async fn revoke(&self, client: &str, body: &[(&str, &str)]) -> Response {
        post_to(
            &self.base,
            "/sts/revoke",
            Some(&self.credential(client)),
            body,
        )
        .await
    }

    /// The activity and reason of the last token event.
    fn last_event(&self) -> (TokenActivity, &'static str, Option<String>) {
        let events = self.audit.token_events();
        let e = events.last().unwrap();
        (
            e.activity,
            e.reason,
            e.token_id.as_deref().map(str::to_owned),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_by_the_services_that_accept_it() {
    let list = Arc::new(MemoryRevocations::default());
    let w = world(list.clone()).await;
    let orders = orders(&w.sts, list, &w.clock);
    let token = w.issue(BATCH_ID).await;
    let other = w.issue(BATCH_ID).await;
    let jti = claims_of(&token)["jti"].as_str().unwrap().to_owned();
    assert_eq!(
        decide_bearer(&orders, Method::GET, "/orders", &token)
            .await
            .0,
        200
    );

    // Another client may not revoke it, and it stays valid.
    let resp = w.revoke(GATEWAY_ID, &[("token", &token)]).await;
    assert_error(&resp, 400, "unauthorized_client");
    assert_eq!(
        w.last_event(),
        (
            TokenActivity::Refused,
            "unauthorized_client",
            Some(jti.clone())
        )
    );
    assert_eq!(
        decide_bearer(&orders, Method::GET, "/orders", &token)
            .await
            .0,
        200
    );

    // Its client revokes it: 200, an empty body, not cached; the service refuses it,
    // although its verification was cached.
    let resp = w
        .revoke(
            BATCH_ID,
            &[("token", &token), ("token_type_hint", "access_token")],
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.body, "");
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    assert_eq!(
        w.last_event(),
        (TokenActivity::Revoked, "token", Some(jti.clone()))
    );
    assert_eq!(
        decide_bearer(&orders, Method::GET, "/orders", &token).await,
        (401, "token_revoked".into())
    );
    // By id only: the client's other token is still good. Revoking again changes nothing.
    assert_eq!(
        decide_bearer(&orders, Method::GET, "/orders", &other)
            .await
            .0,
        200
    );
    assert_eq!(w.revoke(BATCH_ID, &[("token", &token)]).await.status, 200);

    // A string the service did not sign (the token with another signature, strings
    // that are not its tokens) is not the service's to revoke: 200 (RFC 7009 §2.2),
    // nothing revoked, audited as such.
    let (signed, _) = other.rsplit_once('.').unwrap();
    let forged = format!("{signed}.{}", "A".repeat(86));
    for not_ours in [forged.as_str(), "not-a-token", "a.b.c"] {
        let resp = w.revoke(BATCH_ID, &[("token", not_ours)]).await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        assert_eq!(w.last_event().1, "not_issued_here");
    }
    assert_eq!(
        decide_bearer(&orders, Method::GET, "/orders", &other)
            .await
            .0,
        200
    );

    // Past its expiry and the margin, there is nothing left to revoke.
    w.clock
        .advance(Duration::from_secs(300) + REVOCATION_MARGIN + Duration::from_secs(1));
    assert_eq!(w.revoke(BATCH_ID, &[("token", &other)]).await.status, 200);
    assert_eq!(w.last_event().1, "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unauthenticated_requests_are_refused() {
    let w = world(Arc::new(MemoryRevocations::default())).await;
    let token = w.issue(BATCH_ID).await;
    for (body, code) in [
        (&[][..], "invalid_request"),
        (&[("token", "")][..], "invalid_request"),
        (&[("token", "a"), ("token", "b")][..], "invalid_request"),
        (
            &[("token", token.as_str()), ("client_secret", "s")][..],
            "invalid_request",
        ),
    ] {
        let resp = w.revoke(BATCH_ID, body).await;
        let description = assert_error(&resp, 400, code);
        assert!(!description.contains(&token), "{description}");
        assert_eq!(w.last_event().0, TokenActivity::Refused);
    }
    // A client_id naming another client.
    let resp = w
        .revoke(BATCH_ID, &[("token", &token), ("client_id", GATEWAY_ID)])
        .await;
    assert_error(&resp, 401, "invalid_client");
    // No credential: dharma refuses before the service sees the request.
    let resp = post_to(&w.base, "/sts/revoke", None, &[("token", &token)]).await;
    assert_eq!(resp.status, 401);
    assert!(
        resp.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_revocation_list_there_is_no_revocation_endpoint() {
    let clock = Arc::new(ManualClock::starting_now());
    let org = Org::new();
    let sts = token_service(&clock, None, Arc::default());
    assert!(!sts.revokes());
    let base = serve_revoking(&org, sts.clone()).await;
    let caller = workload_token(&org.batch, BATCH_ID, "outer");
    let resp = post_to(&base, "/sts/revoke", Some(&caller), &[("token", "x")]).await;
    assert_eq!(resp.status, 404);
    // Called directly, the service says it revokes nothing.
    let request =
        dharma_sts::RevocationRequest::parse(Some("application/x-www-form-urlencoded"), b"token=x")
            .unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {caller}").parse().unwrap(),
    );
    let dharma_core::Decision::Allow(ctx) = revoking_enforcer(&org, Arc::default())
        .decide(&dharma_core::RequestView::new(
            &Method::POST,
            "/sts/revoke",
            &headers,
        ))
        .await
    else {
        panic!("the batch workload is admitted");
    };
    assert_eq!(
        sts.revoke(ctx.context(), &request)
            .await
            .unwrap_err()
            .code(),
        dharma_sts::ErrorCode::UnsupportedTokenType
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_shared_through_redis_reaches_another_instance() {
    let redis = RedisServer::start();
    let connect = || async {
        Arc::new(
            RedisTokenState::builder(&redis.url())
                .connect()
                .await
                .unwrap(),
        )
    };
    let (at_sts, at_orders) = (connect().await, connect().await);
    let w = world(at_sts).await;
    let orders = orders(&w.sts, at_orders, &w.clock);
    let token = w.issue(BATCH_ID).await;
    assert_eq!(
        decide_bearer(&orders, Method::GET, "/orders", &token)
            .await
            .0,
        200
    );
    let start = Instant::now();
    assert_eq!(w.revoke(BATCH_ID, &[("token", &token)]).await.status, 200);
    while decide_bearer(&orders, Method::GET, "/orders", &token)
        .await
        .0
        == 200
    {
        assert!(start.elapsed() < Duration::from_secs(10), "never enforced");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    println!(
        "revoked at the token service, enforced by orders after {:?}",
        start.elapsed()
    );
    assert_eq!(
        decide_bearer(&orders, Method::GET, "/orders", &token)
            .await
            .1,
        "token_revoked"
    );
}
