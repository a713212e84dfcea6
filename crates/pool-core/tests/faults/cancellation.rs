//! Fault 8: ten thousand acquires cancelled at random points (while a connect runs for
//! them, while they wait in the queue, while an idle connection is validated for them).

use std::time::Duration;

use pool_core::{CloseReason, PgConnector, Pool};
use tokio::task::JoinSet;

use crate::Fixture;
use crate::support::{TestResult, Watch, assert_no_secrets, stats_until};

const CANCELLATIONS: u64 = 10_000;

/// Runs acquires, `concurrency` at a time, each after a random pause below `pause_us` and
/// cancelled after a random delay below `cancel_us`, until `cancellations` were cancelled or
/// `attempts` were started. Half the acquires that complete run a query. Returns
/// (cancelled, completed).
async fn storm(
    pool: &Pool<PgConnector>,
    concurrency: usize,
    pause_us: u64,
    cancel_us: u64,
    cancellations: u64,
    attempts: u64,
) -> Result<(u64, u64), tokio::task::JoinError> {
    // (cancelled, completed)
    let mut counts = (0, 0);
    let tally = |counts: &mut (u64, u64), was_cancelled: bool| {
        if was_cancelled {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
    };
    let mut tasks = JoinSet::new();
    let mut started = 0;
    while started < attempts {
        while tasks.len() < concurrency {
            started += 1;
            let pool = pool.clone();
            let pause = Duration::from_micros(fastrand::u64(0..pause_us.max(1)));
            let cancel_after = Duration::from_micros(fastrand::u64(0..cancel_us));
            let query = fastrand::bool();
            tasks.spawn(async move {
                tokio::time::sleep(pause).await;
                match tokio::time::timeout(cancel_after, pool.acquire()).await {
                    Err(_) => true,
                    Ok(Ok(mut conn)) => {
                        if query {
                            let one: i32 = sqlx::query_scalar("SELECT 1")
                                .fetch_one(&mut *conn)
                                .await
                                .expect("a query on an acquired connection");
                            assert_eq!(one, 1);
                        }
                        false
                    }
                    Ok(Err(error)) => panic!("no acquire fails here: {error}"),
                }
            });
        }
        tally(&mut counts, tasks.join_next().await.expect("a task")?);
        if counts.0 >= cancellations {
            break;
        }
    }
    while let Some(done) = tasks.join_next().await {
        tally(&mut counts, done?);
    }
    Ok(counts)
}

/// After a storm: once connects started for callers that gave up have finished and parked
/// their connection, the server holds exactly the pool's open connections, and the pool
/// serves its full capacity at once. Returns how many were open.
async fn assert_nothing_leaked(f: &Fixture, pool: &Pool<PgConnector>) -> u32 {
    let quiet = stats_until(pool, Duration::from_secs(10), |s| {
        s.in_use == 0 && s.waiting == 0
    })
    .await;
    assert_eq!((quiet.in_use, quiet.waiting), (0, 0), "{quiet:?}");
    let on_server = f
        .backends_until(|n| n == i64::from(pool.stats().total))
        .await;
    let total = pool.stats().total;
    assert_eq!(on_server, i64::from(total), "no leaked server connection");
    f.assert_full_capacity(pool).await;
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_random_cancellations_leak_nothing() -> TestResult {
    let mut f = Fixture::start("cancellation").await?;
    // Its subject is what cancellations leave behind, not how long a login takes: on a
    // loaded machine even four logins at once take over a second each.
    f.patient(Duration::from_secs(5), Duration::from_secs(10));
    f.settings.max_connections = 4;
    f.settings.validate_after_idle = Some(Duration::from_millis(1));
    let started = tokio::time::Instant::now();

    // 2 callers for 4 long-lived connections, each after a pause that leaves a connection
    // idle long enough to be validated, giving up within 0.4 ms: cancelled mid-validation
    // (the connection is then discarded, and replaced by a connect they may abandon too).
    // How many give up depends on this machine's speed: a fixed number of attempts.
    let idle_pool = crate::support::pool("cancellation-idle", &f.settings);
    let watch = Watch::start(&idle_pool, f.admin(), f.app());
    f.assert_full_capacity(&idle_pool).await;
    let (idle, idle_done) = storm(&idle_pool, 2, 2_000, 400, u64::MAX, 6_000).await?;
    let idle_stats = idle_pool.stats();
    let validations_cancelled = idle_stats.closed.get(CloseReason::Discarded);
    assert!(
        validations_cancelled > 0,
        "some cancellations hit a validation: {idle_stats:?}"
    );
    let idle_open = assert_nothing_leaked(&f, &idle_pool).await;
    watch
        .finish()
        .await
        .assert_bounded(f.settings.max_connections);
    idle_pool.close(Duration::from_secs(2)).await;
    assert_eq!(f.backends_until(|n| n == 0).await, 0);

    // 32 callers queue for 4 connections that retire after 3 uses, and give up within
    // 15 ms (a connect takes a few ms here): cancelled while waiting, and while the connect
    // started for them runs, until 10,000 were cancelled in all.
    f.settings.max_uses = Some(3);
    let queue_pool = crate::support::pool("cancellation-queue", &f.settings);
    let watch = Watch::start(&queue_pool, f.admin(), f.app());
    let rest = CANCELLATIONS.saturating_sub(idle);
    let (queued, queued_done) = storm(&queue_pool, 32, 0, 15_000, rest, rest * 20).await?;
    let storm_took = started.elapsed();
    let queue_stats = queue_pool.stats();
    assert!(queue_stats.waited > 0, "callers waited: {queue_stats:?}");
    let queue_open = assert_nothing_leaked(&f, &queue_pool).await;
    watch
        .finish()
        .await
        .assert_bounded(f.settings.max_connections);
    let cancelled = queued + idle;
    assert!(
        cancelled >= CANCELLATIONS,
        "{queued} + {idle} ({idle_done} completed)"
    );
    eprintln!(
        "fault 8 (random cancellations): {cancelled} acquires cancelled in {storm_took:?}: \
         {queued} queued for a connection or its connect ({queued_done} completed, {} \
         connections opened, {queue_open} open afterwards), {idle} with idle connections to \
         validate ({idle_done} completed, {validations_cancelled} connections discarded \
         because their validation was cancelled, {} opened, {idle_open} open afterwards); \
         no server connection leaked and full capacity of 4 at once after each",
        queue_stats.created, idle_stats.created,
    );
    let close = queue_pool.close(Duration::from_secs(2)).await;
    assert_no_secrets(&[&format!("{queue_stats:?} {idle_stats:?} {close:?}")]);
    Ok(())
}
