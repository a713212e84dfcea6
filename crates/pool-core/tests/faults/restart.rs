//! Fault 1: the server restarts (fast and immediate shutdown) while 64 tasks load a pool of
//! max 8.

use std::time::Duration;

use pool_testkit::RestartMode;
use tokio::time::Instant;

use crate::Fixture;
use crate::support::{TestResult, assert_no_secrets};

async fn restart_under_load(mode: RestartMode, tag: &str) -> TestResult {
    let mut f = Fixture::start(tag).await?;
    // Its subject is discarding what the restart broke and serving again, not how long a
    // login takes: on a loaded machine eight logins at once take over a second each, and
    // with a 1 s connect timeout none might ever finish, before the fault or after.
    f.patient(Duration::from_secs(5), Duration::from_secs(10));
    let pool = crate::support::pool("restart", &f.settings);
    let (watch, load) = f.load(&pool, 64).await;

    let fault = Instant::now();
    f.server.restart(mode).await?;
    let back = Instant::now();
    let (recovered, report) = f
        .recover(&pool, watch, load, back, Duration::from_millis(1500))
        .await;
    assert_eq!(
        report.failures_since(back + recovered + Duration::from_secs(1)),
        0,
        "every broken connection was discarded: {:?}",
        report.sample_errors()
    );
    let stats = pool.stats();
    eprintln!(
        "fault 1 ({mode:?} restart): restart took {:?}; first query succeeded {:?} after the \
         server was back ({:?} after the restart began); {} ops ok, {} acquire errors, {} \
         query errors (e.g. {:?}); broken connections closed: {}; longest acquire {:?}",
        back - fault,
        recovered,
        back + recovered - fault,
        report.ok(),
        report.acquire_errors().len(),
        report.work_errors().len(),
        report.sample_errors(),
        stats.closed.get(pool_core::CloseReason::Broken),
        report.max_acquire,
    );
    let close = pool.close(Duration::from_secs(2)).await;
    assert_no_secrets(&[
        &format!("{stats:?} {close:?} {pool:?}"),
        &report.errors().join("\n"),
    ]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_restart_under_load_recovers() -> TestResult {
    restart_under_load(RestartMode::Fast, "restart-fast").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immediate_restart_under_load_recovers() -> TestResult {
    restart_under_load(RestartMode::Immediate, "restart-immediate").await
}
