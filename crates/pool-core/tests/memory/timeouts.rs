//! Timeouts per phase, deterministic under `tokio::time::pause()`.

use std::error::Error as _;
use std::time::Duration;

use pool_core::testing::Behavior;
use pool_core::{PoolError, TimeoutPhase};

use crate::{pool, quiet, settle};

/// Waiters that queue at different moments each get their whole `acquire_timeout`, counted
/// from when they queued, and time out at most one deadline-timer tick (a hundredth of it,
/// here 10 ms) after it, in arrival order.
#[tokio::test(start_paused = true)]
async fn every_waiter_gets_its_own_full_timeout_whenever_it_queued() {
    let timeout = Duration::from_secs(1);
    let (pool, _) = pool(quiet(1).acquire_timeout(timeout));
    let _held = pool.acquire().await.unwrap();
    let mut waiters = Vec::new();
    for gap in [0, 333, 1, 250, 9] {
        tokio::time::sleep(Duration::from_millis(gap)).await;
        let acquiring = pool.acquire();
        waiters.push(tokio::spawn(async move {
            let queued = tokio::time::Instant::now();
            let err = acquiring.await.unwrap_err();
            (queued.elapsed(), tokio::time::Instant::now(), err)
        }));
    }
    let mut last_end = None;
    for waiter in waiters {
        let (waited, ended, err) = waiter.await.unwrap();
        assert_eq!(err.timeout_phase(), Some(TimeoutPhase::Waiting), "{err}");
        assert!(
            waited >= timeout && waited <= timeout + Duration::from_millis(10),
            "waited {waited:?} for a {timeout:?} timeout"
        );
        assert!(
            last_end.is_none_or(|last| ended >= last),
            "timed out in arrival order"
        );
        last_end = Some(ended);
    }
    assert_eq!(pool.stats().acquire_timeouts, 5);
}

