//! Session handling: reset on release, the after_connect hook, read-only servers, PgBouncer.

use std::time::Duration;

use pool_core::{CloseReason, PgConnector, PoolOptions};
use pool_testkit::{PoolMode, TestDatabase};
use sqlx::AssertSqlSafe;

use crate::connect_checks::bounced;
use crate::{build, settings_for};

#[tokio::test]
async fn reset_on_release_clears_session_state_and_prepared_statements_keep_working() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.max_connections = 1;
    settings.reset_on_release = true;
    let pool = build("reset", &settings);
    {
        let mut conn = pool.acquire().await.unwrap();
        sqlx::raw_sql("SET work_mem = '7MB'")
            .execute(&mut *conn)
            .await
            .unwrap();
        let one: i32 = sqlx::query_scalar("SELECT $1::int")
            .bind(1)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(one, 1);
    }
    let mut conn = pool.acquire().await.unwrap();
    let work_mem: String = sqlx::query_scalar("SHOW work_mem")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_ne!(work_mem, "7MB");
    // DISCARD ALL dropped the server's prepared statements; sqlx's cache was cleared with them.
    let two: i32 = sqlx::query_scalar("SELECT $1::int")
        .bind(2)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(two, 2);
    assert_eq!(pool.stats().created, 1, "reset, not replaced");
}

#[tokio::test]
async fn after_connect_runs_on_every_new_connection() {
    let db = TestDatabase::create().await.unwrap();
    let settings = settings_for(&db);
    let connector = PgConnector::from_settings(&settings).after_connect(|conn| {
        Box::pin(async move {
            sqlx::raw_sql("SET search_path TO audit, public")
                .execute(conn)
                .await
                .map(drop)
        })
    });
    let pool = PoolOptions::from_settings(&settings)
        .name("hook")
        .build(connector)
        .unwrap();
    let path: String = sqlx::query_scalar("SHOW search_path")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(path, "audit, public");
}

#[tokio::test]
async fn check_writable_retires_connections_to_a_server_that_turned_read_only() {
    let db = TestDatabase::create().await.unwrap();
    let mut admin = db.admin_connection().await.unwrap();
    sqlx::raw_sql("CREATE TABLE t (v int); GRANT ALL ON t TO PUBLIC")
        .execute(&mut admin)
        .await
        .unwrap();
    let mut settings = settings_for(&db);
    settings.check_writable = true;
    settings.validate_after_idle = Some(Duration::from_millis(100));
    let pool = build("writable", &settings);
    // The connection passed the check on connect; its session turns read-only afterwards,
    // as one to a primary demoted to a standby does.
    let read_only = "SET default_transaction_read_only = on";
    let mut conn = pool.acquire().await.unwrap();
    sqlx::raw_sql(read_only).execute(&mut *conn).await.unwrap();
    // A write through the pool fails with 25006 and retires that connection.
    let err = conn
        .run(|c| Box::pin(async move { sqlx::query("INSERT INTO t VALUES (1)").execute(c).await }))
        .await
        .unwrap_err();
    let code = err
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("25006"), "{err}");
    drop(conn);
    assert_eq!(pool.stats().closed.get(CloseReason::ReadOnly), 1);
    // An idle connection that turned read-only fails validation the same way.
    let mut conn = pool.acquire().await.unwrap();
    sqlx::raw_sql(read_only).execute(&mut *conn).await.unwrap();
    drop(conn);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(pool.stats().closed.get(CloseReason::ReadOnly), 2);
    sqlx::query("INSERT INTO t VALUES (2)")
        .execute(&mut *conn)
        .await
        .expect("the connection handed out instead takes writes");
}

#[tokio::test]
async fn pgbouncer_transaction_mode_connects_without_startup_options() {
    let db = TestDatabase::create().await.unwrap();
    let (_bouncer, mut settings) = bounced(&db, PoolMode::Transaction).await;
    settings.statement_timeout = Some(Duration::from_secs(30));
    let pool = build("bouncer", &settings);
    // PgBouncer refuses an `options` startup parameter: connecting proves none was sent.
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(one, 1);
    let mut conn = pool.acquire().await.unwrap();
    sqlx::raw_sql("CREATE TABLE t (v int); INSERT INTO t VALUES (1), (2)")
        .execute(&mut *conn)
        .await
        .unwrap();
    assert_eq!(
        conn.backend_pid().await,
        None,
        "no pid to cancel behind a transaction pooler"
    );
}

/// Sessions the server ends on its own (an idle transaction past
/// `idle_in_transaction_session_timeout`, SQLSTATE 25P03; an idle session past
/// `idle_session_timeout`, 57P05) are broken: the caller sees the error once, the connection
/// is retired as broken, and the next caller gets a working one.
#[tokio::test]
async fn sessions_the_server_ended_are_retired_as_broken() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.max_connections = 1;
    let pool = build("server-ended", &settings);
    for (setting, begin) in [
        ("idle_in_transaction_session_timeout", "BEGIN"),
        ("idle_session_timeout", "SELECT 1"),
    ] {
        let mut conn = pool.acquire().await.unwrap();
        let sql = format!("SET {setting} = '100ms'; {begin}");
        conn.run(move |c| {
            Box::pin(async move { sqlx::raw_sql(AssertSqlSafe(sql)).execute(c).await })
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let error = conn
            .run(|c| Box::pin(async move { sqlx::raw_sql("SELECT 1").execute(c).await }))
            .await
            .expect_err("the server ended the session");
        drop(conn);
        assert!(
            pool.stats().closed.get(CloseReason::Broken) >= 1,
            "{setting}: {error} must retire the connection as broken: {:?}",
            pool.stats()
        );
        let mut conn = pool.acquire().await.unwrap();
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut *conn)
            .await
            .expect("the next caller gets a working connection");
        assert_eq!(one, 1);
    }
    assert_eq!(pool.stats().closed.get(CloseReason::Broken), 2);
}
