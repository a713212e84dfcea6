//! Every kind of bad input gives a clear error naming the key, the value (unless secret),
//! where it came from and what is accepted; never a panic.

use pool_config::{ConfigError, Loader, Profile};

use crate::support::{CONNECTION, Fixture, assert_one_error, errors_of};

#[test]
fn malformed_toml_names_the_file_and_line() {
    let fixture = Fixture::with(&[(
        "default.toml",
        "max_connections = 10\nidle_timeout = \"30s\ncheck_writable = false\n",
    )]);
    let errors = fixture.errors(&[]);
    let path = fixture.path().join("default.toml");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!(
            "malformed TOML in {} at line 2, column",
            path.display()
        )),
        "{errors:?}"
    );
}

#[test]
fn a_wrong_type_names_key_value_source_and_what_is_accepted() {
    let fixture = Fixture::with(&[("default.toml", "max_connections = \"abc\"")]);
    let path = fixture.path().join("default.toml");
    assert_eq!(
        fixture.errors(&[]),
        [format!(
            "invalid `max_connections` = \"abc\" from {}: max_connections: expected a whole number from 1 to 4294967295",
            path.display()
        )]
    );
}

#[test]
fn negative_and_zero_values_are_refused_where_not_allowed() {
    let fixture = Fixture::with(&[(
        "default.toml",
        "max_connections = 0\nmin_connections = -1\nconnect_timeout = 0\nacquire_timeout = \"100ms\"\nmax_uses = -5\nidle_timeout = -1",
    )]);
    let errors = fixture.errors(&[]);
    assert_one_error(&errors, &["`max_connections` = 0", "at least 1"]);
    assert_one_error(&errors, &["`min_connections` = -1", "from 0 to"]);
    assert_one_error(&errors, &["`connect_timeout` = 0s", "at least 250ms"]);
    assert_one_error(&errors, &["`acquire_timeout` = 100ms", "at least 250ms"]);
    assert_one_error(&errors, &["`max_uses` = -5", "0 or \"off\" disables"]);
    assert_one_error(&errors, &["`idle_timeout` = -1", "0 or \"off\" disables"]);
    assert_eq!(errors.len(), 6, "{errors:#?}");
}

#[test]
fn values_past_what_the_pool_or_the_server_can_hold_are_refused() {
    let fixture = Fixture::with(&[(
        "default.toml",
        "max_connections = 4294967295\nmin_connections = 0\nacquire_timeout = \"500000000y\"\n\
         max_lifetime = \"400days\"\nstatement_timeout = \"25days\"\n\
         [pools.replica]\nstatement_timeout = \"500us\"",
    )]);
    let errors = fixture.errors(&[]);
    assert_one_error(
        &errors,
        &["`max_connections` = 4294967295", "at most 262143"],
    );
    assert_one_error(&errors, &["`acquire_timeout`", "at most 365 days"]);
    assert_one_error(&errors, &["`max_lifetime`", "at most 365 days"]);
    assert_one_error(
        &errors,
        &["`statement_timeout` = 25days", "from 1ms to 2147483647ms"],
    );
    assert_one_error(
        &errors,
        &[
            "`pools.replica.statement_timeout`",
            "less than 1ms would turn it off",
        ],
    );
}

#[test]
fn zero_disables_optional_limits_without_error() {
    let fixture = Fixture::with(&[(
        "default.toml",
        "idle_timeout = 0\nmax_lifetime = 0\nmax_uses = 0\nstatement_timeout = 0\nquery_timeout = \"off\"\nkeepalive_interval = 0\nleak_detection_threshold = 0",
    )]);
    let settings = fixture.load(&[]);
    let pool = settings.pool("default").unwrap();
    assert_eq!(pool.idle_timeout, None);
    assert_eq!(pool.max_lifetime, None);
    assert_eq!(pool.max_uses, None);
    assert_eq!(pool.statement_timeout, None);
    assert_eq!(pool.query_timeout, None);
    assert_eq!(pool.keepalive_interval, None);
}

