//! Point-in-time pool statistics and cumulative counters.

use std::fmt;

/// Why a connection left the pool.
///
/// Used by [`PoolStats::closed`], by the observer's `on_remove` and as the `reason` attribute
/// of the `servio.pool.connection.closed` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CloseReason {
    /// Idle longer than `idle_timeout` while the pool held more than `min_connections`.
    Idle,
    /// Older than `max_lifetime` (with jitter).
    Lifetime,
    /// Checked out `max_uses` times (with jitter).
    MaxUses,
    /// The connection failed (I/O error, server gone, terminated backend).
    Broken,
    /// The connection failed validation before it was handed out.
    ValidationFailed,
    /// The connection was closed because the pool closed.
    PoolClosed,
    /// The caller discarded it, or returned it in a state the pool could not clean
    /// (a query timeout fired, a transaction could not be rolled back).
    Discarded,
    /// The server turned read-only (failover) while the writable check is on.
    ReadOnly,
    /// Above `max_connections` after the pool was resized to fewer ([`Pool::resize`]).
    ///
    /// [`Pool::resize`]: crate::Pool::resize
    Resized,
    /// Retired by [`Pool::evict`] (after a failover, a credential rotation or a server
    /// parameter change).
    ///
    /// [`Pool::evict`]: crate::Pool::evict
    Evicted,
    /// A `before_acquire` or `after_release` hook turned it down.
    Rejected,
}

impl CloseReason {
    /// Every reason, in a stable order.
    pub const ALL: [CloseReason; 11] = [
        CloseReason::Idle,
        CloseReason::Lifetime,
        CloseReason::MaxUses,
        CloseReason::Broken,
        CloseReason::ValidationFailed,
        CloseReason::PoolClosed,
        CloseReason::Discarded,
        CloseReason::ReadOnly,
        CloseReason::Resized,
        CloseReason::Evicted,
        CloseReason::Rejected,
    ];

    /// The snake_case name used in metrics, logs and reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            CloseReason::Idle => "idle",
            CloseReason::Lifetime => "lifetime",
            CloseReason::MaxUses => "max_uses",
            CloseReason::Broken => "broken",
            CloseReason::ValidationFailed => "validation_failed",
            CloseReason::PoolClosed => "pool_closed",
            CloseReason::Discarded => "discarded",
            CloseReason::ReadOnly => "read_only",
            CloseReason::Resized => "resized",
            CloseReason::Evicted => "evicted",
            CloseReason::Rejected => "rejected",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Connections closed so far, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClosedCounts([u64; CloseReason::ALL.len()]);

impl ClosedCounts {
    /// Connections closed for `reason`.
    pub fn get(&self, reason: CloseReason) -> u64 {
        self.0[reason.index()]
    }

    /// Connections closed for any reason.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// `(reason, count)` for every reason, zeros included.
    pub fn iter(&self) -> impl Iterator<Item = (CloseReason, u64)> + '_ {
        CloseReason::ALL.iter().map(|r| (*r, self.get(*r)))
    }

    pub(crate) fn add(&mut self, reason: CloseReason) {
        self.0[reason.index()] += 1;
    }
}

/// A snapshot of a pool: its current state and cumulative counters since it was built.
///
/// Always `idle + in_use == total`, and `total <= max` except just after [`Pool::resize`]
/// lowered `max`: the connections in use above it close as they come back.
///
/// [`Pool::resize`]: crate::Pool::resize
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Open connections, idle or checked out (connects in progress not included).
    pub total: u32,
    /// Open connections waiting in the pool.
    pub idle: u32,
    /// Open connections checked out by callers.
    pub in_use: u32,
    /// Callers waiting in `acquire()` for a connection.
    pub waiting: u32,
    /// Connections being opened (each holds a slot below `max`: `total + connecting <= max`).
    pub connecting: u32,
    /// `max_connections`.
    pub max: u32,
    /// `min_connections`.
    pub min: u32,
    /// `close()` has begun: new acquires fail.
    pub closing: bool,
    /// [`Pool::pause`] is in effect: acquires wait, no connection opens.
    ///
    /// [`Pool::pause`]: crate::Pool::pause
    pub paused: bool,
    /// Successful acquires.
    pub acquired: u64,
    /// Acquires that had to wait (no idle connection at once).
    pub waited: u64,
    /// Connections opened.
    pub created: u64,
    /// Connection attempts that failed or timed out.
    pub connect_failures: u64,
    /// Acquires that ran out of `acquire_timeout`.
    pub acquire_timeouts: u64,
    /// Connections closed, by reason.
    pub closed: ClosedCounts,
    /// Times new connections opened on another server than the one before (a failover, a
    /// preferred server back), when the connector has several servers.
    /// [`Pool::server`](crate::Pool::server) names the current one.
    pub server_changes: u64,
}

impl PoolStats {
    /// Open connections as a fraction of `max` (the seed's PoolUtilization, as a ratio).
    pub fn utilization(&self) -> f64 {
        if self.max == 0 {
            0.0
        } else {
            f64::from(self.total) / f64::from(self.max)
        }
    }
}
