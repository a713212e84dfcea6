//! Max uses, lifetime, idle reaping, min refill, leaks, dirty releases and close.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::pin::pin;
use std::task::{Context, Poll, Waker};

use pool_core::{CloseReason, PoolError, PoolObserver};

use crate::{assert_consistent, pool, quiet, settle};

#[tokio::test(start_paused = true)]
async fn a_connection_is_closed_after_max_uses() {
    let (pool, connector) = pool(quiet(1).max_uses(3));
    for _ in 0..3 {
        assert_eq!(pool.acquire().await.unwrap().id, 1);
    }
    settle().await;
    assert_eq!(pool.stats().closed.get(CloseReason::MaxUses), 1);
    assert_eq!(connector.closed(), 1);
    assert_eq!(pool.acquire().await.unwrap().id, 2);
}

#[tokio::test(start_paused = true)]
async fn lifetime_never_retires_a_connection_in_use() {
    let (pool, _) = pool(
        quiet(1)
            .max_lifetime(Duration::from_secs(10))
            .lifetime_jitter(Duration::from_secs(1)),
    );
    let mut conn = pool.acquire().await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    // Still ours and usable well past its lifetime.
    conn.in_transaction = false;
    assert_eq!(pool.stats().in_use, 1);
    assert_eq!(pool.stats().closed.get(CloseReason::Lifetime), 0);
    drop(conn);
    settle().await;
    assert_eq!(pool.stats().closed.get(CloseReason::Lifetime), 1);
    assert_eq!(pool.acquire().await.unwrap().id, 2);
}

#[tokio::test(start_paused = true)]
async fn idle_connections_past_their_lifetime_are_retired_in_the_background() {
    let (pool, _) = pool(
        quiet(2)
            .max_lifetime(Duration::from_secs(10))
            .lifetime_jitter(Duration::from_secs(2)),
    );
    drop((pool.acquire().await.unwrap(), pool.acquire().await.unwrap()));
    tokio::time::sleep(Duration::from_secs(12)).await;
    settle().await;
    let stats = pool.stats();
    assert_eq!(stats.closed.get(CloseReason::Lifetime), 2);
    assert_eq!(stats.total, 0);
}

#[tokio::test(start_paused = true)]
async fn idle_connections_are_reaped_down_to_min_and_min_is_refilled() {
    let (pool, connector) = pool(
        quiet(5)
            .min_connections(2)
            .idle_timeout(Duration::from_secs(10)),
    );
    settle().await;
    assert_eq!(pool.stats().total, 2, "min_connections opened at start");
    let held: Vec<_> = futures_util::future::join_all((0..5).map(|_| pool.acquire())).await;
    assert!(held.iter().all(Result::is_ok));
    drop(held);
    assert_eq!(pool.stats().idle, 5);
    tokio::time::sleep(Duration::from_secs(12)).await;
    settle().await;
    let stats = pool.stats();
    assert_eq!((stats.total, stats.closed.get(CloseReason::Idle)), (2, 3));
    // A connection that breaks is replaced to keep the minimum.
    let mut conn = pool.acquire().await.unwrap();
    conn.broken = true;
    drop(conn);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pool.stats().total, 2);
    assert_eq!(connector.open(), 2);
}

#[derive(Debug, Default)]
struct Leaks(Mutex<Vec<(String, Duration)>>);

impl PoolObserver for Leaks {
    fn on_leak(&self, location: &'static std::panic::Location<'static>, held: Duration) {
        self.0.lock().unwrap().push((location.to_string(), held));
    }
}

#[tokio::test(start_paused = true)]
async fn a_checkout_held_too_long_is_reported_with_the_callers_location() {
    let (pool, _) = pool(quiet(1).leak_detection_threshold(Duration::from_secs(2)));
    let leaks = Arc::new(Leaks::default());
    assert!(pool.set_observer(leaks.clone()));
    let line = line!() + 1;
    let conn = pool.acquire().await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let reported = leaks.0.lock().unwrap().clone();
    assert_eq!(reported.len(), 1, "reported once");
    assert!(
        reported[0].0.contains(&format!("lifecycle.rs:{line}:")),
        "{}",
        reported[0].0
    );
    assert!(reported[0].1 >= Duration::from_secs(2));
    drop(conn);
}

