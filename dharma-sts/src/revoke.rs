//! Token revocation (RFC 7009): a client revokes a token the service issued to it.
//!
//! The service's tokens are self-contained JWTs, so revoking one means telling every
//! verifier: the service writes the token's id to a [`RevocationList`] that the
//! enforcers of the services accepting the token consult (shared between instances, e.g.
//! `dharma-redis`), and they refuse it from then on, verified-token cache hits included.

use std::time::Duration;

use dharma_core::{
    SecurityContext,
    audit::{TokenActivity, TokenEvent},
    state::{Revocation, StoreError},
};
use http::{Response, StatusCode};
use serde::Deserialize;

use crate::{
    TokenService,
    error::{ErrorCode, OAuthError},
    mint::json_response,
    request::{PresentedToken, read_form, set_once},
};

/// How long past a token's `exp` its revocation is kept: longer than any verifier's
/// clock leeway (dharma's default is 30 seconds).
pub const REVOCATION_MARGIN: Duration = Duration::from_secs(300);

/// A revocation request (RFC 7009 §2.1), parsed and checked for form.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RevocationRequest {
    /// The token to revoke.
    pub token: PresentedToken,
    /// `token_type_hint`, if sent: a hint only (RFC 7009 §2.1), never a reason to refuse.
    pub token_type_hint: Option<String>,
    /// The `client_id` parameter, if sent.
    pub client_id: Option<String>,
}

impl RevocationRequest {
    /// Reads a revocation request from its `Content-Type` and body, as strictly as a
    /// token request ([`TokenRequest::parse`](crate::TokenRequest::parse)): a form,
    /// each parameter at most once, no client credentials in the body.
    ///
    /// ```
    /// use dharma_sts::RevocationRequest;
    ///
    /// let req = RevocationRequest::parse(
    ///     Some("application/x-www-form-urlencoded"),
    ///     b"token=a.b.c&token_type_hint=access_token",
    /// )?;
    /// assert_eq!(req.token.secret(), "a.b.c");
    /// assert_eq!(req.token_type_hint.as_deref(), Some("access_token"));
    /// # Ok::<(), dharma_sts::OAuthError>(())
    /// ```
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, OAuthError> {
        let (mut token, mut hint, mut client_id) = (None, None, None);
        read_form(content_type, body, |name, value| match name {
            "token" => set_once(&mut token, name, value),
            "token_type_hint" => set_once(&mut hint, name, value),
            "client_id" => set_once(&mut client_id, name, value),
            _ => Ok(()),
        })?;
        Ok(Self {
            token: PresentedToken(token.ok_or_else(|| OAuthError::request("token is missing"))?),
            token_type_hint: hint,
            client_id,
        })
    }
}

/// The claims of one of the service's own tokens that revocation reads.
#[derive(Deserialize)]
pub(crate) struct OwnToken {
    pub(crate) jti: String,
    pub(crate) exp: u64,
    pub(crate) client_id: Option<String>,
}

/// What a revocation request did (each outcome answers `200`, as RFC 7009 §2.2 asks).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revoked {
    /// The token was revoked.
    Token {
        /// Its `jti`.
        token_id: String,
    },
    /// The token is not one this service issued (or no longer verifies): nothing to do.
    NotIssuedHere,
    /// The token has expired (beyond any verifier's leeway): nothing to do.
    Expired,
}

