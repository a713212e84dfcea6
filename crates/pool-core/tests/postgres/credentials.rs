//! Credentials that rotate: a password file re-read when it changes, a credentials provider
//! called per connect, a password per pool. New connections use the new password; checked
//! out ones are not disturbed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool_config::{PoolSettings, Secret};
use pool_core::{PgConnector, Pool, PoolError, PoolOptions, PoolRegistry, PooledConnection};
use pool_testkit::TestDatabase;
use sqlx::AssertSqlSafe;
use tokio::time::Instant;

use crate::connect_checks::chain;
use crate::{SLACK, settings_for};

/// A login role of this test's own (so rotating its password disturbs no other test) with
/// `password`, and settings logging in as it with no password of their own.
pub(crate) async fn role_for(db: &TestDatabase, password: &str) -> (String, PoolSettings) {
    let role = format!("cred_{}", db.name());
    let mut admin = db.admin_connection().await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE ROLE {role} LOGIN PASSWORD '{password}'; GRANT CONNECT ON DATABASE {db} TO {role}",
        db = db.name()
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    let mut settings = settings_for(db);
    settings.username = role.clone();
    settings.password = Secret::new("not-the-password");
    settings.max_connections = 4;
    (role, settings)
}

pub(crate) async fn set_role_password(db: &TestDatabase, role: &str, password: &str) {
    let mut admin = db.admin_connection().await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!(
        "ALTER ROLE {role} PASSWORD '{password}'"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
}

fn pool_of(settings: &PoolSettings, connector: PgConnector) -> Pool<PgConnector> {
    PoolOptions::from_settings(settings)
        .name("credentials")
        .connect_backoff(Duration::from_millis(10), Duration::from_millis(200))
        .build(connector)
        .unwrap()
}

/// The role a checked-out connection is logged in as: it still runs queries.
async fn current_user(conn: &mut PooledConnection<PgConnector>) -> String {
    sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut **conn)
        .await
        .expect("the connection runs queries")
}

/// Acquires until it succeeds (a refused login holds new logins back for the backoff) or
/// `limit` passes.
pub(crate) async fn acquire_within(
    pool: &Pool<PgConnector>,
    limit: Duration,
) -> PooledConnection<PgConnector> {
    let deadline = Instant::now() + limit;
    loop {
        match pool.acquire().await {
            Ok(conn) => return conn,
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("no connection within {limit:?}: {}", chain(&error)),
        }
    }
}

