//! [`PgBouncer`]: a PgBouncer in front of a test server, in session or transaction mode.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::credentials::{APP_PASSWORD, APP_USER, SUPERUSER, SUPERUSER_PASSWORD};
use crate::process::{free_port, give_to_server, server_command, tail};
use crate::state_dir::{PGBOUNCER_PID_FILE, StateDir};
use crate::{TestDatabase, TestServer};

/// How long PgBouncer may take to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// PgBouncer's log, in its state directory.
const LOG_FILE: &str = "pgbouncer.log";
/// PgBouncer's stderr, in its state directory.
const STDERR_FILE: &str = "pgbouncer.stderr";

/// When PgBouncer hands a server connection back to its pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolMode {
    /// When the client disconnects: everything works as on a direct connection.
    Session,
    /// After each transaction: with sqlx 0.9 and PgBouncer 1.18, only simple-protocol
    /// statements and work inside explicit transactions are safe.
    Transaction,
}

impl PoolMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Transaction => "transaction",
        }
    }
}

/// The server a [`PgBouncer`] forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    host: String,
    port: u16,
}

impl Upstream {
    /// A server at `host:port` that knows the testkit's roles.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }
}

impl From<&TestServer> for Upstream {
    fn from(server: &TestServer) -> Self {
        Self::new(server.host(), server.port())
    }
}

impl From<&TestDatabase> for Upstream {
    fn from(database: &TestDatabase) -> Self {
        Self::new(database.host(), database.port())
    }
}

impl From<SocketAddr> for Upstream {
    fn from(addr: SocketAddr) -> Self {
        Self::new(addr.ip().to_string(), addr.port())
    }
}

impl From<(&str, u16)> for Upstream {
    fn from((host, port): (&str, u16)) -> Self {
        Self::new(host, port)
    }
}

/// A running PgBouncer (Debian's `pgbouncer`), listening on 127.0.0.1, with scram-sha-256
/// for both the testkit's roles. Stops on drop.
#[derive(Debug)]
pub struct PgBouncer {
    port: u16,
    mode: PoolMode,
    binary: PathBuf,
    config: PathBuf,
    child: tokio::process::Child,
    // Dropped last: kills PgBouncer if it is still there and removes the directory.
    state: StateDir,
}

impl PgBouncer {
    /// Starts PgBouncer in front of `upstream` (a [`TestServer`], a [`TestDatabase`]'s
    /// server, or a host and port); every database name is forwarded as is.
    ///
    /// # Errors
    ///
    /// When `pgbouncer` is not installed (the message says how to install it) or it does not
    /// start (the message carries its log).
    ///
    /// # Cancel safety
    ///
    /// Cancelling it stops PgBouncer.
    pub async fn start(upstream: impl Into<Upstream>, mode: PoolMode) -> anyhow::Result<Self> {
        let upstream = upstream.into();
        let binary = crate::tools::pgbouncer()?;
        let state = StateDir::create("pgbouncer")?;
        let port = free_port()?;
        let dir = state.path();
        let userlist = dir.join("userlist.txt");
        std::fs::write(
            &userlist,
            format!(
                "\"{APP_USER}\" \"{APP_PASSWORD}\"\n\"{SUPERUSER}\" \"{SUPERUSER_PASSWORD}\"\n"
            ),
        )?;
        give_to_server(&userlist)?;
        let log = dir.join(LOG_FILE);
        let config = dir.join("pgbouncer.ini");
        std::fs::write(
            &config,
            format!(
                "[databases]\n\
                 * = host={host} port={upstream_port}\n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = scram-sha-256\n\
                 auth_file = {userlist}\n\
                 pool_mode = {mode}\n\
                 ignore_startup_parameters = extra_float_digits\n\
                 admin_users = {SUPERUSER}\n\
                 max_client_conn = 500\n\
                 default_pool_size = 20\n\
                 logfile = {log}\n",
                host = upstream.host,
                upstream_port = upstream.port,
                userlist = userlist.display(),
                mode = mode.as_str(),
                log = log.display(),
            ),
        )?;
        give_to_server(&config)?;
        let child = spawn(&binary, &config, &state)?;
        let mut bouncer = Self {
            port,
            mode,
            binary,
            config,
            child,
            state,
        };
        bouncer.wait_ready().await?;
        Ok(bouncer)
    }

    /// Kills PgBouncer at once (SIGKILL, as in a crash or an OOM kill): every client and
    /// server connection drops without a goodbye. [`Self::start_again`] brings it back.
    ///
    /// # Errors
    ///
    /// When the process cannot be signalled or waited for.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe; PgBouncer may already be gone.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("cannot kill pgbouncer")
    }

    /// Starts PgBouncer again after [`Self::kill`], with the same settings on the same port,
    /// and waits until it listens. A running PgBouncer is killed first.
    ///
    /// # Errors
    ///
    /// When it does not start (the message carries its log).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: PgBouncer may be left starting.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_none() {
            self.kill().await?;
        }
        self.child = spawn(&self.binary, &self.config, &self.state)?;
        self.wait_ready().await
    }

    /// Options for PgBouncer's admin console (the `pgbouncer` database, as the superuser,
    /// one of its `admin_users`): `SHOW POOLS`, `PAUSE`, `RESUME`, `SET`, ...
    pub fn admin_options(&self) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .host(self.host())
            .port(self.port)
            .username(SUPERUSER)
            .password(SUPERUSER_PASSWORD)
            .database("pgbouncer")
            .ssl_mode(PgSslMode::Disable)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let log = self.state.path().join(LOG_FILE);
        let start = tokio::time::Instant::now();
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            let exited = self.child.try_wait()?;
            if exited.is_some() || start.elapsed() > READY_TIMEOUT {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                let stderr = std::fs::read_to_string(self.state.path().join(STDERR_FILE))
                    .unwrap_or_default();
                bail!(
                    "pgbouncer did not start ({}): {}",
                    exited.map_or_else(|| "no answer".to_owned(), |s| s.to_string()),
                    tail(&format!("{stderr}\n{log}"), 15)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The host (127.0.0.1).
    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// The port PgBouncer listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The pool mode it runs in.
    pub fn mode(&self) -> PoolMode {
        self.mode
    }

    /// Options to connect as [`APP_USER`] through PgBouncer to `database`.
    pub fn app_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .host(self.host())
            .port(self.port)
            .username(APP_USER)
            .password(APP_PASSWORD)
            .database(database)
            .ssl_mode(PgSslMode::Disable)
    }

    /// The directory it lives in (removed on drop).
    pub fn state_dir(&self) -> PathBuf {
        self.state.path().to_owned()
    }
}

/// Runs PgBouncer with `config` and records its pid in `state`, so a later run removes it
/// if this process dies without stopping it.
fn spawn(binary: &Path, config: &Path, state: &StateDir) -> anyhow::Result<tokio::process::Child> {
    // PgBouncer in the foreground logs every line to stderr as well as to its log file. Into a
    // file, never a pipe: a pipe nobody drains fills up after 64 KiB of log (a few hundred
    // logins) and PgBouncer then blocks on the write, accepting and answering no one.
    let stderr = std::fs::File::create(state.path().join(STDERR_FILE))
        .context("cannot create pgbouncer's stderr file")?;
    let child = server_command(binary)?
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if let Some(pid) = child.id() {
        std::fs::write(state.path().join(PGBOUNCER_PID_FILE), pid.to_string())?;
    }
    Ok(child)
}
