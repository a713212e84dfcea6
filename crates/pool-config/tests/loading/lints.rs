//! Each row of the best-practice bounds table: level, key, and a reason with a reference.

use pool_config::{Finding, Level, LintContext, Profile};

use crate::support::{Fixture, shipped_settings};

/// The findings for one setting after `env` overrides, in `profile`.
fn findings_for(profile: &str, env: &[(&str, &str)], key: &str) -> Vec<Finding> {
    let mut vars = vec![
        ("APP_ENV", profile),
        ("DB_HOST", "h"),
        ("DB_NAME", "d"),
        ("DB_USERNAME", "u"),
        ("DB_PASSWORD", "p"),
    ];
    vars.extend_from_slice(env);
    Fixture::empty()
        .findings(&vars)
        .into_iter()
        .filter(|f| f.key == key)
        .collect()
}

#[track_caller]
fn assert_finding(profile: &str, env: &[(&str, &str)], key: &str, level: Level, words: &str) {
    let findings = findings_for(profile, env, key);
    assert_eq!(findings.len(), 1, "{env:?}: {findings:#?}");
    let finding = &findings[0];
    assert_eq!(finding.level, level, "{finding:?}");
    assert!(finding.message.contains(words), "{finding:?}");
    assert!(!finding.reference.is_empty());
    assert_eq!(finding.pool, "default");
}

#[track_caller]
fn assert_none(profile: &str, env: &[(&str, &str)], key: &str) {
    let findings = findings_for(profile, env, key);
    assert!(findings.is_empty(), "{env:?}: {findings:#?}");
}

const SMALL: [(&str, &str); 2] = [
    ("SERVIO_POOL_MAX_CONNECTIONS", "5"),
    ("SERVIO_POOL_MIN_CONNECTIONS", "1"),
];

#[test]
fn a_small_pool_warns_in_production_and_informs_in_development() {
    assert_finding(
        "production",
        &SMALL,
        "max_connections",
        Level::Warn,
        "too small",
    );
    assert_finding(
        "staging",
        &SMALL,
        "max_connections",
        Level::Warn,
        "too small",
    );
    assert_finding(
        "development",
        &SMALL,
        "max_connections",
        Level::Info,
        "too small",
    );
    assert_finding("test", &SMALL, "max_connections", Level::Info, "too small");
    assert_none(
        "production",
        &[
            ("SERVIO_POOL_MAX_CONNECTIONS", "6"),
            ("SERVIO_POOL_MIN_CONNECTIONS", "1"),
        ],
        "max_connections",
    );
}

#[test]
fn a_huge_pool_warns() {
    assert_finding(
        "production",
        &[("SERVIO_POOL_MAX_CONNECTIONS", "1000")],
        "max_connections",
        Level::Warn,
        "too large",
    );
    assert_none(
        "production",
        &[("SERVIO_POOL_MAX_CONNECTIONS", "999")],
        "max_connections",
    );
}

#[test]
fn pools_times_instances_must_fit_the_servers_budget() {
    let settings = Fixture::with(&[(
        "default.toml",
        "max_connections = 20\n[pools.replica]\nmax_connections = 8",
    )])
    .load(&[]);
    let context = |instances, server| LintContext {
        instances: Some(instances),
        server_max_connections: Some(server),
        ..LintContext::default()
    };
    // Each pool has a query_timeout, so each counts one connection more (the cancel of a
    // timed-out query): (21 + 9) × 3 = 90 ≤ 100 - 3.
    assert!(
        settings
            .lint(&context(3, 100))
            .iter()
            .all(|f| f.key != "max_connections")
    );
    // (21 + 9) × 4 = 120 > 97.
    let findings: Vec<_> = settings
        .lint(&context(4, 100))
        .into_iter()
        .filter(|f| f.key == "max_connections")
        .collect();
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].level, Level::Warn);
    assert_eq!(findings[0].pool, "default, replica");
    assert!(
        findings[0].message.contains("120 connections"),
        "{findings:?}"
    );
    // Without a query_timeout nothing is cancelled: (20 + 8) × 4 = 112.
    let untimed = Fixture::with(&[(
        "default.toml",
        "max_connections = 20\nquery_timeout = 0\n[pools.replica]\nmax_connections = 8",
    )])
    .load(&[]);
    let findings = untimed.lint(&context(4, 100));
    assert!(
        findings
            .iter()
            .any(|f| f.message.contains("112 connections")),
        "{findings:?}"
    );
    // Without the server's limit there is nothing to compare against.
    assert!(
        settings
            .lint(&LintContext::default())
            .iter()
            .all(|f| f.key != "max_connections")
    );
}

