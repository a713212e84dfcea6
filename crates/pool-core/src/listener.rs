//! LISTEN / NOTIFY: sqlx's `PgListener` on the pool's connect options.

use sqlx::postgres::{PgListener, PgPoolOptions};

use crate::pg::PgConnector;
use crate::pool::Pool;

impl Pool<PgConnector> {
    /// A [`PgListener`] that connects as the pool's connections do: the same host, database,
    /// credentials (a rotated password included, as of this call), TLS settings, startup
    /// options and `application_name`. It keeps one connection of its own, outside the pool:
    /// it never takes a slot from `max_connections`, so a process opens at most
    /// `max_connections` + 1 server connections per pool while it listens (+ 2 with the
    /// health checker's probe). The pool's `after_connect` hook does not run on it, and
    /// `close()` does not close it: drop it.
    ///
    /// When its connection is lost (a server restart, a failover), the next `recv()`
    /// reconnects and listens on every channel again; notifications sent meanwhile are lost,
    /// as with any LISTEN. A reconnect that fails within `connect_timeout` is returned by
    /// `recv()` as an error; the next call tries again, its channels kept.
    ///
    /// ```no_run
    /// # async fn f(pool: pool_core::Pool<pool_core::PgConnector>) -> Result<(), sqlx::Error> {
    /// let mut listener = pool.listener().await?;
    /// listener.listen("jobs").await?;
    /// loop {
    ///     match listener.recv().await {
    ///         Ok(note) => println!("{}: {}", note.channel(), note.payload()),
    ///         // The server went away and is not back yet; the next recv() reconnects.
    ///         Err(_) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
    ///     }
    /// }
    /// # }
    /// ```
    ///
    /// # Errors
    /// sqlx's error when the first connection cannot be opened within `connect_timeout`.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future drops the half-open connection.
    pub async fn listener(&self) -> Result<PgListener, sqlx::Error> {
        // sqlx's listener reconnects through a pool of its own: one connection, kept for as
        // long as it lives, each (re)connect bounded by the pool's connect_timeout.
        let reconnects = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(self.options().connect_timeout)
            .connect_lazy_with((*self.connector().current()).clone());
        let mut listener = PgListener::connect_with(&reconnects).await?;
        // Its pool is private to it: nothing else closes it.
        listener.ignore_pool_close_event(true);
        Ok(listener)
    }
}
