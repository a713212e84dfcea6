//! # Implementation details
//!
//! Turns one configuration value (from TOML, where it is typed, or from the environment,
//! where it is always a string) into a setting. Secrets are read as strings, verbatim.

use std::path::PathBuf;
use std::time::Duration;

use figment::value::{Num, Value};

use crate::pool_settings::OFF;
use crate::{PgBouncerMode, PoolSettings, Ports, Secret, SslMode};

/// Keys whose values are never shown.
pub(crate) fn is_secret(key: &str) -> bool {
    key == "password"
}

/// What `value` looks like in an error message: strings quoted, numbers and booleans as
/// written, tables and arrays by kind.
pub(crate) fn show(value: &Value) -> String {
    match value {
        Value::String(_, s) => format!("{s:?}"),
        Value::Char(_, c) => format!("{c:?}"),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => match integer(n) {
            Some(i) => i.to_string(),
            None => n
                .to_f64()
                .map_or_else(|| "a number".to_owned(), |f| f.to_string()),
        },
        Value::Empty(..) => "nothing".to_owned(),
        Value::Dict(..) => "a table".to_owned(),
        Value::Array(..) => "an array".to_owned(),
    }
}

/// Sets `key` of `settings` from `value`.
///
/// Returns `Ok(false)` when `key` names no setting, and `Err(expected)` saying what is
/// accepted when the value does not fit.
pub(crate) fn apply(settings: &mut PoolSettings, key: &str, value: &Value) -> Result<bool, String> {
    let s = settings;
    match key {
        "host" => s.host = text(value)?,
        "port" => s.port = port(value)?,
        "target_session_attrs" => s.target_session_attrs = text(value)?.parse()?,
        "load_balance_hosts" => s.load_balance_hosts = text(value)?.parse()?,
        "database" => s.database = text(value)?,
        "username" => s.username = text(value)?,
        "password" => s.password = secret(value)?,
        "max_connections" => s.max_connections = count(value, "from 1 to 4294967295")?,
        "min_connections" => s.min_connections = count(value, "from 0 to 4294967295")?,
        "idle_timeout" => s.idle_timeout = optional_duration(value)?,
        "connect_timeout" => s.connect_timeout = duration(value)?,
        "acquire_timeout" => s.acquire_timeout = duration(value)?,
        "max_uses" => s.max_uses = optional_count(value)?,
        "max_lifetime" => s.max_lifetime = optional_duration(value)?,
        "lifetime_jitter" => s.lifetime_jitter = duration(value)?,
        "statement_timeout" => s.statement_timeout = optional_duration(value)?,
        "query_timeout" => s.query_timeout = optional_duration(value)?,
        "ssl_mode" => s.ssl_mode = text(value)?.parse::<SslMode>()?,
        "ssl_root_cert" => {
            let path = text(value)?;
            s.ssl_root_cert = (!path.is_empty()).then(|| PathBuf::from(path));
        }
        "application_name" => s.application_name = text(value)?,
        "validate_after_idle" => s.validate_after_idle = optional_duration(value)?,
        "keepalive_interval" => s.keepalive_interval = optional_duration(value)?,
        "leak_detection_threshold" => s.leak_detection_threshold = optional_duration(value)?,
        "max_waiters" => s.max_waiters = waiters(value)?,
        "pgbouncer" => s.pgbouncer = pgbouncer(value)?,
        "reset_on_release" => s.reset_on_release = boolean(value)?,
        "check_writable" => s.check_writable = boolean(value)?,
        _ => return Ok(false),
    }
    Ok(true)
}

fn text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(_, s) => Ok(s.clone()),
        _ => Err("a string".to_owned()),
    }
}

fn secret(value: &Value) -> Result<Secret, String> {
    match value {
        Value::String(_, s) => Ok(Secret::new(s.as_str())),
        _ => Err("a string, quoted in TOML (password = \"...\"), taken verbatim".to_owned()),
    }
}

