//! `poolctl config` as an operator runs it: the real binary, an explicit environment, the
//! shipped `config/` directory. No database is needed.

mod support;

use support::{assert_exit, both, poolctl, stdout};

const PASSWORD: &str = "Qv7-h1dden-Pw";

const PRODUCTION: [(&str, &str); 5] = [
    ("APP_ENV", "production"),
    ("DB_HOST", "db.internal"),
    ("DB_NAME", "orders"),
    ("DB_USERNAME", "app"),
    ("DB_PASSWORD", PASSWORD),
];

#[test]
fn shows_every_pool_with_the_source_of_each_value() {
    let output = poolctl(&["config"], &[("DB_HOST", "db.example")]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(
        text.starts_with(
            "profile development\nfiles: config/default.toml, config/development.toml\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("\npool default\n") && text.contains("\npool replica\n"),
        "{text}"
    );
    let line = |start: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line for {start} in {text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(line("host"), "host db.example environment variable DB_HOST");
    assert_eq!(
        line("max_connections"),
        "max_connections 10 config/development.toml: max_connections"
    );
    let replica = &text[text.find("\npool replica\n").unwrap()..];
    let replica_max = replica
        .lines()
        .find(|l| l.trim_start().starts_with("max_connections "))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        replica_max,
        "max_connections 8 config/default.toml: pools.replica.max_connections"
    );
    // The shipped configuration raises nothing on itself.
    assert!(!text.contains("findings ("), "{text}");
}

#[test]
fn check_passes_on_the_shipped_configuration() {
    let output = poolctl(&["config", "--check"], &[]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).starts_with("development: valid (pools: default, replica; 0 warnings)")
    );
    let output = poolctl(&["config", "--check", "--deny-warnings"], &PRODUCTION);
    assert_exit(&output, 0);
    assert!(stdout(&output).starts_with("production: valid"));
    let output = poolctl(&["config", "--check", "--all-profiles"], &PRODUCTION[1..]);
    assert_exit(&output, 0);
}

#[test]
fn check_lists_every_error_and_exits_1() {
    let output = poolctl(&["config", "--check", "--profile", "production"], &[]);
    assert_exit(&output, 1);
    let text = stdout(&output);
    assert!(
        text.starts_with("production: invalid, 4 errors\n"),
        "{text}"
    );
    for var in [
        "DB_HOST",
        "DB_NAME",
        "DB_USERNAME",
        "DB_PASSWORD or DB_PASSWORD_FILE",
    ] {
        assert!(text.contains(&format!("set {var}")), "{text}");
    }
    let output = poolctl(&["config", "--check"], &[("APP_ENV", "prod")]);
    assert_exit(&output, 1);
    assert!(stdout(&output).contains("unknown profile `prod` from environment variable APP_ENV"));
}

#[test]
fn deny_warnings_fails_on_warnings_only() {
    let mut env = PRODUCTION.to_vec();
    env.extend([
        ("SERVIO_POOL_MAX_CONNECTIONS", "4"),
        ("SERVIO_POOL_MIN_CONNECTIONS", "1"),
    ]);
    assert_exit(&poolctl(&["config", "--check"], &env), 0);
    let output = poolctl(&["config", "--check", "--deny-warnings"], &env);
    assert_exit(&output, 1);
    assert!(stdout(&output).starts_with("production: 1 warning (denied by --deny-warnings)"));
    // Info findings (query_timeout not above statement_timeout) never fail the check.
    assert_exit(&poolctl(&["config", "--check", "--deny-warnings"], &[]), 0);
}

#[test]
fn unverified_tls_in_production_warns_and_fails_under_deny_warnings() {
    for mode in ["disable", "prefer", "require"] {
        let mut env = PRODUCTION.to_vec();
        env.push(("SERVIO_POOL_SSL_MODE", mode));
        assert_exit(&poolctl(&["config", "--check"], &env), 0);
        let output = poolctl(&["config", "--check", "--deny-warnings"], &env);
        assert_exit(&output, 1);
        let text = stdout(&output);
        assert!(
            text.contains(&format!("ssl_mode = {mode}")) && text.contains("verify-full"),
            "{mode}: the warning names the fix: {text}"
        );
    }
    // `require` with the server's root certificate verifies, as in libpq: nothing to warn.
    let mut env = PRODUCTION.to_vec();
    env.extend([
        ("SERVIO_POOL_SSL_MODE", "require"),
        ("SERVIO_POOL_SSL_ROOT_CERT", "/etc/servio/root.crt"),
    ]);
    assert_exit(&poolctl(&["config", "--check", "--deny-warnings"], &env), 0);
}

#[test]
fn instances_and_server_limit_check_the_connection_budget() {
    let args = [
        "config",
        "--check",
        "--deny-warnings",
        "--server-max-connections",
        "100",
    ];
    assert_exit(
        &poolctl(&[&args[..], &["--instances", "1"]].concat(), &PRODUCTION),
        0,
    );
    let output = poolctl(&[&args[..], &["--instances", "2"]].concat(), &PRODUCTION);
    assert_exit(&output, 1);
    assert!(
        stdout(&output).contains("× 2 instance(s) = 120 connections"),
        "{}",
        both(&output)
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["config", "--profile", "prod"][..],
        &["config", "--format", "yaml"],
        &["config", "--deny-warnings"],
        &["config", "--profile", "test", "--all-profiles"],
        &["config", "--instances", "3"],
        &["config", "--bogus"],
        &[],
    ] {
        let output = poolctl(args, &[]);
        assert_exit(&output, 2);
        assert!(
            output.stdout.is_empty() && !output.stderr.is_empty(),
            "{args:?}"
        );
    }
}

#[test]
fn json_output_gives_typed_values_and_sources() {
    let output = poolctl(&["config", "--format", "json"], &PRODUCTION);
    assert_exit(&output, 0);
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(document["profile"], "production");
    assert_eq!(document["valid"], true);
    let pools = document["pools"].as_array().unwrap();
    assert_eq!(pools[0]["name"], "default");
    assert_eq!(pools[1]["name"], "replica");
    let setting = |pool: usize, key: &str| {
        pools[pool]["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .cloned()
            .unwrap()
    };
    assert_eq!(setting(0, "max_connections")["value"], 50);
    assert_eq!(
        setting(0, "max_connections")["source"],
        "config/production.toml: max_connections"
    );
    assert_eq!(setting(0, "password")["value"], "***");
    assert_eq!(setting(0, "password")["origin"]["var"], "DB_PASSWORD");
    assert_eq!(setting(1, "max_connections")["value"], 8);
    assert_eq!(setting(0, "idle_timeout")["value"], "30s");

    let output = poolctl(
        &[
            "config",
            "--check",
            "--format",
            "json",
            "--profile",
            "staging",
        ],
        &[],
    );
    assert_exit(&output, 1);
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["valid"], false);
    assert_eq!(document["errors"].as_array().unwrap().len(), 4);
}

#[test]
fn all_profiles_markdown_documents_every_profile_side_by_side() {
    let output = poolctl(&["config", "--all-profiles", "--format", "markdown"], &[]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(text.starts_with("# Pool configuration\n"), "{text}");
    assert!(text.contains("## Pool `default`\n\n| setting | development | staging | production | test |\n|---|---|---|---|---|\n"));
    assert!(
        text.contains("| `max_connections` | 10 | 20 | 50 | 10 |"),
        "{text}"
    );
    assert!(
        text.contains("| `min_connections` | 2 | 5 | 10 | 2 |"),
        "{text}"
    );
    assert!(
        text.contains("| `host` | localhost | *required* | *required* | localhost |"),
        "{text}"
    );
    assert!(text.contains("## Pool `replica`"), "{text}");
    assert!(
        text.contains("| `max_connections` | 8 | 8 | 8 | 8 |"),
        "{text}"
    );
    // Missing deployment settings are marked in the table, not repeated as errors.
    assert!(!text.contains("**error**"), "{text}");
}

#[test]
fn a_malformed_file_is_reported_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("default.toml"),
        "max_connections = 10\nmax_conections = 5\n[pools\n",
    )
    .unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let output = poolctl(&["config", "--check", "--config-dir", dir_arg], &[]);
    assert_exit(&output, 1);
    let text = stdout(&output);
    assert!(
        text.contains(&format!(
            "malformed TOML in {dir_arg}/default.toml at line 3"
        )),
        "{text}"
    );
    std::fs::write(dir.path().join("default.toml"), "max_conections = 5\n").unwrap();
    let output = poolctl(&["config", "--check"], &[("SERVIO_CONFIG_DIR", dir_arg)]);
    assert_exit(&output, 1);
    assert!(stdout(&output).contains("did you mean `max_connections`?"));
}

