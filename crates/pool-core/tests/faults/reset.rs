//! Fault 11: every connection is reset (TCP RST) mid-query by a proxy between pool and
//! server, as when a load balancer or firewall drops its connection table or the server's
//! host reboots.

use std::time::Duration;

use futures_core::future::BoxFuture;
use pool_core::{CloseReason, PgConnector, Pool, PoolError};
use pool_testkit::{FaultProxy, ProxyMode};
use sqlx::PgConnection;
use tokio::time::Instant;

use crate::Fixture;
use crate::support::{SLACK, TestResult, assert_no_secrets, error_text, stats_until};

/// The query the reset interrupts. It ends by itself before the query timeout, so a
/// query timeout cannot pass for the reset, and an orphaned server process (below) is gone
/// two seconds later.
const LONG_QUERY: &str = "SELECT pg_sleep(2)";
/// The same, long enough to see whether the pool cancels it on the server.
const LONGER_QUERY: &str = "SELECT pg_sleep(10)";

fn long_query(conn: &mut PgConnection) -> BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move { sqlx::query(LONG_QUERY).execute(conn).await.map(drop) })
}

fn longer_query(conn: &mut PgConnection) -> BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move { sqlx::query(LONGER_QUERY).execute(conn).await.map(drop) })
}

/// A fixture whose pool reaches the server through a fault proxy.
async fn proxied(tag: &str) -> Result<(Fixture, FaultProxy), crate::BoxError> {
    let mut f = Fixture::start(tag).await?;
    f.patient(Duration::from_secs(3), Duration::from_secs(6));
    let proxy = f.proxy().await?;
    Ok((f, proxy))
}

/// Server processes of the pool beyond its open connections: queries the reset orphaned,
/// still running on the server.
async fn orphans(f: &Fixture, pool: &Pool<PgConnector>) -> i64 {
    f.backends().await - i64::from(pool.stats().total)
}

fn short_query(conn: &mut PgConnection) -> BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move {
        sqlx::query("SELECT pg_sleep(0.05)")
            .execute(conn)
            .await
            .map(drop)
    })
}

