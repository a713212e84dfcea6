//! Fault 17: user code the pool calls panics once: a connector whose connect panics (a
//! bug in a wrapper around `PgConnector`, an `after_connect` hook that unwraps), and an
//! observer whose `on_acquire` or `on_release` panics (a metrics exporter with a bug). The
//! counts must stay right, no waiter may be left waiting while the pool could serve it,
//! and the pool must keep serving at full capacity.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pool_core::{Connected, Connector, ErrorClass, PgConnector, Pool, PoolObserver};
use sqlx::PgConnection;
use tokio::time::Instant;

use crate::Fixture;
use crate::support::{
    PgLike, SLACK, TestResult, Watch, assert_no_secrets, select_one, stats_until,
};

/// Callers at once, on a pool of [`MAX`]: most of them wait.
const CALLERS: usize = 8;
const MAX: u32 = 2;

/// Whether a panic is still to come; the first call that takes it panics.
#[derive(Debug, Default)]
struct Armed(AtomicBool);

impl Armed {
    fn loaded() -> Self {
        Self(AtomicBool::new(true))
    }

    fn fire(&self, what: &str) {
        // Ordering: one flag, nothing published through it.
        if self.0.swap(false, Ordering::Relaxed) {
            panic!("{what} panics (fault injected by the test)");
        }
    }
}

/// `PgConnector` whose connect panics once.
#[derive(Debug)]
struct PanickingConnector {
    inner: PgConnector,
    connect: Armed,
}

impl Connector for PanickingConnector {
    type Connection = PgConnection;
    type Error = sqlx::Error;

    async fn connect(&self) -> Result<Connected<PgConnection>, sqlx::Error> {
        self.connect.fire("connect");
        self.inner.connect().await
    }

    async fn validate(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        self.inner.validate(conn).await
    }

    fn classify(&self, error: &sqlx::Error) -> ErrorClass {
        self.inner.classify(error)
    }

    fn is_reusable(&self, conn: &PgConnection) -> bool {
        self.inner.is_reusable(conn)
    }

    fn needs_cleanup(&self, conn: &mut PgConnection) -> bool {
        self.inner.needs_cleanup(conn)
    }

    async fn cleanup(&self, conn: &mut PgConnection, reset: bool) -> Result<(), sqlx::Error> {
        self.inner.cleanup(conn, reset).await
    }

    async fn close(&self, conn: PgConnection) {
        self.inner.close(conn).await;
    }

    async fn backend_pid(&self, conn: &mut PgConnection) -> Result<Option<i32>, sqlx::Error> {
        self.inner.backend_pid(conn).await
    }

    async fn cancel(&self, backend_pid: i32) {
        self.inner.cancel(backend_pid).await;
    }
}

/// An observer whose `on_acquire` or `on_release` panics once.
#[derive(Debug, Default)]
struct PanickingObserver {
    acquire: Armed,
    release: Armed,
}

impl PoolObserver for PanickingObserver {
    fn on_acquire(&self, _wait: Duration) {
        self.acquire.fire("on_acquire");
    }

    fn on_release(&self, _used: Duration) {
        self.release.fire("on_release");
    }
}

/// What the callers saw: how many were served, how many panicked (the panic reached them),
/// how many got an error, and the longest acquire.
#[derive(Debug, Default)]
struct Seen {
    served: usize,
    panicked: usize,
    errors: Vec<String>,
    longest: Duration,
}

/// [`CALLERS`] tasks at once, each acquiring and running `SELECT 1`, each bounded by the
/// acquire deadline plus the query's.
async fn callers<C: PgLike>(pool: &Pool<C>, f: &Fixture) -> Seen {
    let limit = f.settings.acquire_timeout + SLACK;
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let acquired = tokio::time::timeout(limit, pool.acquire()).await;
                let took = started.elapsed();
                let mut conn = acquired
                    .map_err(|_| format!("an acquire still waited after {limit:?}"))?
                    .map_err(|e| e.to_string())?;
                conn.run(select_one).await.map_err(|e| e.to_string())?;
                Ok::<_, String>(took)
            })
        })
        .collect();
    let mut seen = Seen::default();
    for task in tasks {
        match task.await {
            Ok(Ok(took)) => {
                seen.served += 1;
                seen.longest = seen.longest.max(took);
            }
            Ok(Err(error)) => seen.errors.push(error),
            Err(join) if join.is_panic() => seen.panicked += 1,
            Err(join) => seen.errors.push(join.to_string()),
        }
    }
    seen
}

/// After the panic: no checkout and no waiter left over, the counts add up, and the pool
/// serves its full capacity with as many server connections. Returns the counts.
async fn assert_intact<C: PgLike>(pool: &Pool<C>, f: &Fixture) -> pool_core::PoolStats {
    let stats = stats_until(pool, Duration::from_secs(5), |s| {
        s.in_use == 0 && s.waiting == 0
    })
    .await;
    assert_eq!((stats.in_use, stats.waiting), (0, 0), "{stats:?}");
    assert!(stats.idle + stats.in_use == stats.total && stats.total <= stats.max);
    f.assert_full_capacity(pool).await;
    stats
}