#[tokio::test]
async fn a_rotated_password_file_reaches_new_connections_and_spares_checked_out_ones() {
    let db = TestDatabase::create().await.unwrap();
    if !db.require_password_auth().await.unwrap() {
        return;
    }
    let (role, settings) = role_for(&db, "file-secret-one").await;
    let dir = std::env::temp_dir().join(format!("pool-core-{}", db.name()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("password");
    std::fs::write(&file, "file-secret-one\n").unwrap();
    let pool = pool_of(
        &settings,
        PgConnector::from_settings(&settings).password_file(&file),
    );
    let mut old = pool.acquire().await.unwrap();
    assert_eq!(current_user(&mut old).await, role);

    // The role's password rotates first: the file's stale one is refused, naming no secret.
    set_role_password(&db, &role, "file-secret-two-longer").await;
    let refused = pool.acquire().await.unwrap_err();
    assert!(
        matches!(refused, PoolError::Authentication { .. }),
        "{}",
        chain(&refused)
    );
    assert!(
        !chain(&refused).contains("file-secret"),
        "{}",
        chain(&refused)
    );
    // Then the file, swapped in by rename as secret mounts do: the next login reads it.
    let staged = dir.join("staged");
    std::fs::write(&staged, "file-secret-two-longer\n").unwrap();
    std::fs::rename(&staged, &file).unwrap();
    let mut new = acquire_within(&pool, Duration::from_secs(5)).await;
    assert_eq!(current_user(&mut new).await, role);
    assert_eq!(
        current_user(&mut old).await,
        role,
        "the old connection still works"
    );
    assert_eq!(pool.stats().created, 2);

    // A missing file fails the login with its path, never a password.
    drop((old, new));
    pool.close(Duration::from_secs(2)).await;
    std::fs::remove_file(&file).unwrap();
    let pool = pool_of(
        &settings,
        PgConnector::from_settings(&settings).password_file(&file),
    );
    let error = pool.acquire().await.unwrap_err();
    let text = chain(&error);
    assert!(
        text.contains("cannot read the password file") && text.contains(&*file.to_string_lossy()),
        "{text}"
    );
    assert!(!text.contains("file-secret"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn the_credentials_provider_is_called_per_connect_and_its_rotation_used() {
    let db = TestDatabase::create().await.unwrap();
    if !db.require_password_auth().await.unwrap() {
        return;
    }
    let (role, settings) = role_for(&db, "token-one").await;
    let token = Arc::new(Mutex::new("token-one".to_owned()));
    let calls = Arc::new(AtomicUsize::new(0));
    let connector = {
        let (token, calls) = (Arc::clone(&token), Arc::clone(&calls));
        PgConnector::from_settings(&settings).credentials(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            let current = token.lock().unwrap().clone();
            Box::pin(async move { Ok(Secret::new(current)) })
        })
    };
    let pool = pool_of(&settings, connector);
    let mut first = pool.acquire().await.unwrap();
    let mut second = pool.acquire().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one call per connect");

    set_role_password(&db, &role, "token-two").await;
    *token.lock().unwrap() = "token-two".to_owned();
    let mut third = pool.acquire().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    for conn in [&mut first, &mut second, &mut third] {
        assert_eq!(current_user(conn).await, role);
    }
    // A reused connection needs no login.
    drop(third);
    let _reused = pool.acquire().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_failing_or_slow_provider_fails_the_acquire_within_the_connect_timeout() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.connect_timeout = Duration::from_secs(1);
    settings.acquire_timeout = Duration::from_secs(10);

    let failing = PgConnector::from_settings(&settings)
        .credentials(|| Box::pin(async { Err("token endpoint returned 503".into()) }));
    let pool = pool_of(&settings, failing);
    let started = Instant::now();
    let error = pool.acquire().await.unwrap_err();
    let text = chain(&error);
    assert!(
        matches!(error, PoolError::Authentication { .. })
            && text.contains("the credentials provider failed")
            && text.contains("token endpoint returned 503"),
        "{text}"
    );
    assert!(
        started.elapsed() < settings.connect_timeout + SLACK,
        "at once"
    );

    let slow = PgConnector::from_settings(&settings).credentials(|| {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(Secret::new("never"))
        })
    });
    let pool = pool_of(&settings, slow);
    let started = Instant::now();
    let error = pool.acquire().await.unwrap_err();
    let elapsed = started.elapsed();
    let text = chain(&error);
    assert!(
        text.contains("the credentials provider did not answer within"),
        "{text}"
    );
    assert!(
        elapsed < settings.connect_timeout + SLACK,
        "bounded by the connect timeout, not the acquire timeout ({elapsed:?})"
    );
}

#[tokio::test]
async fn set_pool_password_rotates_one_pool_only() {
    let db = TestDatabase::create().await.unwrap();
    if !db.require_password_auth().await.unwrap() {
        return;
    }
    let (role, mut settings) = role_for(&db, "pool-secret-one").await;
    settings.password = Secret::new("pool-secret-one");
    let mut registry = PoolRegistry::new();
    for name in ["orders", "reports"] {
        registry.insert(Pool::from_settings(name, &settings).unwrap());
    }
    let mut held = registry.get("reports").unwrap().acquire().await.unwrap();
    set_role_password(&db, &role, "pool-secret-two").await;
    registry
        .set_pool_password("orders", &Secret::new("pool-secret-two"))
        .unwrap();
    let mut conn = registry.get("orders").unwrap().acquire().await.unwrap();
    assert_eq!(current_user(&mut conn).await, role);
    // Its one connection is checked out: an acquire there needs a new login.
    let refused = registry.get("reports").unwrap().acquire().await;
    assert!(
        matches!(refused, Err(PoolError::Authentication { .. })),
        "the other pool keeps its password"
    );
    assert_eq!(
        current_user(&mut held).await,
        role,
        "checked out: undisturbed"
    );
    let unknown = registry.set_pool_password("nope", &Secret::new("x"));
    assert!(matches!(unknown, Err(PoolError::UnknownPool { .. })));
}

/// `password_file` in the settings (per pool, or `DB_PASSWORD_FILE`) reaches the connector a
/// pool is built from: it is read on connect and re-read once it changes.
#[tokio::test]
async fn the_settings_password_file_is_read_on_connect_and_re_read_when_it_changes() {
    let db = TestDatabase::create().await.unwrap();
    if !db.require_password_auth().await.unwrap() {
        return;
    }
    let (role, mut settings) = role_for(&db, "settings-secret-one").await;
    let dir = std::env::temp_dir().join(format!("pool-core-settings-{}", db.name()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("password");
    std::fs::write(&file, "settings-secret-one\n").unwrap();
    settings.password_file = Some(file.clone());
    let pool = Pool::from_settings("from-settings", &settings).unwrap();
    let mut first = pool.acquire().await.unwrap();
    assert_eq!(current_user(&mut first).await, role);

    set_role_password(&db, &role, "settings-secret-two").await;
    let staged = dir.join("staged");
    std::fs::write(&staged, "settings-secret-two\n").unwrap();
    std::fs::rename(&staged, &file).unwrap();
    let mut second = acquire_within(&pool, Duration::from_secs(5)).await;
    assert_eq!(current_user(&mut second).await, role);
    assert_eq!(
        current_user(&mut first).await,
        role,
        "the first still works"
    );
    drop((first, second));
    pool.close(Duration::from_secs(2)).await;
    std::fs::remove_dir_all(&dir).unwrap();
}
