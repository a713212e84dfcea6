//! # Implementation details
//!
//! The database side of a check: the `SELECT 1` round trip and the server facts over one
//! connection, both under the check's deadline.
//!
//! Both use the simple query protocol (`raw_sql`), so they work unchanged behind PgBouncer in
//! transaction mode, where an extended-protocol statement outside a transaction can be split
//! across server connections.

use std::time::{Duration, SystemTime};

use pool_core::PgConnector;
use sqlx::{PgConnection, Row};
use tokio::time::{Instant, timeout_at};

use crate::assess::{Connectivity, scrub};
use crate::server_facts::ServerFacts;

/// What one database round trip found, kept in the cache until it expires.
#[derive(Debug, Clone)]
pub(crate) struct Observation {
    /// When the round trip began, for the cache's expiry.
    pub(crate) at: Instant,
    /// When it ended: a caller that waited for it may use it, however short the cache.
    pub(crate) finished: Instant,
    /// When the round trip began (wall clock), for the report.
    pub(crate) time: SystemTime,
    pub(crate) connectivity: Connectivity,
    /// `None` when facts were not asked for, or the connectivity check failed.
    pub(crate) facts: Option<Result<ServerFacts, String>>,
}

impl Observation {
    /// An observation made just now, without server facts.
    pub(crate) fn now(connectivity: Connectivity) -> Self {
        let at = Instant::now();
        Observation {
            at,
            finished: at,
            time: SystemTime::now(),
            connectivity,
            facts: None,
        }
    }
}

/// The outcome of a round trip: connectivity, and the server facts when asked for and
/// reached.
pub(crate) type Found = (Connectivity, Option<Result<ServerFacts, String>>);

/// How error messages are made safe for a report.
#[derive(Debug, Clone)]
pub(crate) struct Redaction {
    /// Every host the pool may reach.
    pub(crate) hosts: Vec<String>,
    pub(crate) show_hosts: bool,
}

impl Redaction {
    pub(crate) fn message(&self, error: &sqlx::Error) -> String {
        self.hosts.iter().fold(error.to_string(), |message, host| {
            scrub(&message, host, self.show_hosts)
        })
    }
}

/// What to do after a round trip with the connection that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// It answered: keep it.
    Keep,
    /// It failed with an error (probably a stale connection after a server restart): drop it,
    /// and a fresh connection may be worth one try within the deadline.
    Retry,
    /// The deadline passed mid-query: drop it (its protocol state is unknown) and give up.
    GiveUp,
}

/// Runs `SELECT 1` then, if asked, the facts query on `conn`, both before `deadline`.
pub(crate) async fn observe_on(
    conn: &mut PgConnection,
    started: Instant,
    deadline: Instant,
    facts: bool,
    redaction: &Redaction,
) -> (Connectivity, Option<Result<ServerFacts, String>>, After) {
    let connectivity = match timeout_at(deadline, select_one(conn)).await {
        Ok(Ok(latency)) => Connectivity::Answered { latency },
        Ok(Err(error)) => {
            let failed = Connectivity::failed("SELECT 1", &error, redaction);
            return (failed, None, After::Retry);
        }
        Err(_) => {
            let connectivity = Connectivity::TimedOut {
                phase: "waiting for SELECT 1",
                after: deadline - started,
            };
            return (connectivity, None, After::GiveUp);
        }
    };
    if !facts {
        return (connectivity, None, After::Keep);
    }
    match timeout_at(deadline, server_facts(conn)).await {
        Ok(Ok(f)) => (connectivity, Some(Ok(f)), After::Keep),
        Ok(Err(error)) => {
            let message = redaction.message(&error);
            // The round trip itself worked: the facts query failing (a permission, say) does
            // not make the connection suspect.
            let after = if matches!(error, sqlx::Error::Database(_)) {
                After::Keep
            } else {
                After::GiveUp
            };
            (connectivity, Some(Err(message)), after)
        }
        Err(_) => (
            connectivity,
            Some(Err("no answer before the deadline".to_owned())),
            After::GiveUp,
        ),
    }
}

/// Opens a connection outside the pool, under `application_name`, before `deadline`.
pub(crate) async fn connect(
    connector: &PgConnector,
    application_name: &str,
    started: Instant,
    deadline: Instant,
    redaction: &Redaction,
) -> Result<PgConnection, Connectivity> {
    match timeout_at(deadline, connector.connect_as(application_name)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(error)) => Err(Connectivity::failed("connect", &error, redaction)),
        Err(_) => Err(Connectivity::TimedOut {
            phase: "connecting",
            after: deadline - started,
        }),
    }
}

/// `SELECT 1`, returning how long the round trip took.
pub(crate) async fn select_one(conn: &mut PgConnection) -> Result<Duration, sqlx::Error> {
    let begun = Instant::now();
    let row = sqlx::raw_sql("SELECT 1").fetch_one(&mut *conn).await?;
    let one: i32 = row.try_get(0)?;
    if one == 1 {
        Ok(begun.elapsed())
    } else {
        Err(sqlx::Error::Protocol(format!("SELECT 1 returned {one:?}")))
    }
}

/// The server facts, in one round trip.
pub(crate) async fn server_facts(conn: &mut PgConnection) -> Result<ServerFacts, sqlx::Error> {
    let row = sqlx::raw_sql(ServerFacts::QUERY)
        .fetch_one(&mut *conn)
        .await?;
    Ok(ServerFacts::from_row(
        (
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
        ),
        row.try_get(4)?,
        row.try_get(5)?,
    ))
}
