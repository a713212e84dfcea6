//! `Pool::migrate` (feature `migrate`): sqlx migrations on a checkout, discarded unless they
//! finish.

use sqlx::migrate::{MigrateError, Migrator};

use crate::pg::PgConnector;
use crate::pool::Pool;
use crate::pooled::PooledConnection;

impl Pool<PgConnector> {
    /// Runs `migrator`'s pending migrations on one checkout, as `migrator.run(&pg_pool)` does
    /// with sqlx's pool; a service calls it at start-up, before serving.
    ///
    /// The migrations run on the bare connection, with no `query_timeout` of the pool's (a
    /// migration may rightly run long; the server's `statement_timeout` still applies unless
    /// the migration changes it). sqlx's migrator holds a session-level advisory lock while
    /// it runs, so concurrent starts migrate one at a time, and does not release it when a
    /// migration fails: the connection is then discarded, which releases the lock, instead
    /// of going back to the pool.
    ///
    /// ```no_run
    /// static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("tests/postgres/migrations");
    ///
    /// # async fn f(pool: pool_core::Pool<pool_core::PgConnector>) -> Result<(), sqlx::migrate::MigrateError> {
    /// pool.migrate(&MIGRATOR).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// sqlx's [`MigrateError`]: `ExecuteMigration(error, version)` for a migration that
    /// failed, `Execute` wrapping the acquire's error (an `sqlx::Error` holding the
    /// [`PoolError`](crate::PoolError)), and so on.
    ///
    /// # Cancel safety
    /// Dropped midway, the connection is discarded (its lock released with it); migrations
    /// already committed stay applied, and the one in progress is rolled back by the server.
    pub async fn migrate(&self, migrator: &Migrator) -> Result<(), MigrateError> {
        let conn = self.acquire().await.map_err(sqlx::Error::from)?;
        // Cancel safety: from here the checkout is discarded unless the run finishes cleanly.
        let mut guard = DiscardUnlessFinished(Some(conn));
        let Some(conn) = guard.0.as_mut() else {
            unreachable!("the guard holds the checkout until it is dropped")
        };
        migrator.run(conn).await?;
        guard.finished();
        Ok(())
    }
}

/// A checkout that is discarded when dropped, unless `finished` returned it.
struct DiscardUnlessFinished(Option<PooledConnection<PgConnector>>);

impl DiscardUnlessFinished {
    fn finished(mut self) {
        // Dropping the checkout gives it back to the pool.
        drop(self.0.take());
    }
}

impl Drop for DiscardUnlessFinished {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            conn.discard();
        }
    }
}
