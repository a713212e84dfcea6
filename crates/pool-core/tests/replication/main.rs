//! Several hosts on a real replicating cluster (pool-testkit's `ReplicatedCluster`: a
//! primary and hot standbys made with `pg_basebackup -R`): failover under write load,
//! `prefer-standby` through outages of either side, `load_balance_hosts = random`, hosts that
//! hang or do not exist, and PgBouncer in front of each node. Each test states its bound and
//! prints the time it measured on this machine.

#[path = "../support/mod.rs"]
mod support;

mod failover;
mod routing;

use std::time::Duration;

use futures_core::future::BoxFuture;
use pool_config::{PoolSettings, TargetSessionAttrs};
use pool_core::{PgConnector, Pool, PoolOptions};
use pool_testkit::ReplicatedCluster;
use sqlx::postgres::PgConnection;
use sqlx::{Connection as _, Executor as _};
use tokio::time::Instant;

use support::{BoxError, app_name, capture_logs, settings_for};

/// `host:port` of a node, as the pool reports servers.
fn address(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// The fault tests' settings over `ports` (every node on 127.0.0.1), in that order, with 6
/// connections and a 5 s acquire timeout.
fn settings(
    cluster: &ReplicatedCluster,
    ports: &[u16],
    target: TargetSessionAttrs,
    tag: &str,
) -> PoolSettings {
    let mut s = settings_for("127.0.0.1", ports[0], cluster.database(), &app_name(tag));
    s.host = vec!["127.0.0.1"; ports.len()].join(",");
    s.port = ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
        .parse()
        .expect("ports");
    s.target_session_attrs = target;
    s.max_connections = 6;
    s.acquire_timeout = Duration::from_secs(5);
    s
}

/// A pool for `settings` with fast connect backoff (10 ms doubling up to 500 ms), and a
/// `prefer-standby` fallback that lives `fallback` long.
fn pool(name: &str, settings: &PoolSettings, fallback: Duration) -> Pool<PgConnector> {
    PoolOptions::from_settings(settings)
        .name(name)
        .connect_backoff(Duration::from_millis(10), Duration::from_millis(500))
        .build(PgConnector::from_settings(settings).fallback_lifetime(fallback))
        .expect("valid pool options")
}

/// A cluster of a primary and `standbys` standbys, with the `writes` table everywhere.
async fn cluster(standbys: usize) -> Result<ReplicatedCluster, BoxError> {
    capture_logs();
    let cluster = ReplicatedCluster::start(standbys).await?;
    let mut conn = PgConnection::connect_with(&cluster.app_options(0)).await?;
    conn.execute("CREATE TABLE writes (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())")
        .await?;
    conn.close().await?;
    for node in 1..=standbys {
        cluster.wait_replayed(node, Duration::from_secs(30)).await?;
    }
    Ok(cluster)
}

/// One read.
fn read(conn: &mut PgConnection) -> BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move {
        let _: i64 = sqlx::query_scalar("SELECT count(*) FROM writes")
            .fetch_one(conn)
            .await?;
        Ok(())
    })
}

/// Checks out every connection of the pool at once and returns the server of each, with
/// whether that server is in recovery, as the server itself says.
async fn servers_of_all(pool: &Pool<PgConnector>) -> Result<Vec<(String, bool)>, BoxError> {
    let max = pool.stats().max as usize;
    let mut held = Vec::with_capacity(max);
    for _ in 0..max {
        held.push(pool.acquire().await?);
    }
    let mut seen = Vec::with_capacity(max);
    for conn in &mut held {
        let server = conn.server().unwrap_or("?").to_owned();
        let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
            .fetch_one(&mut **conn)
            .await?;
        seen.push((server, in_recovery));
    }
    Ok(seen)
}

/// Polls `check` every 100 ms until it holds or `bound` passes; returns how long it took.
async fn within<F, Fut>(bound: Duration, mut check: F) -> Result<Option<Duration>, BoxError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, BoxError>>,
{
    let start = Instant::now();
    while start.elapsed() < bound {
        if check().await.unwrap_or(false) {
            return Ok(Some(start.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(None)
}
