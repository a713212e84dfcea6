//! PgBouncer in both pool modes answers queries with scram-sha-256 logins.

use pool_testkit::{PgBouncer, PoolMode, TestServer};
use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

#[tokio::test(flavor = "multi_thread")]
async fn session_mode_serves_prepared_and_simple_queries() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let db = server.database().await?;
    let bouncer = PgBouncer::start(&server, PoolMode::Session).await?;
    assert_eq!(bouncer.mode(), PoolMode::Session);
    let mut conn = PgConnection::connect_with(&bouncer.app_options(db.name())).await?;
    let one: i32 = sqlx::query_scalar("SELECT $1::int4")
        .bind(1)
        .fetch_one(&mut conn)
        .await?;
    assert_eq!(one, 1);
    sqlx::raw_sql("SELECT 1").execute(&mut conn).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn transaction_mode_serves_simple_queries_and_transactions() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let db = server.database().await?;
    let bouncer = PgBouncer::start(&db, PoolMode::Transaction).await?;
    let mut conn = PgConnection::connect_with(&bouncer.app_options(db.name())).await?;
    sqlx::raw_sql("CREATE TABLE t (id int)")
        .execute(&mut conn)
        .await?;
    let mut tx = conn.begin().await?;
    sqlx::query("INSERT INTO t VALUES ($1)")
        .bind(7)
        .execute(&mut *tx)
        .await?;
    let id: i32 = sqlx::query_scalar("SELECT id FROM t")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    assert_eq!(id, 7);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_is_rejected_and_dropping_stops_it() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let bouncer = PgBouncer::start(&server, PoolMode::Session).await?;
    let wrong = bouncer.app_options("postgres").password("not-the-password");
    assert!(PgConnection::connect_with(&wrong).await.is_err());
    let dir = bouncer.state_dir();
    let port = bouncer.port();
    drop(bouncer);
    assert!(!dir.exists());
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
    );
    Ok(())
}
