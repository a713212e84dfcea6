//! What a new connection is checked for, and set up with, before the pool hands it out:
//! `check_writable` on connect, `statement_timeout` and session parameters, directly and
//! behind PgBouncer.

use std::error::Error as _;
use std::time::Duration;

use pool_config::{PgBouncerMode, PoolSettings};
use pool_core::{PgConnector, PoolOptions};
use pool_testkit::{PgBouncer, PoolMode, TestDatabase};
use sqlx::AssertSqlSafe;
use tokio::time::Instant;

use crate::credentials::acquire_within;
use crate::{SLACK, build, settings_for};

/// PgBouncer in `mode` in front of `db`, and settings that reach `db` through it with the
/// `pgbouncer` setting on.
pub(crate) async fn bounced(db: &TestDatabase, mode: PoolMode) -> (PgBouncer, PoolSettings) {
    let bouncer = PgBouncer::start(db, mode).await.unwrap();
    let mut settings = settings_for(db);
    settings.host = bouncer.host().to_owned();
    settings.port = bouncer.port().into();
    settings.pgbouncer = Some(match mode {
        PoolMode::Session => PgBouncerMode::Session,
        _ => PgBouncerMode::Transaction,
    });
    (bouncer, settings)
}

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
    let mut conn = acquire_within(&pool, Duration::from_secs(10)).await;
    let written = sqlx::query("INSERT INTO t VALUES (1)")
        .execute(&mut *conn)
        .await;
    assert!(
        written.is_ok(),
        "a write on a connection checked on connect: {written:?}"
    );
}

/// The session parameters the tests set, and what `SHOW` gives for each: values with
/// spaces, quotes, commas and a backslash, a parameter the driver sends itself (TimeZone)
/// and one it has a startup parameter of its own for (application_name).
const PARAMETERS: &[(&str, &str, &str)] = &[
    (
        "search_path",
        r#""odd schema", public"#,
        r#""odd schema", public"#,
    ),
    ("lock_timeout", "5s", "5s"),
    ("idle_in_transaction_session_timeout", "1min", "1min"),
    (
        "default_transaction_isolation",
        "repeatable read",
        "repeatable read",
    ),
    ("default_transaction_read_only", "on", "on"),
    ("TimeZone", "Europe/Paris", "Europe/Paris"),
    ("work_mem", "8MB", "8MB"),
    ("application_name", r"servio app\one", r"servio app\one"),
];