#[test]
fn connect_timeout_bounds() {
    assert_finding(
        "production",
        &[("SERVIO_POOL_CONNECT_TIMEOUT", "60s")],
        "connect_timeout",
        Level::Warn,
        "too long",
    );
    assert_none(
        "production",
        &[("SERVIO_POOL_CONNECT_TIMEOUT", "59s")],
        "connect_timeout",
    );
}

#[test]
fn acquire_timeout_bounds() {
    assert_finding(
        "production",
        &[("SERVIO_POOL_ACQUIRE_TIMEOUT", "1000")],
        "acquire_timeout",
        Level::Warn,
        "too short",
    );
    assert_finding(
        "production",
        &[("SERVIO_POOL_ACQUIRE_TIMEOUT", "120s")],
        "acquire_timeout",
        Level::Warn,
        "query_wait_timeout",
    );
    assert_none(
        "production",
        &[("SERVIO_POOL_ACQUIRE_TIMEOUT", "1001")],
        "acquire_timeout",
    );
}

#[test]
fn statement_and_query_timeout_bounds() {
    for (key, var) in [
        ("statement_timeout", "SERVIO_POOL_STATEMENT_TIMEOUT"),
        ("query_timeout", "SERVIO_POOL_QUERY_TIMEOUT"),
    ] {
        // query_timeout = 1s is also below statement_timeout: only look at the warning.
        let warn = |value| -> Vec<Finding> {
            findings_for("production", &[(var, value)], key)
                .into_iter()
                .filter(|f| f.level == Level::Warn)
                .collect()
        };
        assert!(warn("1s")[0].message.contains("too short"));
        assert!(warn("300s")[0].message.contains("too long"));
        assert!(warn("0")[0].message.contains("disabled"));
        assert!(warn("45s").is_empty());
    }
}

#[test]
fn query_timeout_below_statement_timeout_is_information() {
    assert_finding(
        "production",
        &[("SERVIO_POOL_QUERY_TIMEOUT", "29s")],
        "query_timeout",
        Level::Info,
        "statement_timeout (30s)",
    );
    // Equal (the shipped values): the server cancels the statement first, the connection stays.
    assert_none("production", &[], "query_timeout");
    assert_none(
        "production",
        &[("SERVIO_POOL_QUERY_TIMEOUT", "31s")],
        "query_timeout",
    );
}

#[test]
fn the_shipped_configuration_raises_no_findings() {
    for profile in Profile::ALL {
        let findings = shipped_settings(profile).lint(&LintContext::default());
        assert!(findings.is_empty(), "{profile}: {findings:#?}");
    }
}

#[test]
fn idle_timeout_bounds() {
    assert_finding(
        "production",
        &[("SERVIO_POOL_IDLE_TIMEOUT", "1s")],
        "idle_timeout",
        Level::Warn,
        "too short",
    );
    assert_finding(
        "production",
        &[("SERVIO_POOL_IDLE_TIMEOUT", "9999")],
        "idle_timeout",
        Level::Warn,
        "too short",
    );
    assert_finding(
        "production",
        &[("SERVIO_POOL_IDLE_TIMEOUT", "600s")],
        "idle_timeout",
        Level::Warn,
        "too long",
    );
    assert_none(
        "production",
        &[("SERVIO_POOL_IDLE_TIMEOUT", "10s")],
        "idle_timeout",
    );
    assert_none(
        "production",
        &[("SERVIO_POOL_IDLE_TIMEOUT", "0")],
        "idle_timeout",
    );
}

#[test]
fn idle_timeout_must_stay_below_max_lifetime() {
    let env = [
        ("SERVIO_POOL_IDLE_TIMEOUT", "60s"),
        ("SERVIO_POOL_MAX_LIFETIME", "60s"),
    ];
    assert_finding(
        "production",
        &env,
        "idle_timeout",
        Level::Warn,
        "max_lifetime (1m)",
    );
    let env = [
        ("SERVIO_POOL_IDLE_TIMEOUT", "59s"),
        ("SERVIO_POOL_MAX_LIFETIME", "60s"),
    ];
    assert_none("production", &env, "idle_timeout");
}

#[test]
fn max_lifetime_below_thirty_seconds_warns() {
    let env = [
        ("SERVIO_POOL_MAX_LIFETIME", "29s"),
        ("SERVIO_POOL_LIFETIME_JITTER", "5s"),
        ("SERVIO_POOL_IDLE_TIMEOUT", "0"),
        ("SERVIO_POOL_KEEPALIVE_INTERVAL", "0"),
    ];
    assert_finding("production", &env, "max_lifetime", Level::Warn, "too short");
    assert_none(
        "production",
        &[("SERVIO_POOL_MAX_LIFETIME", "0")],
        "max_lifetime",
    );
}

