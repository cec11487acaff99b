//! JSON Web Keys (RFC 7517) turned, once, into keys ready to verify.
//!
//! A [`VerifyingKey`] fixes which algorithms it verifies: its `alg` member when present,
//! otherwise every algorithm of its key type (`EC` `P-256` is only ES256; `RSA` is the RS
//! and PS family). A token's header can never make a key verify another algorithm.
//!
//! ```
//! use dharma_core::mechanism::jwt::{Algorithm, VerifyingKey};
//!
//! let jwk = serde_json::json!({
//!     "kty": "EC", "crv": "P-256", "kid": "k1",
//!     "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
//!     "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
//! });
//! let key = VerifyingKey::from_jwk(&jwk)?;
//! assert!(key.accepts(Algorithm::Es256));
//! assert!(!key.accepts(Algorithm::Rs256));
//! # Ok::<(), dharma_core::mechanism::jwt::JwkError>(())
//! ```

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};

use super::alg::{Algorithm, AlgorithmSet, Family};
use crate::{
    error::{JwkSetError, TokenError},
    names::KeyId,
};

/// A JWK that cannot be used to verify signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwkError {
    /// Not a JSON object.
    #[error("key is not a JSON object")]
    NotAnObject,
    /// A member is missing or has the wrong type.
    #[error("member {0:?} is missing or malformed")]
    Member(&'static str),
    /// Key type or curve that dharma does not verify with.
    #[error("unsupported key type {0:?}")]
    UnsupportedKeyType(String),
    /// `alg` names an algorithm that is unsupported or does not fit the key type.
    #[error("algorithm {0:?} is unsupported or does not fit the key type")]
    UnsupportedAlgorithm(String),
    /// `use` or `key_ops` say the key is not for verifying signatures.
    #[error("key is not meant for signature verification")]
    NotForVerification,
    /// The key carries private material: a public key set must not.
    #[error("key carries private key material")]
    PrivateMaterial,
    /// The key is too weak or malformed (RSA modulus size, exponent, point size).
    #[error("key is weak or malformed: {0}")]
    Weak(&'static str),
}

#[derive(Clone)]
enum Material {
    Rsa(RsaPublicKeyComponents<Vec<u8>>),
    P256(Vec<u8>),
    P384(Vec<u8>),
    Ed25519(Vec<u8>),
}

/// A public key, parsed once, with the algorithms it may verify.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Option<KeyId>,
    algorithms: AlgorithmSet,
    material: Material,
    thumbprint: [u8; 32],
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

impl VerifyingKey {
    /// Parses a JWK.
    pub fn from_jwk(jwk: &Value) -> Result<Self, JwkError> {
        let obj = jwk.as_object().ok_or(JwkError::NotAnObject)?;
        if PRIVATE_MEMBERS.iter().any(|m| obj.contains_key(*m)) {
            return Err(match obj.get("kty").and_then(Value::as_str) {
                Some("oct") => JwkError::UnsupportedKeyType("oct".into()),
                _ => JwkError::PrivateMaterial,
            });
        }
        check_usage(obj)?;
        let kty = str_member(obj, "kty")?;
        let (family, material) = match kty {
            "RSA" => (Family::Rsa, rsa_material(obj)?),
            "EC" => match str_member(obj, "crv")? {
                "P-256" => (Family::P256, Material::P256(ec_point(obj, 32)?)),
                "P-384" => (Family::P384, Material::P384(ec_point(obj, 48)?)),
                other => {
                    return Err(JwkError::UnsupportedKeyType(format!(
                        "EC {}",
                        crate::util::truncate(other, 16)
                    )));
                }
            },
            "OKP" => match str_member(obj, "crv")? {
                "Ed25519" => {
                    let x = b64_member(obj, "x")?;
                    if x.len() != 32 {
                        return Err(JwkError::Weak("Ed25519 key is not 32 bytes"));
                    }
                    if ed25519_small_order(&x) {
                        return Err(JwkError::Weak("Ed25519 key is a point of small order"));
                    }
                    (Family::Ed25519, Material::Ed25519(x))
                }
                other => {
                    return Err(JwkError::UnsupportedKeyType(format!(
                        "OKP {}",
                        crate::util::truncate(other, 16)
                    )));
                }
            },
            other => {
                return Err(JwkError::UnsupportedKeyType(crate::util::truncate(
                    other, 16,
                )));
            }
        };
        let family_set = AlgorithmSet::of_family(family);
        let algorithms = match obj.get("alg") {
            None => family_set,
            Some(Value::String(name)) => match Algorithm::from_name(name) {
                Some(a) if family_set.contains(a) => AlgorithmSet::empty().with(a),
                _ => {
                    return Err(JwkError::UnsupportedAlgorithm(crate::util::truncate(
                        name, 16,
                    )));
                }
            },
            Some(_) => return Err(JwkError::Member("alg")),
        };
        let kid = match obj.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.parse().map_err(|_| JwkError::Member("kid"))?),
            Some(_) => return Err(JwkError::Member("kid")),
        };
        let thumbprint = thumbprint(&material);
        Ok(Self {
            kid,
            algorithms,
            material,
            thumbprint,
        })
    }

    /// The key id.
    pub fn kid(&self) -> Option<&KeyId> {
        self.kid.as_ref()
    }

    /// Whether the key verifies `alg`.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(alg)
    }

    /// The algorithms the key verifies.
    pub fn algorithms(&self) -> AlgorithmSet {
        self.algorithms
    }

    /// The RFC 7638 JWK thumbprint (SHA-256).
    pub fn thumbprint(&self) -> &[u8; 32] {
        &self.thumbprint
    }

    /// Verifies `signature` over `message` with `alg`, which must be one of the key's.
    pub fn verify(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), TokenError> {
        if !self.accepts(alg) {
            return Err(TokenError::AlgorithmMismatch {
                header: alg.name().to_owned(),
                key: self
                    .algorithms
                    .iter()
                    .next()
                    .map_or("none", Algorithm::name),
            });
        }
        use Algorithm as A;
        let result = match (&self.material, alg) {
            (Material::Rsa(key), alg) => {
                let params: &signature::RsaParameters = match alg {
                    A::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    A::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    A::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    A::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                    A::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                    A::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return Err(TokenError::BadSignature),
                };
                key.verify(params, message, signature)
            }
            (Material::P256(point), A::Es256) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
            }
            (Material::P384(point), A::Es384) => {
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                    .verify(message, signature)
            }
            (Material::Ed25519(key), A::EdDsa) => {
                UnparsedPublicKey::new(&signature::ED25519, key).verify(message, signature)
            }
            _ => return Err(TokenError::BadSignature),
        };
        result.map_err(|_| TokenError::BadSignature)
    }
}

