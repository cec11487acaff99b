//! Decisions, reloads and audit events of the enforcer.

use super::*;
use crate::model::TopologyErrorKind;
use crate::{
    Authenticated, IdentityKind, Verifier,
    audit::MemoryAuditSink,
    model::{Domain, Endpoint},
    reject::{TokenError, UnavailableError},
    util::BoxFuture,
};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Trusts one peer address; counts its calls.
#[derive(Debug, Default)]
struct Peer(AtomicUsize);
impl Verifier for Peer {
    fn verify<'a>(
        &'a self,
        r: &'a RequestView<'a>,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
        self.0.fetch_add(1, Ordering::Relaxed);
        let ok = r.peer().is_some_and(|p| p.ip().to_string() == "10.0.0.1");
        Box::pin(async move {
            if ok {
                Ok(Authenticated::new(vec![Identity::new(
                    IdentityKind::Workload,
                    "svc",
                )]))
            } else {
                Err(Rejection::MissingCredentials)
            }
        })
    }
}

/// Accepts the header `x-token: good`, with a scope claim.
#[derive(Debug, Default)]
struct Header(AtomicUsize);
impl Verifier for Header {
    fn verify<'a>(
        &'a self,
        r: &'a RequestView<'a>,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
        self.0.fetch_add(1, Ordering::Relaxed);
        let result = match r.headers().get("x-token").map(|v| v.as_bytes()) {
            Some(b"good") => Ok(Authenticated::new(vec![
                Identity::new(IdentityKind::EndUser, "mallory").for_accountability(false),
                Identity::new(IdentityKind::EndUser, "alice")
                    .with_claims(crate::Claims::from_json(r#"{"scope":"s"}"#).unwrap()),
            ])),
            Some(b"down") => Err(Rejection::Unavailable(UnavailableError::KeySource(
                crate::jwks::KeySourceError::Timeout,
            ))),
            Some(_) => Err(TokenError::BadSignature.into()),
            None => Err(Rejection::MissingCredentials),
        };
        Box::pin(async move { result })
    }
}

fn enforcer(peer: Arc<Peer>, header: Arc<Header>, audit: Arc<MemoryAuditSink>) -> Enforcer {
    let topology = Topology::builder()
        .domain(Domain::builder("d").trust("peer").access("header"))
        .endpoint(Endpoint::interior("d", "/in"))
        .endpoint(Endpoint::boundary("d", "/out").scopes(["s"]))
        .endpoint(Endpoint::interior_and_boundary("d", "/both"))
        .build()
        .unwrap();
    Enforcer::builder(topology)
        .mechanism("peer", peer)
        .mechanism("header", header)
        .audit(audit)
        .build()
        .unwrap()
}

async fn decide(
    e: &Enforcer,
    path: &str,
    peer: &str,
    token: Option<&'static str>,
) -> Result<SecurityContext, Denial> {
    let mut headers = http::HeaderMap::new();
    if let Some(t) = token {
        headers.insert("x-token", http::HeaderValue::from_static(t));
    }
    let view =
        RequestView::new(&http::Method::GET, path, &headers).with_peer(peer.parse().unwrap());
    match e.decide(&view).await {
        Decision::Allow(p) => Ok(p.into_context()),
        Decision::Deny(d) => Err(d),
    }
}

/// The issue's reproduction: the actix adapter refused a method it could not convert
/// on its own, outside the core and unaudited. Now the core decides and audits it.
#[tokio::test]
async fn an_unsupported_method_is_refused_and_audited() {
    let audit = Arc::new(MemoryAuditSink::default());
    let e = enforcer(
        Arc::new(Peer::default()),
        Arc::new(Header::default()),
        audit.clone(),
    );
    let headers = http::HeaderMap::new();
    let view = RequestView::new(&http::Method::GET, "/in", &headers)
        .with_peer("10.0.0.1:1".parse().unwrap())
        .with_unsupported_method();
    match e.decide(&view).await {
        Decision::Deny(d) => assert_eq!(d.status(), 400),
        Decision::Allow(_) => panic!("allowed"),
    }
    let events = audit.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reason, "malformed_method");
}

