//! The acquire and release hooks on a real server: a session a hook turns down is closed and
//! never served, and a hook that hangs is bounded by the caller's deadline.

use std::time::Duration;

use futures_util::FutureExt as _;
use pool_core::{CloseReason, ConnectionMeta, PgConnector, Pool, PoolError, PoolOptions};
use pool_testkit::TestDatabase;
use sqlx::PgConnection;

use crate::settings_for;

/// Whether this session was marked unfit with `SET app.unfit = 'yes'`.
async fn unfit(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let value: Option<String> = sqlx::query_scalar("SELECT current_setting('app.unfit', true)")
        .fetch_one(conn)
        .await?;
    Ok(value.as_deref() == Some("yes"))
}

fn pool(settings: &pool_config::PoolSettings, connector: PgConnector) -> Pool<PgConnector> {
    PoolOptions::from_settings(settings)
        .name("hooks")
        .build(connector)
        .expect("valid options")
}

async fn pid(conn: &mut PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn before_acquire_closes_a_session_it_turns_down_and_serves_another() {
    let db = TestDatabase::create().await.unwrap();
    let settings = settings_for(&db);
    let connector = PgConnector::from_settings(&settings).before_acquire(
        |conn: &mut PgConnection, meta: ConnectionMeta| {
            async move {
                assert!(meta.use_count >= 1, "{meta:?}");
                Ok(!unfit(conn).await?)
            }
            .boxed()
        },
    );
    let pool = pool(&settings, connector);

    let mut first = pool.acquire().await.unwrap();
    let marked = pid(&mut first).await;
    sqlx::query("SET app.unfit = 'yes'")
        .execute(&mut *first)
        .await
        .unwrap();
    drop(first);

    let mut next = pool.acquire().await.unwrap();
    assert_ne!(
        pid(&mut next).await,
        marked,
        "the unfit session is not served"
    );
    assert!(!unfit(&mut next).await.unwrap());
    assert_eq!(pool.stats().closed.get(CloseReason::Rejected), 1);
}

#[tokio::test]
async fn a_hanging_before_acquire_fails_the_acquire_within_its_timeout() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.acquire_timeout = Duration::from_secs(1);
    let connector =
        PgConnector::from_settings(&settings).before_acquire(|conn: &mut PgConnection, _meta| {
            async move {
                sqlx::query("SELECT pg_sleep(30)").execute(conn).await?;
                Ok(true)
            }
            .boxed()
        });
    let pool = pool(&settings, connector);
    let started = tokio::time::Instant::now();
    let error = pool.acquire().await.unwrap_err();
    assert!(matches!(error, PoolError::Timeout { .. }), "{error}");
    assert!(started.elapsed() < Duration::from_secs(1) + Duration::from_secs(5));
    // The session the hook was running on is not reused.
    assert_eq!(pool.stats().closed.get(CloseReason::Rejected), 1);
}

#[tokio::test]
async fn after_release_closes_a_session_it_turns_down_and_keeps_the_others() {
    let db = TestDatabase::create().await.unwrap();
    let settings = settings_for(&db);
    let connector =
        PgConnector::from_settings(&settings).after_release(|conn: &mut PgConnection, _meta| {
            async move { Ok(!unfit(conn).await?) }.boxed()
        });
    let pool = pool(&settings, connector);

    let mut conn = pool.acquire().await.unwrap();
    let kept = pid(&mut conn).await;
    drop(conn);
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(pid(&mut conn).await, kept, "a fit session comes back");
    sqlx::query("SET app.unfit = 'yes'")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);

    let mut conn = pool.acquire().await.unwrap();
    assert_ne!(pid(&mut conn).await, kept, "the unfit session was closed");
    assert_eq!(pool.stats().closed.get(CloseReason::Rejected), 1);
}