fn check_usage(obj: &Map<String, Value>) -> Result<(), JwkError> {
    match obj.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(Value::String(_)) => return Err(JwkError::NotForVerification),
        Some(_) => return Err(JwkError::Member("use")),
    }
    match obj.get("key_ops") {
        None => Ok(()),
        Some(Value::Array(ops)) if ops.iter().any(|o| o == "verify") => Ok(()),
        Some(Value::Array(_)) => Err(JwkError::NotForVerification),
        Some(_) => Err(JwkError::Member("key_ops")),
    }
}

fn str_member<'a>(obj: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, JwkError> {
    obj.get(name)
        .and_then(Value::as_str)
        .ok_or(JwkError::Member(name))
}

fn b64_member(obj: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, JwkError> {
    URL_SAFE_NO_PAD
        .decode(str_member(obj, name)?)
        .map_err(|_| JwkError::Member(name))
}

fn rsa_material(obj: &Map<String, Value>) -> Result<Material, JwkError> {
    let n = strip_leading_zeros(b64_member(obj, "n")?);
    let e = strip_leading_zeros(b64_member(obj, "e")?);
    let bits = (n.len() * 8).saturating_sub(n.first().map_or(0, |b| b.leading_zeros() as usize));
    if !(2048..=8192).contains(&bits) {
        return Err(JwkError::Weak("RSA modulus must have 2048 to 8192 bits"));
    }
    if e.len() > 4
        || e.last().is_none_or(|b| b & 1 == 0)
        || (e.len() == 1 && e.first().is_some_and(|b| *b < 3))
    {
        return Err(JwkError::Weak(
            "RSA exponent must be odd, at least 3 and at most 32 bits",
        ));
    }
    if has_roca_fingerprint(&n) {
        return Err(JwkError::Weak(
            "RSA modulus has the ROCA fingerprint (CVE-2017-15361)",
        ));
    }
    Ok(Material::Rsa(RsaPublicKeyComponents { n, e }))
}

/// Moduli made by the flawed Infineon generator (ROCA) are `k * M + (65537^a mod M)`,
/// so modulo every small prime `p` dividing `M` they lie in the subgroup generated by
/// 65537. An honest modulus passes this test for all these primes with negligible
/// probability.
fn has_roca_fingerprint(n: &[u8]) -> bool {
    const PRIMES: [u32; 38] = [
        3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89,
        97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
    ];
    PRIMES.iter().all(|&p| {
        let residue = n
            .iter()
            .fold(0u32, |acc, b| (acc * 256 + u32::from(*b)) % p);
        let generator = 65537 % p;
        let mut x = 1u32;
        loop {
            if x == residue {
                return true;
            }
            x = x * generator % p;
            if x == 1 {
                return false;
            }
        }
    })
}

fn strip_leading_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|b| **b == 0).count();
    v.drain(..zeros);
    v
}

