//! Certificate chains made in the tests (rcgen): mutual-TLS identities, JWTs signed with
//! an organisation-issued certificate (x5c), and certificate-bound tokens (RFC 8705).
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::{
    sync::Arc,
    time::{Duration, UNIX_EPOCH},
};

use dharma_core::{
    Rejection, RequestView, Verifier,
    clock::ManualClock,
    mechanism::jwt::{IssuerSpec, JwtVerifier, VerifyingKey},
    mechanism::mtls::MtlsVerifier,
    mechanism::x5c::{X5cBinding, X5cJwtVerifier},
    pki::{CertificateError, OrgCa, thumbprint},
    reject::TokenError,
};
use dharma_test_support::{
    TestKey,
    keys::claims,
    pki::{Ca, Issued, Leaf},
};
use rcgen::ExtendedKeyUsagePurpose;
use rustls_pki_types::CertificateDer;
use serde_json::json;

/// 2030-01-01: inside the test certificates' 2020–2099 validity.
fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::at(
        UNIX_EPOCH + Duration::from_secs(1_893_456_000),
    ))
}

async fn mtls(
    verifier: &MtlsVerifier,
    chain: &[CertificateDer<'static>],
) -> Result<String, Rejection> {
    let headers = http::HeaderMap::new();
    let view = RequestView::new(&http::Method::GET, "/", &headers).with_peer_certificates(chain);
    verifier
        .verify(&view)
        .await
        .map(|a| a.identities()[0].subject().to_owned())
}

fn cert_error(r: Result<String, Rejection>) -> CertificateError {
    match r {
        Err(Rejection::Certificate(e)) => e,
        other => panic!("expected a certificate rejection, got {other:?}"),
    }
}

struct Pki {
    root: Ca,
    intermediate: Ca,
}

fn pki() -> Pki {
    let root = Ca::root("Org Root");
    let intermediate = root.intermediate("Org Issuing", Some(0));
    Pki { root, intermediate }
}

fn org_ca(p: &Pki) -> OrgCa {
    OrgCa::from_der(&[p.root.der()])
        .unwrap()
        .max_intermediates(1)
}

fn verifier_with(ca: OrgCa) -> MtlsVerifier {
    MtlsVerifier::builder()
        .org_ca(ca)
        .trust_domain("example.org")
        .unwrap()
        .clock(clock())
        .build()
        .unwrap()
}

#[tokio::test]
async fn mtls_chains() {
    let p = pki();
    let ca = org_ca(&p);
    let v = verifier_with(ca.clone());
    let good = p
        .intermediate
        .issue(&Leaf::spiffe("spiffe://example.org/ns/pay/sa/api"));
    assert_eq!(
        mtls(&v, &good.chain).await.unwrap(),
        "spiffe://example.org/ns/pay/sa/api"
    );
    // Again, from the cache of validated chains.
    assert_eq!(
        mtls(&v, &good.chain).await.unwrap(),
        "spiffe://example.org/ns/pay/sa/api"
    );

    let expired = p
        .intermediate
        .issue(&Leaf::spiffe("spiffe://example.org/a").valid((2020, 1, 1), (2021, 1, 1)));
    assert_eq!(
        cert_error(mtls(&v, &expired.chain).await),
        CertificateError::Expired
    );
    let future = p
        .intermediate
        .issue(&Leaf::spiffe("spiffe://example.org/a").valid((2040, 1, 1), (2050, 1, 1)));
    assert_eq!(
        cert_error(mtls(&v, &future.chain).await),
        CertificateError::NotYetValid
    );

    let other = pki();
    let foreign = other
        .intermediate
        .issue(&Leaf::spiffe("spiffe://example.org/a"));
    assert_eq!(
        cert_error(mtls(&v, &foreign.chain).await),
        CertificateError::UnknownIssuer
    );

    let server_only = p.intermediate.issue(
        &Leaf::spiffe("spiffe://example.org/a").eku(vec![ExtendedKeyUsagePurpose::ServerAuth]),
    );
    assert_eq!(
        cert_error(mtls(&v, &server_only.chain).await),
        CertificateError::WrongUsage
    );

    let deep = p.intermediate.intermediate("Too Deep", None);
    let too_long = deep.issue(&Leaf::spiffe("spiffe://example.org/a"));
    assert_eq!(too_long.chain.len(), 3);
    assert_eq!(
        cert_error(mtls(&v, &too_long.chain).await),
        CertificateError::PathTooLong
    );

    let elsewhere = p
        .intermediate
        .issue(&Leaf::spiffe("spiffe://evil.org/ns/pay/sa/api"));
    assert!(matches!(
        cert_error(mtls(&v, &elsewhere.chain).await),
        CertificateError::NotAllowed(_)
    ));

    let self_signed = Ca::root("Mallory");
    let e = cert_error(mtls(&v, &[self_signed.der()]).await);
    assert!(
        matches!(
            e,
            CertificateError::UnknownIssuer | CertificateError::Invalid(_)
        ),
        "{e:?}"
    );

    assert!(matches!(
        mtls(&v, &[]).await,
        Err(Rejection::MissingCredentials)
    ));
}

#[tokio::test]
async fn identity_fallbacks_and_allow_lists() {
    let p = pki();
    let base = || MtlsVerifier::builder().org_ca(org_ca(&p)).clock(clock());
    // Without a trust domain: the DNS SAN (never the CN: see common_name_is_not_an_identity).
    let dns = p.intermediate.issue(&Leaf::dns("billing.internal"));
    assert_eq!(
        mtls(&base().build().unwrap(), &dns.chain).await.unwrap(),
        "billing.internal"
    );
    // With a trust domain, a certificate without a SPIFFE ID is refused.
    let strict = base().trust_domain("example.org").unwrap().build().unwrap();
    assert!(matches!(
        cert_error(mtls(&strict, &dns.chain).await),
        CertificateError::NotAllowed(_)
    ));
    // Allow-list patterns.
    let payments = base()
        .allow("spiffe://example.org/ns/pay/*")
        .build()
        .unwrap();
    let api = p
        .intermediate
        .issue(&Leaf::spiffe("spiffe://example.org/ns/pay/sa/api"));
    let web = p
        .intermediate
        .issue(&Leaf::spiffe("spiffe://example.org/ns/web/sa/ui"));
    assert!(mtls(&payments, &api.chain).await.is_ok());
    assert!(matches!(
        cert_error(mtls(&payments, &web.chain).await),
        CertificateError::NotAllowed(_)
    ));
    // Chains validated by the TLS layer: only the identity is read.
    let layer = MtlsVerifier::builder().trust_tls_layer().build().unwrap();
    assert_eq!(
        mtls(&layer, &web.chain).await.unwrap(),
        "spiffe://example.org/ns/web/sa/ui"
    );
    assert!(
        MtlsVerifier::builder().build().is_err(),
        "one validation mode is required"
    );
    assert!(MtlsVerifier::builder().trust_domain("Bad/Domain").is_err());
}

fn x5c_token(leaf: &Issued, signer: &TestKey, iss: &str) -> String {
    let mut c = claims(iss, "inner", "payments");
    c["exp"] = json!(1_893_456_000u64 + 600);
    c["iat"] = json!(1_893_456_000u64);
    signer.sign_with_header(json!({"x5c": leaf.x5c(), "kid": null}), &c)
}

fn x5c_verifier(p: &Pki) -> X5cJwtVerifier {
    X5cJwtVerifier::builder(org_ca(p))
        .audience("inner")
        .trust_domain("example.org")
        .unwrap()
        .bind(X5cBinding::Issuer)
        .clock(clock())
        .build()
        .unwrap()
}

#[test]
fn x5c_signed_tokens() {
    let p = pki();
    let v = x5c_verifier(&p);
    let id = "spiffe://example.org/ns/outer/sa/sts";
    let leaf = p.intermediate.issue(&Leaf::spiffe(id));
    let signer = leaf.signer("sts");
    let a = v.verify_token(&x5c_token(&leaf, &signer, id)).unwrap();
    let subjects: Vec<_> = a
        .identities()
        .iter()
        .map(|i| i.subject().to_owned())
        .collect();
    assert_eq!(subjects, ["alice", "web-app", id]);

    // The leaf did not sign the token.
    let other_key = TestKey::generate("ES256", "x");
    let e = v
        .verify_token(&x5c_token(&leaf, &other_key, id))
        .unwrap_err();
    assert!(
        matches!(e, Rejection::InvalidToken(TokenError::BadSignature)),
        "{e:?}"
    );
    // A self-signed x5c.
    let mallory = Ca::root("Mallory");
    let rogue = mallory.issue(&Leaf::spiffe(id));
    let e = v
        .verify_token(&x5c_token(&rogue, &rogue.signer("m"), id))
        .unwrap_err();
    assert!(
        matches!(e, Rejection::Certificate(CertificateError::UnknownIssuer)),
        "{e:?}"
    );
    // The iss binding: a valid workload cannot speak for another.
    let e = v
        .verify_token(&x5c_token(
            &leaf,
            &signer,
            "spiffe://example.org/ns/outer/sa/other",
        ))
        .unwrap_err();
    assert!(
        matches!(e, Rejection::InvalidToken(TokenError::Claim(ref c)) if c == "iss"),
        "{e:?}"
    );
    // Expired leaf.
    let old = p
        .intermediate
        .issue(&Leaf::spiffe(id).valid((2020, 1, 1), (2021, 1, 1)));
    let e = v
        .verify_token(&x5c_token(&old, &old.signer("o"), id))
        .unwrap_err();
    assert!(
        matches!(e, Rejection::Certificate(CertificateError::Expired)),
        "{e:?}"
    );
    // Another trust domain.
    let far = p.intermediate.issue(&Leaf::spiffe("spiffe://evil.org/sts"));
    let e = v
        .verify_token(&x5c_token(&far, &far.signer("f"), "spiffe://evil.org/sts"))
        .unwrap_err();
    assert!(
        matches!(e, Rejection::Certificate(CertificateError::NotAllowed(_))),
        "{e:?}"
    );
    // No x5c at all, and garbage x5c.
    let mut c = claims(id, "inner", "x");
    c["exp"] = json!(1_893_456_600u64);
    let e = v.verify_token(&signer.sign(&c)).unwrap_err();
    assert!(
        matches!(e, Rejection::InvalidToken(TokenError::Malformed(_))),
        "{e:?}"
    );
    let e = v
        .verify_token(&signer.sign_with_header(json!({"x5c": ["%%%"]}), &c))
        .unwrap_err();
    assert!(
        matches!(e, Rejection::InvalidToken(TokenError::Malformed(_))),
        "{e:?}"
    );
    // A header x5t#S256 that is not the leaf's.
    let mut c2 = c.clone();
    c2["iss"] = json!(id);
    let t = signer.sign_with_header(json!({"x5c": leaf.x5c(), "x5t#S256": "AAAA"}), &c2);
    assert!(matches!(
        v.verify_token(&t),
        Err(Rejection::InvalidToken(TokenError::Malformed(_)))
    ));
}

/// The issue's reproduction: with no `allow`, `pins` or `bind`, any workload of the
/// organisation CA could sign a token whose `sub` became the principal.
#[test]
fn x5c_workloads_cannot_speak_for_users() {
    let p = pki();
    let sts_id = "spiffe://example.org/ns/outer/sa/sts";
    let rogue_id = "spiffe://example.org/ns/outer/sa/compromised";
    let sts = p.intermediate.issue(&Leaf::spiffe(sts_id));
    let rogue = p.intermediate.issue(&Leaf::spiffe(rogue_id));
    let open = X5cJwtVerifier::builder(org_ca(&p))
        .audience("inner")
        .clock(clock())
        .build()
        .unwrap();
    let listed = X5cJwtVerifier::builder(org_ca(&p))
        .audience("inner")
        .token_service(sts_id)
        .clock(clock())
        .build()
        .unwrap();
    let principal = |a: &dharma_core::Authenticated| {
        a.identities()
            .iter()
            .find(|i| i.is_authenticated())
            .map(|i| i.subject().to_owned())
    };
    for v in [&open, &listed] {
        // A workload's token: the workload is the principal; "alice" is only recorded.
        let a = v
            .verify_token(&x5c_token(&rogue, &rogue.signer("r"), rogue_id))
            .unwrap();
        assert_eq!(principal(&a).as_deref(), Some(rogue_id));
        let alice = a
            .identities()
            .iter()
            .find(|i| i.subject() == "alice")
            .unwrap();
        assert!(!alice.is_authenticated());
    }
    // The listed token service speaks for the user.
    let a = listed
        .verify_token(&x5c_token(&sts, &sts.signer("s"), sts_id))
        .unwrap();
    assert_eq!(principal(&a).as_deref(), Some("alice"));
    // Unlisted, the same token service is only a workload.
    let a = open
        .verify_token(&x5c_token(&sts, &sts.signer("s"), sts_id))
        .unwrap();
    assert_eq!(principal(&a).as_deref(), Some(sts_id));
    // A list that names every workload of the trust domain is refused at build time.
    let e = X5cJwtVerifier::builder(org_ca(&p))
        .audience("inner")
        .token_service("spiffe://example.org/*")
        .build()
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("list the token services' own SPIFFE IDs"),
        "{e}"
    );
    assert!(
        X5cJwtVerifier::builder(org_ca(&p))
            .audience("inner")
            .token_service("spiffe://example.org/ns/sts/*")
            .build()
            .is_ok()
    );
}

