//! Errors of building a health checker.

/// Why a [`HealthChecker`](crate::HealthChecker) could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HealthError {
    /// `timeout` was zero: every check would fail before it started.
    #[error("health check timeout must be greater than zero")]
    ZeroTimeout,
    /// The probe connection's `application_name` was empty.
    #[error("the probe connection's application_name must not be empty")]
    EmptyApplicationName,
    /// Two pools with one name: their results could not be told apart.
    #[error("pool {0:?} is watched twice")]
    DuplicatePool(String),
}
