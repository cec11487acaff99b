//! Compact JWS (RFC 7515): split, decode, read the header, check the signature.
//!
//! Only what is needed to verify is read from the header. `jku`, `x5u`, `jwk` and `x5c`
//! are never used to find a key; a `crit` header is refused because dharma implements no
//! critical extension; `b64: false` (RFC 7797) is refused. `{"alg":"none"}` is not
//! representable, so parsing refuses it.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::Value;

use super::{alg::Algorithm, jwk::VerifyingKey};
use crate::{error::TokenError, util::truncate};

/// A parsed compact JWS whose signature is not checked yet.
#[derive(Debug)]
pub(crate) struct Compact<'a> {
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
    pub(crate) fn parse(token: &'a str) -> Result<Self, TokenError> {
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
        let mut header = crate::json::object(&header)
            .map_err(|_| TokenError::Malformed("header is not a JSON object"))?;
        if let Some(crit) = header.get("crit") {
            let first = crit
                .as_array()
                .and_then(|a| a.first())
                .and_then(|v| v.as_str())
                .map(|s| truncate(s, 32))
                .unwrap_or_default();
            return Err(TokenError::CriticalHeader(first));
        }
        if header.get("b64").is_some_and(|b| *b != Value::Bool(true)) {
            return Err(TokenError::Malformed(
                "unencoded payload (b64) is not supported",
            ));
        }
        // Compression belongs to JWE (RFC 7516); in a JWS it is a confused or hostile token.
        if header.contains_key("zip") {
            return Err(TokenError::Malformed("zip is not a JWS header"));
        }
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => Algorithm::from_name(alg)
                .ok_or_else(|| TokenError::UnsupportedAlgorithm(truncate(alg, 32)))?,
            _ => return Err(TokenError::Malformed("header has no \"alg\" string")),
        };
        let mut text = |name: &str| match header.remove(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(TokenError::Malformed("header member is not a string")),
        };
        let kid = text("kid")?;
        let typ = text("typ")?;
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
            kid,
            typ,
            x5c: header.remove("x5c"),
            x5t_s256: header.remove("x5t#S256"),
        })
    }

    /// The header's algorithm.
    pub(crate) fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The header's key id.
    pub(crate) fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The header's `typ`.
    pub(crate) fn typ(&self) -> Option<&str> {
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
    pub(crate) fn payload(&self) -> Result<Vec<u8>, TokenError> {
        URL_SAFE_NO_PAD
            .decode(self.payload_b64)
            .map_err(|_| TokenError::Malformed("payload is not base64url"))
    }

    /// Checks the signature with `key`, using the header's algorithm only if the key
    /// allows it.
    pub(crate) fn verify(&self, key: &VerifyingKey) -> Result<(), TokenError> {
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

    /// The issue's reproductions: a JSON array header parsed, invalid UTF-8 in a member
    /// dharma ignores passed, and `zip` was accepted in a JWS.
    #[test]
    fn strict_headers() {
        for bad in [
            r#"["ES256"]"#,
            "{\"alg\":\"ES256\",\"x\":\"\u{0}\"}x",
            r#"{"alg":"ES256","zip":"DEF"}"#,
            r#"{"alg":"ES256","kid":7}"#,
            r#"{"alg":"ES256","typ":["at+jwt"]}"#,
            r#"{"alg":["ES256"]}"#,
            r#"{"alg":"ES256","kid":"a","kid":"b"}"#,
        ] {
            assert!(
                matches!(Compact::parse(&token(bad)), Err(TokenError::Malformed(_))),
                "{bad}"
            );
        }
        let invalid_utf8 = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(b"{\"alg\":\"ES256\",\"note\":\"\xff\"}"),
            b64("{}"),
            b64("sig")
        );
        assert!(matches!(
            Compact::parse(&invalid_utf8),
            Err(TokenError::Malformed(_))
        ));
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
