//! Strict JSON for what attackers write: token headers and payloads, key sets and
//! introspection answers.
//!
//! serde_json keeps the last of two members with one name, and does not look inside
//! strings it skips. Two parsers that read one document differently (an identity provider,
//! a gateway and dharma) are a classic way to smuggle a claim, so everything here is read
//! in full, a member repeated at any depth is refused, and every string is decoded (valid
//! UTF-8, no lone surrogate escapes).

pub(crate) mod scan;

use serde_json::{Map, Value};

/// Why a document is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Not JSON (including invalid UTF-8 and repeated members), or trailing data.
    Invalid,
    /// JSON, but not an object.
    NotAnObject,
}

/// A JSON object, read strictly.
pub(crate) fn object(bytes: &[u8]) -> Result<Map<String, Value>, JsonError> {
    match value(bytes)? {
        Value::Object(map) => Ok(map),
        _ => Err(JsonError::NotAnObject),
    }
}

/// A JSON value, read strictly: [`scan`] checks it, then serde_json builds it.
pub(crate) fn value(bytes: &[u8]) -> Result<Value, JsonError> {
    let text = std::str::from_utf8(bytes).map_err(|_| JsonError::Invalid)?;
    scan::validate(text)?;
    serde_json::from_str(text).map_err(|_| JsonError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_members_are_refused_at_any_depth() {
        assert!(object(br#"{"sub":"a","x":{"y":[1,{"z":null}]}}"#).is_ok());
        for bad in [
            &br#"{"sub":"alice","sub":"admin"}"#[..],
            br#"{"cnf":{"x5t#S256":"a","x5t#S256":"b"}}"#,
            br#"{"a":[{"k":1,"k":2}]}"#,
        ] {
            assert_eq!(object(bad), Err(JsonError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn every_string_is_decoded() {
        // Invalid UTF-8 and a lone surrogate inside members nobody reads.
        assert_eq!(
            object(b"{\"alg\":\"ES256\",\"x\":\"\xff\"}"),
            Err(JsonError::Invalid)
        );
        assert_eq!(
            object(br#"{"alg":"ES256","x":"\ud800"}"#),
            Err(JsonError::Invalid)
        );
        assert_eq!(object(br#"{"x":"\ud83d\ude00"}"#).unwrap()["x"], "😀");
    }

    #[test]
    fn only_objects() {
        assert_eq!(object(br#"["ES256"]"#), Err(JsonError::NotAnObject));
        assert_eq!(object(b"1"), Err(JsonError::NotAnObject));
        assert_eq!(object(br#"{} {}"#), Err(JsonError::Invalid));
        assert_eq!(object(b""), Err(JsonError::Invalid));
    }
}
