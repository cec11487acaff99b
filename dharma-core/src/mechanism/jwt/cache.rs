//! Tokens already verified, so a repeated token costs a digest and a lookup.
//!
//! Keyed by the SHA-256 of the token (the token itself is not kept). `exp` is checked on
//! every hit with the injected clock (an expired entry is removed then), and a hit is
//! refused when the key that verified it has left its key set.
//!
//! Not moka, unlike the other caches: every cold token is inserted here, and a moka insert
//! (about 1.6 µs with a full cache on the bench machine, admission and housekeeping
//! included) is 7% of an RS256 signature check; see `benches/REPORT.md`. This cache is a
//! fixed number of mutex-guarded shards with a bound per shard; a full shard drops an
//! arbitrary entry (digests are uniformly spread, so the first one found is a random
//! one). Only tokens with a valid signature get in, so the keys are not the caller's
//! choice.

use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::mechanism::Authenticated;

/// What is remembered of a verified token.
#[derive(Debug)]
pub(crate) struct Verified {
    pub(crate) authenticated: Authenticated,
    pub(crate) exp: u64,
    pub(crate) store: usize,
    pub(crate) thumbprint: [u8; 32],
    /// How long the token has left (until `exp`, measured when verified); a token with
    /// none is not remembered.
    pub(crate) ttl: Duration,
}

pub(crate) type Digest = [u8; 32];

const SHARDS: usize = 16;

/// Hashes a digest by taking eight of its bytes: SHA-256 output is already uniform.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (8 * i);
        }
    }
}

type Shard = HashMap<Digest, Arc<Verified>, BuildHasherDefault<DigestHasher>>;

/// A bounded cache of verified tokens.
pub(crate) struct TokenCache {
    shards: [Mutex<Shard>; SHARDS],
    per_shard: usize,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.len())
            .field("capacity", &(self.per_shard * SHARDS))
            .finish()
    }
}

impl TokenCache {
    pub(crate) fn new(capacity: u64) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
        Self {
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, digest: &Digest) -> std::sync::MutexGuard<'_, Shard> {
        // The last byte picks the shard; the hasher reads the first eight.
        let i = usize::from(digest[31]) % SHARDS;
        let shard = self.shards.get(i).unwrap_or(&self.shards[0]);
        // A panic while holding the lock leaves a map that is still consistent.
        shard.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, digest: &Digest) -> Option<Arc<Verified>> {
        self.shard(digest).get(digest).cloned()
    }

    pub(crate) fn insert(&self, digest: Digest, verified: Verified) {
        if verified.ttl.is_zero() {
            return;
        }
        let mut shard = self.shard(&digest);
        if shard.len() >= self.per_shard
            && !shard.contains_key(&digest)
            && let Some(victim) = shard.keys().next().copied()
        {
            shard.remove(&victim);
        }
        shard.insert(digest, Arc::new(verified));
    }

    pub(crate) fn remove(&self, digest: &Digest) {
        self.shard(digest).remove(digest);
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(ttl: u64) -> Verified {
        Verified {
            authenticated: Authenticated::new(Vec::new()),
            exp: 0,
            store: 0,
            thumbprint: [0; 32],
            ttl: Duration::from_secs(ttl),
        }
    }

    #[test]
    fn remembers_forgets_and_stays_bounded() {
        let cache = TokenCache::new(64);
        let first = crate::mechanism::token::digest("token-0");
        cache.insert(first, verified(60));
        assert!(cache.get(&first).is_some());
        cache.remove(&first);
        assert!(cache.get(&first).is_none());

        // A token with no time left is not remembered.
        let late = crate::mechanism::token::digest("late");
        cache.insert(late, verified(0));
        assert!(cache.get(&late).is_none());

        for i in 0..10_000 {
            cache.insert(
                crate::mechanism::token::digest(&format!("token-{i}")),
                verified(60),
            );
        }
        assert!(cache.len() <= 64, "{} entries", cache.len());
        assert!(cache.len() >= 48, "{} entries", cache.len());
        // The newest entry is always kept.
        assert!(
            cache
                .get(&crate::mechanism::token::digest("token-9999"))
                .is_some()
        );
    }
}
