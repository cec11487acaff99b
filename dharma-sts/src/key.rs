//! Private keys that sign tokens, parsed once and held by ring.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use dharma_core::jose::{Algorithm, VerifyingKey};
use ring::{
    rand::SystemRandom,
    signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair},
};
use rustls_pki_types::{PrivateKeyDer, pem::PemObject};
use serde_json::{Value, json};

/// Why a signing key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM holds no PKCS#8 private key (`-----BEGIN PRIVATE KEY-----`).
    #[error("no PKCS#8 private key in the PEM")]
    NotPkcs8,
    /// The key does not parse as a key of the algorithm, or is too weak for it.
    #[error("the key is not a usable {0} key")]
    Rejected(&'static str),
    /// The algorithm cannot have a generated key here (ring generates EC and Ed25519
    /// keys; RSA keys come from a PKCS#8 file).
    #[error("{0} keys cannot be generated: load one from a PKCS#8 file")]
    CannotGenerate(&'static str),
    /// The key does not belong to the certificate it was paired with.
    #[error("the private key does not belong to the leaf certificate")]
    NotTheCertificateKey,
    /// The certificate chain is empty or does not parse.
    #[error("certificate chain: {0}")]
    Chain(String),
    /// A rotation with no key staged.
    #[error("no key is staged: stage the next key (and let verifiers fetch it) before rotating")]
    NothingStaged,
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
}

enum Pair {
    Rsa(RsaKeyPair, &'static dyn signature::RsaEncoding),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key with its algorithm, key id and public JWK.
///
/// The key id defaults to the RFC 7638 thumbprint of the public key. `Debug` shows the
/// algorithm and key id only.
///
/// ```
/// use dharma_core::jose::Algorithm;
/// use dharma_sts::SigningKey;
///
/// let key = SigningKey::generate(Algorithm::Es256)?;
/// assert_eq!(key.public_jwk()["kty"], "EC");
/// assert_eq!(key.public_jwk()["kid"], key.kid());
/// # Ok::<(), dharma_sts::KeyError>(())
/// ```
pub struct SigningKey {
    alg: Algorithm,
    pair: Pair,
    kid: String,
    jwk: Value,
    verifying: VerifyingKey,
    rng: SystemRandom,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg.name())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    /// A key for `alg` from PKCS#8 DER.
    pub fn from_pkcs8_der(alg: Algorithm, der: &[u8]) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let rejected = |_| KeyError::Rejected(alg.name());
        let rsa = |encoding| {
            RsaKeyPair::from_pkcs8(der)
                .map(|k| Pair::Rsa(k, encoding))
                .map_err(rejected)
        };
        let ecdsa = |params| {
            EcdsaKeyPair::from_pkcs8(params, der, &rng)
                .map(Pair::Ecdsa)
                .map_err(rejected)
        };
        let pair = match alg {
            Algorithm::Rs256 => rsa(&signature::RSA_PKCS1_SHA256)?,
            Algorithm::Rs384 => rsa(&signature::RSA_PKCS1_SHA384)?,
            Algorithm::Rs512 => rsa(&signature::RSA_PKCS1_SHA512)?,
            Algorithm::Ps256 => rsa(&signature::RSA_PSS_SHA256)?,
            Algorithm::Ps384 => rsa(&signature::RSA_PSS_SHA384)?,
            Algorithm::Ps512 => rsa(&signature::RSA_PSS_SHA512)?,
            Algorithm::Es256 => ecdsa(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)?,
            Algorithm::Es384 => ecdsa(&signature::ECDSA_P384_SHA384_FIXED_SIGNING)?,
            Algorithm::EdDsa => Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map(Pair::Ed25519)
                .map_err(rejected)?,
            _ => return Err(KeyError::Rejected(alg.name())),
        };
        Self::new(alg, pair, rng)
    }

    /// A key for `alg` from a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem(alg: Algorithm, pem: &str) -> Result<Self, KeyError> {
        match PrivateKeyDer::from_pem_slice(pem.as_bytes()) {
            Ok(PrivateKeyDer::Pkcs8(der)) => Self::from_pkcs8_der(alg, der.secret_pkcs8_der()),
            _ => Err(KeyError::NotPkcs8),
        }
    }

    /// A key from a PKCS#8 PEM with the algorithm its type implies: `RS256` for RSA,
    /// `ES256` for P-256, `ES384` for P-384, `EdDSA` for Ed25519.
    pub fn from_pem_any(pem: &str) -> Result<Self, KeyError> {
        [
            Algorithm::Es256,
            Algorithm::Es384,
            Algorithm::EdDsa,
            Algorithm::Rs256,
        ]
        .into_iter()
        .find_map(|alg| Self::from_pem(alg, pem).ok())
        .ok_or(KeyError::Rejected("RSA, P-256, P-384 or Ed25519"))
    }

    /// A new random key: `ES256`, `ES384` or `EdDSA`.
    pub fn generate(alg: Algorithm) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let der = match alg {
            Algorithm::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            }
            Algorithm::Es384 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
            }
            Algorithm::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng),
            _ => return Err(KeyError::CannotGenerate(alg.name())),
        }
        .map_err(|_| KeyError::Random)?;
        Self::from_pkcs8_der(alg, der.as_ref())
    }

    fn new(alg: Algorithm, pair: Pair, rng: SystemRandom) -> Result<Self, KeyError> {
        let mut jwk = match &pair {
            Pair::Rsa(k, _) => {
                let public = signature::RsaPublicKeyComponents::<Vec<u8>>::from(k.public());
                json!({"kty": "RSA", "n": b64(&public.n), "e": b64(&public.e)})
            }
            Pair::Ecdsa(k) => {
                let point = k.public_key().as_ref();
                let half = point.len().saturating_sub(1) / 2;
                let (x, y) = point.get(1..).unwrap_or_default().split_at(half);
                let crv = if alg == Algorithm::Es384 {
                    "P-384"
                } else {
                    "P-256"
                };
                json!({"kty": "EC", "crv": crv, "x": b64(x), "y": b64(y)})
            }
            Pair::Ed25519(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())})
            }
        };
        // The public half goes through the same checks as any JWK dharma verifies with;
        // its RFC 7638 thumbprint is the default key id.
        let verifying = VerifyingKey::from_jwk(&jwk).map_err(|_| KeyError::Rejected(alg.name()))?;
        let kid = b64(verifying.thumbprint());
        if let Some(map) = jwk.as_object_mut() {
            map.insert("kid".into(), Value::String(kid.clone()));
            map.insert("alg".into(), Value::String(alg.name().into()));
            map.insert("use".into(), Value::String("sig".into()));
        }
        Ok(Self {
            alg,
            pair,
            kid,
            jwk,
            verifying,
            rng,
        })
    }

    /// Names the key `kid` instead of its thumbprint.
    #[must_use]
    pub fn with_kid(mut self, kid: &str) -> Self {
        kid.clone_into(&mut self.kid);
        if let Some(map) = self.jwk.as_object_mut() {
            map.insert("kid".into(), Value::String(kid.into()));
        }
        self
    }

    /// The signature algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (`kid`, `alg` and `use` included).
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    /// Signs `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            Pair::Rsa(k, encoding) => {
                let mut out = vec![0; k.public().modulus_len()];
                k.sign(*encoding, &self.rng, message, &mut out)
                    .map_err(|_| KeyError::Random)?;
                Ok(out)
            }
            Pair::Ecdsa(k) => k
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Random),
            Pair::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }

    /// Whether `signature` is this key's JWS signature of `message`.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.verifying.verify(self.alg, message, signature).is_ok()
    }

    /// Signs `message` as a certificate signature is written: ECDSA signatures as an
    /// ASN.1 `SEQUENCE` of two `INTEGER`s rather than JWS's fixed-width `r || s`.
    pub(crate) fn certificate_signature(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let signature = self.sign(message)?;
        if !matches!(self.pair, Pair::Ecdsa(_)) {
            return Ok(signature);
        }
        let (r, s) = signature.split_at(signature.len() / 2);
        let integer = |bytes: &[u8]| {
            let trimmed = match bytes.iter().position(|&b| b != 0) {
                Some(at) => bytes.get(at..).unwrap_or_default(),
                None => &[0][..],
            };
            let pad = trimmed.first().is_some_and(|&b| b & 0x80 != 0);
            let mut out = vec![0x02, (trimmed.len() + usize::from(pad)) as u8];
            if pad {
                out.push(0);
            }
            out.extend_from_slice(trimmed);
            out
        };
        let body = [integer(r), integer(s)].concat();
        Ok([vec![0x30, body.len() as u8], body].concat())
    }

    /// The rustls-webpki algorithm that checks this key's signatures in a certificate.
    pub(crate) fn webpki_algorithm(
        &self,
    ) -> &'static dyn rustls_pki_types::SignatureVerificationAlgorithm {
        use webpki::ring as w;
        match self.alg {
            Algorithm::Rs384 => w::RSA_PKCS1_2048_8192_SHA384,
            Algorithm::Rs512 => w::RSA_PKCS1_2048_8192_SHA512,
            Algorithm::Ps256 => w::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            Algorithm::Ps384 => w::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
            Algorithm::Ps512 => w::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
            Algorithm::Es256 => w::ECDSA_P256_SHA256,
            Algorithm::Es384 => w::ECDSA_P384_SHA384,
            Algorithm::EdDsa => w::ED25519,
            _ => w::RSA_PKCS1_2048_8192_SHA256,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_what_their_jwk_verifies() {
        for alg in [Algorithm::Es256, Algorithm::Es384, Algorithm::EdDsa] {
            let key = SigningKey::generate(alg).unwrap();
            let public = VerifyingKey::from_jwk(key.public_jwk()).unwrap();
            let sig = key.sign(b"a.b").unwrap();
            assert!(public.verify(alg, b"a.b", &sig).is_ok(), "{alg:?}");
            assert!(public.verify(alg, b"a.c", &sig).is_err(), "{alg:?}");
            assert_eq!(key.kid(), b64(public.thumbprint()));
        }
        assert_eq!(
            SigningKey::generate(Algorithm::Rs256).unwrap_err(),
            KeyError::CannotGenerate("RS256")
        );
    }

    #[test]
    fn a_key_of_another_type_is_refused() {
        let der = EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &SystemRandom::new(),
        )
        .unwrap();
        assert!(SigningKey::from_pkcs8_der(Algorithm::Rs256, der.as_ref()).is_err());
        assert!(SigningKey::from_pkcs8_der(Algorithm::Es384, der.as_ref()).is_err());
        assert_eq!(
            SigningKey::from_pem(Algorithm::Es256, "not a pem").unwrap_err(),
            KeyError::NotPkcs8
        );
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("EdDSA") && shown.contains(key.kid()));
        assert!(!shown.contains("pair"));
    }
}
