//! The operator's runtime controls against a real server: the backends the server sees follow
//! resize, evict and pause, and the fail-fast start reports a server it cannot reach.

use std::time::Duration;

use pool_core::{CloseReason, PoolError};
use pool_testkit::TestDatabase;

use crate::{backends, backends_until, build, settings_for};

/// The backend pid each of `n` connections checked out together is on.
async fn pids(pool: &pool_core::Pool<pool_core::PgConnector>, n: usize) -> Vec<i32> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(pool.acquire().await.unwrap());
    }
    let mut pids = Vec::new();
    for conn in &mut held {
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        pids.push(pid);
    }
    pids
}

#[tokio::test]
async fn evict_under_load_replaces_every_session_and_fails_no_query() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.max_connections = 4;
    let pool = build("evict", &settings);
    let before = pids(&pool, 4).await;

    let load: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    sqlx::query("SELECT pg_sleep(0.01)").execute(&pool).await?;
                }
                Ok::<_, sqlx::Error>(())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    pool.evict();
    for task in load {
        task.await
            .unwrap()
            .expect("no query fails across an eviction");
    }

    let after = pids(&pool, 4).await;
    assert!(
        after.iter().all(|pid| !before.contains(pid)),
        "every session is new: before {before:?}, after {after:?}"
    );
    assert!(pool.stats().closed.get(CloseReason::Evicted) >= 4);
}

#[tokio::test]
async fn shrinking_closes_server_sessions_and_growing_opens_them_for_waiters() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.max_connections = 5;
    let app = settings.application_name.clone();
    let pool = build("resize", &settings);
    let mut admin = db.admin_connection().await.unwrap();
    pids(&pool, 5).await;
    assert_eq!(backends(&mut admin, &app).await, 5);

    pool.resize(2, 0).unwrap();
    assert!(
        backends_until(&mut admin, &app, Duration::from_secs(10), |n| n == 2).await,
        "the server sees 2 sessions within 10 s"
    );
    assert_eq!(pool.stats().closed.get(CloseReason::Resized), 3);

    // Four callers hold connections while the pool grows to four.
    pool.resize(4, 0).unwrap();
    let held = pids(&pool, 4).await;
    assert_eq!(held.len(), 4);
    assert_eq!(backends(&mut admin, &app).await, 4);
}

#[tokio::test]
async fn while_paused_no_session_opens_and_resume_serves_the_waiters() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.max_connections = 3;
    settings.acquire_timeout = Duration::from_secs(1);
    let app = settings.application_name.clone();
    let pool = build("pause", &settings);
    let mut admin = db.admin_connection().await.unwrap();

    pool.pause();
    let error = pool.acquire().await.unwrap_err();
    assert!(matches!(error, PoolError::Timeout { .. }), "{error}");
    assert_eq!(backends(&mut admin, &app).await, 0, "no session opened");

    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut conn = pool.acquire().await.expect("served at resume");
            sqlx::query_scalar::<_, i32>("SELECT 1")
                .fetch_one(&mut *conn)
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    pool.resume();
    assert_eq!(waiter.await.unwrap().unwrap(), 1);
    assert_eq!(backends(&mut admin, &app).await, 1);
}

#[tokio::test]
async fn ready_reports_a_server_it_cannot_reach_naming_the_pool_within_connect_timeout() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    let pool = build("orders", &settings);
    pool.ready().await.unwrap();
    assert_eq!(
        pool.stats().idle,
        1,
        "the fail-fast start keeps its connection"
    );

    // Nothing listens on the port a closed listener had.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    settings.port = port.into();
    settings.connect_timeout = Duration::from_secs(2);
    let unreachable = build("orders", &settings);
    let started = tokio::time::Instant::now();
    let error = unreachable.ready().await.unwrap_err();
    assert!(
        matches!(&error, PoolError::Connect { pool, .. } if &**pool == "orders"),
        "{error}"
    );
    assert!(error.to_string().contains("orders"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(2) + Duration::from_secs(5));
}
