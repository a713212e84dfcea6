//! [`TestDatabase`]: a fresh database per test on a shared server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::OnceCell;

use crate::backend::Backend;
use crate::endpoint::Endpoint;
use crate::test_postgres::TestPostgres;

/// The server every [`TestDatabase::create`] of this process shares. Never dropped: the
/// watchdog removes it when the process exits, however it exits.
async fn shared_server() -> anyhow::Result<&'static TestPostgres> {
    static SHARED: OnceCell<Result<TestPostgres, String>> = OnceCell::const_new();
    SHARED
        .get_or_init(|| async {
            let started = async { TestPostgres::start(Backend::from_env()?).await }.await;
            match started {
                Ok(server) => {
                    tracing::info!(
                        backend = %server.backend(),
                        reason = server.reason(),
                        "test PostgreSQL at {}:{}",
                        server.host(),
                        server.port()
                    );
                    Ok(server)
                }
                // Kept as text so every test of the run reports the same cause at once,
                // instead of each one trying (and failing) to start a server again.
                Err(error) => Err(format!("{error:#}")),
            }
        })
        .await
        .as_ref()
        .map_err(|error| anyhow::anyhow!("{error}"))
}

/// A database of its own for one test, owned by [`APP_USER`](crate::APP_USER), on the test
/// server of this process; dropped (`WITH (FORCE)`) when the value drops.
///
/// The server is the one `SERVIO_TEST_DATABASE_URL` names when `cargo xtask test` provides
/// it, else one started by the backend `SERVIO_TEST_BACKEND` chooses.
pub struct TestDatabase {
    endpoint: Endpoint,
    name: String,
    /// Databases of a dedicated [`TestServer`](crate::TestServer) go with the server.
    drop_on_drop: bool,
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("host", &self.host())
            .field("port", &self.port())
            .field("name", &self.name)
            .finish()
    }
}

impl TestDatabase {
    /// Creates a fresh database on the shared test server, starting the server first if this
    /// is the first database of the process.
    ///
    /// # Errors
    ///
    /// When no server can be had (the message says what to install or set) or the database
    /// cannot be created.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a server started on the way stays shared; a database is only handed out
    /// (and then owned by the value) once created.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> anyhow::Result<()> {
    /// use sqlx::Connection as _;
    ///
    /// let db = pool_testkit::TestDatabase::create().await?;
    /// let mut conn = sqlx::PgConnection::connect_with(&db.app_options()).await?;
    /// let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await?;
    /// assert_eq!(one, 1);
    /// # Ok(()) }
    /// ```
    pub async fn create() -> anyhow::Result<Self> {
        let server = shared_server().await?;
        Self::create_on(server.endpoint(), true).await
    }

    pub(crate) async fn create_on(endpoint: &Endpoint, drop_on_drop: bool) -> anyhow::Result<Self> {
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        // Ordering: only uniqueness matters.
        let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("servio_test_{}_{sequence}_{nanos}", std::process::id());
        endpoint.create_database(&name).await?;
        Ok(Self {
            endpoint: endpoint.clone(),
            name,
            drop_on_drop,
        })
    }

    /// The server's host.
    pub fn host(&self) -> &str {
        self.endpoint.host()
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.endpoint.port()
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Options to connect as [`APP_USER`](crate::APP_USER) to this database.
    pub fn app_options(&self) -> PgConnectOptions {
        self.endpoint.app_options(&self.name)
    }

    /// Options to connect as the superuser to this database.
    pub fn admin_options(&self) -> PgConnectOptions {
        self.endpoint.admin_options(&self.name)
    }

    /// A superuser connection to this database, for server-side checks
    /// (`pg_stat_activity`, `pg_terminate_backend`, ...).
    ///
    /// # Errors
    ///
    /// When the server does not accept the connection within 10 s.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn admin_connection(&self) -> anyhow::Result<PgConnection> {
        self.endpoint.connect_admin(&self.name).await
    }

    /// Whether the server checks passwords: `false` under `trust` authentication, common on
    /// developer machines and possible for a server `SERVIO_TEST_DATABASE_URL` names.
    ///
    /// Finds out by logging in as [`APP_USER`](crate::APP_USER) with a wrong password.
    ///
    /// # Errors
    ///
    /// When the login fails for another reason than the password (the server is down, say).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn checks_passwords(&self) -> anyhow::Result<bool> {
        let wrong = self
            .app_options()
            .password("servio-testkit-probe-wrong-password");
        match PgConnection::connect_with(&wrong).await {
            Ok(conn) => {
                let _ = conn.close().await;
                Ok(false)
            }
            // 28P01 invalid_password; 28000 invalid_authorization_specification (pg_hba
            // `reject`, or a password method the role has no secret for): refused either way.
            Err(error)
                if error
                    .as_database_error()
                    .and_then(|e| e.code())
                    .is_some_and(|code| code == "28P01" || code == "28000") =>
            {
                Ok(true)
            }
            Err(error) => Err(anyhow::Error::new(error)
                .context("cannot tell whether the test server checks passwords")),
        }
    }

    /// For a wrong-password test: [`checks_passwords`](Self::checks_passwords), and when the
    /// server does not, records the calling test as [skipped](crate::skip) with the reason,
    /// so the test returns early instead of failing.
    ///
    /// # Errors
    ///
    /// As [`checks_passwords`](Self::checks_passwords).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn require_password_auth(&self) -> anyhow::Result<bool> {
        let checks = self.checks_passwords().await?;
        if !checks {
            crate::skip(
                "password authentication",
                &format!(
                    "the server at {}:{} accepts a wrong password (trust authentication), so \
                     there is no refusal to test",
                    self.host(),
                    self.port()
                ),
            );
        }
        Ok(checks)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.drop_on_drop {
            self.endpoint.drop_database_blocking(&self.name);
        }
    }
}
