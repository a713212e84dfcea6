//! One definition per setting: [`Setting`] describes a key (type, accepted values, where it
//! applies, what it maps onto), and each value kind knows how to parse, check, show and
//! serialize its values. [`define_settings!`] turns the table in `pool_settings.rs` into the
//! `PoolSettings` struct, its key list, its defaults per profile, and the functions that
//! parse, check, show and serialize every key.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use figment::value::Value;
use serde::Serialize;
use serde_json::Value as Json;

use crate::parse::{is_off, text, whole};
use crate::validate::{LONGEST_DURATION, MAX_CONNECTIONS, MAX_STATEMENT_TIMEOUT, MIN_WAIT};
use crate::{LoadBalanceHosts, PgBouncerMode, Ports, Secret, SslMode, TargetSessionAttrs};

/// Where a setting takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Applies {
    /// The pool's own behaviour (`PoolOptions`): sizes, waits, lifetimes.
    Pool,
    /// Opening a connection (`PgConnector`): where, as whom, over what TLS.
    Connection,
    /// The server session of every connection: a server parameter set when it opens.
    Session,
}

impl Applies {
    /// The name used in documentation.
    pub const fn as_str(self) -> &'static str {
        match self {
            Applies::Pool => "pool",
            Applies::Connection => "connection",
            Applies::Session => "server session",
        }
    }
}

impl fmt::Display for Applies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The definition of one setting, as [`PoolSettings::SETTINGS`](crate::PoolSettings::SETTINGS)
/// lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Setting {
    /// The key, the same in TOML, the environment (`SERVIO_POOL_<KEY>`) and Rust.
    pub key: &'static str,
    /// What it does and why its default, as its Rust documentation says (rustdoc markup).
    pub doc: &'static str,
    /// What values are accepted.
    pub accepted: &'static str,
    /// Where it takes effect.
    pub applies: Applies,
    /// What it maps onto in pool-core (a `PoolOptions` method, the connector, a server
    /// parameter).
    pub maps_to: &'static str,
}

impl Setting {
    /// What it does, in plain text on one line: the documentation before its `Default:`.
    pub fn summary(&self) -> String {
        plain(self.doc.split("Default:").next().unwrap_or_default())
    }

    /// Why its default, in plain text on one line: the documentation after `Default:`.
    pub fn why_default(&self) -> String {
        plain(self.doc.split_once("Default:").map_or("", |(_, why)| why))
    }

    /// The server parameter it sets, when it sets one (`maps_to` of the form
    /// `server parameter <name>`, or `application_name`).
    pub fn server_parameter(&self) -> Option<&'static str> {
        let name = self.maps_to.strip_prefix("server parameter ")?;
        Some(name.split_whitespace().next().unwrap_or(name))
    }

    /// The environment variable that overrides the base value.
    pub fn env_var(&self) -> String {
        format!("SERVIO_POOL_{}", self.key.to_ascii_uppercase())
    }
}

