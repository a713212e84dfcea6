//! # Implementation details
//!
//! The native backend: `initdb` + `pg_ctl` in a state directory, on a free 127.0.0.1 port,
//! as the server account. Every backend calls `setsid()` and is a process group of its own,
//! so freezing signals the postmaster (pid from `postmaster.pid`) and each of its children.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::cluster::{Listen, init_data_dir};
use crate::endpoint::Endpoint;
use crate::process::{children_of, free_port, pg_bindir, run, server_command, signal};
use crate::server::RestartMode;
use crate::state_dir::StateDir;

/// How long `pg_ctl` may wait for a start or stop.
const PG_CTL_WAIT_SECS: &str = "60";
/// How many ports to try when another process takes the free one first.
const PORT_ATTEMPTS: usize = 5;

/// A PostgreSQL server run by `pg_ctl` from a throwaway data directory.
#[derive(Debug)]
pub(crate) struct NativeServer {
    bindir: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    // Dropped last: stops the server and removes the directory.
    state: StateDir,
}

impl NativeServer {
    /// Creates and starts a server.
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let bindir = pg_bindir()?;
        let state = StateDir::create("native")?;
        let data = state.path().join("data");
        let log = state.path().join("postgres.log");
        let socket_dir = state.path().to_string_lossy().into_owned();
        let port = free_port()?;
        init_data_dir(&bindir, &data, &Listen::Local { port, socket_dir }).await?;
        Self {
            bindir,
            data,
            log,
            port,
            state,
        }
        .launch()
        .await
    }

    /// Creates a hot standby streaming from `source` (`pg_basebackup -R` over `source`'s
    /// Unix socket, where the superuser needs no password), and starts it.
    pub(crate) async fn start_standby_of(source: &NativeServer) -> anyhow::Result<Self> {
        let state = StateDir::create("standby")?;
        let mut server = Self {
            bindir: pg_bindir()?,
            data: state.path().join("data"),
            log: state.path().join("postgres.log"),
            port: free_port()?,
            state,
        };
        server.copy_from(source).await?;
        server.launch().await
    }

    /// Replaces this (stopped) server's data with a fresh base backup of `source`, so it
    /// comes back, on the same port, as a standby of `source`.
    pub(crate) async fn rejoin_as_standby_of(
        &mut self,
        source: &NativeServer,
    ) -> anyhow::Result<()> {
        let _ = self.stop_with(RestartMode::Immediate).await;
        std::fs::remove_dir_all(&self.data)
            .with_context(|| format!("cannot remove {}", self.data.display()))?;
        self.copy_from(source).await?;
        self.start_postmaster().await
    }

    /// `pg_basebackup -R` of `source` into this server's data directory, then this server's
    /// own port and socket directory.
    async fn copy_from(&mut self, source: &NativeServer) -> anyhow::Result<()> {
        run(
            server_command(self.bindir.join("pg_basebackup"))?
                .arg("--pgdata")
                .arg(&self.data)
                .arg("--host")
                .arg(source.state.path())
                .arg("--port")
                .arg(source.port.to_string())
                .arg("--username")
                .arg(crate::credentials::SUPERUSER)
                .args(["--write-recovery-conf", "--wal-method=stream"])
                .args(["--checkpoint=fast", "--no-sync"]),
            "pg_basebackup (copying the primary for a standby)",
        )
        .await?;
        let socket_dir = self.state.path().to_string_lossy().into_owned();
        self.append_conf(&format!(
            "unix_socket_directories = {}
",
            crate::credentials::sql_literal(&socket_dir)
        ))?;
        self.set_port(self.port)
    }

    /// Starts the postmaster, moving to another free port if someone took this one first.
    async fn launch(mut self) -> anyhow::Result<Self> {
        let mut attempt = 1;
        loop {
            match self.start_postmaster().await {
                Ok(()) => return Ok(self),
                Err(error) if attempt < PORT_ATTEMPTS && self.port_taken() => {
                    tracing::debug!("port {} was taken, trying another: {error:#}", self.port);
                    attempt += 1;
                    let port = free_port()?;
                    self.set_port(port)?;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Appends `lines` to `postgresql.conf` (later lines win).
    pub(crate) fn append_conf(&self, lines: &str) -> anyhow::Result<()> {
        let conf = self.data.join("postgresql.conf");
        let mut contents = std::fs::read_to_string(&conf)?;
        contents.push_str(lines);
        std::fs::write(&conf, contents)?;
        Ok(())
    }

    /// Promotes a standby to primary and waits until it accepts writes.
    pub(crate) async fn promote(&self) -> anyhow::Result<()> {
        self.pg_ctl(&["promote"], "pg_ctl promote").await
    }

    /// Where the server listens.
    pub(crate) fn endpoint(&self) -> Endpoint {
        Endpoint::local("127.0.0.1", self.port)
    }

    /// The state directory (for tests that check it is removed).
    pub(crate) fn state_path(&self) -> PathBuf {
        self.state.path().to_owned()
    }

    fn port_taken(&self) -> bool {
        std::fs::read_to_string(&self.log).is_ok_and(|log| log.contains("could not bind"))
    }

    fn set_port(&mut self, port: u16) -> anyhow::Result<()> {
        self.append_conf(&format!("port = {port}\n"))?;
        self.port = port;
        Ok(())
    }

    async fn pg_ctl(&self, args: &[&str], what: &str) -> anyhow::Result<()> {
        let result = run(
            server_command(self.bindir.join("pg_ctl"))?
                .args(args)
                .arg("--pgdata")
                .arg(&self.data)
                .args(["--wait", "--timeout", PG_CTL_WAIT_SECS]),
            what,
        )
        .await;
        result.map_err(|error| {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            error.context(format!(
                "server log ({}):\n{}",
                self.log.display(),
                crate::process::tail(&log, 15)
            ))
        })?;
        Ok(())
    }

    async fn start_postmaster(&self) -> anyhow::Result<()> {
        let log = self.log.to_string_lossy().into_owned();
        self.pg_ctl(&["start", "--log", &log], "pg_ctl start")
            .await?;
        self.endpoint().wait_ready(Duration::from_secs(30)).await
    }

    /// Starts the server after [`Self::stop`].
    pub(crate) async fn start_again(&self) -> anyhow::Result<()> {
        self.start_postmaster().await
    }

    /// Stops the server (fast shutdown: sessions are disconnected, then it exits).
    pub(crate) async fn stop(&self) -> anyhow::Result<()> {
        self.stop_with(RestartMode::Fast).await
    }

    /// Stops the server: `Fast` disconnects the sessions and shuts down cleanly,
    /// `Immediate` exits at once as in a crash (recovery runs at the next start).
    pub(crate) async fn stop_with(&self, mode: RestartMode) -> anyhow::Result<()> {
        self.thaw_quietly().await;
        let mode = match mode {
            RestartMode::Fast => "fast",
            RestartMode::Immediate => "immediate",
        };
        self.pg_ctl(&["stop", "--mode", mode], "pg_ctl stop").await
    }

    /// Restarts the server on the same port.
    pub(crate) async fn restart(&self, mode: RestartMode) -> anyhow::Result<()> {
        self.thaw_quietly().await;
        let mode = match mode {
            RestartMode::Fast => "fast",
            RestartMode::Immediate => "immediate",
        };
        let log = self.log.to_string_lossy().into_owned();
        self.pg_ctl(
            &["restart", "--mode", mode, "--log", &log],
            "pg_ctl restart",
        )
        .await?;
        self.endpoint().wait_ready(Duration::from_secs(30)).await
    }

    /// The postmaster's pid.
    pub(crate) fn postmaster_pid(&self) -> anyhow::Result<u32> {
        let pidfile = self.data.join("postmaster.pid");
        let contents = std::fs::read_to_string(&pidfile)
            .context("the server is not running (no postmaster.pid)")?;
        contents
            .lines()
            .next()
            .and_then(|line| line.trim().parse().ok())
            .context("malformed postmaster.pid")
    }

    /// Stops every process of the server: the postmaster first, so it forks no new backend,
    /// then each child (every backend is a process group of its own, so one signal to the
    /// postmaster's group would miss them).
    pub(crate) async fn freeze(&self) -> anyhow::Result<()> {
        let postmaster = self.postmaster_pid()?;
        signal(&[postmaster], "STOP").await?;
        let children = children_of(postmaster);
        if !children.is_empty() {
            signal(&children, "STOP").await?;
        }
        Ok(())
    }

    /// Resumes every process of the server.
    pub(crate) async fn thaw(&self) -> anyhow::Result<()> {
        let postmaster = self.postmaster_pid()?;
        let mut all = children_of(postmaster);
        all.push(postmaster);
        signal(&all, "CONT").await
    }

    async fn thaw_quietly(&self) {
        let _ = self.thaw().await;
    }
}
