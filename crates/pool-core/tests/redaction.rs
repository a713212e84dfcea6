//! The test passwords never reach what a user or operator sees: settings loaded from the
//! environment (their `Debug` and every displayed value), the registry, stats, connect and
//! authentication errors (`Display`, `Debug`, every source), close reports, and every log
//! line at TRACE, including sqlx's own.

mod support;

use std::time::Duration;

use pool_config::{Loader, PoolSettings, Profile, Settings};
use pool_core::{PoolError, PoolRegistry};
use pool_testkit::{APP_PASSWORD, APP_USER, TestServer};

use support::{TestResult, WRONG_PASSWORD, assert_no_secrets, capture_logs, error_text, logged};

/// Every value `poolctl config` shows for one pool, as `PoolSettings` renders them.
fn shown(settings: &PoolSettings) -> String {
    PoolSettings::KEYS
        .iter()
        .map(|key| format!("{key}={:?}\n", settings.display_value(key)))
        .collect()
}

fn load(host: &str, port: u16, database: &str) -> Settings {
    let dir = std::env::temp_dir().join(format!("pool-core-redaction-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("config dir");
    let url =
        format!("postgres://{APP_USER}:{APP_PASSWORD}@{host}:{port}/{database}?sslmode=disable");
    Loader::new()
        .config_dir(dir)
        .profile(Profile::Test)
        .env([
            ("DATABASE_URL", url.as_str()),
            ("SERVIO_POOL_APPLICATION_NAME", "redaction"),
            ("SERVIO_POOL_POOLS__BROKEN__PASSWORD", WRONG_PASSWORD),
            ("SERVIO_POOL_POOLS__BROKEN__ACQUIRE_TIMEOUT", "2s"),
        ])
        .load()
        .expect("settings load")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_never_reach_settings_errors_stats_reports_or_logs() -> TestResult {
    capture_logs();
    let server = TestServer::start().await?;
    let db = server.database().await?;
    let settings = load(server.host(), server.port(), db.name());
    let registry = PoolRegistry::from_settings(&settings)?;

    let default = registry.get("default")?;
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(default).await?;
    assert_eq!(one, 1);
    let refused = registry
        .get("broken")?
        .acquire()
        .await
        .expect_err("the broken pool's password is wrong");
    assert!(
        matches!(refused, PoolError::Authentication { .. }),
        "{refused:?}"
    );
    let as_sqlx = sqlx::Error::from(refused.clone());
    let unknown = registry.get("brokne").expect_err("not declared");
    assert!(logged("connect failed"), "the refused connect was logged");

    let mut texts = vec![
        format!("{settings:?}"),
        format!("{registry:?}"),
        format!("{:?}", registry.stats_all()),
        error_text(&refused),
        error_text(&as_sqlx),
        error_text(&unknown),
        format!("{:?}", default.connector()),
        format!("{:?}", default.options()),
    ];
    for (name, pool) in settings.pools() {
        texts.push(format!("{name}: {pool:?}\n{}", shown(pool)));
    }
    let reports = registry.close_all(Duration::from_secs(2)).await;
    texts.push(format!("{reports:?}"));
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    assert_no_secrets(&texts);
    Ok(())
}