/// Rustdoc text as one line of Markdown: lines joined, intra-doc links reduced to their text.
fn plain(doc: &str) -> String {
    let joined = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(joined.len());
    let mut rest = joined.as_str();
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(']') {
            Some(close) => {
                out.push_str(&after[..close]);
                rest = &after[close + 1..];
                if rest.starts_with('(')
                    && let Some(end) = rest.find(')')
                {
                    rest = &rest[end + 1..];
                }
            }
            None => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.trim().to_owned()
}

/// How the values of one kind of setting are parsed, checked, shown and serialized.
pub(crate) trait Kind {
    /// The Rust type of the value.
    type Value;
    /// What values are accepted, for errors and the documentation.
    const ACCEPTED: &'static str;
    /// Parses a value from TOML or the environment; the error says what is accepted.
    fn parse(value: &Value) -> Result<Self::Value, String>;
    /// The value as configuration text.
    fn show(value: &Self::Value) -> String;
    /// The value as JSON, reading back as configuration.
    fn json(value: &Self::Value) -> Json {
        Json::String(Self::show(value))
    }
    /// A range rule the value breaks, as what is accepted.
    fn check(_value: &Self::Value) -> Option<String> {
        None
    }
    /// The value as a server parameter, or `None` to leave the server's.
    fn server_value(_value: &Self::Value) -> Option<String> {
        None
    }
}

/// How a disabled limit is written and shown.
pub(crate) const OFF: &str = "off";

/// How an unset server session setting is shown: the server (or role) keeps its own.
pub(crate) const SERVER_DEFAULT: &str = "(server's)";

/// A duration as configuration text: `30s`, `30m`, `1h 30m`.
pub(crate) fn show_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

const DURATION: &str =
    "a duration like \"30s\", \"5m\" or \"1h 30m\", or whole milliseconds like 30000";

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

fn optional_duration(value: &Value) -> Result<Option<Duration>, String> {
    if is_off(value) {
        return Ok(None);
    }
    parse_duration(value)
        .map(|d| (!d.is_zero()).then_some(d))
        .ok_or_else(|| format!("{DURATION}; 0 or \"off\" disables it"))
}

fn longest(duration: Duration) -> Option<String> {
    (duration > LONGEST_DURATION).then(|| {
        "a duration of at most 365 days, like \"30m\" or 1800000 (milliseconds)".to_owned()
    })
}

/// Free text: names, addresses.
pub(crate) struct Text;

impl Kind for Text {
    type Value = String;
    const ACCEPTED: &'static str = "a string";
    fn parse(value: &Value) -> Result<String, String> {
        text(value)
    }
    fn show(value: &String) -> String {
        value.clone()
    }
}

/// The password: a string taken verbatim, never shown.
pub(crate) struct Password;

impl Kind for Password {
    type Value = Secret;
    const ACCEPTED: &'static str = "a string, quoted in TOML (password = \"...\"), taken verbatim";
    fn parse(value: &Value) -> Result<Secret, String> {
        match value {
            Value::String(_, s) => Ok(Secret::new(s.as_str())),
            _ => Err(Self::ACCEPTED.to_owned()),
        }
    }
    fn show(value: &Secret) -> String {
        value.to_string()
    }
}

/// A file path; empty for none.
pub(crate) struct OptionalPath;

impl Kind for OptionalPath {
    type Value = Option<PathBuf>;
    const ACCEPTED: &'static str = "a file path, or \"\" for none";
    fn parse(value: &Value) -> Result<Option<PathBuf>, String> {
        let path = text(value)?;
        Ok((!path.is_empty()).then(|| PathBuf::from(path)))
    }
    fn show(value: &Option<PathBuf>) -> String {
        value
            .as_ref()
            .map_or_else(|| OFF.to_owned(), |p| p.display().to_string())
    }
}

/// A value named by its text (`FromStr` saying what is accepted, `Display` writing it back).
pub(crate) struct Named<T>(std::marker::PhantomData<T>);

/// What a [`Named`] kind accepts, for the documentation.
pub(crate) trait Accepted {
    const ACCEPTED: &'static str;
}

impl Accepted for TargetSessionAttrs {
    const ACCEPTED: &'static str = "any, read-write, read-only, primary, standby or prefer-standby";
}

impl Accepted for LoadBalanceHosts {
    const ACCEPTED: &'static str = "disable or random";
}

impl Accepted for SslMode {
    const ACCEPTED: &'static str = "disable, prefer, require, verify-ca or verify-full";
}

impl<T: FromStr<Err = String> + fmt::Display + Accepted> Kind for Named<T> {
    type Value = T;
    const ACCEPTED: &'static str = T::ACCEPTED;
    fn parse(value: &Value) -> Result<T, String> {
        text(value)?.parse()
    }
    fn show(value: &T) -> String {
        value.to_string()
    }
}

/// One port, or libpq's comma-separated list.
pub(crate) struct PortList;

impl Kind for PortList {
    type Value = Ports;
    const ACCEPTED: &'static str = Ports::ACCEPTED;
    fn parse(value: &Value) -> Result<Ports, String> {
        match value {
            Value::String(_, s) => s.parse(),
            _ => whole(value)
                .and_then(|n| u16::try_from(n).ok())
                .filter(|p| *p != 0)
                .map(Ports::from)
                .ok_or_else(|| Ports::ACCEPTED.to_owned()),
        }
    }
    fn show(value: &Ports) -> String {
        value.to_string()
    }
    fn json(value: &Ports) -> Json {
        serde_json::to_value(value).unwrap_or(Json::Null)
    }
}

/// A count of connections: at least 1, at most what a server accepts.
pub(crate) struct Connections;

fn count(value: &Value, range: &str) -> Result<u32, String> {
    whole(value)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("a whole number {range}"))
}

