//! The controls of a `ReplicatedCluster` do what failover tests rely on: the standby
//! streams from the primary, a promoted standby takes writes, and an old primary rejoins as
//! a standby of the new one.

use std::time::Duration;

use pool_testkit::{ReplicatedCluster, RestartMode};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};

async fn execute(options: &PgConnectOptions, sql: &'static str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect_with(options).await?;
    sqlx::raw_sql(sql).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

async fn count(options: &PgConnectOptions) -> anyhow::Result<i64> {
    let mut conn = PgConnection::connect_with(options).await?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(n)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_follows_is_promoted_and_the_old_primary_rejoins() -> anyhow::Result<()> {
    let deadline = Duration::from_secs(30);
    let mut cluster = ReplicatedCluster::start(1).await?;
    assert_eq!(cluster.primary(), Some(0));
    assert!(!cluster.is_in_recovery(0).await? && cluster.is_in_recovery(1).await?);
    execute(
        &cluster.app_options(0),
        "CREATE TABLE t (); INSERT INTO t DEFAULT VALUES",
    )
    .await?;
    cluster.wait_replayed(1, deadline).await?;
    assert_eq!(count(&cluster.app_options(1)).await?, 1);
    let refused = execute(&cluster.app_options(1), "INSERT INTO t DEFAULT VALUES").await;
    assert!(refused.is_err(), "a standby must refuse writes");

    cluster.stop(0, RestartMode::Immediate).await?;
    assert!(
        PgConnection::connect_with(&cluster.app_options(0))
            .await
            .is_err()
    );
    cluster.promote(1).await?;
    assert_eq!(cluster.primary(), Some(1));
    assert!(!cluster.is_in_recovery(1).await?);
    execute(&cluster.app_options(1), "INSERT INTO t DEFAULT VALUES").await?;

    let port = cluster.port(0);
    cluster.rejoin_as_standby(0, 1).await?;
    assert_eq!(cluster.port(0), port, "a rejoined node keeps its port");
    assert!(cluster.is_in_recovery(0).await?);
    execute(&cluster.app_options(1), "INSERT INTO t DEFAULT VALUES").await?;
    cluster.wait_replayed(0, deadline).await?;
    assert_eq!(count(&cluster.app_options(0)).await?, 3);
    Ok(())
}
