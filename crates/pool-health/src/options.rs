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
///     acquire_timeout: Duration::from_secs(5),
///     at_max_status: Status::Fail,
///     ..HealthOptions::default()
/// };
/// assert_eq!(options.max_waiting, None);
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
    /// The seed's instant rule, opt-in: more callers waiting in `acquire()` than this fails
    /// readiness at once.
    ///
    /// Default: none. A count of waiters is a poor signal: a busy pool whose short queue
    /// moves fast is healthy (64 clients on a pool of 10 wait a few milliseconds each), and
    /// failing there moves the load to the other instances, which then fail in turn. Readiness
    /// fails on sustained trouble instead (see [`fail_after`](Self::fail_after)). `Some(10)`
    /// is the seed's threshold.
    pub max_waiting: Option<u32>,
    /// The pools' `acquire_timeout`, of which [`stall_percent`](Self::stall_percent) is a
    /// share.
    ///
    /// Default: 10 s, the built-in `acquire_timeout`; set it when your pools use another
    /// (`poolctl check` takes it from the settings).
    pub acquire_timeout: Duration,
    /// A pool counts as stalled while its oldest waiter has waited longer than this
    /// percentage of [`acquire_timeout`](Self::acquire_timeout): the queue is not moving,
    /// and callers are about to time out.
    ///
    /// Default: 50 (5 s of the default 10 s).
    pub stall_percent: u32,
    /// Readiness fails once a pool was stalled for this long, in total, within
    /// [`timeout_window`](Self::timeout_window) (and is still in trouble).
    ///
    /// Default: 10 s. One caller that waits out its whole `acquire_timeout` is stalled for
    /// only half of it, so a single timeout never fails readiness, while a frozen server
    /// fails it about `acquire_timeout × stall_percent + fail_after` after it froze (15 s).
    pub fail_after: Duration,
    /// Once failing, readiness passes again only after this long without trouble (no stall,
    /// no new acquire timeout): hysteresis, so a pool on the edge does not flap in and out
    /// of the load balancer.
    ///
    /// Default: 10 s (the default Kubernetes probe period).
    pub recovery: Duration,
    /// The status of a pool whose open connections reached `max_connections`.
    ///
    /// Default: [`Status::Warn`]. A full pool that serves without waiting is working; failing
    /// readiness there moves its load to the other instances, which fill up in turn (a
    /// cascade). Sustained waits and acquire timeouts are the signs of real trouble, and they
    /// fail.
    /// Set [`Status::Fail`] for the seed's behaviour, [`Status::Pass`] to ignore it.
    pub at_max_status: Status,
    /// More acquire timeouts than this within [`timeout_window`](Self::timeout_window) fails
    /// readiness (until [`recovery`](Self::recovery) passes without one).
    ///
    /// Default: 5. One timeout says a caller waited too long once, on any instance of a
    /// fleet sharing a slow moment; failing readiness for it would take the whole fleet out
    /// together. A steady stream of them is trouble.
    pub max_acquire_timeouts: u64,
    /// The window over which stalls ([`fail_after`](Self::fail_after)) and acquire timeouts
    /// count.
    ///
    /// Default: 30 s (three default Kubernetes probe periods).
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
            max_waiting: None,
            acquire_timeout: Duration::from_secs(10),
            stall_percent: 50,
            fail_after: Duration::from_secs(10),
            recovery: Duration::from_secs(10),
            at_max_status: Status::Warn,
            max_acquire_timeouts: 5,
            timeout_window: Duration::from_secs(30),
            cache_ttl: Duration::from_secs(1),
            server_facts: true,
            show_hosts: false,
            instances: None,
        }
    }
}
