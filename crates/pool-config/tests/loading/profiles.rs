//! Each profile's numbers, built in and as `config/` ships them.

use std::time::Duration;

use pool_config::{Level, LintContext, Loader, PoolSettings, Profile, SslMode};

use crate::support::{Fixture, shipped, shipped_settings};

fn sizes(profile: Profile) -> (u32, u32) {
    match profile {
        Profile::Development | Profile::Test => (10, 2),
        Profile::Staging => (20, 5),
        Profile::Production => (50, 10),
    }
}

/// Verified TLS where the password crosses shared networks; libpq's default locally.
fn ssl_mode(profile: Profile) -> SslMode {
    match profile {
        Profile::Development | Profile::Test => SslMode::Prefer,
        Profile::Staging | Profile::Production => SslMode::VerifyFull,
    }
}

fn assert_common_numbers(pool: &PoolSettings) {
    assert_eq!(pool.idle_timeout, Some(Duration::from_secs(30)));
    assert_eq!(pool.connect_timeout, Duration::from_secs(2));
    assert_eq!(pool.acquire_timeout, Duration::from_secs(10));
    assert_eq!(pool.max_uses, Some(7500));
    assert_eq!(pool.max_lifetime, Some(Duration::from_secs(1800)));
    assert_eq!(pool.statement_timeout, Some(Duration::from_secs(30)));
    assert_eq!(pool.query_timeout, Some(Duration::from_secs(30)));
    assert_eq!(pool.lifetime_jitter, Duration::from_secs(30));
    assert_eq!(pool.application_name, "servio-pool");
    assert_eq!(pool.validate_after_idle, Some(Duration::from_secs(5)));
    assert_eq!(pool.keepalive_interval, Some(Duration::from_secs(120)));
    assert_eq!(pool.leak_detection_threshold, None);
    assert_eq!(pool.max_waiters, None);
    assert_eq!(pool.pgbouncer, None);
    assert!(!pool.reset_on_release && !pool.check_writable);
}

#[test]
fn built_in_numbers_of_every_profile() {
    for profile in Profile::ALL {
        let env = [
            ("APP_ENV", profile.as_str()),
            ("DB_HOST", "h"),
            ("DB_NAME", "d"),
            ("DB_USERNAME", "u"),
            ("DB_PASSWORD", "p"),
        ];
        let settings = Fixture::empty().load(&env);
        let pool = settings.pool("default").unwrap();
        assert_eq!(
            (pool.max_connections, pool.min_connections),
            sizes(profile),
            "{profile}"
        );
        assert_eq!(pool.ssl_mode, ssl_mode(profile), "{profile}");
        assert_common_numbers(pool);
    }
}

#[test]
fn shipped_files_restate_the_built_in_numbers() {
    for profile in Profile::ALL {
        let settings = shipped_settings(profile);
        let pool = settings.pool("default").unwrap();
        assert_eq!(
            (pool.max_connections, pool.min_connections),
            sizes(profile),
            "{profile}"
        );
        assert_eq!(pool.ssl_mode, ssl_mode(profile), "{profile}");
        assert_common_numbers(pool);
        let built_in = Loader::new()
            .config_dir(Fixture::empty().path())
            .profile(profile)
            .env(crate::support::CONNECTION)
            .load()
            .unwrap();
        assert_eq!(built_in.pool("default"), Some(pool), "{profile}");
    }
}

#[test]
fn development_and_test_connect_locally_by_default() {
    for profile in [Profile::Development, Profile::Test] {
        let settings = Loader::new()
            .config_dir(shipped())
            .profile(profile)
            .env([("A", "B")])
            .load()
            .unwrap();
        let pool = settings.pool("default").unwrap();
        assert_eq!(
            (
                pool.host.as_str(),
                pool.port.as_slice(),
                pool.database.as_str(),
                pool.username.as_str()
            ),
            ("localhost", &[5432][..], "servio", "postgres")
        );
        assert!(pool.password.is_empty());
    }
}

#[test]
fn shipped_config_has_a_smaller_replica_on_the_same_connection() {
    for profile in Profile::ALL {
        let settings = shipped_settings(profile);
        assert_eq!(
            settings.pool_names().collect::<Vec<_>>(),
            ["default", "replica"]
        );
        let default = settings.pool("default").unwrap();
        let replica = settings.pool("replica").unwrap();
        assert!(replica.max_connections < default.max_connections);
        assert_eq!(
            (replica.host.as_str(), &replica.port),
            (default.host.as_str(), &default.port)
        );
        assert_eq!(replica.database, default.database);
    }
}

#[test]
fn shipped_config_has_no_warnings_in_any_profile() {
    for profile in Profile::ALL {
        let findings = shipped_settings(profile).lint(&LintContext::default());
        let warnings: Vec<_> = findings.iter().filter(|f| f.level == Level::Warn).collect();
        assert!(warnings.is_empty(), "{profile}: {warnings:#?}");
    }
}
