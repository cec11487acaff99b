//! Propagated tokens for accountability: on a network-isolated interior endpoint, the
//! caller is trusted by its position, and the JWT it forwards says on whose behalf it acts.
//!
//! [`AccountabilityJwt`] reads that token into the security context without using it to
//! authorize: its identities are [`Accountability`](crate::Assurance::Accountability)
//! identities, `verified: true` when the token checks out with the configured
//! [`JwtVerifier`], `verified: false` when it does not (expired, unknown key, forged) but
//! can still be read. It never refuses a request; combine it with the trust mechanism:
//!
//! ```
//! use std::sync::Arc;
//! use dharma_core::{mechanism::combine::AllOf, mechanism::network::NetworkVerifier, mechanism::accountability::AccountabilityJwt};
//! use dharma_core::mechanism::jwt::{IssuerSpec, JwtVerifier};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let jwt = JwtVerifier::builder()
//!     .issuer(IssuerSpec::new("https://sts.outer.example").discovery().audience("inner"))
//!     .build()?;
//! let trust = AllOf::new([
//!     ("network", Arc::new(NetworkVerifier::builder().allow("10.20.0.0/16")?.build()) as _),
//!     ("caller", Arc::new(AccountabilityJwt::new(jwt)) as _),
//! ]);
//! # let _ = trust; Ok(()) }
//! ```

use crate::{
    context::Identity,
    error::Rejection,
    jose::jws::decode_payload,
    mechanism::jwt::JwtVerifier,
    mechanism::token::Payload,
    mechanism::{Authenticated, Verifier},
    names::Issuer,
    request::RequestView,
    util::BoxFuture,
};

/// Reads a propagated bearer JWT for accountability. Never refuses.
#[derive(Debug, Clone)]
pub struct AccountabilityJwt {
    verifier: JwtVerifier,
}

impl AccountabilityJwt {
    /// Reads tokens with `verifier` deciding whether they are verified.
    pub fn new(verifier: JwtVerifier) -> Self {
        Self { verifier }
    }
}

impl Verifier for AccountabilityJwt {
    fn verify<'a>(
        &'a self,
        request: &'a RequestView<'a>,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
        Box::pin(async move {
            let Ok(Some(token)) = request.bearer_token() else {
                return Ok(Authenticated::new(Vec::new()));
            };
            let identities = match self.verifier.verify_token(token).await {
                Ok(a) => a
                    .identities()
                    .iter()
                    .cloned()
                    .map(|i| i.for_accountability(true))
                    .collect(),
                Err(_) => unverified(token, self.verifier.max_token_bytes()).unwrap_or_default(),
            };
            Ok(Authenticated::new(identities))
        })
    }
}

/// The identities a token names, read without checking anything.
fn unverified(token: &str, max: usize) -> Option<Vec<Identity>> {
    if token.len() > max {
        return None;
    }
    let payload = decode_payload(token.split('.').nth(1)?).ok()?;
    let claims = Payload::read(&payload).ok()?;
    let issuer = Payload::string(claims.iss).and_then(|s| s.parse::<Issuer>().ok());
    let ids = claims
        .names()
        .identities(payload, issuer.as_ref(), token, None)
        .ok()?;
    Some(
        ids.into_iter()
            .map(|i| i.for_accountability(false))
            .collect(),
    )
}

/// `kind = "accountability_jwt"`: `jwt`, the name of the JWT mechanism that verifies.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountabilitySettings {
    jwt: String,
}

/// Builds [`AccountabilityJwt`]s on a JWT mechanism of the file.
pub(crate) struct AccountabilityKind;

impl super::MechanismKind for AccountabilityKind {
    type Settings = AccountabilitySettings;

    fn references<'s>(&self, settings: &'s AccountabilitySettings) -> Vec<super::Reference<'s>> {
        vec![super::Reference::of_kind(&settings.jwt, "jwt")]
    }

    fn build(
        &self,
        settings: &AccountabilitySettings,
        ctx: &super::BuildContext<'_>,
    ) -> Result<super::Instance, super::KindError> {
        let jwt = ctx
            .instance(&settings.jwt)
            .and_then(|i| i.downcast::<JwtVerifier>())
            .ok_or_else(|| super::KindError::setting("jwt", "not a jwt mechanism"))?;
        Ok(super::Instance::new(AccountabilityJwt::new((*jwt).clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Assurance,
        mechanism::jwt::{IssuerSpec, VerifyingKey},
    };

    #[tokio::test]
    async fn reads_verified_and_unverified_tokens_and_never_refuses() {
        // A fixed Ed25519 key (RFC 8037 A.2), with no private part here.
        let jwk = serde_json::json!({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let v = JwtVerifier::builder()
            .issuer(
                IssuerSpec::new("https://sts")
                    .keys([VerifyingKey::from_jwk(&jwk).unwrap()])
                    .audience("inner"),
            )
            .build()
            .unwrap();
        let p = AccountabilityJwt::new(v);
        let run = |auth: Option<&'static str>| {
            let mut h = http::HeaderMap::new();
            if let Some(a) = auth {
                h.insert(
                    http::header::AUTHORIZATION,
                    http::HeaderValue::from_static(a),
                );
            }
            h
        };
        let check = async |h: http::HeaderMap| {
            let view = RequestView::new(&http::Method::GET, "/", &h);
            p.verify(&view).await.unwrap()
        };
        assert!(check(run(None)).await.identities().is_empty());
        assert!(
            check(run(Some("Bearer garbage")))
                .await
                .identities()
                .is_empty()
        );
        // {"alg":"EdDSA"} . {"iss":"https://sts","sub":"alice","exp":1} . bad signature
        let forged = "Bearer eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJodHRwczovL3N0cyIsInN1YiI6ImFsaWNlIiwiZXhwIjoxfQ.AAAA";
        let a = check(run(Some(forged))).await;
        assert_eq!(a.identities()[0].subject(), "alice");
        assert_eq!(
            a.identities()[0].assurance(),
            Assurance::Accountability { verified: false }
        );
    }
}
