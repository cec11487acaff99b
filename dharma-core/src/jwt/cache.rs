//! Tokens already verified, so a repeated token costs a digest and a lookup.
//!
//! Keyed by the SHA-256 of the token (the token itself is not kept). An entry lives until
//! the token's `exp` at most; `exp` is still checked on every hit with the injected clock,
//! and a hit is refused when the key that verified it has left its key set.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use moka::{Expiry, sync::Cache};

use crate::verifier::Authenticated;

/// What is remembered of a verified token.
#[derive(Debug)]
pub(crate) struct Verified {
    pub(crate) authenticated: Authenticated,
    pub(crate) exp: u64,
    pub(crate) store: usize,
    pub(crate) thumbprint: [u8; 32],
    /// How long the entry may live (until `exp`, measured when inserted).
    pub(crate) ttl: Duration,
}

pub(crate) type Digest = [u8; 32];

struct UntilExp;

impl Expiry<Digest, Arc<Verified>> for UntilExp {
    fn expire_after_create(
        &self,
        _: &Digest,
        value: &Arc<Verified>,
        _: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// A bounded cache of verified tokens.
pub(crate) struct TokenCache {
    cache: Cache<Digest, Arc<Verified>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl TokenCache {
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExp)
                .build(),
        }
    }

    pub(crate) fn digest(token: &str) -> Digest {
        let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }

    pub(crate) fn get(&self, digest: &Digest) -> Option<Arc<Verified>> {
        self.cache.get(digest)
    }

    pub(crate) fn insert(&self, digest: Digest, verified: Verified) {
        if !verified.ttl.is_zero() {
            self.cache.insert(digest, Arc::new(verified));
        }
    }

    pub(crate) fn remove(&self, digest: &Digest) {
        self.cache.invalidate(digest);
    }
}
