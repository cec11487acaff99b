//! Where dharma reads the time: token lifetimes, cache freshness and audit stamps.
//!
//! Production code uses [`SystemClock`]; tests inject a [`ManualClock`] and move it
//! instead of sleeping.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use dharma_core::clock::{Clock, ManualClock};
//!
//! let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_000));
//! clock.advance(Duration::from_secs(5));
//! assert_eq!(clock.unix_seconds(), 1_005);
//! ```

use std::{
    fmt::Debug,
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// A source of wall-clock time. Object-safe so it can be shared as `Arc<dyn Clock>`.
pub trait Clock: Send + Sync + Debug {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// The current time as whole seconds since the Unix epoch (0 before 1970).
    fn unix_seconds(&self) -> u64 {
        unix_seconds(self.now())
    }
}

/// `time` as whole seconds since the Unix epoch (0 before 1970).
pub(crate) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to. For tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl ManualClock {
    /// A clock stopped at `t`.
    pub fn at(t: SystemTime) -> Self {
        Self { now: Mutex::new(t) }
    }

    /// A clock stopped at the current system time.
    pub fn starting_now() -> Self {
        Self::at(SystemTime::now())
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }

    /// Sets the clock.
    pub fn set(&self, t: SystemTime) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}
