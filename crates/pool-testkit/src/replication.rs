//! [`ReplicatedCluster`]: a primary and hot standbys streaming from it, from the local
//! PostgreSQL binaries, with the controls of a failover.

use std::time::Duration;

use sqlx::Connection as _;

use crate::database::TestDatabase;
use crate::endpoint::Endpoint;
use crate::native::NativeServer;
use crate::server::RestartMode;

/// A primary and one or more hot standbys made with `pg_basebackup -R`, streaming from it,
/// each a native server on its own 127.0.0.1 port with its own state directory and watchdog
/// (nothing outlives the test run). Nodes keep their index and port through a failover:
/// node 0 starts as the primary.
///
/// The test database is created on the primary before the standbys are copied from it, so
/// every node has it from the start.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> anyhow::Result<()> {
/// use pool_testkit::{ReplicatedCluster, RestartMode};
///
/// let mut cluster = ReplicatedCluster::start(1).await?;
/// cluster.stop(0, RestartMode::Fast).await?;
/// cluster.promote(1).await?;
/// cluster.rejoin_as_standby(0, 1).await?; // the old primary follows the new one
/// assert_eq!(cluster.primary(), Some(1));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ReplicatedCluster {
    nodes: Vec<Node>,
    database: String,
}

#[derive(Debug)]
struct Node {
    server: NativeServer,
    endpoint: Endpoint,
    primary: bool,
}

impl ReplicatedCluster {
    /// Starts a primary (node 0) with a test database, then `standbys` standbys streaming
    /// from it (nodes 1…), and waits until each has replayed the database.
    ///
    /// # Errors
    /// When a server cannot be created, copied or started (the error carries the step and
    /// the server's log).
    pub async fn start(standbys: usize) -> anyhow::Result<Self> {
        let primary = NativeServer::start().await?;
        let endpoint = primary.endpoint();
        let database = TestDatabase::create_on(&endpoint, false)
            .await?
            .name()
            .to_owned();
        let mut nodes = vec![Node {
            server: primary,
            endpoint,
            primary: true,
        }];
        for _ in 0..standbys {
            let server = NativeServer::start_standby_of(&nodes[0].server).await?;
            let endpoint = server.endpoint();
            nodes.push(Node {
                server,
                endpoint,
                primary: false,
            });
        }
        Ok(ReplicatedCluster { nodes, database })
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no node (never, once started).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `node`'s host (always `127.0.0.1`).
    pub fn host(&self, node: usize) -> &str {
        self.nodes[node].endpoint.host()
    }

    /// Node `node`'s port (kept through stops, promotions and rejoins).
    pub fn port(&self, node: usize) -> u16 {
        self.nodes[node].endpoint.port()
    }

    /// The test database's name (the same on every node).
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Options to connect as [`APP_USER`](crate::APP_USER) to the test database on `node`.
    pub fn app_options(&self, node: usize) -> sqlx::postgres::PgConnectOptions {
        self.nodes[node].endpoint.app_options(&self.database)
    }

    /// Options to connect as the superuser to the test database on `node`.
    pub fn admin_options(&self, node: usize) -> sqlx::postgres::PgConnectOptions {
        self.nodes[node].endpoint.admin_options(&self.database)
    }

    /// The node that is primary, as far as the cluster's own controls know.
    pub fn primary(&self) -> Option<usize> {
        self.nodes.iter().position(|n| n.primary)
    }

    /// Stops node `node`: `Fast` disconnects its sessions and shuts down cleanly,
    /// `Immediate` exits at once, as a crash does.
    ///
    /// # Errors
    /// When `pg_ctl stop` fails.
    pub async fn stop(&self, node: usize, mode: RestartMode) -> anyhow::Result<()> {
        self.nodes[node].server.stop_with(mode).await
    }

    /// Starts node `node` again after [`stop`](Self::stop), in the role it had.
    ///
    /// # Errors
    /// When the server does not start.
    pub async fn start_again(&self, node: usize) -> anyhow::Result<()> {
        self.nodes[node].server.start_again().await
    }

    /// Promotes standby `node` (`pg_ctl promote`, waiting until it accepts writes).
    ///
    /// # Errors
    /// When the promotion fails or does not finish within a minute.
    pub async fn promote(&mut self, node: usize) -> anyhow::Result<()> {
        self.nodes[node].server.promote().await?;
        for other in &mut self.nodes {
            other.primary = false;
        }
        self.nodes[node].primary = true;
        Ok(())
    }

    /// Turns node `node` (an old primary, stopped or not) into a standby of node `source`:
    /// its data is replaced by a fresh base backup of `source` (simpler and surer than
    /// `pg_rewind`), on the same port, and it is started.
    ///
    /// # Errors
    /// When the copy or the start fails.
    pub async fn rejoin_as_standby(&mut self, node: usize, source: usize) -> anyhow::Result<()> {
        anyhow::ensure!(node != source, "a node cannot follow itself");
        let (target, from) = if node < source {
            let (left, right) = self.nodes.split_at_mut(source);
            (&mut left[node], &right[0])
        } else {
            let (left, right) = self.nodes.split_at_mut(node);
            (&mut right[0], &left[source])
        };
        target.server.rejoin_as_standby_of(&from.server).await?;
        target.primary = false;
        Ok(())
    }

    /// Freezes every process of node `node` (SIGSTOP): it accepts TCP connections in the
    /// kernel's backlog but never answers.
    ///
    /// # Errors
    /// When the server is not running.
    pub async fn freeze(&self, node: usize) -> anyhow::Result<()> {
        self.nodes[node].server.freeze().await
    }

    /// Resumes node `node` after [`freeze`](Self::freeze).
    ///
    /// # Errors
    /// When the server is not running.
    pub async fn thaw(&self, node: usize) -> anyhow::Result<()> {
        self.nodes[node].server.thaw().await
    }

    /// Whether node `node` answers and is in recovery (a standby), asked as the superuser.
    ///
    /// # Errors
    /// When the node does not answer.
    pub async fn is_in_recovery(&self, node: usize) -> anyhow::Result<bool> {
        let mut conn = self.nodes[node].endpoint.connect_admin("postgres").await?;
        let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
            .fetch_one(&mut conn)
            .await?;
        let _ = conn.close().await;
        Ok(in_recovery)
    }

    /// Waits until standby `node` has replayed everything the primary had written when this
    /// was called, up to `deadline`.
    ///
    /// # Errors
    /// When there is no primary, or the standby does not catch up in time.
    pub async fn wait_replayed(&self, node: usize, deadline: Duration) -> anyhow::Result<()> {
        let primary = self
            .primary()
            .ok_or_else(|| anyhow::anyhow!("no primary"))?;
        let mut conn = self.nodes[primary]
            .endpoint
            .connect_admin("postgres")
            .await?;
        // The insert position, not the write position: with `synchronous_commit = off` (the
        // test servers' setting) a commit returns before its record is written, so the write
        // position can still be behind the change to wait for.
        let lsn: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
            .fetch_one(&mut conn)
            .await?;
        let _ = conn.close().await;
        let start = tokio::time::Instant::now();
        loop {
            let mut conn = self.nodes[node].endpoint.connect_admin("postgres").await?;
            let caught_up: Option<bool> =
                sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn")
                    .bind(&lsn)
                    .fetch_one(&mut conn)
                    .await?;
            let _ = conn.close().await;
            if caught_up == Some(true) {
                return Ok(());
            }
            anyhow::ensure!(
                start.elapsed() < deadline,
                "standby {node} did not replay {lsn} within {deadline:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
