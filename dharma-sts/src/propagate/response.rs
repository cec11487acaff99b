//! Token endpoint responses (RFC 6749 §5.1 and §5.2, RFC 8693 §2.2), read strictly.

use serde_json::{Map, Value};

use super::{OutboundToken, SourceError};
use crate::error::{ErrorCode, OAuthError};

/// A successful token response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenResponse {
    /// The access token.
    pub token: OutboundToken,
    /// Seconds until it expires, if the server said.
    pub expires_in: Option<u64>,
    /// The scope granted, if the server said.
    pub scope: Option<String>,
}

fn unavailable(what: impl Into<String>) -> SourceError {
    SourceError::Unavailable(what.into())
}

impl TokenResponse {
    /// Reads a token endpoint's answer: `200` with a bearer access token, or an OAuth
    /// error (`400`, `401`), or anything else as unavailable. The token must be a
    /// non-empty `b64token` (so it can go in a header as it is); `token_type` must be
    /// `Bearer`; `expires_in` a non-negative integer.
    ///
    /// ```
    /// use dharma_sts::propagate::TokenResponse;
    ///
    /// let ok = TokenResponse::parse(200, br#"{"access_token":"a.b.c","token_type":"Bearer","expires_in":60}"#)?;
    /// assert_eq!(ok.token.secret(), "a.b.c");
    /// assert_eq!(ok.expires_in, Some(60));
    /// assert!(TokenResponse::parse(400, br#"{"error":"invalid_target"}"#).is_err());
    /// # Ok::<(), dharma_sts::propagate::SourceError>(())
    /// ```
    pub fn parse(status: u16, body: &[u8]) -> Result<Self, SourceError> {
        let object = serde_json::from_slice::<Map<String, Value>>(body).ok();
        match (status, object) {
            (200, Some(object)) => Self::success(&object),
            (400 | 401, Some(object)) => {
                let code = object
                    .get("error")
                    .and_then(Value::as_str)
                    .and_then(ErrorCode::parse)
                    .ok_or_else(|| {
                        unavailable(format!("status {status} without an OAuth error"))
                    })?;
                let description = object
                    .get("error_description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect::<String>();
                Err(SourceError::Refused(OAuthError::new(code, description)))
            }
            (200 | 400 | 401, None) => Err(unavailable(format!(
                "status {status} with a body that is not a JSON object"
            ))),
            _ => Err(unavailable(format!("status {status}"))),
        }
    }

    fn success(object: &Map<String, Value>) -> Result<Self, SourceError> {
        let token = object
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| is_b64token(t))
            .ok_or_else(|| unavailable("no usable access_token in the response"))?;
        match object.get("token_type").and_then(Value::as_str) {
            Some(t) if t.eq_ignore_ascii_case("bearer") => {}
            _ => return Err(unavailable("token_type is not Bearer")),
        }
        let expires_in = match object.get("expires_in") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| unavailable("expires_in is not a non-negative integer"))?,
            ),
        };
        let scope = match object.get("scope") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(unavailable("scope is not a string")),
        };
        Ok(Self {
            token: OutboundToken::new(token),
            expires_in,
            scope,
        })
    }
}

/// RFC 6750 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_read_strictly() {
        let ok = |body: &str| TokenResponse::parse(200, body.as_bytes());
        assert!(ok(r#"{"access_token":"x","token_type":"bearer"}"#).is_ok());
        for bad in [
            r#"{"access_token":"x"}"#,
            r#"{"access_token":"x","token_type":"DPoP"}"#,
            r#"{"access_token":"","token_type":"Bearer"}"#,
            r#"{"access_token":"a b","token_type":"Bearer"}"#,
            r#"{"access_token":"a\r\nX: y","token_type":"Bearer"}"#,
            r#"{"access_token":"x","token_type":"Bearer","expires_in":-1}"#,
            r#"{"access_token":"x","token_type":"Bearer","expires_in":"60"}"#,
            r#"{"access_token":"x","token_type":"Bearer","scope":["a"]}"#,
            r#"["x"]"#,
            "",
        ] {
            assert!(matches!(ok(bad), Err(SourceError::Unavailable(_))), "{bad}");
        }
        let refused = TokenResponse::parse(
            400,
            br#"{"error":"invalid_grant","error_description":"no"}"#,
        );
        assert_eq!(
            refused,
            Err(SourceError::Refused(OAuthError::new(
                ErrorCode::InvalidGrant,
                "no"
            )))
        );
        assert!(matches!(
            TokenResponse::parse(400, br#"{"error":"made_up"}"#),
            Err(SourceError::Unavailable(_))
        ));
        assert!(matches!(
            TokenResponse::parse(502, b"<html>"),
            Err(SourceError::Unavailable(_))
        ));
    }
}
