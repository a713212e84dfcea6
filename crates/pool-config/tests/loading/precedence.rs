//! built-in < config/default.toml < config/<profile>.toml < environment, and a pool's own
//! value beats the base value at every layer.

use pool_config::{Profile, Source};

use crate::support::Fixture;

fn file(fixture: &Fixture, name: &str, key: &str) -> Source {
    Source::File {
        path: fixture.path().join(name),
        key: key.to_owned(),
    }
}

fn env_source(var: &str) -> Source {
    Source::Env {
        var: var.to_owned(),
        detail: None,
    }
}

#[test]
fn built_in_defaults_hold_with_no_files() {
    let settings = Fixture::empty().load(&[]);
    let pool = settings.pool("default").unwrap();
    assert_eq!((pool.max_connections, pool.min_connections), (10, 2));
    assert_eq!(
        settings.source_of("default", "max_connections"),
        Some(&Source::BuiltIn {
            profile: Profile::Development
        })
    );
    assert!(settings.files().is_empty());
}

#[test]
fn each_layer_beats_the_one_below() {
    let fixture = Fixture::with(&[
        (
            "default.toml",
            "max_connections = 11\nmin_connections = 3\nidle_timeout = \"40s\"",
        ),
        (
            "development.toml",
            "max_connections = 12\nmin_connections = 4",
        ),
    ]);
    let settings = fixture.load(&[("SERVIO_POOL_MAX_CONNECTIONS", "13")]);
    let pool = settings.pool("default").unwrap();
    assert_eq!(pool.max_connections, 13);
    assert_eq!(pool.min_connections, 4);
    assert_eq!(pool.idle_timeout, Some(std::time::Duration::from_secs(40)));
    assert_eq!(pool.port, 5432);
    let source = |key| settings.source_of("default", key).cloned();
    assert_eq!(
        source("max_connections"),
        Some(env_source("SERVIO_POOL_MAX_CONNECTIONS"))
    );
    assert_eq!(
        source("min_connections"),
        Some(file(&fixture, "development.toml", "min_connections"))
    );
    assert_eq!(
        source("idle_timeout"),
        Some(file(&fixture, "default.toml", "idle_timeout"))
    );
    assert_eq!(
        settings.files(),
        [
            fixture.path().join("default.toml"),
            fixture.path().join("development.toml")
        ]
    );
}

#[test]
fn only_the_selected_profile_file_is_read() {
    let fixture = Fixture::with(&[
        ("production.toml", "max_connections = 99"),
        ("test.toml", "max_connections = 7"),
    ]);
    let settings = fixture.load(&[("APP_ENV", "test")]);
    assert_eq!(settings.pool("default").unwrap().max_connections, 7);
    assert_eq!(settings.files(), [fixture.path().join("test.toml")]);
}

#[test]
fn a_pools_own_value_beats_the_base_at_every_layer() {
    let fixture = Fixture::with(&[
        (
            "default.toml",
            "[pools.replica]\nmax_connections = 8\nmin_connections = 1",
        ),
        (
            "production.toml",
            "max_connections = 60\nmin_connections = 12",
        ),
    ]);
    let env = [
        ("APP_ENV", "production"),
        ("DB_HOST", "h"),
        ("DB_NAME", "d"),
        ("DB_USERNAME", "u"),
        ("DB_PASSWORD", "p"),
        ("SERVIO_POOL_MAX_CONNECTIONS", "70"),
    ];
    let settings = fixture.load(&env);
    assert_eq!(settings.pool("default").unwrap().max_connections, 70);
    let replica = settings.pool("replica").unwrap();
    // The replica's own value from the lowest file beats the base from the environment.
    assert_eq!((replica.max_connections, replica.min_connections), (8, 1));
    assert_eq!(
        settings.source_of("replica", "max_connections"),
        Some(&file(
            &fixture,
            "default.toml",
            "pools.replica.max_connections"
        ))
    );
    // Settings the replica does not name come from the base, wherever the base got them.
    assert_eq!(replica.host, "h");
    assert_eq!(
        settings.source_of("replica", "host"),
        Some(&env_source("DB_HOST"))
    );

    // Within the pool's own values, later layers still win.
    fixture.write(
        "production.toml",
        "max_connections = 60\n[pools.replica]\nmax_connections = 9",
    );
    assert_eq!(
        fixture.load(&env).pool("replica").unwrap().max_connections,
        9
    );
    let mut with_override = env.to_vec();
    with_override.push(("SERVIO_POOL_POOLS__REPLICA__MAX_CONNECTIONS", "6"));
    let settings = fixture.load(&with_override);
    assert_eq!(settings.pool("replica").unwrap().max_connections, 6);
    assert_eq!(
        settings.source_of("replica", "max_connections"),
        Some(&env_source("SERVIO_POOL_POOLS__REPLICA__MAX_CONNECTIONS"))
    );
    assert_eq!(settings.pool("default").unwrap().max_connections, 70);
}

