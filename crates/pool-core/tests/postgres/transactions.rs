//! `Pool::begin`: a transaction that owns its connection, as `PgPool::begin` gives one.

use std::time::{Duration, Instant};

use pool_core::{PgConnector, Pool, PoolError, TimeoutPhase};
use pool_testkit::TestDatabase;

use crate::{build, settings_for};

async fn with_table(pool: &Pool<PgConnector>) {
    sqlx::raw_sql("CREATE TABLE items (name text PRIMARY KEY)")
        .execute(pool)
        .await
        .unwrap();
}

async fn names(pool: &Pool<PgConnector>) -> Vec<String> {
    sqlx::query_scalar("SELECT name FROM items ORDER BY name")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_owned_transaction_moves_into_a_task_and_commits_there() {
    let db = TestDatabase::create().await.unwrap();
    let pool = build("begin-task", &settings_for(&db));
    with_table(&pool).await;

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO items VALUES ('from the caller')")
        .execute(&mut tx)
        .await
        .unwrap();
    assert_eq!(
        pool.stats().in_use,
        1,
        "the transaction holds its connection"
    );
    assert!(names(&pool).await.is_empty(), "not visible before commit");
    let task = tokio::spawn(async move {
        sqlx::query("INSERT INTO items VALUES ('from the task')")
            .execute(&mut tx)
            .await?;
        tx.commit().await
    });
    task.await.unwrap().unwrap();

    assert_eq!(names(&pool).await, ["from the caller", "from the task"]);
    assert_eq!(pool.stats().in_use, 0, "the connection went back at commit");
}

#[tokio::test]
async fn rollback_and_savepoints_work_as_with_sqlx() {
    let db = TestDatabase::create().await.unwrap();
    let pool = build("begin-savepoints", &settings_for(&db));
    with_table(&pool).await;

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO items VALUES ('outer')")
        .execute(&mut tx)
        .await
        .unwrap();
    {
        let mut savepoint = tx.begin().await.unwrap();
        sqlx::query("INSERT INTO items VALUES ('undone')")
            .execute(&mut savepoint)
            .await
            .unwrap();
        savepoint.rollback().await.unwrap();
    }
    {
        let mut savepoint = tx.begin().await.unwrap();
        sqlx::query("INSERT INTO items VALUES ('kept')")
            .execute(&mut savepoint)
            .await
            .unwrap();
        let mut deeper = savepoint.begin().await.unwrap();
        sqlx::query("INSERT INTO items VALUES ('dropped')")
            .execute(&mut deeper)
            .await
            .unwrap();
        drop(deeper); // rolled back to its savepoint, as sqlx does
        savepoint.commit().await.unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(names(&pool).await, ["kept", "outer"]);

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("DELETE FROM items")
        .execute(&mut tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(names(&pool).await, ["kept", "outer"], "rolled back");
}

#[tokio::test]
async fn a_transaction_dropped_without_commit_is_rolled_back_before_its_connection_is_reused() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.max_connections = 1;
    let pool = build("begin-dropped", &settings);
    with_table(&pool).await;

    let mut tx = pool.begin().await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut tx)
        .await
        .unwrap();
    sqlx::query("INSERT INTO items VALUES ('never committed')")
        .execute(&mut tx)
        .await
        .unwrap();
    drop(tx);

    // The pool's one connection, the same server process: rolled back, not replaced.
    let mut conn = pool.acquire().await.unwrap();
    let same_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(same_pid, pid);
    let mut admin = db.admin_connection().await.unwrap();
    let state: String = sqlx::query_scalar("SELECT state FROM pg_stat_activity WHERE pid = $1")
        .bind(pid)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(state, "idle", "no transaction left open on the connection");
    drop(conn);
    assert!(names(&pool).await.is_empty(), "the insert was rolled back");
    assert_eq!(pool.stats().closed.total(), 0, "cleaned, not discarded");
}

#[tokio::test]
async fn work_in_an_owned_transaction_runs_under_query_timeout() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.statement_timeout = None;
    let timeout = Duration::from_millis(500);
    settings.query_timeout = Some(timeout);
    let pool = build("begin-timeout", &settings);

    let mut tx = pool.begin().await.unwrap();
    let started = Instant::now();
    let err = sqlx::query("SELECT pg_sleep(60)")
        .execute(&mut tx)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < timeout + crate::SLACK,
        "bounded by query_timeout: {:?}",
        started.elapsed()
    );
    let pool_error = PoolError::from_sqlx(&err).expect("a pool error inside");
    assert_eq!(pool_error.timeout_phase(), Some(TimeoutPhase::Query));
    drop(tx);
    assert!(
        crate::eventually(Duration::from_secs(10), || pool.stats().total == 0).await,
        "the timed-out connection is discarded, never reused: {:?}",
        pool.stats()
    );
}

/// Code written against sqlx's `Acquire`, as libraries and helpers often are.
async fn record<'a, A>(into: A, name: &str) -> Result<(), sqlx::Error>
where
    A: sqlx::Acquire<'a, Database = sqlx::Postgres>,
{
    let mut conn = into.acquire().await?;
    sqlx::query("INSERT INTO items VALUES ($1)")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[tokio::test]
async fn code_generic_over_acquire_takes_a_checkout_and_a_transaction() {
    let db = TestDatabase::create().await.unwrap();
    let pool = build("acquire", &settings_for(&db));
    with_table(&pool).await;

    record(&mut pool.acquire().await.unwrap(), "on a checkout")
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    record(&mut tx, "in a transaction").await.unwrap();
    {
        // `Acquire::begin` on a transaction makes a savepoint, as with sqlx's.
        let mut savepoint = sqlx::Acquire::begin(&mut tx).await.unwrap();
        sqlx::query("INSERT INTO items VALUES ('in a savepoint')")
            .execute(&mut *savepoint)
            .await
            .unwrap();
        savepoint.rollback().await.unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(names(&pool).await, ["in a transaction", "on a checkout"]);
}
