//! JSON lines to a file, written by a thread of its own behind a bounded queue.

mod flat;
#[cfg(test)]
mod tests;
mod writer;

use std::{
    fmt, io,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc::{self, Receiver, SyncSender, TrySendError},
    },
    thread::JoinHandle,
    time::Duration,
};

use super::{AuditEvent, AuditSink, AuditUnavailable, Outcome, PolicyEvent, TokenEvent};

/// What a [`JsonLinesSink`] does with an event when its queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Drop the event and count it; a `gap` event with the count is written as soon as
    /// the writer has caught up. No request ever waits on the disk. The default.
    #[default]
    Drop,
    /// Wait for room in the queue: no event is lost, and requests wait while the disk is
    /// slow.
    Block,
    /// Refuse requests (`503`, reason `audit_unavailable`) while the queue is full or the
    /// file cannot be written: nothing is admitted unrecorded. Denials and other events
    /// that find no room are dropped and counted as with [`Drop`](Self::Drop).
    Deny,
}

/// What a [`JsonLinesSink`] has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct AuditStats {
    /// Events written to the file (gap events included).
    pub written: u64,
    /// Events lost: no room in the queue, or the file could not be written.
    pub dropped: u64,
}

/// Why a [`JsonLinesSink`] cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileSinkError {
    /// The file cannot be opened for appending.
    #[error("cannot open the audit file {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The writer thread cannot be started.
    #[error("cannot start the audit writer: {0}")]
    Thread(io::Error),
    /// A setting is out of range.
    #[error("invalid audit sink setting: {0}")]
    Invalid(&'static str),
}

/// Counters shared by the sink and its writer.
#[derive(Debug, Default)]
struct Shared {
    written: AtomicU64,
    /// Lost since the last gap event.
    dropped: AtomicU64,
    /// Lost in all.
    dropped_total: AtomicU64,
    /// The last write failed; cleared by the next one that succeeds.
    failing: AtomicBool,
}

impl Shared {
    fn drop_one(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.dropped_total.fetch_add(1, Ordering::Relaxed);
    }
}

#[expect(
    clippy::large_enum_variant,
    reason = "the queue's slots hold decisions inline, so that nothing crosses to the writer on the heap"
)]
enum Message {
    /// A decision, copied ([`flat`] says why).
    Flat(flat::FlatDecision),
    /// A decision too long to copy.
    Decision(Box<AuditEvent>),
    Policy(PolicyEvent),
    Token(TokenEvent),
    Flush(SyncSender<io::Result<()>>),
    Close,
}

/// Writes audit events as JSON lines ([schema](super::json)) to a file.
///
/// The enforcer hands each decision over ([`AuditSink::try_record`]); the sink copies its
/// text into a slot of a bounded queue and returns, and a thread of the sink's own
/// serializes and writes it, so no request waits on the disk (unless [`Overflow::Block`]
/// is chosen). Nothing the request allocated is freed by that thread, so the deciding
/// threads' allocator and shared names stay on their own cores. The file
/// is appended to, flushed whenever the queue runs empty, and rotated by size or age
/// (`audit.jsonl` → `audit.jsonl.1` → ...). Drop the sink (or call
/// [`flush`](Self::flush)) to have everything written.
///
/// ```
/// use std::sync::Arc;
/// use dharma_core::audit::{JsonLinesSink, Overflow};
///
/// let dir = std::env::temp_dir().join(format!("dharma-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let sink = JsonLinesSink::builder(dir.join("audit.jsonl"))
///     .capacity(8192)
///     .overflow(Overflow::Drop)
///     .rotate_at_bytes(64 << 20)
///     .keep(5)
///     .build()?;
/// let sink = Arc::new(sink);
/// // Enforcer::builder(topology).audit(sink.clone()) ...
/// sink.flush()?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JsonLinesSink {
    queue: SyncSender<Message>,
    shared: Arc<Shared>,
    overflow: Overflow,
    path: PathBuf,
    writer: Mutex<Option<JoinHandle<()>>>,
    #[cfg(test)]
    paused: Mutex<Option<(writer::Writer, Receiver<Message>)>>,
}

fn spawn(
    writer: writer::Writer,
    queue: Receiver<Message>,
) -> Result<JoinHandle<()>, FileSinkError> {
    std::thread::Builder::new()
        .name("dharma-audit".into())
        .spawn(move || writer.run(&queue))
        .map_err(FileSinkError::Thread)
}

impl fmt::Debug for JsonLinesSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesSink")
            .field("path", &self.path)
            .field("overflow", &self.overflow)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Configures a [`JsonLinesSink`].
#[derive(Debug)]
#[must_use]
pub struct JsonLinesSinkBuilder {
    path: PathBuf,
    capacity: usize,
    overflow: Overflow,
    rotate_bytes: Option<u64>,
    rotate_every: Option<Duration>,
    keep: usize,
    #[cfg(test)]
    paused: bool,
}

