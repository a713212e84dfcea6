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
mod cancellation;
mod close;
mod direct;
mod failover;
mod freeze;
mod max_connections;
mod restart;
mod silent;
mod soak;
mod terminate;

use std::time::Duration;

use pool_config::PoolSettings;
use pool_core::{PgConnector, Pool};
use pool_testkit::{TestDatabase, TestServer};
use sqlx::postgres::PgConnectOptions;
use tokio::time::Instant;

use support::{BoxError, Load, LoadReport, Watch, app_name, capture_logs, settings};

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

    async fn assert_full_capacity(&self, pool: &Pool<PgConnector>) {
        support::assert_full_capacity(pool, &self.settings, self.server.host(), self.server.port())
            .await;
    }

    /// Starts watching `pool` and `tasks` tasks of load on it, and waits until the load is
    /// served.
    async fn load(&self, pool: &Pool<PgConnector>, tasks: usize) -> (Watch, Load) {
        let watch = Watch::start(pool, self.admin(), self.app());
        let load = Load::start(pool, tasks);
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
    async fn recover(
        &self,
        pool: &Pool<PgConnector>,
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