#[tokio::test(start_paused = true)]
async fn a_connection_returned_in_a_transaction_is_cleaned_before_reuse() {
    let (pool, connector) = pool(quiet(1));
    let mut conn = pool.acquire().await.unwrap();
    conn.in_transaction = true;
    drop(conn);
    let conn = pool.acquire().await.unwrap();
    assert!(!conn.in_transaction);
    assert_eq!((conn.id, connector.cleanups()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn detach_and_discard_free_the_slot() {
    let (pool, _) = pool(quiet(1));
    let detached = pool.acquire().await.unwrap().detach();
    assert_eq!(pool.stats().total, 0);
    pool.acquire().await.unwrap().discard();
    settle().await;
    let stats = pool.stats();
    assert_eq!(
        (stats.total, stats.closed.get(CloseReason::Discarded)),
        (0, 1)
    );
    assert_eq!(pool.acquire().await.unwrap().id, 3);
    drop(detached);
}

#[tokio::test(start_paused = true)]
async fn close_wakes_waiters_and_reports_what_is_still_checked_out() {
    let (pool, connector) = pool(quiet(2).leak_detection_threshold(Duration::from_secs(60)));
    let idle = pool.acquire().await.unwrap();
    let held = pool.acquire().await.unwrap();
    drop(idle);
    // Fill the pool again so a third caller waits.
    let again = pool.acquire().await.unwrap();
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.acquire().await.map(drop) })
    };
    settle().await;
    let returner = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(again);
    });
    let report = pool.close(Duration::from_secs(3)).await;
    assert!(waiter.await.unwrap().unwrap_err().is_closed());
    returner.await.unwrap();
    assert_eq!((report.waiters_failed, report.returned), (1, 1));
    assert_eq!(report.still_checked_out.len(), 1);
    assert!(
        report.still_checked_out[0]
            .location
            .file()
            .ends_with("lifecycle.rs")
    );
    assert!(!report.is_complete());
    assert!(pool.is_closing());
    assert!(matches!(
        pool.acquire().await,
        Err(PoolError::Closed { .. })
    ));
    assert!(pool.try_acquire().unwrap_err().is_closed());
    // The straggler is closed when it comes back.
    drop(held);
    settle().await;
    let stats = pool.stats();
    assert_consistent(&stats);
    assert_eq!(stats.total, 0);
    assert_eq!(connector.open(), 0);
}

#[test]
fn outside_a_tokio_runtime_acquire_is_an_error_not_a_panic() {
    let (pool, _) = pool(quiet(1));
    let mut acquiring = pin!(pool.acquire());
    let mut cx = Context::from_waker(Waker::noop());
    match acquiring.as_mut().poll(&mut cx) {
        Poll::Ready(Err(PoolError::NoRuntime { .. })) => {}
        other => panic!("expected a no-runtime error, got {other:?}"),
    }
    let stats = pool.stats();
    assert_eq!((stats.waiting, stats.total), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn keepalive_pings_do_not_keep_idle_connections_from_being_reaped() {
    let (pool, connector) = pool(
        quiet(2)
            .keepalive_interval(Duration::from_secs(1))
            .idle_timeout(Duration::from_secs(5)),
    );
    drop(pool.acquire().await.unwrap());
    tokio::time::sleep(Duration::from_secs(8)).await;
    settle().await;
    assert!(connector.validations() >= 1, "pinged while idle");
    let stats = pool.stats();
    assert_eq!((stats.total, stats.closed.get(CloseReason::Idle)), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn maintenance_runs_from_build_until_close() {
    let (pool, _) = pool(quiet(1).maintenance_interval(Duration::from_secs(1)));
    assert!(pool.is_maintenance_running(), "started when built");
    tokio::time::sleep(Duration::from_secs(3)).await;
    settle().await;
    assert!(pool.is_maintenance_running(), "still running after ticks");
    pool.close(Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle().await;
    assert!(!pool.is_maintenance_running(), "stops with the pool");
}

#[test]
fn maintenance_is_not_running_once_its_runtime_shut_down() {
    let (outside, _) = pool(quiet(1));
    assert!(!outside.is_maintenance_running(), "no runtime, no task");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let (pool, _) = runtime.block_on(async { pool(quiet(1)) });
    assert!(pool.is_maintenance_running());
    drop(runtime);
    assert!(
        !pool.is_maintenance_running(),
        "the task went with its runtime while the pool lives on"
    );
}

#[tokio::test(start_paused = true)]
async fn connections_opened_together_reach_max_uses_on_different_rounds() {
    // Ten connections opened together and used round-robin would all reach `max_uses` on the
    // same round, and the pool would open ten replacements at once (ten logins' CPU in a
    // burst). Each connection retires after 90–100 % of `max_uses` instead.
    const MAX: usize = 10;
    const MAX_USES: u64 = 200;
    let (pool, _) = pool(quiet(MAX as u32).max_uses(MAX_USES));
    // Every connection is used once a round, so a retirement's round is its use count; a
    // replacement cannot reach 90 % of `max_uses` within these rounds.
    let mut retired_on_round: Vec<usize> = Vec::new();
    for round in 1..=MAX_USES as usize + 1 {
        let mut held = Vec::with_capacity(MAX);
        for _ in 0..MAX {
            held.push(pool.acquire().await.unwrap());
        }
        let before = pool.stats().closed.get(CloseReason::MaxUses);
        drop(held);
        settle().await;
        let retired = pool.stats().closed.get(CloseReason::MaxUses) - before;
        retired_on_round.extend(std::iter::repeat_n(round, retired as usize));
    }
    assert!(
        retired_on_round.len() >= MAX,
        "every first connection retired for max_uses: {retired_on_round:?}"
    );
    let first: Vec<usize> = retired_on_round[..MAX].to_vec();
    let most_in_one_round = first
        .iter()
        .map(|r| first.iter().filter(|x| *x == r).count())
        .max()
        .unwrap();
    assert!(
        most_in_one_round <= MAX / 2,
        "at most half of the connections retire on the same round; rounds: {first:?}"
    );
    assert!(
        first
            .iter()
            .all(|r| (MAX_USES as usize * 9 / 10..=MAX_USES as usize).contains(r)),
        "each retires after 90–100 % of max_uses ({MAX_USES}); rounds: {first:?}"
    );
    assert_consistent(&pool.stats());
}