impl Kind for Connections {
    type Value = u32;
    const ACCEPTED: &'static str = "a whole number from 1 to 262143";
    fn parse(value: &Value) -> Result<u32, String> {
        count(value, "from 1 to 4294967295")
    }
    fn show(value: &u32) -> String {
        value.to_string()
    }
    fn json(value: &u32) -> Json {
        Json::from(*value)
    }
    fn check(value: &u32) -> Option<String> {
        if *value == 0 {
            Some("a whole number of at least 1: a pool of 0 connections can never serve".to_owned())
        } else if *value > MAX_CONNECTIONS {
            Some(format!(
                "at most {MAX_CONNECTIONS}, the most any PostgreSQL server accepts"
            ))
        } else {
            None
        }
    }
}

/// A count with no bound of its own.
pub(crate) struct Count;

impl Kind for Count {
    type Value = u32;
    const ACCEPTED: &'static str = "a whole number from 0";
    fn parse(value: &Value) -> Result<u32, String> {
        count(value, "from 0 to 4294967295")
    }
    fn show(value: &u32) -> String {
        value.to_string()
    }
    fn json(value: &u32) -> Json {
        Json::from(*value)
    }
}

/// A count where 0 or `"off"` disables the limit.
pub(crate) struct OptionalCount;

impl Kind for OptionalCount {
    type Value = Option<u64>;
    const ACCEPTED: &'static str = "a whole number; 0 or \"off\" disables it";
    fn parse(value: &Value) -> Result<Option<u64>, String> {
        if is_off(value) {
            return Ok(None);
        }
        whole(value)
            .and_then(|n| u64::try_from(n).ok())
            .map(|n| (n != 0).then_some(n))
            .ok_or_else(|| Self::ACCEPTED.to_owned())
    }
    fn show(value: &Option<u64>) -> String {
        value.map_or_else(|| OFF.to_owned(), |n| n.to_string())
    }
    fn json(value: &Option<u64>) -> Json {
        value.map_or_else(|| Json::from(OFF), Json::from)
    }
}

/// A bound on waiting callers: `0` never waits, `"off"` or `"unbounded"` has none.
pub(crate) struct Waiters;

/// How an unbounded `max_waiters` may also be written.
const UNBOUNDED: &str = "unbounded";

impl Kind for Waiters {
    type Value = Option<u32>;
    const ACCEPTED: &'static str = "a whole number of callers allowed to wait, 0 to never wait \
         (fail at once when no connection is free), or \"off\" / \"unbounded\" for no bound";
    fn parse(value: &Value) -> Result<Option<u32>, String> {
        let unbounded =
            matches!(value, Value::String(_, s) if s.trim().eq_ignore_ascii_case(UNBOUNDED));
        if is_off(value) || unbounded {
            return Ok(None);
        }
        whole(value)
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| Self::ACCEPTED.to_owned())
    }
    fn show(value: &Option<u32>) -> String {
        value.map_or_else(|| OFF.to_owned(), |n| n.to_string())
    }
    fn json(value: &Option<u32>) -> Json {
        value.map_or_else(|| Json::from(OFF), Json::from)
    }
}

/// A bounded wait: at least 250ms, at most 365 days; never off.
pub(crate) struct Wait;

