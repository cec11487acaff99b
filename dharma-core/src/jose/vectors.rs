//! Third-party vectors: Project Wycheproof's JWS and JWK files and the RFC 7520 JWS
//! examples (copied with their licences into `tests/data/vectors`).
//!
//! No case labelled `invalid` is ever accepted; the valid cases of every supported
//! algorithm are; unsupported algorithms and key types are refused without a panic.

use std::{collections::BTreeMap, path::PathBuf};

use super::{
    Algorithm, JwkSet,
    jws::{Compact, Scratch},
    select_key,
};
use dharma_test_support::b64_decode;
use serde_json::{Value, json};

fn data(path: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/vectors")
        .join(path);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Accepts `jws` with the keys of `keys` (a JWK or a JWK Set), as dharma would.
fn accepts(keys: &Value, jws: &Value) -> bool {
    let Some(jws) = jws.as_str() else {
        return false; // JSON serialization: dharma reads compact tokens only
    };
    let set = if keys.get("keys").is_some() {
        keys.clone()
    } else {
        json!({"keys": [keys]})
    };
    let Ok(set) = JwkSet::parse(set.to_string().as_bytes()) else {
        return false;
    };
    let mut scratch = Scratch::new();
    let Ok(compact) = Compact::parse(jws, &mut scratch) else {
        return false;
    };
    let Some(key) = select_key(&set.keys, compact.kid(), compact.alg()) else {
        return false;
    };
    compact.verify(key).is_ok()
}

fn header(jws: &str) -> Value {
    let first = jws.split('.').next().unwrap_or_default();
    serde_json::from_slice(&b64_decode(first)).unwrap_or(Value::Null)
}

/// A key that declares an `alg` never verifies another one, whatever the label says
/// (RFC 7517 section 4.4, RFC 8725 section 3.1): dharma is stricter than such cases.
fn alg_contradicts_key(keys: &Value, jws: &Value) -> bool {
    let Some(jws) = jws.as_str() else {
        return false;
    };
    let alg = header(jws)["alg"].clone();
    keys.get("alg").is_some_and(|k| *k != alg)
}

/// Whether dharma supports the case's algorithm with a usable public key.
fn supported(keys: &Value, jws: &Value) -> bool {
    let Some(jws) = jws.as_str() else {
        return false;
    };
    let alg_ok = header(jws)["alg"]
        .as_str()
        .and_then(Algorithm::from_name)
        .is_some();
    let set = if keys.get("keys").is_some() {
        keys.clone()
    } else {
        json!({"keys": [keys]})
    };
    alg_ok && JwkSet::parse(set.to_string().as_bytes()).is_ok_and(|s| !s.keys.is_empty())
}

/// Wycheproof's README: these are mislabelled, either answer is acceptable.
const EITHER: [(&str, u64); 4] = [
    ("json_web_signature_test.json", 367),
    ("json_web_signature_test.json", 370),
    ("json_web_signature_test.json", 372),
    ("json_web_signature_test.json", 373),
];

#[derive(Default, Debug)]
struct Tally {
    valid_accepted: BTreeMap<String, u32>,
    invalid_rejected: u32,
    unsupported_refused: u32,
    alg_mismatch_refused: Vec<String>,
}

fn run_wycheproof(file: &str, tally: &mut Tally) {
    let doc = data(&format!("wycheproof/{file}"));
    for group in doc["testGroups"].as_array().unwrap() {
        // The verifier gets the public key where one is given, as a relying party would.
        let keys = group.get("public").unwrap_or(&group["private"]).clone();
        for case in group["tests"].as_array().unwrap() {
            let Some(jws) = case.get("jws") else { continue };
            let id = case["tcId"].as_u64().unwrap();
            let result = case["result"].as_str().unwrap();
            let accepted = accepts(&keys, jws);
            let label = format!(
                "{file} tcId {id} ({}): {}",
                group["comment"], case["comment"]
            );
            if EITHER.contains(&(file, id)) || result == "acceptable" {
                continue;
            }
            match result {
                "invalid" => {
                    assert!(!accepted, "accepted an invalid case: {label}");
                    tally.invalid_rejected += 1;
                }
                "valid" if alg_contradicts_key(&keys, jws) => {
                    assert!(
                        !accepted,
                        "a key verified an algorithm it does not declare: {label}"
                    );
                    tally.alg_mismatch_refused.push(label);
                }
                "valid" if supported(&keys, jws) => {
                    assert!(
                        accepted,
                        "rejected a valid case of a supported algorithm: {label}"
                    );
                    let alg = header(jws.as_str().unwrap())["alg"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    *tally.valid_accepted.entry(alg).or_default() += 1;
                }
                "valid" => {
                    assert!(!accepted, "accepted an unsupported case: {label}");
                    tally.unsupported_refused += 1;
                }
                other => panic!("unknown result {other}"),
            }
        }
    }
}

#[test]
fn wycheproof_jws_jwk_and_crypto_vectors() {
    let mut tally = Tally::default();
    for file in [
        "json_web_signature_test.json",
        "json_web_key_test.json",
        "json_web_crypto_test.json",
    ] {
        run_wycheproof(file, &mut tally);
    }
    eprintln!("{tally:?}");
    for alg in [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    ] {
        assert!(
            tally.valid_accepted.get(alg).copied().unwrap_or(0) > 0,
            "no valid {alg} case ran"
        );
    }
    assert!(tally.invalid_rejected > 300, "{tally:?}");
    assert!(
        tally.unsupported_refused > 0,
        "HMAC and P-521 cases are refused cleanly"
    );
    // Only the RFC 7520 figures that Wycheproof pairs with a key declaring another alg.
    assert!(
        tally
            .alg_mismatch_refused
            .iter()
            .all(|l| l.contains("rfc7520")),
        "{:?}",
        tally.alg_mismatch_refused
    );
}

#[test]
fn rfc7520_jws_examples() {
    let private = ["d", "p", "q", "dp", "dq", "qi"];
    let mut outcomes = BTreeMap::new();
    for file in [
        "4_1.rsa_v15_signature.json",
        "4_2.rsa-pss_signature.json",
        "4_3.ecdsa_signature.json",
        "4_4.hmac-sha2_integrity_protection.json",
    ] {
        let doc = data(&format!("rfc7520/jws/{file}"));
        let mut key = doc["input"]["key"].clone();
        for m in private {
            key.as_object_mut().unwrap().remove(m);
        }
        let accepted = accepts(&key, &doc["output"]["compact"]);
        outcomes.insert(doc["input"]["alg"].as_str().unwrap().to_owned(), accepted);
        // The JSON serializations are not compact tokens and are refused.
        assert!(!accepts(&key, &doc["output"]["json"]));
    }
    let expected: BTreeMap<String, bool> = [
        ("RS256", true),
        ("PS384", true),
        ("ES512", false),
        ("HS256", false),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b))
    .collect();
    assert_eq!(outcomes, expected);
}
