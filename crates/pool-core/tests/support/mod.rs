//! Shared by the fault, TLS and PgBouncer tests: pool settings for a test server, a watcher
//! that checks the pool's counts and the server's connections while a fault runs, a load
//! driver that times every acquire, and a capture of every log line at TRACE that fails the
//! test if a password shows up anywhere.
#![allow(dead_code, unreachable_pub, unused_imports)]

mod capture;
mod load;
mod timeline;
mod watch;

use std::error::Error as StdError;
use std::time::Duration;

use pool_config::{PoolSettings, Profile, Secret, SslMode};
use pool_core::{Connector, PgConnector, Pool, PoolOptions};
use pool_testkit::{APP_PASSWORD, APP_USER, SUPERUSER, SUPERUSER_PASSWORD, TestDatabase};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};

pub use capture::{assert_no_secrets, capture_logs, logged, recent_pool_lines};
pub use load::{Load, LoadReport, Work, insert_write, select_one};
pub use timeline::Timeline;
pub use watch::{Watch, WatchReport};

/// A connector of sqlx PostgreSQL connections: [`PgConnector`], or a test's wrapper around
/// it.
pub trait PgLike: Connector<Connection = PgConnection, Error = sqlx::Error> {}

impl<C: Connector<Connection = PgConnection, Error = sqlx::Error>> PgLike for C {}

/// Any error, for tests that use `?` on testkit (anyhow) and sqlx results alike.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What a test returns.
pub type TestResult = Result<(), BoxError>;

/// A password no server knows, for wrong-password tests; it must never be echoed either.
pub const WRONG_PASSWORD: &str = "servio-wrong-test-password";

/// Every secret a test may handle: none may appear in any log, error, stats or report.
pub const SECRETS: [&str; 3] = [SUPERUSER_PASSWORD, APP_PASSWORD, WRONG_PASSWORD];

/// Room for scheduling on a busy two-core machine when a call must end by a deadline.
pub const SLACK: Duration = Duration::from_secs(2);

/// A unique `application_name` for one test, so server-side counts see only its pool.
pub fn app_name(tag: &str) -> String {
    let name = format!("faults-{tag}-{}", std::process::id());
    name[..name.len().min(63)].to_owned()
}

/// Test settings for `db` reached at `host:port` (the server, or a proxy or PgBouncer in
/// front of it): short timeouts so faults resolve in seconds, no background refill, no
/// keepalive, validation of connections idle for more than 200 ms.
pub fn settings(host: &str, port: u16, db: &TestDatabase, app: &str) -> PoolSettings {
    settings_for(host, port, db.name(), app)
}

/// [`settings`] for database `database` by name (e.g. on every node of a cluster).
pub fn settings_for(host: &str, port: u16, database: &str, app: &str) -> PoolSettings {
    let mut s = PoolSettings::for_profile(Profile::Test);
    s.host = host.to_owned();
    s.port = port.into();
    s.database = database.to_owned();
    s.username = APP_USER.to_owned();
    s.password = Secret::new(APP_PASSWORD);
    s.ssl_mode = SslMode::Disable;
    s.application_name = app.to_owned();
    s.max_connections = 8;
    s.min_connections = 0;
    s.connect_timeout = Duration::from_secs(1);
    s.acquire_timeout = Duration::from_secs(3);
    s.query_timeout = Some(Duration::from_secs(3));
    s.statement_timeout = Some(Duration::from_secs(10));
    s.validate_after_idle = Some(Duration::from_millis(200));
    s.keepalive_interval = None;
    s.idle_timeout = None;
    s
}

/// A pool for `settings`, with fast connect backoff (10 ms doubling up to 500 ms) so
/// recovery is quick, and whatever else `tweak` sets.
pub fn pool_with(
    name: &str,
    settings: &PoolSettings,
    tweak: impl FnOnce(PoolOptions) -> PoolOptions,
) -> Pool<PgConnector> {
    let options = PoolOptions::from_settings(settings)
        .name(name)
        .connect_backoff(Duration::from_millis(10), Duration::from_millis(500));
    tweak(options)
        .build(PgConnector::from_settings(settings))
        .expect("valid pool options")
}

/// [`pool_with`] without further changes.
pub fn pool(name: &str, settings: &PoolSettings) -> Pool<PgConnector> {
    pool_with(name, settings, |o| o)
}

