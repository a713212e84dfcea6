//! # Implementation details
//!
//! The rules an effective pool must satisfy, checked after every layer is applied (single
//! values that are out of range, and rules between two settings).

use std::time::Duration;

use crate::setting::show_duration;
use crate::settings::NamedPool;
use crate::{
    ConfigError, ConfigErrors, PgBouncerMode, Profile, Secret, Source, TargetSessionAttrs,
};

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
    let source = |key: &str| pool.source(key).cloned().unwrap_or(Source::Code);
    let invalid = |key: &str, expected: String| ConfigError::Invalid {
        key: pool.written_key(key),
        value: s.display_value(key),
        origin: source(key),
        expected,
    };
    // Each value in its own range, as its definition says.
    for (key, expected) in s.range_errors() {
        errors.push(invalid(key, expected));
    }
    // Server parameters set in code get the checks loading gives them.
    for (name, value) in &s.session {
        if let Err(expected) = crate::parse::check_session_entry(name, value) {
            errors.push(invalid(&format!("session.{name}"), expected));
        }
    }
    // With max_connections = 0 already reported, a second error about min would be noise.
    if s.max_connections > 0 && s.min_connections > s.max_connections {
        errors.push(invalid(
            "min_connections",
            format!(
                "at most max_connections ({} from {})",
                s.max_connections,
                source("max_connections")
            ),
        ));
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
                show_duration(lifetime),
                source("max_lifetime")
            ),
        ));
    }
    // check_writable refuses every read-only server on connect: asking for one contradicts it.
    if s.check_writable
        && matches!(
            s.target_session_attrs,
            TargetSessionAttrs::Standby
                | TargetSessionAttrs::ReadOnly
                | TargetSessionAttrs::PreferStandby
        )
    {
        errors.push(invalid(
            "check_writable",
            format!(
                "false when target_session_attrs = \"{}\" (from {}): that asks for a \
                 read-only server (or prefers one), and check_writable refuses every \
                 read-only server on connect; for a pool that writes, set \
                 target_session_attrs = \"read-write\" or \"primary\"",
                s.target_session_attrs,
                source("target_session_attrs")
            ),
        ));
    }
    if s.pgbouncer == Some(PgBouncerMode::Transaction) {
        for key in s.session_keys_set() {
            let parameter = key.strip_prefix("session.").unwrap_or(&key);
            errors.push(invalid(
                &key,
                format!(
                    "unset (0, \"off\" or \"\") when pgbouncer = \"transaction\" (from {}): \
                     PgBouncer rejects it as a startup option, and a SET would stay on a \
                     server connection that other clients' transactions share; set it on the \
                     role instead (ALTER ROLE … SET {parameter} = …), or use pgbouncer = \
                     \"session\"",
                    source("pgbouncer")
                ),
            ));
        }
    }
    if let Some(path) = &s.password_file
        && let Err(error) = Secret::read_file_named(path, &pool.written_key("password_file"))
    {
        errors.push(match error {
            ConfigError::Unreadable { reason, .. } => invalid(
                "password_file",
                format!("a readable file holding the password ({reason})"),
            ),
            other => other,
        });
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
                source("host"),
                source("port")
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
                s.password.is_empty() && s.password_file.is_none(),
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
