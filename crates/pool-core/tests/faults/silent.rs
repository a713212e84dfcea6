//! Fault: the server goes silent mid-query on a checked-out connection (a partition after
//! the query was accepted, a host gone without a reset). Queries through the checkout and
//! through a transaction, written as the README shows, end by `query_timeout`, and the
//! connection is discarded.

use std::net::SocketAddr;
use std::time::Duration;

use pool_core::{CloseReason, PoolError, TimeoutPhase};
use pool_testkit::{FaultProxy, ProxyMode};
use tokio::time::Instant;

use crate::Fixture;
use crate::support::{SLACK, TestResult, stats_until};

/// The timeout error inside an sqlx error, as the checkout's executor reports it.
fn query_timeout_of(error: &sqlx::Error) -> Option<TimeoutPhase> {
    PoolError::from_sqlx(error).and_then(PoolError::timeout_phase)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_on_a_checkout_end_by_the_query_timeout_when_the_server_goes_silent() -> TestResult
{
    let mut f = Fixture::start("silent").await?;
    let target: SocketAddr = format!("{}:{}", f.server.host(), f.server.port()).parse()?;
    let proxy = FaultProxy::start(target).await?;
    f.settings.host = proxy.host();
    f.settings.port = proxy.port().into();
    let query_timeout = Duration::from_secs(1);
    f.settings.query_timeout = Some(query_timeout);
    let pool = crate::support::pool("silent", &f.settings);

    for through_transaction in [false, true] {
        proxy.set_mode(ProxyMode::Pass);
        let mut conn = pool.acquire().await?;
        let started = Instant::now();
        let blackhole = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            proxy.set_mode(ProxyMode::Blackhole);
        };
        let query = async {
            if through_transaction {
                let mut tx = conn.begin().await?;
                sqlx::query("SELECT pg_sleep(2)").execute(&mut tx).await?;
                tx.commit().await
            } else {
                sqlx::query("SELECT pg_sleep(2)")
                    .execute(&mut conn)
                    .await
                    .map(drop)
            }
        };
        let (outcome, ()) = tokio::time::timeout(query_timeout + SLACK, async {
            tokio::join!(query, blackhole)
        })
        .await
        .map_err(|_| "the query hung past its query_timeout")?;
        let took = started.elapsed();
        let error = outcome.expect_err("the server went silent");
        assert_eq!(
            query_timeout_of(&error),
            Some(TimeoutPhase::Query),
            "transaction: {through_transaction}: {error}"
        );
        drop(conn);
        let stats = stats_until(&pool, Duration::from_secs(5), |s| s.total == 0).await;
        assert_eq!(
            stats.total, 0,
            "the silent connection is discarded: {stats:?}"
        );
        eprintln!(
            "fault (server silent mid-query, {}): the caller saw \"{error}\" after {took:?} \
             (query_timeout {query_timeout:?}); the connection was discarded",
            if through_transaction {
                "in a transaction"
            } else {
                "on the checkout"
            },
        );
    }
    assert_eq!(pool.stats().closed.get(CloseReason::Discarded), 2);

    proxy.set_mode(ProxyMode::Pass);
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&pool).await?;
    assert_eq!(one, 1, "the pool serves again once the network is back");
    Ok(())
}
