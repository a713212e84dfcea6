//! Fault 10: a graceful close under load (a service shutting down while requests run).

use std::time::Duration;

use pool_core::PoolError;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::Fixture;
use crate::support::{SLACK, TestResult, assert_no_secrets, stats_until};

const DEADLINE: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_under_load_finishes_in_flight_work_and_reports_what_is_still_out() -> TestResult {
    let f = Fixture::start("close").await?;
    let pool = crate::support::pool("close", &f.settings);
    // The held connections start their work together, once every waiter is queued: however
    // slowly the tasks are scheduled, none ends before close begins.
    let (go, started_work) = watch::channel(false);

    // Two callers hold their connection past the close deadline ...
    let mut holders = Vec::new();
    for _ in 0..2 {
        let (acquired, ready) = oneshot::channel();
        let pool = pool.clone();
        let mut go = started_work.clone();
        holders.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            let _ = acquired.send(());
            let _ = go.wait_for(|go| *go).await;
            tokio::time::sleep(DEADLINE * 2).await;
            // The caller's connection still works after close gave up waiting for it.
            sqlx::query_scalar::<_, i32>("SELECT 1")
                .fetch_one(&mut *conn)
                .await
        }));
        ready.await?;
    }
    // ... six run a query that ends well before it ...
    let mut in_flight = Vec::new();
    for _ in 0..6 {
        let pool = pool.clone();
        let (acquired, ready) = oneshot::channel();
        let mut go = started_work.clone();
        in_flight.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            let _ = acquired.send(());
            let _ = go.wait_for(|go| *go).await;
            sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_sleep(0.5)")
                .fetch_one(&mut *conn)
                .await
        }));
        ready.await?;
    }
    // ... and sixteen wait for a connection.
    let waiters: Vec<_> = (0..16).map(|_| tokio::spawn(pool.acquire())).collect();
    let waiting = stats_until(&pool, Duration::from_secs(5), |s| s.waiting == 16).await;
    assert_eq!((waiting.in_use, waiting.waiting), (8, 16), "{waiting:?}");
    go.send(true)?;

    let started = Instant::now();
    let close = tokio::spawn({
        let pool = pool.clone();
        async move { pool.close(DEADLINE).await }
    });
    let refused = stats_until(&pool, Duration::from_secs(1), |s| s.closing).await;
    assert!(refused.closing);
    let late = pool
        .acquire()
        .await
        .expect_err("no new acquires after close");
    assert!(late.is_closed(), "{late:?}");
    assert_eq!(late.to_string(), "pool `close` is closed");
    for waiter in waiters {
        let error = waiter
            .await?
            .expect_err("waiters are woken with the closed error");
        assert!(matches!(error, PoolError::Closed { .. }), "{error:?}");
    }
    let woken = started.elapsed();
    for work in in_flight {
        assert_eq!(work.await??, 1, "in-flight work completes");
    }
    let report = close.await?;
    let closed_after = started.elapsed();
    assert!(closed_after >= DEADLINE && closed_after <= DEADLINE + SLACK);
    assert_eq!(report.waiters_failed, 16);
    assert_eq!(report.returned, 6, "{report:?}");
    assert_eq!(report.closed_idle, 0);
    assert!(!report.is_complete());
    assert_eq!(report.still_checked_out.len(), 2, "{report:?}");
    for out in &report.still_checked_out {
        assert!(out.location.file().ends_with("close.rs"), "{out}");
    }
    for holder in holders {
        assert_eq!(holder.await??, 1);
    }
    let stats = stats_until(&pool, Duration::from_secs(5), |s| s.total == 0).await;
    assert_eq!(
        (stats.total, stats.idle, stats.in_use),
        (0, 0, 0),
        "{stats:?}"
    );
    let left = f.backends_until(|n| n == 0).await;
    assert_eq!(left, 0, "every connection closed once returned");
    eprintln!(
        "fault 10 (graceful close under load): waiters failed with \"pool `close` is closed\" \
         {woken:?} after close began; 6 in-flight queries completed; close returned after \
         {closed_after:?} (deadline {DEADLINE:?}) reporting {} returned and still checked \
         out: {}",
        report.returned,
        report
            .still_checked_out
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    );
    assert_no_secrets(&[&format!("{stats:?} {report:?} {late:?}")]);
    Ok(())
}
