//! # Implementation details
//!
//! The checker's own long-lived connection to one pool's server, used when no idle pooled
//! connection is free at once, so a check never waits in the acquire queue.

use std::sync::Mutex;

use pool_core::PgConnector;
use sqlx::PgConnection;
use tokio::time::Instant;

use crate::round_trip::{After, Found, Redaction, connect, observe_on};

/// At most one idle probe connection, opened on first need and kept while it answers.
#[derive(Debug)]
pub(crate) struct ProbeConnection {
    application_name: String,
    // Lock order: held only to take or put the connection, never across an await.
    idle: Mutex<Option<PgConnection>>,
}

impl ProbeConnection {
    /// A probe connection under its own `application_name`.
    pub(crate) fn new(application_name: &str) -> Self {
        ProbeConnection {
            application_name: application_name.to_owned(),
            idle: Mutex::new(None),
        }
    }

    fn take(&self) -> Option<PgConnection> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn put(&self, conn: PgConnection) {
        *self.idle.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn);
    }

    /// Runs the round trip over the probe connection, reconnecting once if the kept one went
    /// stale, all before `deadline`. A connect uses the pool's current options through
    /// `connector` (a rotated password applies), under the probe's application_name.
    ///
    /// Cancel safety: the connection is taken out while in use and put back only after it
    /// answered, so a dropped future drops it (closing the socket) instead of leaving a
    /// half-read reply for the next check.
    pub(crate) async fn observe(
        &self,
        connector: &PgConnector,
        started: Instant,
        deadline: Instant,
        facts: bool,
        redaction: &Redaction,
    ) -> Found {
        let mut reused = false;
        loop {
            let mut conn = match self.take() {
                Some(conn) => {
                    reused = true;
                    conn
                }
                None => match connect(
                    connector,
                    &self.application_name,
                    started,
                    deadline,
                    redaction,
                )
                .await
                {
                    Ok(conn) => conn,
                    Err(connectivity) => return (connectivity, None),
                },
            };
            let (connectivity, found, after) =
                observe_on(&mut conn, started, deadline, facts, redaction).await;
            match after {
                After::Keep => self.put(conn),
                // A kept connection that errors probably outlived a server restart: one fresh
                // try, still before the deadline.
                After::Retry if std::mem::take(&mut reused) => {
                    tracing::debug!("health probe connection went stale, reconnecting");
                    continue;
                }
                After::Retry | After::GiveUp => {}
            }
            return (connectivity, found);
        }
    }
}
