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
