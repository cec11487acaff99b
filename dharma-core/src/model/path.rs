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

use std::{cmp::Ordering, fmt, str::FromStr};

/// A pattern that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path pattern {pattern:?}: {rule}")]
pub struct PatternError {
    pattern: String,
    rule: &'static str,
}

/// A request path that is not in normal form. Such requests are refused before any
/// endpoint is matched, so a router and dharma can never disagree about where they go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("path does not start with '/'")]
    NotAbsolute,
    /// A `.` or `..` segment.
    #[error("path has a dot segment")]
    DotSegment,
    /// A percent-encoded `/`, `\` or `.`, or a raw `\`.
    #[error("path has an encoded separator or dot")]
    EncodedSeparator,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
    Tail,
}

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
    pub(crate) fn specificity_cmp(&self, other: &Self) -> Ordering {
        let a = self.segments.iter().map(Segment::rank);
        let b = other.segments.iter().map(Segment::rank);
        a.cmp(b)
    }

    /// Whether two patterns match exactly the same paths.
    pub(crate) fn same_shape(&self, other: &Self) -> bool {
        self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| a == b)
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Checks that a request path is in normal form (see [`PathError`]).
pub fn check_request_path(path: &str) -> Result<(), PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if path.contains('\\') {
        return Err(PathError::EncodedSeparator);
    }
    let bytes = path.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%' {
            let hex = bytes.get(i + 1..i + 3).unwrap_or_default();
            if hex.eq_ignore_ascii_case(b"2f")
                || hex.eq_ignore_ascii_case(b"5c")
                || hex.eq_ignore_ascii_case(b"2e")
            {
                return Err(PathError::EncodedSeparator);
            }
        }
    }
    if path.split('/').any(|s| s == "." || s == "..") {
        return Err(PathError::DotSegment);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
    fn specificity() {
        assert_eq!(p("/a/b").specificity_cmp(&p("/a/{x}")), Ordering::Greater);
        assert_eq!(
            p("/a/{x}").specificity_cmp(&p("/a/{*x}")),
            Ordering::Greater
        );
        assert_eq!(p("/a/{x}").specificity_cmp(&p("/{x}/b")), Ordering::Greater);
        assert!(p("/a/{x}").same_shape(&p("/a/{y}")));
        assert!(!p("/a/{x}").same_shape(&p("/b/{y}")));
    }

    #[test]
    fn request_path_normal_form() {
        assert_eq!(check_request_path("/a/b"), Ok(()));
        assert_eq!(check_request_path("/a/%20b"), Ok(()));
        assert_eq!(check_request_path("a"), Err(PathError::NotAbsolute));
        assert_eq!(check_request_path("/a/../b"), Err(PathError::DotSegment));
        assert_eq!(check_request_path("/a/."), Err(PathError::DotSegment));
        assert_eq!(
            check_request_path("/a/%2e%2E/b"),
            Err(PathError::EncodedSeparator)
        );
        assert_eq!(
            check_request_path("/a%2Fb"),
            Err(PathError::EncodedSeparator)
        );
        assert_eq!(
            check_request_path("/a\\b"),
            Err(PathError::EncodedSeparator)
        );
        assert_eq!(check_request_path("/a%"), Ok(()));
    }
}
