//! Replay and revocation state for dharma, shared between instances through Redis.
//!
//! One [`RedisTokenState`] per instance is both the enforcer's
//! [`ReplayGuard`] and its [`RevocationList`]:
//!
//! - **One-time use**: a token's first use is an atomic `SET key 1 NX PXAT exp` on a key
//!   scoped by issuer and hashed (`{prefix}:jti:` and the SHA-256 of issuer and token id),
//!   so of two instances racing on one token exactly one admits it. A local tier in front
//!   answers a replay this instance has already seen without asking Redis.
//! - **Revocation**: a revocation is appended to a Redis stream (`{prefix}:revocations`) and
//!   applied locally at once. Every instance follows the stream (a blocking `XREAD`) into a
//!   local copy, so checking a request costs no round trip; another instance enforces a
//!   revocation as soon as its reader wakes (milliseconds on a healthy network). A copy older
//!   than [`max_staleness`](RedisTokenStateBuilder::max_staleness) answers
//!   [`StoreError::Stale`].
//!
//! When Redis cannot be reached, each endpoint's [`FailMode`](dharma_core::state::FailMode)
//! decides: refuse (`503`, the default) or admit.
//!
//! ```no_run
//! use std::sync::Arc;
//! use dharma_redis::RedisTokenState;
//!
//! # async fn run(topology: dharma_core::model::Topology) -> Result<(), Box<dyn std::error::Error>> {
//! let state = Arc::new(RedisTokenState::builder("redis://127.0.0.1:6379/").connect().await?);
//! let enforcer = dharma_core::Enforcer::builder(topology)
//!     .replay_guard(state.clone())
//!     .revocations(state)
//!     .build()?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod follow;

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use dharma_core::{
    BoxFuture,
    state::{MemoryReplayGuard, ReplayGuard, Revocation, RevocationList, StoreError, TokenFacts},
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Why [`RedisTokenStateBuilder::connect`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisStateError {
    /// The URL is not a Redis URL.
    #[error("invalid Redis URL: {0}")]
    Url(redis::RedisError),
    /// Redis cannot be reached, or the revocations cannot be read.
    #[error("cannot reach Redis: {0}")]
    Connect(redis::RedisError),
    /// The first copy of the revocations was not read in time.
    #[error("the revocations were not read within {0:?}")]
    Timeout(Duration),
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Invalid(&'static str),
}

/// Configures a [`RedisTokenState`].
#[derive(Debug)]
#[must_use]
pub struct RedisTokenStateBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    max_staleness: Duration,
    retention: Duration,
    local_capacity: usize,
}

impl RedisTokenStateBuilder {
    /// The prefix of every key (default `dharma`): instances that share state share it.
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }
    /// How long a request waits for Redis (default 250 ms); then the store is unavailable.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// How old the local copy of the revocations may grow while Redis cannot be read
    /// (default 5 s); then revocation checks answer [`StoreError::Stale`].
    pub fn max_staleness(mut self, age: Duration) -> Self {
        self.max_staleness = age;
        self
    }
    /// How long revocations are kept in Redis (default 24 h): the longest `keep_for` a
    /// revocation may ask for, and how far back a starting instance reads.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }
    /// Room in the local tiers (default 100,000 tokens and revocations).
    pub fn local_capacity(mut self, entries: usize) -> Self {
        self.local_capacity = entries;
        self
    }

    /// Connects, reads every revocation kept, and starts following new ones. Needs a tokio
    /// runtime; the follower stops when the state is dropped.
    pub async fn connect(self) -> Result<RedisTokenState, RedisStateError> {
        if self.timeout.is_zero() || self.max_staleness < Duration::from_secs(2) {
            return Err(RedisStateError::Invalid(
                "the timeout must be above zero and max_staleness at least 2 s (the follower wakes every second)",
            ));
        }
        let client = redis::Client::open(self.url.as_str()).map_err(RedisStateError::Url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.timeout))
            .set_connection_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        let commands = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(RedisStateError::Connect)?;
        let shared = Arc::new(follow::Shared::new(self.local_capacity));
        let stream = format!("{}:revocations", self.prefix);
        let follower = follow::start(client, stream.clone(), shared.clone()).await?;
        Ok(RedisTokenState {
            commands,
            prefix: self.prefix,
            stream,
            timeout: self.timeout,
            max_staleness: self.max_staleness,
            retention: self.retention,
            seen: MemoryReplayGuard::with_capacity(self.local_capacity),
            shared,
            _follower: follower,
        })
    }
}

