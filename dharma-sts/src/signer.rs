//! How the service signs tokens, and how verifiers learn its keys.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use dharma_core::clock::{Clock, SystemClock};
use rustls_pki_types::{CertificateDer, pem::PemObject};
use serde_json::{Value, json};

use crate::key::{KeyError, SigningKey};

/// A key in use, with the token header it signs under, encoded once.
#[derive(Debug)]
struct Active {
    key: Arc<SigningKey>,
    /// The base64url header and its `.`: `{"alg","typ":"at+jwt","kid"}`, or for a
    /// certificate `{"alg","typ":"at+jwt","x5c","x5t#S256"}`.
    header: String,
    /// Whether verifiers find the key in the published key set (not in the token).
    published: bool,
}

#[derive(Debug)]
struct State {
    current: Arc<Active>,
    /// The key that signs after the next rotation, published ahead.
    staged: Option<Arc<Active>>,
    /// Keys replaced by a rotation or a renewal, kept (and published, if the current
    /// key was) until the Unix time given.
    retiring: Vec<(Arc<Active>, u64)>,
}

/// Signs the tokens of a [`TokenService`](crate::TokenService) with either
///
/// - a **certificate** issued by the organisation CA: the chain travels in each token's
///   `x5c` header, so an [`X5cJwtVerifier`](dharma_core::mechanism::x5c::X5cJwtVerifier)
///   accepts the tokens with no key set to fetch; or
/// - a **key set**: tokens name their key by `kid` and the service publishes the public
///   keys as a JWK Set ([`jwks`](Self::jwks)) for a
///   [`JwtVerifier`](dharma_core::mechanism::jwt::JwtVerifier) to fetch.
///
/// Keys of a key set rotate in two steps, so that verifiers never meet a `kid` they
/// have not fetched: [`stage`](Self::stage) publishes the next key while the current one
/// keeps signing; after at least one key-set lifetime (the JWK Set is served with
/// `max-age=300`), [`rotate`](Self::rotate) makes it sign, and the replaced key stays
/// published for the overlap period so that the tokens it signed verify until they
/// expire.
///
/// ```
/// use dharma_core::jose::Algorithm;
/// use dharma_sts::{Signer, SigningKey};
///
/// let signer = Signer::key_set(SigningKey::generate(Algorithm::Es256)?);
/// let first = signer.kid();
/// signer.stage(SigningKey::generate(Algorithm::Es256)?);
/// assert_eq!(signer.kid(), first); // still signing with the first key
/// assert_eq!(signer.jwks()["keys"].as_array().unwrap().len(), 2);
/// signer.rotate()?;
/// assert_ne!(signer.kid(), first);
/// assert_eq!(signer.jwks()["keys"].as_array().unwrap().len(), 2); // the first, during the overlap
/// # Ok::<(), dharma_sts::KeyError>(())
/// ```
#[derive(Debug)]
pub struct Signer {
    state: RwLock<State>,
    overlap: Duration,
    clock: Arc<dyn Clock>,
}

fn encode_header(header: &Value) -> String {
    let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
    out.push('.');
    out
}

fn key_header(key: &SigningKey) -> String {
    encode_header(&json!({"alg": key.algorithm().name(), "typ": "at+jwt", "kid": key.kid()}))
}

/// Reads a certificate chain (leaf first) and its key, and checks that they belong
/// together by verifying a signature of the key with the leaf.
fn certificate(chain_pem: &str, key_pem: &str) -> Result<Active, KeyError> {
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| KeyError::Chain(e.to_string()))?;
    let leaf = chain
        .first()
        .ok_or_else(|| KeyError::Chain("no certificate in the PEM".into()))?;
    if chain.len() > 8 {
        return Err(KeyError::Chain("more than 8 certificates".into()));
    }
    let key = SigningKey::from_pem_any(key_pem)?;
    let end_entity =
        webpki::EndEntityCert::try_from(leaf).map_err(|e| KeyError::Chain(format!("{e:?}")))?;
    let probe = b"dharma-sts: does this key belong to this certificate?";
    let signature = key.certificate_signature(probe)?;
    end_entity
        .verify_signature(key.webpki_algorithm(), probe, &signature)
        .map_err(|_| KeyError::NotTheCertificateKey)?;
    let thumbprint = ring::digest::digest(&ring::digest::SHA256, leaf.as_ref());
    let header = encode_header(&json!({
        "alg": key.algorithm().name(),
        "typ": "at+jwt",
        "x5c": chain.iter().map(|c| STANDARD.encode(c.as_ref())).collect::<Vec<_>>(),
        "x5t#S256": URL_SAFE_NO_PAD.encode(thumbprint.as_ref()),
    }));
    Ok(Active {
        key: Arc::new(key),
        header,
        published: false,
    })
}

impl Signer {
    /// Signs with `key` and publishes it (and, after a rotation, its predecessors for
    /// the overlap period) as a JWK Set.
    pub fn key_set(key: SigningKey) -> Self {
        let header = key_header(&key);
        Self::with(Active {
            key: Arc::new(key),
            header,
            published: true,
        })
    }

