//! Best-practice findings (warn and info) about effective settings.
//!
//! Errors belong to validation; these are the judgement calls of the best-practice bounds
//! table in the design: each finding says why and where the advice comes from.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::setting::show_duration;
use crate::{PgBouncerMode, PoolSettings, Profile, SslMode, TargetSessionAttrs};

const HIKARI_SIZING: &str = "https://github.com/brettwooldridge/HikariCP/wiki/About-Pool-Sizing";
const HIKARI_CONFIG: &str =
    "https://github.com/brettwooldridge/HikariCP#gear-configuration-knobs-baby";
const NODE_PG_POOLING: &str = "https://node-postgres.com/features/pooling";
const PG_CLIENT_CONFIG: &str =
    "https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-STATEMENT-TIMEOUT";
const PG_IDLE_IN_TRANSACTION: &str = "https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-IDLE-IN-TRANSACTION-SESSION-TIMEOUT";
const PG_LOCK_TIMEOUT: &str =
    "https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-LOCK-TIMEOUT";
const PGBOUNCER_CONFIG: &str = "https://www.pgbouncer.org/config.html#query_wait_timeout";
const PGBOUNCER_FEATURES: &str = "https://www.pgbouncer.org/features.html";
const LIBPQ_SSL: &str =
    "https://www.postgresql.org/docs/current/libpq-ssl.html#LIBPQ-SSL-SSLMODE-STATEMENTS";
const LIBPQ_MULTI_HOST: &str =
    "https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-MULTIPLE-HOSTS";
const SERVIO_GUIDE: &str = "servio-pool guidelines: pool size and timeouts (pool-config README)";

/// Facts about the deployment that some findings need; `poolctl check` reads them live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LintContext {
    /// How many service instances run this configuration at once.
    pub instances: Option<u32>,
    /// The server's `max_connections`.
    pub server_max_connections: Option<u32>,
    /// Connections the server keeps for others (superusers, replication, maintenance).
    /// Default: 3, PostgreSQL's `superuser_reserved_connections`.
    pub reserved_connections: u32,
}

impl Default for LintContext {
    fn default() -> Self {
        LintContext {
            instances: None,
            server_max_connections: None,
            reserved_connections: 3,
        }
    }
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Level {
    /// Worth knowing; often deliberate.
    Info,
    /// Probably a mistake; `poolctl config --check --deny-warnings` fails on it.
    Warn,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Info => "info",
            Level::Warn => "warn",
        })
    }
}

/// One best-practice finding about one pool's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Finding {
    /// How serious it is.
    pub level: Level,
    /// The pool (or pools, comma separated, for findings about a shared server).
    pub pool: String,
    /// The setting concerned.
    pub key: String,
    /// The effective value, as configuration text.
    pub value: String,
    /// What is wrong and what to do.
    pub message: String,
    /// Where the advice comes from.
    pub reference: &'static str,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: pool `{}`: {} = {}: {} (see {})",
            self.level, self.pool, self.key, self.value, self.message, self.reference
        )
    }
}

/// Collects the findings about one pool.
struct Lints<'a> {
    pool: &'a str,
    settings: &'a PoolSettings,
    findings: Vec<Finding>,
}

impl Lints<'_> {
    fn add(&mut self, level: Level, key: &str, message: String, reference: &'static str) {
        self.findings.push(Finding {
            level,
            pool: self.pool.to_owned(),
            key: key.to_owned(),
            value: self.settings.display_value(key).unwrap_or_default(),
            message,
            reference,
        });
    }
}

/// The findings about every pool of one profile, in pool order.
pub(crate) fn lint<'a>(
    profile: Profile,
    pools: impl Iterator<Item = (&'a str, &'a PoolSettings)> + Clone,
    context: &LintContext,
) -> Vec<Finding> {
    let mut findings: Vec<Finding> = pools
        .clone()
        .flat_map(|(name, settings)| lint_pool(profile, name, settings))
        .collect();
    findings.extend(server_budget(pools, context));
    findings
}

