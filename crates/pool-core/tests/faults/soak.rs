//! Fault 9: a bounded soak. 1,000 tasks share a pool of max 10 for a fixed number of
//! acquisitions, each running a real query; afterwards the counts add up and memory has not
//! grown past a stated bound.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;

use crate::Fixture;
use crate::support::{TestResult, Watch, assert_no_secrets, rss_bytes, stats_until};

const TASKS: u64 = 1_000;
/// Acquisitions per task in the warm-up round (not measured) and in the soak.
const WARM_UP: u64 = 2;
const ROUNDS: u64 = 20;
/// Resident memory may grow by at most this much between the end of the warm-up and the end
/// of the soak (allocator caches and the runtime's task slabs settle during the warm-up).
const RSS_BOUND: u64 = 16 * 1024 * 1024;

async fn run_round(pool: &pool_core::Pool<pool_core::PgConnector>, per_task: u64) -> u64 {
    let start = Arc::new(Barrier::new(TASKS as usize));
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let pool = pool.clone();
        let start = Arc::clone(&start);
        tasks.spawn(async move {
            start.wait().await;
            let mut sum = 0;
            for i in 0..per_task {
                let n = (task * per_task + i) as i64;
                let mut conn = pool.acquire().await.expect("no acquire fails in the soak");
                let next: i64 = sqlx::query_scalar("SELECT $1::int8 + 1")
                    .bind(n)
                    .fetch_one(&mut *conn)
                    .await
                    .expect("a query");
                assert_eq!(next, n + 1);
                sum += 1;
            }
            sum
        });
    }
    let mut done = 0;
    while let Some(sum) = tasks.join_next().await {
        done += sum.expect("a soak task");
    }
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_of_a_thousand_tasks_on_ten_connections_keeps_counts_and_memory_bounded() -> TestResult
{
    let mut f = Fixture::start("soak").await?;
    f.settings.max_connections = 10;
    f.settings.acquire_timeout = Duration::from_secs(60);
    // Opening connections competes with 1,000 busy tasks for two cores.
    f.settings.connect_timeout = Duration::from_secs(10);
    let pool = crate::support::pool("soak", &f.settings);
    let watch = Watch::start(&pool, f.admin(), f.app());

    assert_eq!(run_round(&pool, WARM_UP).await, TASKS * WARM_UP);
    let before = pool.stats();
    let rss_before = rss_bytes();
    let started = tokio::time::Instant::now();
    let done = run_round(&pool, ROUNDS).await;
    let took = started.elapsed();
    let rss_after = rss_bytes();
    // A connect started for the first waiters can still be on its way when a fast soak ends.
    let after = stats_until(&pool, Duration::from_secs(5), |s| s.connecting == 0).await;
    let seen = watch.finish().await;

    assert_eq!(done, TASKS * ROUNDS);
    assert_eq!(
        after.acquired - before.acquired,
        TASKS * ROUNDS,
        "{after:?}"
    );
    assert_eq!(after.acquire_timeouts, 0);
    assert_eq!((after.in_use, after.waiting), (0, 0), "{after:?}");
    assert_eq!(
        after.total, 10,
        "the pool grew to max under load and stayed there: {after:?}"
    );
    assert_eq!(
        after.created - after.closed.total(),
        u64::from(after.total),
        "opened minus closed is what is open: {after:?}"
    );
    let on_server = f.backends_until(|n| n == i64::from(after.total)).await;
    assert_eq!(on_server, i64::from(after.total));
    seen.assert_bounded(f.settings.max_connections);
    let growth = rss_after.saturating_sub(rss_before);
    eprintln!(
        "fault 9 (soak): {} acquisitions with a query by {TASKS} tasks on max 10 in {took:?} \
         ({:.0}/s); {} waited; {} connections opened in all ({} connect attempts failed); RSS {} KiB -> {} KiB (growth {} \
         KiB, bound {} KiB)",
        TASKS * ROUNDS,
        (TASKS * ROUNDS) as f64 / took.as_secs_f64(),
        after.waited - before.waited,
        after.created,
        after.connect_failures,
        rss_before / 1024,
        rss_after / 1024,
        growth / 1024,
        RSS_BOUND / 1024,
    );
    assert!(
        growth <= RSS_BOUND,
        "resident memory grew by {growth} bytes over the soak"
    );
    let close = pool.close(Duration::from_secs(2)).await;
    assert_no_secrets(&[&format!("{after:?} {close:?}")]);
    Ok(())
}
