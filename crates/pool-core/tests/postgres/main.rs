//! Pool behaviour against a real PostgreSQL server (through pool-testkit).

mod connect_checks;
mod controls;
mod credentials;
mod hooks;
mod lifecycle;
mod listen;
mod macros;
mod migrations;
mod queries;
mod session;
mod streaming;
mod transactions;

use std::time::Duration;

use pool_config::{PoolSettings, Profile, Secret, SslMode};
use pool_core::{PgConnector, Pool};
use pool_testkit::{APP_PASSWORD, APP_USER, TestDatabase};
use sqlx::PgConnection;

/// Test-profile settings pointing at `db` as the application role, with an application_name
/// of its own so server-side checks see only this test's connections.
pub(crate) fn settings_for(db: &TestDatabase) -> PoolSettings {
    let mut s = PoolSettings::for_profile(Profile::Test);
    s.host = db.host().to_owned();
    s.port = db.port().into();
    s.database = db.name().to_owned();
    s.username = APP_USER.to_owned();
    s.password = Secret::new(APP_PASSWORD);
    s.ssl_mode = SslMode::Disable;
    s.application_name = app_name(db);
    // No background connects unless a test asks: `TestDatabase`'s drop blocks the runtime
    // thread, and a connect stuck mid-authentication would hold DROP DATABASE for
    // authentication_timeout.
    s.min_connections = 0;
    s
}

/// Room for scheduling on a busy two-core machine when a call must end by a deadline.
pub(crate) const SLACK: Duration = Duration::from_secs(2);

/// Polls every 20 ms until `check` holds or `limit` passes; returns whether it held.
pub(crate) async fn eventually(limit: Duration, check: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !check() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// The SQLSTATE of a server error, if `err` is one.
pub(crate) fn sqlstate(err: &sqlx::Error) -> Option<String> {
    err.as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned())
}

pub(crate) fn app_name(db: &TestDatabase) -> String {
    // application_name is cut at 63 bytes; the database name is unique per test.
    let name = format!("pc-{}", db.name());
    name[..name.len().min(63)].to_owned()
}

pub(crate) fn build(name: &str, settings: &PoolSettings) -> Pool<PgConnector> {
    Pool::from_settings(name, settings).expect("valid settings")
}

/// Server connections of this test (by application_name), as the server sees them.
pub(crate) async fn backends(admin: &mut PgConnection, app: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
        .bind(app)
        .fetch_one(admin)
        .await
        .expect("pg_stat_activity")
}

/// Polls the server every 50 ms until this test's backend count satisfies `check` or `limit`
/// passes; returns whether it did.
pub(crate) async fn backends_until(
    admin: &mut PgConnection,
    app: &str,
    limit: Duration,
    check: impl Fn(i64) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check(backends(admin, app).await) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
