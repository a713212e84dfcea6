//! Fault 8: ten thousand acquires cancelled at random points (while a connect runs for
//! them, while they wait in the queue, while an idle connection is validated for them).

use std::time::Duration;

use tokio::task::JoinSet;

use crate::Fixture;
use crate::support::{TestResult, Watch, assert_no_secrets, stats_until};

const CANCELLATIONS: u64 = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_random_cancellations_leak_nothing() -> TestResult {
    let mut f = Fixture::start("cancellation").await?;
    f.settings.max_connections = 4;
    // A connection retires after 3 uses (so connects keep happening) and is validated when
    // idle for more than 1 ms (so most checkouts validate first); 32 callers queue for 4,
    // each cancelled after a random 0-15 ms (a connect takes a few ms here, a validation
    // well under one).
    f.settings.max_uses = Some(3);
    f.settings.validate_after_idle = Some(Duration::from_millis(1));
    let pool = crate::support::pool("cancellation", &f.settings);
    let watch = Watch::start(&pool, f.admin(), f.app());

    let started = tokio::time::Instant::now();
    let (mut cancelled, mut completed, mut attempts) = (0_u64, 0_u64, 0_u64);
    let mut tasks = JoinSet::new();
    while cancelled < CANCELLATIONS {
        while tasks.len() < 32 {
            attempts += 1;
            let acquire = pool.acquire();
            let cancel_after = Duration::from_micros(fastrand::u64(0..15_000));
            let query = fastrand::bool();
            tasks.spawn(async move {
                match tokio::time::timeout(cancel_after, acquire).await {
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
        if tasks.join_next().await.expect("a task")? {
            cancelled += 1;
        } else {
            completed += 1;
        }
    }
    while let Some(done) = tasks.join_next().await {
        if done? {
            cancelled += 1;
        } else {
            completed += 1;
        }
    }
    let storm = started.elapsed();

    // Connects started for callers that gave up finish and park their connection: then
    // the server holds exactly the pool's open connections.
    let quiet = stats_until(&pool, Duration::from_secs(10), |s| {
        s.in_use == 0 && s.waiting == 0
    })
    .await;
    assert_eq!((quiet.in_use, quiet.waiting), (0, 0), "{quiet:?}");
    let on_server = f
        .backends_until(|n| n == i64::from(pool.stats().total))
        .await;
    let total = pool.stats().total;
    assert_eq!(on_server, i64::from(total), "no leaked server connection");
    let seen = watch.finish().await;
    seen.assert_bounded(f.settings.max_connections);
    f.assert_full_capacity(&pool).await;
    let stats = pool.stats();
    eprintln!(
        "fault 8 (random cancellations): {cancelled} acquires cancelled and {completed} \
         completed out of {attempts} in {storm:?}; {} connections opened, closed {:?}; \
         afterwards {total} open, {on_server} on the server, full capacity of {} at once",
        stats.created,
        stats
            .closed
            .iter()
            .filter(|(_, n)| *n > 0)
            .collect::<Vec<_>>(),
        stats.max,
    );
    let close = pool.close(Duration::from_secs(2)).await;
    assert_no_secrets(&[&format!("{stats:?} {close:?}")]);
    Ok(())
}