/// Whether `error` is the reset itself (an I/O error from the driver), not a pool error
/// such as a query timeout.
fn is_reset(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Io(_)) && PoolError::from_sqlx(error).is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_mid_query_fails_that_query_at_once_and_the_connection_is_replaced() -> TestResult {
    let (f, proxy) = proxied("reset").await?;
    let query_timeout = f.settings.query_timeout.expect("set by the test settings");
    let pool = crate::support::pool("reset", &f.settings);

    // 1. Through `run()`: the reset ends the query with the driver's I/O error, before the
    //    query timeout, and the connection is discarded as broken.
    let broken_before = pool.stats().closed.get(CloseReason::Broken);
    let started = Instant::now();
    let query = tokio::spawn(pool.run(long_query));
    f.running(LONG_QUERY).await;
    proxy.set_mode(ProxyMode::Reset);
    let run_error = tokio::time::timeout(query_timeout + SLACK, query)
        .await
        .expect("the query returns by its deadline")?
        .expect_err("the connection was reset");
    let run_took = started.elapsed();
    assert!(
        is_reset(&run_error),
        "the reset, not a timeout: {run_error:?}"
    );
    let after_run = stats_until(&pool, Duration::from_secs(5), |s| s.in_use == 0).await;
    assert_eq!(
        after_run.closed.get(CloseReason::Broken),
        broken_before + 1,
        "{after_run:?}"
    );
    proxy.set_mode(ProxyMode::Pass);
    // The server notices the reset only when the query ends and it writes the result.
    let orphaned = orphans(&f, &pool).await;
    let total = pool.stats().total;
    f.backends_until(|n| n == i64::from(total)).await;

    // 2. The README's idiom, a query on `&mut *conn`: it fails at once too, and the
    //    connection does not go back to the idle queue when dropped.
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT 1").execute(&mut *conn).await?;
    let closed_before = pool.stats().closed.total();
    let started = Instant::now();
    let direct = tokio::spawn(async move {
        let result = sqlx::query(LONG_QUERY).execute(&mut *conn).await;
        drop(conn);
        result
    });
    f.running(LONG_QUERY).await;
    proxy.set_mode(ProxyMode::Reset);
    let direct_error = tokio::time::timeout(query_timeout + SLACK, direct)
        .await
        .expect("a reset query on a checkout returns")?
        .expect_err("the connection was reset");
    let direct_took = started.elapsed();
    assert!(is_reset(&direct_error), "{direct_error:?}");
    let after_direct = stats_until(&pool, Duration::from_secs(5), |s| {
        s.in_use == 0 && s.closed.total() > closed_before
    })
    .await;
    assert_eq!(after_direct.in_use, 0, "{after_direct:?}");
    assert_eq!(
        after_direct.closed.total(),
        closed_before + 1,
        "the reset connection was closed, not kept: {after_direct:?}"
    );
    proxy.set_mode(ProxyMode::Pass);
    let total = pool.stats().total;
    f.backends_until(|n| n == i64::from(total)).await;

    // 3. Under load: 16 tasks on 8 connections; every open connection is reset mid-query,
    //    and new ones are refused for 300 ms.
    f.assert_full_capacity(&pool).await;
    let (watch, load) = f.load_with(&pool, 16, short_query).await;
    let fault = Instant::now();
    proxy.set_mode(ProxyMode::Reset);
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.set_mode(ProxyMode::Pass);
    let healed = Instant::now();
    let (recovered, report) = f
        .recover(&pool, watch, load, healed, Duration::from_secs(1))
        .await;
    let failures = report.failures_since(fault - Duration::from_millis(100));
    let max = f.settings.max_connections as usize;
    assert!(
        failures <= max,
        "{failures} failed ops for {max} reset connections: a reset connection was reused: {:?}",
        report.sample_errors()
    );
    assert!(
        report.acquire_errors().is_empty(),
        "a 300 ms outage fits in every acquire's deadline: {:?}",
        report.acquire_errors()
    );
    let stats = pool.stats();
    eprintln!(
        "fault 11 (reset mid-query): run() saw \"{run_error}\" after {run_took:?} \
         (query_timeout {query_timeout:?}); a query on `&mut *conn` saw \"{direct_error}\" \
         after {direct_took:?}, and the connection was closed on release; the server kept \
         running {orphaned} orphaned quer(ies) after the reset; under load, \
         {failures} ops failed (e.g. {:?}) and no acquire; closed as broken {}; \
         {} connect attempts failed; first query succeeded {recovered:?} after the proxy \
         passed traffic again; longest acquire {:?}",
        report.sample_errors(),
        stats.closed.get(CloseReason::Broken),
        stats.connect_failures,
        report.max_acquire,
    );
    let close = pool.close(Duration::from_secs(2)).await;
    assert_no_secrets(&[
        &error_text(&run_error),
        &error_text(&direct_error),
        &format!("{stats:?} {close:?}"),
        &report.errors().join("\n"),
    ]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "finding: a query whose connection broke mid-flight keeps running on the server \
            (the pool cancels server-side work only on a query timeout), so after a reset \
            the server holds more of the pool's connections than max until it ends"]
async fn a_query_reset_mid_flight_is_cancelled_on_the_server() -> TestResult {
    let (mut f, proxy) = proxied("reset-cancel").await?;
    f.settings.max_connections = 1;
    let pool = crate::support::pool("reset-cancel", &f.settings);
    let query = tokio::spawn(pool.run(longer_query));
    f.running(LONGER_QUERY).await;
    proxy.set_mode(ProxyMode::Reset);
    let error = query.await?.expect_err("the connection was reset");
    assert!(is_reset(&error), "{error:?}");
    proxy.set_mode(ProxyMode::Pass);
    // A caller opens the replacement at once.
    pool.run(crate::support::select_one).await?;
    let limit = f.settings.connect_timeout + SLACK;
    let (host, port) = (f.server.host(), f.server.port());
    let seen = crate::support::backends_until(host, port, f.app(), limit, |n| n <= 1).await;
    assert!(
        seen <= 1,
        "{seen} server processes for a pool of max 1, {limit:?} after the reset: the \
         interrupted query still runs"
    );
    pool.close(Duration::from_secs(2)).await;
    Ok(())
}
