//! sqlx `Executor`s under `query_timeout`: `&Pool<PgConnector>` for one-shot queries and
//! streams, `&mut PooledConnection<PgConnector>` for queries on a checkout, and `&mut
//! Transaction`. Each implements `describe`, which the query macros and sqlx's offline data
//! rely on.

use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use futures_util::{StreamExt, stream};
use sqlx::postgres::{PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Describe, Either, Execute, Executor, Postgres, SqlStr};

use crate::owned_stream::OwnedStream;
use crate::pg::PgConnector;
use crate::pool::Pool;
use crate::pooled::PooledConnection;
use crate::transaction::Transaction;

/// Each call acquires a connection, runs the query under `query_timeout`, and releases it, so
/// `sqlx::query("..").fetch_one(&pool)` works as with `PgPool`. A stream (`fetch`,
/// `fetch_many`) yields rows as the server sends them and holds its connection while it
/// lives: read to the end, the connection goes back to the pool; dropped early, the
/// connection is closed (the rest of the result is never read). `query_timeout` bounds the
/// whole stream, first row to last.
impl<'p> Executor<'p> for &'_ Pool<PgConnector> {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        let acquiring = self.acquire();
        OwnedStream::new(move |out| async move {
            let mut conn = match acquiring.await {
                Ok(conn) => conn,
                Err(error) => return out.send(Err(error.into())).await,
            };
            let (c, work) = conn.timed_parts().await;
            let mut items = work.timed_stream(c.fetch_many(query));
            while let Some(item) = items.next().await {
                out.send(item).await;
            }
        })
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        let acquiring = self.acquire();
        Box::pin(async move { (&mut acquiring.await?).fetch_optional(query).await })
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement, sqlx::Error>>
    where
        'p: 'e,
    {
        let acquiring = self.acquire();
        Box::pin(async move { (&mut acquiring.await?).prepare_with(sql, parameters).await })
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>>
    where
        'p: 'e,
    {
        let acquiring = self.acquire();
        Box::pin(async move { (&mut acquiring.await?).describe(sql).await })
    }
}

/// Implements `Executor` under `query_timeout` for a receiver `$this` whose `$parts` (an
/// expression that may await) yields its connection and the `Work` that times it.
macro_rules! timed_executor {
    ($(#[$doc:meta])* $receiver:ty, |$this:ident| $parts:expr) => {
        $(#[$doc])*
        impl<'c> Executor<'c> for $receiver {
            type Database = Postgres;

            fn fetch_many<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
            where
                'c: 'e,
                E: 'q + Execute<'q, Postgres>,
            {
                let $this = self;
                stream::once(async move {
                    let (conn, work) = $parts;
                    work.timed_stream(conn.fetch_many(query))
                })
                .flatten()
                .boxed()
            }

            fn fetch_optional<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
            where
                'c: 'e,
                E: 'q + Execute<'q, Postgres>,
            {
                let $this = self;
                Box::pin(async move {
                    let (conn, mut work) = $parts;
                    work.timed(conn.fetch_optional(query)).await
                })
            }

            fn prepare_with<'e>(
                self,
                sql: SqlStr,
                parameters: &'e [PgTypeInfo],
            ) -> BoxFuture<'e, Result<PgStatement, sqlx::Error>>
            where
                'c: 'e,
            {
                let $this = self;
                Box::pin(async move {
                    let (conn, mut work) = $parts;
                    work.timed(conn.prepare_with(sql, parameters)).await
                })
            }

            fn describe<'e>(
                self,
                sql: SqlStr,
            ) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>>
            where
                'c: 'e,
            {
                let $this = self;
                Box::pin(async move {
                    let (conn, mut work) = $parts;
                    work.timed(conn.describe(sql)).await
                })
            }
        }
    };
}

timed_executor!(
    /// Each call runs under the pool's `query_timeout`, like [`PooledConnection::run`]: when the
    /// server goes silent mid-query (a network partition, a frozen host), the call ends with a
    /// [`PoolError::Timeout`](crate::PoolError::Timeout) (phase `Query`, inside an
    /// `sqlx::Error::Io`), the connection is discarded when the checkout is dropped, and the
    /// server is asked to cancel the query. `&mut *conn` reaches the bare `PgConnection`, with no
    /// deadline of the pool's.
    ///
    /// ```no_run
    /// # async fn f(pool: pool_core::Pool<pool_core::PgConnector>) -> Result<(), sqlx::Error> {
    /// let mut conn = pool.acquire().await?;
    /// let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_class").fetch_one(&mut conn).await?;
    /// # Ok(()) }
    /// ```
    &'c mut PooledConnection<PgConnector>,
    |conn| conn.timed_parts().await
);

timed_executor!(
    /// Each call runs under the pool's `query_timeout` (see [`Transaction`]).
    &'c mut Transaction<'_>,
    |tx| tx.parts().await
);