/// Replay and revocation state shared through Redis; see the [crate] documentation.
pub struct RedisTokenState {
    commands: ConnectionManager,
    prefix: String,
    stream: String,
    timeout: Duration,
    max_staleness: Duration,
    retention: Duration,
    /// Tokens this instance has seen used (the local tier of the replay guard).
    seen: MemoryReplayGuard,
    shared: Arc<follow::Shared>,
    _follower: follow::Follower,
}

impl fmt::Debug for RedisTokenState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTokenState")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("max_staleness", &self.max_staleness)
            .finish_non_exhaustive()
    }
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn unavailable(e: &redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

/// Lowercase hexadecimal.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

impl RedisTokenState {
    /// Starts configuring the state kept in the Redis at `url` (`redis://host:port/db`).
    pub fn builder(url: &str) -> RedisTokenStateBuilder {
        RedisTokenStateBuilder {
            url: url.to_owned(),
            prefix: "dharma".into(),
            timeout: Duration::from_millis(250),
            max_staleness: Duration::from_secs(5),
            retention: Duration::from_secs(24 * 3600),
            local_capacity: 100_000,
        }
    }

    /// The key of a token's use: scoped by issuer, hashed so that no token id reaches
    /// Redis and no id can shape a key.
    pub fn use_key(&self, token: &TokenFacts<'_>) -> String {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(token.issuer.as_bytes());
        ctx.update(&[0]);
        ctx.update(token.token_id.as_bytes());
        format!("{}:jti:{}", self.prefix, hex(ctx.finish().as_ref()))
    }

    async fn first_use_shared(
        &self,
        token: &TokenFacts<'_>,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<bool, StoreError> {
        // A replay this instance saw needs no round trip.
        let local = self.seen.record(token, now, until);
        if local == Ok(false) {
            return Ok(false);
        }
        let until = until.max(now + Duration::from_secs(1));
        let mut commands = self.commands.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.use_key(token))
            .arg(1)
            .arg("NX")
            .arg("PXAT")
            .arg(millis(until));
        let set = cmd.query_async::<Option<String>>(&mut commands);
        match tokio::time::timeout(self.timeout, set).await {
            Ok(Ok(answer)) => Ok(answer.is_some()),
            Ok(Err(e)) => {
                self.seen.forget(token);
                Err(unavailable(&e))
            }
            Err(_) => {
                self.seen.forget(token);
                Err(StoreError::Unavailable("redis: timed out".into()))
            }
        }
    }

    async fn revoke_shared(
        &self,
        revocation: &Revocation,
        now: SystemTime,
        keep_for: Duration,
    ) -> Result<(), StoreError> {
        if keep_for > self.retention {
            return Err(StoreError::Unavailable(format!(
                "a revocation kept for {keep_for:?} outlives the store's retention ({:?})",
                self.retention
            )));
        }
        let (issuer, value) = (revocation.issuer(), revocation.value());
        let oldest = millis(now).saturating_sub(millis(UNIX_EPOCH + self.retention));
        let mut commands = self.commands.clone();
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.stream)
            .arg("MINID")
            .arg("~")
            .arg(oldest)
            .arg("*")
            .arg("kind")
            .arg(revocation.kind())
            .arg("issuer")
            .arg(issuer)
            .arg("value")
            .arg(value)
            .arg("at")
            .arg(millis(now))
            .arg("until")
            .arg(millis(now + keep_for));
        let add = cmd.query_async::<String>(&mut commands);
        match tokio::time::timeout(self.timeout, add).await {
            Ok(Ok(_id)) => self.shared.mirror.insert(revocation, now, keep_for),
            Ok(Err(e)) => Err(unavailable(&e)),
            Err(_) => Err(StoreError::Unavailable("redis: timed out".into())),
        }
    }
}

impl ReplayGuard for RedisTokenState {
    fn first_use<'a>(
        &'a self,
        token: &'a TokenFacts<'a>,
        now: SystemTime,
        until: SystemTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.first_use_shared(token, now, until))
    }
}

impl RevocationList for RedisTokenState {
    fn is_revoked(&self, token: &TokenFacts<'_>, now: SystemTime) -> Result<bool, StoreError> {
        self.shared.check(self.max_staleness)?;
        self.shared.mirror.is_revoked(token, now)
    }

    fn revoke<'a>(
        &'a self,
        revocation: &'a Revocation,
        now: SystemTime,
        keep_for: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.revoke_shared(revocation, now, keep_for))
    }
}
