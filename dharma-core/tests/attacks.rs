//! The attacks of RFC 8725 and the JWT literature, each refused cleanly.
#![expect(clippy::unwrap_used, clippy::panic, reason = "tests")]

use dharma_core::{
    Rejection,
    mechanism::jwt::{IssuerSpec, JwtVerifier},
    reject::TokenError,
};
use dharma_test_support::{
    TestKey, b64,
    keys::{claims, jwks},
    server::{Reply, TestServer},
};
use ring::hmac;
use serde_json::{Value, json};

const AUD: &str = "api";

struct Target {
    _jwks: TestServer,
    verifier: JwtVerifier,
    key: TestKey,
    iss: String,
}

async fn target(alg: &'static str) -> Target {
    let key = TestKey::generate(alg, "legit");
    let server = TestServer::start().await;
    server.set("/jwks", Reply::json(&jwks(&[&key])));
    let iss = server.url("");
    let verifier = JwtVerifier::builder()
        .issuer(
            IssuerSpec::new(&iss)
                .jwks_uri(&server.url("/jwks"))
                .audience(AUD),
        )
        .build()
        .unwrap();
    verifier.warm_up().await.unwrap();
    Target {
        _jwks: server,
        verifier,
        key,
        iss,
    }
}

impl Target {
    fn claims(&self) -> Value {
        claims(&self.iss, AUD, "admin")
    }
    async fn check(&self, token: &str) -> Result<(), Rejection> {
        self.verifier.verify_token(token).await.map(|_| ())
    }
    async fn refused(&self, token: &str) -> TokenError {
        match self.check(token).await {
            Err(Rejection::InvalidToken(e)) => e,
            other => panic!("expected an invalid-token rejection, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_genuine_token_passes() {
    let t = target("RS256").await;
    t.check(&t.key.sign(&t.claims())).await.unwrap();
}

#[tokio::test]
async fn alg_none_in_any_case() {
    let t = target("RS256").await;
    let payload = b64(t.claims().to_string());
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = b64(json!({"alg": alg, "kid": "legit"}).to_string());
        for sig in ["", "AAAA"] {
            let token = format!("{header}.{payload}.{sig}");
            let e = t.refused(&token).await;
            assert!(
                matches!(
                    e,
                    TokenError::UnsupportedAlgorithm(_) | TokenError::Malformed(_)
                ),
                "{alg}: {e:?}"
            );
        }
    }
}

#[tokio::test]
async fn rs256_public_key_as_hmac_secret() {
    let t = target("RS256").await;
    let jwk = t.key.jwk();
    // Secrets an attacker might derive from the public key: the JWK text and the modulus.
    let secrets = [
        jwk.to_string().into_bytes(),
        dharma_test_support::b64_decode(jwk["n"].as_str().unwrap()),
    ];
    for secret in secrets {
        for alg in ["HS256", "HS384", "HS512"] {
            let input = format!(
                "{}.{}",
                b64(json!({"alg": alg, "kid": "legit", "typ": "at+jwt"}).to_string()),
                b64(t.claims().to_string())
            );
            let algorithm = match alg {
                "HS256" => hmac::HMAC_SHA256,
                "HS384" => hmac::HMAC_SHA384,
                _ => hmac::HMAC_SHA512,
            };
            let tag = hmac::sign(&hmac::Key::new(algorithm, &secret), input.as_bytes());
            let e = t.refused(&format!("{input}.{}", b64(tag.as_ref()))).await;
            assert_eq!(e, TokenError::UnsupportedAlgorithm(alg.into()));
        }
    }
}

#[tokio::test]
async fn header_alg_must_match_the_key() {
    let t = target("ES256").await;
    // Re-label an ES256 signature as ES384, and as RS256.
    let genuine = t.key.sign(&t.claims());
    let parts: Vec<&str> = genuine.split('.').collect();
    for alg in ["ES384", "RS256", "PS256", "EdDSA"] {
        let header = b64(json!({"alg": alg, "kid": "legit"}).to_string());
        let e = t
            .refused(&format!("{header}.{}.{}", parts[1], parts[2]))
            .await;
        assert!(
            matches!(e, TokenError::UnknownKey { .. } | TokenError::BadSignature),
            "{alg}: {e:?}"
        );
    }
}

#[tokio::test]
async fn embedded_jwk_is_not_trusted() {
    let t = target("ES256").await;
    let attacker = TestKey::generate("ES256", "legit");
    for kid in ["legit", "attacker"] {
        let token =
            attacker.sign_with_header(json!({"jwk": attacker.jwk(), "kid": kid}), &t.claims());
        let e = t.refused(&token).await;
        assert!(
            matches!(e, TokenError::BadSignature | TokenError::UnknownKey { .. }),
            "{e:?}"
        );
    }
}

#[tokio::test]
async fn jku_and_x5u_are_never_contacted() {
    let t = target("ES256").await;
    let attacker = TestKey::generate("ES256", "evil");
    let lure = TestServer::start().await;
    lure.set("/jwks", Reply::json(&jwks(&[&attacker])));
    lure.set("/cert", Reply::status(200, "-----BEGIN CERTIFICATE-----"));
    for header in [
        json!({"jku": lure.url("/jwks")}),
        json!({"x5u": lure.url("/cert")}),
        json!({"jku": lure.url("/jwks"), "kid": "legit"}),
        json!({"x5c": ["MIIBAA=="], "kid": "legit"}),
    ] {
        let token = attacker.sign_with_header(header, &t.claims());
        let e = t.refused(&token).await;
        assert!(
            matches!(e, TokenError::BadSignature | TokenError::UnknownKey { .. }),
            "{e:?}"
        );
    }
    assert_eq!(lure.total_hits(), 0, "a URL named by a token was fetched");
}

#[tokio::test]
async fn unknown_crit_is_refused() {
    let t = target("ES256").await;
    let mut c = t.claims();
    c["exp"] = json!(crate::now() + 60);
    let token = t.key.sign_with_header(
        json!({"crit": ["urn:example:must-understand"], "urn:example:must-understand": true}),
        &c,
    );
    assert_eq!(
        t.refused(&token).await,
        TokenError::CriticalHeader("urn:example:must-understand".into())
    );
    let token = t
        .key
        .sign_with_header(json!({"crit": ["b64"], "b64": false}), &c);
    assert!(matches!(
        t.refused(&token).await,
        TokenError::CriticalHeader(_)
    ));
}

fn now() -> u64 {
    dharma_test_support::now()
}

/// The verified-token cache finds a token by its signature: a verified token's signature
/// grafted onto another payload (more scope, another subject) or header must be checked,
/// not answered from the cache.
#[tokio::test]
async fn a_cached_signature_does_not_vouch_for_another_payload() {
    for alg in ["RS256", "ES256", "EdDSA"] {
        let t = target(alg).await;
        let genuine = t.key.sign(&t.claims());
        t.check(&genuine).await.unwrap();
        t.check(&genuine).await.unwrap();
        let (input, sig) = genuine.rsplit_once('.').unwrap();
        let (header, _) = input.split_once('.').unwrap();
        let mut claims = t.claims();
        claims["scope"] = json!("admin root");
        claims["sub"] = json!("mallory");
        let payload = b64(claims.to_string());
        assert_eq!(
            t.refused(&format!("{header}.{payload}.{sig}")).await,
            TokenError::BadSignature,
            "{alg}: another payload"
        );
        let (_, payload) = input.split_once('.').unwrap();
        let header = b64(json!({"alg": alg, "kid": "legit", "note": "grafted"}).to_string());
        assert_eq!(
            t.refused(&format!("{header}.{payload}.{sig}")).await,
            TokenError::BadSignature,
            "{alg}: another header"
        );
        t.check(&genuine).await.unwrap();
    }
}

/// A verified token's header is remembered, so later tokens with the same header segment
/// skip reading it: it must answer only for those very bytes. Properly signed tokens whose
/// header differs from the remembered one (a critical extension, compression, another
/// key id) are read and judged as if nothing were remembered, and the remembered header
/// never excuses a bad signature.
#[tokio::test]
async fn a_remembered_header_answers_only_for_its_own_bytes() {
    let t = target("ES256").await;
    let genuine = t.key.sign(&t.claims());
    t.check(&genuine).await.unwrap();
    let fresh = t.key.sign(&t.claims());
    t.check(&fresh).await.unwrap();

    let critical = t.key.sign_with_header(
        json!({"crit": ["urn:example:must-understand"], "urn:example:must-understand": true}),
        &t.claims(),
    );
    assert_eq!(
        t.refused(&critical).await,
        TokenError::CriticalHeader("urn:example:must-understand".into())
    );
    let compressed = t.key.sign_with_header(json!({"zip": "DEF"}), &t.claims());
    assert!(matches!(
        t.refused(&compressed).await,
        TokenError::Malformed(_)
    ));
    let other_kid = t
        .key
        .sign_with_header(json!({"kid": "rotated-out"}), &t.claims());
    assert!(matches!(
        t.refused(&other_kid).await,
        TokenError::UnknownKey { .. }
    ));

    // The remembered header with a new payload and a signature that does not cover it.
    let (header, _) = genuine.split_once('.').unwrap();
    let (_, signature) = genuine.rsplit_once('.').unwrap();
    let payload = b64(t.claims().to_string());
    assert_eq!(
        t.refused(&format!("{header}.{payload}.{signature}")).await,
        TokenError::BadSignature
    );
    t.check(&t.key.sign(&t.claims())).await.unwrap();
}

#[tokio::test]
async fn truncated_and_empty_signatures() {
    for alg in ["RS256", "ES256", "EdDSA"] {
        let t = target(alg).await;
        let genuine = t.key.sign(&t.claims());
        let (input, sig) = genuine.rsplit_once('.').unwrap();
        let sig_bytes = dharma_test_support::b64_decode(sig);
        assert!(matches!(
            t.refused(&format!("{input}.")).await,
            TokenError::Malformed(_)
        ));
        assert_eq!(
            t.refused(&format!(
                "{input}.{}",
                b64(&sig_bytes[..sig_bytes.len() - 1])
            ))
            .await,
            TokenError::BadSignature
        );
        assert_eq!(
            t.refused(&format!("{input}.{}", b64(&sig_bytes[..1])))
                .await,
            TokenError::BadSignature
        );
        let mut flipped = sig_bytes.clone();
        flipped[0] ^= 1;
        assert_eq!(
            t.refused(&format!("{input}.{}", b64(&flipped))).await,
            TokenError::BadSignature
        );
        assert!(matches!(t.refused(input).await, TokenError::Malformed(_)));
    }
}

#[tokio::test]
async fn oversized_token() {
    let t = target("ES256").await;
    let mut c = t.claims();
    c["padding"] = json!("x".repeat(10_000));
    let e = t.refused(&t.key.sign(&c)).await;
    assert!(matches!(e, TokenError::TooLarge { max: 8192, .. }), "{e:?}");
}

#[tokio::test]
async fn non_json_and_deeply_nested_json() {
    let t = target("ES256").await;
    let header = json!({"alg": "ES256", "kid": "legit"}).to_string();
    for payload in [
        "not json",
        "[]",
        "\"string\"",
        "{\"unterminated\": ",
        "\u{0}",
    ] {
        let e = t.refused(&t.key.sign_raw(&header, payload)).await;
        assert!(matches!(e, TokenError::Malformed(_)), "{payload:?}: {e:?}");
    }
    // Headers that are not objects with a string alg.
    for bad_header in ["nope", "[]", "{\"alg\": 256}", "{}"] {
        let e = t
            .refused(&t.key.sign_raw(bad_header, &t.claims().to_string()))
            .await;
        assert!(
            matches!(e, TokenError::Malformed(_)),
            "{bad_header:?}: {e:?}"
        );
    }
    // Nesting deep enough to overflow a naive recursive parser, inside the size limit and
    // (with a raised limit) far beyond it.
    let deep = |n: usize| format!("{{\"iss\":{}{}}}", "[".repeat(n), "]".repeat(n));
    let e = t.refused(&t.key.sign_raw(&header, &deep(2_500))).await;
    assert!(matches!(e, TokenError::Malformed(_)), "{e:?}");
    let big = JwtVerifier::builder()
        .issuer(
            IssuerSpec::new(&t.iss)
                .keys([dharma_core::mechanism::jwt::VerifyingKey::from_jwk(&t.key.jwk()).unwrap()])
                .audience(AUD),
        )
        .max_token_bytes(4 << 20)
        .build()
        .unwrap();
    // An unknown header member is skipped without recursion; the token still fails.
    let token = t.key.sign_raw(
        &format!(
            "{{\"alg\":\"ES256\",\"x\":{}{}}}",
            "[".repeat(500_000),
            "]".repeat(500_000)
        ),
        "{}",
    );
    assert!(matches!(
        big.verify_token(&token).await,
        Err(Rejection::InvalidToken(_))
    ));
    let token = t.key.sign_raw(&header, &deep(500_000));
    assert!(matches!(
        big.verify_token(&token).await,
        Err(Rejection::InvalidToken(TokenError::Malformed(_)))
    ));
}

#[tokio::test]
async fn structural_attacks() {
    let t = target("ES256").await;
    let genuine = t.key.sign(&t.claims());
    // JWE-shaped (five segments), JSON serialization, padding, whitespace.
    for token in [
        format!("{genuine}.AAAA.BBBB"),
        json!({"payload": "e30", "signatures": []}).to_string(),
        format!("{genuine}="),
        format!(" {genuine}"),
        genuine.replacen('.', "..", 1),
    ] {
        assert!(t.check(&token).await.is_err(), "{token}");
    }
}

#[tokio::test]
async fn claim_attacks() {
    let t = target("ES256").await;
    let sign = |edit: &dyn Fn(&mut Value)| {
        let mut c = t.claims();
        edit(&mut c);
        t.key.sign(&c)
    };
    assert_eq!(
        t.refused(&sign(&|c| c["iss"] = json!("https://evil.example")))
            .await,
        TokenError::UntrustedIssuer("https://evil.example".into())
    );
    assert_eq!(
        t.refused(&sign(&|c| c["aud"] = json!("other"))).await,
        TokenError::WrongAudience
    );
    assert_eq!(
        t.refused(&sign(&|c| {
            c.as_object_mut().unwrap().remove("exp");
        }))
        .await,
        TokenError::Claim("exp".into())
    );
    assert!(matches!(
        t.refused(&sign(&|c| c["exp"] = json!(now() - 3600))).await,
        TokenError::Expired { .. }
    ));
    assert!(matches!(
        t.refused(&sign(&|c| c["nbf"] = json!(now() + 3600))).await,
        TokenError::NotYetValid { .. }
    ));
    // An issuer's key cannot sign for another configured issuer: iss picks the key set.
    assert!(matches!(
        t.refused(&sign(&|c| c["iss"] = json!(null))).await,
        TokenError::UntrustedIssuer(_)
    ));
}

/// The issue's reproduction: a payload with two `sub` members passed (serde_json keeps the
/// last; the identity provider, a gateway and dharma may each read another subject).
#[tokio::test]
async fn repeated_claims_are_refused() {
    let t = target("ES256").await;
    let c = t.claims();
    let mut body = c.to_string();
    body.pop(); // the closing brace
    body.push_str(r#","sub":"admin"}"#);
    let token = t.key.sign_raw(r#"{"alg":"ES256","kid":"legit"}"#, &body);
    assert!(matches!(
        t.check(&token).await,
        Err(Rejection::InvalidToken(TokenError::Malformed(_)))
    ));
    // Repeated inside a nested member too.
    let mut body = c.to_string();
    body.pop();
    body.push_str(r#","cnf":{"x5t#S256":"a","x5t#S256":"b"}}"#);
    let token = t.key.sign_raw(r#"{"alg":"ES256","kid":"legit"}"#, &body);
    assert!(matches!(
        t.check(&token).await,
        Err(Rejection::InvalidToken(TokenError::Malformed(_)))
    ));
    // The same payload without the repetition verifies.
    let token = t
        .key
        .sign_raw(r#"{"alg":"ES256","kid":"legit"}"#, &c.to_string());
    assert!(t.check(&token).await.is_ok());
}
