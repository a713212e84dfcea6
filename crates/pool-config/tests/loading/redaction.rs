//! The password never appears in Debug, Display, errors or JSON, whichever way it was given.

use pool_config::{LintContext, Loader, Profile};

use crate::support::Fixture;

const PASSWORD: &str = "Zx9-pr1vate-Pw";

/// Every rendering of a load result that a service might log.
fn renderings(loader: Loader) -> String {
    let mut out = format!("{loader:?}\n");
    match loader.load_lenient() {
        Ok((settings, errors)) => {
            out.push_str(&format!(
                "{settings:?}\n{settings:#?}\n{errors}\n{errors:?}\n"
            ));
            for (name, pool) in settings.pools() {
                out.push_str(&format!(
                    "{pool:?}\n{}\n",
                    serde_json::to_string(pool).unwrap()
                ));
                for key in pool_config::PoolSettings::KEYS {
                    out.push_str(&pool.display_value(key).unwrap());
                    let source = settings.source_of(name, key).unwrap();
                    out.push_str(&format!(
                        "{source} {source:?} {}\n",
                        serde_json::to_string(source).unwrap()
                    ));
                }
            }
            for finding in settings.lint(&LintContext::default()) {
                out.push_str(&format!("{finding} {finding:?}\n"));
            }
        }
        Err(errors) => out.push_str(&format!("{errors}\n{errors:?}\n")),
    }
    out
}

#[track_caller]
fn assert_hidden(loader: Loader) {
    let out = renderings(loader);
    assert!(!out.contains(PASSWORD), "the password leaked:\n{out}");
    assert!(
        !out.contains("pr1vate"),
        "part of the password leaked:\n{out}"
    );
}

#[test]
fn a_password_from_any_source_is_never_shown() {
    let fixture = Fixture::empty();
    let file = fixture.write("pw", &format!("{PASSWORD}\n"));
    let url = format!("postgres://app:{PASSWORD}@db/servio");
    let bad_toml = format!("password = \"{PASSWORD}");
    // Each case also carries an unrelated error, so error output is rendered too.
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("DB_PASSWORD", PASSWORD)],
        vec![("DB_PASSWORD_FILE", file.to_str().unwrap())],
        vec![("DATABASE_URL", &url)],
        vec![("SERVIO_POOL_PASSWORD", PASSWORD)],
        vec![("SERVIO_POOL_POOLS__REPLICA__PASSWORD", PASSWORD)],
        vec![
            ("DATABASE_URL", &url),
            ("DB_PASSWORD", PASSWORD),
            ("DB_PASSWORD_FILE", file.to_str().unwrap()),
        ],
    ];
    for case in cases {
        let mut env = case.clone();
        env.push(("SERVIO_POOL_MAX_CONNECTIONS", "zero"));
        assert_hidden(fixture.loader(&case).profile(Profile::Production));
        assert_hidden(fixture.loader(&env).profile(Profile::Production));
    }
    for (name, contents) in [
        (
            "default.toml",
            format!("password = \"{PASSWORD}\"\nmax_connections = \"x\""),
        ),
        ("default.toml", bad_toml),
        (
            "default.toml",
            format!("[pools.replica]\npassword = \"{PASSWORD}\"\npasword = \"{PASSWORD}\""),
        ),
    ] {
        let fixture = Fixture::with(&[(name, &contents)]);
        assert_hidden(fixture.loader(&[]));
    }
}

#[test]
fn an_invalid_database_url_is_shown_masked() {
    let url = format!("postgres://app:{PASSWORD}@db/servio?sslmode=maybe");
    let errors = Fixture::empty().errors(&[("DATABASE_URL", &url)]);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("postgres://app:***@db/servio?sslmode=maybe"),
        "{errors:?}"
    );
    assert!(!errors[0].contains(PASSWORD));
}

#[test]
fn secret_query_parameters_are_masked_in_every_message() {
    for (url, shown) in [
        (
            format!("postgres://app@db/servio?password={PASSWORD}&sslmode=maybe"),
            "postgres://app@db/servio?password=***&sslmode=maybe",
        ),
        (
            format!("postgres://app@db/servio?sslpassword={PASSWORD}"),
            "postgres://app@db/servio?sslpassword=***",
        ),
        (
            format!("postgres://app:{PASSWORD}@db/servio?password={PASSWORD}"),
            "postgres://app:***@db/servio?password=***",
        ),
        (
            format!("postgres://app@db/servio?password={PASSWORD}%zz"),
            "postgres://app@db/servio?password=***",
        ),
    ] {
        let errors = Fixture::empty().errors(&[("DATABASE_URL", &url)]);
        assert_eq!(errors.len(), 1, "{url}: {errors:?}");
        assert!(errors[0].contains(shown), "{url}: {errors:?}");
        assert!(!errors[0].contains("pr1vate"), "{errors:?}");
    }
    // Accepted as libpq accepts it, and never shown: the source names the masked URL.
    let url = format!("postgres://app@db/servio?password={PASSWORD}");
    assert_hidden(Fixture::empty().loader(&[("DATABASE_URL", &url)]));
    let settings = Fixture::empty().load(&[("DATABASE_URL", &url)]);
    let pool = settings.pool("default").unwrap();
    assert_eq!(pool.password.expose(), PASSWORD);
    let source = settings
        .source_of("default", "password")
        .unwrap()
        .to_string();
    assert!(source.contains("password=***"), "{source}");
}

#[test]
fn an_empty_or_oversized_password_file_is_an_error_naming_it() {
    let fixture = Fixture::empty();
    let huge = "x".repeat(64 * 1024);
    for (name, contents, why) in [
        ("empty", "", "empty"),
        ("newline", "\n", "empty"),
        ("huge", huge.as_str(), "longer than 4096 bytes"),
    ] {
        let file = fixture.write(name, contents);
        let mut env = vec![("DB_PASSWORD_FILE", file.to_str().unwrap())];
        env.extend(crate::support::CONNECTION[..3].iter().copied());
        let errors =
            crate::support::errors_of(fixture.loader(&env).profile(Profile::Production).load());
        crate::support::assert_one_error(
            &errors,
            &["DB_PASSWORD_FILE", file.to_str().unwrap(), why],
        );
        // In development too: a file given and empty is a mistake, not "no password".
        let errors = fixture.errors(&env);
        crate::support::assert_one_error(&errors, &["DB_PASSWORD_FILE", why]);
    }
}
