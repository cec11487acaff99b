//! Signing keys generated at run time, and token minting.

use std::sync::{Arc, OnceLock};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::{
    rand::SystemRandom,
    signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair},
};
use serde_json::{Value, json};

/// base64url without padding.
pub fn b64(data: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

enum Signer {
    Rsa(RsaKeyPair),
    P256(EcdsaKeyPair),
    P384(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key with its kid and algorithm.
#[derive(Clone)]
pub struct TestKey {
    signer: Arc<Signer>,
    /// The JWS algorithm.
    pub alg: &'static str,
    /// The key id.
    pub kid: String,
    public_jwk: Value,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestKey({} {})", self.alg, self.kid)
    }
}

fn rsa_pkcs8(slot: usize) -> Vec<u8> {
    use rsa::pkcs8::EncodePrivateKey;
    static KEYS: [OnceLock<Vec<u8>>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    KEYS[slot % 3]
        .get_or_init(|| {
            let mut rng = rsa::rand_core::OsRng;
            let key = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
            key.to_pkcs8_der().unwrap().as_bytes().to_vec()
        })
        .clone()
}

impl TestKey {
    /// A fresh key for `alg` (RS256/384/512, PS256/384/512, ES256, ES384, EdDSA). RSA
    /// keys come from a small pool generated once per process (`slot` picks one of three).
    pub fn generate(alg: &'static str, kid: &str) -> Self {
        Self::generate_in_slot(alg, kid, 0)
    }

    /// Like [`generate`](Self::generate), choosing the RSA key of the pool.
    pub fn generate_in_slot(alg: &'static str, kid: &str, slot: usize) -> Self {
        let rng = SystemRandom::new();
        let (signer, mut jwk) = match alg {
            "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => {
                let pair = RsaKeyPair::from_pkcs8(&rsa_pkcs8(slot)).unwrap();
                let c = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public());
                (
                    Signer::Rsa(pair),
                    json!({"kty":"RSA","n":b64(&c.n),"e":b64(&c.e)}),
                )
            }
            "ES256" | "ES384" => {
                let (signing, crv, len) = if alg == "ES256" {
                    (&signature::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32)
                } else {
                    (&signature::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48)
                };
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(signing, &rng).unwrap();
                let pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref(), &rng).unwrap();
                let point = pair.public_key().as_ref().to_vec();
                let jwk = json!({"kty":"EC","crv":crv,"x":b64(&point[1..1 + len]),"y":b64(&point[1 + len..])});
                let signer = if alg == "ES256" {
                    Signer::P256(pair)
                } else {
                    Signer::P384(pair)
                };
                (signer, jwk)
            }
            "EdDSA" => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
                let jwk = json!({"kty":"OKP","crv":"Ed25519","x":b64(pair.public_key().as_ref())});
                (Signer::Ed25519(pair), jwk)
            }
            other => panic!("no test key for {other}"),
        };
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(alg);
        jwk["use"] = json!("sig");
        Self {
            signer: Arc::new(signer),
            alg,
            kid: kid.to_owned(),
            public_jwk: jwk,
        }
    }

    /// An ES256 key from a PKCS#8 document (e.g. a certificate's key made by rcgen).
    pub fn es256_from_pkcs8(pkcs8: &[u8], kid: &str) -> Self {
        let rng = SystemRandom::new();
        let signing = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8, &rng).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let jwk = json!({"kty":"EC","crv":"P-256","x":b64(&point[1..33]),"y":b64(&point[33..]),"kid":kid,"alg":"ES256","use":"sig"});
        Self {
            signer: Arc::new(Signer::P256(pair)),
            alg: "ES256",
            kid: kid.to_owned(),
            public_jwk: jwk,
        }
    }

    /// The public JWK (with `kid`, `alg` and `use`).
    pub fn jwk(&self) -> Value {
        self.public_jwk.clone()
    }

    /// The public JWK without `alg`.
    pub fn jwk_without_alg(&self) -> Value {
        let mut j = self.jwk();
        j.as_object_mut().unwrap().remove("alg");
        j
    }

    /// Signs bytes with the key's algorithm.
    pub fn sign_bytes(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &*self.signer {
            Signer::Rsa(pair) => {
                let padding: &dyn signature::RsaEncoding = match self.alg {
                    "RS256" => &signature::RSA_PKCS1_SHA256,
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    "PS256" => &signature::RSA_PSS_SHA256,
                    "PS384" => &signature::RSA_PSS_SHA384,
                    _ => &signature::RSA_PSS_SHA512,
                };
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(padding, &rng, message, &mut sig).unwrap();
                sig
            }
            Signer::P256(pair) | Signer::P384(pair) => {
                pair.sign(&rng, message).unwrap().as_ref().to_vec()
            }
            Signer::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
        }
    }

    /// A compact JWS of exactly these header and payload texts.
    pub fn sign_raw(&self, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let sig = self.sign_bytes(input.as_bytes());
        format!("{input}.{}", b64(sig))
    }

    /// A JWT with header `{"alg", "kid", "typ": "at+jwt"}` merged with `extra_header`.
    pub fn sign_with_header(&self, extra_header: Value, claims: &Value) -> String {
        let mut header = json!({"alg": self.alg, "kid": self.kid, "typ": "at+jwt"});
        for (k, v) in extra_header.as_object().unwrap() {
            if v.is_null() {
                header.as_object_mut().unwrap().remove(k);
            } else {
                header[k] = v.clone();
            }
        }
        self.sign_raw(&header.to_string(), &claims.to_string())
    }

    /// A JWT with the standard header.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(json!({}), claims)
    }
}

/// A JWK Set document of these keys.
pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}

/// Claims of a valid access token: `iss`, `aud`, `sub`, `client_id`, `exp` in 10 minutes,
/// `iat` now, `jti`, and `scope`.
pub fn claims(iss: &str, aud: &str, scope: &str) -> Value {
    let now = crate::now();
    json!({
        "iss": iss, "aud": aud, "sub": "alice", "client_id": "web-app",
        "exp": now + 600, "iat": now, "jti": format!("jti-{}", rand_u64()), "scope": scope,
    })
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut b).unwrap();
    u64::from_le_bytes(b)
}

/// base64url decoding (no padding).
pub fn b64_decode(data: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(data).unwrap()
}

/// The token with its payload rewritten by `edit` and its signature kept.
pub fn tamper(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&b64_decode(parts[1])).unwrap();
    edit(&mut claims);
    format!("{}.{}.{}", parts[0], b64(claims.to_string()), parts[2])
}
