//! Dropping `acquire()` at any await point loses no capacity and leaks no connection.

use std::time::Duration;

use pool_core::testing::Behavior;

use crate::{assert_consistent, pool, quiet, settle};

#[tokio::test(start_paused = true)]
async fn a_connect_for_a_waiter_that_gave_up_serves_the_next_one() {
    let (pool, connector) = pool(quiet(1).connect_timeout(Duration::from_secs(5)));
    connector.set_connect(Behavior::Stall(Duration::from_secs(2)));
    // The first caller gives up while its connect is under way.
    let gave_up = tokio::time::timeout(Duration::from_millis(500), pool.acquire()).await;
    assert!(gave_up.is_err());
    // The next caller is served by that same connect: no second attempt.
    let conn = pool.acquire().await.unwrap();
    assert_eq!(conn.id, 1);
    assert_eq!(connector.attempts(), 1);
    assert_eq!(pool.stats().created, 1);
}

#[tokio::test(start_paused = true)]
async fn a_connection_delivered_to_a_cancelled_waiter_goes_to_the_next() {
    let (pool, _) = pool(quiet(1));
    let held = pool.acquire().await.unwrap();
    let first = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.acquire().await.map(drop) })
    };
    settle().await;
    let second = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.acquire().await.map(|c| c.id) })
    };
    settle().await;
    // Deliver to the first waiter, then cancel it before it runs.
    drop(held);
    first.abort();
    assert_eq!(second.await.unwrap().unwrap(), 1);
    let stats = pool.stats();
    assert_consistent(&stats);
    assert_eq!((stats.total, stats.idle), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn thousands_of_random_cancellations_keep_counts_and_capacity() {
    const MAX: u32 = 4;
    let (pool, connector) = pool(
        quiet(MAX)
            .min_connections(1)
            .validate_after_idle(Duration::from_millis(5))
            .validation_timeout(Duration::from_millis(20))
            .connect_timeout(Duration::from_millis(30))
            .acquire_timeout(Duration::from_millis(200))
            .max_uses(7)
            .connect_backoff(Duration::from_millis(1), Duration::from_millis(10)),
    );
    let chaos = {
        let connector = connector.clone();
        tokio::spawn(async move {
            let modes = [
                Behavior::Succeed,
                Behavior::Succeed,
                Behavior::Fail,
                Behavior::Stall(Duration::from_millis(3)),
                Behavior::Stall(Duration::from_millis(50)),
                Behavior::Hang,
            ];
            for _ in 0..400 {
                connector.set_connect(modes[fastrand::usize(..modes.len())]);
                connector.set_validate(modes[fastrand::usize(..modes.len())]);
                tokio::time::sleep(Duration::from_millis(fastrand::u64(1..10))).await;
            }
            connector.set_connect(Behavior::Succeed);
            connector.set_validate(Behavior::Succeed);
        })
    };
    let mut workers = Vec::new();
    for _ in 0..16 {
        let pool = pool.clone();
        workers.push(tokio::spawn(async move {
            let mut cancelled = 0u32;
            for _ in 0..300 {
                let patience = Duration::from_millis(fastrand::u64(0..40));
                match tokio::time::timeout(patience, pool.acquire()).await {
                    Ok(Ok(mut conn)) => {
                        if fastrand::u8(..10) == 0 {
                            conn.in_transaction = true;
                        }
                        if fastrand::u8(..20) == 0 {
                            conn.broken = true;
                        }
                        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..5))).await;
                        if fastrand::u8(..30) == 0 {
                            conn.discard();
                        }
                    }
                    Ok(Err(_)) => {}
                    Err(_) => cancelled += 1,
                }
                assert_consistent(&pool.stats());
            }
            cancelled
        }));
    }
    let mut cancelled = 0;
    for w in workers {
        cancelled += w.await.unwrap();
    }
    chaos.await.unwrap();
    assert!(cancelled >= 1000, "only {cancelled} cancellations");

    // Afterwards: the pool serves `max` concurrent checkouts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut held = Vec::new();
    for _ in 0..MAX {
        held.push(pool.acquire().await.expect("full capacity after the storm"));
    }
    let stats = pool.stats();
    assert_consistent(&stats);
    assert_eq!((stats.total, stats.in_use, stats.waiting), (MAX, MAX, 0));
    drop(held);
    settle().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // No connection leaked: every live one is counted by the pool.
    assert_eq!(connector.open(), i64::from(pool.stats().total));
}

/// The same storm on several threads with real (short) time, so the lock-free parts race for
/// real; debug assertions check the counts inside the pool at every step.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cancellations_on_many_threads_keep_counts_and_capacity() {
    const MAX: u32 = 3;
    let (pool, connector) = pool(
        quiet(MAX)
            .acquire_timeout(Duration::from_millis(500))
            .connect_timeout(Duration::from_millis(50))
            .max_uses(5)
            .connect_backoff(Duration::from_millis(1), Duration::from_millis(5)),
    );
    connector.set_connect(Behavior::Stall(Duration::from_micros(200)));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let pool = pool.clone();
        workers.push(tokio::spawn(async move {
            for _ in 0..200 {
                let patience = Duration::from_micros(fastrand::u64(0..400));
                if let Ok(Ok(mut conn)) = tokio::time::timeout(patience, pool.acquire()).await {
                    conn.in_transaction = fastrand::u8(..8) == 0;
                    tokio::task::yield_now().await;
                }
                assert_consistent(&pool.stats());
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let held = futures_util::future::join_all((0..MAX).map(|_| pool.acquire())).await;
    assert!(
        held.iter().all(Result::is_ok),
        "full capacity after the storm"
    );
    let stats = pool.stats();
    assert_eq!((stats.total, stats.waiting), (MAX, 0));
}
