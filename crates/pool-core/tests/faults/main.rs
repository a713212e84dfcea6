//! The pool under faults, on real PostgreSQL servers of its own (pool-testkit's
//! `TestServer`, `FaultProxy`): each test injects one fault, checks that every acquire
//! returns (a connection or an error) by its deadline, that `idle + in_use == total <= max`
//! holds and the server never sees more than `max` connections of the pool, that the pool
//! recovers without being rebuilt, and that no password reaches a log, error, stats or
//! report. Each prints what the pool did and how long recovery took on this machine.

#[path = "../support/mod.rs"]
mod support;

mod auth;
mod blackhole;
mod bouncer;
mod cancellation;
mod cancels;
mod close;
mod direct;
mod failover;
mod freeze;
mod idle_kill;
mod listen;
mod max_connections;
mod panics;
mod reset;
mod resolver;
mod restart;
mod runtime;
mod silent;
mod soak;
mod terminate;
mod trickle;

use std::net::SocketAddr;
use std::time::Duration;

use pool_config::PoolSettings;
use pool_core::Pool;
use pool_testkit::{FaultProxy, TestDatabase, TestServer};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::time::Instant;

use support::{BoxError, Load, LoadReport, PgLike, Watch, app_name, capture_logs, settings};

/// A dedicated server, a database on it, and test settings whose `application_name` is
/// unique to the test.
struct Fixture {
    server: TestServer,
    db: TestDatabase,
    settings: PoolSettings,
}

impl Fixture {
    async fn start(tag: &str) -> Result<Self, BoxError> {
        capture_logs();
        let server = TestServer::start().await?;
        let db = server.database().await?;
        let settings = settings(server.host(), server.port(), &db, &app_name(tag));
        Ok(Fixture {
            server,
            db,
            settings,
        })
    }

    /// Longer connect and acquire timeouts than the suite's 1 s and 3 s, for a test whose
    /// subject is not how long a connect may take: on a machine busy with other work (two
    /// cores, builds and other tests beside), a login can take more than a second.
    fn patient(&mut self, connect: Duration, acquire: Duration) {
        self.settings.connect_timeout = connect;
        self.settings.acquire_timeout = acquire;
    }

    /// Puts a fault proxy between the pool's settings and the server.
    async fn proxy(&mut self) -> Result<FaultProxy, BoxError> {
        let proxy =
            FaultProxy::start(SocketAddr::from(([127, 0, 0, 1], self.server.port()))).await?;
        self.settings.host = proxy.host();
        self.settings.port = proxy.port().into();
        Ok(proxy)
    }

    fn app(&self) -> &str {
        &self.settings.application_name
    }

    fn admin(&self) -> PgConnectOptions {
        support::admin_options(self.server.host(), self.server.port())
    }

    async fn backends(&self) -> i64 {
        support::backends(self.server.host(), self.server.port(), self.app())
            .await
            .expect("count the pool's server connections")
    }

    /// Polls (up to 5 s) until the server's count of the pool's connections satisfies
    /// `check`; returns the last count.
    async fn backends_until(&self, check: impl Fn(i64) -> bool) -> i64 {
        let (host, port) = (self.server.host(), self.server.port());
        support::backends_until(host, port, self.app(), Duration::from_secs(5), check).await
    }

    /// Waits (up to 5 s) until one of the pool's server connections runs `query`, so a
    /// fault can hit it mid-query.
    async fn running(&self, query: &str) {
        let admin = self.admin();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .expect("an admin connection");
        loop {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 \
                 AND state = 'active' AND query = $2",
            )
            .bind(self.app())
            .bind(query)
            .fetch_one(&mut conn)
            .await
            .expect("count running queries");
            if n > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "`{query}` never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = conn.close().await;
    }

    async fn assert_full_capacity<C: PgLike>(&self, pool: &Pool<C>) {
        support::assert_full_capacity(pool, &self.settings, self.server.host(), self.server.port())
            .await;
    }

    /// Starts watching `pool` and `tasks` tasks of load on it, and waits until the load is
    /// served.
    async fn load<C: PgLike>(&self, pool: &Pool<C>, tasks: usize) -> (Watch, Load) {
        self.load_with(pool, tasks, support::select_one).await
    }

    /// [`Self::load`] with `work` as each task's unit of work.
    async fn load_with<C: PgLike>(
        &self,
        pool: &Pool<C>,
        tasks: usize,
        work: support::Work,
    ) -> (Watch, Load) {
        let watch = Watch::start(pool, self.admin(), self.app());
        let load = Load::start_with(pool, tasks, work);
        assert!(
            load.first_ok_since(Instant::now(), Duration::from_secs(10))
                .await
                .is_some(),
            "the pool serves before the fault"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        (watch, load)
    }

    /// After the fault ended at `healed`: waits for the first success of an op started
    /// since, lets the load run `settle` longer, stops it and the watch, and checks what
    /// every fault test checks: each acquire returned by its deadline, the counts and the
    /// server's connections stayed within max, and the pool is back to full capacity.
    /// Returns how long after `healed` the first op succeeded, and the load's report.
    async fn recover<C: PgLike>(
        &self,
        pool: &Pool<C>,
        watch: Watch,
        load: Load,
        healed: Instant,
        settle: Duration,
    ) -> (Duration, LoadReport) {
        let recovered = load
            .first_ok_since(healed, Duration::from_secs(15))
            .await
            .expect("the pool serves again after the fault, without being rebuilt");
        tokio::time::sleep(settle).await;
        let report = load.stop().await;
        let seen = watch.finish().await;
        report.assert_acquires_bounded(self.settings.acquire_timeout);
        seen.assert_bounded(self.settings.max_connections);
        self.assert_full_capacity(pool).await;
        (recovered - healed, report)
    }
}