/// Options of a plain client (no pool) reaching the same database as `settings`, as the
/// same role, under the application_name `bystander`.
pub fn client_options(settings: &PoolSettings) -> PgConnectOptions {
    PgConnectOptions::new_without_pgpass()
        .host(&settings.host)
        .port(settings.port.for_host(0))
        .username(&settings.username)
        .password(settings.password.expose())
        .database(&settings.database)
        .ssl_mode(PgSslMode::Disable)
        .application_name("bystander")
}

/// Superuser options for the `postgres` database of the server at `host:port`.
pub fn admin_options(host: &str, port: u16) -> PgConnectOptions {
    PgConnectOptions::new_without_pgpass()
        .host(host)
        .port(port)
        .username(SUPERUSER)
        .password(SUPERUSER_PASSWORD)
        .database("postgres")
        .ssl_mode(PgSslMode::Disable)
        .application_name("faults-admin")
}

/// Server connections with `application_name = app`, counted by a fresh superuser
/// connection (so it works across restarts), bounded by 5 s.
pub async fn backends(host: &str, port: u16, app: &str) -> Result<i64, BoxError> {
    let count = async {
        let mut conn = PgConnection::connect_with(&admin_options(host, port)).await?;
        let n = count_backends(&mut conn, app).await?;
        let _ = conn.close().await;
        Ok::<_, BoxError>(n)
    };
    tokio::time::timeout(Duration::from_secs(5), count).await?
}

pub async fn count_backends(conn: &mut PgConnection, app: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
        .bind(app)
        .fetch_one(conn)
        .await
}

/// Polls until the server's count of `app` connections satisfies `check`, up to `limit`;
/// returns the last count seen.
pub async fn backends_until(
    host: &str,
    port: u16,
    app: &str,
    limit: Duration,
    check: impl Fn(i64) -> bool,
) -> i64 {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let n = backends(host, port, app).await.unwrap_or(-1);
        if check(n) || tokio::time::Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An error as a user could see it: its `Display`, its `Debug`, and every source's
/// `Display`.
pub fn error_text(error: &(dyn StdError + 'static)) -> String {
    let mut text = format!("{error} | {error:?}");
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(&format!(" | caused by: {e}"));
        source = e.source();
    }
    text
}

/// The process's resident memory, from `/proc/self/statm`.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Waits until the pool's counts satisfy `check`, up to `limit`.
pub async fn stats_until<C: Connector>(
    pool: &Pool<C>,
    limit: Duration,
    check: impl Fn(&pool_core::PoolStats) -> bool,
) -> pool_core::PoolStats {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let stats = pool.stats();
        if check(&stats) || tokio::time::Instant::now() >= deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Checks out `max` connections at once (each within `settings.acquire_timeout` plus
/// slack), runs a query on each, and checks the server at `host:port` sees exactly that many
/// of the pool's connections: no slot was lost. Releases them before returning.
pub async fn assert_full_capacity<C: PgLike>(
    pool: &Pool<C>,
    settings: &PoolSettings,
    host: &str,
    port: u16,
) {
    let max = pool.stats().max;
    let limit = settings.acquire_timeout + SLACK;
    // On failure, what the pool did meanwhile: which connects were in flight, which
    // finished, whom they served.
    let timeline = Timeline::start(pool);
    let acquires = (0..max).map(|_| pool.acquire());
    let held = tokio::time::timeout(limit, futures_util::future::join_all(acquires)).await;
    let Ok(held) = held else {
        panic!(
            "every acquire returns within its deadline\n{}",
            timeline.finish().await
        );
    };
    if let Some(error) = held.iter().find_map(|c| c.as_ref().err()) {
        panic!(
            "full capacity after the fault: {error:?}\n{}",
            timeline.finish().await
        );
    }
    drop(timeline.finish().await);
    let mut held: Vec<_> = held.into_iter().map(Result::unwrap).collect();
    for conn in &mut held {
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut **conn)
            .await
            .expect("a query on each connection");
        assert_eq!(one, 1);
    }
    let stats = pool.stats();
    assert_eq!((stats.in_use, stats.total), (max, max), "{stats:?}");
    let seen = backends(host, port, &settings.application_name)
        .await
        .expect("count backends");
    assert_eq!(seen, i64::from(max), "server connections of the pool");
}

/// Threads of this process named `name` (as `/proc` shows it, at most 15 bytes): the
/// workers and blocking threads of a runtime built with that `thread_name`.
pub fn threads_named(name: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}
