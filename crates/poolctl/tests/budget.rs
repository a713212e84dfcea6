//! The connection budget: `poolctl config --check --instances N --server-max-connections M`
//! warns exactly when N × (the pools' max_connections) exceeds M minus the connections the
//! server reserves (`--reserved-connections`, default 3).

use std::path::PathBuf;
use std::process::{Command, Output};

/// Production settings from the shipped `config/`: the pools allow 58 connections per
/// instance (`default` 50 + `replica` 8).
const PRODUCTION: [(&str, &str); 5] = [
    ("APP_ENV", "production"),
    ("DB_HOST", "db.internal"),
    ("DB_NAME", "orders"),
    ("DB_USERNAME", "app"),
    ("DB_PASSWORD", "budget-test-secret"),
];

fn check(instances: u32, server_max: u32, reserved: Option<u32>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_poolctl"));
    command
        .args(["config", "--check", "--deny-warnings"])
        .args(["--instances", &instances.to_string()])
        .args(["--server-max-connections", &server_max.to_string()]);
    if let Some(reserved) = reserved {
        command.args(["--reserved-connections", &reserved.to_string()]);
    }
    command
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .env_clear()
        .envs(PRODUCTION)
        .output()
        .expect("run poolctl")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[track_caller]
fn assert_within_budget(output: &Output) {
    assert_eq!(output.status.code(), Some(0), "{}", text(output));
    assert!(!text(output).contains("reserved"), "{}", text(output));
}

#[track_caller]
fn assert_over_budget(output: &Output, expected: &str) {
    assert_eq!(output.status.code(), Some(1), "{}", text(output));
    assert!(text(output).contains(expected), "{}", text(output));
}

#[test]
fn the_reserved_connections_come_off_the_servers_max() {
    // 50 + 8 connections and one per pool to cancel timed-out queries: 60 fit in 63 - 3;
    // not in 62 - 3.
    assert_within_budget(&check(1, 63, None));
    assert_over_budget(
        &check(1, 62, None),
        "× 1 instance(s) = 60 connections, above the server's max_connections (62) minus 3 \
         reserved",
    );
    // With nothing reserved, 60 fit in 60.
    assert_within_budget(&check(1, 60, Some(0)));
    assert_over_budget(&check(1, 60, Some(1)), "minus 1 reserved");
}

#[test]
fn every_instance_counts() {
    // 3 × 60 = 180 fit in 183 - 3; a fourth instance does not.
    assert_within_budget(&check(3, 183, None));
    assert_over_budget(&check(4, 183, None), "× 4 instance(s) = 240 connections");
}

#[test]
fn the_secret_is_never_shown() {
    let output = check(4, 183, None);
    assert!(!text(&output).contains("budget-test-secret"));
}