#[test]
fn keepalive_bounds() {
    assert_finding(
        "production",
        &[("SERVIO_POOL_KEEPALIVE_INTERVAL", "29s")],
        "keepalive_interval",
        Level::Warn,
        "too short",
    );
    assert_finding(
        "production",
        &[("SERVIO_POOL_KEEPALIVE_INTERVAL", "30m")],
        "keepalive_interval",
        Level::Warn,
        "max_lifetime",
    );
    assert_none(
        "production",
        &[("SERVIO_POOL_KEEPALIVE_INTERVAL", "30s")],
        "keepalive_interval",
    );
}

#[test]
fn leak_detection_bounds() {
    let key = "leak_detection_threshold";
    assert_finding(
        "production",
        &[("SERVIO_POOL_LEAK_DETECTION_THRESHOLD", "1999")],
        key,
        Level::Warn,
        "too short",
    );
    assert_finding(
        "production",
        &[("SERVIO_POOL_LEAK_DETECTION_THRESHOLD", "31m")],
        key,
        Level::Warn,
        "above max_lifetime",
    );
    assert_none(
        "production",
        &[("SERVIO_POOL_LEAK_DETECTION_THRESHOLD", "2s")],
        key,
    );
}

#[test]
fn pgbouncer_transaction_mode_explains_what_works() {
    let env = [
        ("SERVIO_POOL_PGBOUNCER", "transaction"),
        ("SERVIO_POOL_STATEMENT_TIMEOUT", "0"),
        ("SERVIO_POOL_IDLE_IN_TRANSACTION_SESSION_TIMEOUT", "0"),
    ];
    assert_finding(
        "production",
        &env,
        "pgbouncer",
        Level::Info,
        "max_prepared_statements",
    );
    assert_finding(
        "production",
        &env,
        "statement_timeout",
        Level::Info,
        "ALTER ROLE",
    );
    assert_none(
        "production",
        &[("SERVIO_POOL_PGBOUNCER", "session")],
        "pgbouncer",
    );
}

#[test]
fn findings_display_level_pool_key_value_reason_and_reference() {
    let finding = &findings_for("production", &SMALL, "max_connections")[0];
    let text = finding.to_string();
    assert!(
        text.starts_with("warn: pool `default`: max_connections = 5: too small"),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("(see {})", finding.reference)),
        "{text}"
    );
}

#[test]
fn extreme_values_are_judged_without_overflow() {
    // The largest values validation accepts (larger ones are refused when loading).
    let huge = "365days";
    let env = [
        ("SERVIO_POOL_IDLE_TIMEOUT", huge),
        ("SERVIO_POOL_MAX_LIFETIME", huge),
        ("SERVIO_POOL_MAX_CONNECTIONS", "262143"),
        ("SERVIO_POOL_POOLS__REPLICA__MAX_CONNECTIONS", "262143"),
    ];
    let settings = Fixture::empty().load(&env);
    let context = LintContext {
        instances: Some(u32::MAX),
        server_max_connections: Some(100),
        ..LintContext::default()
    };
    let findings = settings.lint(&context);
    assert!(
        findings
            .iter()
            .any(|f| f.key == "idle_timeout" && f.message.contains("too long"))
    );
    assert!(findings.iter().any(|f| f.pool == "default, replica"));
}

#[test]
fn tls_below_verify_ca_warns_in_staging_and_production_only() {
    const ROOT: (&str, &str) = ("SERVIO_POOL_SSL_ROOT_CERT", "/etc/servio/root.crt");
    for profile in ["development", "test", "staging", "production"] {
        let shared = matches!(profile, "staging" | "production");
        for mode in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
            for root in [false, true] {
                let mut env = vec![("SERVIO_POOL_SSL_MODE", mode)];
                if root {
                    env.push(ROOT);
                }
                // `require` with a root certificate verifies as verify-ca (libpq's rule), and
                // verify-ca needs a private root to identify the server.
                let unverified = match mode {
                    "disable" | "prefer" => true,
                    "require" | "verify-ca" => !root,
                    _ => false,
                };
                let case = format!("{profile}, ssl_mode = {mode}, root certificate: {root}");
                if shared && unverified {
                    let findings = findings_for(profile, &env, "ssl_mode");
                    assert_eq!(findings.len(), 1, "{case}: {findings:#?}");
                    let finding = &findings[0];
                    assert_eq!(finding.level, Level::Warn, "{case}");
                    assert!(
                        finding.message.contains("ssl_mode = \"verify-full\""),
                        "{case}: the fix is named: {finding}"
                    );
                    assert!(finding.reference.contains("libpq-ssl"), "{case}");
                    assert_eq!(finding.value, mode, "{case}");
                } else {
                    assert_none(profile, &env, "ssl_mode");
                }
            }
        }
    }
}
