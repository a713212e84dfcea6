//! Thresholds and knobs of the health checks.

use std::time::Duration;

use crate::status::Status;

/// The application_name of the checker's own probe connection, so it is easy to tell apart in
/// `pg_stat_activity`.
pub const DEFAULT_PROBE_APPLICATION_NAME: &str = "servio-pool-health";

/// Thresholds and knobs of a [`HealthChecker`](crate::HealthChecker).
///
/// Build one with struct update syntax, so fields added later keep your code compiling:
///
/// ```
/// use std::time::Duration;
/// use pool_health::{HealthOptions, Status};
///
/// let options = HealthOptions {
///     timeout: Duration::from_secs(1),
///     at_max_status: Status::Fail,
///     ..HealthOptions::default()
/// };
/// assert_eq!(options.max_waiting, 10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthOptions {
    /// Deadline of the connectivity check: the `SELECT 1` round trip, including opening the
    /// probe connection when one is needed. The server facts share it. A check never takes
    /// much longer than this, whatever the server does.
    ///
    /// Default: 2 s (the seed's `connectionTimeoutMillis`). Keep it below the probe's own
    /// timeout (Kubernetes `timeoutSeconds: 3` with the default), so the report, not the
    /// orchestrator, tells why a check failed.
    pub timeout: Duration,
    /// Whether the checker may open its own long-lived connection per pool when no idle
    /// pooled connection is free at once. Without it, a busy pool's connectivity is not
    /// measured (reported as warn) rather than measured by waiting in the acquire queue.
    ///
    /// Default: on. Each process then holds up to `max_connections + 1` connections per pool:
    /// count the extra one in the server's connection budget.
    pub probe_connection: bool,
    /// The `application_name` of the probe connection.
    ///
    /// Default: `servio-pool-health`, so it is easy to find in `pg_stat_activity`.
    pub probe_application_name: String,
    /// More callers waiting in `acquire()` than this fails readiness.
    ///
    /// Default: 10 (the seed's threshold).
    pub max_waiting: u32,
    /// The status of a pool whose open connections reached `max_connections`.
    ///
    /// Default: [`Status::Warn`]. A full pool that serves without waiting is working; failing
    /// readiness there moves its load to the other instances, which fill up in turn (a
    /// cascade). Waiters and acquire timeouts are the signs of real trouble, and they fail.
    /// Set [`Status::Fail`] for the seed's behaviour, [`Status::Pass`] to ignore it.
    pub at_max_status: Status,
    /// More acquire timeouts than this within [`timeout_window`](Self::timeout_window) fails
    /// readiness.
    ///
    /// Default: 0 (any acquire timeout fails): callers are already getting errors.
    pub max_acquire_timeouts: u64,
    /// How far back acquire timeouts count.
    ///
    /// Default: 10 s (the default Kubernetes probe period), so one burst fails about one
    /// probe, and a pool that keeps timing out keeps failing.
    pub timeout_window: Duration,
    /// How long a database round trip's result is reused. Probes within this interval share
    /// one result, and concurrent callers share one check in flight: a storm of probes is
    /// never a storm of queries. Pool state (waiters, closing) is always read fresh.
    ///
    /// Default: 1 s.
    pub cache_ttl: Duration,
    /// Whether the full report asks the server for its version, `max_connections`, reserved
    /// connections and connections in use (one more query, within the same deadline).
    ///
    /// Default: on.
    pub server_facts: bool,
    /// Whether reports name the database host and port. Off, host names are left out and
    /// removed from error messages, since health endpoints are often reachable by more people
    /// than the database is.
    ///
    /// Default: off.
    pub show_hosts: bool,
    /// The number of service instances that share each server. When set, the full report
    /// adds a `postgres:connectionBudget` check per pool: instances × (`max_connections` + the
    /// probe connection) summed over the pools on one server, against the server's
    /// `max_connections` minus its reserved connections; more warns.
    ///
    /// Default: none (no budget check). `poolctl check --instances N` sets it.
    pub instances: Option<u32>,
}

impl Default for HealthOptions {
    fn default() -> Self {
        HealthOptions {
            timeout: Duration::from_secs(2),
            probe_connection: true,
            probe_application_name: DEFAULT_PROBE_APPLICATION_NAME.to_owned(),
            max_waiting: 10,
            at_max_status: Status::Warn,
            max_acquire_timeouts: 0,
            timeout_window: Duration::from_secs(10),
            cache_ttl: Duration::from_secs(1),
            server_facts: true,
            show_hosts: false,
            instances: None,
        }
    }
}
