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
//! when `target_session_attrs` is not `any` or `check_writable` is on (which then refuses a
//! read-only server as `read-write` does, moving on to the next host).

use std::sync::Arc;
use std::time::Duration;

use pool_config::{HostPort, LoadBalanceHosts, TargetSessionAttrs};
use sqlx::postgres::PgConnectOptions;
use sqlx::{PgConnection, Row};

use crate::connector::{ErrorClass, Server};
use crate::pg_error::classify;

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
    /// `check_writable`: a read-only server does not fit whatever the target.
    pub(crate) writable: bool,
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
            writable: false,
        }
    }

    /// Whether there is a choice of servers to make (several, or a kind to check).
    pub(crate) fn is_trivial(&self) -> bool {
        self.hosts.is_empty() && self.target == TargetSessionAttrs::Any && !self.writable
    }

    /// How much earlier than the pool's bound on a connect the connector's own bounds end,
    /// so their clearer error (or a fallback kept) arrives first.
    pub(crate) fn margin(&self) -> Duration {
        (self.per_host / 10).min(Duration::from_millis(100))
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
        if self.target == TargetSessionAttrs::Any && !self.writable {
            return Tried::Fits(conn);
        }
        let role = match role(&mut conn).await {
            Ok(role) => role,
            Err(error) => return Tried::Missed(Miss::Failed(error)),
        };
        if self.target == TargetSessionAttrs::PreferStandby && !role.in_recovery {
            return Tried::Fallback(conn);
        }
        let target_fits = self.target.accepts(role.in_recovery, role.read_only);
        if target_fits && !(self.writable && role.read_only) {
            return Tried::Fits(conn);
        }
        // Not ours: a goodbye would only cost time; dropping the socket ends the session.
        drop(conn);
        let kind = match (role.in_recovery, role.read_only) {
            (true, _) => "a standby",
            (false, true) => "a read-only primary",
            (false, false) => "a read-write primary",
        };
        let wanted = if target_fits {
            "writable (check_writable = true)".to_owned()
        } else {
            self.target.to_string()
        };
        Tried::Missed(Miss::Unfit(format!(
            "server {} is {kind}, not {wanted}",
            self.address(index, template),
        )))
    }

    /// Tries the servers in turn; returns the connection, its server when there are
    /// several, and whether it is a `prefer-standby` fallback to a primary.
    pub(crate) async fn connect(
        &self,
        options: &PgConnectOptions,
    ) -> Result<(PgConnection, Option<Server>, bool), sqlx::Error> {
        let order = if self.hosts.is_empty() {
            vec![0]
        } else {
            self.order()
        };
        let several = order.len() > 1;
        // The pool bounds the whole connect by `per_host` per host, from a moment earlier:
        // the tries end a little before it, so a fallback kept early is still handed over.
        let budget = self.per_host.saturating_mul(self.attempts());
        let end = tokio::time::Instant::now().checked_add(budget.saturating_sub(self.margin()));
        let mut fallback: Option<(usize, PgConnection)> = None;
        let mut misses = Vec::new();
        for index in order {
            let tried = if several {
                let left = end.map_or(self.per_host, |end| {
                    end.saturating_duration_since(tokio::time::Instant::now())
                });
                tokio::time::timeout(self.per_host.min(left), self.try_server(options, index))
                    .await
                    .unwrap_or_else(|_| Tried::Missed(Miss::TimedOut(self.address(index, options))))
            } else {
                self.try_server(options, index).await
            };
            match tried {
                Tried::Fits(conn) => {
                    // A fallback kept and not needed: dropping it closes its socket.
                    drop(fallback);
                    return Ok((conn, self.server(index), false));
                }
                Tried::Fallback(conn) if fallback.is_none() => fallback = Some((index, conn)),
                Tried::Fallback(conn) => drop(conn),
                Tried::Missed(miss) => {
                    let address = self.address(index, options);
                    tracing::debug!(server = %address, "server skipped");
                    misses.push((address, miss));
                }
            }
        }
        if let Some((index, conn)) = fallback {
            tracing::debug!(server = %self.address(index, options), "no standby answered; connected to a primary for a while");
            return Ok((conn, self.server(index), true));
        }
        Err(no_server(misses, self))
    }

    /// The SQL that validates an idle connection still fits: it raises an error where the
    /// server no longer does (SQLSTATE 25006 where it no longer takes writes, so the
    /// connection is retired as read-only). `None`: a ping is enough.
    pub(crate) fn validation(&self) -> Option<&'static str> {
        match self.target {
            TargetSessionAttrs::Any | TargetSessionAttrs::PreferStandby if self.writable => {
                Some(WRITABLE_CHECK)
            }
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

/// The error of a connect that found no server: a refused login or a missing database as
/// it is (no other server will take it either), else every server's reason in one message.
fn no_server(misses: Vec<(Arc<str>, Miss)>, route: &Route) -> sqlx::Error {
    let refused = misses.iter().position(|(_, miss)| {
        matches!(miss, Miss::Failed(e) if matches!(classify(e), ErrorClass::Authentication | ErrorClass::Fatal))
    });
    let mut reasons = Vec::with_capacity(misses.len());
    for (i, (address, miss)) in misses.into_iter().enumerate() {
        match miss {
            Miss::Failed(error) if Some(i) == refused => return error,
            Miss::Failed(error) if route.hosts.is_empty() => return error,
            Miss::Failed(error) => reasons.push(format!("{address}: {error}")),
            Miss::Unfit(why) => reasons.push(why),
            Miss::TimedOut(address) => reasons.push(format!(
                "{address}: connect timed out after {:?}",
                route.per_host
            )),
        }
    }
    let writable = if route.writable {
        ", check_writable = true"
    } else {
        ""
    };
    sqlx::Error::InvalidArgument(format!(
        "no host could be used (target_session_attrs = {}{writable}): {}",
        route.target,
        reasons.join("; ")
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: u16) -> Vec<HostPort> {
        (0..n)
            .map(|i| HostPort {
                host: format!("db-{i}"),
                port: 5432 + i,
            })
            .collect()
    }

    fn route(n: u16, target: TargetSessionAttrs, balance: LoadBalanceHosts) -> Route {
        Route::new(hosts(n), target, balance, Duration::from_secs(1))
    }

    #[test]
    fn one_host_of_any_kind_is_the_plain_connect() {
        let one = route(1, TargetSessionAttrs::Any, LoadBalanceHosts::Random);
        assert!(one.is_trivial() && one.attempts() == 1 && one.server(0).is_none());
        assert!(!route(1, TargetSessionAttrs::Standby, LoadBalanceHosts::Disable).is_trivial());
        let two = route(2, TargetSessionAttrs::Any, LoadBalanceHosts::Disable);
        assert_eq!(two.attempts(), 2);
        assert_eq!(two.order(), [0, 1]);
        assert_eq!(
            two.server(1).map(|s| s.address.to_string()).as_deref(),
            Some("db-1:5433")
        );
    }

    #[test]
    fn random_order_tries_every_host_once() {
        let r = route(5, TargetSessionAttrs::Any, LoadBalanceHosts::Random);
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut order = r.order();
            firsts.insert(order[0]);
            order.sort_unstable();
            assert_eq!(order, [0, 1, 2, 3, 4]);
        }
        assert_eq!(firsts.len(), 5, "each host comes first sometimes");
    }

    #[test]
    fn each_try_takes_its_host_and_port_and_keeps_the_rest() {
        let r = route(2, TargetSessionAttrs::Any, LoadBalanceHosts::Disable);
        let template = PgConnectOptions::new_without_pgpass()
            .host("ignored")
            .database("orders");
        let options = r.options_for(&template, 1);
        assert_eq!((options.get_host(), options.get_port()), ("db-1", 5433));
        assert_eq!(options.get_database(), Some("orders"));
    }

    #[test]
    fn validation_checks_what_the_target_needs() {
        let check = |t| route(2, t, LoadBalanceHosts::Disable).validation();
        assert_eq!(check(TargetSessionAttrs::Any), None);
        assert_eq!(check(TargetSessionAttrs::PreferStandby), None);
        assert_eq!(check(TargetSessionAttrs::ReadWrite), Some(WRITABLE_CHECK));
        for t in [
            TargetSessionAttrs::Primary,
            TargetSessionAttrs::Standby,
            TargetSessionAttrs::ReadOnly,
        ] {
            assert!(check(t).is_some_and(|sql| sql.starts_with("DO $$")), "{t}");
        }
    }

    #[test]
    fn no_server_names_every_reason_but_passes_a_refused_login_on() {
        let r = route(3, TargetSessionAttrs::ReadWrite, LoadBalanceHosts::Disable);
        let misses = vec![
            (
                Arc::from("db-0:5432"),
                Miss::Unfit("server db-0:5432 is a standby, not read-write".into()),
            ),
            (
                Arc::from("db-1:5433"),
                Miss::TimedOut(Arc::from("db-1:5433")),
            ),
            (
                Arc::from("db-2:5434"),
                Miss::Failed(sqlx::Error::Io(std::io::Error::other("refused"))),
            ),
        ];
        let message = no_server(misses, &r).to_string();
        for part in [
            "read-write",
            "db-0:5432 is a standby",
            "db-1:5433: connect timed out",
            "db-2:5434: ",
            "refused",
        ] {
            assert!(message.contains(part), "{message}");
        }
        assert_eq!(classify(&no_server(Vec::new(), &r)), ErrorClass::Transient);
    }
}
