//! JWK parsing and key selection.

use super::*;
use serde_json::json;

const X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

#[test]
fn ec_key_without_alg_is_fixed_by_curve() {
    let k = VerifyingKey::from_jwk(&json!({"kty":"EC","crv":"P-256","x":X,"y":Y})).unwrap();
    assert_eq!(
        k.algorithms().iter().collect::<Vec<_>>(),
        [Algorithm::Es256]
    );
}

#[test]
fn alg_must_fit_key_type() {
    let e = VerifyingKey::from_jwk(&json!({"kty":"EC","crv":"P-256","x":X,"y":Y,"alg":"RS256"}))
        .unwrap_err();
    assert_eq!(e, JwkError::UnsupportedAlgorithm("RS256".into()));
    let e = VerifyingKey::from_jwk(&json!({"kty":"EC","crv":"P-256","x":X,"y":Y,"alg":"HS256"}))
        .unwrap_err();
    assert!(matches!(e, JwkError::UnsupportedAlgorithm(_)));
}

#[test]
fn refuses_symmetric_private_and_encryption_keys() {
    assert!(matches!(
        VerifyingKey::from_jwk(&json!({"kty":"oct","k":"AAAA"})),
        Err(JwkError::UnsupportedKeyType(_))
    ));
    assert_eq!(
        VerifyingKey::from_jwk(&json!({"kty":"EC","crv":"P-256","x":X,"y":Y,"d":"AAAA"}))
            .unwrap_err(),
        JwkError::PrivateMaterial
    );
    assert_eq!(
        VerifyingKey::from_jwk(&json!({"kty":"EC","crv":"P-256","x":X,"y":Y,"use":"enc"}))
            .unwrap_err(),
        JwkError::NotForVerification
    );
    assert_eq!(
        VerifyingKey::from_jwk(
            &json!({"kty":"EC","crv":"P-256","x":X,"y":Y,"key_ops":["encrypt"]})
        )
        .unwrap_err(),
        JwkError::NotForVerification
    );
}

#[test]
fn refuses_weak_rsa() {
    let small = URL_SAFE_NO_PAD.encode([0xffu8; 128]);
    assert!(matches!(
        VerifyingKey::from_jwk(&json!({"kty":"RSA","n":small,"e":"AQAB"})),
        Err(JwkError::Weak(_))
    ));
    let n = URL_SAFE_NO_PAD.encode([0xffu8; 256]);
    assert!(matches!(
        VerifyingKey::from_jwk(&json!({"kty":"RSA","n":n,"e":"AQ"})),
        Err(JwkError::Weak(_))
    ));
    assert!(VerifyingKey::from_jwk(&json!({"kty":"RSA","n":n,"e":"AQAB"})).is_ok());
}

#[test]
fn set_keeps_good_keys_and_drops_duplicate_kids() {
    let doc = json!({"keys":[
        {"kty":"EC","crv":"P-256","x":X,"y":Y,"kid":"good"},
        {"kty":"EC","crv":"P-521","x":X,"y":Y,"kid":"unsupported"},
        "garbage",
        {"kty":"EC","crv":"P-256","x":X,"y":Y,"kid":"dup"},
        {"kty":"OKP","crv":"Ed25519","x":URL_SAFE_NO_PAD.encode([9u8;32]),"kid":"dup"},
    ]});
    let set = JwkSet::parse(doc.to_string().as_bytes()).unwrap();
    assert_eq!(set.keys.len(), 1);
    assert_eq!(set.keys[0].kid().unwrap().as_str(), "good");
    assert_eq!(set.skipped.len(), 4);
    assert!(JwkSet::parse(b"{").is_err());
    assert!(JwkSet::parse(b"{\"keys\":{}}").is_err());
}

#[test]
fn rfc7638_thumbprint() {
    // RFC 7638 section 3.1 example.
    let jwk = json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB"
    });
    let k = VerifyingKey::from_jwk(&jwk).unwrap();
    assert_eq!(
        URL_SAFE_NO_PAD.encode(k.thumbprint()),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

/// The reproduction: small-order Ed25519 public keys were accepted. The points
/// come from curve25519-dalek's torsion subgroup, with both sign bits, plus the
/// non-canonical encodings of y = -1, 0 and 1; each is refused as a JWK.
#[test]
fn small_order_ed25519_keys_are_refused() {
    use curve25519_dalek::{constants::EIGHT_TORSION, edwards::CompressedEdwardsY};
    let mut keys: Vec<[u8; 32]> = EIGHT_TORSION
        .iter()
        .map(|p| p.compress().to_bytes())
        .collect();
    for first in [0xec, 0xed, 0xee] {
        let mut k = [0xff; 32];
        k[0] = first;
        k[31] = 0x7f;
        keys.push(k);
    }
    for mut key in keys {
        for sign in [0u8, 0x80] {
            key[31] = (key[31] & 0x7f) | sign;
            let small = CompressedEdwardsY(key)
                .decompress()
                .is_none_or(|p| p.is_small_order());
            assert!(small, "{key:02x?} is not of small order");
            let jwk = json!({"kty":"OKP","crv":"Ed25519","x":URL_SAFE_NO_PAD.encode(key)});
            assert!(
                matches!(VerifyingKey::from_jwk(&jwk), Err(JwkError::Weak(_))),
                "{key:02x?}"
            );
        }
    }
    // A real key is not refused.
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let x = signature::KeyPair::public_key(&pair).as_ref().to_vec();
    assert!(!ed25519_small_order(&x));
    let jwk = json!({"kty":"OKP","crv":"Ed25519","x":URL_SAFE_NO_PAD.encode(&x)});
    assert!(VerifyingKey::from_jwk(&jwk).is_ok());
}