#[test]
fn db_variables_set_the_base_so_a_pool_naming_its_own_host_keeps_it() {
    let fixture = Fixture::with(&[(
        "default.toml",
        "[pools.replica]\nhost = \"replica.internal\"\n[pools.reports]\nmax_connections = 6",
    )]);
    let settings = fixture.load(&[("DB_HOST", "primary.internal"), ("DB_PORT", "6432")]);
    assert_eq!(settings.pool("default").unwrap().host, "primary.internal");
    assert_eq!(settings.pool("replica").unwrap().host, "replica.internal");
    assert_eq!(settings.pool("replica").unwrap().port, 6432);
    assert_eq!(settings.pool("reports").unwrap().host, "primary.internal");
    let url = fixture.load(&[("DATABASE_URL", "postgres://u:p@url.internal/db")]);
    assert_eq!(url.pool("replica").unwrap().host, "replica.internal");
    assert_eq!(url.pool("reports").unwrap().host, "url.internal");
}

#[test]
fn default_always_exists_first_and_can_be_tuned_alone() {
    let fixture = Fixture::with(&[(
        "default.toml",
        "max_connections = 12\n[pools.analytics]\nmin_connections = 0\n[pools.default]\nmax_connections = 15",
    )]);
    let settings = fixture.load(&[]);
    let names: Vec<_> = settings.pool_names().collect();
    assert_eq!(names, ["default", "analytics"]);
    assert_eq!(settings.pool("default").unwrap().max_connections, 15);
    assert_eq!(settings.pool("analytics").unwrap().max_connections, 12);
    assert!(settings.pool("missing").is_none());
    assert!(settings.source_of("missing", "host").is_none());
    assert!(settings.source_of("default", "no_such_key").is_none());
}

#[test]
fn the_environment_ranks_database_url_then_db_variables_then_servio_pool() {
    let fixture = Fixture::empty();
    let url = (
        "DATABASE_URL",
        "postgres://url_user:pw@url-host:5433/url_db?sslmode=require",
    );
    let settings = fixture.load(&[url, ("DB_HOST", "db-host")]);
    let pool = settings.pool("default").unwrap();
    assert_eq!(pool.host, "db-host");
    assert_eq!(
        (pool.port.as_slice(), pool.database.as_str()),
        (&[5433][..], "url_db")
    );
    assert_eq!(
        settings
            .source_of("default", "database")
            .unwrap()
            .to_string(),
        "environment variable DATABASE_URL (postgres://url_user:***@url-host:5433/url_db?sslmode=require)"
    );
    let settings = fixture.load(&[
        url,
        ("DB_HOST", "db-host"),
        ("SERVIO_POOL_HOST", "servio-host"),
    ]);
    assert_eq!(settings.pool("default").unwrap().host, "servio-host");
}

#[test]
fn an_explicit_config_dir_wins_over_servio_config_dir() {
    let fixture = Fixture::with(&[("default.toml", "max_connections = 14")]);
    let other = Fixture::with(&[("default.toml", "max_connections = 16")]);
    let dir = other.path();
    let from_env = pool_config::Loader::new()
        .env([("SERVIO_CONFIG_DIR", dir.to_str().unwrap())])
        .load()
        .unwrap();
    assert_eq!(from_env.pool("default").unwrap().max_connections, 16);
    let explicit = fixture.load(&[("SERVIO_CONFIG_DIR", dir.to_str().unwrap())]);
    assert_eq!(explicit.pool("default").unwrap().max_connections, 14);
}