async fn fixture(tag: &str) -> Result<Fixture, crate::BoxError> {
    let mut f = Fixture::start(tag).await?;
    f.patient(Duration::from_secs(5), Duration::from_secs(10));
    f.settings.max_connections = MAX;
    Ok(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_that_panics_costs_one_attempt_and_strands_no_waiter() -> TestResult {
    let f = fixture("panic-connect").await?;
    let connector = PanickingConnector {
        inner: PgConnector::from_settings(&f.settings),
        connect: Armed::loaded(),
    };
    let pool = pool_core::PoolOptions::from_settings(&f.settings)
        .name("panic-connect")
        .connect_backoff(Duration::from_millis(10), Duration::from_millis(500))
        .build(connector)?;
    let watch = Watch::start(&pool, f.admin(), f.app());
    let started = Instant::now();
    let seen = callers(&pool, &f).await;
    let took = started.elapsed();
    eprintln!(
        "fault 17 (connect panics once): {CALLERS} callers on max {MAX}: {} served (longest \
         acquire {:?}), {} errors {:?}, {} saw the panic; all done in {took:?}; counts then \
         {:?}",
        seen.served,
        seen.longest,
        seen.errors.len(),
        seen.errors,
        seen.panicked,
        pool.stats(),
    );
    let stats = assert_intact(&pool, &f).await;
    watch.finish().await.assert_bounded(MAX);
    assert_eq!(
        seen.served, CALLERS,
        "a panicking connect is one failed attempt; every caller is served: {seen:?}"
    );
    let close = pool.close(Duration::from_secs(2)).await;
    assert_no_secrets(&[&format!("{stats:?} {close:?} {seen:?}")]);
    Ok(())
}

/// The observer method that panics.
#[derive(Debug, Clone, Copy)]
enum Hook {
    OnAcquire,
    OnRelease,
}

impl Hook {
    fn observer(self) -> PanickingObserver {
        match self {
            Hook::OnAcquire => PanickingObserver {
                acquire: Armed::loaded(),
                ..PanickingObserver::default()
            },
            Hook::OnRelease => PanickingObserver {
                release: Armed::loaded(),
                ..PanickingObserver::default()
            },
        }
    }
}

/// What a test checks beyond the callers' outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// At most the one caller saw the panic; every other was served by its deadline.
    NoWaiterStranded,
    /// That, and then no checkout is left over and the pool serves its full capacity.
    CountsRight,
}

/// Runs the callers on a pool whose observer panics once in `hook`, and checks `check`.
async fn observer_panics(tag: &str, hook: Hook, check: Check) -> TestResult {
    let f = fixture(tag).await?;
    let pool = crate::support::pool(tag, &f.settings);
    assert!(pool.set_observer(Arc::new(hook.observer())));
    let watch = Watch::start(&pool, f.admin(), f.app());
    let started = Instant::now();
    let seen = callers(&pool, &f).await;
    let took = started.elapsed();
    eprintln!(
        "fault 17 ({hook:?} panics once): {CALLERS} callers on max {MAX}: {} served (longest \
         acquire {:?}), {} errors {:?}, {} saw the panic; all done in {took:?}; counts \
         then {:?}",
        seen.served,
        seen.longest,
        seen.errors.len(),
        seen.errors,
        seen.panicked,
        pool.stats(),
    );
    assert!(seen.errors.is_empty(), "no caller stranded: {seen:?}");
    assert_eq!(seen.served + seen.panicked, CALLERS, "{seen:?}");
    assert!(seen.panicked <= 1, "{seen:?}");
    if check == Check::CountsRight {
        assert_intact(&pool, &f).await;
    }
    watch.finish().await.assert_bounded(MAX);
    let close = pool.close(Duration::from_secs(2)).await;
    assert_no_secrets(&[&format!("{:?} {close:?} {seen:?}", pool.stats())]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_panicking_in_on_acquire_strands_no_waiter() -> TestResult {
    observer_panics("panic-on-acquire", Hook::OnAcquire, Check::NoWaiterStranded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_panicking_in_on_acquire_leaves_the_counts_right() -> TestResult {
    observer_panics(
        "panic-on-acquire-counts",
        Hook::OnAcquire,
        Check::CountsRight,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_panicking_in_on_release_strands_no_waiter() -> TestResult {
    observer_panics("panic-on-release", Hook::OnRelease, Check::NoWaiterStranded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_panicking_in_on_release_leaves_the_counts_right() -> TestResult {
    observer_panics(
        "panic-on-release-counts",
        Hook::OnRelease,
        Check::CountsRight,
    )
    .await
}