/// The issue's reproduction: a leaf that names itself only in its subject CN, under a CA
/// whose name constraints allow `.internal` only: the CN is not an identity.
#[tokio::test]
async fn common_name_is_not_an_identity() {
    let root = Ca::root_constrained("Constrained Root", "internal");
    let ca = OrgCa::from_der(&[root.der()]).unwrap();
    let v = MtlsVerifier::builder()
        .org_ca(ca)
        .clock(clock())
        .build()
        .unwrap();
    let inside = root.issue(&Leaf::dns("billing.internal"));
    assert_eq!(mtls(&v, &inside.chain).await.unwrap(), "billing.internal");
    let escaped = root.issue(&Leaf::cn_only("admin.example.com"));
    assert_eq!(
        cert_error(mtls(&v, &escaped.chain).await),
        CertificateError::NoIdentity
    );
}

#[test]
fn x5c_pinning() {
    let p = pki();
    let id = "spiffe://example.org/ns/outer/sa/sts";
    let leaf = p.intermediate.issue(&Leaf::spiffe(id));
    let other = p.intermediate.issue(&Leaf::spiffe(id));
    let pinned = X5cJwtVerifier::builder(org_ca(&p))
        .audience("inner")
        .pin_x5t_s256(&thumbprint(leaf.cert.as_ref()))
        .clock(clock())
        .build()
        .unwrap();
    assert!(
        pinned
            .verify_token(&x5c_token(&leaf, &leaf.signer("a"), id))
            .is_ok()
    );
    let e = pinned
        .verify_token(&x5c_token(&other, &other.signer("b"), id))
        .unwrap_err();
    assert!(
        matches!(e, Rejection::Certificate(CertificateError::NotPinned)),
        "{e:?}"
    );
}