impl Kind for Wait {
    type Value = Duration;
    const ACCEPTED: &'static str = "a duration from 250ms to 365 days";
    fn parse(value: &Value) -> Result<Duration, String> {
        parse_duration(value).ok_or_else(|| DURATION.to_owned())
    }
    fn show(value: &Duration) -> String {
        show_duration(*value)
    }
    fn check(value: &Duration) -> Option<String> {
        if *value < MIN_WAIT {
            return Some(
                "a duration of at least 250ms, like \"2s\" or 2000 (milliseconds); 0 is not \
                 allowed because every wait is bounded"
                    .to_owned(),
            );
        }
        longest(*value)
    }
}

/// A duration from 0 to 365 days.
pub(crate) struct Span;

impl Kind for Span {
    type Value = Duration;
    const ACCEPTED: &'static str = "a duration from 0 to 365 days";
    fn parse(value: &Value) -> Result<Duration, String> {
        Wait::parse(value)
    }
    fn show(value: &Duration) -> String {
        show_duration(*value)
    }
    fn check(value: &Duration) -> Option<String> {
        longest(*value)
    }
}

/// A duration up to 365 days where 0 or `"off"` disables the limit.
pub(crate) struct OptionalSpan;

impl Kind for OptionalSpan {
    type Value = Option<Duration>;
    const ACCEPTED: &'static str = "a duration up to 365 days; 0 or \"off\" disables it";
    fn parse(value: &Value) -> Result<Option<Duration>, String> {
        optional_duration(value)
    }
    fn show(value: &Option<Duration>) -> String {
        value.map_or_else(|| OFF.to_owned(), show_duration)
    }
    fn check(value: &Option<Duration>) -> Option<String> {
        value.and_then(longest)
    }
}

/// A server timeout parameter in whole milliseconds; 0 or `"off"` leaves the server's.
pub(crate) struct ServerTimeout;

impl Kind for ServerTimeout {
    type Value = Option<Duration>;
    const ACCEPTED: &'static str =
        "a duration from 1ms to 2147483647ms (about 24.8 days); 0 or \"off\" leaves the server's";
    fn parse(value: &Value) -> Result<Option<Duration>, String> {
        optional_duration(value)
    }
    fn show(value: &Option<Duration>) -> String {
        OptionalSpan::show(value)
    }
    fn check(value: &Option<Duration>) -> Option<String> {
        value
            .filter(|d| *d > MAX_STATEMENT_TIMEOUT || *d < Duration::from_millis(1))
            .map(|_| {
                "0 (off) or a duration from 1ms to 2147483647ms (about 24.8 days), the range \
                 the server accepts: the server counts whole milliseconds, so less than 1ms \
                 would turn it off"
                    .to_owned()
            })
    }
    fn server_value(value: &Option<Duration>) -> Option<String> {
        value.map(|d| format!("{}ms", d.as_millis()))
    }
}

/// `true` or `false`.
pub(crate) struct Flag;

fn boolean(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(_, b) => Ok(*b),
        Value::String(_, s) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
        Value::String(_, s) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
        _ => Err("true or false".to_owned()),
    }
}

impl Kind for Flag {
    type Value = bool;
    const ACCEPTED: &'static str = "true or false";
    fn parse(value: &Value) -> Result<bool, String> {
        boolean(value)
    }
    fn show(value: &bool) -> String {
        value.to_string()
    }
    fn json(value: &bool) -> Json {
        Json::Bool(*value)
    }
}

/// The PgBouncer mode, or off.
pub(crate) struct Bouncer;

impl Kind for Bouncer {
    type Value = Option<PgBouncerMode>;
    const ACCEPTED: &'static str = "one of off, session, transaction";
    fn parse(value: &Value) -> Result<Option<PgBouncerMode>, String> {
        match value {
            Value::Bool(_, false) => Ok(None),
            _ if is_off(value) => Ok(None),
            Value::String(_, s) => s.trim().parse().map(Some),
            _ => Err(Self::ACCEPTED.to_owned()),
        }
    }
    fn show(value: &Option<PgBouncerMode>) -> String {
        value.map_or_else(|| OFF.to_owned(), |m| m.to_string())
    }
}

/// An optional server session setting given as text; `""` leaves the server's.
pub(crate) struct SessionText;

