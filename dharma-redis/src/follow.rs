//! The follower: reads the revocation stream into the local copy, from the first entry
//! kept, then blocking for new ones; reconnects when Redis goes away.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use dharma_core::state::{MemoryRevocations, Revocation, StoreError};
use redis::{AsyncConnectionConfig, aio::MultiplexedConnection, streams::StreamReadReply};

use crate::RedisStateError;

/// Entries read at a time.
const BATCH: usize = 1000;
/// How long a read waits for new entries; the follower reports it heard from Redis at least
/// this often.
const BLOCK_MS: u64 = 1000;
/// How long the first read may take.
const FIRST_READ: Duration = Duration::from_secs(10);

/// What the state and its follower share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) mirror: MemoryRevocations,
    /// When the follower last read from Redis.
    heard: Mutex<Instant>,
    /// A revocation did not fit the local copy: checks fail until restart.
    broken: AtomicBool,
}

impl Shared {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            mirror: MemoryRevocations::with_capacity(capacity),
            heard: Mutex::new(Instant::now()),
            broken: AtomicBool::new(false),
        }
    }

    fn heard_now(&self) {
        *self.heard.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// Fails when the copy may miss revocations.
    pub(crate) fn check(&self, max_staleness: Duration) -> Result<(), StoreError> {
        if self.broken.load(Ordering::Relaxed) {
            return Err(StoreError::Full);
        }
        let age = self
            .heard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed();
        if age > max_staleness {
            return Err(StoreError::Stale(age));
        }
        Ok(())
    }

    /// Applies what a read returned; returns how many entries it held.
    fn apply(&self, reply: Option<StreamReadReply>, last: &mut String) -> usize {
        let mut count = 0;
        for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            count += 1;
            last.clone_from(&entry.id);
            let field = |name| entry.get::<String>(name);
            let millis = |name| entry.get::<u64>(name);
            let parsed = field("kind")
                .zip(field("issuer"))
                .zip(field("value"))
                .and_then(|((k, i), v)| Revocation::from_parts(&k, &i, &v))
                .zip(millis("at").zip(millis("until")));
            let Some((revocation, (at, until))) = parsed else {
                tracing::warn!(target: "dharma::redis", id = %entry.id, "skipping a malformed revocation entry");
                continue;
            };
            let at_time = UNIX_EPOCH + Duration::from_millis(at);
            if UNIX_EPOCH + Duration::from_millis(until) <= SystemTime::now() {
                continue;
            }
            let keep_for = Duration::from_millis(until.saturating_sub(at));
            if let Err(e) = self.mirror.insert(&revocation, at_time, keep_for) {
                tracing::error!(target: "dharma::redis", error = %e, "a revocation does not fit the local copy; revocation checks fail from now on");
                self.broken.store(true, Ordering::Relaxed);
            }
        }
        count
    }
}

/// The follower task; stops when dropped.
#[derive(Debug)]
pub(crate) struct Follower(tokio::task::JoinHandle<()>);

impl Drop for Follower {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(
            Duration::from_millis(BLOCK_MS) + Duration::from_secs(2),
        ))
}

async fn read(
    conn: &mut MultiplexedConnection,
    stream: &str,
    last: &str,
    block: bool,
) -> redis::RedisResult<Option<StreamReadReply>> {
    let mut cmd = redis::cmd("XREAD");
    cmd.arg("COUNT").arg(BATCH);
    if block {
        cmd.arg("BLOCK").arg(BLOCK_MS);
    }
    cmd.arg("STREAMS").arg(stream).arg(last);
    cmd.query_async(conn).await
}

/// Reads every revocation kept, then follows the stream in a task of its own.
pub(crate) async fn start(
    client: redis::Client,
    stream: String,
    shared: std::sync::Arc<Shared>,
) -> Result<Follower, RedisStateError> {
    let first = async {
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config())
            .await?;
        let mut last = "0-0".to_owned();
        while shared.apply(read(&mut conn, &stream, &last, false).await?, &mut last) == BATCH {}
        Ok::<_, redis::RedisError>((conn, last))
    };
    let (mut conn, mut last) = tokio::time::timeout(FIRST_READ, first)
        .await
        .map_err(|_| RedisStateError::Timeout(FIRST_READ))?
        .map_err(RedisStateError::Connect)?;
    shared.heard_now();
    let task = tokio::spawn(async move {
        let mut failing = false;
        loop {
            match read(&mut conn, &stream, &last, true).await {
                Ok(reply) => {
                    shared.apply(reply, &mut last);
                    shared.heard_now();
                    if std::mem::take(&mut failing) {
                        tracing::info!(target: "dharma::redis", "following the revocations again");
                    }
                }
                Err(e) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::error!(target: "dharma::redis", error = %e, "cannot read the revocations; reconnecting");
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if let Ok(c) = client
                        .get_multiplexed_async_connection_with_config(&config())
                        .await
                    {
                        conn = c;
                    }
                }
            }
        }
    });
    Ok(Follower(task))
}
