//! The observer seam: pool events for metrics and logging, without a dependency on either.

use std::fmt::Debug;
use std::time::Duration;

use crate::stats::CloseReason;

/// The phase of an operation that ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutPhase {
    /// Waiting for a connection to be released or opened (`acquire_timeout`).
    Waiting,
    /// Opening a physical connection (`connect_timeout`).
    Connecting,
    /// Validating an idle connection before handing it out.
    Validating,
    /// Rolling back or resetting a returned connection.
    Resetting,
    /// Closing a connection.
    Closing,
    /// The client-side `query_timeout` of a unit of work.
    Query,
}

impl TimeoutPhase {
    /// A short name, as in "timed out while {name}".
    pub const fn as_str(self) -> &'static str {
        match self {
            TimeoutPhase::Waiting => "waiting for a connection",
            TimeoutPhase::Connecting => "connecting",
            TimeoutPhase::Validating => "validating",
            TimeoutPhase::Resetting => "resetting",
            TimeoutPhase::Closing => "closing",
            TimeoutPhase::Query => "running a query",
        }
    }
}

/// Receives a pool's events. Every method has a no-op default, so an implementation picks
/// the ones it needs.
///
/// Methods are called inline on the pool's hot path: they must be cheap and must not block
/// (record into an atomic or a lock-free instrument; never do I/O here). One observer is
/// installed per pool, so it can hold that pool's name and precomputed attributes.
pub trait PoolObserver: Send + Sync + Debug + 'static {
    /// A physical connection was opened; `elapsed` is the time the connect took.
    fn on_connect(&self, elapsed: Duration) {
        let _ = elapsed;
    }

    /// Opening a connection failed (error already logged by the pool).
    fn on_connect_error(&self) {}

    /// A caller got a connection after waiting `wait` (zero when one was idle at once).
    fn on_acquire(&self, wait: Duration) {
        let _ = wait;
    }

    /// A checked-out connection came back after `used` in the caller's hands.
    fn on_release(&self, used: Duration) {
        let _ = used;
    }

    /// A connection left the pool.
    fn on_remove(&self, reason: CloseReason) {
        let _ = reason;
    }

    /// An operation ran out of time in `phase`.
    fn on_timeout(&self, phase: TimeoutPhase) {
        let _ = phase;
    }

    /// A checkout has been held longer than `leak_detection_threshold`; `location` is where
    /// it was acquired. Reported once per checkout.
    fn on_leak(&self, location: &'static std::panic::Location<'static>, held: Duration) {
        let _ = (location, held);
    }
}