fn parameters() -> Vec<(String, String)> {
    PARAMETERS
        .iter()
        .map(|(name, value, _)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// Asserts that every parameter (and `statement_timeout` = 10 s) is in effect on `conn`.
async fn assert_in_effect(conn: &mut sqlx::PgConnection, when: &str) {
    let expected = PARAMETERS
        .iter()
        .map(|(name, _, shown)| (*name, *shown))
        .chain([("statement_timeout", "10s")]);
    for (name, shown) in expected {
        let value = current_setting(conn, name).await;
        assert_eq!(value, shown, "{name} {when}");
    }
}

/// A pool of one connection with the session parameters, then: in effect on the new
/// connection, after it is reused, and after it is reused past the pool's own reset.
async fn parameters_hold_on_reuse(settings: &mut PoolSettings) {
    settings.max_connections = 1;
    settings.statement_timeout = Some(Duration::from_secs(10));
    for reset in [false, true] {
        settings.reset_on_release = reset;
        let connector = PgConnector::from_settings(settings).session_parameters(parameters());
        connector.check().unwrap();
        let pool = PoolOptions::from_settings(settings)
            .name("session-parameters")
            .build(connector)
            .unwrap();
        for when in ["on a new connection", "on a reused connection"] {
            let mut conn = pool.acquire().await.unwrap();
            assert_in_effect(&mut conn, &format!("{when} (reset_on_release = {reset})")).await;
        }
        assert_eq!(pool.stats().created, 1, "reused, not replaced");
    }
}

#[tokio::test]
async fn session_parameters_are_in_effect_on_a_direct_server() {
    let db = TestDatabase::create().await.unwrap();
    sqlx::raw_sql(r#"CREATE SCHEMA "odd schema""#)
        .execute(&mut db.admin_connection().await.unwrap())
        .await
        .unwrap();
    parameters_hold_on_reuse(&mut settings_for(&db)).await;
}

#[tokio::test]
async fn session_parameters_are_in_effect_behind_pgbouncer_session_mode() {
    let db = TestDatabase::create().await.unwrap();
    let (_bouncer, mut settings) = bounced(&db, PoolMode::Session).await;
    parameters_hold_on_reuse(&mut settings).await;
}

#[tokio::test]
async fn statement_timeout_is_in_effect_behind_pgbouncer_session_mode() {
    let db = TestDatabase::create().await.unwrap();
    let (_bouncer, mut settings) = bounced(&db, PoolMode::Session).await;
    settings.statement_timeout = Some(Duration::from_millis(1500));
    settings.max_connections = 1;
    let pool = build("bouncer-statement-timeout", &settings);
    for _ in 0..2 {
        // A new client connection to PgBouncer, then one reused by the pool.
        let mut conn = pool.acquire().await.unwrap();
        let shown: String = sqlx::query_scalar("SHOW statement_timeout")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(shown, "1500ms");
    }
}

#[tokio::test]
async fn session_parameters_are_refused_behind_pgbouncer_transaction_mode() {
    let db = TestDatabase::create().await.unwrap();
    let (_bouncer, settings) = bounced(&db, PoolMode::Transaction).await;
    let connector = PgConnector::from_settings(&settings).session_parameter("lock_timeout", "5s");
    let refused = connector.check().unwrap_err().to_string();
    assert!(
        refused.contains("lock_timeout") && refused.contains("transaction mode"),
        "{refused}"
    );
    // Built anyway, the pool refuses every connect at once with the same reason.
    let pool = PoolOptions::from_settings(&settings)
        .name("bouncer-refused")
        .build(connector)
        .unwrap();
    let started = Instant::now();
    let error = pool.acquire().await.unwrap_err();
    assert!(
        started.elapsed() < settings.acquire_timeout,
        "reported at once, not after the acquire timeout"
    );
    let text = chain(&error);
    assert!(text.contains("transaction mode"), "{text}");
}

#[tokio::test]
async fn parameters_the_driver_depends_on_are_refused() {
    let db = TestDatabase::create().await.unwrap();
    let settings = settings_for(&db);
    for name in ["DateStyle", "client_encoding"] {
        let error = PgConnector::from_settings(&settings)
            .session_parameter(name, "SQL_ASCII")
            .check()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(name) && error.contains("driver depends on"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn a_parameter_the_server_refuses_fails_the_acquire_at_once_naming_it() {
    let db = TestDatabase::create().await.unwrap();
    let settings = settings_for(&db);
    // One refused in the startup packet, one by the `set_config` after connect.
    for (name, value) in [("lock_timeout", "soon"), ("TimeZone", "Mars/Olympus_Mons")] {
        let connector = PgConnector::from_settings(&settings).session_parameter(name, value);
        let pool = PoolOptions::from_settings(&settings)
            .name("refused-parameter")
            .build(connector)
            .unwrap();
        let started = Instant::now();
        let error = pool.acquire().await.unwrap_err();
        let text = chain(&error);
        assert!(
            text.contains(&name.to_lowercase()) || text.contains(name),
            "{text}"
        );
        assert!(text.contains(value), "{text}");
        assert!(
            started.elapsed() < settings.acquire_timeout,
            "reported at once, not after the acquire timeout: {text}"
        );
    }
}

/// The session keys of the settings (and the free `[session]` map) reach every connection of
/// a pool built from those settings.
#[tokio::test]
async fn session_settings_reach_the_connections_of_a_pool_built_from_settings() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.search_path = Some("app, public".to_owned());
    settings.lock_timeout = Some(Duration::from_millis(1500));
    settings.idle_in_transaction_session_timeout = Some(Duration::from_secs(45));
    settings.default_transaction_isolation = Some(pool_config::TransactionIsolation::Serializable);
    settings.default_transaction_read_only = Some(true);
    settings.timezone = Some("Asia/Tokyo".to_owned());
    settings
        .session
        .insert("work_mem".to_owned(), "12MB".to_owned());
    settings.validate(pool_config::Profile::Test).unwrap();
    let pool = pool_core::Pool::from_settings("session-settings", &settings).unwrap();
    let mut conn = pool.acquire().await.unwrap();
    for (name, shown) in [
        ("search_path", "app, public"),
        ("lock_timeout", "1500ms"),
        ("idle_in_transaction_session_timeout", "45s"),
        ("default_transaction_isolation", "serializable"),
        ("default_transaction_read_only", "on"),
        ("TimeZone", "Asia/Tokyo"),
        ("work_mem", "12MB"),
    ] {
        let value = current_setting(&mut conn, name).await;
        assert_eq!(value, shown, "{name}");
    }
    drop(conn);
    pool.close(Duration::from_secs(2)).await;
}

/// The server's `current_setting(name)` on `conn`.
async fn current_setting(conn: &mut sqlx::PgConnection, name: &str) -> String {
    sqlx::query_scalar("SELECT current_setting($1)")
        .bind(name)
        .fetch_one(conn)
        .await
        .unwrap()
}
