//! What a new connection is checked for, and set up with, before the pool hands it out:
//! `check_writable` on connect.

use std::error::Error as _;
use std::time::Duration;

use pool_testkit::TestDatabase;
use sqlx::AssertSqlSafe;
use tokio::time::Instant;

use crate::{SLACK, build, settings_for};

/// The error and every source below it, in one line.
pub(crate) fn chain(error: &pool_core::PoolError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    text
}

#[tokio::test]
async fn check_writable_refuses_a_read_only_server_on_connect() {
    let db = TestDatabase::create().await.unwrap();
    let mut admin = db.admin_connection().await.unwrap();
    let setup = format!(
        "CREATE TABLE t (v int); GRANT ALL ON t TO PUBLIC; \
         ALTER DATABASE {} SET default_transaction_read_only = on",
        db.name()
    );
    sqlx::raw_sql(AssertSqlSafe(setup))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut settings = settings_for(&db);
    settings.check_writable = true;
    settings.acquire_timeout = Duration::from_secs(2);
    let pool = build("writable-on-connect", &settings);

    let started = Instant::now();
    let acquired = pool.acquire().await;
    let elapsed = started.elapsed();
    let error = match acquired {
        Ok(mut conn) => {
            // Before: the connection was handed out and the first write failed with 25006.
            let write = sqlx::query("INSERT INTO t VALUES (1)")
                .execute(&mut *conn)
                .await;
            panic!(
                "a connection to a read-only server was handed out; a write on it gave {write:?}"
            );
        }
        Err(error) => error,
    };
    let text = chain(&error);
    assert!(
        text.contains("read-only") && text.contains("check_writable"),
        "the acquire names the reason: {text}"
    );
    assert!(
        elapsed < settings.acquire_timeout + SLACK,
        "ends by its deadline ({elapsed:?})"
    );
    assert_eq!(pool.stats().created, 0, "no connection was handed out");

    // Once the server takes writes again, the pool connects and the write goes through.
    let reset = format!(
        "ALTER DATABASE {} RESET default_transaction_read_only",
        db.name()
    );
    sqlx::raw_sql(AssertSqlSafe(reset))
        .execute(&mut admin)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut conn = loop {
        match pool.acquire().await {
            Ok(conn) => break conn,
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("the pool never reconnected: {}", chain(&error)),
        }
    };
    let written = sqlx::query("INSERT INTO t VALUES (1)")
        .execute(&mut *conn)
        .await;
    assert!(
        written.is_ok(),
        "a write on a connection checked on connect: {written:?}"
    );
}
