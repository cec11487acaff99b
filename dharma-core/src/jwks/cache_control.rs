//! The part of `Cache-Control` (RFC 9111) that sets how long a key set stays fresh.

use std::time::Duration;

use http::{HeaderMap, header::CACHE_CONTROL};

/// The freshness a response asks for: `max-age`, or zero for `no-store`/`no-cache`.
/// `None` when the header says nothing usable.
pub(crate) fn freshness(headers: &HeaderMap) -> Option<Duration> {
    let mut max_age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, arg) = directive.split_once('=').unwrap_or((directive, ""));
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                return Some(Duration::ZERO);
            }
            if name.eq_ignore_ascii_case("max-age") {
                let arg = arg.trim_matches('"');
                if let Ok(secs) = arg.parse::<u64>() {
                    max_age = Some(Duration::from_secs(secs));
                }
            }
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn f(v: &'static str) -> Option<Duration> {
        let mut h = HeaderMap::new();
        h.insert(CACHE_CONTROL, HeaderValue::from_static(v));
        freshness(&h)
    }

    #[test]
    fn parses_directives() {
        assert_eq!(f("public, max-age=600"), Some(Duration::from_secs(600)));
        assert_eq!(f("Max-Age=\"60\""), Some(Duration::from_secs(60)));
        assert_eq!(f("max-age=600, no-cache"), Some(Duration::ZERO));
        assert_eq!(f("no-store"), Some(Duration::ZERO));
        assert_eq!(f("public"), None);
        assert_eq!(f("max-age=-1"), None);
        assert_eq!(f("max-age=99999999999999999999999"), None);
        assert_eq!(freshness(&HeaderMap::new()), None);
    }
}
