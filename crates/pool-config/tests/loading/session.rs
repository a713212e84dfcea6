//! Server session settings and the password file: parsed from files and the environment,
//! validated with the reason, turned into the server parameters a connection sets.

use std::time::Duration;

use pool_config::{Level, Profile, Source, TransactionIsolation};

use crate::support::{CONNECTION, Fixture, assert_one_error};

#[test]
fn session_settings_become_the_server_parameters_of_every_connection() {
    let fixture = Fixture::with(&[(
        "default.toml",
        "search_path = \"app, public\"\nlock_timeout = \"5s\"\n\
         default_transaction_isolation = \"serializable\"\n\
         default_transaction_read_only = true\ntimezone = \"Europe/Paris\"\n\
         [session]\nwork_mem = \"64MB\"\njit = false\n",
    )]);
    let settings = fixture.load(&[("SERVIO_POOL_IDLE_IN_TRANSACTION_SESSION_TIMEOUT", "90s")]);
    let pool = settings.pool("default").unwrap();
    assert_eq!(pool.lock_timeout, Some(Duration::from_secs(5)));
    assert_eq!(
        pool.default_transaction_isolation,
        Some(TransactionIsolation::Serializable)
    );
    let parameters = pool.session_parameters();
    let expected = [
        ("search_path", "app, public"),
        ("lock_timeout", "5000ms"),
        ("idle_in_transaction_session_timeout", "90000ms"),
        ("default_transaction_isolation", "serializable"),
        ("default_transaction_read_only", "on"),
        ("TimeZone", "Europe/Paris"),
        ("jit", "off"),
        ("work_mem", "64MB"),
    ];
    assert_eq!(
        parameters,
        expected.map(|(k, v)| (k.to_owned(), v.to_owned())),
        "statement_timeout keeps its own field"
    );
    assert_eq!(
        settings
            .source_of("default", "idle_in_transaction_session_timeout")
            .and_then(Source::env_var),
        Some("SERVIO_POOL_IDLE_IN_TRANSACTION_SESSION_TIMEOUT")
    );
    assert!(
        settings
            .source_of("default", "session.work_mem")
            .unwrap()
            .to_string()
            .ends_with("default.toml: session.work_mem")
    );
    // Nothing set: the server's (or the role's) values, nothing sent.
    let plain = Fixture::empty().load(&[]);
    assert!(
        plain
            .pool("default")
            .unwrap()
            .session_parameters()
            .is_empty()
    );
}

#[test]
fn a_pools_own_session_parameters_override_the_base_one_by_one() {
    let fixture = Fixture::with(&[(
        "default.toml",
        "[session]\nwork_mem = \"64MB\"\nmaintenance_work_mem = \"1GB\"\n\
         [pools.replica.session]\nwork_mem = \"256MB\"\n",
    )]);
    let settings = fixture.load(&[("SERVIO_POOL_POOLS__REPLICA__SESSION__JIT", "off")]);
    let replica = settings.pool("replica").unwrap();
    assert_eq!(replica.session["work_mem"], "256MB");
    assert_eq!(replica.session["maintenance_work_mem"], "1GB");
    assert_eq!(replica.session["jit"], "off");
    assert_eq!(
        settings.pool("default").unwrap().session["work_mem"],
        "64MB"
    );
    assert!(
        !settings
            .pool("default")
            .unwrap()
            .session
            .contains_key("jit")
    );
    assert_eq!(
        settings
            .source_of("replica", "session.jit")
            .and_then(Source::env_var),
        Some("SERVIO_POOL_POOLS__REPLICA__SESSION__JIT")
    );
}

#[test]
fn parameters_the_driver_relies_on_and_bad_names_are_refused_with_the_reason() {
    let fixture = Fixture::with(&[(
        "default.toml",
        "[session]\nclient_encoding = \"LATIN1\"\nDateStyle = \"SQL\"\n\"2fast\" = \"x\"\n\
         statement_timeout = \"5s\"\nwork_mem = \"\"\n",
    )]);
    let errors = fixture.errors(&[]);
    assert_one_error(
        &errors,
        &[
            "`session.client_encoding` = \"LATIN1\"",
            "default.toml",
            "the driver speaks UTF8",
        ],
    );
    assert_one_error(&errors, &["`session.DateStyle`", "the driver sets ISO"]);
    assert_one_error(&errors, &["`session.2fast`", "a server parameter name"]);
    assert_one_error(
        &errors,
        &[
            "`session.statement_timeout`",
            "set `statement_timeout` instead",
        ],
    );
    assert_one_error(&errors, &["`session.work_mem`", "a non-empty string"]);
    let errors = Fixture::empty().errors(&[("SERVIO_POOL_SEARCH_PATH", "app\npublic")]);
    assert_one_error(
        &errors,
        &[
            "`search_path`",
            "SERVIO_POOL_SEARCH_PATH",
            "without control characters",
        ],
    );
    let errors =
        Fixture::empty().errors(&[("SERVIO_POOL_DEFAULT_TRANSACTION_ISOLATION", "snapshot")]);
    assert_one_error(
        &errors,
        &[
            "`default_transaction_isolation` = \"snapshot\"",
            "SERVIO_POOL_DEFAULT_TRANSACTION_ISOLATION",
            "read committed, repeatable read or serializable",
        ],
    );
}

