//! # Implementation details
//!
//! The rules an effective pool must satisfy, checked after every layer is applied (single
//! values that are out of range, and rules between two settings).

use std::time::Duration;

use crate::settings::NamedPool;
use crate::{ConfigError, ConfigErrors, PgBouncerMode, Profile};

/// Connect and acquire timeouts below this cannot be met by a real network (HikariCP's floor).
pub(crate) const MIN_WAIT: Duration = Duration::from_millis(250);

/// The longest any duration setting may be (pool-core refuses longer ones too): far past
/// any sensible timeout or lifetime, and far below what a clock can hold.
pub const LONGEST_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// PostgreSQL's own ceiling on `max_connections`.
pub const MAX_CONNECTIONS: u32 = 262_143;

/// The largest `statement_timeout` the server accepts: 2^31 − 1 ms (about 24.8 days).
pub(crate) const MAX_STATEMENT_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// Adds every rule `pool` breaks to `errors`.
pub(crate) fn check_pool(profile: Profile, pool: &NamedPool, errors: &mut ConfigErrors) {
    let s = &pool.settings;
    let invalid = |key: &str, expected: String| ConfigError::Invalid {
        key: pool.written_key(key),
        value: s.display_value(key),
        origin: pool.source(key).cloned().unwrap_or(crate::Source::Code),
        expected,
    };
    if s.max_connections == 0 {
        errors.push(invalid(
            "max_connections",
            "a whole number of at least 1: a pool of 0 connections can never serve".to_owned(),
        ));
    }
    // With max_connections = 0 already reported, a second error about min would be noise.
    if s.max_connections > 0 && s.min_connections > s.max_connections {
        errors.push(invalid(
            "min_connections",
            format!(
                "at most max_connections ({} from {})",
                s.max_connections,
                pool.source("max_connections")
                    .cloned()
                    .unwrap_or(crate::Source::Code)
            ),
        ));
    }
    for (key, value) in [
        ("connect_timeout", s.connect_timeout),
        ("acquire_timeout", s.acquire_timeout),
    ] {
        if value < MIN_WAIT {
            errors.push(invalid(
                key,
                "a duration of at least 250ms, like \"2s\" or 2000 (milliseconds); 0 is not \
                 allowed because every wait is bounded"
                    .to_owned(),
            ));
        }
    }
    if s.max_connections > MAX_CONNECTIONS {
        errors.push(invalid(
            "max_connections",
            format!("at most {MAX_CONNECTIONS}, the most any PostgreSQL server accepts"),
        ));
    }
    for (key, value) in [
        ("idle_timeout", s.idle_timeout),
        ("connect_timeout", Some(s.connect_timeout)),
        ("acquire_timeout", Some(s.acquire_timeout)),
        ("max_lifetime", s.max_lifetime),
        ("lifetime_jitter", Some(s.lifetime_jitter)),
        ("query_timeout", s.query_timeout),
        ("validate_after_idle", s.validate_after_idle),
        ("keepalive_interval", s.keepalive_interval),
        ("leak_detection_threshold", s.leak_detection_threshold),
    ] {
        if value.is_some_and(|d| d > LONGEST_DURATION) {
            errors.push(invalid(
                key,
                "a duration of at most 365 days, like \"30m\" or 1800000 (milliseconds)".to_owned(),
            ));
        }
    }
    if let Some(lifetime) = s.max_lifetime
        && s.lifetime_jitter >= lifetime
    {
        errors.push(invalid(
            "lifetime_jitter",
            format!(
                "a duration below max_lifetime ({} from {}): the jitter is taken off each \
                 connection's lifetime, so it must leave some; lower lifetime_jitter (0 is \
                 allowed) or raise max_lifetime",
                crate::pool_settings::show_duration(lifetime),
                pool.source("max_lifetime")
                    .cloned()
                    .unwrap_or(crate::Source::Code)
            ),
        ));
    }
    if let Some(statement) = s.statement_timeout
        && (statement > MAX_STATEMENT_TIMEOUT || statement < Duration::from_millis(1))
    {
        errors.push(invalid(
            "statement_timeout",
            "0 (off) or a duration from 1ms to 2147483647ms (about 24.8 days), the range the \
             server accepts: the server counts whole milliseconds, so less than 1ms would turn \
             it off"
                .to_owned(),
        ));
    }
    if s.pgbouncer == Some(PgBouncerMode::Transaction) && s.statement_timeout.is_some() {
        errors.push(invalid(
            "statement_timeout",
            "0 (off) when pgbouncer = \"transaction\": PgBouncer rejects it as a startup option; \
             set it on the role instead (ALTER ROLE … SET statement_timeout = '30s')"
                .to_owned(),
        ));
    }
    if let Err(expected) = s.hosts() {
        // An empty entry is the host's fault; a count that does not pair up, the port's.
        let key = if expected.starts_with("host") {
            "host"
        } else {
            "port"
        };
        errors.push(invalid(
            key,
            format!(
                "{expected} (host from {}, port from {})",
                pool.source("host").cloned().unwrap_or(crate::Source::Code),
                pool.source("port").cloned().unwrap_or(crate::Source::Code)
            ),
        ));
    }
    if profile.requires_connection() {
        for (key, empty, variable) in [
            ("host", s.host.is_empty(), "DB_HOST"),
            ("database", s.database.is_empty(), "DB_NAME"),
            ("username", s.username.is_empty(), "DB_USERNAME"),
            (
                "password",
                s.password.is_empty(),
                "DB_PASSWORD or DB_PASSWORD_FILE",
            ),
        ] {
            if empty {
                errors.push(ConfigError::Required {
                    key: pool.written_key(key),
                    profile,
                    variable: format!("{variable} (or DATABASE_URL, or `{key}` in {profile}.toml)"),
                });
            }
        }
    }
}
