//! Revocation by token id, subject or client.

use std::{
    collections::HashMap,
    fmt::Debug,
    sync::{
        RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::{StoreError, TokenFacts};
use crate::util::BoxFuture;

/// What to revoke. Tokens are named by their issuer and then their `jti` (or digest),
/// their subject, or the client they were issued to. Revoking a subject or a client
/// refuses every token of theirs issued up to the revocation (by `iat`; a token without
/// `iat` counts as issued before); later tokens are admitted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Revocation {
    /// One token.
    Token {
        /// Its issuer.
        issuer: String,
        /// Its `jti` (or digest).
        token_id: String,
    },
    /// Every token of a subject issued so far.
    Subject {
        /// The issuer.
        issuer: String,
        /// The subject (`sub`).
        subject: String,
    },
    /// Every token issued to a client so far.
    Client {
        /// The issuer.
        issuer: String,
        /// The client (`client_id` or `azp`).
        client: String,
    },
}

impl Revocation {
    /// `token`, `subject` or `client`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Token { .. } => "token",
            Self::Subject { .. } => "subject",
            Self::Client { .. } => "client",
        }
    }
    /// A revocation from its [`kind`](Self::kind), issuer and value (the token id,
    /// subject or client); `None` for an unknown kind.
    pub fn from_parts(kind: &str, issuer: &str, value: &str) -> Option<Self> {
        let (issuer, value) = (issuer.to_owned(), value.to_owned());
        match kind {
            "token" => Some(Self::Token {
                issuer,
                token_id: value,
            }),
            "subject" => Some(Self::Subject {
                issuer,
                subject: value,
            }),
            "client" => Some(Self::Client {
                issuer,
                client: value,
            }),
            _ => None,
        }
    }
    /// The issuer of the tokens it concerns.
    pub fn issuer(&self) -> &str {
        self.slot().1
    }
    /// The token id, subject or client it names.
    pub fn value(&self) -> &str {
        self.slot().2
    }
    fn slot(&self) -> (usize, &str, &str) {
        match self {
            Self::Token { issuer, token_id } => (0, issuer, token_id),
            Self::Subject { issuer, subject } => (1, issuer, subject),
            Self::Client { issuer, client } => (2, issuer, client),
        }
    }
}

