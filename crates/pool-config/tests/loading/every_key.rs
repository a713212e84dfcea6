//! Every key of `PoolSettings::SETTINGS` is parsed (files and environment), validated with
//! its key and source named, shown, documented and mapped. A key added to the table and
//! forgotten in one of these places fails here, saying which.

use pool_config::{Applies, PoolSettings, Profile, Setting};

use crate::support::{Fixture, read};

/// For each key: a valid value other than the development default, and a value it refuses
/// (`None` for free text, which accepts anything). `{file}` stands for a readable file.
fn sample(key: &str) -> (&'static str, Option<&'static str>) {
    match key {
        "host" => ("db-x", None),
        "port" => ("6543", Some("70000")),
        "target_session_attrs" => ("read-write", Some("master")),
        "load_balance_hosts" => ("random", Some("sometimes")),
        "database" => ("orders", None),
        "username" => ("app", None),
        "password" => ("s3cret", None),
        "password_file" => ("{file}", Some("/nonexistent/password")),
        "max_connections" => ("20", Some("0")),
        "min_connections" => ("3", Some("-1")),
        "idle_timeout" => ("45s", Some("soon")),
        "connect_timeout" => ("3s", Some("100ms")),
        "acquire_timeout" => ("5s", Some("0")),
        "max_uses" => ("10", Some("-3")),
        "max_lifetime" => ("1h", Some("soon")),
        "lifetime_jitter" => ("10s", Some("soon")),
        "statement_timeout" => ("20s", Some("30days")),
        "query_timeout" => ("20s", Some("soon")),
        "ssl_mode" => ("require", Some("verify_full")),
        "ssl_root_cert" => ("/etc/ssl/root.crt", None),
        "application_name" => ("svc", None),
        "validate_after_idle" => ("1s", Some("soon")),
        "keepalive_interval" => ("60s", Some("soon")),
        "leak_detection_threshold" => ("30s", Some("soon")),
        "max_waiters" => ("0", Some("-1")),
        "pgbouncer" => ("session", Some("statement")),
        "reset_on_release" => ("true", Some("yes")),
        "check_writable" => ("true", Some("yes")),
        "search_path" => ("app", None),
        "lock_timeout" => ("5s", Some("30days")),
        "idle_in_transaction_session_timeout" => ("60s", Some("soon")),
        "default_transaction_isolation" => ("serializable", Some("snapshot")),
        "default_transaction_read_only" => ("true", Some("maybe")),
        "timezone" => ("Europe/Paris", None),
        _ => panic!(
            "`{key}` has no sample values: add a valid and a refused value for it to \
             every_key.rs::sample"
        ),
    }
}

#[test]
fn every_key_is_parsed_validated_shown_documented_and_mapped() {
    let readme = read("README.md");
    let shipped: String = ["default", "development", "staging", "production", "test"]
        .map(|profile| read(&format!("../../config/{profile}.toml")))
        .concat();
    let default = PoolSettings::for_profile(Profile::Development);
    assert_eq!(
        PoolSettings::KEYS,
        PoolSettings::SETTINGS
            .iter()
            .map(|s| s.key)
            .collect::<Vec<_>>()
    );
    for setting in PoolSettings::SETTINGS {
        let Setting { key, .. } = *setting;
        let var = setting.env_var();
        let fixture = Fixture::empty();
        let file = fixture.write("password", "pw\n").display().to_string();
        let (valid, refused) = sample(key);
        let valid = valid.replace("{file}", &file);

        // Parsed, from the environment and from a file alike.
        let from_env = fixture.load(&[(var.as_str(), valid.as_str())]);
        let pool = from_env.pool("default").unwrap();
        assert_ne!(pool, &default, "{var}={valid} changes nothing");
        assert_eq!(
            from_env.source_of("default", key).and_then(|s| s.env_var()),
            Some(var.as_str()),
            "{key}"
        );
        let in_file = Fixture::with(&[("default.toml", &format!("{key} = {valid:?}\n"))]);
        assert_eq!(
            in_file.load(&[]).pool("default"),
            Some(pool),
            "{key} in a file"
        );

        // Validated: a refused value names the key and its source.
        if let Some(refused) = refused {
            let errors = fixture.errors(&[(var.as_str(), refused)]);
            assert!(
                errors
                    .iter()
                    .any(|e| e.contains(&format!("`{key}`")) && e.contains(&var)),
                "{var}={refused}: {errors:#?}"
            );
        }

        // Shown, as text and as JSON.
        assert!(pool.display_value(key).is_some(), "{key} is not shown");
        let json = serde_json::to_value(pool).unwrap();
        assert!(json.get(key).is_some(), "{key} is not serialized");

        // Documented: a README row, a line in the shipped configuration, a summary.
        assert!(
            readme.contains(&format!("| `{key}` |")),
            "{key} has no row in the README table"
        );
        assert!(
            shipped.contains(key),
            "config/*.toml never mention {key}: document it in config/default.toml"
        );
        assert!(!setting.summary().is_empty() && !setting.accepted.is_empty());

        // Mapped: onto pool-core (checked there against PoolOptions), or onto the server.
        assert!(!setting.maps_to.is_empty(), "{key} maps onto nothing");
        if setting.applies == Applies::Session && key != "statement_timeout" {
            let parameter = setting.server_parameter().expect("a server parameter");
            assert!(
                pool.session_parameters()
                    .iter()
                    .any(|(p, _)| p == parameter),
                "{key} set but not among the session parameters: {:?}",
                pool.session_parameters()
            );
        }
    }
}
