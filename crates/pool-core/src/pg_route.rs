//! # Implementation details
//!
//! Which server a new PostgreSQL connection goes to, when the settings list several hosts
//! or ask for a kind of server (`target_session_attrs`), as libpq chooses: the hosts in
//! order (or shuffled, with `load_balance_hosts = random`), each try bounded by
//! `connect_timeout`, a server that does not fit closed and skipped. `prefer-standby` keeps
//! the first primary it meets while it looks further for a standby, so the fallback costs no
//! second pass over the list.
//!
//! sqlx 0.9 keeps the `in_hot_standby` and `default_transaction_read_only` the server reports
//! at startup private, so the fit costs one round trip (a simple-protocol `SELECT`), and only
//! when `target_session_attrs` is not `any`.

use std::sync::Arc;
use std::time::Duration;

use pool_config::{HostPort, LoadBalanceHosts, TargetSessionAttrs};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, Row};

use crate::connector::Server;

/// The facts about a server the fit depends on, in one round trip.
const ROLE_QUERY: &str =
    "SELECT pg_is_in_recovery()::text, current_setting('transaction_read_only')";

/// How a connector chooses among its servers.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    /// The servers, in configuration order; empty: the host and port of the options.
    pub(crate) hosts: Vec<(HostPort, Arc<str>)>,
    pub(crate) target: TargetSessionAttrs,
    pub(crate) load_balance: LoadBalanceHosts,
    /// The bound on each try when there are several servers.
    pub(crate) per_host: Duration,
    /// How long a `prefer-standby` connection to a primary lives, so the pool goes back to a
    /// standby once one answers again.
    pub(crate) fallback_lifetime: Duration,
}

/// A server's role as the fit sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Role {
    pub(crate) in_recovery: bool,
    pub(crate) read_only: bool,
}

/// Why a connect found no server: the last failure, or a description of what did not fit.
pub(crate) enum Miss {
    Failed(sqlx::Error),
    Unfit(String),
    TimedOut(Arc<str>),
}

/// The outcome of trying one server.
pub(crate) enum Tried {
    Fits(PgConnection),
    /// A primary under `prefer-standby`: kept in case no standby answers.
    Fallback(PgConnection),
    Missed(Miss),
}

impl Route {
    /// A route for one pool's servers.
    pub(crate) fn new(
        hosts: Vec<HostPort>,
        target: TargetSessionAttrs,
        load_balance: LoadBalanceHosts,
        per_host: Duration,
    ) -> Self {
        let hosts = if hosts.len() > 1 {
            hosts
                .into_iter()
                .map(|h| {
                    let address = Arc::from(h.to_string());
                    (h, address)
                })
                .collect()
        } else {
            Vec::new()
        };
        Route {
            hosts,
            target,
            load_balance,
            per_host,
            fallback_lifetime: Duration::from_secs(30),
        }
    }

    /// Whether there is a choice of servers to make (several, or a kind to check).
    pub(crate) fn is_trivial(&self) -> bool {
        self.hosts.is_empty() && self.target == TargetSessionAttrs::Any
    }

    /// How many servers one connect may try.
    pub(crate) fn attempts(&self) -> u32 {
        u32::try_from(self.hosts.len().max(1)).unwrap_or(u32::MAX)
    }

