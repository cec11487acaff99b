//! Cedar through dharma against Cedar's own evaluation of the same request.
//!
//! `cedar/own` is Cedar's `is_authorized` on a request and entities built once (what a
//! caller of Cedar who built them by hand pays per request). `cedar/decide_plain` is a warm
//! JWT decision on an endpoint without rules; `cedar/decide_cedar` the same on an endpoint
//! whose rule is the Cedar authorizer. The report's ratio is
//! `(decide_cedar - decide_plain) / own`: what dharma's authorizer (building the principal,
//! resource and context from the security context, then Cedar) costs per Cedar evaluation.
//!
//! `cargo bench -p dharma-benches --bench cedar`
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "benches")]

use std::{
    hint::black_box,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use cedar_policy::{Entities, Request};
use criterion::{Criterion, criterion_group, criterion_main};
use dharma_benches::{ISSUER, block_on, jwt_verifier};
use dharma_cedar::CedarAuthorizer;
use dharma_core::{
    Decision, Enforcer, Rejection, RequestView,
    model::{AuthorizationRequest, Authorizer, Domain, Endpoint, Rule, Topology},
};
use dharma_test_support::{TestKey, keys::claims};
use http::{HeaderMap, HeaderValue, Method, header::AUTHORIZATION};
use serde_json::json;

const POLICIES: &str = r#"
    permit(principal in Dharma::Role::"admin", action, resource);
    permit(principal, action == Dharma::Action::"GET", resource)
        when { resource.path == "/users/{id}" && principal.claims.sub == context.params.id };
    forbid(principal, action, resource)
        when { principal.claims has suspended && principal.claims.suspended };
"#;

/// The Cedar authorizer, keeping the first Cedar request it built (the benched calls go
/// straight to the authorizer).
#[derive(Debug)]
struct Keep(
    CedarAuthorizer,
    Mutex<Option<(Request, Entities)>>,
    AtomicBool,
);

impl Authorizer for Keep {
    fn authorize(&self, request: &AuthorizationRequest<'_>) -> Result<(), Rejection> {
        if !self.2.swap(true, Ordering::Relaxed) {
            *self.1.lock().unwrap() = Some(self.0.cedar_request(request).unwrap());
        }
        self.0.authorize(request)
    }
}

fn bench(c: &mut Criterion) {
    let key = TestKey::generate("ES256", "k");
    let keep = Arc::new(Keep(
        CedarAuthorizer::from_policies(POLICIES).unwrap(),
        Mutex::new(None),
        AtomicBool::new(false),
    ));
    let topology = Topology::builder()
        .domain(Domain::builder("outer").access("jwt"))
        .endpoint(
            Endpoint::boundary("outer", "/users/{id}")
                .methods(["GET"])
                .rule(Rule::authorizer("cedar")),
        )
        .endpoint(Endpoint::boundary("outer", "/plain/{id}").methods(["GET"]))
        .build()
        .unwrap();
    let enforcer = Enforcer::builder(topology)
        .mechanism("jwt", Arc::new(jwt_verifier(&key, 1000)))
        .authorizer("cedar", keep.clone())
        .build()
        .unwrap();
    let mut c_ = claims(ISSUER, dharma_benches::AUDIENCE, "orders:read");
    c_["sub"] = json!("alice");
    c_["roles"] = json!(["viewer"]);
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {}", key.sign(&c_))).unwrap(),
    );
    let decide = |path: &str| {
        let view = RequestView::new(&Method::GET, path, &headers);
        matches!(
            block_on(enforcer.decide(black_box(&view))),
            Decision::Allow(_)
        )
    };
    assert!(decide("/users/alice") && decide("/plain/alice"));
    let (request, entities) = keep.1.lock().unwrap().take().unwrap();
    let own = CedarAuthorizer::from_policies(POLICIES).unwrap();
    assert!(own.decide(&request, &entities).is_ok());

    let mut group = c.benchmark_group("cedar");
    group.bench_function("own", |b| {
        b.iter(|| own.decide(black_box(&request), black_box(&entities)))
    });
    group.bench_function("decide_plain", |b| b.iter(|| decide("/plain/alice")));
    group.bench_function("decide_cedar", |b| b.iter(|| decide("/users/alice")));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
