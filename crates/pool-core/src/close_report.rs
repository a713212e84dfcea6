//! `CloseReport`: what `Pool::close` did.

use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

/// A checkout still held by a caller when `close()` gave up waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckedOut {
    /// Where `acquire()` was called.
    pub location: &'static Location<'static>,
    /// How long it had been held, when known (leak detection or an observer on).
    pub held: Option<Duration>,
}

impl fmt::Display for CheckedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "acquired at {}", self.location)?;
        if let Some(held) = self.held {
            write!(f, ", held for {held:?}")?;
        }
        Ok(())
    }
}

/// What `close()` did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseReport {
    /// The pool's name.
    pub pool: Arc<str>,
    /// Idle connections closed at once.
    pub closed_idle: u32,
    /// Checked-out connections that came back (and were closed) before the deadline.
    pub returned: u32,
    /// Checkouts still held at the deadline; their connections close when they come back.
    pub still_checked_out: Vec<CheckedOut>,
    /// Waiters woken with the pool-closed error.
    pub waiters_failed: u32,
}

impl CloseReport {
    /// Whether every connection was closed before the deadline.
    pub fn is_complete(&self) -> bool {
        self.still_checked_out.is_empty()
    }
}