    /// The order to try the servers in, by index.
    pub(crate) fn order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.hosts.len()).collect();
        if self.load_balance == LoadBalanceHosts::Random {
            fastrand::shuffle(&mut order);
        }
        order
    }

    /// `template` pointed at server `index`.
    pub(crate) fn options_for(
        &self,
        template: &PgConnectOptions,
        index: usize,
    ) -> PgConnectOptions {
        match self.hosts.get(index) {
            Some((host, _)) => template.clone().host(&host.host).port(host.port),
            None => template.clone(),
        }
    }

    /// Server `index` as the pool records it.
    pub(crate) fn server(&self, index: usize) -> Option<Server> {
        self.hosts.get(index).map(|(_, address)| Server {
            index,
            address: Arc::clone(address),
        })
    }

    /// The address of server `index`, or of the options' one host, for messages.
    pub(crate) fn address(&self, index: usize, template: &PgConnectOptions) -> Arc<str> {
        match self.hosts.get(index) {
            Some((_, address)) => Arc::clone(address),
            None => Arc::from(format!("{}:{}", template.get_host(), template.get_port())),
        }
    }

    /// Opens a connection to server `index` and checks that it fits.
    pub(crate) async fn try_server(&self, template: &PgConnectOptions, index: usize) -> Tried {
        let options = self.options_for(template, index);
        let mut conn = match sqlx::ConnectOptions::connect(&options).await {
            Ok(conn) => conn,
            Err(error) => return Tried::Missed(Miss::Failed(error)),
        };
        if self.target == TargetSessionAttrs::Any {
            return Tried::Fits(conn);
        }
        let role = match role(&mut conn).await {
            Ok(role) => role,
            Err(error) => return Tried::Missed(Miss::Failed(error)),
        };
        if self.target == TargetSessionAttrs::PreferStandby && !role.in_recovery {
            return Tried::Fallback(conn);
        }
        if self.target.accepts(role.in_recovery, role.read_only) {
            return Tried::Fits(conn);
        }
        // Not ours: a goodbye would only cost time; dropping the socket ends the session.
        drop(conn);
        let kind = match (role.in_recovery, role.read_only) {
            (true, _) => "a standby",
            (false, true) => "a read-only primary",
            (false, false) => "a read-write primary",
        };
        Tried::Missed(Miss::Unfit(format!(
            "server {} is {kind}, not {}",
            self.address(index, template),
            self.target
        )))
    }

    /// The SQL that validates an idle connection still fits: it raises an error where the
    /// server no longer does (SQLSTATE 25006 where it no longer takes writes, so the
    /// connection is retired as read-only). `None`: a ping is enough.
    pub(crate) fn validation(&self) -> Option<&'static str> {
        match self.target {
            TargetSessionAttrs::Any | TargetSessionAttrs::PreferStandby => None,
            TargetSessionAttrs::ReadWrite => Some(WRITABLE_CHECK),
            TargetSessionAttrs::Primary => Some(
                "DO $$BEGIN IF pg_is_in_recovery() THEN RAISE EXCEPTION 'server is a standby' \
                 USING ERRCODE = 'read_only_sql_transaction'; END IF; END$$",
            ),
            TargetSessionAttrs::Standby => Some(
                "DO $$BEGIN IF NOT pg_is_in_recovery() THEN RAISE EXCEPTION 'server is not a \
                 standby'; END IF; END$$",
            ),
            TargetSessionAttrs::ReadOnly => Some(
                "DO $$BEGIN IF current_setting('transaction_read_only') = 'off' THEN RAISE \
                 EXCEPTION 'server accepts writes'; END IF; END$$",
            ),
        }
    }
}

/// Raises SQLSTATE 25006 on a read-only server, in one simple-protocol round trip.
pub(crate) const WRITABLE_CHECK: &str = "DO $$BEGIN IF current_setting('transaction_read_only') = 'on' THEN \
     RAISE EXCEPTION 'server is read-only' USING ERRCODE = 'read_only_sql_transaction'; END IF; END$$";

/// Whether the server is in recovery and whether its sessions are read-only by default.
pub(crate) async fn role(conn: &mut PgConnection) -> Result<Role, sqlx::Error> {
    let row = sqlx::raw_sql(ROLE_QUERY).fetch_one(&mut *conn).await?;
    let in_recovery: String = row.try_get(0)?;
    let read_only: String = row.try_get(1)?;
    Ok(Role {
        in_recovery: in_recovery == "true",
        read_only: read_only == "on",
    })
}

/// Closes a connection kept as a fallback and not used.
pub(crate) async fn close_unused(conn: PgConnection) {
    let _ = conn.close().await;
}
