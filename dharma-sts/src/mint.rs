//! Minting: a decided grant becomes a signed `at+jwt`.

use std::{fmt, sync::Mutex};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http::{HeaderValue, Response, StatusCode, header};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    error::{ErrorCode, OAuthError},
    request::TokenType,
    signer::Signer,
};

/// The claims of a minted token (RFC 9068 §2.2, RFC 8693 §4).
#[derive(Serialize)]
pub(crate) struct MintedClaims<'a> {
    pub(crate) iss: &'a str,
    pub(crate) sub: &'a str,
    pub(crate) aud: &'a str,
    pub(crate) iat: u64,
    pub(crate) exp: u64,
    pub(crate) jti: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) act: Option<Value>,
}

/// Random token ids (128 bits each), drawn from the system in blocks so that minting
/// does not make a system call per token.
pub(crate) struct TokenIds {
    rng: SystemRandom,
    block: Mutex<([u8; 1024], usize)>,
}

impl TokenIds {
    pub(crate) fn new() -> Self {
        Self {
            rng: SystemRandom::new(),
            block: Mutex::new(([0; 1024], 1024)),
        }
    }

    /// A new id, base64url (22 characters).
    pub(crate) fn next(&self) -> Result<String, OAuthError> {
        let mut guard = self.block.lock().unwrap_or_else(|p| p.into_inner());
        let (block, used) = &mut *guard;
        if *used + 16 > block.len() {
            self.rng.fill(block).map_err(|_| {
                OAuthError::new(ErrorCode::ServerError, "no randomness for a token id")
            })?;
            *used = 0;
        }
        let id = block.get(*used..*used + 16).unwrap_or_default();
        let out = URL_SAFE_NO_PAD.encode(id);
        // Each id is handed out once: the bytes are overwritten as they are used.
        if let Some(spent) = block.get_mut(*used..*used + 16) {
            spent.fill(0);
        }
        *used += 16;
        Ok(out)
    }
}

/// Signs `claims` with `signer`.
pub(crate) fn sign(signer: &Signer, claims: &MintedClaims<'_>) -> Result<String, OAuthError> {
    let failed = || OAuthError::new(ErrorCode::ServerError, "the token could not be signed");
    let json = serde_json::to_string(claims).map_err(|_| failed())?;
    signer.sign(&json).map_err(|_| failed())
}

/// A token the service issued. `Debug` does not show the token.
#[derive(Clone)]
#[non_exhaustive]
pub struct IssuedToken {
    pub(crate) token: String,
    /// The type the client asked for (an access token unless it asked for a JWT).
    pub issued_type: TokenType,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// The scopes it grants.
    pub scope: Vec<String>,
    /// Its `jti`.
    pub token_id: String,
}

impl IssuedToken {
    /// The token.
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// The RFC 6749 §5.1 / RFC 8693 §2.2.1 response body.
    pub fn body(&self) -> Vec<u8> {
        let mut body = json!({
            "access_token": self.token,
            "issued_token_type": self.issued_type.uri(),
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        });
        if !self.scope.is_empty()
            && let Some(map) = body.as_object_mut()
        {
            map.insert("scope".into(), Value::String(self.scope.join(" ")));
        }
        body.to_string().into_bytes()
    }
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("issued_type", &self.issued_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("token_id", &self.token_id)
            .finish_non_exhaustive()
    }
}

pub(crate) fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ids_are_distinct_across_blocks() {
        let ids = TokenIds::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let id = ids.next().unwrap();
            assert_eq!(id.len(), 22);
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn absent_claims_are_left_out() {
        let claims = MintedClaims {
            iss: "i",
            sub: "s",
            aud: "a",
            iat: 1,
            exp: 2,
            jti: "j",
            client_id: None,
            scope: None,
            act: None,
        };
        assert_eq!(
            serde_json::to_value(&claims).unwrap(),
            json!({"iss": "i", "sub": "s", "aud": "a", "iat": 1, "exp": 2, "jti": "j"})
        );
    }
}