#[tokio::test(start_paused = true)]
async fn waiting_for_a_busy_pool_times_out_in_the_waiting_phase() {
    let (pool, _) = pool(quiet(1).acquire_timeout(Duration::from_secs(3)));
    let _held = pool.acquire().await.unwrap();
    let started = tokio::time::Instant::now();
    let err = pool.acquire().await.unwrap_err();
    assert_eq!(err.timeout_phase(), Some(TimeoutPhase::Waiting), "{err}");
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert!(err.source().is_none());
    let stats = pool.stats();
    assert_eq!((stats.acquire_timeouts, stats.waiting), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn failing_connects_time_out_carrying_the_last_connect_error() {
    let (pool, connector) = pool(quiet(2).acquire_timeout(Duration::from_secs(2)));
    connector.set_connect(Behavior::Fail);
    let err = pool.acquire().await.unwrap_err();
    assert_eq!(err.timeout_phase(), Some(TimeoutPhase::Connecting), "{err}");
    let source = err.source().expect("the last connect error");
    assert!(
        source.to_string().contains("connection refused"),
        "{source}"
    );
    // Backoff: a handful of attempts in 2 s, not a hammering loop.
    let attempts = connector.attempts();
    assert!((2..=40).contains(&attempts), "{attempts} attempts");
    assert!(pool.stats().connect_failures >= 2);
}

#[tokio::test(start_paused = true)]
async fn a_connect_that_never_answers_is_bounded_by_connect_timeout() {
    let (pool, connector) = pool(
        quiet(1)
            .connect_timeout(Duration::from_millis(500))
            .acquire_timeout(Duration::from_secs(2)),
    );
    connector.set_connect(Behavior::Hang);
    let err = pool.acquire().await.unwrap_err();
    assert_eq!(err.timeout_phase(), Some(TimeoutPhase::Connecting));
    assert!(
        err.source()
            .unwrap()
            .to_string()
            .contains("connect timed out after 500ms")
    );
    // The slot was not held forever: once the server answers, the pool recovers.
    connector.set_connect(Behavior::Succeed);
    let conn = pool.acquire().await.unwrap();
    drop(conn);
}

#[tokio::test(start_paused = true)]
async fn an_authentication_failure_surfaces_at_once() {
    let (pool, connector) = pool(quiet(2).acquire_timeout(Duration::from_secs(30)));
    connector.set_connect(Behavior::FailAuth);
    let started = tokio::time::Instant::now();
    let err = pool.acquire().await.unwrap_err();
    assert!(matches!(err, PoolError::Authentication { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(connector.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn validation_that_never_answers_is_bounded_and_retires_the_connection() {
    let (pool, connector) = pool(
        quiet(1)
            .validate_after_idle(Duration::from_secs(1))
            .validation_timeout(Duration::from_millis(300)),
    );
    drop(pool.acquire().await.unwrap());
    tokio::time::sleep(Duration::from_secs(2)).await;
    connector.set_validate(Behavior::Hang);
    // The stale connection fails validation; a fresh one is opened and handed out instead.
    let conn = pool.acquire().await.unwrap();
    assert_eq!(conn.id, 2);
    assert_eq!(
        pool.stats()
            .closed
            .get(pool_core::CloseReason::ValidationFailed),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn a_connection_used_moments_ago_is_not_validated() {
    let (pool, connector) = pool(quiet(1).validate_after_idle(Duration::from_secs(5)));
    drop(pool.acquire().await.unwrap());
    drop(pool.acquire().await.unwrap());
    assert_eq!(connector.validations(), 0);
    // Idle time is judged on a coarse clock: to within one maintenance tick (here 1 s).
    tokio::time::sleep(Duration::from_secs(7)).await;
    drop(pool.acquire().await.unwrap());
    assert_eq!(connector.validations(), 1);
}

#[tokio::test(start_paused = true)]
async fn query_timeout_discards_the_connection_and_cancels_the_backend() {
    let (pool, connector) = pool(quiet(1).query_timeout(Duration::from_secs(1)));
    let mut conn = pool.acquire().await.unwrap();
    let result: Result<(), PoolError> = conn
        .run(|_c| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok(())
            })
        })
        .await;
    let err = result.unwrap_err();
    assert_eq!(err.timeout_phase(), Some(TimeoutPhase::Query));
    drop(conn);
    settle().await;
    assert_eq!(connector.cancels(), 1);
    let stats = pool.stats();
    assert_eq!(stats.closed.get(pool_core::CloseReason::Discarded), 1);
    assert_eq!(stats.total, 0);
    // Work within the limit leaves the connection in the pool.
    let n: Result<u64, PoolError> = pool.run(|c| Box::pin(async move { Ok(c.id) })).await;
    assert_eq!(n.unwrap(), 2);
    assert_eq!(pool.stats().idle, 1);
}

#[tokio::test(start_paused = true)]
async fn an_acquire_that_runs_out_while_validating_says_so() {
    let (pool, connector) = pool(
        quiet(1)
            .validate_after_idle(Duration::from_secs(1))
            .validation_timeout(Duration::from_secs(60))
            .acquire_timeout(Duration::from_secs(2)),
    );
    drop(pool.acquire().await.unwrap());
    tokio::time::sleep(Duration::from_secs(2)).await;
    connector.set_validate(Behavior::Hang);
    let err = pool.acquire().await.unwrap_err();
    assert_eq!(err.timeout_phase(), Some(TimeoutPhase::Validating), "{err}");
    // The connection whose validation was abandoned is not handed out again.
    settle().await;
    let stats = pool.stats();
    assert_eq!((stats.total, stats.in_use), (0, 0));
}

/// A waiter whose connects all ran out of `connect_timeout` times out saying why, even if
/// another connect succeeded meanwhile for an older waiter. What fault test `direct` saw on
/// a loaded machine: eight logins at once each took over the 1 s connect timeout and
/// were retried (fifteen attempts timed out), one got through and served the oldest waiter,
/// and the seven others timed out with `last_error: None`, which read as "a connect that
/// neither succeeded nor failed". The success resets the run of failures the error reads.
#[tokio::test(start_paused = true)]
async fn a_waiter_whose_connects_kept_failing_times_out_with_their_error() {
    let connect_timeout = Duration::from_secs(1);
    let (pool, connector) = pool(
        quiet(3)
            .connect_timeout(connect_timeout)
            .acquire_timeout(Duration::from_secs(3))
            .connect_backoff(Duration::from_millis(100), Duration::from_millis(100)),
    );
    // Two waiters whose connects never answer: each attempt runs out at 1 s and is retried
    // 50 to 100 ms later (at 0 s, about 1.1 s and about 2.2 s; the third runs out after 3 s).
    connector.set_connect(Behavior::Hang);
    let oldest = tokio::spawn(pool.acquire());
    let waiter = tokio::spawn(pool.acquire());
    tokio::time::sleep(Duration::from_millis(2250)).await;
    assert_eq!(pool.stats().connect_failures, 4, "{:?}", pool.stats());
    // A third caller's connect gets through at once and serves the oldest waiter.
    connector.set_connect(Behavior::Succeed);
    let newest = tokio::spawn(pool.acquire());
    settle().await;
    connector.set_connect(Behavior::Hang);
    let _served = oldest
        .await
        .unwrap()
        .expect("the new connection went to the oldest waiter");
    assert_eq!(pool.stats().created, 1);

    // The second waiter's deadline comes before its connects' next timeout.
    let err = waiter
        .await
        .unwrap()
        .expect_err("its connects never answered");
    assert_eq!(err.timeout_phase(), Some(TimeoutPhase::Connecting), "{err}");
    assert_eq!(
        pool.stats().connect_failures,
        4,
        "no connect failed after the success"
    );
    let cause = err.source().map(ToString::to_string);
    assert!(
        cause
            .as_deref()
            .is_some_and(|c| c.contains(&format!("connect timed out after {connect_timeout:?}"))),
        "every connect attempted for it timed out, yet: {err:?}"
    );
    newest.abort();
}