/// A verifier of an authorization server's tokens, certificate binding required or not.
fn as_verifier(key: &TestKey, bound: bool) -> JwtVerifier {
    let b = JwtVerifier::builder().issuer(
        IssuerSpec::new("https://as")
            .keys([VerifyingKey::from_jwk(&key.jwk()).unwrap()])
            .audience("api"),
    );
    if bound {
        b.require_certificate_binding()
    } else {
        b
    }
    .build()
    .unwrap()
}

/// Verifies `token` as a bearer token sent over a TLS connection whose client presented
/// `chain`.
async fn over_tls(
    jwt: &JwtVerifier,
    token: &str,
    chain: &[CertificateDer<'static>],
) -> Result<(), Rejection> {
    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    let view = RequestView::new(&http::Method::GET, "/", &headers).with_peer_certificates(chain);
    jwt.verify(&view).await.map(|_| ())
}

#[tokio::test]
async fn certificate_bound_tokens() {
    let p = pki();
    let client = p
        .intermediate
        .issue(&Leaf::spiffe("spiffe://example.org/client"));
    let stranger = p
        .intermediate
        .issue(&Leaf::spiffe("spiffe://example.org/stranger"));
    let key = TestKey::generate("ES256", "k");
    let jwt = as_verifier(&key, true);
    let mut c = claims("https://as", "api", "x");
    c["cnf"] = json!({"x5t#S256": thumbprint(client.cert.as_ref())});
    let token = key.sign(&c);
    let check = async |chain: &[CertificateDer<'static>]| over_tls(&jwt, &token, chain).await;
    assert!(check(&client.chain).await.is_ok());
    // The same token again (now from the token cache) over another client's connection.
    let e = check(&stranger.chain).await.unwrap_err();
    assert!(
        matches!(e, Rejection::InvalidToken(TokenError::CertificateBinding)),
        "{e:?}"
    );
    let e = check(&[]).await.unwrap_err();
    assert!(
        matches!(e, Rejection::InvalidToken(TokenError::CertificateBinding)),
        "{e:?}"
    );
}

/// The issue's reproduction: without `require_certificate_binding`, a token whose `cnf`
/// names a certificate was accepted with no certificate at all. RFC 8705 section 3: a
/// confirmation that cannot be checked refuses the token.
#[tokio::test]
async fn a_confirmation_is_checked_whatever_the_flags() {
    let p = pki();
    let client = p
        .intermediate
        .issue(&Leaf::spiffe("spiffe://example.org/client"));
    let key = TestKey::generate("ES256", "k");
    let jwt = as_verifier(&key, false);
    let token = |cnf: Option<serde_json::Value>| {
        let mut c = claims("https://as", "api", "x");
        if let Some(cnf) = cnf {
            c["cnf"] = cnf;
        }
        key.sign(&c)
    };
    let check = async |token: &str, chain: &[CertificateDer<'static>]| {
        over_tls(&jwt, token, chain).await.map_err(|e| e.code())
    };
    let bound = token(Some(json!({"x5t#S256": thumbprint(client.cert.as_ref())})));
    assert_eq!(check(&bound, &client.chain).await, Ok(()));
    assert_eq!(check(&bound, &[]).await, Err("token_certificate_binding"));
    // Unbound tokens still pass when binding is not required.
    assert_eq!(check(&token(None), &[]).await, Ok(()));
    for cnf in [
        json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
        json!({"jwk": {"kty": "EC"}}),
        json!({"x5t#S256": thumbprint(client.cert.as_ref()), "jkt": "x"}),
        json!("x5t#S256"),
        json!({}),
    ] {
        assert_eq!(
            check(&token(Some(cnf.clone())), &client.chain).await,
            Err("token_confirmation_unverifiable"),
            "{cnf}"
        );
    }
}
