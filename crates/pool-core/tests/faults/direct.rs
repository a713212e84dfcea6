//! Fault 1 again, for callers that query a checkout directly (`&mut *conn`, the usual sqlx
//! idiom): the pool never sees those errors, yet a connection whose query met a dead server
//! must not go back to the idle queue to fail the next caller too.

use std::time::Duration;

use pool_testkit::RestartMode;
use tokio::time::Instant;

use crate::Fixture;
use crate::support::TestResult;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_discards_connections_broken_under_direct_queries() -> TestResult {
    let mut f = Fixture::start("direct").await?;
    // Its subject is what the release check discards, not how long a login takes: on a
    // loaded machine eight logins at once take over a second each.
    f.patient(Duration::from_secs(5), Duration::from_secs(10));
    let mut settings = f.settings.clone();
    // Connections used moments ago are not validated: only the release check can catch them.
    settings.validate_after_idle = Some(Duration::from_secs(60));
    let pool = crate::support::pool("direct", &settings);
    f.assert_full_capacity(&pool).await;
    let max = settings.max_connections as usize;

    f.server.restart(RestartMode::Immediate).await?;
    let back = Instant::now();

    let mut failures = 0;
    let recovered = loop {
        let mut conn = pool.acquire().await?;
        let result: Result<i32, _> = sqlx::query_scalar("SELECT 1").fetch_one(&mut *conn).await;
        drop(conn);
        match result {
            Ok(1) => break back.elapsed(),
            Ok(other) => panic!("SELECT 1 returned {other}"),
            Err(error) => {
                failures += 1;
                assert!(
                    failures <= max,
                    "{failures} failed queries for {max} connections: broken connections went \
                     back to the pool (last error: {error})"
                );
            }
        }
    };
    // Every connection that met the restart fails at most the one query that found it.
    let stats = pool.stats();
    assert!(stats.idle + stats.in_use == stats.total && stats.total <= stats.max);
    f.assert_full_capacity(&pool).await;
    eprintln!(
        "fault 1 (direct queries, immediate restart): {failures} queries failed before the \
         first success {recovered:?} after the server was back; broken connections closed: {}",
        stats.closed.get(pool_core::CloseReason::Broken)
    );
    pool.close(Duration::from_secs(2)).await;
    Ok(())
}
