//! Several hosts per pool: libpq's lists in `host` and `port`, `DATABASE_URL` and `DB_*`,
//! `target_session_attrs` and `load_balance_hosts`, checked as libpq checks them.

use pool_config::{HostPort, Level, LoadBalanceHosts, TargetSessionAttrs};

use crate::support::{Fixture, assert_one_error};

fn host(host: &str, port: u16) -> HostPort {
    HostPort {
        host: host.to_owned(),
        port,
    }
}

#[test]
fn a_database_url_with_several_hosts_names_each_with_its_port() {
    let settings = Fixture::empty().load(&[(
        "DATABASE_URL",
        "postgres://app:S3cret@db-a:5432,db-b:5433/orders?target_session_attrs=read-write",
    )]);
    let pool = settings.pool("default").unwrap();
    assert_eq!(
        pool.hosts().unwrap(),
        [host("db-a", 5432), host("db-b", 5433)]
    );
    assert_eq!(pool.target_session_attrs, TargetSessionAttrs::ReadWrite);
    let source = settings.source_of("default", "host").unwrap().to_string();
    assert!(
        source.contains("db-a:5432,db-b:5433") && !source.contains("S3cret"),
        "{source}"
    );
}

#[test]
fn db_host_and_db_port_take_lists_and_one_port_serves_every_host() {
    let fixture = Fixture::empty();
    let settings = fixture.load(&[("DB_HOST", "db-a, db-b"), ("DB_PORT", "6432")]);
    let pool = settings.pool("default").unwrap();
    assert_eq!(
        pool.hosts().unwrap(),
        [host("db-a", 6432), host("db-b", 6432)]
    );
    let settings = fixture.load(&[("DB_HOST", "db-a,db-b"), ("DB_PORT", "5432,5433")]);
    assert_eq!(
        settings
            .pool("default")
            .unwrap()
            .display_value("port")
            .unwrap(),
        "5432,5433"
    );
}

#[test]
fn toml_lists_and_the_new_keys_load_per_pool() {
    let fixture = Fixture::with(&[(
        "default.toml",
        "host = \"db-a,db-b\"\nport = \"5432,5433\"\n\
         [pools.replica]\ntarget_session_attrs = \"prefer-standby\"\nload_balance_hosts = \"random\"\n",
    )]);
    let settings = fixture.load(&[]);
    let replica = settings.pool("replica").unwrap();
    assert_eq!(
        replica.target_session_attrs,
        TargetSessionAttrs::PreferStandby
    );
    assert_eq!(replica.load_balance_hosts, LoadBalanceHosts::Random);
    assert_eq!(replica.hosts().unwrap().len(), 2);
    let default = settings.pool("default").unwrap();
    assert_eq!(default.target_session_attrs, TargetSessionAttrs::Any);
}

#[test]
fn host_and_port_counts_must_agree_as_in_libpq() {
    let fixture = Fixture::empty();
    let errors = fixture.errors(&[("DB_HOST", "a,b,c"), ("DB_PORT", "5432,5433")]);
    assert_one_error(
        &errors,
        &[
            "`port` = 5432,5433",
            "environment variable DB_PORT",
            "one port for every host, or one per host: 3 hosts but 2 ports",
            "host from environment variable DB_HOST",
        ],
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let errors = fixture.errors(&[("DB_HOST", "a,,c")]);
    assert_one_error(&errors, &["`host` = a,,c", "none of them empty"]);
}

#[test]
fn unknown_values_say_what_is_accepted() {
    let fixture = Fixture::empty();
    let errors = fixture.errors(&[
        ("SERVIO_POOL_TARGET_SESSION_ATTRS", "master"),
        ("SERVIO_POOL_LOAD_BALANCE_HOSTS", "round-robin"),
        ("DB_PORT", "5432,x"),
    ]);
    assert_one_error(
        &errors,
        &[
            "`target_session_attrs` = \"master\"",
            "SERVIO_POOL_TARGET_SESSION_ATTRS",
            "one of any, read-write, read-only, primary, standby, prefer-standby",
        ],
    );
    assert_one_error(&errors, &["`load_balance_hosts`", "one of disable, random"]);
    assert_one_error(&errors, &["`port` = \"5432,x\"", "one per host"]);
    assert_eq!(errors.len(), 3, "{errors:#?}");
}

#[test]
fn target_session_attrs_with_one_host_is_a_warning() {
    let fixture = Fixture::empty();
    let one = fixture.findings(&[("SERVIO_POOL_TARGET_SESSION_ATTRS", "read-write")]);
    let warned: Vec<_> = one
        .iter()
        .filter(|f| f.key == "target_session_attrs")
        .collect();
    assert_eq!(warned.len(), 1, "{one:#?}");
    assert_eq!(warned[0].level, Level::Warn);
    assert!(warned[0].message.contains("one host"));
    let two = fixture.findings(&[
        ("SERVIO_POOL_TARGET_SESSION_ATTRS", "read-write"),
        ("DB_HOST", "db-a,db-b"),
    ]);
    assert!(
        two.iter().all(|f| f.key != "target_session_attrs"),
        "{two:#?}"
    );
}