fn lint_pool(profile: Profile, pool: &str, s: &PoolSettings) -> Vec<Finding> {
    let mut l = Lints {
        pool,
        settings: s,
        findings: Vec::new(),
    };
    pool_size(&mut l, profile);
    tls(&mut l, profile);
    timeouts(&mut l);
    session(&mut l, profile);
    lifetimes(&mut l);
    if s.target_session_attrs != TargetSessionAttrs::Any && s.hosts().is_ok_and(|h| h.len() < 2) {
        l.add(
            Level::Warn,
            "target_session_attrs",
            "with one host there is nowhere else to go: a server that does not fit fails \
             every connect; list the servers of the cluster in host (host = \"db-a,db-b\")"
                .to_owned(),
            LIBPQ_MULTI_HOST,
        );
    }
    if s.pgbouncer == Some(PgBouncerMode::Transaction) {
        l.add(
            Level::Info,
            "pgbouncer",
            "in transaction mode, statements outside an explicit transaction may be parsed on \
             one server connection and run on another, and sqlx leaves each named statement \
             on the server connection it used: use raw_sql, or explicit transactions whose \
             queries are .persistent(false), or PgBouncer 1.21+ with max_prepared_statements"
                .to_owned(),
            PGBOUNCER_FEATURES,
        );
    }
    l.findings
}

fn pool_size(l: &mut Lints<'_>, profile: Profile) {
    let max = l.settings.max_connections;
    if max <= 5 {
        let level = match profile {
            Profile::Development | Profile::Test => Level::Info,
            Profile::Staging | Profile::Production => Level::Warn,
        };
        l.add(
            level,
            "max_connections",
            "too small: a few concurrent requests already queue for a connection; size the \
             pool from the expected number of concurrent queries"
                .to_owned(),
            SERVIO_GUIDE,
        );
    } else if max >= 1000 {
        l.add(
            Level::Warn,
            "max_connections",
            "too large: PostgreSQL runs one process per connection and slows down long before \
             this many are busy; a pool near (cores × 2) + disks is usually fastest, and \
             PgBouncer serves many clients with few connections"
                .to_owned(),
            HIKARI_SIZING,
        );
    }
}

/// Outside development and test, a connection that does not verify the server gives its
/// password to whoever sits on the path.
fn tls(l: &mut Lints<'_>, profile: Profile) {
    if !matches!(profile, Profile::Staging | Profile::Production) {
        return;
    }
    let s = l.settings;
    let mode = s.effective_ssl_mode();
    if !mode.verifies() {
        let what = match mode {
            SslMode::Disable => {
                "no TLS: the password and every query cross the network in \
                                 plain text"
            }
            SslMode::Prefer => {
                "TLS only if the server offers it, and the certificate is not \
                                checked: an on-path attacker can refuse TLS or pose as the \
                                server"
            }
            _ => {
                "encrypted, but the certificate is not checked: an on-path attacker can pose \
                  as the server"
            }
        };
        l.add(
            Level::Warn,
            "ssl_mode",
            format!(
                "{what}, and receive the password if it asks for it in clear text: set \
                 ssl_mode = \"verify-full\" (DATABASE_URL ?sslmode=verify-full), with \
                 ssl_root_cert = \"/path/to/root.crt\" when the server's certificate comes \
                 from a private authority"
            ),
            LIBPQ_SSL,
        );
    } else if mode == SslMode::VerifyCa && s.ssl_root_cert.is_none() {
        l.add(
            Level::Warn,
            "ssl_mode",
            "verify-ca against the public roots accepts any certificate a public authority \
             issued to anyone, without checking the host name: set ssl_mode = \"verify-full\", \
             or ssl_root_cert to the private authority that signs the server's certificate"
                .to_owned(),
            LIBPQ_SSL,
        );
    }
}

