//! Signing keys of token issuers, fetched and cached so the request path never waits for
//! the network when it can decide from what it holds.
//!
//! Per issuer, a [`KeySource`] names where keys come from (a JWKS URL, OIDC discovery, or a
//! fixed set). The cache follows a [`CachePolicy`]:
//!
//! - parsed keys are kept, so no request parses a key;
//! - freshness follows the response's `Cache-Control: max-age`, clamped to
//!   [`min_ttl`](CachePolicy::min_ttl)..[`max_ttl`](CachePolicy::max_ttl);
//! - a token naming an unknown `kid` triggers a refresh at most once per
//!   [`min_refresh_interval`](CachePolicy::min_refresh_interval), and concurrent misses
//!   share one fetch, so a stream of made-up `kid`s cannot cause a fetch storm
//!   (and a `kid` is never sent to the issuer);
//! - when the issuer is down, the last good keys serve for
//!   [`stale_if_error`](CachePolicy::stale_if_error) past their expiry; a failed refresh
//!   never replaces them, and one unusable key never discards the rest of a set;
//! - fetches have a [timeout](CachePolicy::fetch_timeout) and a
//!   [size limit](CachePolicy::max_response_bytes); the HTTP client is injectable
//!   ([`HttpClient`](crate::transport::HttpClient)).
//!
//! ```
//! use std::time::Duration;
//! use dharma_core::jwks::CachePolicy;
//!
//! let policy = CachePolicy::default()
//!     .min_refresh_interval(Duration::from_secs(30))
//!     .stale_if_error(Duration::from_secs(3600));
//! assert!(policy.validate().is_ok());
//! ```

mod cache_control;
mod source;
mod store;

pub use crate::error::KeySourceError;

use std::time::Duration;

pub(crate) use self::source::check_url;
pub use self::source::{KeySource, SourceError};
pub(crate) use self::store::spawn_refresher;
pub(crate) use self::store::{KeyLookupError, KeyStatus, KeyStore};

/// How keys are cached and refreshed. Validated when a verifier is built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CachePolicy {
    /// Freshness when the response has no usable `max-age` (default 5 minutes).
    pub default_ttl: Duration,
    /// Lower bound on freshness (default 30 seconds).
    pub min_ttl: Duration,
    /// Upper bound on freshness (default 24 hours).
    pub max_ttl: Duration,
    /// At least this long between two fetches caused by unknown `kid`s or after a failure
    /// (default 10 seconds).
    pub min_refresh_interval: Duration,
    /// How long past their expiry the last good keys still serve while the source fails
    /// (default 30 minutes).
    pub stale_if_error: Duration,
    /// Timeout of one fetch, discovery included (default 5 seconds).
    pub fetch_timeout: Duration,
    /// Largest response accepted (default 256 KiB).
    pub max_response_bytes: usize,
    /// The background refresher fetches when this fraction of the freshness has passed
    /// (in percent, default 80).
    pub refresh_at_percent: u8,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self {
            default_ttl: Duration::from_secs(300),
            min_ttl: Duration::from_secs(30),
            max_ttl: Duration::from_secs(86_400),
            min_refresh_interval: Duration::from_secs(10),
            stale_if_error: Duration::from_secs(1800),
            fetch_timeout: Duration::from_secs(5),
            max_response_bytes: 256 * 1024,
            refresh_at_percent: 80,
        }
    }
}

/// A cache policy whose numbers contradict each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JWKS cache policy: {0}")]
pub struct PolicyError(&'static str);

macro_rules! setter {
    ($name:ident, $ty:ty) => {
        #[doc = concat!("Sets [`", stringify!($name), "`](Self::", stringify!($name), ").")]
        #[must_use]
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = value;
            self
        }
    };
}

impl CachePolicy {
    setter!(default_ttl, Duration);
    setter!(min_ttl, Duration);
    setter!(max_ttl, Duration);
    setter!(min_refresh_interval, Duration);
    setter!(stale_if_error, Duration);
    setter!(fetch_timeout, Duration);
    setter!(max_response_bytes, usize);
    setter!(refresh_at_percent, u8);

    /// Checks that the numbers fit together.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.min_ttl > self.max_ttl {
            return Err(PolicyError("min_ttl exceeds max_ttl"));
        }
        if self.min_ttl < self.min_refresh_interval {
            return Err(PolicyError("min_ttl is shorter than min_refresh_interval"));
        }
        if self.fetch_timeout.is_zero() {
            return Err(PolicyError("fetch_timeout is zero"));
        }
        if self.max_response_bytes < 64 {
            return Err(PolicyError(
                "max_response_bytes is too small for any key set",
            ));
        }
        if !(1..=100).contains(&self.refresh_at_percent) {
            return Err(PolicyError("refresh_at_percent must be within 1..=100"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_validation() {
        assert!(CachePolicy::default().validate().is_ok());
        assert!(
            CachePolicy::default()
                .min_ttl(Duration::from_secs(1))
                .validate()
                .is_err()
        );
        assert!(
            CachePolicy::default()
                .max_ttl(Duration::from_secs(1))
                .validate()
                .is_err()
        );
        assert!(
            CachePolicy::default()
                .fetch_timeout(Duration::ZERO)
                .validate()
                .is_err()
        );
        assert!(
            CachePolicy::default()
                .refresh_at_percent(0)
                .validate()
                .is_err()
        );
    }
}
