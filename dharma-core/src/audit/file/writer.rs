//! The writer thread: takes events off the queue, writes them as lines, rotates.

use std::{
    fs::{File, OpenOptions},
    io::{self, BufWriter, Write},
    path::PathBuf,
    sync::{
        Arc,
        atomic::Ordering,
        mpsc::{Receiver, TryRecvError},
    },
    time::{Duration, Instant, SystemTime},
};

use serde::Serialize;

use super::{Message, Shared};
use crate::audit::{AUDIT_TARGET, EventId, GapEvent};

/// The longest an idle writer sleeps between two looks at the queue (and at the clock, for
/// age rotation and retrying a failed file).
const IDLE: Duration = Duration::from_millis(20);
/// Events written between two flushes at most, when the queue never runs empty.
const BATCH: usize = 4096;

pub(super) struct Settings {
    pub(super) path: PathBuf,
    pub(super) rotate_bytes: Option<u64>,
    pub(super) rotate_every: Option<Duration>,
    pub(super) keep: usize,
    pub(super) shared: Arc<Shared>,
}

pub(super) struct Writer {
    settings: Settings,
    /// The open file, or none after a failure (reopened on the next write).
    file: Option<BufWriter<File>>,
    /// Bytes in the current file.
    size: u64,
    /// Lines written since the last successful flush.
    buffered: u64,
    opened: Instant,
    line: Vec<u8>,
}

fn open(path: &PathBuf) -> io::Result<(BufWriter<File>, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((BufWriter::with_capacity(64 * 1024, file), size))
}

impl Writer {
    pub(super) fn open(settings: Settings) -> io::Result<Self> {
        let (file, size) = open(&settings.path)?;
        Ok(Self {
            settings,
            file: Some(file),
            size,
            buffered: 0,
            opened: Instant::now(),
            line: Vec::with_capacity(1024),
        })
    }

    /// Polls the queue: a writer parked on the channel would have to be woken by a system
    /// call in every request that finds it idle, so it sleeps instead (1 ms, doubling up
    /// to [`IDLE`] while nothing comes) and takes what has queued meanwhile.
    pub(super) fn run(mut self, queue: &Receiver<Message>) {
        let mut idle = Duration::from_millis(1);
        loop {
            let mut taken = 0;
            while taken < BATCH {
                let message = match queue.try_recv() {
                    Ok(message) => message,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.catch_up();
                        let _ = self.flush();
                        return;
                    }
                };
                taken += 1;
                match message {
                    Message::Flat(e) => self.write_with(|line| e.write_json(line)),
                    Message::Decision(e) => self.write(&*e),
                    Message::Policy(e) => self.write(&e),
                    Message::Token(e) => self.write(&e),
                    Message::Flush(reply) => {
                        self.catch_up();
                        let _ = reply.send(self.flush());
                    }
                    Message::Close => {
                        self.catch_up();
                        let _ = self.flush();
                        return;
                    }
                }
            }
            self.catch_up();
            let _ = self.flush();
            if taken == 0 {
                if self.is_old() && self.size > 0 {
                    self.rotate();
                }
                std::thread::sleep(idle);
                idle = (idle * 2).min(IDLE);
            } else if taken < BATCH {
                idle = Duration::from_millis(1);
                std::thread::sleep(idle);
            }
        }
    }

    /// After a batch: reports lost events.
    fn catch_up(&mut self) {
        let dropped = self.settings.shared.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let gap = GapEvent {
                id: EventId::next(),
                at: SystemTime::now(),
                dropped,
            };
            if !self.write_line(|line| serde_json::to_writer(line, &gap)) {
                // Still failing: the count waits for the next attempt.
                self.settings
                    .shared
                    .dropped
                    .fetch_add(dropped, Ordering::Relaxed);
            }
        }
    }

    /// Writes one event; a lost one is counted.
    fn write(&mut self, event: &impl Serialize) {
        self.write_with(|line| serde_json::to_writer(line, event));
    }

    /// Writes the event `json` writes; a lost one is counted.
    fn write_with(&mut self, json: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>) {
        if !self.write_line(json) {
            self.settings.shared.drop_one();
        }
    }

    /// Writes one line to the file's buffer; false if it could not.
    fn write_line(&mut self, json: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>) -> bool {
        self.line.clear();
        if json(&mut self.line).is_err() {
            // Our own events always serialize.
            return false;
        }
        self.line.push(b'\n');
        let len = self.line.len() as u64;
        let too_big = self
            .settings
            .rotate_bytes
            .is_some_and(|max| self.size > 0 && self.size + len > max);
        if too_big || (self.is_old() && self.size > 0) {
            self.rotate();
        }
        if self.file.is_none()
            && let Err(e) = self.reopen()
        {
            self.fail(&e);
            return false;
        }
        let Some(file) = self.file.as_mut() else {
            return false;
        };
        match file.write_all(&self.line) {
            Ok(()) => {
                self.size += len;
                self.buffered += 1;
                true
            }
            Err(e) => {
                self.fail(&e);
                false
            }
        }
    }

    fn is_old(&self) -> bool {
        self.settings
            .rotate_every
            .is_some_and(|age| self.opened.elapsed() >= age)
    }

    /// The file cannot be written: what it buffered is counted lost, and the next write
    /// reopens it.
    fn fail(&mut self, error: &io::Error) {
        self.file = None;
        let shared = &self.settings.shared;
        let lost = std::mem::take(&mut self.buffered);
        shared.dropped.fetch_add(lost, Ordering::Relaxed);
        shared.dropped_total.fetch_add(lost, Ordering::Relaxed);
        if !shared.failing.swap(true, Ordering::Relaxed) {
            tracing::error!(target: AUDIT_TARGET, path = %self.settings.path.display(), %error, "cannot write the audit file");
        }
    }

    fn reopen(&mut self) -> io::Result<()> {
        let (file, size) = open(&self.settings.path)?;
        self.file = Some(file);
        self.size = size;
        self.opened = Instant::now();
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            // A failed file is retried here too, so an idle writer recovers.
            if let Err(e) = self.reopen() {
                self.fail(&e);
                return Err(e);
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("the audit file is not open"));
        };
        let result = file.flush();
        match &result {
            Ok(()) => {
                let shared = &self.settings.shared;
                let written = std::mem::take(&mut self.buffered);
                shared.written.fetch_add(written, Ordering::Relaxed);
                // Writable again only once something has reached the file.
                if written > 0 && shared.failing.swap(false, Ordering::Relaxed) {
                    tracing::warn!(target: AUDIT_TARGET, path = %self.settings.path.display(), "the audit file is writable again");
                }
            }
            Err(e) => self.fail(e),
        }
        result
    }

    /// `path.(N-1)` → `path.N`, ..., `path` → `path.1`, and a new `path`.
    fn rotate(&mut self) {
        if let Err(e) = self.flush() {
            tracing::error!(target: AUDIT_TARGET, error = %e, "cannot flush the audit file before rotating it");
        }
        self.file = None;
        let keep = self.settings.keep;
        let named = |n: usize| {
            let mut name = self.settings.path.clone().into_os_string();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        for n in (1..keep).rev() {
            match std::fs::rename(named(n), named(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    tracing::error!(target: AUDIT_TARGET, error = %e, "cannot rotate an audit file");
                }
                _ => {}
            }
        }
        if let Err(e) = std::fs::rename(&self.settings.path, named(1)) {
            tracing::error!(target: AUDIT_TARGET, error = %e, "cannot rotate the audit file");
        }
        if let Err(e) = self.reopen() {
            self.fail(&e);
        }
    }
}