impl Kind for SessionText {
    type Value = Option<String>;
    const ACCEPTED: &'static str =
        "a string without control characters; \"\" leaves the server's (or the role's)";
    fn parse(value: &Value) -> Result<Option<String>, String> {
        let value = text(value).map_err(|_| Self::ACCEPTED.to_owned())?;
        if value.chars().any(char::is_control) {
            return Err(Self::ACCEPTED.to_owned());
        }
        Ok((!value.trim().is_empty()).then_some(value))
    }
    fn show(value: &Option<String>) -> String {
        value.clone().unwrap_or_else(|| SERVER_DEFAULT.to_owned())
    }
    fn json(value: &Option<String>) -> Json {
        Json::String(value.clone().unwrap_or_default())
    }
    fn check(value: &Option<String>) -> Option<String> {
        value
            .as_ref()
            .filter(|v| v.chars().any(char::is_control))
            .map(|_| Self::ACCEPTED.to_owned())
    }
    fn server_value(value: &Option<String>) -> Option<String> {
        value.clone()
    }
}

/// An optional server session flag; `""` leaves the server's.
pub(crate) struct SessionFlag;

impl Kind for SessionFlag {
    type Value = Option<bool>;
    const ACCEPTED: &'static str = "true or false; \"\" leaves the server's (or the role's)";
    fn parse(value: &Value) -> Result<Option<bool>, String> {
        match value {
            Value::String(_, s) if s.trim().is_empty() => Ok(None),
            _ => boolean(value)
                .map(Some)
                .map_err(|_| Self::ACCEPTED.to_owned()),
        }
    }
    fn show(value: &Option<bool>) -> String {
        value.map_or_else(|| SERVER_DEFAULT.to_owned(), |b| b.to_string())
    }
    fn json(value: &Option<bool>) -> Json {
        value.map_or_else(|| Json::from(""), Json::Bool)
    }
    fn server_value(value: &Option<bool>) -> Option<String> {
        value.map(|b| if b { "on" } else { "off" }.to_owned())
    }
}

/// The isolation level new transactions start with (`default_transaction_isolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum TransactionIsolation {
    /// `read committed`, PostgreSQL's default.
    #[serde(rename = "read committed")]
    ReadCommitted,
    /// `repeatable read`.
    #[serde(rename = "repeatable read")]
    RepeatableRead,
    /// `serializable`.
    #[serde(rename = "serializable")]
    Serializable,
}

impl TransactionIsolation {
    /// The level as PostgreSQL spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            TransactionIsolation::ReadCommitted => "read committed",
            TransactionIsolation::RepeatableRead => "repeatable read",
            TransactionIsolation::Serializable => "serializable",
        }
    }
}

impl fmt::Display for TransactionIsolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TransactionIsolation {
    type Err = String;

    /// Parses a level as PostgreSQL spells it (case and `_`/`-` for the space ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let normal = s.trim().to_ascii_lowercase().replace(['_', '-'], " ");
        [
            TransactionIsolation::ReadCommitted,
            TransactionIsolation::RepeatableRead,
            TransactionIsolation::Serializable,
        ]
        .into_iter()
        .find(|level| level.as_str() == normal)
        .ok_or_else(|| Isolation::ACCEPTED.to_owned())
    }
}

/// An optional isolation level; `""` leaves the server's.
pub(crate) struct Isolation;

