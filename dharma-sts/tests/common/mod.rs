//! A token service as the outer domain runs it: its token endpoint an interior endpoint,
//! callers authenticated by x5c JWTs from the organisation CA, served over real HTTP.
#![allow(dead_code, reason = "each test file uses part of the harness")]
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use std::sync::Arc;

use axum::Router;
use dharma_axum::DharmaLayer;
use dharma_core::{
    Enforcer, TokenVerifier, Verifier,
    audit::MemoryAuditSink,
    jose::VerifyingKey,
    mechanism::jwt::{IssuerSpec, JwtVerifier},
    mechanism::x5c::{X5cBinding, X5cJwtVerifier},
    model::{Domain, DomainBuilder, Endpoint, EndpointBuilder, Topology},
    pki::OrgCa,
};
use dharma_sts::TokenService;
use dharma_test_support::{
    TestKey,
    client::{self, Response},
    now,
    pki::{Ca, Issued, Leaf},
    server::serve_axum,
};
use http::Method;
use serde_json::{Value, json};

pub(crate) const TRUST_DOMAIN: &str = "example.org";
pub(crate) const STS_ID: &str = "spiffe://example.org/ns/outer/sa/sts";
pub(crate) const GATEWAY_ID: &str = "spiffe://example.org/ns/outer/sa/gateway";
pub(crate) const BATCH_ID: &str = "spiffe://example.org/ns/outer/sa/batch";
pub(crate) const STRANGER_ID: &str = "spiffe://example.org/ns/outer/sa/stranger";
pub(crate) const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub(crate) const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub(crate) const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The organisation's CA and the workloads it certified.
pub(crate) struct Org {
    pub(crate) root: Ca,
    pub(crate) sts: Issued,
    pub(crate) gateway: Issued,
    pub(crate) batch: Issued,
    pub(crate) stranger: Issued,
}

impl Org {
    pub(crate) fn new() -> Self {
        let root = Ca::root("Org Root");
        let issue = |id| root.issue(&Leaf::spiffe(id));
        Self {
            sts: issue(STS_ID),
            gateway: issue(GATEWAY_ID),
            batch: issue(BATCH_ID),
            stranger: issue(STRANGER_ID),
            root,
        }
    }

    pub(crate) fn ca(&self) -> OrgCa {
        OrgCa::from_pem(&self.root.pem()).unwrap()
    }

    /// Verifies x5c JWTs for `audience` from workloads of the trust domain, `iss` bound
    /// to the certificate; the users the STS's tokens name are authenticated.
    pub(crate) fn x5c_verifier(&self, audience: &str) -> X5cJwtVerifier {
        X5cJwtVerifier::builder(self.ca())
            .audience(audience)
            .trust_domain(TRUST_DOMAIN)
            .unwrap()
            .bind(X5cBinding::Issuer)
            .token_service(STS_ID)
            .build()
            .unwrap()
    }
}

/// A workload's own credential: an x5c JWT for `audience`, `iss` and `sub` its SPIFFE ID.
pub(crate) fn workload_token(issued: &Issued, id: &str, audience: &str) -> String {
    let now = now();
    issued.signer("w").sign_with_header(
        json!({"x5c": issued.x5c(), "kid": null}),
        &json!({"iss": id, "sub": id, "aud": audience, "iat": now, "exp": now + 300}),
    )
}

/// Serves the token service at `/sts` behind dharma: `/sts/token` interior to "outer"
/// (callers authenticated by `org-jwt`), `/sts/jwks.json` public.
pub(crate) async fn serve(
    org: &Org,
    sts: Arc<TokenService>,
    audit: Arc<MemoryAuditSink>,
) -> String {
    let enforcer = enforcer(org, audit);
    let app = Router::new()
        .nest("/sts", dharma_sts::axum::routes(sts))
        .layer(DharmaLayer::new(enforcer));
    format!("http://{}", serve_axum(app).await)
}

pub(crate) fn enforcer(org: &Org, audit: Arc<MemoryAuditSink>) -> Enforcer {
    guard(
        Domain::builder("outer").trust("org-jwt"),
        [
            Endpoint::interior("outer", "/sts/token").methods(["POST"]),
            Endpoint::public("outer", "/sts/jwks.json").methods(["GET"]),
        ],
        ("org-jwt", Arc::new(org.x5c_verifier("outer"))),
        audit,
    )
}

/// The enforcer in front of a token service that revokes: `/sts/token` and
/// `/sts/revoke` interior to "outer", callers authenticated by x5c JWTs.
pub(crate) fn revoking_enforcer(org: &Org, audit: Arc<MemoryAuditSink>) -> Enforcer {
    guard(
        Domain::builder("outer").trust("org-jwt"),
        [
            Endpoint::interior("outer", "/sts/token").methods(["POST"]),
            Endpoint::interior("outer", "/sts/revoke").methods(["POST"]),
        ],
        ("org-jwt", Arc::new(org.x5c_verifier("outer"))),
        audit,
    )
}

/// An enforcer for one domain, its endpoints, and the one mechanism it names.
pub(crate) fn guard(
    domain: DomainBuilder,
    endpoints: impl IntoIterator<Item = EndpointBuilder>,
    (name, mechanism): (&str, Arc<dyn Verifier>),
    audit: Arc<MemoryAuditSink>,
) -> Enforcer {
    let topology = endpoints
        .into_iter()
        .fold(Topology::builder().domain(domain), |t, e| t.endpoint(e))
        .build()
        .unwrap();
    Enforcer::builder(topology)
        .mechanism(name, mechanism)
        .audit(audit)
        .build()
        .unwrap()
}

/// A JWT verifier for the tokens `key` signs as `issuer` for `audience`.
pub(crate) fn jwt_verifier(key: &TestKey, issuer: &str, audience: &str) -> JwtVerifier {
    JwtVerifier::builder()
        .issuer(
            IssuerSpec::new(issuer)
                .keys([VerifyingKey::from_jwk(&key.jwk()).unwrap()])
                .audience(audience),
        )
        .build()
        .unwrap()
}

/// Posts a token request with the caller's credential (if any).
pub(crate) async fn post(base: &str, credential: Option<&str>, form: &[(&str, &str)]) -> Response {
    post_to(base, "/sts/token", credential, form).await
}

/// Posts a form to `path` with the caller's credential (if any).
pub(crate) async fn post_to(
    base: &str,
    path: &str,
    credential: Option<&str>,
    form: &[(&str, &str)],
) -> Response {
    client::send_bearer(
        Method::POST,
        &format!("{base}{path}"),
        credential,
        Some(form),
    )
    .await
}

/// The claims of a JWT, unverified.
pub(crate) fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&dharma_test_support::b64_decode(payload)).unwrap()
}

/// The header of a JWT.
pub(crate) fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&dharma_test_support::b64_decode(header)).unwrap()
}

/// Asserts an OAuth error answer and returns its description.
pub(crate) fn assert_error(resp: &Response, status: u16, code: &str) -> String {
    assert_eq!(resp.status, status, "{}", resp.body);
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let body = resp.json();
    assert_eq!(body["error"], code, "{}", resp.body);
    body["error_description"].as_str().unwrap().to_owned()
}

/// Checks a token through a mechanism as a downstream service would.
pub(crate) async fn verified_by(
    verifier: &dyn TokenVerifier,
    token: &str,
) -> Result<String, String> {
    verifier
        .verify_token(token)
        .await
        .map(|a| a.identities()[0].subject().to_owned())
        .map_err(|r| r.code().to_owned())
}
