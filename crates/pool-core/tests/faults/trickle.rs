//! Fault 12: a link that trickles the server's bytes, or stops mid-message, during the
//! connection's startup (the connect must end by `connect_timeout`, the acquire by
//! `acquire_timeout`) and in the middle of a result (work under `query_timeout` must end
//! by it, through `run()` and through the `&Pool` executor, and the connection be
//! discarded).

use std::time::Duration;

use futures_core::future::BoxFuture;
use pool_core::{CloseReason, PgConnector, Pool, PoolError, TimeoutPhase};
use pool_testkit::{FaultProxy, ProxyMode};
use sqlx::PgConnection;
use tokio::time::Instant;

use crate::Fixture;
use crate::support::{
    Load, SLACK, TestResult, Watch, assert_no_secrets, error_text, select_one, stats_until,
};

/// Longer than the suite's 1 s, so the recovery's logins fit on a busy machine; far
/// shorter than a trickled login.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(4);

/// One byte every 100 ms: PostgreSQL's answers to a login (some 400 bytes) would take
/// about 40 s.
const STARTUP_TRICKLE: ProxyMode = ProxyMode::Trickle {
    bytes: 1,
    every: Duration::from_millis(100),
};
/// Ten bytes: part of the first authentication message.
const STARTUP_STALL: ProxyMode = ProxyMode::StallAfter { bytes: 10 };
/// 64 bytes every 10 ms: the 200 kB result of [`BIG_RESULT`] would take about 30 s.
const RESULT_TRICKLE: ProxyMode = ProxyMode::Trickle {
    bytes: 64,
    every: Duration::from_millis(10),
};
/// A few rows into the result, mid-row.
const RESULT_STALL: ProxyMode = ProxyMode::StallAfter { bytes: 3_000 };

const BIG_RESULT: &str = "SELECT repeat('x', 1000) FROM generate_series(1, 200)";

fn big_result(conn: &mut PgConnection) -> BoxFuture<'_, Result<usize, sqlx::Error>> {
    Box::pin(async move {
        let rows: Vec<String> = sqlx::query_scalar(BIG_RESULT).fetch_all(conn).await?;
        Ok(rows.len())
    })
}

/// A fixture whose pool reaches the server through a fault proxy.
async fn proxied(tag: &str) -> Result<(Fixture, FaultProxy), crate::BoxError> {
    let mut f = Fixture::start(tag).await?;
    let proxy = f.proxy().await?;
    f.patient(CONNECT_TIMEOUT, ACQUIRE_TIMEOUT);
    Ok((f, proxy))
}

/// Checks an acquire's error: it timed out connecting, by its deadline, and says the
/// connect timed out.
#[track_caller]
fn assert_connect_timed_out(error: &PoolError, took: Duration, f: &Fixture) -> String {
    assert!(took <= f.settings.acquire_timeout + SLACK, "{took:?}");
    assert_eq!(
        error.timeout_phase(),
        Some(TimeoutPhase::Connecting),
        "{error:?}"
    );
    let text = error_text(error);
    let cause = format!("connect timed out after {CONNECT_TIMEOUT:?}");
    assert!(text.contains(&cause), "{text}");
    text
}

