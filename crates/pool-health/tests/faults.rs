//! Checks against a server that stops or freezes: they fail within their deadline, never hang,
//! and liveness stays independent of the database.

mod support;

use std::time::Duration;

use pool_core::{CloseReason, PgConnector, Pool};
use pool_health::{HealthChecker, HealthOptions, Probe, Status, keys};
use pool_testkit::TestServer;
use support::{SLACK, checker, json, pool, wait_idle};
use tokio::time::Instant;

fn options() -> HealthOptions {
    HealthOptions {
        timeout: Duration::from_secs(1),
        cache_ttl: Duration::ZERO,
        ..HealthOptions::default()
    }
}

/// A dedicated server with a pool (one idle connection) and a checker that passes.
async fn healthy() -> anyhow::Result<(TestServer, Pool<PgConnector>, HealthChecker)> {
    let server = TestServer::start().await?;
    let db = server.database().await?;
    let pool = pool("default", db.app_options(), 3, 1);
    wait_idle(&pool, 1).await;
    let checker = checker(options(), vec![pool.clone()]);
    assert_eq!(checker.ready().await.status(), Status::Pass);
    Ok((server, pool, checker))
}

/// Runs `probe` and checks that it failed on connectivity within the deadline, while
/// liveness, which never asks the database, still passes.
async fn fails_in_time(checker: &HealthChecker, probe: Probe) -> String {
    let started = Instant::now();
    let report = checker.check(probe).await;
    let took = started.elapsed();
    assert!(took < options().timeout + SLACK, "took {took:?}");
    assert_eq!(report.status(), Status::Fail, "{}", json(&report));
    let connectivity = report
        .find(keys::CONNECTIVITY, "default")
        .expect("connectivity");
    assert_eq!(connectivity.status(), Status::Fail);
    assert_eq!(
        checker.live().status(),
        Status::Pass,
        "liveness ignores the database"
    );
    connectivity.output().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_stopped_server_fails_readiness_within_the_deadline_and_liveness_passes()
-> anyhow::Result<()> {
    let (server, pool, checker) = healthy().await?;
    server.stop().await?;
    // First over the idle pooled connection (now broken), then over the probe connection.
    for _ in 0..2 {
        let why = fails_in_time(&checker, Probe::Ready).await;
        assert!(!why.is_empty(), "says why");
    }

    server.start_again().await?;
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let ready = checker.ready().await;
        if ready
            .find(keys::CONNECTIVITY, "default")
            .map(|r| r.status())
            == Some(Status::Pass)
        {
            break;
        }
        assert!(Instant::now() < until, "never recovered: {}", json(&ready));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pool.close(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test]
async fn a_frozen_server_fails_within_the_deadline_instead_of_hanging() -> anyhow::Result<()> {
    let (server, pool, checker) = healthy().await?;
    server.freeze().await?;
    // First over the idle pooled connection, then (that one discarded) over the probe
    // connection, which cannot even connect: both bounded.
    for _ in 0..2 {
        let why = fails_in_time(&checker, Probe::Full).await;
        assert!(why.contains("no answer within 1000 ms"), "{why}");
    }
    server.thaw().await?;
    pool.close(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test]
async fn a_check_dropped_midway_never_returns_a_half_read_connection() -> anyhow::Result<()> {
    let (server, pool, checker) = healthy().await?;
    server.freeze().await?;
    let abandoned = tokio::time::timeout(Duration::from_millis(200), checker.ready()).await;
    assert!(abandoned.is_err(), "the frozen server cannot have answered");
    // Past the check's own deadline the abandoned round trip gives up and discards the
    // pooled connection it borrowed, whose reply may still arrive.
    tokio::time::sleep(options().timeout + Duration::from_millis(500)).await;
    server.thaw().await?;
    assert_eq!(
        pool.stats().closed.get(CloseReason::Discarded),
        1,
        "{:?}",
        pool.stats()
    );

    let mut conn = pool.acquire().await?;
    let answer: i32 = sqlx::query_scalar("SELECT 42")
        .fetch_one(&mut *conn)
        .await?;
    assert_eq!(
        answer, 42,
        "a fresh connection, with no stale reply to read"
    );
    drop(conn);
    let stats = pool.stats();
    assert!(
        stats.idle + stats.in_use == stats.total && stats.total <= stats.max,
        "{stats:?}"
    );
    pool.close(Duration::from_secs(5)).await;
    Ok(())
}
