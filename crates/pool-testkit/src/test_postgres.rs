//! [`TestPostgres`]: one running PostgreSQL server from any backend.

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use crate::backend::{Backend, DATABASE_URL_ENV};
use crate::docker::DockerServer;
use crate::endpoint::Endpoint;
use crate::native::NativeServer;

/// A running PostgreSQL server with the testkit's roles, from the backend asked for.
///
/// Dropping it stops the server and removes its container or directory (a server named by
/// URL is left alone). If the process dies first, a watchdog does the same.
pub struct TestPostgres {
    backend: Backend,
    reason: String,
    endpoint: Endpoint,
    running: Running,
}

enum Running {
    Native(NativeServer),
    Docker(Box<DockerServer>),
    /// The URL it was named by (it carries a password: never printed).
    Url(String),
}

impl std::fmt::Debug for TestPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPostgres")
            .field("backend", &self.backend)
            .field("reason", &self.reason)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl TestPostgres {
    /// Starts (or, for [`Backend::Url`], connects to) a server.
    ///
    /// [`Backend::Auto`] tries docker (an engine answers and an image is present, pullable
    /// or buildable), then native (PostgreSQL binaries installed), then url
    /// (`SERVIO_TEST_DATABASE_URL` set).
    ///
    /// # Errors
    ///
    /// When the backend cannot provide a server; the message says what to install or set.
    ///
    /// # Cancel safety
    ///
    /// Cancelling it stops whatever was started so far (or the watchdog does, at exit).
    pub async fn start(backend: Backend) -> anyhow::Result<Self> {
        match backend {
            Backend::Docker => {
                let why = crate::docker::availability().await?;
                Self::docker(format!("asked for with docker; {why}")).await
            }
            Backend::Native => Self::native("asked for with native".to_owned()).await,
            Backend::Url => Self::url("asked for with url".to_owned()).await,
            Backend::Auto => Self::auto().await,
        }
    }

    async fn auto() -> anyhow::Result<Self> {
        let docker_error = match crate::docker::availability().await {
            Ok(why) => match Self::docker(format!("auto: {why}")).await {
                Ok(server) => return Ok(server),
                Err(error) => format!("{error:#}"),
            },
            Err(error) => format!("{error:#}"),
        };
        let native_error = match crate::process::pg_bindir()
            .and_then(|_| crate::process::server_account())
        {
            Ok(_) => {
                let why = format!(
                    "auto: docker is unusable ({docker_error}); PostgreSQL binaries are installed"
                );
                match Self::native(why).await {
                    Ok(server) => return Ok(server),
                    Err(error) => format!("{error:#}"),
                }
            }
            Err(error) => format!("{error:#}"),
        };
        if std::env::var_os(DATABASE_URL_ENV).is_some() {
            let why = format!(
                "auto: docker is unusable ({docker_error}); native is unusable ({native_error}); \
                 {DATABASE_URL_ENV} is set"
            );
            return Self::url(why).await;
        }
        anyhow::bail!(
            "no way to get a PostgreSQL server for the tests:\n\
             - docker: {docker_error}\n\
             - native: {native_error}\n\
             - url: {DATABASE_URL_ENV} is not set\n\
             Do one of: start Docker (the image is built from local PostgreSQL binaries when \
             none can be pulled); install PostgreSQL (Debian/Ubuntu: `apt-get install \
             postgresql`); or set {DATABASE_URL_ENV}=postgres://SUPERUSER:PASSWORD@HOST:PORT/postgres"
        )
    }

    async fn native(reason: String) -> anyhow::Result<Self> {
        let server = NativeServer::start().await?;
        Ok(Self {
            backend: Backend::Native,
            reason,
            endpoint: server.endpoint(),
            running: Running::Native(server),
        })
    }

    async fn docker(reason: String) -> anyhow::Result<Self> {
        let server = DockerServer::start().await?;
        Ok(Self {
            backend: Backend::Docker,
            reason,
            endpoint: server.endpoint(),
            running: Running::Docker(Box::new(server)),
        })
    }

    async fn url(reason: String) -> anyhow::Result<Self> {
        let url = std::env::var(DATABASE_URL_ENV).map_err(|_| {
            anyhow::anyhow!(
                "the url backend needs {DATABASE_URL_ENV}=postgres://SUPERUSER:PASSWORD@HOST:PORT/postgres"
            )
        })?;
        Self::connect_url(&url, reason).await
    }

    /// Uses the existing server `url` names (the url backend without the environment
    /// variable). The URL's user must be a superuser (or have CREATEROLE and CREATEDB): the
    /// application role is created (if missing) and test databases are created there.
    ///
    /// # Errors
    ///
    /// When the URL is malformed (it is never echoed: it holds a password), the server does
    /// not answer within 10 s, or the role cannot be created.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn from_url(url: &str) -> anyhow::Result<Self> {
        Self::connect_url(url, "a server named by URL".to_owned()).await
    }

    async fn connect_url(url: &str, reason: String) -> anyhow::Result<Self> {
        let endpoint = Endpoint::from_url(url)?;
        endpoint.wait_ready(Duration::from_secs(10)).await?;
        endpoint.ensure_app_role().await?;
        Ok(Self {
            backend: Backend::Url,
            reason,
            endpoint,
            running: Running::Url(url.to_owned()),
        })
    }

    /// The backend that provided the server (never [`Backend::Auto`]).
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Why this backend was used, in words for a person reading the test run's output.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The host to connect to.
    pub fn host(&self) -> &str {
        self.endpoint.host()
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.endpoint.port()
    }

    /// A superuser URL of the `postgres` database, to hand to child processes as
    /// `SERVIO_TEST_DATABASE_URL`.
    ///
    /// It carries the superuser's password: for servers the testkit started that is the
    /// well-known test password; for the url backend it is the URL that was given.
    pub fn superuser_url(&self) -> String {
        match &self.running {
            Running::Url(url) => url.clone(),
            _ => self.endpoint.superuser_url(),
        }
    }

    /// Superuser options on `database`.
    pub fn admin_options(&self, database: &str) -> PgConnectOptions {
        self.endpoint.admin_options(database)
    }

    /// [`APP_USER`](crate::APP_USER) options on `database`.
    pub fn app_options(&self, database: &str) -> PgConnectOptions {
        self.endpoint.app_options(database)
    }

    /// The directory the server lives in, if the testkit made one (native and docker).
    pub fn state_dir(&self) -> Option<std::path::PathBuf> {
        match &self.running {
            Running::Native(server) => Some(server.state_path()),
            Running::Docker(server) => Some(server.state_path()),
            Running::Url(_) => None,
        }
    }

    /// The container id, for the docker backend.
    pub fn container_id(&self) -> Option<&str> {
        match &self.running {
            Running::Docker(server) => Some(server.id()),
            _ => None,
        }
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}
