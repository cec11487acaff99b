//! Path patterns of endpoints, and the normal form a request path must have.
//!
//! Patterns use the syntax of axum's router: literal segments, `{name}` for one
//! segment, `{*name}` for one or more trailing segments.
//!
//! ```
//! use dharma_core::model::PathPattern;
//!
//! let p: PathPattern = "/orders/{id}/items/{*rest}".parse()?;
//! assert!(p.matches("/orders/7/items/a/b"));
//! assert!(!p.matches("/orders/7/items"));
//! # Ok::<(), dharma_core::model::PatternError>(())
//! ```

use std::{borrow::Cow, fmt, str::FromStr};

use crate::error::PathError;

/// A pattern that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path pattern {pattern:?}: {rule}")]
pub struct PatternError {
    pattern: String,
    rule: &'static str,
}

/// Whether `b` may appear unencoded in a path segment (RFC 3986 `pchar` without
/// `pct-encoded`): unreserved, sub-delims, `:` and `@`.
pub(crate) fn is_pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
    Tail,
}

#[cfg(test)]
impl Segment {
    fn rank(&self) -> u8 {
        match self {
            Self::Literal(_) => 2,
            Self::Param => 1,
            Self::Tail => 0,
        }
    }
}

/// A parsed endpoint path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    source: String,
    segments: Vec<Segment>,
}

impl FromStr for PathPattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, PatternError> {
        let err = |rule| PatternError {
            pattern: crate::util::truncate(s, 128),
            rule,
        };
        let rest = s.strip_prefix('/').ok_or(err("must start with '/'"))?;
        let mut segments = Vec::new();
        if !rest.is_empty() {
            let parts: Vec<&str> = rest.split('/').collect();
            let last = parts.len() - 1;
            for (i, part) in parts.into_iter().enumerate() {
                let seg = if let Some(name) =
                    part.strip_prefix("{*").and_then(|p| p.strip_suffix('}'))
                {
                    if i != last {
                        return Err(err("'{*name}' may only be the last segment"));
                    }
                    check_name(name).map_err(err)?;
                    Segment::Tail
                } else if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
                {
                    check_name(name).map_err(err)?;
                    Segment::Param
                } else {
                    if part.contains(['{', '}']) {
                        return Err(err("braces must enclose a whole segment"));
                    }
                    if part == "." || part == ".." {
                        return Err(err("dot segments are not allowed"));
                    }
                    if part.is_empty() && i != last {
                        return Err(err("empty segments are not allowed"));
                    }
                    if !part.bytes().all(is_pchar) {
                        return Err(err(
                            "literal segments use unencoded RFC 3986 path characters only",
                        ));
                    }
                    Segment::Literal(part.to_owned())
                };
                segments.push(seg);
            }
        }
        Ok(Self {
            source: s.to_owned(),
            segments,
        })
    }
}

/// `%XX` escapes decoded; `None` if malformed or not UTF-8.
fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains('%') {
        return Some(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex)?;
            let lo = bytes.get(i + 2).copied().and_then(hex)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

fn check_name(name: &str) -> Result<(), &'static str> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err("parameter names use letters, digits and '_'")
    }
}

