//! Tokens already decided, so a repeated token costs a digest and a lookup: the JWT
//! mechanism's verified tokens and introspection's answers.
//!
//! Keyed by a SHA-256 the user computes: introspection's of the whole token, the JWT
//! mechanism's of the token's signature segment, with the signing input kept in the entry
//! and compared on every hit. No credential is kept. Users check validity on every hit
//! with the injected clock (the JWT mechanism `exp` and that the key that verified the
//! token is still in its key set; introspection the answer's lifetime).
//!
//! Not moka: every cold token is inserted here, and a moka insert
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
};

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

type Shard<V> = HashMap<Digest, Arc<V>, BuildHasherDefault<DigestHasher>>;

/// A bounded cache of decided tokens.
pub(crate) struct TokenCache<V> {
    shards: [Mutex<Shard<V>>; SHARDS],
    per_shard: usize,
}

impl<V> std::fmt::Debug for TokenCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.len())
            .field("capacity", &(self.per_shard * SHARDS))
            .finish()
    }
}

impl<V> TokenCache<V> {
    pub(crate) fn new(capacity: u64) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
        Self {
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, digest: &Digest) -> std::sync::MutexGuard<'_, Shard<V>> {
        // The last byte picks the shard; the hasher reads the first eight.
        let i = usize::from(digest[31]) % SHARDS;
        let shard = self.shards.get(i).unwrap_or(&self.shards[0]);
        // A panic while holding the lock leaves a map that is still consistent.
        shard.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, digest: &Digest) -> Option<Arc<V>> {
        self.shard(digest).get(digest).cloned()
    }

    pub(crate) fn insert(&self, digest: Digest, value: V) {
        let mut shard = self.shard(&digest);
        if shard.len() >= self.per_shard
            && !shard.contains_key(&digest)
            && let Some(victim) = shard.keys().next().copied()
        {
            shard.remove(&victim);
        }
        shard.insert(digest, Arc::new(value));
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
    use crate::mechanism::token::digest;

    #[test]
    fn remembers_forgets_and_stays_bounded() {
        let cache = TokenCache::new(64);
        let first = digest("token-0");
        cache.insert(first, 0_u32);
        assert!(cache.get(&first).is_some());
        cache.remove(&first);
        assert!(cache.get(&first).is_none());

        for i in 0..10_000 {
            cache.insert(digest(&format!("token-{i}")), i);
        }
        assert!(cache.len() <= 64, "{} entries", cache.len());
        assert!(cache.len() >= 48, "{} entries", cache.len());
        // The newest entry is always kept.
        assert_eq!(cache.get(&digest("token-9999")).as_deref(), Some(&9_999));
    }
}