    /// Signs with the private key of an organisation-issued certificate; each token
    /// carries `chain_pem` (leaf first, then intermediates) in its `x5c` header.
    /// `key_pem` is the leaf's PKCS#8 private key; the algorithm follows its type (RSA:
    /// `RS256`, P-256: `ES256`, P-384: `ES384`, Ed25519: `EdDSA`).
    pub fn certificate(chain_pem: &str, key_pem: &str) -> Result<Self, KeyError> {
        certificate(chain_pem, key_pem).map(Self::with)
    }

    fn with(active: Active) -> Self {
        Self {
            state: RwLock::new(State {
                current: Arc::new(active),
                staged: None,
                retiring: Vec::new(),
            }),
            overlap: Duration::from_secs(3600),
            clock: Arc::new(SystemClock),
        }
    }

    /// How long a replaced key stays published (default one hour). Must cover the
    /// longest token lifetime: the token service refuses a shorter overlap.
    #[must_use]
    pub fn overlap(mut self, overlap: Duration) -> Self {
        self.overlap = overlap;
        self
    }

    /// The clock that times the overlap.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub(crate) fn overlap_period(&self) -> Duration {
        self.overlap
    }

    fn replace(&self, state: &mut State, next: Arc<Active>) {
        let now = self.clock.unix_seconds();
        let until = now.saturating_add(self.overlap.as_secs());
        let previous = std::mem::replace(&mut state.current, next);
        state.retiring.retain(|(_, t)| *t > now);
        state.retiring.push((previous, until));
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes `key` as the next key of the set; the current key keeps signing until
    /// [`rotate`](Self::rotate). Staging again replaces the staged key.
    pub fn stage(&self, key: SigningKey) {
        let header = key_header(&key);
        self.write().staged = Some(Arc::new(Active {
            key: Arc::new(key),
            header,
            published: true,
        }));
    }

    /// Signs from now on with the staged key; the key it replaces stays published for
    /// the overlap period.
    pub fn rotate(&self) -> Result<(), KeyError> {
        let mut state = self.write();
        let next = state.staged.take().ok_or(KeyError::NothingStaged)?;
        self.replace(&mut state, next);
        Ok(())
    }

    /// Signs from now on with a renewed certificate and its key. Tokens signed before
    /// carry their own chain and stay verifiable while it is valid.
    pub fn renew(&self, chain_pem: &str, key_pem: &str) -> Result<(), KeyError> {
        let next = Arc::new(certificate(chain_pem, key_pem)?);
        self.replace(&mut self.write(), next);
        Ok(())
    }

    fn current(&self) -> Arc<Active> {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .current
            .clone()
    }

    /// The key id of the current key (its thumbprint unless named otherwise).
    pub fn kid(&self) -> String {
        self.current().key.kid().to_owned()
    }

    /// The public keys verifiers need: the current key (unless the tokens carry their
    /// certificate) and those still in their overlap period, as a JWK Set.
    pub fn jwks(&self) -> Value {
        let now = self.clock.unix_seconds();
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let current = state
            .current
            .published
            .then(|| state.current.key.public_jwk().clone());
        let staged = state
            .staged
            .as_ref()
            .map(|staged| staged.key.public_jwk().clone());
        let keys: Vec<Value> = current
            .into_iter()
            .chain(staged)
            .chain(
                state
                    .retiring
                    .iter()
                    .filter(|(a, until)| a.published && *until > now)
                    .map(|(a, _)| a.key.public_jwk().clone()),
            )
            .collect();
        json!({ "keys": keys })
    }

    /// The claims (JSON bytes) of a token this signer signed, with its current key or one
    /// still in its overlap period; `None` for any other string. The token's header must
    /// be, byte for byte, the one the signer writes for that key, so nothing in it is
    /// interpreted. The token service reads the tokens presented for revocation with it.
    ///
    /// ```
    /// use dharma_core::jose::Algorithm;
    /// use dharma_sts::{Signer, SigningKey};
    ///
    /// let signer = Signer::key_set(SigningKey::generate(Algorithm::Es256)?);
    /// let other = Signer::key_set(SigningKey::generate(Algorithm::Es256)?);
    /// let token = signer.sign(r#"{"jti":"a"}"#)?;
    /// assert_eq!(signer.verify(&token).as_deref(), Some(&br#"{"jti":"a"}"#[..]));
    /// assert_eq!(other.verify(&token), None);
    /// # Ok::<(), dharma_sts::KeyError>(())
    /// ```
    pub fn verify(&self, token: &str) -> Option<Vec<u8>> {
        let (signed, signature) = token.rsplit_once('.')?;
        let (header, payload) = signed.split_once('.')?;
        let now = self.clock.unix_seconds();
        let active = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            std::iter::once(&state.current)
                .chain(
                    state
                        .retiring
                        .iter()
                        .filter(|(_, until)| *until > now)
                        .map(|(a, _)| a),
                )
                .find(|a| a.header.strip_suffix('.') == Some(header))?
                .clone()
        };
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        active
            .key
            .verifies(signed.as_bytes(), &signature)
            .then(|| URL_SAFE_NO_PAD.decode(payload).ok())
            .flatten()
    }

    /// Signs `claims` (a JSON object, not checked) into a compact JWS with the current key.
    pub fn sign(&self, claims: &str) -> Result<String, KeyError> {
        let active = self.current();
        let mut token = String::with_capacity(active.header.len() + claims.len() * 4 / 3 + 2 + 700);
        token.push_str(&active.header);
        URL_SAFE_NO_PAD.encode_string(claims, &mut token);
        let signature = active.key.sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use dharma_core::{clock::ManualClock, jose::Algorithm};
    use dharma_test_support::pki::{Ca, Leaf};

    use super::*;

    #[test]
    fn a_rotated_key_stays_published_for_the_overlap_only() {
        let clock = Arc::new(ManualClock::starting_now());
        let first = SigningKey::generate(Algorithm::Es256).unwrap();
        let first_kid = first.kid().to_owned();
        let signer = Signer::key_set(first)
            .overlap(Duration::from_secs(600))
            .clock(clock.clone());
        let kids = |s: &Signer| -> Vec<String> {
            s.jwks()["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(signer.rotate(), Err(KeyError::NothingStaged));
        let next = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let next_kid = next.kid().to_owned();
        signer.stage(next);
        assert_eq!(kids(&signer), [first_kid.clone(), next_kid.clone()]);
        signer.rotate().unwrap();
        assert_eq!(signer.kid(), next_kid);
        assert_eq!(kids(&signer), [signer.kid(), first_kid.clone()]);
        clock.advance(Duration::from_secs(601));
        assert_eq!(kids(&signer), [signer.kid()]);
    }

    #[test]
    fn the_signer_knows_its_own_tokens_until_their_key_retires() {
        let clock = Arc::new(ManualClock::starting_now());
        let signer = Signer::key_set(SigningKey::generate(Algorithm::Es256).unwrap())
            .overlap(Duration::from_secs(600))
            .clock(clock.clone());
        let claims = r#"{"jti":"a"}"#;
        let token = signer.sign(claims).unwrap();
        assert_eq!(signer.verify(&token).unwrap(), claims.as_bytes());
        // Another signature, another header, a truncated token, a stranger's key.
        let (signed, _) = token.rsplit_once('.').unwrap();
        let stranger = Signer::key_set(SigningKey::generate(Algorithm::Es256).unwrap());
        let foreign = stranger.sign(claims).unwrap();
        for bad in [
            format!("{signed}.{}", "A".repeat(86)),
            format!("e30.{}", token.split_once('.').unwrap().1),
            signed.to_owned(),
            foreign,
        ] {
            assert_eq!(signer.verify(&bad), None, "{bad}");
        }
        signer.stage(SigningKey::generate(Algorithm::EdDsa).unwrap());
        signer.rotate().unwrap();
        assert!(signer.verify(&token).is_some(), "during the overlap");
        assert!(signer.verify(&signer.sign(claims).unwrap()).is_some());
        clock.advance(Duration::from_secs(601));
        assert_eq!(signer.verify(&token), None, "after it");

        // A renewed certificate: tokens of the previous one stay known for the overlap.
        let root = Ca::root("Org Root");
        let (first, second) = (
            root.issue(&Leaf::spiffe("spiffe://example.org/sts")),
            root.issue(&Leaf::spiffe("spiffe://example.org/sts")),
        );
        let signer = Signer::certificate(&first.chain_pem(), &first.key_pem())
            .unwrap()
            .overlap(Duration::from_secs(600))
            .clock(clock.clone());
        let token = signer.sign(claims).unwrap();
        signer
            .renew(&second.chain_pem(), &second.key_pem())
            .unwrap();
        assert!(signer.verify(&token).is_some());
        assert_eq!(signer.jwks()["keys"].as_array().unwrap().len(), 0);
        clock.advance(Duration::from_secs(601));
        assert_eq!(signer.verify(&token), None);
    }

    #[test]
    fn a_certificate_must_match_its_key() {
        let root = Ca::root("Org Root");
        let sts = root.issue(&Leaf::spiffe("spiffe://example.org/sts"));
        let other = root.issue(&Leaf::spiffe("spiffe://example.org/other"));
        let signer = Signer::certificate(&sts.chain_pem(), &sts.key_pem()).unwrap();
        assert_eq!(signer.jwks()["keys"].as_array().unwrap().len(), 0);
        assert_eq!(
            Signer::certificate(&sts.chain_pem(), &other.key_pem()).unwrap_err(),
            KeyError::NotTheCertificateKey
        );
        assert!(matches!(
            Signer::certificate("", &sts.key_pem()),
            Err(KeyError::Chain(_))
        ));
    }
}