impl PathPattern {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The value of the parameter `name` (`{name}`, or the tail `{*name}`) in `path` (in
    /// normal form, matching the pattern), percent-decoded; `None` if the pattern has no
    /// such parameter or the value does not decode to UTF-8.
    pub fn param<'p>(&self, path: &'p str, name: &str) -> Option<Cow<'p, str>> {
        let mut parts = path.strip_prefix('/')?.split('/');
        let mut consumed = 1;
        for seg in self.source.strip_prefix('/')?.split('/') {
            let value = parts.next()?;
            if seg.strip_prefix("{*").and_then(|s| s.strip_suffix('}')) == Some(name) {
                return percent_decode(path.get(consumed..)?);
            }
            if seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) == Some(name) {
                return percent_decode(value);
            }
            consumed += value.len() + 1;
        }
        None
    }

    /// Whether `path` (in normal form, without query) matches.
    pub fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        if self.segments.is_empty() {
            return rest.is_empty();
        }
        let mut parts = rest.split('/');
        for seg in &self.segments {
            match seg {
                Segment::Tail => return parts.next().is_some_and(|p| !p.is_empty()),
                Segment::Param => {
                    if parts.next().is_none_or(str::is_empty) {
                        return false;
                    }
                }
                Segment::Literal(lit) => {
                    if parts.next() != Some(lit.as_str()) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }

    /// Orders two patterns that both match a path: the more specific one is greater
    /// (a literal segment beats a parameter, which beats a tail, leftmost first).
    #[cfg(test)]
    pub(crate) fn specificity_cmp(&self, other: &Self) -> std::cmp::Ordering {
        let a = self.segments.iter().map(Segment::rank);
        let b = other.segments.iter().map(Segment::rank);
        a.cmp(b)
    }

    /// Whether some path matches both patterns.
    pub(crate) fn overlaps(&self, other: &Self) -> bool {
        let (mut a, mut b) = (self.segments.iter(), other.segments.iter());
        loop {
            match (a.next(), b.next()) {
                (None, None) => return true,
                // A tail takes one or more segments, the first not empty.
                (Some(Segment::Tail), Some(s)) | (Some(s), Some(Segment::Tail)) => {
                    return !matches!(s, Segment::Literal(l) if l.is_empty());
                }
                (None, Some(_)) | (Some(_), None) => return false,
                (Some(Segment::Literal(x)), Some(Segment::Literal(y))) => {
                    if x != y {
                        return false;
                    }
                }
                (Some(Segment::Literal(l)), Some(Segment::Param))
                | (Some(Segment::Param), Some(Segment::Literal(l))) => {
                    if l.is_empty() {
                        return false;
                    }
                }
                (Some(Segment::Param), Some(Segment::Param)) => {}
            }
        }
    }

    /// The pattern in matchit's syntax with parameters named by position, so patterns
    /// that match the same paths have the same route and no two routes conflict over
    /// parameter names.
    pub(crate) fn route(&self) -> String {
        let mut out = String::with_capacity(self.source.len());
        if self.segments.is_empty() {
            out.push('/');
        }
        for (i, seg) in self.segments.iter().enumerate() {
            out.push('/');
            match seg {
                Segment::Literal(lit) => out.push_str(lit),
                Segment::Param => out.push_str(&format!("{{p{i}}}")),
                Segment::Tail => out.push_str(&format!("{{*p{i}}}")),
            }
        }
        out
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Checks that a request path is in normal form (see [`PathError`]).
///
/// ```
/// use dharma_core::model::{PathError, check_request_path};
///
/// assert_eq!(check_request_path("/users/7/caf%C3%A9"), Ok(()));
/// assert_eq!(check_request_path("/users/%61dmin"), Err(PathError::NeedlessEncoding));
/// assert_eq!(check_request_path("/users//admin"), Err(PathError::EmptySegment));
/// ```
pub fn check_request_path(path: &str) -> Result<(), PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'/' => {
                if bytes.get(i + 1) == Some(&b'/') {
                    return Err(PathError::EmptySegment);
                }
            }
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(PathError::BadEncoding);
                };
                let decoded = hi << 4 | lo;
                if decoded == b'/' || decoded == b'\\' {
                    return Err(PathError::EncodedSeparator);
                }
                if is_pchar(decoded) {
                    return Err(PathError::NeedlessEncoding);
                }
                i += 2;
            }
            b if is_pchar(b) => {}
            _ => return Err(PathError::BadCharacter),
        }
        i += 1;
    }
    if path.split('/').any(|s| s == "." || s == "..") {
        return Err(PathError::DotSegment);
    }
    Ok(())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::*;

    fn p(s: &str) -> PathPattern {
        s.parse().unwrap()
    }

    #[test]
    fn matching() {
        assert!(p("/").matches("/"));
        assert!(!p("/").matches("/a"));
        assert!(p("/a/{id}").matches("/a/1"));
        assert!(!p("/a/{id}").matches("/a/"));
        assert!(!p("/a/{id}").matches("/a/1/2"));
        assert!(p("/a/{*rest}").matches("/a/1/2"));
        assert!(!p("/a/{*rest}").matches("/a"));
        assert!(!p("/a/{*rest}").matches("/a/"));
        assert!(p("/a/").matches("/a/"));
        assert!(!p("/a").matches("/a/"));
    }

    #[test]
    fn bad_patterns() {
        for bad in [
            "",
            "a",
            "/a/{*x}/b",
            "/a{x}",
            "/{}",
            "/{a-b}",
            "/a//b",
            "/../a",
        ] {
            assert!(bad.parse::<PathPattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn overlaps() {
        let o = |a: &str, b: &str| p(a).overlaps(&p(b)) && p(b).overlaps(&p(a));
        assert!(o("/users/admin", "/users/{id}"));
        assert!(o("/users/{id}", "/{*rest}"));
        assert!(o("/a/{x}/c", "/a/b/{y}"));
        assert!(o("/a/{*t}", "/a/b/"));
        assert!(!o("/users/admin", "/users/other"));
        assert!(!o("/users/{id}", "/users/{id}/keys"));
        assert!(!o("/", "/{*rest}"));
        assert!(!o("/a/", "/a/{x}"));
        assert!(!o("/a/", "/a/{*t}"));
        assert!(!o("/a", "/a/"));
    }

    #[test]
    fn specificity() {
        assert_eq!(p("/a/b").specificity_cmp(&p("/a/{x}")), Ordering::Greater);
        assert_eq!(
            p("/a/{x}").specificity_cmp(&p("/a/{*x}")),
            Ordering::Greater
        );
        assert_eq!(p("/a/{x}").specificity_cmp(&p("/{x}/b")), Ordering::Greater);
        assert_eq!(p("/a/{x}").route(), p("/a/{y}").route());
        assert_ne!(p("/a/{x}").route(), p("/b/{y}").route());
        assert_eq!(p("/").route(), "/");
        assert_eq!(p("/a/").route(), "/a/");
        assert_eq!(p("/a/{x}/{*t}").route(), "/a/{p1}/{*p2}");
    }

    #[test]
    fn request_path_normal_form() {
        use PathError::*;
        for ok in [
            "/",
            "/a/b",
            "/a/",
            "/a/%20b",
            "/caf%C3%A9",
            "/a%25",
            "/a;x=1",
            "/a:b@c",
            "/~u",
        ] {
            assert_eq!(check_request_path(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", NotAbsolute),
            ("a", NotAbsolute),
            ("/a/../b", DotSegment),
            ("/a/.", DotSegment),
            ("/.", DotSegment),
            ("//a", EmptySegment),
            ("/a//", EmptySegment),
            ("/a/%2e%2E/b", NeedlessEncoding),
            ("/users/%61dmin", NeedlessEncoding),
            ("/a%3bb", NeedlessEncoding),
            ("/a%2Fb", EncodedSeparator),
            ("/a%5cb", EncodedSeparator),
            ("/a\\b", BadCharacter),
            ("/a b", BadCharacter),
            ("/a{b}", BadCharacter),
            ("/caf\u{e9}", BadCharacter),
            ("/a%", BadEncoding),
            ("/a%4", BadEncoding),
            ("/a%zz", BadEncoding),
        ] {
            assert_eq!(check_request_path(bad), Err(why), "{bad:?}");
        }
    }

    #[test]
    fn literals_need_no_encoding() {
        for bad in ["/a%20b", "/a b", "/caf\u{e9}", "/a\\b"] {
            assert!(bad.parse::<PathPattern>().is_err(), "{bad}");
        }
        assert!("/a;v=1/@me/x:y".parse::<PathPattern>().is_ok());
    }
}
