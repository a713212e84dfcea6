//! Server session settings as `poolctl config` shows them: the real binary, an explicit
//! environment, the shipped `config/` directory. No database is needed.

mod support;

use support::{poolctl, stdout};

/// The text row of `key` in the first pool shown.
fn row<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find(|l| l.trim_start().starts_with(&format!("{key} ")))
        .unwrap_or_else(|| panic!("no row for {key} in\n{text}"))
}

#[test]
fn statement_timeout_behind_transaction_pooling_is_shown_not_in_effect() {
    let env = [("SERVIO_POOL_PGBOUNCER", "transaction")];
    let text = stdout(&poolctl(&["config"], &env));
    let shown = row(&text, "statement_timeout");
    assert!(
        shown.contains("30s") && shown.contains("not in effect") && shown.contains("ALTER ROLE"),
        "{shown}"
    );
    // Elsewhere it is in effect, and shown plainly.
    let direct = stdout(&poolctl(&["config"], &[]));
    assert!(!row(&direct, "statement_timeout").contains("not in effect"));

    let json: serde_json::Value =
        serde_json::from_slice(&poolctl(&["config", "--format", "json"], &env).stdout)
            .expect("JSON output");
    let entry = json["pools"][0]["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "statement_timeout")
        .unwrap()
        .clone();
    assert_eq!(entry["in_effect"], false, "{entry}");
    assert!(
        entry["not_in_effect"]
            .as_str()
            .is_some_and(|why| why.contains("transaction mode")),
        "{entry}"
    );

    let markdown = stdout(&poolctl(&["config", "--format", "markdown"], &env));
    assert!(
        markdown
            .lines()
            .any(|l| l.starts_with("| `statement_timeout` |") && l.contains("not in effect")),
        "{markdown}"
    );
}

#[test]
fn every_key_is_shown_in_every_format_with_its_source() {
    let env = [
        ("SERVIO_POOL_LOCK_TIMEOUT", "5s"),
        ("SERVIO_POOL_SESSION__WORK_MEM", "64MB"),
    ];
    let text = stdout(&poolctl(&["config"], &env));
    let json: serde_json::Value =
        serde_json::from_slice(&poolctl(&["config", "--format", "json"], &env).stdout)
            .expect("JSON output");
    let markdown = stdout(&poolctl(&["config", "--format", "markdown"], &env));
    let shown: Vec<&str> = json["pools"][0]["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    let keys = pool_config::PoolSettings::SETTINGS
        .iter()
        .map(|s| s.key)
        .chain(["session.work_mem"]);
    for key in keys {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{key} "))),
            "{key}"
        );
        assert!(shown.contains(&key), "{key} missing from JSON");
        assert!(
            markdown.contains(&format!("| `{key}` |")),
            "{key} missing from Markdown"
        );
    }
    assert!(row(&text, "lock_timeout").contains("environment variable SERVIO_POOL_LOCK_TIMEOUT"));
    assert!(
        row(&text, "session.work_mem")
            .contains("64MB  environment variable SERVIO_POOL_SESSION__WORK_MEM")
            || row(&text, "session.work_mem").contains("SERVIO_POOL_SESSION__WORK_MEM"),
        "{text}"
    );
}

#[test]
fn the_shipped_configuration_passes_the_strictest_check_with_productions_variables() {
    // What a deploy pipeline runs: every profile, warnings denied, with the variables
    // production is deployed with (connection, and TLS verifying the server).
    let env = [
        ("DB_HOST", "db.internal"),
        ("DB_NAME", "orders"),
        ("DB_USERNAME", "app"),
        ("DB_PASSWORD", "Qv7-h1dden-Pw"),
    ];
    let output = poolctl(
        &["config", "--all-profiles", "--check", "--deny-warnings"],
        &env,
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
}