fn timeouts(l: &mut Lints<'_>) {
    let s = l.settings;
    if s.connect_timeout >= Duration::from_secs(60) {
        l.add(
            Level::Warn,
            "connect_timeout",
            "too long: a server that does not answer holds a slot and the caller this long; a \
             healthy server connects in milliseconds"
                .to_owned(),
            SERVIO_GUIDE,
        );
    }
    if s.acquire_timeout <= Duration::from_secs(1) {
        l.add(
            Level::Warn,
            "acquire_timeout",
            "too short: a brief burst makes callers fail instead of waiting their turn".to_owned(),
            SERVIO_GUIDE,
        );
    } else if s.acquire_timeout >= Duration::from_secs(120) {
        l.add(
            Level::Warn,
            "acquire_timeout",
            "too long: callers hang instead of failing when the pool is exhausted, and \
             PgBouncer's query_wait_timeout (120s) fires first"
                .to_owned(),
            PGBOUNCER_CONFIG,
        );
    }
    for key in ["statement_timeout", "query_timeout"] {
        let value = if key == "statement_timeout" {
            s.statement_timeout
        } else {
            s.query_timeout
        };
        match value {
            None if key == "statement_timeout"
                && s.pgbouncer == Some(PgBouncerMode::Transaction) =>
            {
                l.add(
                    Level::Info,
                    key,
                    "off behind PgBouncer in transaction mode: set it on the role instead \
                     (ALTER ROLE … SET statement_timeout = '30s')"
                        .to_owned(),
                    PG_CLIENT_CONFIG,
                )
            }
            None => l.add(
                Level::Warn,
                key,
                "disabled: a runaway query can hold a connection forever".to_owned(),
                PG_CLIENT_CONFIG,
            ),
            Some(d) if d <= Duration::from_secs(1) => l.add(
                Level::Warn,
                key,
                "too short: ordinary queries under load get cancelled".to_owned(),
                SERVIO_GUIDE,
            ),
            Some(d) if d >= Duration::from_secs(300) => l.add(
                Level::Warn,
                key,
                "too long: a runaway query holds its connection for minutes".to_owned(),
                SERVIO_GUIDE,
            ),
            Some(_) => {}
        }
    }
    if let (Some(query), Some(statement)) = (s.query_timeout, s.statement_timeout)
        && query < statement
    {
        l.add(
            Level::Info,
            "query_timeout",
            format!(
                "below statement_timeout ({}): the client deadline fires first, so the \
                 connection is discarded rather than the statement cancelled by the server; \
                 equal is fine (the server's cancel comes first, the connection is kept)",
                show_duration(statement)
            ),
            PG_CLIENT_CONFIG,
        );
    }
}

/// The server session settings that guard production against forgotten transactions and
/// lock queues.
fn session(l: &mut Lints<'_>, profile: Profile) {
    let s = l.settings;
    if profile == Profile::Production && s.idle_in_transaction_session_timeout.is_none() {
        let transaction = s.pgbouncer == Some(PgBouncerMode::Transaction);
        l.add(
            if transaction {
                Level::Info
            } else {
                Level::Warn
            },
            "idle_in_transaction_session_timeout",
            if transaction {
                "off behind PgBouncer in transaction mode: set it on the role instead \
                 (ALTER ROLE … SET idle_in_transaction_session_timeout = '60s')"
            } else {
                "off in production: a transaction left open (a crashed handler, a forgotten \
                 commit) holds its locks and its connection until the server ends the session; \
                 set it, e.g. \"60s\""
            }
            .to_owned(),
            PG_IDLE_IN_TRANSACTION,
        );
    }
    if let (Some(lock), Some(statement)) = (s.lock_timeout, s.statement_timeout)
        && lock > statement
    {
        l.add(
            Level::Warn,
            "lock_timeout",
            format!(
                "above statement_timeout ({}): a statement waiting for a lock is cancelled by \
                 statement_timeout first, so lock_timeout never fires; set it below",
                show_duration(statement)
            ),
            PG_LOCK_TIMEOUT,
        );
    }
}

