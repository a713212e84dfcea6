//! Fault 5: the server is at its `max_connections`, every slot held by another client.

use std::time::Duration;

use pool_core::TimeoutPhase;
use sqlx::Connection as _;
use sqlx::postgres::PgConnection;
use tokio::time::Instant;

use crate::Fixture;
use crate::support::{Load, TestResult, Watch, assert_no_secrets, error_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_at_max_connections_reports_too_many_clients_backs_off_and_recovers() -> TestResult {
    let mut f = Fixture::start("max-connections").await?;
    // 8 slots: the watcher's connection, 6 application connections and one superuser
    // connection of another client fill them all.
    f.server.set_max_connections(8).await?;
    f.settings.max_connections = 4;
    f.settings.acquire_timeout = Duration::from_secs(2);
    let pool = crate::support::pool("max-connections", &f.settings);
    let watch = Watch::start(&pool, f.admin(), f.app());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let other = f.db.app_options().application_name("another-client");
    let mut hog = Vec::new();
    for _ in 0..6 {
        hog.push(PgConnection::connect_with(&other).await?);
    }
    hog.push(PgConnection::connect_with(&f.admin().application_name("another-client")).await?);

    let started = Instant::now();
    let error = pool.acquire().await.expect_err("no slot is free");
    let elapsed = started.elapsed();
    assert_eq!(error.timeout_phase(), Some(TimeoutPhase::Connecting));
    let text = error_text(&error);
    assert!(
        text.contains("sorry, too many clients already") && text.contains("53300"),
        "{text}"
    );

    // Four callers keep asking for 3 s: connects back off instead of hammering the server.
    let before = pool.stats().connect_failures;
    let load = Load::start(&pool, 4);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = pool.stats().connect_failures - before;
    assert!(
        during <= 100,
        "{during} connect attempts in 3 s from 4 connect tasks: connects must back off"
    );

    let freed = Instant::now();
    for conn in hog {
        conn.close().await?;
    }
    let (recovered, report) = f
        .recover(&pool, watch, load, freed, Duration::from_millis(500))
        .await;
    let stats = pool.stats();
    eprintln!(
        "fault 5 (server at max_connections): acquire failed after {elapsed:?} with \"{}\"; \
         {during} connect attempts in 3 s from 4 waiting callers (backoff 10 ms doubling to \
         500 ms); first query succeeded {:?} after the other client let go",
        text, recovered,
    );
    let close = pool.close(Duration::from_secs(2)).await;
    assert_no_secrets(&[
        &text,
        &format!("{stats:?} {close:?}"),
        &report.errors().join("\n"),
    ]);
    Ok(())
}
