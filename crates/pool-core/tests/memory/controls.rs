//! The operator's runtime controls: resize, evict, pause and resume, fail-fast start.

use std::time::Duration;

use pool_core::testing::Behavior;
use pool_core::{CloseReason, PoolError};
use tokio::time::Instant;

use crate::{assert_consistent, pool, quiet, settle};

#[tokio::test(start_paused = true)]
async fn shrinking_closes_idle_connections_at_once_and_busy_ones_only_as_they_come_back() {
    let (pool, connector) = pool(quiet(4));
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(pool.acquire().await.unwrap());
    }
    held.truncate(2);
    settle().await;
    assert_eq!((pool.stats().idle, pool.stats().in_use), (2, 2));

    pool.resize(1, 0).unwrap();
    settle().await;
    let stats = pool.stats();
    assert_eq!((stats.max, stats.min), (1, 0));
    assert_eq!(stats.closed.get(CloseReason::Resized), 2, "{stats:?}");
    assert_eq!((stats.idle, stats.in_use, stats.total), (0, 2, 2));
    // The callers keep what they hold, above the new max.
    for conn in &mut held {
        conn.in_transaction = false;
    }

    held.pop();
    settle().await;
    assert_eq!(pool.stats().closed.get(CloseReason::Resized), 3);
    assert_eq!(pool.stats().total, 1);
    held.pop();
    settle().await;
    let stats = pool.stats();
    assert_eq!(stats.closed.get(CloseReason::Resized), 3, "at max: kept");
    assert_eq!((stats.idle, stats.total), (1, 1));
    assert_consistent(&stats);
    assert_eq!(connector.open(), 1);
}

#[tokio::test(start_paused = true)]
async fn growing_serves_a_waiting_caller_with_a_new_connection() {
    let (pool, _) = pool(quiet(1));
    let held = pool.acquire().await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.acquire().await.map(|conn| conn.id) }
    });
    settle().await;
    assert_eq!(pool.stats().waiting, 1);
    pool.resize(2, 0).unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), 2);
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn a_resize_out_of_range_names_the_setting_and_changes_nothing() {
    let (pool, _) = pool(quiet(3).min_connections(1));
    let zero = pool.resize(0, 0).unwrap_err();
    assert!(
        matches!(&zero, PoolError::InvalidOption { setting, .. } if *setting == "max_connections"),
        "{zero}"
    );
    let inverted = pool.resize(2, 3).unwrap_err();
    assert!(
        matches!(&inverted, PoolError::InvalidOption { setting, .. } if *setting == "min_connections"),
        "{inverted}"
    );
    assert!(
        inverted
            .to_string()
            .contains("3 is more than max_connections (2)")
    );
    assert_eq!((pool.stats().max, pool.stats().min), (3, 1));
}

#[tokio::test(start_paused = true)]
async fn evict_retires_every_connection_without_failing_a_caller() {
    let (pool, connector) = pool(quiet(3));
    let mut held = pool.acquire().await.unwrap();
    drop(pool.acquire().await.unwrap());
    let second = pool.acquire().await.unwrap();
    let third = pool.acquire().await.unwrap();
    drop((second, third));
    settle().await;
    assert_eq!((pool.stats().idle, pool.stats().in_use), (2, 1));

    pool.evict();
    settle().await;
    assert_eq!(pool.stats().closed.get(CloseReason::Evicted), 2);
    assert_eq!(pool.stats().idle, 0);
    // The holder's work is not disturbed.
    held.in_transaction = true;
    held.in_transaction = false;
    let old = held.id;
    drop(held);
    settle().await;
    assert_eq!(pool.stats().closed.get(CloseReason::Evicted), 3);
    let fresh = pool.acquire().await.unwrap();
    assert!(fresh.id > old, "a new connection after the eviction");
    assert_eq!(connector.open(), 1);
    assert_consistent(&pool.stats());
}

#[tokio::test(start_paused = true)]
async fn a_connect_under_way_when_evict_runs_is_replaced_and_its_waiter_served() {
    let (pool, connector) = pool(quiet(1));
    connector.set_connect(Behavior::Stall(Duration::from_millis(500)));
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.acquire().await.map(|conn| conn.id) }
    });
    settle().await;
    assert_eq!(pool.stats().connecting, 1);
    pool.evict();
    // The connect begun before the eviction arrives, is retired, and a new one serves.
    assert_eq!(waiter.await.unwrap().unwrap(), 2);
    assert_eq!(pool.stats().closed.get(CloseReason::Evicted), 1);
}

#[tokio::test(start_paused = true)]
async fn paused_acquires_wait_within_their_timeout_and_no_connection_opens() {
    let (pool, connector) = pool(quiet(2).acquire_timeout(Duration::from_secs(2)));
    drop(pool.acquire().await.unwrap());
    settle().await;
    let attempts = connector.attempts();

    pool.pause();
    assert!(pool.is_paused() && pool.stats().paused);
    let started = Instant::now();
    let error = pool.acquire().await.unwrap_err();
    assert!(matches!(error, PoolError::Timeout { .. }), "{error}");
    assert!(started.elapsed() <= Duration::from_secs(3));
    assert!(pool.try_acquire().unwrap().is_none(), "nothing handed out");
    assert_eq!(connector.attempts(), attempts, "no connection opened");

    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.acquire().await.map(|conn| conn.id) }
    });
    settle().await;
    assert_eq!(pool.stats().waiting, 1);
    pool.resume();
    assert!(!pool.is_paused());
    assert_eq!(
        waiter.await.unwrap().unwrap(),
        1,
        "the idle connection, at resume"
    );
    assert_consistent(&pool.stats());
}

#[tokio::test(start_paused = true)]
async fn a_connection_released_while_paused_stays_idle_until_resume() {
    let (pool, _) = pool(quiet(1));
    let held = pool.acquire().await.unwrap();
    pool.pause();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.acquire().await.map(|conn| conn.id) }
    });
    settle().await;
    drop(held);
    settle().await;
    let stats = pool.stats();
    assert_eq!((stats.idle, stats.waiting), (1, 1), "{stats:?}");
    pool.resume();
    assert_eq!(waiter.await.unwrap().unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn ready_opens_one_connection_and_returns_at_once_when_one_is_open() {
    let (pool, connector) = pool(quiet(2));
    pool.ready().await.unwrap();
    assert_eq!((pool.stats().idle, connector.attempts()), (1, 1));
    pool.ready().await.unwrap();
    assert_eq!(connector.attempts(), 1, "no second connect");
}

#[tokio::test(start_paused = true)]
async fn ready_fails_with_the_connect_error_naming_the_pool() {
    let (pool, connector) = pool(quiet(2).name("orders"));
    connector.set_connect(Behavior::FailAuth);
    let refused = pool.ready().await.unwrap_err();
    assert!(
        matches!(&refused, PoolError::Authentication { pool, .. } if &**pool == "orders"),
        "{refused}"
    );

    connector.set_connect(Behavior::Hang);
    let started = Instant::now();
    let hung = pool.ready().await.unwrap_err();
    assert!(
        matches!(&hung, PoolError::Connect { pool, .. } if &**pool == "orders"),
        "{hung}"
    );
    assert!(
        started.elapsed() <= Duration::from_secs(2),
        "one connect_timeout"
    );
    let stats = pool.stats();
    assert_eq!((stats.total, stats.connecting), (0, 0), "{stats:?}");
    assert_eq!(stats.connect_failures, 2);
}
