//! The check names of a report, in the `component:measurement` form of
//! `application/health+json`.
//!
//! Each key maps to a list with one entry per pool; the entry's `componentId` is the pool's
//! name.

/// Liveness and readiness: whether the pool is open. Readiness fails as soon as `close()`
/// begins; liveness warns while the pool drains and fails once it is closed.
pub const POOL_OPEN: &str = "pool:open";
/// Liveness: whether the pool's background maintenance task runs; fails when the pool is
/// open without it (no refill, reaping or keepalive).
pub const POOL_MAINTENANCE: &str = "pool:maintenance";
/// Readiness: the `SELECT 1` round trip, in milliseconds.
pub const CONNECTIVITY: &str = "postgres:connectivity";
/// Readiness: callers waiting in `acquire()`; fails only with the opt-in `max_waiting`.
pub const POOL_WAITING: &str = "pool:waiting";
/// Readiness: how long the oldest caller in `acquire()` has waited, in milliseconds. Warns
/// while the queue is stalled (the oldest waiter older than `stall_percent` of
/// `acquire_timeout`) or acquires time out; fails on sustained trouble (stalled for
/// `fail_after` within `timeout_window`, or more than `max_acquire_timeouts` there), and
/// passes again only after `recovery` without trouble.
pub const POOL_WAIT_TIME: &str = "pool:waitTime";
/// Readiness: open connections against `max_connections`.
pub const POOL_CONNECTIONS: &str = "pool:connections";
/// Readiness: acquire timeouts within the configured window; warns when there are any (the
/// failing is [`POOL_WAIT_TIME`]'s, with hysteresis).
pub const POOL_ACQUIRE_TIMEOUTS: &str = "pool:acquireTimeouts";
/// Full report: the pool's statistics as an object (always pass).
pub const POOL_STATS: &str = "pool:stats";
/// Full report: the server's version string.
pub const SERVER_VERSION: &str = "postgres:version";
/// Full report: the server's `max_connections`.
pub const SERVER_MAX_CONNECTIONS: &str = "postgres:maxConnections";
/// Full report: connections reserved for superusers (and `reserved_connections` roles).
pub const SERVER_RESERVED_CONNECTIONS: &str = "postgres:reservedConnections";
/// Full report: client connections open on the server, all clients counted.
pub const SERVER_CONNECTIONS: &str = "postgres:connections";
/// Full report: the role of the server the pool reaches, `primary` or `standby`.
pub const SERVER_ROLE: &str = "postgres:role";
/// Full report, only from a standby: how far its replay trails the primary, in
/// milliseconds (see [`ServerFacts::replication_lag_ms`](crate::ServerFacts::replication_lag_ms)).
pub const SERVER_REPLICATION_LAG: &str = "postgres:replicationLag";
/// Full report, only with `instances`: connections the instances may open on the pool's
/// server, against what the server allows.
pub const SERVER_CONNECTION_BUDGET: &str = "postgres:connectionBudget";
/// Full report, only with `show_hosts`: the pool's `host:port/database`.
pub const SERVER_ENDPOINT: &str = "postgres:endpoint";