fn lifetimes(l: &mut Lints<'_>) {
    let s = l.settings;
    if let Some(idle) = s.idle_timeout {
        if idle < Duration::from_secs(10) {
            l.add(
                Level::Warn,
                "idle_timeout",
                "too short: connections close between bursts and are reopened at once \
                 (HikariCP refuses less than 10s)"
                    .to_owned(),
                HIKARI_CONFIG,
            );
        } else if idle >= Duration::from_secs(600) {
            l.add(
                Level::Warn,
                "idle_timeout",
                "too long: idle connections hold server memory and slots others could use"
                    .to_owned(),
                SERVIO_GUIDE,
            );
        }
        if let Some(lifetime) = s.max_lifetime
            && idle.saturating_add(Duration::from_secs(1)) > lifetime
        {
            l.add(
                Level::Warn,
                "idle_timeout",
                format!(
                    "not below max_lifetime ({}) by at least 1s: connections retire by age \
                     before they ever count as idle",
                    show_duration(lifetime)
                ),
                HIKARI_CONFIG,
            );
        }
    }
    if let Some(lifetime) = s.max_lifetime
        && lifetime < Duration::from_secs(30)
    {
        l.add(
            Level::Warn,
            "max_lifetime",
            "too short: connections are replaced constantly (HikariCP's minimum is 30s)".to_owned(),
            HIKARI_CONFIG,
        );
    }
    if let Some(keepalive) = s.keepalive_interval {
        if keepalive < Duration::from_secs(30) {
            l.add(
                Level::Warn,
                "keepalive_interval",
                "too short: pings cost round trips; HikariCP's minimum is 30s".to_owned(),
                HIKARI_CONFIG,
            );
        } else if s.max_lifetime.is_some_and(|lifetime| keepalive >= lifetime) {
            l.add(
                Level::Warn,
                "keepalive_interval",
                "not below max_lifetime: connections retire before the first ping".to_owned(),
                HIKARI_CONFIG,
            );
        }
    }
    if let Some(leak) = s.leak_detection_threshold {
        if leak < Duration::from_secs(2) {
            l.add(
                Level::Warn,
                "leak_detection_threshold",
                "too short: ordinary checkouts get reported as leaks (HikariCP's minimum is 2s)"
                    .to_owned(),
                HIKARI_CONFIG,
            );
        } else if s.max_lifetime.is_some_and(|lifetime| leak > lifetime) {
            l.add(
                Level::Warn,
                "leak_detection_threshold",
                "above max_lifetime: a leaked connection is never reported".to_owned(),
                HIKARI_CONFIG,
            );
        }
    }
}

/// The pools on one server and the connections they may open there together.
type Shared<'a> = (Vec<&'a str>, u64);

/// Pools that share a server together must fit in its connection budget.
fn server_budget<'a>(
    pools: impl Iterator<Item = (&'a str, &'a PoolSettings)>,
    context: &LintContext,
) -> Vec<Finding> {
    let Some(server_max) = context.server_max_connections else {
        return Vec::new();
    };
    let instances = u64::from(context.instances.unwrap_or(1));
    let budget = u64::from(server_max.saturating_sub(context.reserved_connections));
    // Keyed by host and ports as written: pools naming the same servers share them.
    let mut servers: BTreeMap<(&str, &[u16]), Shared<'_>> = BTreeMap::new();
    for (name, s) in pools {
        let entry = servers.entry((&s.host, s.port.as_slice())).or_default();
        entry.0.push(name);
        // A pool with a query_timeout opens one more connection, for a moment, to cancel
        // a timed-out query on the server (one at a time per pool).
        let cancels = u64::from(s.query_timeout.is_some());
        entry.1 = entry
            .1
            .saturating_add(u64::from(s.max_connections))
            .saturating_add(cancels);
    }
    servers
        .into_values()
        .filter(|(_, total)| total.saturating_mul(instances) > budget)
        .map(|(names, total)| Finding {
            level: Level::Warn,
            pool: names.join(", "),
            key: "max_connections".to_owned(),
            value: total.to_string(),
            message: format!(
                "{total} per instance (max_connections, plus one per pool with a \
                 query_timeout to cancel timed-out queries) × {instances} instance(s) = {} \
                 connections, above the server's max_connections ({server_max}) minus {} \
                 reserved: lower max_connections or put PgBouncer in front",
                total.saturating_mul(instances),
                context.reserved_connections
            ),
            reference: NODE_PG_POOLING,
        })
        .collect()
}
