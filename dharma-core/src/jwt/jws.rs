//! Compact JWS (RFC 7515): split, decode, read the header, check the signature.
//!
//! Only what is needed to verify is read from the header. `jku`, `x5u`, `jwk` and `x5c`
//! are never used to find a key; a `crit` header is refused because dharma implements no
//! critical extension; `b64: false` (RFC 7797) is refused.
//!
//! ```
//! use dharma_core::jwt::jws::Compact;
//!
//! // {"alg":"none"} is not representable: parsing refuses it.
//! assert!(Compact::parse("eyJhbGciOiJub25lIn0.e30.").is_err());
//! ```

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;

use super::{alg::Algorithm, jwk::VerifyingKey};
use crate::{reject::TokenError, util::truncate};

/// The header members dharma reads. Others are ignored, never followed.
#[derive(Debug, Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
    #[serde(default)]
    b64: Option<serde_json::Value>,
    /// Read only by the x5c mechanism, which validates it against the organisation CA.
    #[serde(default)]
    x5c: Option<serde_json::Value>,
    #[serde(default, rename = "x5t#S256")]
    x5t_s256: Option<serde_json::Value>,
}

/// A parsed compact JWS whose signature is not checked yet.
#[derive(Debug)]
pub struct Compact<'a> {
    signing_input: &'a str,
    payload_b64: &'a str,
    signature: Vec<u8>,
    alg: Algorithm,
    kid: Option<String>,
    typ: Option<String>,
    x5c: Option<serde_json::Value>,
    x5t_s256: Option<serde_json::Value>,
}

impl<'a> Compact<'a> {
    /// Splits and decodes `token` and reads its header.
    pub fn parse(token: &'a str) -> Result<Self, TokenError> {
        let mut parts = token.splitn(4, '.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed("not three dot-separated segments"));
        };
        let signing_input = token
            .get(..header_b64.len() + 1 + payload_b64.len())
            .ok_or(TokenError::Malformed("not three dot-separated segments"))?;
        let header = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| TokenError::Malformed("header is not base64url"))?;
        let header: RawHeader = serde_json::from_slice(&header)
            .map_err(|_| TokenError::Malformed("header is not a JSON object with \"alg\""))?;
        if let Some(crit) = header.crit {
            let first = crit
                .as_array()
                .and_then(|a| a.first())
                .and_then(|v| v.as_str())
                .map(|s| truncate(s, 32))
                .unwrap_or_default();
            return Err(TokenError::CriticalHeader(first));
        }
        if header
            .b64
            .is_some_and(|b| b != serde_json::Value::Bool(true))
        {
            return Err(TokenError::Malformed(
                "unencoded payload (b64) is not supported",
            ));
        }
        let alg = Algorithm::from_name(&header.alg)
            .ok_or_else(|| TokenError::UnsupportedAlgorithm(truncate(&header.alg, 32)))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| TokenError::Malformed("signature is not base64url"))?;
        if signature.is_empty() {
            return Err(TokenError::Malformed("empty signature"));
        }
        Ok(Self {
            signing_input,
            payload_b64,
            signature,
            alg,
            kid: header.kid,
            typ: header.typ,
            x5c: header.x5c,
            x5t_s256: header.x5t_s256,
        })
    }

    /// The header's algorithm.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The header's key id.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The header's `typ`.
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// The `x5c` header as given (only the x5c mechanism reads it, after validating it).
    pub(crate) fn x5c(&self) -> Option<&serde_json::Value> {
        self.x5c.as_ref()
    }

    /// The `x5t#S256` header as given.
    pub(crate) fn x5t_s256(&self) -> Option<&serde_json::Value> {
        self.x5t_s256.as_ref()
    }

    /// The decoded payload bytes (not yet authenticated).
    pub fn payload(&self) -> Result<Vec<u8>, TokenError> {
        URL_SAFE_NO_PAD
            .decode(self.payload_b64)
            .map_err(|_| TokenError::Malformed("payload is not base64url"))
    }

    /// Checks the signature with `key`, using the header's algorithm only if the key
    /// allows it.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), TokenError> {
        key.verify(self.alg, self.signing_input.as_bytes(), &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str) -> String {
        format!("{}.{}.{}", b64(header), b64("{}"), b64("sig"))
    }

    #[test]
    fn structure() {
        for bad in [
            "",
            "a",
            "a.b",
            "a.b.c.d",
            "a.b.c.d.e",
            "..",
            "e30.e30.",
            "e30.e30.e30=",
        ] {
            assert!(
                matches!(Compact::parse(bad), Err(TokenError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn alg_none_in_any_case_is_refused() {
        for alg in ["none", "None", "NONE", "nOnE"] {
            let t = token(&format!(r#"{{"alg":"{alg}"}}"#));
            assert!(
                matches!(Compact::parse(&t), Err(TokenError::UnsupportedAlgorithm(_))),
                "{alg}"
            );
        }
    }

    #[test]
    fn crit_and_b64_are_refused() {
        let t = token(r#"{"alg":"ES256","crit":["exp"],"exp":1}"#);
        assert_eq!(
            Compact::parse(&t).unwrap_err(),
            TokenError::CriticalHeader("exp".into())
        );
        let t = token(r#"{"alg":"ES256","crit":[]}"#);
        assert!(matches!(
            Compact::parse(&t),
            Err(TokenError::CriticalHeader(_))
        ));
        let t = token(r#"{"alg":"ES256","b64":false}"#);
        assert!(matches!(Compact::parse(&t), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn duplicate_alg_is_refused() {
        let t = token(r#"{"alg":"ES256","alg":"none"}"#);
        assert!(matches!(Compact::parse(&t), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn header_members_are_read() {
        let t = token(r#"{"alg":"EdDSA","kid":"k","typ":"at+jwt","jku":"http://127.0.0.1:1/"}"#);
        let c = Compact::parse(&t).unwrap();
        assert_eq!(c.alg(), Algorithm::EdDsa);
        assert_eq!(c.kid(), Some("k"));
        assert_eq!(c.typ(), Some("at+jwt"));
        assert_eq!(c.payload().unwrap(), b"{}");
    }
}