fn integer(n: &Num) -> Option<i128> {
    n.to_i128()
        .or_else(|| n.to_u128().and_then(|u| i128::try_from(u).ok()))
}

/// A whole number from a TOML integer or a string of digits (as the environment gives).
fn whole(value: &Value) -> Option<i128> {
    match value {
        Value::Num(_, n) => integer(n),
        Value::String(_, s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn is_off(value: &Value) -> bool {
    matches!(value, Value::String(_, s) if s.trim().eq_ignore_ascii_case(OFF))
}

/// A port (a TOML integer or a string of digits), or libpq's comma-separated list.
fn port(value: &Value) -> Result<Ports, String> {
    match value {
        Value::String(_, s) => s.parse(),
        _ => whole(value)
            .and_then(|n| u16::try_from(n).ok())
            .filter(|p| *p != 0)
            .map(Ports::from)
            .ok_or_else(|| Ports::ACCEPTED.to_owned()),
    }
}

fn count(value: &Value, range: &str) -> Result<u32, String> {
    whole(value)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("a whole number {range}"))
}

fn optional_count<T: TryFrom<i128> + PartialEq + Default>(
    value: &Value,
) -> Result<Option<T>, String> {
    if is_off(value) {
        return Ok(None);
    }
    whole(value)
        .and_then(|n| T::try_from(n).ok())
        .map(|n| (n != T::default()).then_some(n))
        .ok_or_else(|| "a whole number; 0 or \"off\" disables it".to_owned())
}

/// A bound on waiting callers: `0` never waits (fail fast), `"off"` or `"unbounded"` has none.
fn waiters(value: &Value) -> Result<Option<u32>, String> {
    if is_off(value)
        || matches!(value, Value::String(_, s) if s.trim().eq_ignore_ascii_case(UNBOUNDED))
    {
        return Ok(None);
    }
    whole(value)
        .and_then(|n| u32::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| {
            "a whole number of callers allowed to wait, 0 to never wait (fail at once when no \
             connection is free), or \"off\" / \"unbounded\" for no bound"
                .to_owned()
        })
}

/// How an unbounded `max_waiters` may also be written.
const UNBOUNDED: &str = "unbounded";

const DURATION: &str =
    "a duration like \"30s\", \"5m\" or \"1h 30m\", or whole milliseconds like 30000";

fn duration(value: &Value) -> Result<Duration, String> {
    parse_duration(value).ok_or_else(|| DURATION.to_owned())
}

fn optional_duration(value: &Value) -> Result<Option<Duration>, String> {
    if is_off(value) {
        return Ok(None);
    }
    parse_duration(value)
        .map(|d| (!d.is_zero()).then_some(d))
        .ok_or_else(|| format!("{DURATION}; 0 or \"off\" disables it"))
}

/// A humantime string, or whole milliseconds (a TOML integer or a string of digits).
fn parse_duration(value: &Value) -> Option<Duration> {
    if let Some(millis) = whole(value) {
        return u64::try_from(millis).ok().map(Duration::from_millis);
    }
    match value {
        Value::String(_, s) => humantime::parse_duration(s.trim()).ok(),
        _ => None,
    }
}

fn boolean(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(_, b) => Ok(*b),
        Value::String(_, s) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
        Value::String(_, s) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
        _ => Err("true or false".to_owned()),
    }
}

fn pgbouncer(value: &Value) -> Result<Option<PgBouncerMode>, String> {
    match value {
        Value::Bool(_, false) => Ok(None),
        _ if is_off(value) => Ok(None),
        Value::String(_, s) => s.trim().parse().map(Some),
        _ => Err("one of off, session, transaction".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str, value: impl Into<Value>) -> Result<PoolSettings, String> {
        let mut s = PoolSettings::for_profile(crate::Profile::Development);
        assert!(apply(&mut s, key, &value.into())?, "{key} is a setting");
        Ok(s)
    }

    #[test]
    fn durations_accept_humantime_and_milliseconds() {
        assert_eq!(
            set("connect_timeout", "3s").unwrap().connect_timeout,
            Duration::from_secs(3)
        );
        assert_eq!(
            set("connect_timeout", 1500).unwrap().connect_timeout,
            Duration::from_millis(1500)
        );
        assert_eq!(
            set("connect_timeout", "1500").unwrap().connect_timeout,
            Duration::from_millis(1500)
        );
        assert_eq!(
            set("max_lifetime", "1h 30m").unwrap().max_lifetime,
            Some(Duration::from_secs(5400))
        );
        assert!(
            set("connect_timeout", "soon")
                .unwrap_err()
                .contains("30000")
        );
        assert!(set("connect_timeout", -5).is_err());
    }

    #[test]
    fn zero_or_off_disables_optional_limits() {
        for key in [
            "idle_timeout",
            "max_lifetime",
            "statement_timeout",
            "query_timeout",
            "keepalive_interval",
            "leak_detection_threshold",
            "validate_after_idle",
        ] {
            for off in [
                Value::from(0),
                Value::from("0"),
                Value::from("off"),
                Value::from("0s"),
            ] {
                let s = set(key, off).unwrap();
                assert_eq!(s.display_value(key).unwrap(), "off", "{key}");
            }
        }
        assert_eq!(set("max_uses", 0).unwrap().max_uses, None);
        assert_eq!(set("max_waiters", "off").unwrap().max_waiters, None);
        assert_eq!(set("max_waiters", "unbounded").unwrap().max_waiters, None);
        assert_eq!(set("max_waiters", 0).unwrap().max_waiters, Some(0));
        assert_eq!(set("max_waiters", 16).unwrap().max_waiters, Some(16));
    }

    #[test]
    fn secrets_are_taken_verbatim_and_must_be_strings() {
        for password in ["12345", "0123", "true", " spaced "] {
            assert_eq!(
                set("password", password).unwrap().password.expose(),
                password
            );
        }
        assert!(set("password", 12345).is_err());
    }

    #[test]
    fn wrong_types_say_what_is_accepted() {
        assert_eq!(
            set("max_connections", "abc").unwrap_err(),
            "a whole number from 1 to 4294967295"
        );
        assert_eq!(
            set("max_connections", -1).unwrap_err(),
            "a whole number from 1 to 4294967295"
        );
        assert_eq!(set("port", 70000).unwrap_err(), Ports::ACCEPTED);
        assert_eq!(set("port", "5432,x").unwrap_err(), Ports::ACCEPTED);
        assert!(
            set("target_session_attrs", "master")
                .unwrap_err()
                .contains("prefer-standby")
        );
        assert_eq!(set("load_balance_hosts", true).unwrap_err(), "a string");
        assert!(
            set("ssl_mode", "verify_full")
                .unwrap_err()
                .contains("verify-full")
        );
        assert_eq!(set("reset_on_release", "yes").unwrap_err(), "true or false");
        assert_eq!(set("host", 5).unwrap_err(), "a string");
    }

    #[test]
    fn enumerations_parse_their_documented_names() {
        assert_eq!(
            set("ssl_mode", "verify-ca").unwrap().ssl_mode,
            SslMode::VerifyCa
        );
        assert_eq!(
            set("pgbouncer", "transaction").unwrap().pgbouncer,
            Some(PgBouncerMode::Transaction)
        );
        assert_eq!(set("pgbouncer", false).unwrap().pgbouncer, None);
        assert!(set("check_writable", "true").unwrap().check_writable);
        assert_eq!(
            set("target_session_attrs", "prefer-standby")
                .unwrap()
                .target_session_attrs,
            crate::TargetSessionAttrs::PreferStandby
        );
        assert_eq!(
            set("load_balance_hosts", "random")
                .unwrap()
                .load_balance_hosts,
            crate::LoadBalanceHosts::Random
        );
        assert_eq!(
            set("port", "5432, 5433").unwrap().port.as_slice(),
            &[5432, 5433]
        );
        assert_eq!(set("port", "6432").unwrap().port, 6432);
    }
}
