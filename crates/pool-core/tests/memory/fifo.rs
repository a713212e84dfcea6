//! Waiters are served in arrival order; a released connection goes to the oldest waiter.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool_core::PoolError;

use crate::{pool, quiet, settle};

#[tokio::test(start_paused = true)]
async fn waiters_are_served_in_arrival_order() {
    let (pool, _) = pool(quiet(1));
    let held = pool.acquire().await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let pool = pool.clone();
        let order = Arc::clone(&order);
        tasks.push(tokio::spawn(async move {
            let conn = pool.acquire().await.unwrap();
            order.lock().unwrap().push(i);
            tokio::time::sleep(Duration::from_millis(1)).await;
            drop(conn);
        }));
        // Each task enqueues before the next one starts.
        settle().await;
    }
    assert_eq!(pool.stats().waiting, 8);
    drop(held);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
    assert_eq!(pool.stats().created, 1);
}

#[tokio::test(start_paused = true)]
async fn a_released_connection_goes_to_the_oldest_waiter_not_a_newcomer() {
    let (pool, _) = pool(quiet(1));
    let held = pool.acquire().await.unwrap();
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.acquire().await.map(|c| c.use_count()) })
    };
    settle().await;
    drop(held);
    // The connection is already the waiter's: a newcomer finds nothing idle.
    assert!(pool.try_acquire().unwrap().is_none());
    assert_eq!(waiter.await.unwrap().unwrap(), 2);
}

#[tokio::test(start_paused = true)]
async fn max_waiters_sheds_load_with_a_clear_error() {
    let (pool, _) = pool(quiet(1).max_waiters(2));
    let _held = pool.acquire().await.unwrap();
    let mut waiters = Vec::new();
    for _ in 0..2 {
        let pool = pool.clone();
        waiters.push(tokio::spawn(async move { pool.acquire().await.map(drop) }));
    }
    settle().await;
    let err = pool.acquire().await.unwrap_err();
    assert!(
        matches!(err, PoolError::TooManyWaiters { max_waiters: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("max_waiters"));
    assert_eq!(pool.stats().waiting, 2);
}

#[tokio::test(start_paused = true)]
async fn max_waiters_zero_still_lets_the_pool_grow() {
    let (pool, _) = pool(quiet(2).max_waiters(0));
    let first = pool.acquire().await.unwrap();
    let second = pool.acquire().await.unwrap();
    assert!(matches!(
        pool.acquire().await,
        Err(PoolError::TooManyWaiters { .. })
    ));
    drop((first, second));
}
