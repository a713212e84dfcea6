//! sqlx migrations against the pool: `pool.migrate(&MIGRATOR)`, or
//! `MIGRATOR.run(&mut pool.acquire().await?)`.

use std::path::Path;

use pool_core::{PgConnector, Pool};
use pool_testkit::TestDatabase;
use sqlx::migrate::{MigrateError, Migrator};

use crate::{build, settings_for};

/// This directory's migrations, embedded at compile time as a service embeds its own.
static MIGRATOR: Migrator = sqlx::migrate!("tests/postgres/migrations");

async fn applied(pool: &Pool<PgConnector>) -> Vec<(i64, bool)> {
    sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn migrations_apply_once_and_a_rerun_is_a_no_op() {
    let db = TestDatabase::create().await.unwrap();
    let pool = build("migrate", &settings_for(&db));

    MIGRATOR
        .run(&mut pool.acquire().await.unwrap())
        .await
        .unwrap();
    assert_eq!(applied(&pool).await, [(1, true), (2, true)]);
    sqlx::query("INSERT INTO accounts (id) VALUES (1)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO audit (account, note) VALUES (1, 'opened')")
        .execute(&pool)
        .await
        .unwrap();
    let installed: Vec<String> =
        sqlx::query_scalar("SELECT installed_on::text FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();

    // At the next start-up nothing is applied again and nothing is lost.
    MIGRATOR
        .run(&mut pool.acquire().await.unwrap())
        .await
        .unwrap();
    assert_eq!(applied(&pool).await, [(1, true), (2, true)]);
    let again: Vec<String> =
        sqlx::query_scalar("SELECT installed_on::text FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(again, installed, "not re-applied");
    let notes: i64 = sqlx::query_scalar("SELECT count(*) FROM audit")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(notes, 1);
}

#[tokio::test]
async fn a_failing_migration_is_reported_with_its_version() {
    let db = TestDatabase::create().await.unwrap();
    let pool = build("migrate-fail", &settings_for(&db));
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/postgres/migrations");
    for name in ["1_accounts.sql", "2_audit.sql"] {
        std::fs::copy(source.join(name), dir.path().join(name)).unwrap();
    }
    std::fs::write(
        dir.path().join("3_broken.sql"),
        "ALTER TABLE no_such_table ADD COLUMN x int;",
    )
    .unwrap();
    let migrator = Migrator::new(dir.path()).await.unwrap();

    let err = pool.migrate(&migrator).await.unwrap_err();
    let MigrateError::ExecuteMigration(cause, version) = &err else {
        panic!("expected the failing migration's error, got {err:?}");
    };
    assert_eq!(*version, 3);
    let code = crate::sqlstate(cause);
    assert_eq!(code.as_deref(), Some("42P01"), "undefined table: {cause}");
    assert!(
        err.to_string().contains("migration 3"),
        "the message names the version: {err}"
    );
    // The two good ones stay applied; the broken one left nothing behind.
    assert_eq!(applied(&pool).await, [(1, true), (2, true)]);
    // The migrator's advisory lock went with the discarded connection: another instance
    // starting now would not wait on it.
    let mut admin = db.admin_connection().await.unwrap();
    let mut locks = i64::MAX;
    for _ in 0..250 {
        locks = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if locks == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(locks, 0, "no advisory lock left behind");

    // Fixed, it applies on the next run, which waits on no leftover lock.
    std::fs::write(
        dir.path().join("3_broken.sql"),
        "ALTER TABLE accounts ADD COLUMN x int;",
    )
    .unwrap();
    let fixed = Migrator::new(dir.path()).await.unwrap();
    pool.migrate(&fixed).await.unwrap();
    assert_eq!(applied(&pool).await, [(1, true), (2, true), (3, true)]);
}