#[test]
fn unknown_keys_are_rejected_with_a_suggestion() {
    let fixture = Fixture::with(&[(
        "default.toml",
        "max_conections = 10\ncolour = \"blue\"\n[pools.replica]\nidle_timout = \"5s\"",
    )]);
    let errors = fixture.errors(&[("SERVIO_POOL_MAX_CONECTIONS", "3")]);
    assert_one_error(
        &errors,
        &[
            "unknown key `max_conections` from",
            "default.toml: max_conections",
            "did you mean `max_connections`?",
        ],
    );
    assert_one_error(&errors, &["unknown key `colour`", "pool-config README"]);
    assert_one_error(
        &errors,
        &[
            "unknown key `pools.replica.idle_timout`",
            "did you mean `idle_timeout`?",
        ],
    );
    assert_one_error(
        &errors,
        &["unknown key `max_conections` from environment variable SERVIO_POOL_MAX_CONECTIONS"],
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
}

#[test]
fn an_unknown_profile_lists_the_valid_ones() {
    let errors = errors_of(Fixture::empty().loader(&[("APP_ENV", "prod")]).load());
    assert_eq!(
        errors,
        [
            "unknown profile `prod` from environment variable APP_ENV: expected one of development, staging, production, test"
        ]
    );
    let errors = errors_of(
        Fixture::empty()
            .loader(&[("NODE_ENV", "Production")])
            .load(),
    );
    assert!(
        errors[0].contains("from environment variable NODE_ENV"),
        "{errors:?}"
    );
}

#[test]
fn production_names_the_variable_for_each_missing_connection_setting() {
    for profile in ["production", "staging"] {
        let errors = Fixture::empty().errors(&[("APP_ENV", profile)]);
        assert_eq!(
            errors,
            [
                format!(
                    "`host` is required in the {profile} profile: set DB_HOST (or DATABASE_URL, or `host` in {profile}.toml)"
                ),
                format!(
                    "`database` is required in the {profile} profile: set DB_NAME (or DATABASE_URL, or `database` in {profile}.toml)"
                ),
                format!(
                    "`username` is required in the {profile} profile: set DB_USERNAME (or DATABASE_URL, or `username` in {profile}.toml)"
                ),
                format!(
                    "`password` is required in the {profile} profile: set DB_PASSWORD or DB_PASSWORD_FILE (or DATABASE_URL, or `password` in {profile}.toml)"
                ),
            ]
        );
    }
    let mut env = CONNECTION.to_vec();
    env.retain(|(k, _)| *k != "DB_NAME");
    env.push(("APP_ENV", "production"));
    assert_eq!(Fixture::empty().errors(&env).len(), 1);
}

#[test]
fn an_unreadable_password_file_names_the_path_and_variable() {
    let errors = Fixture::empty().errors(&[("DB_PASSWORD_FILE", "/nonexistent/secret")]);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with(
            "cannot read the password file named by DB_PASSWORD_FILE /nonexistent/secret: "
        ),
        "{errors:?}"
    );
    let fixture = Fixture::empty();
    let binary = fixture.path().join("binary");
    std::fs::write(&binary, [0xff, 0xfe, b'x']).unwrap();
    let errors = fixture.errors(&[("DB_PASSWORD_FILE", binary.to_str().unwrap())]);
    assert!(errors[0].contains("DB_PASSWORD_FILE"), "{errors:?}");
    // In production the unusable file is the one error about the password.
    let mut env = crate::support::CONNECTION.to_vec();
    env.retain(|(k, _)| *k != "DB_PASSWORD");
    env.extend([
        ("APP_ENV", "production"),
        ("DB_PASSWORD_FILE", "/nonexistent/secret"),
    ]);
    let errors = Fixture::empty().errors(&env);
    assert_eq!(errors.len(), 1, "{errors:#?}");
}

