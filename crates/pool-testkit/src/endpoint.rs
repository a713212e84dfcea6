//! # Implementation details
//!
//! Where a server is and how to log in to it, plus the superuser chores every backend
//! shares: waiting until it answers, making sure the application role exists, creating and
//! dropping test databases.

use std::time::Duration;

use anyhow::Context as _;
use sqlx::ConnectOptions as _;
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};

use crate::credentials::{
    APP_PASSWORD, APP_USER, SUPERUSER, SUPERUSER_PASSWORD, sql_identifier, sql_literal,
};

/// Bound on every connect the testkit makes on its own behalf.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A server's address and superuser login. Its `Debug` never shows the password.
#[derive(Clone)]
pub(crate) struct Endpoint {
    admin: PgConnectOptions,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host())
            .field("port", &self.port())
            .field("superuser", &self.admin.get_username())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// A server the testkit started: [`SUPERUSER`] on `host:port`, without TLS.
    pub(crate) fn local(host: &str, port: u16) -> Self {
        Self {
            admin: PgConnectOptions::new_without_pgpass()
                .host(host)
                .port(port)
                .username(SUPERUSER)
                .password(SUPERUSER_PASSWORD)
                .database("postgres")
                .ssl_mode(PgSslMode::Disable),
        }
    }

    /// A server named by a URL whose user is a superuser.
    pub(crate) fn from_url(url: &str) -> anyhow::Result<Self> {
        // Never echo the URL: it holds a password.
        let admin: PgConnectOptions = url.parse().map_err(|_| {
            anyhow::anyhow!(
                "SERVIO_TEST_DATABASE_URL is not a valid PostgreSQL URL \
                 (expected postgres://user:password@host:port/database)"
            )
        })?;
        let admin = match admin.get_database() {
            Some(_) => admin,
            None => admin.database("postgres"),
        };
        Ok(Self { admin })
    }

    pub(crate) fn host(&self) -> &str {
        self.admin.get_host()
    }

    pub(crate) fn port(&self) -> u16 {
        self.admin.get_port()
    }

    /// The superuser on `database`.
    pub(crate) fn admin_options(&self, database: &str) -> PgConnectOptions {
        self.admin.clone().database(database)
    }

    /// [`APP_USER`] on `database`.
    pub(crate) fn app_options(&self, database: &str) -> PgConnectOptions {
        self.admin
            .clone()
            .username(APP_USER)
            .password(APP_PASSWORD)
            .database(database)
    }

    /// A superuser URL for the maintenance database, for `SERVIO_TEST_DATABASE_URL`.
    ///
    /// Only for servers the testkit started: it carries the well-known test password.
    pub(crate) fn superuser_url(&self) -> String {
        format!(
            "postgres://{SUPERUSER}:{SUPERUSER_PASSWORD}@{}:{}/postgres?sslmode=disable",
            self.host(),
            self.port()
        )
    }

    /// Opens a superuser connection to `database`, bounded by a deadline.
    /// Its statements are not logged: role setup carries the test passwords.
    pub(crate) async fn connect_admin(&self, database: &str) -> anyhow::Result<PgConnection> {
        let options = self.admin_options(database).disable_statement_logging();
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(error)) => Err(anyhow::Error::new(error).context(format!(
                "cannot connect to PostgreSQL at {}:{} as {}",
                self.host(),
                self.port(),
                options.get_username()
            ))),
            Err(_) => anyhow::bail!(
                "connecting to PostgreSQL at {}:{} took longer than {CONNECT_TIMEOUT:?}",
                self.host(),
                self.port()
            ),
        }
    }

    /// Polls until the server accepts a superuser login, up to `deadline`.
    pub(crate) async fn wait_ready(&self, deadline: Duration) -> anyhow::Result<()> {
        let start = tokio::time::Instant::now();
        loop {
            match self.connect_admin("postgres").await {
                Ok(conn) => {
                    let _ = conn.close().await;
                    return Ok(());
                }
                Err(error) if start.elapsed() >= deadline => {
                    return Err(error.context(format!(
                        "the server did not accept connections within {deadline:?}"
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Makes sure [`APP_USER`] exists with [`APP_PASSWORD`] (servers named by URL).
    pub(crate) async fn ensure_app_role(&self) -> anyhow::Result<()> {
        let mut conn = self.connect_admin("postgres").await?;
        let password = sql_literal(APP_PASSWORD);
        let create = format!(
            "DO $$ BEGIN \
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) THEN \
                 CREATE ROLE {APP_USER} LOGIN PASSWORD {password}; \
               END IF; \
             END $$",
            name = sql_literal(APP_USER)
        );
        // Two processes may race to create it; the loser's retry sees it.
        if sqlx::raw_sql(sqlx::AssertSqlSafe(create.clone()))
            .execute(&mut conn)
            .await
            .is_err()
        {
            sqlx::raw_sql(sqlx::AssertSqlSafe(create))
                .execute(&mut conn)
                .await
                .context("cannot create the application role")?;
        }
        // An existing role may have another password: the tests log in with the known one.
        let password_sql = format!("ALTER ROLE {APP_USER} WITH LOGIN PASSWORD {password}");
        sqlx::raw_sql(sqlx::AssertSqlSafe(password_sql))
            .execute(&mut conn)
            .await
            .context("cannot set the application role's password")?;
        let _ = conn.close().await;
        Ok(())
    }

    /// Creates `name`, owned by [`APP_USER`].
    pub(crate) async fn create_database(&self, name: &str) -> anyhow::Result<()> {
        let mut conn = self.connect_admin("postgres").await?;
        let sql = format!("CREATE DATABASE {} OWNER {APP_USER}", sql_identifier(name));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .with_context(|| format!("cannot create test database {name}"))?;
        let _ = conn.close().await;
        Ok(())
    }

    /// Drops `name`, disconnecting whoever is still connected.
    pub(crate) async fn drop_database(&self, name: &str) -> anyhow::Result<()> {
        let mut conn = self.connect_admin("postgres").await?;
        let sql = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            sql_identifier(name)
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .with_context(|| format!("cannot drop test database {name}"))?;
        let _ = conn.close().await;
        Ok(())
    }

    /// [`Self::drop_database`] from synchronous code (a `Drop`), on a thread of its own so it
    /// works inside and outside any runtime.
    pub(crate) fn drop_database_blocking(&self, name: &str) {
        let endpoint = self.clone();
        let name = name.to_owned();
        let worker = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(endpoint.drop_database(&name))
        });
        match worker.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!("{error:#}"),
            Err(_) => tracing::warn!("dropping a test database panicked"),
        }
    }
}
