//! The effective settings of one pool.

use std::path::PathBuf;
use std::time::Duration;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::host_port::split_hosts;
use crate::setting::{
    Bouncer, Connections, Count, Flag, Isolation, Named, OptionalCount, OptionalPath, OptionalSpan,
    Password, PortList, ServerTimeout, SessionFlag, SessionText, Setting, Span, Text,
    TransactionIsolation, Wait, Waiters, define_settings,
};
use crate::settings::NamedPool;
use crate::{
    ConfigErrors, DEFAULT_POOL, HostPort, LoadBalanceHosts, PgBouncerMode, Ports, Profile, Secret,
    Source, SslMode, TargetSessionAttrs,
};

define_settings! {
    /// The effective settings of one named pool: where to connect, how the pool behaves, and
    /// the server session of every connection.
    ///
    /// Every field is defined once, in the table in this file: its type, accepted values,
    /// default per profile, where it applies and what it maps onto
    /// ([`PoolSettings::SETTINGS`]). Parsing, validation, display and serialization follow
    /// from that table.
    ///
    /// `None` in an optional limit means disabled (written `0` or `"off"` in configuration);
    /// `None` in a server session setting leaves the server's (or the role's) value (written
    /// `""`). `Debug` and `Serialize` show the password as `***`. `Serialize` writes durations
    /// as humantime strings (`"30s"`) and disabled limits as `"off"`, so its output reads back
    /// as configuration.
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
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub struct PoolSettings |profile| {
        /// Database server host name or address, or several separated by commas (libpq's
        /// list, e.g. `db-a,db-b`): tried in order (see `load_balance_hosts`) until one answers
        /// and fits `target_session_attrs`.
        /// Default: `localhost` in development and test; none in staging and production, where
        /// pointing at the wrong server must fail loudly (`DB_HOST`).
        host: String as Text = local(profile, "localhost"),
            Connection, "PgConnector: the hosts tried, in order";
        /// Database server port: one for every host, or one per host (`"5432,5433"`).
        /// Default: `5432`, PostgreSQL's port.
        port: Ports as PortList = Ports::from(5432),
            Connection, "PgConnector: the port of each host";
        /// What a server must be for the pool to use it: `any`, `read-write`, `read-only`,
        /// `primary`, `standby` or `prefer-standby`, as in libpq.
        /// Default: `any`: nothing is checked, and connecting costs no extra round trip.
        target_session_attrs: TargetSessionAttrs as Named<TargetSessionAttrs> =
            TargetSessionAttrs::Any,
            Connection, "PgConnector: the check made on each server tried";
        /// Whether the hosts are tried in the order listed (`disable`) or in a random order for
        /// every connection (`random`), as in libpq.
        /// Default: `disable`: the first host that answers and fits takes every connection.
        load_balance_hosts: LoadBalanceHosts as Named<LoadBalanceHosts> =
            LoadBalanceHosts::Disable,
            Connection, "PgConnector: the order the hosts are tried in";
        /// Database name.
        /// Default: `servio` in development and test; none in staging and production (`DB_NAME`).
        database: String as Text = local(profile, "servio"),
            Connection, "PgConnectOptions::database";
        /// User name to log in as.
        /// Default: `postgres` in development and test; none in staging and production
        /// (`DB_USERNAME`).
        username: String as Text = local(profile, "postgres"),
            Connection, "PgConnectOptions::username";
        /// Password; never shown.
        /// Default: empty in development and test (local trust authentication); none in staging
        /// and production (`DB_PASSWORD` or `DB_PASSWORD_FILE`).
        password: Secret as Password = Secret::default(),
            Connection, "PgConnectOptions::password";
        /// File holding the password (a Kubernetes secret, a Vault agent's output), kept as a
        /// path so new connections can use a rotated password; read at load to check it.
        /// Default: none (`DB_PASSWORD_FILE` sets it for every pool).
        password_file: Option<PathBuf> as OptionalPath = None,
            Connection, "PgConnector: the password file re-read when it changes";
        /// Open connections never exceed this.
        /// Default: 10 in development and test, 20 in staging, 50 in production: sized for the
        /// load each environment sees, within a default PostgreSQL's 100 connections.
        max_connections: u32 as Connections = sizes(profile).0,
            Pool, "PoolOptions::max_connections";
        /// The pool keeps at least this many connections open and refills in the background.
        /// Default: 2 in development and test, 5 in staging, 10 in production: warm connections
        /// for the first requests after a quiet period.
        min_connections: u32 as Count = sizes(profile).1,
            Pool, "PoolOptions::min_connections";
        /// Idle connections above `min_connections` close after this; `None` keeps them.
        /// Default: 30 s, long enough to ride out bursts, short enough to give connections back.
        idle_timeout: Option<Duration> as OptionalSpan = Some(Duration::from_secs(30)),
            Pool, "PoolOptions::idle_timeout";
        /// Bound on opening one physical connection (TCP, TLS, authentication).
        /// Default: 2 s: a healthy server on the same network answers in milliseconds.
        connect_timeout: Duration as Wait = Duration::from_secs(2),
            Pool, "PoolOptions::connect_timeout";
        /// Bound on the whole `acquire()`, waiting for a free connection included.
        /// Default: 10 s: callers get an error rather than hanging when the pool is exhausted.
        acquire_timeout: Duration as Wait = Duration::from_secs(10),
            Pool, "PoolOptions::acquire_timeout";
        /// A connection is closed on release after a random 90–100 % of this many checkouts
        /// (exactly this many below 10), so connections opened together do not reconnect
        /// together; `None` never.
        /// Default: 7500, which bounds server-side memory growth of long-lived backends.
        max_uses: Option<u64> as OptionalCount = Some(7500),
            Pool, "PoolOptions::max_uses";
        /// A connection is retired after this age (less its share of `lifetime_jitter`, never
        /// mid-use); `None` never.
        /// Default: 30 min, so connections follow DNS changes and failovers.
        max_lifetime: Option<Duration> as OptionalSpan = Some(Duration::from_secs(30 * 60)),
            Pool, "PoolOptions::max_lifetime";
        /// Up to this much random age is taken off each connection's `max_lifetime` (a fresh
        /// share per connection, so it retires between `max_lifetime − lifetime_jitter` and
        /// `max_lifetime`). Must be below `max_lifetime`.
        /// Default: 30 s, so connections opened together do not all reconnect together.
        lifetime_jitter: Duration as Span = Duration::from_secs(30),
            Pool, "PoolOptions::lifetime_jitter";
        /// PostgreSQL `statement_timeout` set for every connection; `None` leaves the server's.
        /// Default: 30 s, so a runaway statement cannot hold a connection forever.
        statement_timeout: Option<Duration> as ServerTimeout = Some(Duration::from_secs(30)),
            Session, "server parameter statement_timeout (PgConnector)";
        /// Client-side deadline for one unit of work; when hit, the connection is discarded and
        /// its server-side work cancelled. `None` disables it.
        /// Default: 30 s, matching `statement_timeout` (equal is fine: the server cancels first).
        query_timeout: Option<Duration> as OptionalSpan = Some(Duration::from_secs(30)),
            Pool, "PoolOptions::query_timeout";
        /// TLS negotiation mode; see [`SslMode`] for exactly what each mode checks. `require`
        /// with [`ssl_root_cert`](Self::ssl_root_cert) verifies the certificate as `verify-ca`,
        /// as libpq does ([`effective_ssl_mode`](Self::effective_ssl_mode)).
        /// Default: `verify-full` in staging and production, where the password crosses networks
        /// others share; `prefer` (libpq's default: TLS when the server offers it, verifying
        /// nothing) in development and test, where the server is usually local. Staging and
        /// production lint any mode below `verify-ca`.
        ssl_mode: SslMode as Named<SslMode> = if profile.requires_connection() {
            SslMode::VerifyFull
        } else {
            SslMode::Prefer
        },
            Connection, "PgConnectOptions::ssl_mode";
        /// PEM file of root certificates to trust, in addition to the Mozilla roots compiled into
        /// the binary, when the mode verifies (`verify-ca`, `verify-full`, and `require` with this
        /// set). Needed for a server whose certificate comes from a private authority.
        /// Default: none: only the compiled-in Mozilla roots (the operating system's store is
        /// not read).
        ssl_root_cert: Option<PathBuf> as OptionalPath = None,
            Connection, "PgConnectOptions::ssl_root_cert";
        /// `application_name` reported to the server (visible in `pg_stat_activity`).
        /// Default: `servio-pool`, so operators can tell the pool's sessions apart.
        application_name: String as Text = "servio-pool".to_owned(),
            Connection, "server parameter application_name (PgConnectOptions::application_name)";
        /// A connection idle longer than this is checked with a round trip before it is handed
        /// out; `None` never checks.
        /// Default: 5 s: a connection used moments ago is trusted, an older one is verified.
        validate_after_idle: Option<Duration> as OptionalSpan = Some(Duration::from_secs(5)),
            Pool, "PoolOptions::validate_after_idle";
        /// Idle connections are pinged this often so firewalls and NATs keep them; `None` never.
        /// Default: 120 s, below common idle cut-offs of network middleboxes.
        keepalive_interval: Option<Duration> as OptionalSpan = Some(Duration::from_secs(120)),
            Pool, "PoolOptions::keepalive_interval";
        /// A connection checked out longer than this is reported with the caller's location;
        /// `None` disables leak detection.
        /// Default: off: long checkouts can be legitimate, so reporting them is opt-in.
        leak_detection_threshold: Option<Duration> as OptionalSpan = None,
            Pool, "PoolOptions::leak_detection_threshold";
        /// Callers allowed to wait for a connection at once; more fail at once. `Some(0)` never
        /// waits (fail fast when no connection is free); `None` (`"off"` or `"unbounded"`) is
        /// unbounded.
        /// Default: unbounded: `acquire_timeout` already bounds every wait.
        max_waiters: Option<u32> as Waiters = None,
            Pool, "PoolOptions::max_waiters";
        /// The PgBouncer pool mode in front of the server; `None` when connecting directly.
        /// Default: off.
        pgbouncer: Option<PgBouncerMode> as Bouncer = None,
            Connection, "PgConnector: no startup options, no statement cache in transaction mode";
        /// Reset session state (`DISCARD ALL`) on every release; costs a round trip.
        /// Default: false: only transactions begun through the driver are cleaned up.
        reset_on_release: bool as Flag = false,
            Pool, "PoolOptions::reset_on_release";
        /// Check that the server accepts writes on connect (not a read-only replica); not
        /// with a `target_session_attrs` that asks for a read-only server.
        /// Default: false.
        check_writable: bool as Flag = false,
            Connection, "PoolOptions::check_writable and PgConnector (checked on connect)";
        /// Server `search_path` of every connection (`"app, public"`); `None` leaves the
        /// server's (or the role's).
        /// Default: the server's.
        search_path: Option<String> as SessionText = None,
            Session, "server parameter search_path";
        /// Server `lock_timeout`: a statement waiting longer for a lock fails; `None` leaves the
        /// server's.
        /// Default: the server's (no limit): set it below `statement_timeout`.
        lock_timeout: Option<Duration> as ServerTimeout = None,
            Session, "server parameter lock_timeout";
        /// Server `idle_in_transaction_session_timeout`: a session idle inside a transaction
        /// longer than this is ended by the server; `None` leaves the server's.
        /// Default: 60 s in production, so a forgotten transaction cannot hold locks for long;
        /// the server's elsewhere.
        idle_in_transaction_session_timeout: Option<Duration> as ServerTimeout =
            (profile == Profile::Production).then_some(Duration::from_secs(60)),
            Session, "server parameter idle_in_transaction_session_timeout";
        /// Server `default_transaction_isolation`: `read committed`, `repeatable read` or
        /// `serializable`; `None` leaves the server's.
        /// Default: the server's (`read committed` unless changed).
        default_transaction_isolation: Option<TransactionIsolation> as Isolation = None,
            Session, "server parameter default_transaction_isolation";
        /// Server `default_transaction_read_only`: whether transactions start read-only;
        /// `None` leaves the server's.
        /// Default: the server's (`false` unless changed).
        default_transaction_read_only: Option<bool> as SessionFlag = None,
            Session, "server parameter default_transaction_read_only";
        /// Server `TimeZone` of every connection (`"UTC"`, `"Europe/Paris"`): how `timestamptz`
        /// values are shown as text; `None` keeps the driver's `UTC`.
        /// Default: the driver's `UTC`.
        timezone: Option<String> as SessionText = None,
            Session, "server parameter TimeZone";
    }
    extra {
        /// Further server parameters set on every connection (`[session]`, or
        /// `[pools.<name>.session]` for one pool), by name: `work_mem = "64MB"`. Names are
        /// identifiers; parameters the driver relies on and those with their own key are
        /// refused.
        session: BTreeMap<String, String> = BTreeMap::new(),
    }
}