#[tokio::test]
async fn exposure_selects_the_mechanism() {
    let (peer, header, audit) = (
        Arc::new(Peer::default()),
        Arc::new(Header::default()),
        Arc::new(MemoryAuditSink::default()),
    );
    let e = enforcer(peer.clone(), header.clone(), audit.clone());
    // Interior: only the trust mechanism; a good access token does not help.
    assert_eq!(
        decide(&e, "/in", "10.0.0.1:1", None).await.unwrap().lane(),
        Lane::Trust
    );
    assert_eq!(
        decide(&e, "/in", "10.9.9.9:1", Some("good"))
            .await
            .unwrap_err()
            .status(),
        401
    );
    assert_eq!(header.0.load(Ordering::Relaxed), 0);
    // Boundary: only the access mechanism; being inside does not help.
    assert_eq!(
        decide(&e, "/out", "10.0.0.1:1", None)
            .await
            .unwrap_err()
            .status(),
        401
    );
    let ctx = decide(&e, "/out", "10.9.9.9:1", Some("good"))
        .await
        .unwrap();
    assert_eq!(ctx.lane(), Lane::Access);
    // Requirements are checked against the authenticated principal, never an
    // accountability-only identity.
    assert_eq!(ctx.principal().unwrap().subject(), "alice");
    assert_eq!(ctx.identities()[1].subject(), "mallory");
    assert_eq!(
        ctx.principal().unwrap().mechanism().unwrap().as_str(),
        "header"
    );
    // Both: the trust mechanism first (fast lane), then the access mechanism.
    let before = header.0.load(Ordering::Relaxed);
    assert_eq!(
        decide(&e, "/both", "10.0.0.1:1", Some("good"))
            .await
            .unwrap()
            .lane(),
        Lane::Trust
    );
    assert_eq!(
        header.0.load(Ordering::Relaxed),
        before,
        "the fast lane decided alone"
    );
    assert_eq!(
        decide(&e, "/both", "10.9.9.9:1", Some("good"))
            .await
            .unwrap()
            .lane(),
        Lane::Access
    );
    let denied = decide(&e, "/both", "10.9.9.9:1", Some("bad"))
        .await
        .unwrap_err();
    assert_eq!(denied.rejection().code(), "token_bad_signature");
    assert_eq!(audit.events().len(), 7, "one audit event per decision");
}

#[tokio::test]
async fn unavailable_is_503_and_audited_as_such() {
    let audit = Arc::new(MemoryAuditSink::default());
    let e = enforcer(Arc::default(), Arc::default(), audit.clone());
    let d = decide(&e, "/out", "10.9.9.9:1", Some("down"))
        .await
        .unwrap_err();
    assert_eq!(d.status(), 503);
    let ev = &audit.events()[0];
    assert_eq!((ev.reason, ev.status), ("key_source_unavailable", 503));
    assert_eq!(
        ev.detail.as_deref(),
        Some("unavailable: key source timed out")
    );
}

/// A verifier that waits until released, to hold a decision in flight.
#[derive(Debug, Default)]
struct Gate(tokio::sync::Notify);
impl Verifier for Gate {
    fn verify<'a>(
        &'a self,
        _: &'a RequestView<'a>,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
        Box::pin(async move {
            self.0.notified().await;
            Ok(Authenticated::new(vec![Identity::new(
                IdentityKind::Workload,
                "svc",
            )]))
        })
    }
}

#[tokio::test]
async fn reload_swaps_whole_policies_and_in_flight_requests_keep_theirs() {
    let audit = Arc::new(MemoryAuditSink::default());
    let gate = Arc::new(Gate::default());
    let mechanisms = Mechanisms::new().with("gate", gate.clone());
    let first = Topology::builder()
        .domain(Domain::builder("d").trust("gate"))
        .endpoint(Endpoint::interior("d", "/old"))
        .build()
        .unwrap();
    let e = Enforcer::builder(first)
        .mechanisms(&mechanisms)
        .audit(audit.clone())
        .build()
        .unwrap();
    assert_eq!(e.revision(), 1);

    let in_flight = tokio::spawn({
        let e = e.clone();
        async move { decide(&e, "/old", "10.0.0.1:1", None).await }
    });
    tokio::task::yield_now().await;

    let second = Topology::builder()
        .domain(Domain::builder("d").trust("gate"))
        .endpoint(Endpoint::interior("d", "/new"))
        .build()
        .unwrap();
    assert_eq!(e.reload(second, &mechanisms, "code").unwrap(), 2);
    assert_eq!(e.revision(), 2);
    // A new request sees the new policy whole.
    assert_eq!(
        decide(&e, "/old", "10.0.0.1:1", None)
            .await
            .unwrap_err()
            .status(),
        404
    );
    // The request that started before the reload finishes on the old one.
    gate.0.notify_one();
    let ctx = in_flight.await.unwrap().unwrap();
    assert_eq!(ctx.endpoint(), Some("* /old"));

    let revisions: Vec<_> = audit
        .events()
        .iter()
        .map(|ev| (ev.path.clone(), ev.revision))
        .collect();
    assert_eq!(revisions, [("/old".into(), 2), ("/old".into(), 1)]);
    let policy = audit.policy_events();
    assert_eq!(policy.len(), 1);
    assert!(policy[0].applied);
    assert_eq!(
        (policy[0].revision, policy[0].reason),
        (2, "policy_applied")
    );
}

