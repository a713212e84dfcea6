//! [`TestServer`]: a dedicated server for tests that inject faults.

use sqlx::Connection as _;

use crate::credentials::sql_literal;
use crate::database::TestDatabase;
use crate::endpoint::Endpoint;
use crate::native::NativeServer;

/// How [`TestServer::restart`] shuts the server down first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestartMode {
    /// Sessions are disconnected cleanly (`pg_ctl -m fast`).
    Fast,
    /// The server dies at once, as in a crash, and recovers on start (`pg_ctl -m immediate`).
    Immediate,
}

/// A PostgreSQL server of its own, with controls to break it.
///
/// It uses the native backend (`initdb` + `pg_ctl`): a restart keeps its port, and freezing
/// stops the postmaster and every backend at once. Dropping it stops the server and removes
/// its directory.
#[derive(Debug)]
pub struct TestServer {
    native: NativeServer,
    endpoint: Endpoint,
}

impl TestServer {
    /// Starts a dedicated server.
    ///
    /// # Errors
    ///
    /// When the PostgreSQL binaries are missing (the message says how to install them) or the
    /// server does not start.
    ///
    /// # Cancel safety
    ///
    /// Cancelling it stops what was started so far.
    pub async fn start() -> anyhow::Result<Self> {
        let native = NativeServer::start().await?;
        let endpoint = native.endpoint();
        Ok(Self { native, endpoint })
    }

    /// A fresh database on this server, owned by [`APP_USER`](crate::APP_USER). It is not
    /// dropped by itself: it goes with the server.
    ///
    /// # Errors
    ///
    /// When the server is down or frozen.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn database(&self) -> anyhow::Result<TestDatabase> {
        TestDatabase::create_on(&self.endpoint, false).await
    }

    /// The host (127.0.0.1).
    pub fn host(&self) -> &str {
        self.endpoint.host()
    }

    /// The port; it stays the same across stops and restarts.
    pub fn port(&self) -> u16 {
        self.endpoint.port()
    }

    /// Stops the server (fast shutdown: every session is disconnected).
    ///
    /// # Errors
    ///
    /// When `pg_ctl stop` fails; the error carries the server log's tail.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: the server may be left stopping.
    pub async fn stop(&self) -> anyhow::Result<()> {
        self.native.stop().await
    }

    /// Starts the server again after [`Self::stop`], on the same port.
    ///
    /// # Errors
    ///
    /// When `pg_ctl start` fails; the error carries the server log's tail.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: the server may be left starting.
    pub async fn start_again(&self) -> anyhow::Result<()> {
        self.native.start_again().await
    }

    /// Restarts the server on the same port and waits until it accepts logins.
    ///
    /// # Errors
    ///
    /// When `pg_ctl restart` fails; the error carries the server log's tail.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: the server may be left restarting.
    pub async fn restart(&self, mode: RestartMode) -> anyhow::Result<()> {
        self.native.restart(mode).await
    }

    /// Freezes the whole server (SIGSTOP to the postmaster and each backend): connections
    /// stay open and connects are accepted by the kernel, but nothing answers.
    ///
    /// # Errors
    ///
    /// When the server is not running.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn freeze(&self) -> anyhow::Result<()> {
        self.native.freeze().await
    }

    /// Resumes a frozen server.
    ///
    /// # Errors
    ///
    /// When the server is not running.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn thaw(&self) -> anyhow::Result<()> {
        self.native.thaw().await
    }

    /// Terminates every backend whose `application_name` is `application_name` and returns
    /// how many were terminated.
    ///
    /// # Errors
    ///
    /// When the server does not answer.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, though backends may already be terminated.
    pub async fn terminate_backends(&self, application_name: &str) -> anyhow::Result<u64> {
        let mut conn = self.endpoint.connect_admin("postgres").await?;
        let terminated: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()) AS t",
        )
        .bind(application_name)
        .fetch_one(&mut conn)
        .await?;
        let _ = conn.close().await;
        Ok(u64::try_from(terminated).unwrap_or(0))
    }

    /// Makes every new transaction read-only (or writable again), for sessions open now
    /// and later (`ALTER SYSTEM SET default_transaction_read_only` and a reload): writes fail
    /// with SQLSTATE 25006, as on a standby.
    ///
    /// # Errors
    ///
    /// When the server does not answer.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe; the setting may or may not have changed.
    pub async fn set_read_only(&self, read_only: bool) -> anyhow::Result<()> {
        let value = if read_only { "on" } else { "off" };
        self.alter_system(&[("default_transaction_read_only", value)])
            .await?;
        let mut conn = self.endpoint.connect_admin("postgres").await?;
        sqlx::query("SELECT pg_reload_conf()")
            .execute(&mut conn)
            .await?;
        let _ = conn.close().await;
        Ok(())
    }

    /// Sets the server's `max_connections` to `max_connections` and restarts it (fast).
    ///
    /// One slot stays reserved for superusers, so the testkit's own controls keep working:
    /// [`APP_USER`](crate::APP_USER) can open `max_connections - 1` connections, and the next
    /// is refused with SQLSTATE 53300.
    ///
    /// # Errors
    ///
    /// When `max_connections` is below 2 or the server does not restart.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: the server may be left restarting.
    pub async fn set_max_connections(&self, max_connections: u32) -> anyhow::Result<()> {
        anyhow::ensure!(
            max_connections >= 2,
            "max_connections must be at least 2 (one slot is reserved for the superuser), got {max_connections}"
        );
        self.alter_system(&[
            ("max_connections", &max_connections.to_string()),
            ("superuser_reserved_connections", "1"),
        ])
        .await?;
        self.restart(RestartMode::Fast).await
    }

    async fn alter_system(&self, settings: &[(&str, &str)]) -> anyhow::Result<()> {
        let mut conn = self.endpoint.connect_admin("postgres").await?;
        for (name, value) in settings {
            let sql = format!("ALTER SYSTEM SET {name} = {}", sql_literal(value));
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await?;
        }
        let _ = conn.close().await;
        Ok(())
    }

    /// The directory the server lives in (removed on drop).
    pub fn state_dir(&self) -> std::path::PathBuf {
        self.native.state_path()
    }

    /// The postmaster's pid.
    ///
    /// # Errors
    ///
    /// When the server is not running.
    pub fn postmaster_pid(&self) -> anyhow::Result<u32> {
        self.native.postmaster_pid()
    }
}
