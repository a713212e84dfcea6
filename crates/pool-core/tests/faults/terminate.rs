//! Fault 3: the server terminates every backend of the pool (`pg_terminate_backend`) under
//! load.

use std::time::Duration;

use pool_core::CloseReason;
use tokio::time::Instant;

use crate::Fixture;
use crate::support::{TestResult, assert_no_secrets};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_backends_are_discarded_and_replaced() -> TestResult {
    let mut f = Fixture::start("terminate").await?;
    // Its subject is discarding and replacing the terminated connections, not how long a
    // login takes: on a loaded machine the eight replacement logins take over a second each.
    f.patient(Duration::from_secs(5), Duration::from_secs(10));
    let pool = crate::support::pool("terminate", &f.settings);
    // Open all 8 first, so the fault hits a full pool however fast the load runs.
    f.assert_full_capacity(&pool).await;
    let (watch, load) = f.load(&pool, 32).await;

    let fault = Instant::now();
    let terminated = f.server.terminate_backends(f.app()).await?;
    let done = Instant::now();
    assert!(
        terminated > 0,
        "the pool had server connections to terminate"
    );
    let (recovered, report) = f
        .recover(&pool, watch, load, done, Duration::from_secs(1))
        .await;
    // Each terminated connection fails at most the one query that meets it, then is discarded.
    let failures = report.failures_since(fault - Duration::from_millis(100));
    assert!(
        failures as u64 <= terminated,
        "{failures} failures for {terminated} terminated connections: {:?}",
        report.sample_errors()
    );
    assert!(
        report.acquire_errors().is_empty(),
        "{:?}",
        report.acquire_errors()
    );
    let stats = pool.stats();
    eprintln!(
        "fault 3 (all {terminated} backends terminated): {failures} queries failed (e.g. {:?}); \
         closed as broken {}, failed validation {}; first query succeeded {:?} after the \
         terminate; longest acquire {:?}",
        report.sample_errors(),
        stats.closed.get(CloseReason::Broken),
        stats.closed.get(CloseReason::ValidationFailed),
        recovered,
        report.max_acquire,
    );
    let close = pool.close(Duration::from_secs(2)).await;
    assert_no_secrets(&[&format!("{stats:?} {close:?}"), &report.errors().join("\n")]);
    Ok(())
}
