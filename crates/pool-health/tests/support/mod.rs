//! Shared helpers of the pool-health tests: pools over pool-testkit databases.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use pool_core::{CloseReport, PgConnector, Pool, PoolOptions};
use pool_health::{HealthChecker, HealthOptions, HealthReport};
use sqlx::postgres::PgConnectOptions;

/// Generous slack over a configured deadline: the machine is shared, so timings vary; a test
/// asserts that a deadline holds, never that something is fast.
pub const SLACK: Duration = Duration::from_secs(3);

/// A pool of `max` connections (`min` kept open) over `options`, with a short acquire timeout.
pub fn pool(name: &str, options: PgConnectOptions, max: u32, min: u32) -> Pool<PgConnector> {
    PoolOptions::new()
        .name(name)
        .max_connections(max)
        .min_connections(min)
        .connect_timeout(Duration::from_secs(2))
        .acquire_timeout(Duration::from_secs(5))
        .build(PgConnector::new(options))
        .expect("valid pool options")
}

/// A checker over `pools` with a short cache, so consecutive checks in a test look again.
pub fn checker(options: HealthOptions, pools: Vec<Pool<PgConnector>>) -> HealthChecker {
    HealthChecker::new(options, pools).expect("valid health options")
}

/// Options with a 1 s deadline and no cache.
pub fn quick() -> HealthOptions {
    HealthOptions {
        timeout: Duration::from_secs(1),
        cache_ttl: Duration::ZERO,
        ..HealthOptions::default()
    }
}

/// The report as JSON text, for searching it.
pub fn json(report: &HealthReport) -> String {
    serde_json::to_string(report).expect("a report serializes")
}

/// Waits until `pool` has at least `n` idle connections (the background refill), up to 10 s.
pub async fn wait_idle(pool: &Pool<PgConnector>, n: u32) {
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while pool.stats().idle < n {
        assert!(
            tokio::time::Instant::now() < until,
            "the pool never opened {n} idle connections: {:?}",
            pool.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Begins `pool.close()` in a task (a checked-out connection keeps it draining) and returns
/// once the pool says it is closing.
pub async fn begin_close(pool: &Pool<PgConnector>) -> tokio::task::JoinHandle<CloseReport> {
    let closing = tokio::spawn({
        let pool = pool.clone();
        async move { pool.close(Duration::from_secs(10)).await }
    });
    while !pool.is_closing() {
        tokio::task::yield_now().await;
    }
    closing
}
