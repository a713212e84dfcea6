//! The effective settings of one pool.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::host_port::split_hosts;
use crate::settings::NamedPool;
use crate::{
    ConfigErrors, DEFAULT_POOL, HostPort, LoadBalanceHosts, PgBouncerMode, Ports, Profile, Secret,
    Source, SslMode, TargetSessionAttrs,
};

/// The effective settings of one named pool: where to connect and how the pool behaves.
///
/// `None` in an optional limit means disabled (written `0` or `"off"` in configuration).
/// `Debug` and `Serialize` show the password as `***`. `Serialize` writes durations as
/// humantime strings (`"30s"`) and disabled limits as `"off"`, so its output reads back as
/// configuration.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use pool_config::{PoolSettings, Profile};
///
/// let settings = PoolSettings::for_profile(Profile::Production);
/// assert_eq!((settings.max_connections, settings.min_connections), (50, 10));
/// assert_eq!(settings.acquire_timeout, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolSettings {
    /// Database server host name or address, or several separated by commas (libpq's
    /// list, e.g. `db-a,db-b`): tried in order (see `load_balance_hosts`) until one answers
    /// and fits `target_session_attrs`.
    /// Default: `localhost` in development and test; none in staging and production, where
    /// pointing at the wrong server must fail loudly (`DB_HOST`).
    pub host: String,
    /// Database server port: one for every host, or one per host (`"5432,5433"`).
    /// Default: `5432`, PostgreSQL's port.
    pub port: Ports,
    /// What a server must be for the pool to use it: `any`, `read-write`, `read-only`,
    /// `primary`, `standby` or `prefer-standby`, as in libpq.
    /// Default: `any`: nothing is checked, and connecting costs no extra round trip.
    pub target_session_attrs: TargetSessionAttrs,
    /// Whether the hosts are tried in the order listed (`disable`) or in a random order for
    /// every connection (`random`), as in libpq.
    /// Default: `disable`: the first host that answers and fits takes every connection.
    pub load_balance_hosts: LoadBalanceHosts,
    /// Database name.
    /// Default: `servio` in development and test; none in staging and production (`DB_NAME`).
    pub database: String,
    /// User name to log in as.
    /// Default: `postgres` in development and test; none in staging and production
    /// (`DB_USERNAME`).
    pub username: String,
    /// Password; never shown.
    /// Default: empty in development and test (local trust authentication); none in staging
    /// and production (`DB_PASSWORD` or `DB_PASSWORD_FILE`).
    pub password: Secret,
    /// Open connections never exceed this.
    /// Default: 10 in development and test, 20 in staging, 50 in production: sized for the
    /// load each environment sees, within a default PostgreSQL's 100 connections.
    pub max_connections: u32,
    /// The pool keeps at least this many connections open and refills in the background.
    /// Default: 2 in development and test, 5 in staging, 10 in production: warm connections
    /// for the first requests after a quiet period.
    pub min_connections: u32,
    /// Idle connections above `min_connections` close after this; `None` keeps them.
    /// Default: 30 s, long enough to ride out bursts, short enough to give connections back.
    #[serde(serialize_with = "optional_duration")]
    pub idle_timeout: Option<Duration>,
    /// Bound on opening one physical connection (TCP, TLS, authentication).
    /// Default: 2 s: a healthy server on the same network answers in milliseconds.
    #[serde(serialize_with = "duration")]
    pub connect_timeout: Duration,
    /// Bound on the whole `acquire()`, waiting for a free connection included.
    /// Default: 10 s: callers get an error rather than hanging when the pool is exhausted.
    #[serde(serialize_with = "duration")]
    pub acquire_timeout: Duration,
    /// A connection is closed on release after this many checkouts; `None` never.
    /// Default: 7500, which bounds server-side memory growth of long-lived backends.
    #[serde(serialize_with = "optional_count")]
    pub max_uses: Option<u64>,
    /// A connection is retired after this age (with jitter, never mid-use); `None` never.
    /// Default: 30 min, so connections follow DNS changes and failovers.
    #[serde(serialize_with = "optional_duration")]
    pub max_lifetime: Option<Duration>,
    /// Up to this much random age is taken off each connection's `max_lifetime` (a fresh
    /// share per connection, so it retires between `max_lifetime − lifetime_jitter` and
    /// `max_lifetime`). Must be below `max_lifetime`.
    /// Default: 30 s, so connections opened together do not all reconnect together.
    #[serde(serialize_with = "duration")]
    pub lifetime_jitter: Duration,
    /// PostgreSQL `statement_timeout` set for every connection; `None` leaves the server's.
    /// Default: 30 s, so a runaway statement cannot hold a connection forever.
    #[serde(serialize_with = "optional_duration")]
    pub statement_timeout: Option<Duration>,
    /// Client-side deadline for one unit of work; when hit, the connection is discarded and
    /// its server-side work cancelled. `None` disables it.
    /// Default: 30 s, matching `statement_timeout`.
    #[serde(serialize_with = "optional_duration")]
    pub query_timeout: Option<Duration>,
    /// TLS negotiation mode; see [`SslMode`] for exactly what each mode checks. `require`
    /// with [`ssl_root_cert`](Self::ssl_root_cert) verifies the certificate as `verify-ca`,
    /// as libpq does ([`effective_ssl_mode`](Self::effective_ssl_mode)).
    /// Default: `verify-full` in staging and production, where the password crosses networks
    /// others share; `prefer` (libpq's default: TLS when the server offers it, verifying
    /// nothing) in development and test, where the server is usually local. Staging and
    /// production lint any mode below `verify-ca`.
    pub ssl_mode: SslMode,
    /// PEM file of root certificates to trust, in addition to the Mozilla roots compiled into
    /// the binary, when the mode verifies (`verify-ca`, `verify-full`, and `require` with this
    /// set). Needed for a server whose certificate comes from a private authority.
    /// Default: none: only the compiled-in Mozilla roots (the operating system's store is
    /// not read).
    pub ssl_root_cert: Option<PathBuf>,
    /// `application_name` reported to the server (visible in `pg_stat_activity`).
    /// Default: `servio-pool`, so operators can tell the pool's sessions apart.
    pub application_name: String,
    /// A connection idle longer than this is checked with a round trip before it is handed
    /// out; `None` never checks.
    /// Default: 5 s: a connection used moments ago is trusted, an older one is verified.
    #[serde(serialize_with = "optional_duration")]
    pub validate_after_idle: Option<Duration>,
    /// Idle connections are pinged this often so firewalls and NATs keep them; `None` never.
    /// Default: 120 s, below common idle cut-offs of network middleboxes.
    #[serde(serialize_with = "optional_duration")]
    pub keepalive_interval: Option<Duration>,
    /// A connection checked out longer than this is reported with the caller's location;
    /// `None` disables leak detection.
    /// Default: off: long checkouts can be legitimate, so reporting them is opt-in.
    #[serde(serialize_with = "optional_duration")]
    pub leak_detection_threshold: Option<Duration>,
    /// Callers allowed to wait for a connection at once; more fail at once. `Some(0)` never
    /// waits (fail fast when no connection is free); `None` (`"off"` or `"unbounded"`) is
    /// unbounded.
    /// Default: unbounded: `acquire_timeout` already bounds every wait.
    #[serde(serialize_with = "optional_count")]
    pub max_waiters: Option<u32>,
    /// The PgBouncer pool mode in front of the server; `None` when connecting directly.
    /// Default: off.
    #[serde(serialize_with = "optional_mode")]
    pub pgbouncer: Option<PgBouncerMode>,
    /// Reset session state (`DISCARD ALL`) on every release; costs a round trip.
    /// Default: false: only transactions begun through the driver are cleaned up.
    pub reset_on_release: bool,
    /// Check that the server accepts writes on connect (not a read-only replica).
    /// Default: false.
    pub check_writable: bool,
}

