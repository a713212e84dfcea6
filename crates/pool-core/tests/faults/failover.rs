//! Fault 7: failover. Server A turns read-only (as a demoted primary does) while the proxy
//! in front of it switches new connections to server B; with `check_writable` on, the pool
//! retires A's connections and writes succeed again on B without a restart.

use std::net::SocketAddr;
use std::time::Duration;

use pool_core::CloseReason;
use pool_testkit::{FaultProxy, TestServer};
use sqlx::postgres::PgConnection;
use sqlx::{Connection as _, Executor as _};
use tokio::time::Instant;

use crate::Fixture;
use crate::support::{
    Load, TestResult, Watch, admin_options, assert_full_capacity, assert_no_secrets, insert_write,
};

const CREATE: &str = "CREATE TABLE writes (id bigserial PRIMARY KEY, server_port int NOT NULL \
                      DEFAULT current_setting('port')::int)";

fn addr(server: &TestServer) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], server.port()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_a_new_primary_retires_read_only_connections() -> TestResult {
    let mut f = Fixture::start("failover").await?;
    let b = TestServer::start().await?;
    // The same database, owned by the application role, on the new primary.
    let mut admin_b = PgConnection::connect_with(&admin_options(b.host(), b.port())).await?;
    let create_db = format!(
        "CREATE DATABASE \"{}\" OWNER {}",
        f.db.name(),
        pool_testkit::APP_USER
    );
    admin_b.execute(sqlx::AssertSqlSafe(create_db)).await?;
    admin_b.close().await?;
    for server in [&f.server, &b] {
        let options = f.db.app_options().port(server.port());
        let mut conn = PgConnection::connect_with(&options).await?;
        conn.execute(CREATE).await?;
        conn.close().await?;
    }

    // Its subject is retiring the connections to the old primary, not how long a login
    // takes: on a loaded machine the logins to B, all at once, take over a second each.
    f.patient(Duration::from_secs(5), Duration::from_secs(10));
    let proxy = FaultProxy::start(addr(&f.server)).await?;
    f.settings.host = proxy.host();
    f.settings.port = proxy.port().into();
    f.settings.check_writable = true;
    let pool = crate::support::pool("failover", &f.settings);
    let watch = Watch::start(&pool, admin_options(b.host(), b.port()), f.app());
    let load = Load::start_with(&pool, 16, insert_write);
    assert!(
        load.first_ok_since(Instant::now(), Duration::from_secs(10))
            .await
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let on_a = pool.stats().total;

    // New connections go to B from here on; A's open ones fail their next write once A's
    // read-only setting takes effect. (Turning A read-only first would let connections
    // retired meanwhile be replaced by new ones to A, round after round.)
    let failover = Instant::now();
    proxy.set_target(addr(&b));
    f.server.set_read_only(true).await?;
    let switched = Instant::now();
    let recovered = load
        .first_ok_since(switched, Duration::from_secs(15))
        .await
        .expect("writes succeed again on the new primary");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = load.stop().await;
    let seen = watch.finish().await;

    report.assert_acquires_bounded(f.settings.acquire_timeout);
    seen.assert_bounded(f.settings.max_connections);
    assert!(
        report.acquire_errors().is_empty(),
        "{:?}",
        report.acquire_errors()
    );
    // A write fails only on a connection to A, once each: those open at the switch (at
    // most max) and those whose connect through the proxy was under way (at most max more).
    let failures = report.work_errors();
    assert!(
        failures.len() <= 2 * f.settings.max_connections as usize,
        "{} failed writes: {:?}",
        failures.len(),
        report.sample_errors()
    );
    assert!(
        failures.iter().all(|e| e.contains("25006")),
        "only read-only errors: {:?}",
        report.sample_errors()
    );
    let stats = pool.stats();
    assert!(stats.closed.get(CloseReason::ReadOnly) > 0, "{stats:?}");
    let left_on_a = f.backends_until(|n| n == 0).await;
    assert_eq!(
        left_on_a, 0,
        "every connection to the old primary was retired"
    );
    let mut conn_b = PgConnection::connect_with(&f.db.app_options().port(b.port())).await?;
    let written_on_b: i64 = sqlx::query_scalar("SELECT count(*) FROM writes")
        .fetch_one(&mut conn_b)
        .await?;
    conn_b.close().await?;
    assert!(written_on_b > 0);
    assert_full_capacity(&pool, &f.settings, b.host(), b.port()).await;
    eprintln!(
        "fault 7 (failover A -> B, A read-only, check_writable on): {on_a} connections on A; \
         {} writes failed with SQLSTATE 25006; retired as read-only {}, failed validation \
         {}; the last write failed {:?} after the proxy switched; the first write \
         started after A turned read-only succeeded {:?} after it; {written_on_b} rows written on B",
        failures.len(),
        stats.closed.get(CloseReason::ReadOnly),
        stats.closed.get(CloseReason::ValidationFailed),
        report
            .last_failure()
            .map(|at| at.saturating_duration_since(failover)),
        recovered - switched,
    );
    let close = pool.close(Duration::from_secs(2)).await;
    assert_no_secrets(&[&format!("{stats:?} {close:?}"), &report.errors().join("\n")]);
    Ok(())
}
