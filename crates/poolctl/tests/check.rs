//! `poolctl check` as an operator runs it: the real binary against a real PostgreSQL, with an
//! explicit environment and an empty config directory.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use pool_testkit::{APP_PASSWORD, APP_USER, TestDatabase};
use serde_json::Value;

/// Runs `poolctl check` with exactly `env` and `args`, and an empty config directory.
fn poolctl_check(args: &[&str], env: &[(&str, String)]) -> Output {
    let config = tempfile::tempdir().expect("a temporary directory");
    let config_dir = config.path().to_str().expect("a UTF-8 path").to_owned();
    Command::new(env!("CARGO_BIN_EXE_poolctl"))
        .args([
            "check",
            "--profile",
            "test",
            "--config-dir",
            config_dir.as_str(),
        ])
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run poolctl")
}

fn env_for(host: &str, port: u16, database: &str, password: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DB_HOST", host.to_owned()),
        ("DB_PORT", port.to_string()),
        ("DB_NAME", database.to_owned()),
        ("DB_USERNAME", APP_USER.to_owned()),
        ("DB_PASSWORD", password.to_owned()),
    ]
}

fn env(db: &TestDatabase) -> Vec<(&'static str, String)> {
    env_for(db.host(), db.port(), db.name(), APP_PASSWORD)
}

/// Everything printed, after checking that the password is nowhere in it.
fn printed(output: &Output) -> String {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !all.contains(APP_PASSWORD),
        "the password was printed:\n{all}"
    );
    all
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", printed(output));
}

#[tokio::test]
async fn a_healthy_database_passes_with_exit_status_0() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let output = poolctl_check(&[], &env(&db));
    assert_exit(&output, 0);
    let text = printed(&output);
    let endpoint = format!("pool default  ({}:{}/{})", db.host(), db.port(), db.name());
    assert!(text.starts_with(&endpoint), "{text}");
    let connectivity = text
        .lines()
        .find(|l| l.contains("postgres:connectivity"))
        .expect("a connectivity line");
    assert!(
        connectivity.trim_start().starts_with("pass"),
        "{connectivity}"
    );
    assert!(connectivity.trim_end().ends_with(" ms"), "{connectivity}");
    assert!(text.contains("postgres:maxConnections"), "{text}");
    assert!(text.ends_with("status: pass\n"), "{text}");
    Ok(())
}

#[tokio::test]
async fn json_is_the_health_report_and_instances_add_the_connection_budget() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let output = poolctl_check(&["--format", "json", "--instances", "2"], &env(&db));
    assert_exit(&output, 0);
    let report: Value = serde_json::from_str(&printed(&output))?;
    assert_eq!(report["status"], "pass", "{report}");
    let budget = &report["checks"]["postgres:connectionBudget"][0];
    assert_eq!(budget["componentId"], "default");
    // Two instances of the test profile's 10 connections, plus a probe connection each.
    assert_eq!(budget["observedValue"], 22);
    assert_eq!(budget["status"], "pass");

    // Far more instances than the server allows: a warning, which still exits 0.
    let output = poolctl_check(&["--format", "json", "--instances", "500"], &env(&db));
    assert_exit(&output, 0);
    let report: Value = serde_json::from_str(&printed(&output))?;
    assert_eq!(report["status"], "warn", "{report}");
    let budget = &report["checks"]["postgres:connectionBudget"][0];
    assert_eq!(budget["status"], "warn");
    assert!(
        budget["output"]
            .as_str()
            .is_some_and(|o| o.contains("500 instances"))
    );
    Ok(())
}

#[tokio::test]
async fn an_unreachable_server_fails_with_exit_status_1_within_the_deadline() -> anyhow::Result<()>
{
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let started = Instant::now();
    let output = poolctl_check(&[], &env_for("127.0.0.1", port, "servio", APP_PASSWORD));
    // The test profile's connect timeout (2 s) plus a second for the round trip, and slack.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_exit(&output, 1);
    let text = printed(&output);
    let connectivity = text
        .lines()
        .find(|l| l.contains("postgres:connectivity"))
        .expect("a connectivity line");
    assert!(connectivity.trim_start().starts_with("fail"), "{text}");
    assert!(text.ends_with("status: fail\n"), "{text}");
    Ok(())
}

#[tokio::test]
async fn a_wrong_password_fails_without_printing_any_password() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    if !db.require_password_auth().await? {
        return Ok(());
    }
    let wrong = format!("{APP_PASSWORD}-wrong");
    let output = poolctl_check(
        &["--format", "json"],
        &env_for(db.host(), db.port(), db.name(), &wrong),
    );
    assert_exit(&output, 1);
    let text = printed(&output);
    assert!(!text.contains(&wrong));
    let report: Value = serde_json::from_str(&text)?;
    assert_eq!(report["status"], "fail");
    let connectivity = &report["checks"]["postgres:connectivity"][0];
    assert!(
        connectivity["output"]
            .as_str()
            .is_some_and(|o| o.contains("password authentication failed")),
        "{connectivity}"
    );
    Ok(())
}

#[test]
fn unloadable_settings_exit_1_and_say_why() {
    let output = poolctl_check(&[], &[("SERVIO_POOL_MAX_CONNECTIONS", "0".to_owned())]);
    assert_exit(&output, 1);
    let text = printed(&output);
    assert!(
        text.contains("poolctl check: the settings do not load"),
        "{text}"
    );
    assert!(text.contains("max_connections"), "{text}");
}