async fn slow_startup(mode: ProxyMode, tag: &str) -> TestResult {
    let (f, proxy) = proxied(tag).await?;
    proxy.set_mode(mode);
    let pool = crate::support::pool(tag, &f.settings);
    let watch = Watch::start(&pool, f.admin(), f.app());

    let started = Instant::now();
    let acquire = tokio::spawn(pool.acquire());
    let failed = stats_until(&pool, Duration::from_secs(5), |s| s.connect_failures > 0).await;
    let connect_took = started.elapsed();
    assert!(failed.connect_failures > 0, "{failed:?}");
    assert!(
        connect_took <= f.settings.connect_timeout + SLACK,
        "the connect ended after {connect_took:?}"
    );
    let error = acquire.await?.expect_err("no login completes");
    let acquire_took = started.elapsed();
    let text = assert_connect_timed_out(&error, acquire_took, &f);

    // Under load, for longer than an acquire may wait, every acquire still ends by its
    // deadline; then the link heals.
    let load = Load::start(&pool, 8);
    tokio::time::sleep(ACQUIRE_TIMEOUT + Duration::from_secs(1)).await;
    let healed = Instant::now();
    proxy.set_mode(ProxyMode::Pass);
    let (recovered, report) = f
        .recover(&pool, watch, load, healed, Duration::from_millis(500))
        .await;
    let failed = report.acquire_errors();
    assert!(
        !failed.is_empty(),
        "acquires ran out of time while the link was slow"
    );
    for error in &failed {
        assert!(error.contains("while connecting"), "{error}");
    }
    let stats = pool.stats();
    eprintln!(
        "fault 12 (startup through {mode:?}): the first connect attempt failed after \
         {connect_took:?} (connect_timeout {CONNECT_TIMEOUT:?}), the acquire after \
         {acquire_took:?} (acquire_timeout {ACQUIRE_TIMEOUT:?}) with \"{error}\"; {} acquires failed under load, none past \
         its deadline (longest {:?}); {} connect attempts failed; first query succeeded \
         {recovered:?} after the link healed",
        report.acquire_errors().len(),
        report.max_acquire,
        stats.connect_failures,
    );
    let close = pool.close(Duration::from_secs(2)).await;
    assert_no_secrets(&[
        &text,
        &format!("{stats:?} {close:?}"),
        &report.errors().join("\n"),
    ]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_startup_is_bounded_by_the_connect_timeout() -> TestResult {
    slow_startup(STARTUP_TRICKLE, "trickle-startup").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_stalled_mid_message_is_bounded_by_the_connect_timeout() -> TestResult {
    slow_startup(STARTUP_STALL, "stall-startup").await
}

/// Checks the error of work that met the fault mid-result: a query timeout, by its
/// deadline.
#[track_caller]
fn assert_query_timed_out(error: &sqlx::Error, took: Duration, query_timeout: Duration) {
    assert!(
        took <= query_timeout + SLACK,
        "the work ended after {took:?}, past its query_timeout {query_timeout:?}"
    );
    let pool_error = PoolError::from_sqlx(error).expect("a pool error");
    assert_eq!(
        pool_error.timeout_phase(),
        Some(TimeoutPhase::Query),
        "{error:?}"
    );
}

/// Opens two connections and learns their backend pids, so the work below starts at once
/// on a connection the pool knows how to cancel.
async fn two_warm_connections(pool: &Pool<PgConnector>) -> TestResult {
    let mut a = pool.acquire().await?;
    let mut b = pool.acquire().await?;
    a.run(select_one).await?;
    b.run(select_one).await?;
    Ok(())
}

async fn slow_result(mode: ProxyMode, tag: &str) -> TestResult {
    let (mut f, proxy) = proxied(tag).await?;
    let query_timeout = Duration::from_secs(1);
    f.settings.query_timeout = Some(query_timeout);
    // Validation would meet the fault before the work does.
    f.settings.validate_after_idle = None;
    let pool = crate::support::pool(tag, &f.settings);
    let watch = Watch::start(&pool, f.admin(), f.app());
    two_warm_connections(&pool).await?;
    assert_eq!(pool.run(big_result).await?, 200, "the whole result passes");
    let before = pool.stats();
    proxy.set_mode(mode);

    let started = Instant::now();
    let run = tokio::time::timeout(query_timeout + SLACK, pool.run(big_result))
        .await
        .expect("run() ends by its query timeout");
    let run_took = started.elapsed();
    let run_error = run.expect_err("the result never completes");
    assert_query_timed_out(&run_error, run_took, query_timeout);

    let started = Instant::now();
    let one_shot = sqlx::query_scalar::<_, String>(BIG_RESULT).fetch_all(&pool);
    let executor = tokio::time::timeout(query_timeout + SLACK, one_shot)
        .await
        .expect("a query on &Pool ends by its query timeout");
    let executor_took = started.elapsed();
    let executor_error = executor.expect_err("the result never completes");
    assert_query_timed_out(&executor_error, executor_took, query_timeout);

    let after = stats_until(&pool, Duration::from_secs(5), |s| s.in_use == 0).await;
    assert_eq!(
        after.closed.get(CloseReason::Discarded) - before.closed.get(CloseReason::Discarded),
        2,
        "both connections were discarded: {after:?}"
    );
    assert_eq!(after.total, before.total - 2, "{after:?}");

    let healed = Instant::now();
    proxy.set_mode(ProxyMode::Pass);
    let load = Load::start(&pool, 8);
    let (recovered, report) = f
        .recover(&pool, watch, load, healed, Duration::from_millis(500))
        .await;
    let stats = pool.stats();
    let left = f
        .backends_until(|n| n == i64::from(pool.stats().total))
        .await;
    assert_eq!(
        left,
        i64::from(pool.stats().total),
        "no server connection left behind"
    );
    eprintln!(
        "fault 12 (result through {mode:?}): run() failed after {run_took:?} with \
         \"{run_error}\", a query on &Pool after {executor_took:?} with \"{executor_error}\" \
         (query_timeout {query_timeout:?}); both connections discarded; first query \
         succeeded {recovered:?} after the link healed",
    );
    let close = pool.close(Duration::from_secs(2)).await;
    assert_no_secrets(&[
        &error_text(&run_error),
        &error_text(&executor_error),
        &format!("{stats:?} {close:?}"),
        &report.errors().join("\n"),
    ]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_result_ends_at_the_query_timeout_and_the_connection_is_discarded() -> TestResult {
    slow_result(RESULT_TRICKLE, "trickle-result").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_stalled_mid_message_ends_at_the_query_timeout_and_the_connection_is_discarded()
-> TestResult {
    slow_result(RESULT_STALL, "stall-result").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_on_a_connection_not_used_through_run_before_ends_at_the_query_timeout()
-> TestResult {
    let (mut f, proxy) = proxied("stall-cold").await?;
    let query_timeout = Duration::from_secs(1);
    f.settings.query_timeout = Some(query_timeout);
    f.settings.validate_after_idle = None;
    let pool = crate::support::pool("stall-cold", &f.settings);
    // Opened and used on a checkout (the README's idiom), never through run().
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT 1").execute(&mut *conn).await?;
    drop(conn);
    proxy.set_mode(ProxyMode::StallAfter { bytes: 0 });
    let started = Instant::now();
    let run = tokio::time::timeout(Duration::from_secs(30), pool.run(big_result))
        .await
        .expect("run() ends at some point");
    let took = started.elapsed();
    let error = run.expect_err("nothing comes back");
    eprintln!(
        "fault 12 (stall, connection not used through run() before): run() failed after \
         {took:?} with \"{error}\" (query_timeout {query_timeout:?}, validation_timeout \
         {:?})",
        f.settings.connect_timeout
    );
    assert_query_timed_out(&error, took, query_timeout);
    proxy.set_mode(ProxyMode::Pass);
    pool.close(Duration::from_secs(2)).await;
    Ok(())
}