#[test]
fn password_and_password_file_together_are_an_error() {
    let fixture = Fixture::empty();
    let path = fixture.write("pw", "from-file");
    let errors = fixture.errors(&[
        ("DB_PASSWORD", "x"),
        ("DB_PASSWORD_FILE", path.to_str().unwrap()),
    ]);
    assert_eq!(
        errors,
        ["DB_PASSWORD and DB_PASSWORD_FILE are both set: set only one"]
    );
}

#[test]
fn an_invalid_database_url_says_why() {
    let cases = [
        ("::not a url", "not a URL"),
        ("mysql://u@h/db", "the scheme is `mysql`"),
        (
            "postgres://u@h/db?sslmode=sometimes",
            "sslmode `sometimes` is not one of disable",
        ),
        (
            "postgres://u@h/db?pool_size=4",
            "unsupported parameter `pool_size`",
        ),
    ];
    for (url, reason) in cases {
        let errors = Fixture::empty().errors(&[("DATABASE_URL", url)]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("invalid DATABASE_URL"), "{errors:?}");
        assert!(errors[0].contains(reason), "{errors:?}");
        assert!(errors[0].contains("expected postgres://user:password@host:port/database"));
    }
    let errors = Fixture::empty().errors(&[
        ("DATABASE_URL", "postgres://u@h:5432/db"),
        ("DB_PORT", "http"),
    ]);
    assert_one_error(
        &errors,
        &[
            "`port` = \"http\" from environment variable DB_PORT",
            "1 to 65535",
        ],
    );
}

#[test]
fn min_above_max_names_both() {
    let fixture = Fixture::with(&[(
        "default.toml",
        "min_connections = 12\n[pools.replica]\nmax_connections = 4\nmin_connections = 5",
    )]);
    let errors = fixture.errors(&[]);
    assert_one_error(
        &errors,
        &[
            "`min_connections` = 12",
            "at most max_connections (10 from built-in default (development))",
        ],
    );
    assert_one_error(
        &errors,
        &[
            "`pools.replica.min_connections` = 5",
            "at most max_connections (4 from",
        ],
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
}

#[test]
fn a_numeric_looking_password_is_accepted_verbatim() {
    for password in ["12345", "0123", "true", "1e5", "-0"] {
        let settings = Fixture::empty().load(&[("DB_PASSWORD", password)]);
        assert_eq!(
            settings.pool("default").unwrap().password.expose(),
            password
        );
        let settings = Fixture::empty().load(&[("SERVIO_POOL_POOLS__REPLICA__PASSWORD", password)]);
        assert_eq!(
            settings.pool("replica").unwrap().password.expose(),
            password
        );
    }
    let fixture = Fixture::with(&[("default.toml", "password = 12345")]);
    let errors = fixture.errors(&[]);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("invalid `password` from"),
        "{errors:?}"
    );
    assert!(!errors[0].contains("12345"), "{errors:?}");
}

#[test]
fn every_error_is_reported_at_once() {
    let fixture = Fixture::with(&[
        (
            "default.toml",
            "max_connections = \"abc\"\nmax_conections = 3",
        ),
        ("production.toml", "idle_timeout = \"soon\""),
    ]);
    let errors = fixture.errors(&[
        ("APP_ENV", "production"),
        ("DB_PORT", "0"),
        ("DATABASE_URL", "ftp://x"),
    ]);
    // Wrong type, unknown key, bad duration, bad port, bad URL, four missing settings.
    assert_eq!(errors.len(), 9, "{errors:#?}");
}

#[test]
fn structural_mistakes_in_pools_are_errors() {
    let fixture = Fixture::with(&[(
        "default.toml",
        "[pools.Replica]\nmax_connections = 3\n[pools.x]\npools = 1",
    )]);
    let errors = fixture.errors(&[]);
    assert_one_error(
        &errors,
        &["`pools.Replica` = a table", "lower-case letters"],
    );
    assert_one_error(&errors, &["unknown key `pools.x.pools`"]);
    let fixture = Fixture::with(&[("default.toml", "pools = 3")]);
    assert_one_error(
        &fixture.errors(&[]),
        &["`pools` = 3", "a table of named pools"],
    );
}

