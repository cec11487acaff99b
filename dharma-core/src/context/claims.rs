//! A token's claims: read in place when the token is verified, turned into a JSON map only
//! when something asks for one.

use std::{
    fmt,
    sync::{Arc, LazyLock, OnceLock},
};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The claims of a token or the attributes of an identity, as a JSON object.
///
/// What every request needs (the granted scopes, the confirmation) is worked out when the
/// claims are made; the JSON map of a verified token's payload is built the first time a
/// rule or a handler asks for it, and then kept.
#[derive(Clone, Default)]
pub struct Claims(Option<Arc<Inner>>);

struct Inner {
    /// The payload, when the map is built on demand (strictly validated JSON).
    json: String,
    map: OnceLock<Map<String, Value>>,
    /// The granted scopes, space-separated.
    scopes: Granted,
    confirmation: Confirmation,
}

/// The granted scopes, space-separated: most tokens grant what their `scope` claim says,
/// which is then a slice of the payload text.
#[derive(Debug)]
pub(crate) enum Granted {
    /// These bytes of the payload text.
    InPayload(std::ops::Range<usize>),
    Owned(Box<str>),
}

impl Inner {
    fn scopes(&self) -> &str {
        match &self.scopes {
            Granted::InPayload(range) => self.json.get(range.clone()).unwrap_or_default(),
            Granted::Owned(scopes) => scopes,
        }
    }
}

static EMPTY: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

impl Claims {
    /// No claims.
    pub(crate) const NONE: Claims = Claims(None);

    /// Claims from a JSON object.
    pub fn new(map: Map<String, Value>) -> Self {
        let scopes = Granted::Owned(granted(
            map.get("scope").and_then(Value::as_str),
            map.get("scp"),
        ));
        let confirmation = Confirmation::of(map.get("cnf"));
        Self(Some(Arc::new(Inner {
            json: String::new(),
            map: OnceLock::from(map),
            scopes,
            confirmation,
        })))
    }

    /// Claims whose map is built from `json` when first asked for. `json` is an object
    /// that passed [`crate::json::scan`]; `scopes` and `confirmation` are what it says.
    pub(crate) fn from_payload(json: String, scopes: Granted, confirmation: Confirmation) -> Self {
        Self(Some(Arc::new(Inner {
            json,
            map: OnceLock::new(),
            scopes,
            confirmation,
        })))
    }

    /// Parses a JSON object.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        Ok(Self::new(serde_json::from_str(json)?))
    }

    /// A claim by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.as_map().get(name)
    }

    /// A string claim by name.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    /// The scopes granted: the space-separated `scope` claim (RFC 8693, RFC 9068) and the
    /// `scp` array or string, together.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        let all = self.0.as_deref().map_or("", Inner::scopes);
        all.split(' ').filter(|s| !s.is_empty())
    }

    /// Whether `scope` is granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// The claims as a JSON map.
    pub fn as_map(&self) -> &Map<String, Value> {
        match &self.0 {
            None => &EMPTY,
            // The payload was validated by the strict reader, whose grammar is
            // serde_json's (a fuzz target holds them to it); were it ever refused, the
            // claims would read as empty, which no rule accepts.
            Some(inner) => inner
                .map
                .get_or_init(|| serde_json::from_str(&inner.json).unwrap_or_default()),
        }
    }

    /// Deserializes the claims into a typed struct.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match &self.0 {
            Some(inner) if inner.map.get().is_none() => serde_json::from_str(&inner.json),
            _ => T::deserialize(Value::Object(self.as_map().clone())),
        }
    }

    /// The token's confirmation (RFC 7800).
    pub(crate) fn confirmation(&self) -> &Confirmation {
        self.0
            .as_deref()
            .map_or(&Confirmation::None, |inner| &inner.confirmation)
    }
}

impl PartialEq for Claims {
    fn eq(&self, other: &Self) -> bool {
        self.as_map() == other.as_map()
    }
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Claim names only: values may be personal data.
        f.debug_set().entries(self.as_map().keys()).finish()
    }
}

