//! Tokens already decided, so a repeated token costs a digest and a lookup: the JWT
//! mechanism's verified tokens and introspection's answers.
//!
//! Keyed by a digest the user computes: introspection's is the SHA-256 of the whole token;
//! the JWT mechanism's is a [`KeyedHash`] of the token's signature segment, with the
//! signing input kept in the entry and compared on every hit. No credential is kept.
//! Users check validity on every hit with the injected clock (the JWT mechanism `exp` and
//! that the key that verified the token is still in its key set; introspection the
//! answer's lifetime).
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

const SHARDS: usize = 16;

/// SipHash-1-3 with 128 bits of output under a random key drawn for one cache: names a
/// token's signature segment at a quarter of a SHA-256's cost.
///
/// A hit must also present the signing input the entry keeps, so what this hash has to
/// tell apart is two signature segments over the same header and payload. The key never
/// leaves the process and the hash is a pseudorandom function of it: to have a changed
/// signature taken for a cached one, a caller would have to guess 128 unknown bits, and
/// would gain nothing it does not already hold (the token that was verified).
pub(crate) struct KeyedHash {
    k0: u64,
    k1: u64,
}

impl KeyedHash {
    /// A hash under a key from the system's random source.
    pub(crate) fn random() -> Result<Self, ring::error::Unspecified> {
        let rng = ring::rand::SystemRandom::new();
        let key: [u8; 16] = ring::rand::generate(&rng)?.expose();
        let (k0, k1) = key.split_at(8);
        let half = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
        Ok(Self {
            k0: half(k0),
            k1: half(k1),
        })
    }

    pub(crate) fn of(&self, bytes: &[u8]) -> [u8; 16] {
        let mut h = siphasher::sip128::SipHasher13::new_with_keys(self.k0, self.k1);
        h.write(bytes);
        siphasher::sip128::Hasher128::finish128(&h).as_bytes()
    }
}

/// Hashes a digest by taking eight of its bytes: the digests are already uniform.
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

type Shard<V, const N: usize> = HashMap<[u8; N], Arc<V>, BuildHasherDefault<DigestHasher>>;

/// A bounded cache of decided tokens, keyed by `N`-byte digests.
pub(crate) struct TokenCache<V, const N: usize = 32> {
    shards: [Mutex<Shard<V, N>>; SHARDS],
    per_shard: usize,
}

impl<V, const N: usize> std::fmt::Debug for TokenCache<V, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.len())
            .field("capacity", &(self.per_shard * SHARDS))
            .finish()
    }
}

impl<V, const N: usize> TokenCache<V, N> {
    pub(crate) fn new(capacity: u64) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
        Self {
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, digest: &[u8; N]) -> std::sync::MutexGuard<'_, Shard<V, N>> {
        // The last byte picks the shard; the hasher reads the first eight.
        let i = usize::from(digest.last().copied().unwrap_or_default()) % SHARDS;
        let shard = self.shards.get(i).unwrap_or(&self.shards[0]);
        // A panic while holding the lock leaves a map that is still consistent.
        shard.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, digest: &[u8; N]) -> Option<Arc<V>> {
        self.shard(digest).get(digest).cloned()
    }

    pub(crate) fn insert(&self, digest: [u8; N], value: V) {
        let mut shard = self.shard(&digest);
        if shard.len() >= self.per_shard
            && !shard.contains_key(&digest)
            && let Some(victim) = shard.keys().next().copied()
        {
            shard.remove(&victim);
        }
        shard.insert(digest, Arc::new(value));
    }

    pub(crate) fn remove(&self, digest: &[u8; N]) {
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

    #[test]
    fn a_keyed_hash_depends_on_every_byte_and_on_its_key() {
        let hash = KeyedHash::random().unwrap();
        let segment = b"c2lnbmF0dXJlLXNlZ21lbnQtb2YtYS10b2tlbg";
        let named = hash.of(segment);
        assert_eq!(hash.of(segment), named);
        for i in 0..segment.len() {
            let mut changed = *segment;
            changed[i] ^= 1;
            assert_ne!(hash.of(&changed), named, "byte {i} ignored");
        }
        assert_ne!(hash.of(&segment[..segment.len() - 1]), named);
        assert_ne!(KeyedHash::random().unwrap().of(segment), named);
    }
}
