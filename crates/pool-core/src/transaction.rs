//! `Transaction`: an sqlx transaction under `query_timeout`, on a checkout it owns
//! (`Pool::begin`) or borrows (`PooledConnection::begin`, savepoints).

use std::fmt;
use std::future::Future;

use sqlx::{Connection as _, Database, PgConnection, Postgres};
use sqlx_core::transaction::TransactionManager as _;

use crate::inner::work::Work;
use crate::pg::PgConnector;
use crate::pool::Pool;
use crate::pooled::PooledConnection;

/// sqlx's transaction bookkeeping for PostgreSQL (depth, savepoints, the rollback queued on
/// drop), driven directly where a transaction owns its connection.
type Manager = <Postgres as Database>::TransactionManager;

/// A transaction (or, nested, a savepoint). Every statement run through `&mut tx`, and
/// `commit` and `rollback` themselves, run under the pool's `query_timeout`; when it fires,
/// the call fails with a [`PoolError::Timeout`](crate::PoolError::Timeout) (phase `Query`)
/// and the connection is discarded instead of reused. Dropped without `commit`, the
/// transaction is rolled back (bounded by `cleanup_timeout`, else the connection is
/// discarded) before the connection is reused, as with sqlx.
///
/// [`Pool::begin`] returns a `Transaction<'static>` that owns its checkout: it can be held
/// across awaits, moved into a task, and returned from a function, and the connection goes
/// back to the pool when it ends. [`PooledConnection::begin`] borrows a checkout instead,
/// and `tx.begin()` makes a savepoint that borrows its parent.
///
/// ```no_run
/// # async fn f(pool: pool_core::Pool<pool_core::PgConnector>) -> Result<(), sqlx::Error> {
/// let mut tx = pool.begin().await?;
/// sqlx::query("UPDATE accounts SET balance = balance - 1 WHERE id = $1")
///     .bind(7)
///     .execute(&mut tx)
///     .await?;
/// let mut savepoint = tx.begin().await?;
/// sqlx::query("DELETE FROM audit WHERE id = $1").bind(7).execute(&mut savepoint).await?;
/// savepoint.rollback().await?; // back to the savepoint; the update stands
/// tx.commit().await?;
/// # Ok(()) }
/// ```
pub struct Transaction<'c> {
    kind: Kind<'c>,
}

enum Kind<'c> {
    /// On a checkout (or a parent transaction) the caller keeps.
    Borrowed {
        tx: sqlx::Transaction<'c, Postgres>,
        work: Work<'c, PgConnector>,
    },
    /// Owns its checkout.
    Owned(Owned),
}

/// A transaction that owns its checkout; rolls back on drop while still open.
struct Owned {
    conn: PooledConnection<PgConnector>,
    open: bool,
}

impl Pool<PgConnector> {
    /// Acquires a connection and begins a transaction that owns it, under `query_timeout`
    /// (see [`Transaction`]): what `PgPool::begin` is to sqlx.
    ///
    /// # Errors
    /// The acquire's [`PoolError`](crate::PoolError) or the query timeout (inside an
    /// `sqlx::Error::Io`), or sqlx's error for `BEGIN`.
    ///
    /// # Cancel safety
    /// Cancel safe: dropped while acquiring, nothing is lost; dropped during `BEGIN`, the
    /// connection is discarded, never reused.
    #[track_caller]
    pub fn begin(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static>, sqlx::Error>> + Send + 'static {
        let acquiring = self.acquire();
        async move {
            let mut conn = acquiring.await?;
            let (c, mut work) = conn.timed_parts().await;
            work.timed(Manager::begin(c, None)).await?;
            Ok(Transaction {
                kind: Kind::Owned(Owned { conn, open: true }),
            })
        }
    }
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
        Ok(Transaction {
            kind: Kind::Borrowed { tx, work },
        })
    }
}

impl Owned {
    async fn finish(&mut self, commit: bool) -> Result<(), sqlx::Error> {
        let (conn, mut work) = self.conn.timed_parts().await;
        if commit {
            work.timed(Manager::commit(conn)).await?;
        } else {
            work.timed(Manager::rollback(conn)).await?;
        }
        self.open = false;
        Ok(())
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if self.open {
            // Queues the ROLLBACK; the pool sends it (bounded) before the connection is
            // reused, or discards the connection.
            Manager::start_rollback(&mut self.conn);
        }
    }
}

impl Transaction<'_> {
    /// Commits (or, for a savepoint, releases it), under `query_timeout`.
    ///
    /// # Errors
    /// sqlx's error, or the query timeout.
    ///
    /// # Cancel safety
    /// Dropped midway, the connection is discarded: whether the commit happened is unknown.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self.kind {
            Kind::Borrowed { tx, mut work } => work.timed(tx.commit()).await,
            Kind::Owned(mut owned) => owned.finish(true).await,
        }
    }

    /// Rolls back (or, for a savepoint, back to it), under `query_timeout`.
    ///
    /// # Errors
    /// sqlx's error, or the query timeout.
    ///
    /// # Cancel safety
    /// Dropped midway, the connection is discarded.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self.kind {
            Kind::Borrowed { tx, mut work } => work.timed(tx.rollback()).await,
            Kind::Owned(mut owned) => owned.finish(false).await,
        }
    }

    /// Begins a nested transaction (a savepoint), under `query_timeout`.
    ///
    /// # Errors
    /// sqlx's error, or the query timeout.
    ///
    /// # Cancel safety
    /// Dropped midway, the connection is discarded when the checkout goes back.
    pub async fn begin(&mut self) -> Result<Transaction<'_>, sqlx::Error> {
        let (conn, mut work) = self.parts().await;
        let tx = work.timed(conn.begin()).await?;
        Ok(Transaction {
            kind: Kind::Borrowed { tx, work },
        })
    }

    /// The connection and the `Work` that times what runs on it.
    pub(crate) async fn parts(&mut self) -> (&mut PgConnection, Work<'_, PgConnector>) {
        match &mut self.kind {
            Kind::Borrowed { tx, work } => (&mut **tx, work.reborrow()),
            Kind::Owned(owned) => owned.conn.timed_parts().await,
        }
    }

    fn connection(&self) -> &PgConnection {
        match &self.kind {
            Kind::Borrowed { tx, .. } => tx,
            Kind::Owned(owned) => &owned.conn,
        }
    }
}

impl fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Borrowed { work, .. } => f
                .debug_struct("Transaction")
                .field("work", work)
                .finish_non_exhaustive(),
            Kind::Owned(owned) => f
                .debug_struct("Transaction")
                .field("conn", &owned.conn)
                .field("open", &owned.open)
                .finish(),
        }
    }
}

/// The bare connection, with no deadline of the pool's.
impl std::ops::Deref for Transaction<'_> {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.connection()
    }
}

impl std::ops::DerefMut for Transaction<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match &mut self.kind {
            Kind::Borrowed { tx, .. } => tx,
            Kind::Owned(owned) => &mut owned.conn,
        }
    }
}
