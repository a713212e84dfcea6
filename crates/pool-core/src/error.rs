//! The pool's error type.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use crate::observer::TimeoutPhase;

/// An error from a connector or the database, shared between every caller it concerns (the
/// last connect error is carried by each acquire that times out while connects fail).
pub type SharedError = Arc<dyn StdError + Send + Sync + 'static>;

/// What can go wrong when acquiring, using or building a pool.
///
/// No variant ever contains a password: connect errors carry the driver's error, which names
/// the user and the server but not the secret.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// `close()` has begun: the pool hands out no more connections.
    #[error("pool `{pool}` is closed")]
    Closed {
        /// The pool's name.
        pool: Arc<str>,
    },
    /// An operation ran out of time. `last_error` is the most recent connect error when the
    /// acquire timed out while connects were failing.
    #[error("pool `{pool}` timed out after {elapsed:?} while {}", phase.as_str())]
    Timeout {
        /// The pool's name.
        pool: Arc<str>,
        /// What the pool was doing when time ran out.
        phase: TimeoutPhase,
        /// How long the operation ran.
        elapsed: Duration,
        /// The last connect error, if connects were failing.
        #[source]
        last_error: Option<SharedError>,
    },
    /// `max_waiters` callers are already waiting: the acquire is refused at once (load
    /// shedding) rather than queued.
    #[error(
        "pool `{pool}` refused the acquire: {max_waiters} callers are already waiting (max_waiters)"
    )]
    TooManyWaiters {
        /// The pool's name.
        pool: Arc<str>,
        /// The configured bound.
        max_waiters: u32,
    },
    /// The server rejected the credentials. Reported at once, never retried until a timeout.
    #[error("pool `{pool}` could not authenticate to the database")]
    Authentication {
        /// The pool's name.
        pool: Arc<str>,
        /// The driver's error.
        #[source]
        source: SharedError,
    },
    /// Opening a connection failed in a way retrying will not fix (e.g. the database does not
    /// exist).
    #[error("pool `{pool}` could not connect")]
    Connect {
        /// The pool's name.
        pool: Arc<str>,
        /// The driver's error.
        #[source]
        source: SharedError,
    },
    /// The pool options contradict each other or are out of range.
    #[error("invalid pool option `{setting}`: {message}")]
    InvalidOption {
        /// The setting's name, as in the configuration.
        setting: &'static str,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// `PoolRegistry::get` was asked for a pool that is not declared.
    #[error("no pool named `{name}` is declared (declared pools: {})", declared.join(", "))]
    UnknownPool {
        /// The name asked for.
        name: String,
        /// The declared names.
        declared: Vec<String>,
    },
    /// The pool was used outside a tokio runtime, so it could not start a background step.
    #[error("pool `{pool}` needs a tokio runtime to open connections")]
    NoRuntime {
        /// The pool's name.
        pool: Arc<str>,
    },
}

impl PoolError {
    /// The phase, if this is a timeout.
    pub fn timeout_phase(&self) -> Option<TimeoutPhase> {
        match self {
            PoolError::Timeout { phase, .. } => Some(*phase),
            _ => None,
        }
    }

    /// Whether the pool is closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, PoolError::Closed { .. })
    }

    pub(crate) fn invalid(setting: &'static str, message: impl Into<String>) -> Self {
        PoolError::InvalidOption {
            setting,
            message: message.into(),
        }
    }

    /// Finds a `PoolError` wrapped in an `sqlx::Error` (as returned by the executor and by
    /// `run` with sqlx errors).
    pub fn from_sqlx(error: &sqlx::Error) -> Option<&PoolError> {
        match error {
            sqlx::Error::Io(io) => io.get_ref()?.downcast_ref::<PoolError>(),
            _ => None,
        }
    }
}

/// Lets sqlx call sites keep `sqlx::Error`: a closed pool and a timeout waiting for a
/// connection become sqlx's own `PoolClosed` / `PoolTimedOut`; anything else is wrapped as an
/// I/O error whose inner error is the [`PoolError`] (see [`PoolError::from_sqlx`]).
impl From<PoolError> for sqlx::Error {
    fn from(error: PoolError) -> Self {
        match error {
            PoolError::Closed { .. } => sqlx::Error::PoolClosed,
            PoolError::Timeout {
                phase: TimeoutPhase::Waiting,
                last_error: None,
                ..
            } => sqlx::Error::PoolTimedOut,
            other => sqlx::Error::Io(std::io::Error::other(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_pool_and_phase() {
        let e = PoolError::Timeout {
            pool: "default".into(),
            phase: TimeoutPhase::Connecting,
            elapsed: Duration::from_secs(2),
            last_error: None,
        };
        assert_eq!(
            e.to_string(),
            "pool `default` timed out after 2s while connecting"
        );
        let e = PoolError::UnknownPool {
            name: "replcia".into(),
            declared: vec!["default".into(), "replica".into()],
        };
        assert!(e.to_string().contains("declared pools: default, replica"));
    }

    #[test]
    fn sqlx_conversion_keeps_the_pool_error() {
        let e = PoolError::TooManyWaiters {
            pool: "default".into(),
            max_waiters: 3,
        };
        let sqlx_error = sqlx::Error::from(e);
        assert!(matches!(
            PoolError::from_sqlx(&sqlx_error),
            Some(PoolError::TooManyWaiters { max_waiters: 3, .. })
        ));
        let closed = sqlx::Error::from(PoolError::Closed { pool: "x".into() });
        assert!(matches!(closed, sqlx::Error::PoolClosed));
    }
}