#[test]
fn the_password_never_appears_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let url = format!("postgres://app:{PASSWORD}@db.internal:5432/orders?sslmode=require");
    let sources: [Vec<(&str, &str)>; 4] = [
        PRODUCTION.to_vec(),
        vec![("APP_ENV", "production"), ("DATABASE_URL", &url)],
        vec![
            ("DB_PASSWORD_FILE", file.to_str().unwrap()),
            ("DB_HOST", "h"),
        ],
        vec![
            ("SERVIO_POOL_POOLS__REPLICA__PASSWORD", PASSWORD),
            ("SERVIO_POOL_MAX_CONNECTIONS", "x"),
        ],
    ];
    let forms: [&[&str]; 8] = [
        &["config"],
        &["config", "--format", "json"],
        &["config", "--format", "markdown"],
        &["config", "--all-profiles", "--format", "markdown"],
        &["config", "--all-profiles", "--format", "json"],
        &["config", "--all-profiles"],
        &["config", "--check"],
        &["config", "--check", "--format", "json"],
    ];
    for env in &sources {
        for args in forms {
            let output = poolctl(args, env);
            let all = both(&output);
            assert!(
                !all.contains(PASSWORD) && !all.contains("h1dden"),
                "{args:?} {env:?}:\n{all}"
            );
        }
    }
    let output = poolctl(&["config"], &sources[1]);
    assert!(stdout(&output).contains("environment variable DATABASE_URL (postgres://app:***@db.internal:5432/orders?sslmode=require)"));
}

#[test]
fn several_hosts_show_as_lists_and_check_validates_them() {
    let url = format!(
        "postgres://app:{PASSWORD}@db-a:5432,db-b:5433/orders?target_session_attrs=read-write"
    );
    let output = poolctl(&["config"], &[("DATABASE_URL", url.as_str())]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    for shown in [
        "db-a,db-b",
        "5432,5433",
        "read-write",
        "postgres://app:***@db-a:5432,db-b:5433/orders",
    ] {
        assert!(text.contains(shown), "{shown} in {text}");
    }
    assert!(!both(&output).contains(PASSWORD));

    let output = poolctl(
        &["config", "--check"],
        &[("DB_HOST", "db-a,db-b,db-c"), ("DB_PORT", "5432,5433")],
    );
    assert_exit(&output, 1);
    let text = both(&output);
    assert!(
        text.contains("3 hosts but 2 ports") && text.contains("DB_PORT"),
        "{text}"
    );

    let output = poolctl(
        &["config", "--check", "--deny-warnings"],
        &[("SERVIO_POOL_TARGET_SESSION_ATTRS", "standby")],
    );
    assert_exit(&output, 1);
    assert!(
        both(&output).contains("target_session_attrs"),
        "{}",
        both(&output)
    );
}
