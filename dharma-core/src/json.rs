//! Strict JSON for what attackers write: token headers and payloads, key sets and
//! introspection answers.
//!
//! serde_json keeps the last of two members with one name, and does not look inside
//! strings it skips. Two parsers that read one document differently (an identity provider,
//! a gateway and dharma) are a classic way to smuggle a claim, so everything here is read
//! in full, a member repeated at any depth is refused, and every string is decoded (valid
//! UTF-8, no lone surrogate escapes).

use std::fmt;

use serde::{
    Deserialize, Deserializer,
    de::{Error, MapAccess, SeqAccess, Visitor},
};
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

/// A JSON value, read strictly.
pub(crate) fn value(bytes: &[u8]) -> Result<Value, JsonError> {
    serde_json::from_slice::<Strict>(bytes)
        .map(|s| s.0)
        .map_err(|_| JsonError::Invalid)
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON without repeated members")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if out.insert(key, value).is_some() {
                return Err(A::Error::custom("repeated member"));
            }
        }
        Ok(Value::Object(out))
    }
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
