//! sqlx's `Acquire` for a checkout and a transaction, so `Migrator::run` and code generic
//! over `Acquire` take them.

use futures_core::future::BoxFuture;
use sqlx::{Acquire, PgConnection, Postgres};

use crate::pg::PgConnector;
use crate::pooled::PooledConnection;
use crate::transaction::Transaction;

/// `Migrator::run(&mut pool.acquire().await?)` runs migrations on a checkout, as
/// `Migrator::run(&pg_pool)` does with sqlx's pool (with the `migrate` feature,
/// `Pool::migrate` does it and discards the checkout when a migration fails):
///
/// ```no_run
/// # async fn f(pool: pool_core::Pool<pool_core::PgConnector>, migrator: sqlx::migrate::Migrator)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// migrator.run(&mut pool.acquire().await?).await?;
/// # Ok(()) }
/// ```
///
/// Why the checkout and not `&Pool`: `Acquire::begin` must return sqlx's own
/// `Transaction<'c>`, which can own only a connection of sqlx's pool or borrow one for `'c`;
/// from `&'c Pool` there is neither to give it, so an `Acquire` for `&Pool` could not keep
/// its promise. What runs through this impl uses the bare connection, with no
/// `query_timeout` of the pool's (a migration may rightly run long; the server's
/// `statement_timeout` still applies unless the migration changes it with `SET`).
/// sqlx's migrator holds a session-level advisory lock while it runs and does not release
/// it when a migration fails: discard that checkout (`conn.discard()`) rather than return
/// it, or the next migrator run on another connection waits on the lock (until
/// `statement_timeout`).
impl<'c> Acquire<'c> for &'c mut PooledConnection<PgConnector> {
    type Database = Postgres;

    type Connection = &'c mut PgConnection;

    fn acquire(self) -> BoxFuture<'c, Result<Self::Connection, sqlx::Error>> {
        Box::pin(std::future::ready(Ok(&mut **self)))
    }

    fn begin(self) -> BoxFuture<'c, Result<sqlx::Transaction<'c, Postgres>, sqlx::Error>> {
        sqlx::Transaction::begin(&mut **self, None)
    }
}

/// As sqlx's own transaction does: `acquire` lends the bare connection (no `query_timeout`
/// of the pool's), `begin` makes a savepoint.
impl<'t> Acquire<'t> for &'t mut Transaction<'_> {
    type Database = Postgres;

    type Connection = &'t mut PgConnection;

    fn acquire(self) -> BoxFuture<'t, Result<Self::Connection, sqlx::Error>> {
        Box::pin(std::future::ready(Ok(&mut **self)))
    }

    fn begin(self) -> BoxFuture<'t, Result<sqlx::Transaction<'t, Postgres>, sqlx::Error>> {
        sqlx::Transaction::begin(&mut **self, None)
    }
}
