//! The pool when its surroundings misbehave: runtimes that go away under it, observers that
//! panic or call back into the pool, storms of failed logins and abandoned waiters, and
//! extreme values.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Waker};
use std::time::Duration;

use pool_core::testing::{Behavior, MemoryConnector};
use pool_core::{CloseReason, Pool, PoolError, PoolObserver, TimeoutPhase};

use crate::{assert_consistent, pool, quiet, settle};

/// Generous room for a deadline on a busy two-core machine.
const SLACK: Duration = Duration::from_secs(5);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime")
}

/// A pool built (and its maintenance started) in `home`.
fn pool_in(
    home: &tokio::runtime::Runtime,
    options: pool_core::PoolOptions,
) -> (Pool<MemoryConnector>, MemoryConnector) {
    home.block_on(async { pool(options) })
}

#[test]
fn waiters_still_time_out_after_the_runtime_that_ran_the_deadline_timer_is_gone() {
    within(Duration::from_secs(30), || {
        // The pool's home runtime runs on a thread of its own, as a service's would.
        let home = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .expect("a runtime");
        let (pool, _) = pool_in(
            &home,
            quiet(1)
                .min_connections(1)
                .acquire_timeout(Duration::from_millis(200)),
        );
        // Taken from the idle queue: nobody has waited yet, so no deadline timer runs.
        let held = home.block_on(async {
            while pool.stats().idle == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            pool.acquire().await.expect("the one connection")
        });
        {
            // The first waiter starts the deadline timer in its own runtime, which then goes.
            let other = runtime();
            let error = other
                .block_on(pool.acquire())
                .expect_err("the pool is busy");
            assert_eq!(
                error.timeout_phase(),
                Some(TimeoutPhase::Waiting),
                "{error}"
            );
        }
        let outcome = home.block_on(async { tokio::time::timeout(SLACK, pool.acquire()).await });
        match outcome {
            Ok(Err(error)) => assert_eq!(error.timeout_phase(), Some(TimeoutPhase::Waiting)),
            Ok(Ok(_)) => panic!("the only connection is held"),
            Err(_) => panic!("a waiter never timed out: the deadline timer died with its runtime"),
        }
        drop(held);
        assert_consistent(&pool.stats());
    });
}

#[test]
fn a_connect_backing_off_in_a_runtime_that_is_dropped_gives_its_slot_back() {
    let home = runtime();
    let (pool, connector) = pool_in(
        &home,
        quiet(1)
            .acquire_timeout(Duration::from_millis(300))
            .connect_backoff(Duration::from_secs(1), Duration::from_secs(1)),
    );
    connector.set_connect(Behavior::Fail);
    {
        let other = runtime();
        // The connect starts in `other`, fails, and backs off there when `other` goes.
        let error = other.block_on(pool.acquire()).expect_err("connects fail");
        assert_eq!(
            error.timeout_phase(),
            Some(TimeoutPhase::Connecting),
            "{error}"
        );
    }
    connector.set_connect(Behavior::Succeed);
    let outcome = home.block_on(async { tokio::time::timeout(SLACK, pool.acquire()).await });
    let conn = outcome
        .expect("the acquire returns")
        .expect("the slot of the dropped connect is free again");
    drop(conn);
    let stats = pool.stats();
    assert_eq!(stats.connecting, 0, "{stats:?}");
    assert_consistent(&stats);
}

#[test]
fn a_connection_being_cleaned_when_its_runtime_goes_is_uncounted() {
    let home = runtime();
    let (pool, connector) = pool_in(&home, quiet(1).acquire_timeout(Duration::from_secs(1)));
    {
        let other = runtime();
        other.block_on(async {
            let mut conn = pool.acquire().await.expect("a connection");
            conn.in_transaction = true;
            // Returned dirty: its cleanup is spawned on `other`, which ends before it runs.
        });
    }
    assert_eq!(connector.open(), 0, "the connection went with the runtime");
    let stats = pool.stats();
    assert_eq!((stats.total, stats.in_use), (0, 0), "{stats:?}");
    let outcome = home.block_on(async { tokio::time::timeout(SLACK, pool.acquire()).await });
    outcome
        .expect("the acquire returns")
        .expect("the pool has its slot back");
}