/// `(max_connections, min_connections)` of `profile`.
fn sizes(profile: Profile) -> (u32, u32) {
    match profile {
        Profile::Development | Profile::Test => (10, 2),
        Profile::Staging => (20, 5),
        Profile::Production => (50, 10),
    }
}

/// A connection default that only development and test have.
fn local(profile: Profile, value: &str) -> String {
    if profile.requires_connection() {
        String::new()
    } else {
        value.to_owned()
    }
}

impl PoolSettings {
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
            session_sources: self
                .session
                .keys()
                .map(|name| (name.clone(), (Source::Code, false)))
                .collect(),
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
        let transaction = self.pgbouncer == Some(PgBouncerMode::Transaction);
        (transaction && self.session_keys_set().iter().any(|k| k == key)).then_some(
            "not in effect behind PgBouncer in transaction mode, which cannot carry a \
             session setting from one transaction to the next: set it on the role instead \
             (ALTER ROLE … SET …), or use session mode",
        )
    }

    /// The effective value of setting `key` as configuration text (`"30s"`, `"off"`, `"***"`
    /// for the password, `"(server's)"` for a session setting left to the server), or
    /// `None` when `key` is not a setting name. `session` shows the free server parameters
    /// (`work_mem=64MB, …`), `session.<name>` one of them.
    pub fn display_value(&self, key: &str) -> Option<String> {
        if key == SESSION {
            return Some(if self.session.is_empty() {
                "none".to_owned()
            } else {
                self.session
                    .iter()
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
        }
        if let Some(name) = key.strip_prefix("session.") {
            return self.session.get(name).cloned();
        }
        self.shown(key)
    }

    /// The settings table of the pool-config README, generated from the definitions
    /// ([`SETTINGS`](Self::SETTINGS)): key, default per profile, accepted values, where it
    /// applies, and what it does.
    pub fn reference_table() -> String {
        let mut out = String::from(
            "| key | default | accepted | applies to | what it does |\n|---|---|---|---|---|\n",
        );
        for setting in Self::SETTINGS {
            let cell = |text: &str| text.replace('|', "\\|");
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                setting.key,
                cell(&default_by_profile(setting.key)),
                cell(setting.accepted),
                setting.applies,
                cell(&setting.summary()),
            );
        }
        out
    }

    /// Every key this pool shows: [`KEYS`](Self::KEYS) in documentation order, then
    /// `session.<name>` for each free server parameter.
    pub fn shown_keys(&self) -> Vec<String> {
        Self::KEYS
            .iter()
            .map(|key| (*key).to_owned())
            .chain(self.session.keys().map(|name| format!("session.{name}")))
            .collect()
    }

    /// The server parameters to set on every connection, as (name, value): the session
    /// settings that are set (`search_path`, `lock_timeout`,
    /// `idle_in_transaction_session_timeout`, `default_transaction_isolation`,
    /// `default_transaction_read_only`, `timezone` as `TimeZone`) then the free `[session]`
    /// map, by name. Durations are whole milliseconds (`"60000ms"`), flags `on`/`off`.
    /// `statement_timeout` is not among them: it keeps its own field.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_config::{PoolSettings, Profile};
    ///
    /// let mut settings = PoolSettings::for_profile(Profile::Production);
    /// settings.search_path = Some("app, public".to_owned());
    /// settings.session.insert("work_mem".to_owned(), "64MB".to_owned());
    /// assert_eq!(
    ///     settings.session_parameters(),
    ///     [
    ///         ("search_path".to_owned(), "app, public".to_owned()),
    ///         ("idle_in_transaction_session_timeout".to_owned(), "60000ms".to_owned()),
    ///         ("work_mem".to_owned(), "64MB".to_owned()),
    ///     ]
    /// );
    /// ```
    pub fn session_parameters(&self) -> Vec<(String, String)> {
        self.server_values()
            .into_iter()
            .filter(|(key, _)| *key != "statement_timeout")
            .filter_map(|(key, value)| Some((server_parameter(key).to_owned(), value?)))
            .chain(
                self.session
                    .iter()
                    .map(|(name, value)| (name.clone(), value.clone())),
            )
            .collect()
    }

    /// The keys of the server session settings (`statement_timeout` and those of
    /// [`session_parameters`](Self::session_parameters)) that are set, then `session.<name>`
    /// for each free parameter: what a pool asks of every server session.
    pub fn session_keys_set(&self) -> Vec<String> {
        self.server_values()
            .into_iter()
            .filter(|(_, value)| value.is_some())
            .map(|(key, _)| key.to_owned())
            .chain(self.session.keys().map(|name| format!("session.{name}")))
            .collect()
    }
}

