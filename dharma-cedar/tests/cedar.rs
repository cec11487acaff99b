//! Cedar policies deciding requests through an enforcer, with real tokens: roles as
//! Cedar groups, a path parameter against a claim, a forbid that overrides, the
//! principal's kind and scopes; refusals audited with Cedar's reason.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::sync::Arc;

use dharma_cedar::CedarAuthorizer;
use dharma_core::{
    Enforcer,
    audit::MemoryAuditSink,
    mechanism::jwt::{IssuerSpec, JwtVerifier, VerifyingKey},
    model::{Domain, Endpoint, Rule, Topology},
};
use dharma_test_support::{TestKey, decide_bearer, keys::claims};
use http::Method;
use serde_json::json;

const ISS: &str = "https://idp.example";

const POLICIES: &str = r#"
    permit(principal in Dharma::Role::"admin", action, resource in Dharma::TrustDomain::"outer");

    permit(principal, action == Dharma::Action::"GET", resource)
        when { resource.path == "/users/{id}" && principal.claims.sub == context.params.id };

    permit(principal is Dharma::ClientApp, action == Dharma::Action::"POST", resource)
        when { resource.path == "/jobs" && principal.scopes.contains("batch") && context.lane == "access" };

    forbid(principal, action, resource)
        when { principal.claims has suspended && principal.claims.suspended };
"#;

fn enforcer(key: &TestKey, audit: Arc<MemoryAuditSink>) -> Enforcer {
    let jwt = JwtVerifier::builder()
        .issuer(
            IssuerSpec::new(ISS)
                .keys([VerifyingKey::from_jwk(&key.jwk()).unwrap()])
                .audience("outer"),
        )
        .build()
        .unwrap();
    let topology = Topology::builder()
        .domain(Domain::builder("outer").access("jwt"))
        .endpoint(
            Endpoint::boundary("outer", "/users/{id}")
                .methods(["GET"])
                .rule(Rule::authorizer("cedar")),
        )
        .endpoint(
            Endpoint::boundary("outer", "/jobs")
                .methods(["POST"])
                .rule(Rule::authorizer("cedar")),
        )
        .roles_claim("realm_access.roles")
        .build()
        .unwrap();
    Enforcer::builder(topology)
        .mechanism("jwt", Arc::new(jwt))
        .authorizer(
            "cedar",
            Arc::new(CedarAuthorizer::from_policies(POLICIES).unwrap()),
        )
        .audit(audit)
        .build()
        .unwrap()
}

async fn call(e: &Enforcer, method: Method, path: &str, token: &str) -> (u16, String) {
    decide_bearer(e, method, path, token).await
}

#[tokio::test]
async fn cedar_policies_decide_with_the_security_context() {
    let key = TestKey::generate("ES256", "k");
    let audit = Arc::new(MemoryAuditSink::default());
    let e = enforcer(&key, audit.clone());
    let token = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims(ISS, "outer", "orders:read");
        edit(&mut c);
        key.sign(&c)
    };
    let alice = token(&|_| {});
    let admin = token(&|c| c["realm_access"] = json!({"roles": ["admin"]}));
    let suspended_admin = token(&|c| {
        c["realm_access"] = json!({"roles": ["admin"]});
        c["suspended"] = json!(true);
    });
    let batch = token(&|c| {
        c["sub"] = json!("batch-app");
        c["client_id"] = json!("batch-app");
        c["scope"] = json!("batch");
    });
    let user_with_batch_scope = token(&|c| c["scope"] = json!("batch"));

    assert_eq!(call(&e, Method::GET, "/users/alice", &alice).await.0, 200);
    assert_eq!(
        call(&e, Method::GET, "/users/bob", &alice).await,
        (403, "authorizer_refused".into())
    );
    assert_eq!(
        call(&e, Method::GET, "/users/bob", &admin).await.0,
        200,
        "a role is a Cedar group"
    );
    assert_eq!(
        call(&e, Method::GET, "/users/alice", &suspended_admin)
            .await
            .0,
        403,
        "forbid overrides permit"
    );
    assert_eq!(call(&e, Method::POST, "/jobs", &batch).await.0, 200);
    assert_eq!(
        call(&e, Method::POST, "/jobs", &user_with_batch_scope)
            .await
            .0,
        403,
        "the principal must be a client application"
    );
    assert_eq!(call(&e, Method::POST, "/jobs", &alice).await.0, 403);
    let refused = audit
        .events()
        .into_iter()
        .find(|ev| ev.reason == "authorizer_refused")
        .unwrap();
    assert!(refused.detail.unwrap().contains("cedar: no policy permits"));
}

#[test]
fn policies_that_do_not_parse_are_refused() {
    let e = CedarAuthorizer::from_policies("permit(principal, action, resource) when { nonsense ")
        .unwrap_err();
    assert!(e.to_string().contains("do not parse"), "{e}");
}
