//! Fault: a storm of query timeouts. Each timeout cancels the backend's work on a
//! connection of its own; the pool runs one such cancel at a time and keeps each timed-out
//! connection (and its slot) until its cancel has run, so the server never sees more than
//! `max_connections + 1` of the pool's connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use sqlx::Connection as _;
use sqlx::postgres::PgConnection;
use tokio::time::Instant;

use crate::Fixture;
use crate::support::{TestResult, count_backends, error_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_timeouts_never_take_the_pool_past_max_plus_one_server_connection() -> TestResult {
    let mut f = Fixture::start("cancels").await?;
    // Logins on a busy machine must not run into the connect timeout: the subject here is
    // the query timeout.
    f.patient(Duration::from_secs(5), Duration::from_secs(10));
    let max = 5;
    f.settings.max_connections = max;
    f.settings.query_timeout = Some(Duration::from_millis(200));
    f.settings.statement_timeout = Some(Duration::from_secs(30));
    let pool = crate::support::pool("cancels", &f.settings);

    // The server's view, every 5 ms, on a connection of its own.
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicI64::new(0));
    let mut admin = PgConnection::connect_with(&f.admin()).await?;
    let sampler = tokio::spawn({
        let (stop, peak, app) = (Arc::clone(&stop), Arc::clone(&peak), f.app().to_owned());
        async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = count_backends(&mut admin, &app).await {
                    peak.fetch_max(n, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let _ = admin.close().await;
        }
    });

    let until = Instant::now() + Duration::from_secs(3);
    let callers = (0..max).map(|_| {
        let pool = pool.clone();
        async move {
            let mut timeouts = 0u32;
            while Instant::now() < until {
                let outcome = pool
                    .run(|c| {
                        Box::pin(
                            async move { sqlx::raw_sql("SELECT pg_sleep(10)").execute(c).await },
                        )
                    })
                    .await;
                match outcome {
                    Err(error) if error_text(&error).contains("while running a query") => {
                        timeouts += 1;
                    }
                    other => panic!("every query runs into the query timeout: {other:?}"),
                }
            }
            timeouts
        }
    });
    let timeouts: u32 = join_all(callers).await.into_iter().sum();
    pool.close(Duration::from_secs(5)).await;
    let drained = f.backends_until(|n| n == 0).await;
    stop.store(true, Ordering::Relaxed);
    sampler.await?;
    let peak = peak.load(Ordering::Relaxed);
    eprintln!(
        "fault (query-timeout storm, {max} callers, query_timeout 200 ms): {timeouts} \
         timeouts in 3 s; the server saw at most {peak} of the pool's connections (max \
         {max}); {drained} after close"
    );
    assert!(
        timeouts >= u32::from(max as u8),
        "the storm happened: {timeouts}"
    );
    assert!(
        peak <= i64::from(max) + 1,
        "the server saw {peak} connections of a pool of max {max} (bound: max + 1 cancel)"
    );
    assert_eq!(drained, 0, "no backend of the pool is left running");
    Ok(())
}