impl JsonLinesSink {
    /// Starts configuring a sink that appends to `path`.
    pub fn builder(path: impl Into<PathBuf>) -> JsonLinesSinkBuilder {
        JsonLinesSinkBuilder {
            path: path.into(),
            capacity: 8192,
            overflow: Overflow::Drop,
            rotate_bytes: None,
            rotate_every: None,
            keep: 5,
            #[cfg(test)]
            paused: false,
        }
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the sink has written and lost so far.
    pub fn stats(&self) -> AuditStats {
        AuditStats {
            written: self.shared.written.load(Ordering::Relaxed),
            dropped: self.shared.dropped_total.load(Ordering::Relaxed),
        }
    }

    /// Waits until every event recorded before the call is written and flushed to the
    /// operating system. Blocks: for shutdown and tests, not the request path.
    pub fn flush(&self) -> io::Result<()> {
        let (reply, done) = mpsc::sync_channel(1);
        self.queue
            .send(Message::Flush(reply))
            .map_err(|_| io::Error::other("the audit writer has stopped"))?;
        done.recv()
            .map_err(|_| io::Error::other("the audit writer has stopped"))?
    }

    /// Starts the writer of a sink built paused.
    #[cfg(test)]
    fn resume(&self) {
        let paused = self.paused.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((writer, receiver)) = paused {
            let handle = spawn(writer, receiver).ok();
            *self.writer.lock().unwrap_or_else(|p| p.into_inner()) = handle;
        }
    }

    fn send(&self, message: Message) -> Result<(), AuditUnavailable> {
        if self.overflow == Overflow::Block {
            return self.queue.send(message).map_err(|_| {
                self.shared.drop_one();
                AuditUnavailable::WriterFailed
            });
        }
        match self.queue.try_send(message) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.shared.drop_one();
                Err(match e {
                    TrySendError::Full(_) => AuditUnavailable::QueueFull,
                    TrySendError::Disconnected(_) => AuditUnavailable::WriterFailed,
                })
            }
        }
    }
}

/// Queues a decision as a copy when it fits; the event itself stays with the caller.
fn decision(event: &AuditEvent) -> Message {
    match flat::FlatDecision::new(event) {
        Some(flat) => Message::Flat(flat),
        None => Message::Decision(Box::new(event.clone())),
    }
}

impl AuditSink for JsonLinesSink {
    fn record(&self, event: &AuditEvent) {
        // A lost event is counted and reported by a gap event.
        let _ = self.send(decision(event));
    }

    fn try_record(&self, event: AuditEvent) -> Result<(), AuditUnavailable> {
        // Only an admission can be refused; a refusal is recorded if there is room.
        let strict = self.overflow == Overflow::Deny && event.outcome == Outcome::Allow;
        if strict && self.shared.failing.load(Ordering::Relaxed) {
            self.shared.drop_one();
            return Err(AuditUnavailable::WriterFailed);
        }
        let sent = self.send(decision(&event));
        if strict { sent } else { Ok(()) }
    }

    fn record_policy(&self, event: &PolicyEvent) {
        let _ = self.send(Message::Policy(event.clone()));
    }

    fn record_token(&self, event: &TokenEvent) {
        let _ = self.send(Message::Token(event.clone()));
    }
}

impl Drop for JsonLinesSink {
    fn drop(&mut self) {
        #[cfg(test)]
        self.resume();
        if self.queue.send(Message::Close).is_ok()
            && let Some(writer) = self
                .writer
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .take()
        {
            let _ = writer.join();
        }
    }
}

impl JsonLinesSinkBuilder {
    /// How many events may wait for the writer (default 8192). Each slot of the queue
    /// holds a decision inline, about 500 bytes, allocated when the sink is built.
    pub fn capacity(mut self, events: usize) -> Self {
        self.capacity = events;
        self
    }
    /// What to do when the queue is full (default [`Overflow::Drop`]).
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }
    /// Starts a new file before one would grow past `bytes`.
    pub fn rotate_at_bytes(mut self, bytes: u64) -> Self {
        self.rotate_bytes = Some(bytes);
        self
    }
    /// Starts a new file when the current one is older than `age` (counted from when the
    /// sink opened it).
    pub fn rotate_every(mut self, age: Duration) -> Self {
        self.rotate_every = Some(age);
        self
    }
    /// How many rotated files to keep (`path.1` newest to `path.N`; default 5).
    pub fn keep(mut self, files: usize) -> Self {
        self.keep = files;
        self
    }
    /// Leaves the writer stopped until [`JsonLinesSink::resume`], so a test fills the queue.
    #[cfg(test)]
    fn paused(mut self) -> Self {
        self.paused = true;
        self
    }

    /// Opens the file and starts the writer.
    pub fn build(self) -> Result<JsonLinesSink, FileSinkError> {
        if self.capacity == 0 {
            return Err(FileSinkError::Invalid("capacity must be at least 1"));
        }
        if self.keep == 0 && (self.rotate_bytes.is_some() || self.rotate_every.is_some()) {
            return Err(FileSinkError::Invalid("rotation must keep at least 1 file"));
        }
        if self.rotate_bytes == Some(0) || self.rotate_every == Some(Duration::ZERO) {
            return Err(FileSinkError::Invalid("rotation limits must be above zero"));
        }
        let shared = Arc::new(Shared::default());
        let writer = writer::Writer::open(writer::Settings {
            path: self.path.clone(),
            rotate_bytes: self.rotate_bytes,
            rotate_every: self.rotate_every,
            keep: self.keep,
            shared: shared.clone(),
        })
        .map_err(|source| FileSinkError::Open {
            path: self.path.clone(),
            source,
        })?;
        let (queue, receiver) = mpsc::sync_channel(self.capacity);
        #[cfg(test)]
        if self.paused {
            return Ok(JsonLinesSink {
                queue,
                shared,
                overflow: self.overflow,
                path: self.path,
                writer: Mutex::new(None),
                paused: Mutex::new(Some((writer, receiver))),
            });
        }
        Ok(JsonLinesSink {
            queue,
            shared,
            overflow: self.overflow,
            path: self.path,
            writer: Mutex::new(Some(spawn(writer, receiver)?)),
            #[cfg(test)]
            paused: Mutex::new(None),
        })
    }
}
