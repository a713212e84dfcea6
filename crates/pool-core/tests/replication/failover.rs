//! A `read-write` pool under write load through a failover: the primary stops, the standby
//! is promoted, the old primary comes back as a standby of the new one. Directly, and with
//! PgBouncer (session mode) in front of each node.

use std::time::Duration;

use pool_config::{PgBouncerMode, TargetSessionAttrs};
use pool_core::CloseReason;
use pool_testkit::{PgBouncer, PoolMode, RestartMode};
use tokio::time::Instant;

use crate::support::{
    Load, TestResult, assert_no_secrets, insert_write as insert, recent_pool_lines,
};
use crate::{address, cluster, pool, servers_of_all, settings};

/// Bound on the first write after the promotion: a connect that finds the old primary
/// refusing and the new one writable takes milliseconds; the rest is the connect backoff
/// (at most 500 ms here) and a loaded machine.
const FIRST_WRITE_AFTER_PROMOTION: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_write_pool_writes_to_the_promoted_standby_and_never_to_the_old_primary()
-> TestResult {
    let mut cluster = cluster(1).await?;
    let (p0, p1) = (cluster.port(0), cluster.port(1));
    let s = settings(
        &cluster,
        &[p0, p1],
        TargetSessionAttrs::ReadWrite,
        "rw-failover",
    );
    let pool = pool("rw-failover", &s, Duration::from_secs(30));

    // A write that fails with 25006 (read-only) retires its connection at once: here the
    // session alone is read-only, as every session of a demoted primary would be.
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        .execute(&mut *conn)
        .await?;
    let error = conn
        .run(insert)
        .await
        .expect_err("a read-only session refuses writes");
    assert_eq!(
        error.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("25006")
    );
    drop(conn);
    assert_eq!(pool.stats().closed.get(CloseReason::ReadOnly), 1);

    let load = Load::start_with(&pool, 8, insert);
    assert!(
        load.first_ok_since(Instant::now(), Duration::from_secs(15))
            .await
            .is_some(),
        "no write succeeded on the first primary"
    );
    assert_eq!(pool.server().as_deref(), Some(address(p0).as_str()));

    let failover = Instant::now();
    cluster.stop(0, RestartMode::Fast).await?;
    cluster.promote(1).await?;
    let promoted = Instant::now();
    let first = load
        .first_ok_since(promoted, FIRST_WRITE_AFTER_PROMOTION)
        .await;
    let Some(first) = first else {
        panic!("no write succeeded within {FIRST_WRITE_AFTER_PROMOTION:?} of the promotion");
    };
    println!(
        "first write after the promotion: {:?} (bound {FIRST_WRITE_AFTER_PROMOTION:?}); \
         writes stopped for {:?} from the primary's stop",
        first.saturating_duration_since(promoted),
        first.saturating_duration_since(failover)
    );
    assert_eq!(pool.server().as_deref(), Some(address(p1).as_str()));
    assert_eq!(pool.stats().server_changes, 1, "the move is counted once");
    let moved = recent_pool_lines(failover.into_std(), "pool moved to another server");
    assert!(
        moved
            .iter()
            .any(|l| l.contains("pool=rw-failover") && l.contains(&address(p1))),
        "the move is logged with the new server: {moved:?}"
    );

    // The old primary comes back as a standby of the new one, first in the host list: no
    // write may reach it, so none fails from here on.
    let rejoin = Instant::now();
    cluster.rejoin_as_standby(0, 1).await?;
    assert!(cluster.is_in_recovery(0).await?);
    println!("old primary back as a standby after {:?}", rejoin.elapsed());
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (server, in_recovery) in servers_of_all(&pool).await? {
        assert_eq!(server, address(p1));
        assert!(!in_recovery, "a connection to a standby was handed out");
    }
    let report = load.stop().await;
    assert_eq!(
        report.failures_since(rejoin),
        0,
        "writes failed after the old primary returned: {:?}",
        report.sample_errors()
    );
    report.assert_acquires_bounded(s.acquire_timeout);
    assert_no_secrets(&report.sample_errors());
    pool.close(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_failover_through_pgbouncer_in_front_of_each_node() -> TestResult {
    let mut cluster = cluster(1).await?;
    let b0 = PgBouncer::start(("127.0.0.1", cluster.port(0)), PoolMode::Session).await?;
    let b1 = PgBouncer::start(("127.0.0.1", cluster.port(1)), PoolMode::Session).await?;
    let mut s = settings(
        &cluster,
        &[b0.port(), b1.port()],
        TargetSessionAttrs::ReadWrite,
        "bouncer-failover",
    );
    s.pgbouncer = Some(PgBouncerMode::Session);
    s.statement_timeout = None;
    let pool = pool("bouncer-failover", &s, Duration::from_secs(30));
    let load = Load::start_with(&pool, 8, insert);
    assert!(
        load.first_ok_since(Instant::now(), Duration::from_secs(15))
            .await
            .is_some()
    );
    assert_eq!(pool.server().as_deref(), Some(address(b0.port()).as_str()));

    // PgBouncer 0 keeps accepting clients while its server is down: the connect to it
    // fails at login (or its check), and the next host is tried.
    let failover = Instant::now();
    cluster.stop(0, RestartMode::Immediate).await?;
    cluster.promote(1).await?;
    let promoted = Instant::now();
    let Some(first) = load
        .first_ok_since(promoted, FIRST_WRITE_AFTER_PROMOTION)
        .await
    else {
        panic!("no write through PgBouncer within {FIRST_WRITE_AFTER_PROMOTION:?}");
    };
    println!(
        "through PgBouncer, first write after the promotion: {:?} (bound \
         {FIRST_WRITE_AFTER_PROMOTION:?}); writes stopped for {:?} from the primary's stop",
        first.saturating_duration_since(promoted),
        first.saturating_duration_since(failover)
    );
    let rejoin = Instant::now();
    cluster.rejoin_as_standby(0, 1).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (server, in_recovery) in servers_of_all(&pool).await? {
        assert_eq!(server, address(b1.port()));
        assert!(!in_recovery);
    }
    let report = load.stop().await;
    assert_eq!(
        report.failures_since(rejoin),
        0,
        "{:?}",
        report.sample_errors()
    );
    report.assert_acquires_bounded(s.acquire_timeout);
    pool.close(Duration::from_secs(5)).await;
    Ok(())
}