/// The scopes a `scope` string and a `scp` claim grant, space-separated. An `scp` item
/// with a space in it is not a scope (RFC 6749 section 3.3) and grants nothing.
pub(crate) fn granted(scope: Option<&str>, scp: Option<&Value>) -> Box<str> {
    let mut out = String::from(scope.unwrap_or_default());
    let mut add = |s: &str| {
        out.push(' ');
        out.push_str(s);
    };
    match scp {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.contains(' '))
            .for_each(add),
        Some(Value::String(s)) => add(s),
        _ => {}
    }
    out.into_boxed_str()
}

/// A token's confirmation (RFC 7800 `cnf`), as far as dharma can check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Confirmation {
    /// No `cnf` claim.
    None,
    /// `cnf` holds only `x5t#S256`, the thumbprint of the client's TLS certificate
    /// (RFC 8705 section 3.1).
    Certificate(Box<str>),
    /// A confirmation dharma cannot check (DPoP's `jkt`, `jwk`, `kid`, several methods, or
    /// not an object): the token is refused.
    Unverifiable,
}

impl Confirmation {
    /// What a `cnf` claim asks for.
    pub(crate) fn of(cnf: Option<&Value>) -> Self {
        let Some(cnf) = cnf else {
            return Self::None;
        };
        match cnf.as_object() {
            Some(members) if members.len() == 1 => members
                .get("x5t#S256")
                .and_then(Value::as_str)
                .map_or(Self::Unverifiable, |t| Self::Certificate(t.into())),
            _ => Self::Unverifiable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_from_scope_and_scp() {
        let c = Claims::from_json(r#"{"scope":"a  b","scp":["c","d"]}"#).unwrap();
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["a", "b", "c", "d"]);
        let c = Claims::from_json(r#"{"scp":"x y"}"#).unwrap();
        assert!(c.has_scope("y"));
        let c = Claims::from_json(r#"{"scope":7}"#).unwrap();
        assert_eq!(c.scopes().count(), 0);
    }

    #[test]
    fn debug_hides_claim_values() {
        let c = Claims::from_json(r#"{"email":"alice@example.com"}"#).unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("email"));
        assert!(!shown.contains("alice"));
    }

    #[test]
    fn typed_claims() {
        #[derive(serde::Deserialize)]
        struct Mine {
            sub: String,
        }
        let c = Claims::from_json(r#"{"sub":"bob","x":1}"#).unwrap();
        assert_eq!(c.deserialize::<Mine>().unwrap().sub, "bob");
    }

    #[test]
    fn payload_claims_are_built_on_demand() {
        let json = r#"{"sub":"bob","scope":"a b","cnf":{"x5t#S256":"t"}}"#;
        let c = Claims::from_payload(
            json.into(),
            Granted::InPayload(22..25),
            Confirmation::Certificate("t".into()),
        );
        assert!(c.has_scope("b"));
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(c.confirmation(), &Confirmation::Certificate("t".into()));
        assert_eq!(c, Claims::from_json(json).unwrap());
        assert_eq!(c.str("sub"), Some("bob"));
    }

    #[test]
    fn confirmations() {
        let of = |json: &str| Confirmation::of(Claims::from_json(json).unwrap().get("cnf"));
        assert_eq!(of("{}"), Confirmation::None);
        assert_eq!(
            of(r#"{"cnf":{"x5t#S256":"t"}}"#),
            Confirmation::Certificate("t".into())
        );
        for other in [
            r#"{"cnf":{"jkt":"t"}}"#,
            r#"{"cnf":{"x5t#S256":"t","jkt":"u"}}"#,
            r#"{"cnf":{"x5t#S256":7}}"#,
            r#"{"cnf":"t"}"#,
        ] {
            assert_eq!(of(other), Confirmation::Unverifiable, "{other}");
        }
        assert_eq!(
            Claims::from_json(r#"{"cnf":{"jkt":"t"}}"#)
                .unwrap()
                .confirmation(),
            &Confirmation::Unverifiable
        );
    }

    #[test]
    fn scp_items_with_spaces_grant_nothing() {
        let c = Claims::from_json(r#"{"scp":["a b","c"]}"#).unwrap();
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["c"]);
    }
}