#[test]
fn pgbouncer_transaction_mode_refuses_statement_timeout_as_a_startup_option() {
    let fixture = Fixture::with(&[("default.toml", "pgbouncer = \"transaction\"")]);
    let errors = fixture.errors(&[]);
    assert_one_error(&errors, &["`statement_timeout` = 30s", "ALTER ROLE"]);
    let fixture = Fixture::with(&[(
        "default.toml",
        "pgbouncer = \"transaction\"\nstatement_timeout = 0",
    )]);
    fixture.load(&[]);
}

#[test]
fn check_writable_with_a_read_only_target_is_refused_naming_both_sources() {
    for attrs in ["standby", "read-only", "prefer-standby"] {
        let fixture = Fixture::with(&[("default.toml", "check_writable = true")]);
        let path = fixture.path().join("default.toml");
        let errors = fixture.errors(&[("SERVIO_POOL_TARGET_SESSION_ATTRS", attrs)]);
        assert_one_error(
            &errors,
            &[
                &format!("`check_writable` = true from {}", path.display()),
                &format!("target_session_attrs = \"{attrs}\" (from environment variable"),
                "\"read-write\" or \"primary\"",
            ],
        );
        assert_eq!(errors.len(), 1, "{errors:#?}");
    }
    // Targets a writable server can meet pass.
    for attrs in ["any", "read-write", "primary"] {
        let fixture = Fixture::with(&[("default.toml", "check_writable = true")]);
        fixture.load(&[("SERVIO_POOL_TARGET_SESSION_ATTRS", attrs)]);
    }
}

#[test]
fn a_missing_explicit_config_dir_is_an_error() {
    let errors = errors_of(
        Loader::new()
            .config_dir("/nonexistent/cfg")
            .env([("A", "B")])
            .load(),
    );
    assert_eq!(
        errors,
        ["cannot read configuration directory /nonexistent/cfg: no such directory"]
    );
}

#[test]
fn lenient_loading_returns_settings_and_every_error() {
    let (settings, errors) = Fixture::empty()
        .loader(&[])
        .profile(Profile::Production)
        .load_lenient()
        .unwrap();
    assert_eq!(settings.pool("default").unwrap().max_connections, 50);
    assert_eq!(errors.len(), 4);
    assert!(matches!(errors.errors()[0], ConfigError::Required { .. }));
    assert_eq!(
        settings.source_of("default", "host"),
        Some(&pool_config::Source::Unset)
    );
    // Checking the resolved settings again finds the same missing connection settings.
    assert_eq!(settings.validate().unwrap_err(), errors);
}

#[test]
fn settings_built_in_code_are_validated_too() {
    let mut settings = pool_config::PoolSettings::for_profile(Profile::Development);
    settings.max_connections = 0;
    let errors = settings.validate(Profile::Development).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "1 configuration error\n- invalid `max_connections` = 0 from set in code: expected a whole number of at least 1: a pool of 0 connections can never serve"
    );
}

#[test]
fn odd_values_give_errors_not_panics() {
    let cases = [
        (
            "max_connections = 1979-05-27T07:32:00Z",
            "`max_connections` = a table",
        ),
        ("host = [\"a\", \"b\"]", "`host` = an array"),
        ("idle_timeout = 1.5", "`idle_timeout` = 1.5"),
        ("password = { nested = 1 }", "invalid `password` from"),
        ("[pools]\nreplica = 3", "`pools.replica` = 3"),
        ("port = 0", "`port` = 0"),
        (
            "max_connections = 99999999999",
            "`max_connections` = 99999999999",
        ),
    ];
    for (toml, expected) in cases {
        let errors = Fixture::with(&[("default.toml", toml)]).errors(&[]);
        assert_one_error(&errors, &[expected]);
    }
    // A byte-order mark and an empty file are fine.
    Fixture::with(&[(
        "default.toml",
        "\u{feff}max_connections = 3\nmin_connections = 1",
    )])
    .load(&[]);
    Fixture::with(&[("default.toml", "")]).load(&[]);
}
