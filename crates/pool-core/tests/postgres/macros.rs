//! sqlx's checked query macros against the pool. They are checked at compile time against
//! the offline data committed in `crates/pool-core/.sqlx` (no server needed to build), or
//! against `DATABASE_URL` when it is set; `describe` through the pool is what they ask.
//! After changing a query here, write its data again against any PostgreSQL (the queries
//! use no table): `DATABASE_URL=postgres://… SQLX_OFFLINE_DIR=$PWD/crates/pool-core/.sqlx
//! cargo check -p pool-core --tests` (or `cargo sqlx prepare -- --tests` in the crate).

use pool_testkit::TestDatabase;
use sqlx::{Column as _, Executor as _, SqlSafeStr as _, TypeInfo as _};

use crate::{build, settings_for};

#[derive(Debug, PartialEq)]
struct Answer {
    n: i32,
    word: String,
}

#[tokio::test]
async fn query_as_and_query_run_through_the_pool_a_checkout_and_a_transaction() {
    let db = TestDatabase::create().await.unwrap();
    let pool = build("macros", &settings_for(&db));

    let answer = sqlx::query_as!(
        Answer,
        r#"SELECT $1::int4 + 1 AS "n!", 'forty-two'::text AS "word!""#,
        41
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        answer,
        Answer {
            n: 42,
            word: "forty-two".into()
        }
    );

    let mut tx = pool.begin().await.unwrap();
    let row = sqlx::query!(r#"SELECT $1::text AS "echo!""#, "in a transaction")
        .fetch_one(&mut tx)
        .await
        .unwrap();
    assert_eq!(row.echo, "in a transaction");
    tx.commit().await.unwrap();

    let mut conn = pool.acquire().await.unwrap();
    let n = sqlx::query_scalar!(r#"SELECT 7::int8 AS "n!""#)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 7_i64);
}

#[tokio::test]
async fn describe_through_the_pool_names_columns_and_parameters() {
    let db = TestDatabase::create().await.unwrap();
    let pool = build("describe", &settings_for(&db));

    let described = (&pool)
        .describe("SELECT $1::int4 AS id, 'x'::text AS name".into_sql_str())
        .await
        .unwrap();
    let columns: Vec<_> = described
        .columns()
        .iter()
        .map(|c| (c.name().to_owned(), c.type_info().name().to_owned()))
        .collect();
    assert_eq!(
        columns,
        [("id".into(), "INT4".into()), ("name".into(), "TEXT".into())]
    );
    let mut conn = pool.acquire().await.unwrap();
    let on_checkout = (&mut conn)
        .describe("SELECT 1::int8 AS one".into_sql_str())
        .await
        .unwrap();
    assert_eq!(on_checkout.columns()[0].type_info().name(), "INT8");
}
