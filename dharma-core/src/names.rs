//! Parsed names: the identifiers of the model, checked once when they are created.
//!
//! ```
//! use dharma_core::names::{DomainName, Scope};
//!
//! let outer: DomainName = "outer".parse()?;
//! assert_eq!(outer.as_str(), "outer");
//! assert!("Outer Domain".parse::<DomainName>().is_err());
//! assert!("orders:read".parse::<Scope>().is_ok());
//! assert!("two words".parse::<Scope>().is_err());
//! # Ok::<(), dharma_core::names::NameError>(())
//! ```

use std::{fmt, str::FromStr, sync::Arc};

/// A name or value that failed its syntax check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {rule}")]
pub struct NameError {
    kind: &'static str,
    value: String,
    rule: &'static str,
}

impl NameError {
    fn new(kind: &'static str, value: &str, rule: &'static str) -> Self {
        Self {
            kind,
            value: crate::util::truncate(value, 64),
            rule,
        }
    }

    /// Which kind of name was rejected (`"domain name"`, `"scope"`, ...).
    pub fn kind(&self) -> &'static str {
        self.kind
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(Arc<str>);

        impl $ty {
            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                let check: fn(&str) -> Result<(), &'static str> = $check;
                check(s).map_err(|rule| NameError::new($kind, s, rule))?;
                Ok(Self(Arc::from(s)))
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = NameError;
            fn try_from(s: &str) -> Result<Self, NameError> {
                s.parse()
            }
        }

        impl TryFrom<String> for $ty {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                s.parse()
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

fn identifier(s: &str) -> Result<(), &'static str> {
    let ok_len = (1..=63).contains(&s.len());
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' || c == '.');
    if ok_len && first_ok && rest_ok {
        Ok(())
    } else {
        Err(
            "use 1 to 63 characters: a lowercase letter, then lowercase letters, digits, '-', '_' or '.'",
        )
    }
}

fn printable(s: &str, max: usize) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > max {
        return Err("too long");
    }
    if s.chars().any(|c| c.is_control()) {
        return Err("must not contain control characters");
    }
    Ok(())
}

name_type!(
    /// The name of a trust domain (`outer`, `payments.inner`).
    DomainName, "domain name", identifier
);
name_type!(
    /// The name under which a trust or access mechanism is registered (`org-jwt`).
    MechanismName, "mechanism name", identifier
);
name_type!(
    /// A token issuer (`iss`), compared byte for byte.
    Issuer, "issuer", |s| printable(s, 2048)
);
name_type!(
    /// An audience (`aud`) a token must name.
    Audience, "audience", |s| printable(s, 2048)
);
name_type!(
    /// A key identifier (`kid`).
    KeyId, "key id", |s| printable(s, 1024)
);
name_type!(
    /// An OAuth2 scope token (RFC 6749 section 3.3: printable ASCII without space, `"` or `\`).
    Scope, "scope", |s| {
        if s.is_empty() {
            return Err("must not be empty");
        }
        if s.len() > 256 {
            return Err("too long");
        }
        if s.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)) {
            Ok(())
        } else {
            Err("use printable ASCII without spaces, '\"' or '\\'")
        }
    }
);

name_type!(
    /// A SPIFFE ID (`spiffe://trust-domain/path`): lowercase trust domain, path segments of
    /// letters, digits, `.`, `-` and `_`, no empty, `.` or `..` segment, no query or fragment.
    SpiffeId, "SPIFFE ID", check_spiffe
);

fn check_spiffe(s: &str) -> Result<(), &'static str> {
    let rest = s
        .strip_prefix("spiffe://")
        .ok_or("must start with spiffe://")?;
    if s.len() > 2048 {
        return Err("too long");
    }
    let (domain, path) = rest
        .split_once('/')
        .map_or((rest, None), |(d, p)| (d, Some(p)));
    if domain.is_empty()
        || !domain.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        })
    {
        return Err("the trust domain uses lowercase letters, digits, '.', '-' and '_'");
    }
    if let Some(path) = path {
        for seg in path.split('/') {
            if seg.is_empty() || seg == "." || seg == ".." {
                return Err("path segments must not be empty, '.' or '..'");
            }
            if !seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            {
                return Err("path segments use letters, digits, '.', '-' and '_'");
            }
        }
    }
    Ok(())
}

impl SpiffeId {
    /// The trust domain (`example.org` of `spiffe://example.org/ns/a`).
    pub fn trust_domain(&self) -> &str {
        let rest = self.0.strip_prefix("spiffe://").unwrap_or(&self.0);
        rest.split('/').next().unwrap_or(rest)
    }

    /// Whether the ID matches a pattern: an exact ID, or a prefix ending in `/*` that
    /// matches every ID below it (`spiffe://example.org/ns/*`).
    pub fn matches(&self, pattern: &str) -> bool {
        match pattern.strip_suffix("/*") {
            Some(prefix) => self
                .0
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.len() > 1 && rest.starts_with('/')),
            None => &*self.0 == pattern,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names() {
        for good in ["outer", "a", "inner-1", "pay.inner", "x_y"] {
            assert!(good.parse::<DomainName>().is_ok(), "{good}");
        }
        for bad in ["", "Outer", "1abc", "a b", "-a", &"a".repeat(64)] {
            let err = bad.parse::<DomainName>().unwrap_err();
            assert_eq!(err.kind(), "domain name");
        }
    }

    #[test]
    fn scopes_follow_rfc6749() {
        assert!("orders:read".parse::<Scope>().is_ok());
        assert!("a\"b".parse::<Scope>().is_err());
        assert!("a\\b".parse::<Scope>().is_err());
        assert!("a b".parse::<Scope>().is_err());
        assert!("".parse::<Scope>().is_err());
        assert!("é".parse::<Scope>().is_err());
    }

    #[test]
    fn error_display_truncates_and_quotes() {
        let long = "X".repeat(500);
        let msg = long.parse::<DomainName>().unwrap_err().to_string();
        assert!(msg.starts_with("invalid domain name \"XXX"));
        assert!(msg.len() < 250, "{msg}");
    }

    #[test]
    fn spiffe_ids() {
        let id: SpiffeId = "spiffe://example.org/ns/payments/sa/api".parse().unwrap();
        assert_eq!(id.trust_domain(), "example.org");
        assert!(id.matches("spiffe://example.org/ns/*"));
        assert!(id.matches("spiffe://example.org/ns/payments/sa/api"));
        assert!(!id.matches("spiffe://example.org/ns/pay*"));
        assert!(!id.matches("spiffe://example.org/other/*"));
        assert!(
            !"spiffe://example.org/ns"
                .parse::<SpiffeId>()
                .unwrap()
                .matches("spiffe://example.org/ns/*")
        );
        assert!("spiffe://example.org".parse::<SpiffeId>().is_ok());
        for bad in [
            "https://example.org/a",
            "spiffe://Example.org/a",
            "spiffe://x/a//b",
            "spiffe://x/../a",
            "spiffe:///a",
            "spiffe://x/a?b",
            "spiffe://x/a b",
        ] {
            assert!(bad.parse::<SpiffeId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn issuers_reject_control_characters() {
        assert!("https://idp.example".parse::<Issuer>().is_ok());
        assert!("https://idp.example\n".parse::<Issuer>().is_err());
    }
}
