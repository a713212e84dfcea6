//! `fetch()` through `&Pool`: rows as the server sends them, the connection held only while
//! the stream lives. (Memory for a million rows: `tests/stream_memory.rs`.)

use std::time::Duration;

use futures_util::TryStreamExt;
use pool_testkit::TestDatabase;
use sqlx::Row as _;

use crate::{app_name, build, settings_for};

#[tokio::test]
async fn rows_arrive_while_the_query_still_runs_and_dropping_the_stream_frees_the_connection() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.max_connections = 1;
    let pool = build("stream-early", &settings);
    let mut admin = db.admin_connection().await.unwrap();

    // Two 64 KiB rows overflow the server's send buffer, so the first reaches the client
    // while the third is still being computed (it sleeps).
    let sql = "SELECT g, repeat('x', 65536) AS pad, pg_sleep(CASE WHEN g = 3 THEN 20 ELSE 0 END) \
               FROM generate_series(1, 3) g";
    let mut rows = sqlx::query(sql).fetch(&pool);
    let first = rows.try_next().await.unwrap().expect("a first row");
    assert_eq!(first.get::<i32, _>("g"), 1);
    let running: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' \
         AND query LIKE '%generate_series(1, 3)%'",
    )
    .bind(app_name(&db))
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(running, 1, "the first row came before the query finished");
    assert_eq!(pool.stats().in_use, 1, "the stream holds its connection");

    drop(rows);
    assert_eq!(
        pool.stats().in_use,
        0,
        "dropping the stream gives its slot back"
    );
    // Half-read, the connection cannot be reused: it is closed, and the pool serves on.
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(one, 1);
}

#[tokio::test]
async fn a_stream_read_to_the_end_returns_its_connection_for_reuse() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.max_connections = 1;
    let pool = build("stream-end", &settings);
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();

    let mut rows =
        sqlx::query_scalar::<_, i32>("SELECT g FROM generate_series(1, 10000) g").fetch(&pool);
    let mut sum = 0_i64;
    while let Some(g) = rows.try_next().await.unwrap() {
        sum += i64::from(g);
    }
    drop(rows);
    assert_eq!(sum, 10_000 * 10_001 / 2);

    let again: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(again, pid, "the same connection, reused");
    assert_eq!(pool.stats().closed.total(), 0);
}

#[tokio::test]
async fn a_failing_query_ends_the_stream_with_its_error_and_the_connection_is_reused() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.max_connections = 1;
    let pool = build("stream-error", &settings);

    let err = sqlx::query("SELECT 1 / (g - 3) FROM generate_series(1, 5) g")
        .fetch(&pool)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    let code = crate::sqlstate(&err);
    assert_eq!(code.as_deref(), Some("22012"), "division by zero: {err}");
    assert!(
        crate::eventually(Duration::from_secs(5), || pool.stats().in_use == 0).await,
        "the connection went back"
    );
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(one, 1);
    assert_eq!(
        pool.stats().closed.total(),
        0,
        "a query error leaves it reusable"
    );
}
