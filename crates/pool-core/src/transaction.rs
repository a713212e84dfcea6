//! `Transaction`: an sqlx transaction on a checked-out connection, under `query_timeout`.

use std::fmt;
use std::ops::{Deref, DerefMut};

use sqlx::{Connection as _, PgConnection, Postgres};

use crate::inner::work::Work;
use crate::pg::PgConnector;
use crate::pooled::PooledConnection;

/// A transaction (or, nested, a savepoint) on a checked-out connection. Every statement run
/// through `&mut tx`, and `commit` and `rollback` themselves, run under the pool's
/// `query_timeout`; when it fires, the call fails with a
/// [`PoolError::Timeout`](crate::PoolError::Timeout) (phase `Query`) and the connection is
/// discarded when the checkout is dropped. Dropped without `commit`, the transaction is
/// rolled back (bounded, before the connection is reused), as with sqlx.
///
/// ```no_run
/// # async fn f(pool: pool_core::Pool<pool_core::PgConnector>) -> Result<(), sqlx::Error> {
/// let mut conn = pool.acquire().await?;
/// let mut tx = conn.begin().await?;
/// sqlx::query("UPDATE accounts SET balance = balance - 1 WHERE id = $1")
///     .bind(7)
///     .execute(&mut tx)
///     .await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
pub struct Transaction<'c> {
    tx: sqlx::Transaction<'c, Postgres>,
    work: Work<'c, PgConnector>,
}

impl PooledConnection<PgConnector> {
    /// Begins a transaction on this connection, under `query_timeout` (see
    /// [`Transaction`]).
    ///
    /// # Errors
    /// sqlx's error, or the query timeout (an `sqlx::Error::Io` wrapping the
    /// [`PoolError`](crate::PoolError)).
    ///
    /// # Cancel safety
    /// Dropping the future midway discards the connection when the checkout is dropped.
    pub async fn begin(&mut self) -> Result<Transaction<'_>, sqlx::Error> {
        let (conn, mut work) = self.timed_parts().await;
        let tx = work.timed(conn.begin()).await?;
        Ok(Transaction { tx, work })
    }
}

impl Transaction<'_> {
    /// Commits, under `query_timeout`.
    ///
    /// # Errors
    /// sqlx's error, or the query timeout.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        let Transaction { tx, mut work } = self;
        work.timed(tx.commit()).await
    }

    /// Rolls back, under `query_timeout`.
    ///
    /// # Errors
    /// sqlx's error, or the query timeout.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        let Transaction { tx, mut work } = self;
        work.timed(tx.rollback()).await
    }

    /// Begins a nested transaction (a savepoint), under `query_timeout`.
    ///
    /// # Errors
    /// sqlx's error, or the query timeout.
    pub async fn begin(&mut self) -> Result<Transaction<'_>, sqlx::Error> {
        let Transaction { tx, work } = self;
        let mut work = work.reborrow();
        let tx = work.timed(tx.begin()).await?;
        Ok(Transaction { tx, work })
    }
}

impl Transaction<'_> {
    /// The connection and the `Work` that times what runs on it.
    pub(crate) fn parts(&mut self) -> (&mut PgConnection, Work<'_, PgConnector>) {
        (&mut self.tx, self.work.reborrow())
    }
}

impl fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("work", &self.work)
            .finish_non_exhaustive()
    }
}

/// The bare connection, with no deadline of the pool's.
impl Deref for Transaction<'_> {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for Transaction<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}