impl PoolSettings {
    /// The setting names in documentation order, the same in TOML, the environment and Rust.
    pub const KEYS: [&'static str; 27] = [
        "host",
        "port",
        "target_session_attrs",
        "load_balance_hosts",
        "database",
        "username",
        "password",
        "max_connections",
        "min_connections",
        "idle_timeout",
        "connect_timeout",
        "acquire_timeout",
        "max_uses",
        "max_lifetime",
        "lifetime_jitter",
        "statement_timeout",
        "query_timeout",
        "ssl_mode",
        "ssl_root_cert",
        "application_name",
        "validate_after_idle",
        "keepalive_interval",
        "leak_detection_threshold",
        "max_waiters",
        "pgbouncer",
        "reset_on_release",
        "check_writable",
    ];

    /// The built-in defaults of `profile`, which hold with no files and no environment.
    ///
    /// Staging and production have no connection defaults: `host`, `database`, `username`
    /// and the password are empty, and loading fails until they are given.
    pub fn for_profile(profile: Profile) -> Self {
        let (max_connections, min_connections) = match profile {
            Profile::Development | Profile::Test => (10, 2),
            Profile::Staging => (20, 5),
            Profile::Production => (50, 10),
        };
        let local = |value: &str| {
            if profile.requires_connection() {
                String::new()
            } else {
                value.to_owned()
            }
        };
        PoolSettings {
            host: local("localhost"),
            port: Ports::from(5432),
            target_session_attrs: TargetSessionAttrs::Any,
            load_balance_hosts: LoadBalanceHosts::Disable,
            database: local("servio"),
            username: local("postgres"),
            password: Secret::default(),
            max_connections,
            min_connections,
            idle_timeout: Some(Duration::from_secs(30)),
            connect_timeout: Duration::from_secs(2),
            acquire_timeout: Duration::from_secs(10),
            max_uses: Some(7500),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            lifetime_jitter: Duration::from_secs(30),
            statement_timeout: Some(Duration::from_secs(30)),
            query_timeout: Some(Duration::from_secs(30)),
            ssl_mode: if profile.requires_connection() {
                SslMode::VerifyFull
            } else {
                SslMode::Prefer
            },
            ssl_root_cert: None,
            application_name: "servio-pool".to_owned(),
            validate_after_idle: Some(Duration::from_secs(5)),
            keepalive_interval: Some(Duration::from_secs(120)),
            leak_detection_threshold: None,
            max_waiters: None,
            pgbouncer: None,
            reset_on_release: false,
            check_writable: false,
        }
    }

