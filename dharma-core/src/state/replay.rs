//! One-time use of tokens.

use std::{
    collections::HashMap,
    fmt::Debug,
    hash::{BuildHasher, RandomState},
    sync::Mutex,
    time::SystemTime,
};

use super::{StoreError, TokenFacts};
use crate::util::BoxFuture;

/// Remembers which tokens were used, so that a one-time token is admitted once.
pub trait ReplayGuard: Send + Sync + Debug {
    /// Records a use of `token` at `now`, remembered until `until`: `Ok(true)` the first
    /// time, `Ok(false)` if it was used before (a replay). Must be atomic: of two
    /// concurrent first uses, exactly one gets `true`.
    fn first_use<'a>(
        &'a self,
        token: &'a TokenFacts<'a>,
        now: SystemTime,
        until: SystemTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
}

const SHARDS: usize = 16;

type Shard = HashMap<(Box<str>, Box<str>), SystemTime>;

/// A [`ReplayGuard`] in memory, for one instance: bounded, and forgetting a token once it
/// has expired. When full of unexpired tokens it refuses to forget one to make room
/// ([`StoreError::Full`]), and the endpoint's fail mode decides.
#[derive(Debug)]
pub struct MemoryReplayGuard {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    per_shard: usize,
}

impl Default for MemoryReplayGuard {
    /// Room for 1,000,000 tokens.
    fn default() -> Self {
        Self::with_capacity(1_000_000)
    }
}

impl MemoryReplayGuard {
    /// A guard with room for about `tokens` unexpired tokens.
    pub fn with_capacity(tokens: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            per_shard: tokens.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, token: &TokenFacts<'_>) -> Option<std::sync::MutexGuard<'_, Shard>> {
        let index = self.hasher.hash_one((token.issuer, token.token_id)) as usize % SHARDS;
        let shard = self.shards.get(index)?;
        Some(shard.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether every shard holds as many tokens as it may (expired ones included, until a
    /// first use that finds its shard full sweeps them).
    pub fn is_full(&self) -> bool {
        self.shards
            .iter()
            .all(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len() >= self.per_shard)
    }

    /// Forgets a use of `token` (a local guard in front of a shared one forgets what the
    /// shared one could not confirm).
    pub fn forget(&self, token: &TokenFacts<'_>) {
        if let Some(mut shard) = self.shard(token) {
            shard.remove(&(Box::from(token.issuer), Box::from(token.token_id)));
        }
    }

    /// Records a use of `token` at once (the guard is in memory); see
    /// [`ReplayGuard::first_use`].
    pub fn record(
        &self,
        token: &TokenFacts<'_>,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<bool, StoreError> {
        let Some(mut shard) = self.shard(token) else {
            return Err(StoreError::Unavailable("no shard".into()));
        };
        let key = (Box::from(token.issuer), Box::from(token.token_id));
        if let Some(expires) = shard.get(&key)
            && *expires > now
        {
            return Ok(false);
        }
        if shard.len() >= self.per_shard {
            shard.retain(|_, expires| *expires > now);
            if shard.len() >= self.per_shard {
                return Err(StoreError::Full);
            }
        }
        shard.insert(key, until);
        Ok(true)
    }
}

impl ReplayGuard for MemoryReplayGuard {
    fn first_use<'a>(
        &'a self,
        token: &'a TokenFacts<'a>,
        now: SystemTime,
        until: SystemTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let result = self.record(token, now, until);
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn token(id: &str) -> TokenFacts<'_> {
        TokenFacts {
            issuer: "https://idp",
            token_id: id,
            subject: "alice",
            client: None,
            issued_at: None,
            expires_at: None,
        }
    }

    fn now(guard: &MemoryReplayGuard, id: &str, at: u64, until: u64) -> Result<bool, StoreError> {
        let t = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        guard.record(&token(id), t(at), t(until))
    }

    #[test]
    fn a_token_is_fresh_once_until_it_expires() {
        let guard = MemoryReplayGuard::default();
        assert!(now(&guard, "a", 100, 200).unwrap());
        assert!(!now(&guard, "a", 150, 200).unwrap());
        assert!(now(&guard, "b", 150, 200).unwrap(), "another token");
        // Once expired it is forgotten (the verifier refuses it by then anyway).
        assert!(now(&guard, "a", 200, 300).unwrap());
    }

    #[test]
    fn full_of_unexpired_tokens_it_refuses_rather_than_forgets() {
        let guard = MemoryReplayGuard::with_capacity(SHARDS);
        let mut full = 0;
        for n in 0..200 {
            match now(&guard, &n.to_string(), 100, 200) {
                Ok(fresh) => assert!(fresh),
                Err(StoreError::Full) => full += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(full > 0);
        // What it holds it still knows.
        assert!(!now(&guard, "0", 150, 200).unwrap_or(false) || full == 200);
        // Expired tokens make room.
        assert!(now(&guard, "new", 250, 300).unwrap());
    }
}
