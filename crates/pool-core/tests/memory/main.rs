//! Pool behaviour on the in-memory connector: fairness, cancel safety, timeouts, lifecycle.

mod cancel;
mod controls;
mod fifo;
mod lifecycle;
mod surroundings;
mod timeouts;

use std::time::Duration;

use pool_core::testing::MemoryConnector;
use pool_core::{Pool, PoolOptions, PoolStats};

/// Options for a quiet pool: no background refill, no validation, no keepalive.
pub(crate) fn quiet(max: u32) -> PoolOptions {
    PoolOptions::new()
        .max_connections(max)
        .min_connections(0)
        .validate_after_idle(None)
        .keepalive_interval(None)
        .idle_timeout(None)
        .max_lifetime(None)
        .max_uses(None)
        .acquire_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(1))
}

pub(crate) fn pool(options: PoolOptions) -> (Pool<MemoryConnector>, MemoryConnector) {
    let connector = MemoryConnector::new();
    let pool = options.build(connector.clone()).expect("valid options");
    (pool, connector)
}

/// The invariant every snapshot must hold.
pub(crate) fn assert_consistent(stats: &PoolStats) {
    assert_eq!(
        stats.idle + stats.in_use,
        stats.total,
        "idle + in_use == total: {stats:?}"
    );
    assert!(stats.total <= stats.max, "total <= max: {stats:?}");
}

/// Lets spawned tasks (connects, closes) run.
pub(crate) async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}