#[tokio::test(start_paused = true)]
async fn an_acquire_that_validated_and_then_waits_ends_by_its_one_deadline() {
    let timeout = Duration::from_secs(1);
    let (pool, connector) = pool(
        quiet(1)
            .acquire_timeout(timeout)
            .validate_after_idle(Duration::from_millis(10))
            .validation_timeout(Duration::from_millis(900)),
    );
    drop(pool.acquire().await.expect("a connection"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The idle connection's validation uses up most of the deadline and fails; no new
    // connection can be opened in the rest of it.
    connector.set_validate(Behavior::Hang);
    connector.set_connect(Behavior::Hang);
    let started = tokio::time::Instant::now();
    let error = pool.acquire().await.expect_err("nothing to hand out");
    let took = started.elapsed();
    assert!(
        took <= timeout + Duration::from_millis(10),
        "one acquire_timeout of {timeout:?} bounds the whole acquire: took {took:?} ({error})"
    );
    assert!(error.timeout_phase().is_some(), "{error}");
    assert_eq!(pool.stats().acquire_timeouts, 1);
}

/// An observer that calls back into its pool from every event, and can be told to panic.
#[derive(Debug, Default)]
struct Meddler {
    pool: OnceLock<Pool<MemoryConnector>>,
    panic_on_acquire: AtomicBool,
    panic_on_release: AtomicBool,
    events: AtomicU64,
}

impl Meddler {
    fn meddle(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
        if let Some(pool) = self.pool.get() {
            assert_consistent(&pool.stats());
        }
    }
}

impl PoolObserver for Meddler {
    fn on_connect(&self, _: Duration) {
        self.meddle();
    }
    fn on_connect_error(&self) {
        self.meddle();
    }
    fn on_acquire(&self, _: Duration) {
        self.meddle();
        if self.panic_on_acquire.swap(false, Ordering::Relaxed) {
            panic!("observer failure on acquire");
        }
    }
    fn on_release(&self, _: Duration) {
        self.meddle();
        if self.panic_on_release.swap(false, Ordering::Relaxed) {
            panic!("observer failure on release");
        }
    }
    fn on_remove(&self, _: CloseReason) {
        self.meddle();
    }
    fn on_timeout(&self, _: TimeoutPhase) {
        self.meddle();
    }
}

/// Runs `scenario` on a thread of its own, so a deadlock fails the test instead of hanging
/// it.
fn within(limit: Duration, scenario: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        scenario();
        let _ = done.send(());
    });
    match finished.recv_timeout(limit) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("the scenario did not finish in {limit:?}: deadlocked")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("the scenario failed"),
    }
}

#[test]
fn an_observer_may_call_back_into_its_pool_from_any_event() {
    within(Duration::from_secs(20), || {
        let rt = runtime();
        rt.block_on(async {
            let (pool, connector) = pool(
                quiet(2)
                    .acquire_timeout(Duration::from_millis(200))
                    .connect_backoff(Duration::from_millis(10), Duration::from_millis(20)),
            );
            let observer = Arc::new(Meddler::default());
            observer.pool.set(pool.clone()).expect("set once");
            assert!(pool.set_observer(observer.clone()));
            drop(pool.acquire().await.expect("connect, acquire, release"));
            let _a = pool.acquire().await.expect("the idle one");
            let _b = pool.acquire().await.expect("another connection");
            connector.set_connect(Behavior::Fail);
            let error = pool.acquire().await.expect_err("full");
            assert!(error.timeout_phase().is_some());
            assert!(observer.events.load(Ordering::Relaxed) > 4);
        });
    });
    within(Duration::from_secs(20), || {
        let rt = runtime();
        rt.block_on(async {
            let (pool, connector) = pool(
                quiet(1)
                    .acquire_timeout(Duration::from_millis(300))
                    .connect_backoff(Duration::from_millis(10), Duration::from_millis(20)),
            );
            let observer = Arc::new(Meddler::default());
            observer.pool.set(pool.clone()).expect("set once");
            assert!(pool.set_observer(observer.clone()));
            connector.set_connect(Behavior::Fail);
            let error = pool.acquire().await.expect_err("connects fail");
            assert_eq!(error.timeout_phase(), Some(TimeoutPhase::Connecting));
        });
    });
}

#[tokio::test]
async fn a_panicking_observer_never_reaches_a_caller_nor_costs_a_connection() {
    let (pool, _) = pool(quiet(1).acquire_timeout(Duration::from_secs(2)));
    let observer = Arc::new(Meddler::default());
    assert!(pool.set_observer(observer.clone()));

    observer.panic_on_acquire.store(true, Ordering::Relaxed);
    let acquiring = tokio::spawn(pool.acquire());
    let conn = acquiring
        .await
        .expect("no panic reaches the caller")
        .expect("a connection");
    observer.panic_on_release.store(true, Ordering::Relaxed);
    let releasing = tokio::spawn(async move { drop(conn) });
    releasing.await.expect("no panic reaches the caller");
    settle().await;

    let stats = pool.stats();
    assert_eq!(
        (stats.total, stats.idle, stats.in_use),
        (1, 1, 0),
        "{stats:?}"
    );
    drop(pool.acquire().await.expect("the connection is still there"));
}