/// The built-in default of `key` in every profile, profiles with the same value together.
fn default_by_profile(key: &str) -> String {
    let mut groups: Vec<(String, Vec<Profile>)> = Vec::new();
    for profile in Profile::ALL {
        let shown = PoolSettings::for_profile(profile)
            .display_value(key)
            .unwrap_or_default();
        let shown = if shown.is_empty() {
            "none".to_owned()
        } else {
            format!("`{shown}`")
        };
        match groups.iter_mut().find(|(value, _)| *value == shown) {
            Some((_, profiles)) => profiles.push(profile),
            None => groups.push((shown, vec![profile])),
        }
    }
    if let [(value, _)] = groups.as_slice() {
        return value.clone();
    }
    groups
        .iter()
        .map(|(value, profiles)| {
            let names: Vec<String> = profiles.iter().map(ToString::to_string).collect();
            format!("{value} ({})", names.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The key of the free map of server parameters.
pub(crate) const SESSION: &str = "session";

/// The server parameter a session key sets, as its definition names it.
fn server_parameter(key: &str) -> &str {
    PoolSettings::SETTINGS
        .iter()
        .find(|s| s.key == key)
        .and_then(Setting::server_parameter)
        .unwrap_or(key)
}

impl Serialize for PoolSettings {
    /// Every setting by key, in documentation order, then `session`; reads back as
    /// configuration.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let values = self.json_values();
        let mut map = serializer.serialize_map(Some(values.len() + 1))?;
        for (key, value) in &values {
            map.serialize_entry(key, value)?;
        }
        map.serialize_entry(SESSION, &self.session)?;
        map.end()
    }
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