#[tokio::test]
async fn a_policy_with_a_missing_mechanism_is_refused_and_the_old_one_stays() {
    let audit = Arc::new(MemoryAuditSink::default());
    let e = enforcer(Arc::default(), Arc::default(), audit.clone());
    let broken = Topology::builder()
        .domain(Domain::builder("d").trust("nobody"))
        .endpoint(Endpoint::interior("d", "/in"))
        .build()
        .unwrap();
    let err = e
        .reload(broken, &Mechanisms::new(), "policy.toml")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"domain "d": mechanism "nobody" is not registered"#
    );
    assert_eq!(e.revision(), 1);
    assert!(decide(&e, "/in", "10.0.0.1:1", None).await.is_ok());
    let policy = audit.policy_events();
    assert_eq!(policy.len(), 1);
    assert!(!policy[0].applied);
    assert_eq!(policy[0].reason, "policy_invalid");
    assert_eq!(&*policy[0].source, "policy.toml");
    assert_eq!(policy[0].revision, 1);
    assert!(policy[0].detail.as_deref().unwrap().contains("nobody"));
}

#[tokio::test]
async fn preflights_pass_to_declared_paths_only_when_asked() {
    let audit = Arc::new(MemoryAuditSink::default());
    let build = |pass: bool| {
        let mut t = Topology::builder()
            .domain(Domain::builder("d").access("header"))
            .endpoint(Endpoint::boundary("d", "/orders/{id}").methods(["GET"]));
        if pass {
            t = t.pass_preflights();
        }
        Enforcer::builder(t.build().unwrap())
            .mechanism("header", Arc::new(Header::default()))
            .audit(audit.clone())
            .build()
            .unwrap()
    };
    let preflight = |path: &'static str, origin: bool| {
        let mut headers = http::HeaderMap::new();
        if origin {
            headers.insert("origin", "https://app.example".parse().unwrap());
        }
        headers.insert("access-control-request-method", "GET".parse().unwrap());
        (path, headers)
    };
    let status = |e: &Enforcer, (path, headers): (&'static str, http::HeaderMap)| {
        let e = e.clone();
        async move {
            match e
                .decide(&RequestView::new(&http::Method::OPTIONS, path, &headers))
                .await
            {
                Decision::Allow(p) => (200, p.context().lane()),
                Decision::Deny(d) => (d.status().as_u16(), Lane::Unmatched),
            }
        }
    };
    let decided = build(false);
    assert_eq!(status(&decided, preflight("/orders/7", true)).await.0, 405);
    let passing = build(true);
    assert_eq!(
        status(&passing, preflight("/orders/7", true)).await,
        (200, Lane::Preflight)
    );
    // Not a preflight without Origin; no pass for undeclared paths.
    assert_eq!(status(&passing, preflight("/orders/7", false)).await.0, 405);
    assert_eq!(status(&passing, preflight("/admin", true)).await.0, 404);
    let lanes: Vec<_> = audit.take().iter().map(|e| e.lane).collect();
    assert_eq!(lanes[1], Some(Lane::Preflight), "preflights are audited");
}

#[tokio::test]
async fn optional_credentials_admit_none_and_refuse_bad_ones() {
    let audit = Arc::new(MemoryAuditSink::default());
    let topology = Topology::builder()
        .domain(Domain::builder("d").access("header"))
        .endpoint(Endpoint::boundary("d", "/offers").optional())
        .build()
        .unwrap();
    let e = Enforcer::builder(topology)
        .mechanism("header", Arc::new(Header::default()))
        .audit(audit.clone())
        .build()
        .unwrap();
    let anonymous = decide(&e, "/offers", "10.9.9.9:1", None).await.unwrap();
    assert_eq!(anonymous.lane(), Lane::Anonymous);
    assert!(anonymous.principal().is_none());
    let known = decide(&e, "/offers", "10.9.9.9:1", Some("good"))
        .await
        .unwrap();
    assert_eq!(known.principal().unwrap().subject(), "alice");
    let bad = decide(&e, "/offers", "10.9.9.9:1", Some("forged"))
        .await
        .unwrap_err();
    assert_eq!(bad.status(), 401);
    let down = decide(&e, "/offers", "10.9.9.9:1", Some("down"))
        .await
        .unwrap_err();
    assert_eq!(
        down.status(),
        503,
        "an unavailable mechanism is not anonymity"
    );
    assert_eq!(audit.events()[0].lane, Some(Lane::Anonymous));

    // Optional credentials cannot carry requirements no anonymous caller meets.
    for misuse in [
        Endpoint::boundary("d", "/x").optional().scopes(["s"]),
        Endpoint::boundary("d", "/x")
            .optional()
            .claim_equals("c", 1),
        Endpoint::public("d", "/x").optional(),
    ] {
        let err = Topology::builder()
            .domain(Domain::builder("d").access("header"))
            .endpoint(misuse)
            .build()
            .unwrap_err();
        assert!(
            matches!(err.kind(), TopologyErrorKind::OptionalMisused),
            "{err}"
        );
    }
}
