//! # Implementation details
//!
//! Turns one configuration value (from TOML, where it is typed, or from the environment,
//! where it is always a string) into a setting. Secrets are read as strings, verbatim.

use figment::value::{Num, Value};

use crate::PoolSettings;
use crate::pool_settings::SESSION;
use crate::setting::OFF;

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

/// Sets `key` of `settings` from `value`; `session` merges its entries into the pool's map.
///
/// Returns `Ok(false)` when `key` names no setting, and `Err(expected)` saying what is
/// accepted when the value does not fit (for `session`, only entries that fit are merged:
/// [`session_entries`] reports the others one by one).
pub(crate) fn apply(settings: &mut PoolSettings, key: &str, value: &Value) -> Result<bool, String> {
    if key == SESSION {
        let entries = session_entries(value)?;
        for (name, entry) in entries {
            if let Ok(entry) = entry {
                settings.session.insert(name, entry);
            }
        }
        return Ok(true);
    }
    settings.apply_value(key, value)
}

/// One server parameter of a `[session]` table: its name, and its value or what is accepted.
pub(crate) type SessionEntry = (String, Result<String, String>);

/// The entries of a `[session]` table: each server parameter's name (lower-cased, as the
/// server folds it) with its value as text, or what is accepted when it does not fit.
pub(crate) fn session_entries(value: &Value) -> Result<Vec<SessionEntry>, String> {
    let Value::Dict(_, entries) = value else {
        return Err("a table of server parameters, like [session] work_mem = \"64MB\"".to_owned());
    };
    Ok(entries
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), session_value(name, value)))
        .collect())
}

/// Server parameters the driver sets itself and relies on, or that are not settings.
const RESERVED: [(&str, &str); 5] = [
    (
        "client_encoding",
        "the driver speaks UTF8 and sets it itself",
    ),
    ("datestyle", "the driver sets ISO and parses dates by it"),
    (
        "intervalstyle",
        "the driver parses intervals in the server's default style",
    ),
    (
        "extra_float_digits",
        "the driver sets it so floats round-trip exactly",
    ),
    (
        "session_authorization",
        "log in as that user instead (`username`)",
    ),
];

/// The key that sets server parameter `name` (any case), when one does.
fn own_key(name: &str) -> Option<&'static str> {
    PoolSettings::SETTINGS
        .iter()
        .find(|s| {
            s.server_parameter()
                .is_some_and(|p| p.eq_ignore_ascii_case(name))
        })
        .map(|s| s.key)
}

/// Checks one entry of a pool's server parameter map (as code may fill it): what is accepted
/// when the name or value is refused.
pub(crate) fn check_session_entry(name: &str, value: &str) -> Result<(), String> {
    session_value(name, &Value::from(value.to_owned())).map(drop)
}

fn session_value(name: &str, value: &Value) -> Result<String, String> {
    let identifier = |part: &str| {
        part.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !name.split('.').all(identifier) || name.split('.').count() > 2 {
        return Err(
            "a server parameter name: letters, digits and `_`, not starting with a digit \
             (a custom one may have one `.`, like myapp.tenant)"
                .to_owned(),
        );
    }
    let lower = name.to_ascii_lowercase();
    if let Some((_, why)) = RESERVED.iter().find(|(reserved, _)| *reserved == lower) {
        return Err(format!("a server parameter other than {name}: {why}"));
    }
    if let Some(key) = own_key(name) {
        return Err(format!(
            "a server parameter other than {name}: set `{key}` instead"
        ));
    }
    let text = match value {
        Value::String(_, s) => s.clone(),
        Value::Bool(_, b) => if *b { "on" } else { "off" }.to_owned(),
        Value::Num(..) => show(value),
        _ => String::new(),
    };
    if text.trim().is_empty() || text.chars().any(char::is_control) {
        return Err(
            "a value for the server parameter: a non-empty string without control characters, \
             a number or true/false"
                .to_owned(),
        );
    }
    Ok(text)
}

/// A string value.
pub(crate) fn text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(_, s) => Ok(s.clone()),
        _ => Err("a string".to_owned()),
    }
}

fn integer(n: &Num) -> Option<i128> {
    n.to_i128()
        .or_else(|| n.to_u128().and_then(|u| i128::try_from(u).ok()))
}

/// A whole number from a TOML integer or a string of digits (as the environment gives).
pub(crate) fn whole(value: &Value) -> Option<i128> {
    match value {
        Value::Num(_, n) => integer(n),
        Value::String(_, s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Whether `value` is `"off"`.
pub(crate) fn is_off(value: &Value) -> bool {
    matches!(value, Value::String(_, s) if s.trim().eq_ignore_ascii_case(OFF))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{PgBouncerMode, Ports, SslMode};

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