impl Kind for Isolation {
    type Value = Option<TransactionIsolation>;
    const ACCEPTED: &'static str = "read committed, repeatable read or serializable; \"\" leaves \
         the server's (or the role's)";
    fn parse(value: &Value) -> Result<Option<TransactionIsolation>, String> {
        let value = text(value).map_err(|_| Self::ACCEPTED.to_owned())?;
        if value.trim().is_empty() {
            return Ok(None);
        }
        value.parse().map(Some)
    }
    fn show(value: &Option<TransactionIsolation>) -> String {
        value.map_or_else(|| SERVER_DEFAULT.to_owned(), |l| l.to_string())
    }
    fn json(value: &Option<TransactionIsolation>) -> Json {
        Json::String(value.map(|l| l.to_string()).unwrap_or_default())
    }
    fn server_value(value: &Option<TransactionIsolation>) -> Option<String> {
        value.map(|l| l.to_string())
    }
}

/// Defines `PoolSettings` from one table: per setting its doc, field, type and kind, default
/// per profile, where it applies and what it maps onto. Generates the struct, `KEYS`,
/// `SETTINGS`, `for_profile`, and the per-key parse, check, show, JSON and server-parameter
/// functions everything else is driven from.
macro_rules! define_settings {
    (
        $(#[$meta:meta])*
        pub struct $name:ident |$profile:ident| {
            $(
                #[doc = $doc:literal]
                $(#[doc = $more:literal])*
                $field:ident: $ty:ty as $kind:ty = $default:expr,
                    $applies:ident, $maps_to:literal;
            )*
        }
        extra { $($(#[doc = $xdoc:literal])* $xfield:ident: $xty:ty = $xdefault:expr,)* }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $(
                #[doc = $doc]
                $(#[doc = $more])*
                pub $field: $ty,
            )*
            $($(#[doc = $xdoc])* pub $xfield: $xty,)*
        }

        impl $name {
            /// The setting names in documentation order, the same in TOML, the environment
            /// and Rust.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Every setting's definition, in documentation order.
            pub const SETTINGS: &'static [$crate::setting::Setting] = &[$(
                $crate::setting::Setting {
                    key: stringify!($field),
                    doc: concat!($doc $(, "\n", $more)*),
                    accepted: <$kind as $crate::setting::Kind>::ACCEPTED,
                    applies: $crate::setting::Applies::$applies,
                    maps_to: $maps_to,
                }
            ),*];

            /// The built-in defaults of `profile`, which hold with no files and no
            /// environment.
            ///
            /// Staging and production have no connection defaults: `host`, `database`,
            /// `username` and the password are empty, and loading fails until they are
            /// given.
            pub fn for_profile($profile: $crate::Profile) -> Self {
                $name {
                    $($field: $default,)*
                    $($xfield: $xdefault,)*
                }
            }

            /// Sets `key` from `value`: `Ok(false)` when `key` names no setting,
            /// `Err(accepted)` when the value does not fit.
            pub(crate) fn apply_value(
                &mut self,
                key: &str,
                value: &figment::value::Value,
            ) -> Result<bool, String> {
                match key {
                    $(stringify!($field) => {
                        self.$field = <$kind as $crate::setting::Kind>::parse(value)?;
                    })*
                    _ => return Ok(false),
                }
                Ok(true)
            }

            /// Every key whose value is out of its own range, with what is accepted.
            pub(crate) fn range_errors(&self) -> Vec<(&'static str, String)> {
                let mut errors = Vec::new();
                $(
                    if let Some(expected) =
                        <$kind as $crate::setting::Kind>::check(&self.$field)
                    {
                        errors.push((stringify!($field), expected));
                    }
                )*
                errors
            }

            /// The value of a setting as configuration text, or `None` for no such key.
            pub(crate) fn shown(&self, key: &str) -> Option<String> {
                match key {
                    $(stringify!($field) =>
                        Some(<$kind as $crate::setting::Kind>::show(&self.$field)),)*
                    _ => None,
                }
            }

            /// Every setting as (key, JSON value), in documentation order.
            pub(crate) fn json_values(&self) -> Vec<(&'static str, serde_json::Value)> {
                vec![$(
                    (stringify!($field), <$kind as $crate::setting::Kind>::json(&self.$field)),
                )*]
            }

            /// The server parameter of every setting that maps onto one, with the value
            /// set (`None` leaves the server's).
            pub(crate) fn server_values(&self) -> Vec<(&'static str, Option<String>)> {
                let mut values = Vec::new();
                $(
                    if $crate::setting::Applies::$applies == $crate::setting::Applies::Session {
                        values.push((
                            stringify!($field),
                            <$kind as $crate::setting::Kind>::server_value(&self.$field),
                        ));
                    }
                )*
                values
            }
        }
    };
}

pub(crate) use define_settings;
