//! `&Pool<PgConnector>` as an sqlx `Executor` for one-shot queries.

use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt, stream};
use sqlx::postgres::{PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Either, Execute, Executor, Postgres, SqlStr};

use crate::pg::PgConnector;
use crate::pool::Pool;

/// Each call acquires a connection, runs the query under `query_timeout`, and releases it, so
/// `sqlx::query("..").fetch_one(&pool)` works as with `PgPool`. A stream (`fetch`,
/// `fetch_many`) is read to the end before its first row is yielded: stream large results
/// from a checked-out connection instead.
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
        let all = async move {
            let mut conn = acquiring.await?;
            let (c, work) = conn.timed_parts().await;
            work.timed(c.fetch_many(query).try_collect::<Vec<_>>())
                .await
        };
        stream::once(all)
            .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
            .try_flatten()
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
        Box::pin(async move {
            let mut conn = acquiring.await?;
            let (c, work) = conn.timed_parts().await;
            work.timed(c.fetch_optional(query)).await
        })
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
        Box::pin(async move {
            let mut conn = acquiring.await?;
            conn.prepare_with(sql, parameters).await
        })
    }
}
