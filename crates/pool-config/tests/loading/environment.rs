//! Each environment variable, read from an explicit environment.

use std::time::Duration;

use pool_config::{Loader, Profile, SslMode};

use crate::support::{Fixture, errors_of};

#[test]
fn db_variables_set_the_connection() {
    let settings = Fixture::empty().load(&[
        ("DB_HOST", "db.internal"),
        ("DB_PORT", "6432"),
        ("DB_NAME", "orders"),
        ("DB_USERNAME", "app"),
        ("DB_PASSWORD", "s3cret"),
    ]);
    let pool = settings.pool("default").unwrap();
    assert_eq!(pool.host, "db.internal");
    assert_eq!(pool.port, 6432);
    assert_eq!(pool.database, "orders");
    assert_eq!(pool.username, "app");
    assert_eq!(pool.password.expose(), "s3cret");
    for (key, var) in [
        ("host", "DB_HOST"),
        ("port", "DB_PORT"),
        ("database", "DB_NAME"),
        ("username", "DB_USERNAME"),
        ("password", "DB_PASSWORD"),
    ] {
        assert_eq!(
            settings.source_of("default", key).unwrap().env_var(),
            Some(var)
        );
    }
}

#[test]
fn empty_variables_count_as_unset() {
    let settings =
        Fixture::empty().load(&[("DB_HOST", ""), ("APP_ENV", ""), ("SERVIO_POOL_PORT", "")]);
    assert_eq!(settings.profile(), Profile::Development);
    assert_eq!(settings.pool("default").unwrap().host, "localhost");
    assert_eq!(settings.pool("default").unwrap().port, 5432);
}

#[test]
fn database_url_sets_every_part_it_names() {
    let settings = Fixture::empty().load(&[(
        "DATABASE_URL",
        "postgresql://svc%40app:p%2Fw@db.example.com:6543/billing?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=billing",
    )]);
    let pool = settings.pool("default").unwrap();
    assert_eq!(pool.host, "db.example.com");
    assert_eq!(pool.port, 6543);
    assert_eq!(pool.database, "billing");
    assert_eq!(pool.username, "svc@app");
    assert_eq!(pool.password.expose(), "p/w");
    assert_eq!(pool.ssl_mode, SslMode::VerifyFull);
    assert_eq!(
        pool.ssl_root_cert.as_deref(),
        Some(std::path::Path::new("/etc/ca.pem"))
    );
    assert_eq!(pool.application_name, "billing");
}

#[test]
fn db_password_file_is_read_with_one_trailing_newline_trimmed() {
    let fixture = Fixture::empty();
    let path = fixture.write("db-password", "line-one\n\n");
    let settings = fixture.load(&[("DB_PASSWORD_FILE", path.to_str().unwrap())]);
    assert_eq!(
        settings.pool("default").unwrap().password.expose(),
        "line-one\n"
    );
    assert_eq!(settings.password_file(), Some(path.as_path()));
    let source = settings.source_of("default", "password").unwrap();
    assert_eq!(source.env_var(), Some("DB_PASSWORD_FILE"));
    assert!(source.to_string().contains(path.to_str().unwrap()));

    let crlf = fixture.write("crlf", "windows\r\n");
    let settings = fixture.load(&[("DB_PASSWORD_FILE", crlf.to_str().unwrap())]);
    assert_eq!(
        settings.pool("default").unwrap().password.expose(),
        "windows"
    );
    let bare = fixture.write("bare", "0123");
    let settings = fixture.load(&[("DB_PASSWORD_FILE", bare.to_str().unwrap())]);
    assert_eq!(settings.pool("default").unwrap().password.expose(), "0123");
}