    /// Checks the rules every pool must satisfy in `profile` (positive `max_connections`,
    /// `min_connections` not above it, bounded waits of at least 250ms, connection settings
    /// given in staging and production, no `statement_timeout` behind PgBouncer in
    /// transaction mode). [`Loader::load`](crate::Loader::load) already applies them to
    /// loaded settings; this is for settings built in code.
    ///
    /// # Errors
    ///
    /// Every rule broken, at once; each error's source is [`Source::Code`](crate::Source::Code).
    pub fn validate(&self, profile: Profile) -> Result<(), ConfigErrors> {
        let pool = NamedPool {
            name: DEFAULT_POOL.to_owned(),
            settings: self.clone(),
            sources: vec![Source::Code; Self::KEYS.len()],
            own: vec![false; Self::KEYS.len()],
        };
        let mut errors = ConfigErrors::default();
        crate::validate::check_pool(profile, &pool, &mut errors);
        errors.into_result(())
    }

    /// The TLS mode connections enforce: [`ssl_mode`](Self::ssl_mode), except that `require`
    /// with an [`ssl_root_cert`](Self::ssl_root_cert) is `verify-ca`, as in libpq, where a
    /// root certificate upgrades `require` to a verified connection.
    pub fn effective_ssl_mode(&self) -> SslMode {
        match self.ssl_mode {
            SslMode::Require if self.ssl_root_cert.is_some() => SslMode::VerifyCa,
            mode => mode,
        }
    }

    /// The servers of [`host`](Self::host) with their [`port`](Self::port)s, in the order
    /// listed: each host with its own port, or every host with the one port.
    ///
    /// # Errors
    ///
    /// What is wrong when the lists do not pair up (validation reports the same, naming the
    /// sources): an empty entry in a list of hosts, or a number of ports that is neither one
    /// nor the number of hosts.
    pub fn hosts(&self) -> Result<Vec<HostPort>, String> {
        let hosts = split_hosts(&self.host);
        if hosts.len() > 1 && hosts.iter().any(|h| h.is_empty()) {
            return Err(format!(
                "host names separated by commas, none of them empty (got {:?})",
                self.host
            ));
        }
        let ports = self.port.as_slice().len();
        if ports != 1 && ports != hosts.len() {
            return Err(format!(
                "one port for every host, or one per host: {} hosts but {ports} ports",
                hosts.len()
            ));
        }
        Ok(hosts
            .iter()
            .enumerate()
            .map(|(i, host)| HostPort {
                host: (*host).to_owned(),
                port: self.port.for_host(i),
            })
            .collect())
    }