/// Knows which tokens are revoked. Checked on every request that a token admits, so
/// `is_revoked` answers from memory: a list shared between instances keeps a local copy
/// and says [`StoreError::Stale`] when the copy is older than it may be.
pub trait RevocationList: Send + Sync + Debug {
    /// Whether `token` is revoked at `now`.
    fn is_revoked(&self, token: &TokenFacts<'_>, now: SystemTime) -> Result<bool, StoreError>;

    /// Revokes, at `now`, for `keep_for` (at least the longest lifetime of a token it may
    /// concern: afterwards every such token has expired).
    fn revoke<'a>(
        &'a self,
        revocation: &'a Revocation,
        now: SystemTime,
        keep_for: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Seconds since the epoch.
    revoked_at: u64,
    until: SystemTime,
}

/// Per kind (token, subject, client): issuer → value → entry, so that a lookup borrows.
type Table = [HashMap<Box<str>, HashMap<Box<str>, Entry>>; 3];

/// A [`RevocationList`] in memory, for one instance: bounded (a revocation that finds it
/// full of unexpired entries fails with [`StoreError::Full`] rather than forget one), and
/// forgetting each entry once it has expired. Lookups in an empty list cost one atomic load.
#[derive(Debug)]
pub struct MemoryRevocations {
    table: RwLock<Table>,
    len: AtomicUsize,
    capacity: usize,
}

impl Default for MemoryRevocations {
    /// Room for 100,000 revocations.
    fn default() -> Self {
        Self::with_capacity(100_000)
    }
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl MemoryRevocations {
    /// A list with room for `revocations` unexpired entries.
    pub fn with_capacity(revocations: usize) -> Self {
        Self {
            table: RwLock::new(Default::default()),
            len: AtomicUsize::new(0),
            capacity: revocations,
        }
    }

    /// Revokes at once (the list is in memory); see [`RevocationList::revoke`].
    pub fn insert(
        &self,
        revocation: &Revocation,
        now: SystemTime,
        keep_for: Duration,
    ) -> Result<(), StoreError> {
        let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
        let mut len = self.len.load(Ordering::Relaxed);
        if len >= self.capacity {
            for kind in table.iter_mut() {
                for values in kind.values_mut() {
                    values.retain(|_, e| e.until > now);
                }
                kind.retain(|_, values| !values.is_empty());
            }
            len = table
                .iter()
                .flat_map(|k| k.values())
                .map(HashMap::len)
                .sum();
            self.len.store(len, Ordering::Relaxed);
            if len >= self.capacity {
                return Err(StoreError::Full);
            }
        }
        let (slot, issuer, value) = revocation.slot();
        let Some(kind) = table.get_mut(slot) else {
            return Err(StoreError::Unavailable("no such kind".into()));
        };
        let entry = Entry {
            revoked_at: seconds(now),
            until: now + keep_for,
        };
        let previous = kind
            .entry(issuer.into())
            .or_default()
            .insert(value.into(), entry);
        if previous.is_none() {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn find(
        table: &Table,
        slot: usize,
        issuer: &str,
        value: &str,
        now: SystemTime,
    ) -> Option<Entry> {
        table
            .get(slot)?
            .get(issuer)?
            .get(value)
            .filter(|e| e.until > now)
            .copied()
    }
}

impl RevocationList for MemoryRevocations {
    fn is_revoked(&self, token: &TokenFacts<'_>, now: SystemTime) -> Result<bool, StoreError> {
        if self.len.load(Ordering::Relaxed) == 0 {
            return Ok(false);
        }
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        if Self::find(&table, 0, token.issuer, token.token_id, now).is_some() {
            return Ok(true);
        }
        // A subject's or client's tokens issued up to the revocation (by `iat`).
        let before = |e: Entry| token.issued_at.is_none_or(|iat| iat <= e.revoked_at);
        let subject = Self::find(&table, 1, token.issuer, token.subject, now);
        let client = token
            .client
            .and_then(|c| Self::find(&table, 2, token.issuer, c, now));
        Ok(subject.is_some_and(before) || client.is_some_and(before))
    }

    fn revoke<'a>(
        &'a self,
        revocation: &'a Revocation,
        now: SystemTime,
        keep_for: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(std::future::ready(self.insert(revocation, now, keep_for)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    fn token<'a>(
        id: &'a str,
        sub: &'a str,
        client: Option<&'a str>,
        iat: Option<u64>,
    ) -> TokenFacts<'a> {
        TokenFacts {
            issuer: "https://idp",
            token_id: id,
            subject: sub,
            client,
            issued_at: iat,
            expires_at: None,
        }
    }

    fn revoke(list: &MemoryRevocations, r: Revocation, now: u64) {
        list.insert(&r, at(now), HOUR).unwrap();
    }

    #[test]
    fn by_token_id_subject_and_client() {
        let list = MemoryRevocations::default();
        let t = token("j1", "alice", Some("app"), Some(1000));
        assert!(!list.is_revoked(&t, at(1001)).unwrap());
        revoke(
            &list,
            Revocation::Token {
                issuer: "https://idp".into(),
                token_id: "j1".into(),
            },
            1001,
        );
        assert!(list.is_revoked(&t, at(1002)).unwrap());
        assert!(
            !list
                .is_revoked(&token("j2", "alice", Some("app"), Some(1000)), at(1002))
                .unwrap()
        );

        revoke(
            &list,
            Revocation::Subject {
                issuer: "https://idp".into(),
                subject: "bob".into(),
            },
            2000,
        );
        assert!(
            list.is_revoked(&token("j3", "bob", None, Some(1999)), at(2001))
                .unwrap()
        );
        assert!(
            list.is_revoked(&token("j4", "bob", None, None), at(2001))
                .unwrap(),
            "no iat: issued before"
        );
        assert!(
            !list
                .is_revoked(&token("j5", "bob", None, Some(2001)), at(2002))
                .unwrap(),
            "issued after"
        );

        revoke(
            &list,
            Revocation::Client {
                issuer: "https://idp".into(),
                client: "rogue".into(),
            },
            3000,
        );
        assert!(
            list.is_revoked(&token("j6", "carol", Some("rogue"), Some(2999)), at(3001))
                .unwrap()
        );
        assert!(
            !list
                .is_revoked(&token("j7", "carol", Some("good"), Some(2999)), at(3001))
                .unwrap()
        );
    }

    #[test]
    fn revocations_are_scoped_by_issuer_and_expire() {
        let list = MemoryRevocations::default();
        revoke(
            &list,
            Revocation::Subject {
                issuer: "https://other".into(),
                subject: "alice".into(),
            },
            100,
        );
        assert!(
            !list
                .is_revoked(&token("j", "alice", None, Some(50)), at(101))
                .unwrap()
        );
        revoke(
            &list,
            Revocation::Subject {
                issuer: "https://idp".into(),
                subject: "alice".into(),
            },
            100,
        );
        assert!(
            list.is_revoked(&token("j", "alice", None, Some(50)), at(101))
                .unwrap()
        );
        assert!(
            !list
                .is_revoked(&token("j", "alice", None, Some(50)), at(100 + 3600))
                .unwrap()
        );
    }

    #[test]
    fn full_it_refuses_until_entries_expire() {
        let list = MemoryRevocations::with_capacity(2);
        for n in 0..2 {
            revoke(
                &list,
                Revocation::Token {
                    issuer: "i".into(),
                    token_id: n.to_string(),
                },
                0,
            );
        }
        let third = Revocation::Token {
            issuer: "i".into(),
            token_id: "2".into(),
        };
        assert!(matches!(
            list.insert(&third, at(10), HOUR),
            Err(StoreError::Full)
        ));
        assert!(
            list.insert(&third, at(3600), HOUR).is_ok(),
            "the first two expired"
        );
    }
}
