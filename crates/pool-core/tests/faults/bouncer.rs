//! Fault 13: PgBouncer itself fails, in session mode: it is killed and started again on the
//! same port (a crash, an OOM kill, a redeploy), and an operator runs `PAUSE` then `RESUME`
//! on its admin console (as before a database maintenance).

use std::time::Duration;

use pool_config::PgBouncerMode;
use pool_core::{PgConnector, Pool};
use pool_testkit::{PgBouncer, PoolMode};
use sqlx::postgres::PgConnection;
use sqlx::{Connection as _, Row as _};
use tokio::time::Instant;

use crate::Fixture;
use crate::support::{TestResult, assert_no_secrets};

/// How long PgBouncer stays paused: longer than an acquire may wait.
const PAUSED_FOR: Duration = Duration::from_secs(6);

/// A fixture whose pool reaches the server through PgBouncer in session mode.
async fn bounced(tag: &str) -> Result<(Fixture, PgBouncer), crate::BoxError> {
    let mut f = Fixture::start(tag).await?;
    // Each login runs SCRAM twice (pool to PgBouncer, PgBouncer to the server).
    f.patient(Duration::from_secs(5), Duration::from_secs(10));
    let bouncer = PgBouncer::start(&f.server, PoolMode::Session).await?;
    f.settings.host = bouncer.host().to_owned();
    f.settings.port = bouncer.port().into();
    f.settings.pgbouncer = Some(PgBouncerMode::Session);
    Ok((f, bouncer))
}

/// Client connections PgBouncer holds for the fixture's database.
async fn clients(f: &Fixture, bouncer: &PgBouncer) -> Result<usize, crate::BoxError> {
    let mut console = PgConnection::connect_with(&bouncer.admin_options()).await?;
    let rows = sqlx::raw_sql("SHOW CLIENTS")
        .fetch_all(&mut console)
        .await?;
    let _ = console.close().await;
    let mut n = 0;
    for row in rows {
        if row.try_get::<String, _>("database")? == f.db.name() {
            n += 1;
        }
    }
    Ok(n)
}

/// After the pool closed, PgBouncer holds no client connection of it.
async fn assert_no_clients_left(
    f: &Fixture,
    bouncer: &PgBouncer,
    pool: &Pool<PgConnector>,
) -> TestResult {
    let close = pool.close(Duration::from_secs(2)).await;
    assert!(close.is_complete(), "{close:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = clients(f, bouncer).await?;
    while left > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = clients(f, bouncer).await?;
    }
    assert_eq!(
        left, 0,
        "the closed pool left client connections in PgBouncer"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbouncer_killed_and_started_again_on_its_port_is_reconnected_to() -> TestResult {
    let (f, mut bouncer) = bounced("bouncer-kill").await?;
    let pool = crate::support::pool("bouncer-kill", &f.settings);
    let (watch, load) = f.load(&pool, 16).await;

    let killed = Instant::now();
    bouncer.kill().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    bouncer.start_again().await?;
    let back = Instant::now();
    let (recovered, report) = f
        .recover(&pool, watch, load, back, Duration::from_millis(1500))
        .await;
    let max = f.settings.max_connections as usize;
    assert!(
        report.work_errors().len() <= max,
        "{} failed queries for {max} connections cut by the kill: {:?}",
        report.work_errors().len(),
        report.sample_errors()
    );
    assert_eq!(
        report.failures_since(back + recovered + Duration::from_secs(1)),
        0,
        "{:?}",
        report.sample_errors()
    );
    let stats = pool.stats();
    eprintln!(
        "fault 13 (PgBouncer killed, started again 1 s later): {} queries failed (e.g. \
         {:?}), {} acquires failed, longest acquire {:?}; first query succeeded {recovered:?} \
         after PgBouncer listened again ({:?} after the kill); broken connections closed: {}",
        report.work_errors().len(),
        report.sample_errors(),
        report.acquire_errors().len(),
        report.max_acquire,
        back + recovered - killed,
        stats.closed.get(pool_core::CloseReason::Broken),
    );
    assert_no_clients_left(&f, &bouncer, &pool).await?;
    assert_no_secrets(&[&format!("{stats:?}"), &report.errors().join("\n")]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbouncer_paused_bounds_every_acquire_and_the_pool_recovers_on_resume() -> TestResult {
    let (mut f, bouncer) = bounced("bouncer-pause").await?;
    f.patient(Duration::from_secs(3), Duration::from_secs(4));
    f.settings.query_timeout = Some(Duration::from_secs(3));
    // Connections turn over, as in a service whose pool retires them: in session mode
    // PAUSE completes only once every client has let go of its server connection.
    f.settings.max_uses = Some(5);
    let pool = crate::support::pool("bouncer-pause", &f.settings);
    let (watch, load) = f.load(&pool, 16).await;

    let paused = Instant::now();
    let pause = tokio::spawn({
        let options = bouncer.admin_options();
        async move {
            let mut console = PgConnection::connect_with(&options).await?;
            sqlx::raw_sql("PAUSE").execute(&mut console).await?;
            Ok::<_, sqlx::Error>((paused.elapsed(), console))
        }
    });
    tokio::time::sleep(PAUSED_FOR).await;
    let pause_done = pause.is_finished();
    let mut console = PgConnection::connect_with(&bouncer.admin_options()).await?;
    sqlx::raw_sql("RESUME").execute(&mut console).await?;
    let resumed = Instant::now();
    let pause_took = match pause.await? {
        Ok((took, console)) => {
            let _ = console.close().await;
            Some(took)
        }
        Err(error) => panic!("PAUSE failed: {error}"),
    };
    let _ = console.close().await;
    let during = load.ok_count();
    let (recovered, report) = f
        .recover(&pool, watch, load, resumed, Duration::from_millis(2500))
        .await;
    assert_eq!(
        report.failures_since(resumed + recovered + Duration::from_secs(2)),
        0,
        "{:?}",
        report.sample_errors()
    );
    let stats = pool.stats();
    eprintln!(
        "fault 13 (PgBouncer PAUSE for {PAUSED_FOR:?}, then RESUME): PAUSE {} \
         ({pause_took:?}); {} acquires and {} queries failed (e.g. {:?}), longest acquire {:?} \
         (acquire_timeout 4 s); {during} ops succeeded before RESUME; first query succeeded {recovered:?} \
         after RESUME; closed {:?}",
        if pause_done {
            "completed while the pool turned its connections over"
        } else {
            "was still waiting for clients to let go"
        },
        report.acquire_errors().len(),
        report.work_errors().len(),
        report.sample_errors(),
        report.max_acquire,
        stats.closed,
    );
    assert_no_clients_left(&f, &bouncer, &pool).await?;
    assert_no_secrets(&[&format!("{stats:?}"), &report.errors().join("\n")]);
    Ok(())
}