    /// Why setting `key`, though set, does not take effect on connections, or `None` when it
    /// does (or is off). Behind PgBouncer in transaction mode a server session setting such
    /// as `statement_timeout` cannot apply: PgBouncer refuses it as a startup option, and a
    /// `SET` would stay on a server connection that other clients' transactions share.
    /// Validation refuses such a configuration; `poolctl config` shows the reason beside
    /// the value.
    pub fn not_in_effect(&self, key: &str) -> Option<&'static str> {
        let set = match key {
            "statement_timeout" => self.statement_timeout.is_some(),
            _ => false,
        };
        (set && self.pgbouncer == Some(PgBouncerMode::Transaction)).then_some(
            "not in effect behind PgBouncer in transaction mode, which cannot carry a \
             session setting from one transaction to the next: set it on the role instead \
             (ALTER ROLE … SET …)",
        )
    }

    /// The effective value of setting `key` as configuration text (`"30s"`, `"off"`, `"***"`
    /// for the password), or `None` when `key` is not a setting name.
    pub fn display_value(&self, key: &str) -> Option<String> {
        let value = match key {
            "host" => self.host.clone(),
            "port" => self.port.to_string(),
            "target_session_attrs" => self.target_session_attrs.to_string(),
            "load_balance_hosts" => self.load_balance_hosts.to_string(),
            "database" => self.database.clone(),
            "username" => self.username.clone(),
            "password" => self.password.to_string(),
            "max_connections" => self.max_connections.to_string(),
            "min_connections" => self.min_connections.to_string(),
            "idle_timeout" => show_optional_duration(self.idle_timeout),
            "connect_timeout" => show_duration(self.connect_timeout),
            "acquire_timeout" => show_duration(self.acquire_timeout),
            "max_uses" => show_optional(self.max_uses),
            "max_lifetime" => show_optional_duration(self.max_lifetime),
            "lifetime_jitter" => show_duration(self.lifetime_jitter),
            "statement_timeout" => show_optional_duration(self.statement_timeout),
            "query_timeout" => show_optional_duration(self.query_timeout),
            "ssl_mode" => self.ssl_mode.to_string(),
            "ssl_root_cert" => self
                .ssl_root_cert
                .as_ref()
                .map_or_else(|| OFF.to_owned(), |p| p.display().to_string()),
            "application_name" => self.application_name.clone(),
            "validate_after_idle" => show_optional_duration(self.validate_after_idle),
            "keepalive_interval" => show_optional_duration(self.keepalive_interval),
            "leak_detection_threshold" => show_optional_duration(self.leak_detection_threshold),
            "max_waiters" => show_optional(self.max_waiters),
            "pgbouncer" => show_optional(self.pgbouncer),
            "reset_on_release" => self.reset_on_release.to_string(),
            "check_writable" => self.check_writable.to_string(),
            _ => return None,
        };
        Some(value)
    }
}

/// How a disabled limit is written and shown.
pub(crate) const OFF: &str = "off";

/// A duration as configuration text: `30s`, `30m`, `1h 30m`.
pub(crate) fn show_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

fn show_optional_duration(duration: Option<Duration>) -> String {
    duration.map_or_else(|| OFF.to_owned(), show_duration)
}

fn show_optional<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| OFF.to_owned(), |v| v.to_string())
}

fn duration<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&show_duration(*value))
}

fn optional_duration<S: Serializer>(
    value: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&show_optional_duration(*value))
}

fn optional_count<S: Serializer, T: Serialize>(
    value: &Option<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(count) => count.serialize(serializer),
        None => serializer.serialize_str(OFF),
    }
}

fn optional_mode<S: Serializer>(
    value: &Option<PgBouncerMode>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&show_optional(*value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_carry_the_documented_pool_sizes() {
        let sizes = Profile::ALL.map(|p| {
            let s = PoolSettings::for_profile(p);
            (s.max_connections, s.min_connections)
        });
        assert_eq!(sizes, [(10, 2), (20, 5), (50, 10), (10, 2)]);
    }

    #[test]
    fn staging_and_production_have_no_connection_defaults() {
        for profile in [Profile::Staging, Profile::Production] {
            let s = PoolSettings::for_profile(profile);
            assert!(s.host.is_empty() && s.database.is_empty() && s.username.is_empty());
        }
        let dev = PoolSettings::for_profile(Profile::Development);
        assert_eq!(
            (
                dev.host.as_str(),
                dev.port.as_slice(),
                dev.database.as_str(),
                dev.username.as_str()
            ),
            ("localhost", &[5432][..], "servio", "postgres")
        );
    }

    #[test]
    fn every_key_has_a_display_value() {
        let s = PoolSettings::for_profile(Profile::Development);
        for key in PoolSettings::KEYS {
            assert!(s.display_value(key).is_some(), "{key}");
        }
        assert_eq!(s.display_value("idle_timeout").unwrap(), "30s");
        assert_eq!(s.display_value("max_lifetime").unwrap(), "30m");
        assert_eq!(s.display_value("leak_detection_threshold").unwrap(), "off");
        assert_eq!(s.display_value("nope"), None);
    }

    #[test]
    fn serialize_masks_the_password_and_writes_readable_durations() {
        let mut s = PoolSettings::for_profile(Profile::Development);
        s.password = Secret::new("pa55-w0rd");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["password"], "***");
        assert_eq!(json["connect_timeout"], "2s");
        assert_eq!(json["max_uses"], 7500);
        assert_eq!(json["max_waiters"], "off");
        assert!(!format!("{s:?}").contains("pa55-w0rd"));
    }
}