impl TokenService {
    /// Answers a revocation request as the revocation endpoint does: `200` with an empty
    /// body when the token is revoked or was never one to revoke (RFC 7009 §2.2), an
    /// OAuth error otherwise. Every outcome is audited.
    pub async fn handle_revocation(
        &self,
        caller: &SecurityContext,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Response<Vec<u8>> {
        match RevocationRequest::parse(content_type, body) {
            Ok(request) => match self.revoke(caller, &request).await {
                Ok(_) => json_response(StatusCode::OK, Vec::new()),
                Err(e) => json_response(e.code().status(), e.body()),
            },
            Err(e) => self.refuse(caller, &e),
        }
    }

    /// Revokes a token this service issued to the calling client, and audits the
    /// outcome: `revoked` with the token's id, or `refused` with the reason.
    ///
    /// The token must verify with the service's current key or one in its overlap
    /// period; any other string is not the service's to revoke and changes nothing. A
    /// token issued to another client is refused (`unauthorized_client`): a client
    /// revokes its own tokens only (RFC 7009 §2.1). The revocation is kept until the
    /// token expires, plus [`REVOCATION_MARGIN`].
    pub async fn revoke(
        &self,
        caller: &SecurityContext,
        request: &RevocationRequest,
    ) -> Result<Revoked, OAuthError> {
        let mut event = self.event(TokenActivity::Refused, "");
        let result = self.revoke_for(caller, request, &mut event).await;
        match &result {
            Ok(Revoked::Token { token_id }) => {
                event.activity = TokenActivity::Revoked;
                event.reason = "token";
                event.token_id = Some(token_id.as_str().into());
            }
            Ok(Revoked::NotIssuedHere) => {
                event.reason = "not_issued_here";
                event.detail = Some("the token is not one this service issued".into());
            }
            Ok(Revoked::Expired) => event.reason = "expired",
            Err(e) => {
                event.reason = e.code().as_str();
                event.detail = Some(e.description().to_owned());
            }
        }
        self.audit.record_token(&event);
        result
    }

    async fn revoke_for(
        &self,
        caller: &SecurityContext,
        request: &RevocationRequest,
        event: &mut TokenEvent,
    ) -> Result<Revoked, OAuthError> {
        let Some(list) = &self.revocations else {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedTokenType,
                "this service revokes no tokens",
            ));
        };
        let client = self
            .client_of(caller, request.client_id.as_deref(), event)?
            .subject();
        let Some(own) = self
            .signer
            .verify(request.token.secret())
            .and_then(|claims| serde_json::from_slice::<OwnToken>(&claims).ok())
        else {
            return Ok(Revoked::NotIssuedHere);
        };
        event.token_id = Some(own.jti.as_str().into());
        if own.client_id.as_deref() != Some(client) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "the token was not issued to this client",
            ));
        }
        // One reading of the clock for the store and for how long the entry is kept.
        let now = self.clock.now();
        let unix = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let until = own.exp.saturating_add(REVOCATION_MARGIN.as_secs());
        let keep_for = until.saturating_sub(unix);
        if keep_for == 0 {
            return Ok(Revoked::Expired);
        }
        let revocation = Revocation::Token {
            issuer: self.issuer.clone(),
            token_id: own.jti,
        };
        list.revoke(&revocation, now, Duration::from_secs(keep_for))
            .await
            .map_err(|e| match e {
                StoreError::Full => OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "the revocation list is full",
                ),
                _ => OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "the revocation list cannot be written now",
                ),
            })?;
        Ok(Revoked::Token {
            token_id: revocation.value().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    #[test]
    fn requests_read_strictly() {
        let req = RevocationRequest::parse(FORM, b"token=x.y.z&client_id=c&other=1").unwrap();
        assert_eq!(req.token.secret(), "x.y.z");
        assert_eq!(req.client_id.as_deref(), Some("c"));
        assert_eq!(req.token_type_hint, None);
        for body in [
            &b""[..],
            b"token=",
            b"token_type_hint=access_token",
            b"token=a&token=b",
            b"token=a&client_secret=s",
            b"token=%zz",
        ] {
            let err = RevocationRequest::parse(FORM, body).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidRequest, "{body:?}");
        }
        assert!(RevocationRequest::parse(Some("application/json"), b"token=a").is_err());
        // The token does not show in Debug.
        let req = RevocationRequest::parse(FORM, b"token=SECRET").unwrap();
        assert!(!format!("{req:?}").contains("SECRET"));
    }
}