#[tokio::test(start_paused = true)]
async fn failed_logins_go_at_the_backoff_pace_while_callers_learn_at_once() {
    let max = 10;
    let backoff = Duration::from_millis(100);
    let cap = Duration::from_secs(1);
    let (pool, connector) = pool(quiet(max).connect_backoff(backoff, cap));
    connector.set_connect(Behavior::FailAuth);
    for step in 0..5u64 {
        let started = tokio::time::Instant::now();
        let before = connector.attempts();
        let outcomes = futures_util::future::join_all((0..1000).map(|_| pool.acquire())).await;
        for outcome in &outcomes {
            assert!(
                matches!(outcome, Err(PoolError::Authentication { .. })),
                "every caller learns the login was refused: {outcome:?}"
            );
        }
        assert!(
            started.elapsed() < backoff,
            "callers learn at once, not after a backoff: {:?}",
            started.elapsed()
        );
        let attempts = connector.attempts() - before;
        assert!(
            attempts <= u64::from(max),
            "step {step}: {attempts} logins for 1000 callers (at most max_connections per \
             backoff step)"
        );
        tokio::time::sleep(cap + Duration::from_millis(1)).await;
    }
    connector.set_connect(Behavior::Succeed);
    drop(pool.acquire().await.expect("logins work again"));
    assert_consistent(&pool.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_thousand_waiters_giving_up_at_once_leave_in_linear_time() {
    const WAITERS: usize = 50_000;
    let (pool, _) = pool(quiet(1).acquire_timeout(Duration::from_secs(600)));
    let _held = pool.acquire().await.expect("the one connection");
    let cx = &mut Context::from_waker(Waker::noop());
    let mut waiters: Vec<Pin<Box<dyn Future<Output = _> + Send>>> = Vec::with_capacity(WAITERS);
    for _ in 0..WAITERS {
        let mut acquiring: Pin<Box<dyn Future<Output = _> + Send>> = Box::pin(pool.acquire());
        assert!(acquiring.as_mut().poll(cx).is_pending(), "queued");
        waiters.push(acquiring);
    }
    assert_eq!(pool.stats().waiting, WAITERS as u32);

    // Another thread asks for the stats throughout: each answer comes quickly.
    let leaving = Arc::new(AtomicBool::new(true));
    let observer = std::thread::spawn({
        let (pool, leaving) = (pool.clone(), Arc::clone(&leaving));
        move || {
            let mut slowest = Duration::ZERO;
            while leaving.load(Ordering::Relaxed) {
                let asked = std::time::Instant::now();
                let _ = pool.stats();
                slowest = slowest.max(asked.elapsed());
            }
            slowest
        }
    });
    // Newest first: the order in which a queue that searches for the leaver scans it whole
    // every time.
    let started = std::time::Instant::now();
    while let Some(waiter) = waiters.pop() {
        drop(waiter);
    }
    let took = started.elapsed();
    leaving.store(false, Ordering::Relaxed);
    let slowest_stats = observer.join().expect("the stats thread");
    assert!(
        slowest_stats < Duration::from_millis(250),
        "stats() took up to {slowest_stats:?} while the waiters left"
    );
    assert_eq!(pool.stats().waiting, 0);
    assert!(
        took < Duration::from_secs(3),
        "{WAITERS} waiters took {took:?} to leave: leaving must not scan the queue"
    );
    assert_consistent(&pool.stats());
}

#[tokio::test]
async fn close_with_an_unbounded_deadline_returns_once_nothing_is_out() {
    let (pool, _) = pool(quiet(2));
    drop(pool.acquire().await.expect("a connection"));
    let report = tokio::time::timeout(SLACK, pool.close(Duration::MAX))
        .await
        .expect("close returns when everything is closed");
    assert!(report.is_complete());
    assert_eq!(report.closed_idle, 1);
}

#[tokio::test]
async fn detaching_the_last_checkout_wakes_close() {
    let (pool, _) = pool(quiet(1));
    let conn = pool.acquire().await.expect("a connection");
    let closing = tokio::spawn({
        let pool = pool.clone();
        async move { pool.close(Duration::from_secs(60)).await }
    });
    while !pool.is_closing() {
        tokio::task::yield_now().await;
    }
    let _raw = conn.detach();
    let report = tokio::time::timeout(SLACK, closing)
        .await
        .expect("close() returns as soon as nothing is out")
        .expect("close does not panic");
    assert!(report.is_complete(), "{report:?}");
}

#[test]
fn values_past_what_the_pool_can_hold_are_refused_naming_the_setting() {
    let cases: [(&str, pool_core::PoolOptions); 5] = [
        ("acquire_timeout", quiet(1).acquire_timeout(Duration::MAX)),
        ("connect_timeout", quiet(1).connect_timeout(Duration::MAX)),
        ("max_lifetime", quiet(1).max_lifetime(Duration::MAX)),
        (
            "idle_timeout",
            quiet(1).idle_timeout(Duration::from_secs(u64::MAX / 2)),
        ),
        ("max_connections", quiet(1).max_connections(u32::MAX)),
    ];
    for (setting, options) in cases {
        match options.build(MemoryConnector::new()) {
            Err(PoolError::InvalidOption {
                setting: named,
                message,
            }) => {
                assert_eq!(named, setting, "{message}");
                assert!(!message.is_empty());
            }
            other => panic!("{setting}: {other:?}"),
        }
    }
}

/// Counts the log lines of each message, on the thread it is installed on.
#[derive(Debug, Default)]
struct LineCounts(std::sync::Mutex<std::collections::HashMap<String, u64>>);

impl LineCounts {
    fn of(&self, message: &str) -> u64 {
        let counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .iter()
            .filter(|(m, _)| m.contains(message))
            .map(|(_, n)| n)
            .sum()
    }
}

struct Counting(Arc<LineCounts>);

impl tracing::Subscriber for Counting {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let mut counts = self.0.0.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry(message.0).or_default() += 1;
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn storms_of_refusals_and_failed_connects_log_a_few_lines_with_counts() {
    let lines = Arc::new(LineCounts::default());
    let counting = tracing::Dispatch::new(Counting(Arc::clone(&lines)));
    // tracing caches each log line's interest process-wide, and while at most one subscriber
    // exists it asks only the thread that reaches the line first: a parallel test's thread,
    // which has none, would cache "never" and hide the lines counted here. A second live
    // subscriber makes it ask every subscriber, and the rebuild corrects what a parallel test
    // cached before this one began.
    let _every_subscriber_is_asked = tracing::Dispatch::new(Counting(Arc::default()));
    tracing::callsite::rebuild_interest_cache();
    let (refusals, attempts) = tracing::dispatcher::with_default(&counting, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime")
            .block_on(async {
                let (pool, _) = pool(
                    quiet(4)
                        .max_waiters(1)
                        .acquire_timeout(Duration::from_secs(2))
                        .connect_backoff(Duration::from_millis(1), Duration::from_millis(2)),
                );
                let held: Vec<_> = futures_util::future::join_all((0..4).map(|_| pool.acquire()))
                    .await
                    .into_iter()
                    .map(|c| c.expect("a connection"))
                    .collect();
                let cx = &mut Context::from_waker(Waker::noop());
                let mut waiter = Box::pin(pool.acquire());
                assert!(waiter.as_mut().poll(cx).is_pending(), "one caller waits");
                let mut refusals = 0;
                for _ in 0..10_000 {
                    if let Err(PoolError::TooManyWaiters { .. }) = pool.acquire().await {
                        refusals += 1;
                    }
                }
                drop(waiter);
                drop(held);
                // Every connect fails, for two seconds of retries.
                let _ = pool.close(Duration::from_millis(1)).await;
                let (pool, connector) = crate::pool(
                    quiet(4)
                        .acquire_timeout(Duration::from_secs(2))
                        .connect_backoff(Duration::from_millis(1), Duration::from_millis(2)),
                );
                connector.set_connect(Behavior::Fail);
                let _ = futures_util::future::join_all((0..4).map(|_| pool.acquire())).await;
                (refusals, connector.attempts())
            })
    });
    assert_eq!(refusals, 10_000);
    assert!(attempts >= 1000, "the connector was tried {attempts} times");
    let refused_lines = lines.of("acquire refused");
    let connect_lines = lines.of("connect failed");
    assert!(
        (1..=3).contains(&refused_lines),
        "{refused_lines} lines for 10000 refused acquires"
    );
    assert!(
        (1..=4).contains(&connect_lines),
        "{connect_lines} lines for {attempts} failed connects"
    );
}