#[test]
fn servio_pool_variables_override_any_key_with_double_underscore_nesting() {
    let settings = Fixture::empty().load(&[
        ("SERVIO_POOL_MAX_CONNECTIONS", "30"),
        ("SERVIO_POOL_IDLE_TIMEOUT", "45000"),
        ("SERVIO_POOL_MAX_LIFETIME", "1h"),
        ("SERVIO_POOL_STATEMENT_TIMEOUT", "0"),
        ("SERVIO_POOL_SSL_MODE", "require"),
        ("SERVIO_POOL_RESET_ON_RELEASE", "true"),
        ("SERVIO_POOL_PGBOUNCER", "session"),
        ("SERVIO_POOL_POOLS__REPLICA__MAX_CONNECTIONS", "8"),
        ("SERVIO_POOL_POOLS__REPLICA__HOST", "replica.internal"),
    ]);
    let pool = settings.pool("default").unwrap();
    assert_eq!(pool.max_connections, 30);
    assert_eq!(pool.idle_timeout, Some(Duration::from_secs(45)));
    assert_eq!(pool.max_lifetime, Some(Duration::from_secs(3600)));
    assert_eq!(pool.statement_timeout, None);
    assert_eq!(pool.ssl_mode, SslMode::Require);
    assert!(pool.reset_on_release);
    assert_eq!(pool.pgbouncer, Some(pool_config::PgBouncerMode::Session));
    let replica = settings
        .pool("replica")
        .expect("a pool declared by the environment alone");
    assert_eq!(
        (replica.max_connections, replica.host.as_str()),
        (8, "replica.internal")
    );
    assert_eq!(replica.idle_timeout, Some(Duration::from_secs(45)));
}

#[test]
fn app_env_then_node_env_then_development_choose_the_profile() {
    let fixture = Fixture::empty();
    assert_eq!(fixture.load(&[]).profile(), Profile::Development);
    assert_eq!(
        fixture.load(&[("NODE_ENV", "test")]).profile(),
        Profile::Test
    );
    assert_eq!(
        fixture
            .load(&[("NODE_ENV", "production"), ("APP_ENV", "test")])
            .profile(),
        Profile::Test
    );
    let explicit = fixture
        .loader(&[("APP_ENV", "production")])
        .profile(Profile::Test);
    assert_eq!(explicit.load().unwrap().profile(), Profile::Test);
}

#[test]
fn servio_config_dir_names_the_directory() {
    let fixture = Fixture::with(&[("default.toml", "max_connections = 17")]);
    let settings = Loader::new()
        .env([("SERVIO_CONFIG_DIR", fixture.path().to_str().unwrap())])
        .load()
        .unwrap();
    assert_eq!(settings.pool("default").unwrap().max_connections, 17);
    let errors = errors_of(
        Loader::new()
            .env([("SERVIO_CONFIG_DIR", "/nonexistent/servio")])
            .load(),
    );
    assert_eq!(
        errors,
        ["cannot read configuration directory /nonexistent/servio: no such directory"]
    );
}

#[test]
fn max_waiters_zero_means_never_wait_and_off_means_unbounded() {
    // One meaning per value, in files and the environment alike, and the same as
    // `PoolOptions::max_waiters`: 0 fails an acquire at once instead of waiting.
    let waiters = |file: &str, env: &[(&str, &str)]| {
        let fixture = Fixture::with(&[("default.toml", file)]);
        fixture.load(env).pool("default").unwrap().max_waiters
    };
    assert_eq!(waiters("max_waiters = 0", &[]), Some(0));
    assert_eq!(waiters("", &[("SERVIO_POOL_MAX_WAITERS", "0")]), Some(0));
    assert_eq!(waiters("max_waiters = 12", &[]), Some(12));
    for unbounded in ["\"off\"", "\"unbounded\""] {
        assert_eq!(waiters(&format!("max_waiters = {unbounded}"), &[]), None);
    }
    assert_eq!(
        waiters("", &[("SERVIO_POOL_MAX_WAITERS", "unbounded")]),
        None
    );
    assert_eq!(waiters("", &[]), None, "unbounded by default");
    let shown = Fixture::with(&[("default.toml", "max_waiters = 0")])
        .load(&[])
        .pool("default")
        .unwrap()
        .display_value("max_waiters");
    assert_eq!(shown.as_deref(), Some("0"));
    let errors = Fixture::empty().errors(&[("SERVIO_POOL_MAX_WAITERS", "-1")]);
    assert!(
        errors.iter().any(|e| e.contains("SERVIO_POOL_MAX_WAITERS")
            && e.contains("0 to never wait")
            && e.contains("\"unbounded\"")),
        "{errors:#?}"
    );
}