fn ec_point(obj: &Map<String, Value>, len: usize) -> Result<Vec<u8>, JwkError> {
    let x = b64_member(obj, "x")?;
    let y = b64_member(obj, "y")?;
    if x.len() != len || y.len() != len {
        return Err(JwkError::Weak("EC coordinates have the wrong length"));
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}

/// RFC 7638: SHA-256 of the required members, in lexicographic order, no whitespace.
fn thumbprint(material: &Material) -> [u8; 32] {
    let b = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
    let json = match material {
        Material::Rsa(k) => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b(&k.e), b(&k.n)),
        Material::P256(p) | Material::P384(p) => {
            let crv = if matches!(material, Material::P256(_)) {
                "P-256"
            } else {
                "P-384"
            };
            let coord = (p.len() - 1) / 2;
            let (x, y) = p.get(1..).unwrap_or_default().split_at(coord);
            format!(
                r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#,
                b(x),
                b(y)
            )
        }
        Material::Ed25519(x) => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b(x)),
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, json.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Chooses the key for a token's `kid` and `alg`: the key with that `kid` that verifies
/// `alg`; without a `kid`, the only key that verifies `alg` (none if several do).
pub(crate) fn select_key<'k, K: AsRef<VerifyingKey>>(
    keys: &'k [K],
    kid: Option<&str>,
    alg: Algorithm,
) -> Option<&'k K> {
    let fits = |k: &&K| k.as_ref().accepts(alg);
    match kid {
        Some(kid) => keys
            .iter()
            .filter(fits)
            .find(|k| k.as_ref().kid.as_ref().is_some_and(|id| id.as_str() == kid)),
        None => {
            let mut candidates = keys.iter().filter(fits);
            let first = candidates.next();
            if candidates.next().is_some() {
                None
            } else {
                first
            }
        }
    }
}

impl AsRef<VerifyingKey> for VerifyingKey {
    fn as_ref(&self) -> &VerifyingKey {
        self
    }
}

/// A JWK Set, parsed key by key: one unusable key does not discard the others.
#[derive(Debug, Clone, Default)]
pub(crate) struct JwkSet {
    /// The usable keys. Keys whose `kid` appears more than once are left out.
    pub keys: Vec<VerifyingKey>,
    /// The keys left out, by position in the set, with the reason.
    pub skipped: Vec<(usize, JwkError)>,
}

impl JwkSet {
    /// Parses a JWK Set document (`{"keys": [...]}`).
    pub(crate) fn parse(json: &[u8]) -> Result<Self, JwkSetError> {
        let doc = crate::json::value(json).map_err(|_| JwkSetError("invalid JSON"))?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwkSetError("no \"keys\" array"))?;
        let mut set = JwkSet::default();
        for (i, jwk) in keys.iter().enumerate() {
            match VerifyingKey::from_jwk(jwk) {
                Ok(k) => set.keys.push(k),
                Err(e) => set.skipped.push((i, e)),
            }
        }
        // A kid that names several keys is ambiguous: use none of them.
        let kid_of = |v: &Value| v.get("kid").and_then(Value::as_str).map(str::to_owned);
        let mut duplicates: Vec<String> = Vec::new();
        for (i, jwk) in keys.iter().enumerate() {
            if let Some(kid) = kid_of(jwk)
                && keys
                    .iter()
                    .skip(i + 1)
                    .any(|o| kid_of(o).as_deref() == Some(&kid))
            {
                duplicates.push(kid);
            }
        }
        if !duplicates.is_empty() {
            set.keys.retain(|k| {
                !k.kid
                    .as_ref()
                    .is_some_and(|kid| duplicates.iter().any(|d| d == kid.as_str()))
            });
            for (i, jwk) in keys.iter().enumerate() {
                if kid_of(jwk).is_some_and(|k| duplicates.contains(&k)) {
                    set.skipped.push((i, JwkError::Member("kid")));
                }
            }
        }
        Ok(set)
    }
}

/// Whether an Ed25519 public key encodes a point of small order (the identity, or order
/// 2, 4 or 8), in any of its encodings (the sign bit ignored, `y` reduced or not). A
/// signature by such a "key" can verify for many messages without any secret, so the
/// key is refused when it is read (the blocklist libsodium uses).
fn ed25519_small_order(key: &[u8]) -> bool {
    const fn ff(first: u8) -> [u8; 32] {
        let mut b = [0xff; 32];
        b[0] = first;
        b[31] = 0x7f;
        b
    }
    const fn low(first: u8) -> [u8; 32] {
        let mut b = [0; 32];
        b[0] = first;
        b
    }
    const BLOCKLIST: [[u8; 32]; 7] = [
        low(0), // y = 0 (order 4)
        low(1), // y = 1, the identity
        [
            0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef,
            0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88,
            0x6d, 0x53, 0xfc, 0x05,
        ], // order 8
        [
            0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10,
            0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77,
            0x92, 0xac, 0x03, 0x7a,
        ], // order 8
        ff(0xec), // y = p - 1 (order 2)
        ff(0xed), // y = p, which is 0 (order 4)
        ff(0xee), // y = p + 1, which is 1
    ];
    let Ok(key) = <&[u8; 32]>::try_from(key) else {
        return false;
    };
    BLOCKLIST.iter().any(|bad| {
        key.iter()
            .zip(bad)
            .enumerate()
            .all(|(i, (k, b))| if i == 31 { k & 0x7f == *b } else { k == b })
    })
}

#[cfg(test)]
mod tests;
