//! Statement and query timeouts, transactions, the sqlx executor, authentication.

use std::time::Duration;

use pool_core::{PoolError, TimeoutPhase};
use pool_testkit::TestDatabase;

use crate::{app_name, build, settings_for};

#[tokio::test]
async fn the_server_enforces_statement_timeout_and_the_connection_stays_usable() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.statement_timeout = Some(Duration::from_millis(300));
    settings.query_timeout = Some(Duration::from_secs(20));
    let pool = build("statement", &settings);
    let mut conn = pool.acquire().await.unwrap();
    let err = sqlx::query("SELECT pg_sleep(5)")
        .execute(&mut *conn)
        .await
        .unwrap_err();
    let code = err
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("57014"), "{err}");
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    let shown: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(shown, "300ms");
}

#[tokio::test]
async fn query_timeout_discards_the_connection_and_the_server_query_goes_away() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.statement_timeout = None;
    settings.query_timeout = Some(Duration::from_millis(500));
    let pool = build("query", &settings);
    let mut conn = pool.acquire().await.unwrap();
    let pid = conn
        .backend_pid()
        .await
        .expect("the server names its backend pid");
    let started = std::time::Instant::now();
    let err: sqlx::Error = conn
        .run(|c| {
            Box::pin(async move {
                sqlx::query("SELECT pg_sleep(60)")
                    .execute(c)
                    .await
                    .map(drop)
            })
        })
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by query_timeout"
    );
    let pool_error = PoolError::from_sqlx(&err).expect("a pool error inside");
    assert_eq!(pool_error.timeout_phase(), Some(TimeoutPhase::Query));
    drop(conn);
    let mut admin = db.admin_connection().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let gone = loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep(60)%'",
        )
        .bind(pid)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if running == 0 || tokio::time::Instant::now() >= deadline {
            break running == 0;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(gone, "the abandoned query kept running on the server");
    let stats = pool.stats();
    assert_eq!(stats.closed.get(pool_core::CloseReason::Discarded), 1);
    // The pool goes on with a fresh connection.
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(one, 1);
}

#[tokio::test]
async fn a_transaction_left_open_is_not_seen_by_the_next_user() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.max_connections = 1;
    let pool = build("tx", &settings);
    sqlx::raw_sql("CREATE TABLE items (id int)")
        .execute(&pool)
        .await
        .unwrap();
    {
        let mut conn = pool.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("INSERT INTO items VALUES (1)")
            .execute(&mut *tx)
            .await
            .unwrap();
        // Dropped without commit: the pool must finish the rollback before reuse.
    }
    let mut conn = pool.acquire().await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM items")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(count, 0);
    // Not inside the leftover transaction: its transaction id is gone.
    let fresh: bool = sqlx::query_scalar("SELECT pg_current_xact_id_if_assigned() IS NULL")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert!(fresh);
    assert_eq!(
        pool.stats().created,
        1,
        "rolled back and reused, not replaced"
    );
}

#[tokio::test]
async fn the_pool_is_an_sqlx_executor_for_one_shot_queries() {
    let db = TestDatabase::create().await.unwrap();
    let pool = build("exec", &settings_for(&db));
    sqlx::query("CREATE TABLE t (v int)")
        .execute(&pool)
        .await
        .unwrap();
    let done = sqlx::query("INSERT INTO t SELECT generate_series(1, 5)")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 5);
    let all: Vec<i32> = sqlx::query_scalar("SELECT v FROM t ORDER BY v")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(all, [1, 2, 3, 4, 5]);
    let none: Option<i32> = sqlx::query_scalar("SELECT v FROM t WHERE v > 9")
        .fetch_optional(&pool)
        .await
        .unwrap();
    assert_eq!(none, None);
    let name: String = sqlx::query_scalar("SELECT current_setting('application_name')")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(name, app_name(&db));
    let stats = pool.stats();
    assert_eq!(stats.in_use, 0);
}

#[tokio::test]
async fn a_wrong_password_is_an_authentication_error_at_once() {
    let db = TestDatabase::create().await.unwrap();
    if !db.require_password_auth().await.unwrap() {
        return;
    }
    let mut settings = settings_for(&db);
    settings.password = pool_config::Secret::new("not-the-password");
    settings.acquire_timeout = Duration::from_secs(20);
    let pool = build("auth", &settings);
    let started = std::time::Instant::now();
    let err = pool.acquire().await.unwrap_err();
    assert!(matches!(err, PoolError::Authentication { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not retried until the acquire timeout"
    );
    let text = format!("{err} {err:?}");
    assert!(!text.contains("not-the-password"), "{text}");
}