#[test]
fn server_parameters_set_in_code_are_checked_as_loaded_ones_are() {
    let mut settings = pool_config::PoolSettings::for_profile(Profile::Test);
    settings
        .session
        .insert("client_encoding".to_owned(), "LATIN1".to_owned());
    settings.search_path = Some("app\u{0}".to_owned());
    let errors: Vec<String> = settings
        .validate(Profile::Test)
        .unwrap_err()
        .errors()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_one_error(
        &errors,
        &[
            "`session.client_encoding` = LATIN1",
            "the driver speaks UTF8",
        ],
    );
    assert_one_error(&errors, &["`search_path`", "without control characters"]);
}

#[test]
fn session_settings_behind_transaction_pooling_are_refused_and_session_mode_carries_them() {
    let env = [
        ("SERVIO_POOL_STATEMENT_TIMEOUT", "0"),
        ("SERVIO_POOL_SEARCH_PATH", "app"),
        ("SERVIO_POOL_SESSION__WORK_MEM", "64MB"),
    ];
    let mut transaction = env.to_vec();
    transaction.push(("SERVIO_POOL_PGBOUNCER", "transaction"));
    let errors = Fixture::empty().errors(&transaction);
    for key in ["`search_path` = app", "`session.work_mem` = 64MB"] {
        assert_one_error(
            &errors,
            &[key, "pgbouncer = \"transaction\"", "ALTER ROLE", "session"],
        );
    }
    let mut session = env.to_vec();
    session.push(("SERVIO_POOL_PGBOUNCER", "session"));
    let settings = Fixture::empty().load(&session);
    assert_eq!(
        settings.pool("default").unwrap().session_parameters().len(),
        2
    );
}

#[test]
fn production_without_an_idle_in_transaction_timeout_warns() {
    let mut env = vec![("APP_ENV", "production")];
    env.extend(CONNECTION);
    let fixture = Fixture::empty();
    let key = "idle_in_transaction_session_timeout";
    assert!(fixture.findings(&env).iter().all(|f| f.key != key));
    env.push(("SERVIO_POOL_IDLE_IN_TRANSACTION_SESSION_TIMEOUT", "0"));
    let findings = fixture.findings(&env);
    let finding = findings.iter().find(|f| f.key == key).expect("a finding");
    assert_eq!(finding.level, Level::Warn);
    assert!(finding.message.contains("holds its locks"), "{finding}");
}

#[test]
fn a_lock_timeout_above_the_statement_timeout_warns() {
    let fixture = Fixture::empty();
    let findings = fixture.findings(&[("SERVIO_POOL_LOCK_TIMEOUT", "45s")]);
    let finding = findings
        .iter()
        .find(|f| f.key == "lock_timeout")
        .expect("a finding");
    assert_eq!(finding.level, Level::Warn);
    assert!(
        finding.message.contains("statement_timeout (30s)"),
        "{finding}"
    );
    let below = fixture.findings(&[("SERVIO_POOL_LOCK_TIMEOUT", "5s")]);
    assert!(below.iter().all(|f| f.key != "lock_timeout"));
}

#[test]
fn a_password_file_is_kept_as_a_path_and_read_to_check_it() {
    let fixture = Fixture::empty();
    let file = fixture.write("replica-password", "r0tated\n");
    let toml = format!(
        "[pools.replica]\npassword_file = {:?}\n",
        file.display().to_string()
    );
    fixture.write("default.toml", &toml);
    let base = fixture.write("base-password", "b4se\n");
    let base_var = base.display().to_string();
    let settings = fixture.load(&[("DB_PASSWORD_FILE", base_var.as_str())]);
    let replica = settings.pool("replica").unwrap();
    assert_eq!(replica.password_file.as_deref(), Some(file.as_path()));
    assert_eq!(replica.password.expose(), "r0tated");
    let default = settings.pool("default").unwrap();
    assert_eq!(default.password_file.as_deref(), Some(base.as_path()));
    assert_eq!(default.password.expose(), "b4se");
    assert!(
        settings
            .source_of("replica", "password")
            .unwrap()
            .to_string()
            .contains("pools.replica.password_file")
    );

    std::fs::remove_file(&file).unwrap();
    let errors = fixture.errors(&[("DB_PASSWORD_FILE", base_var.as_str())]);
    assert_one_error(
        &errors,
        &[
            "`pools.replica.password_file`",
            "default.toml",
            "a readable file holding the password",
        ],
    );
    assert!(errors.iter().all(|e| !e.contains("b4se")), "{errors:#?}");
}

#[test]
fn a_password_file_satisfies_the_password_production_requires() {
    let fixture = Fixture::empty();
    let file = fixture.write("password", "pw\n");
    let path = file.display().to_string();
    let env = [
        ("APP_ENV", "production"),
        ("DB_HOST", "db.internal"),
        ("DB_NAME", "orders"),
        ("DB_USERNAME", "app"),
        ("SERVIO_POOL_PASSWORD_FILE", path.as_str()),
    ];
    let settings = fixture.load(&env);
    assert_eq!(settings.profile(), Profile::Production);
    assert_eq!(settings.pool("default").unwrap().password.expose(), "pw");
}
