//! # Implementation details
//!
//! Creating a PostgreSQL data directory with the testkit's roles: `initdb` with the
//! superuser's password and scram-sha-256 for TCP, then the application role through
//! single-user mode (no server, no port, no race), then settings for a throwaway server
//! (durability off: a test server's data is worth nothing after the run).

use std::path::Path;
use std::process::Stdio;

use anyhow::Context as _;
use tokio::io::AsyncWriteExt as _;

use crate::credentials::{APP_PASSWORD, APP_USER, SUPERUSER, SUPERUSER_PASSWORD, sql_literal};
use crate::process::{give_to_server, server_command, tail};

/// Where the server listens.
#[derive(Debug, Clone)]
pub(crate) enum Listen {
    /// 127.0.0.1 on this port, with the Unix socket in `socket_dir`.
    Local { port: u16, socket_dir: String },
    /// Every interface on 5432 and no Unix socket (inside a container).
    Container,
}

/// Initialises `data` (which must not exist; its parent belongs to the server account).
pub(crate) async fn init_data_dir(
    bindir: &Path,
    data: &Path,
    listen: &Listen,
) -> anyhow::Result<()> {
    let parent = data.parent().context("data directory has no parent")?;
    let pwfile = parent.join("superuser-password");
    std::fs::write(&pwfile, SUPERUSER_PASSWORD)?;
    give_to_server(&pwfile)?;
    let initdb = crate::process::run(
        server_command(bindir.join("initdb"))?
            .arg("--pgdata")
            .arg(data)
            .arg("--username")
            .arg(SUPERUSER)
            .arg("--pwfile")
            .arg(&pwfile)
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .args(["--encoding=UTF8", "--locale=C", "--no-sync"]),
        "initdb (creating the test server's data directory)",
    )
    .await;
    let _ = std::fs::remove_file(&pwfile);
    initdb?;

    let app_role = format!(
        "CREATE ROLE {APP_USER} LOGIN PASSWORD {};\n",
        sql_literal(APP_PASSWORD)
    );
    let mut single = server_command(bindir.join("postgres"))?
        .arg("--single")
        .arg("-D")
        .arg(data)
        .arg("postgres")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run postgres --single")?;
    let mut stdin = single.stdin.take().context("no stdin")?;
    stdin.write_all(app_role.as_bytes()).await?;
    drop(stdin);
    let output = single.wait_with_output().await?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || stderr.contains("ERROR") {
        anyhow::bail!(
            "creating the application role failed: {}",
            tail(&stderr, 10)
        );
    }

    let listen_settings = match listen {
        Listen::Local { port, socket_dir } => format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = {}\n",
            sql_literal(socket_dir)
        ),
        Listen::Container => {
            "listen_addresses = '*'\nport = 5432\nunix_socket_directories = ''\njit = off\n"
                .to_owned()
        }
    };
    let settings = format!(
        "\n# servio-pool testkit: a throwaway server\n{listen_settings}\
         fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
         shared_buffers = 16MB\nmax_connections = 100\n\
         timezone = 'UTC'\nlog_timezone = 'UTC'\n\
         log_line_prefix = '%m [%p] %q%a '\n"
    );
    let conf = data.join("postgresql.conf");
    let mut contents = std::fs::read_to_string(&conf)?;
    contents.push_str(&settings);
    std::fs::write(&conf, contents)?;
    if matches!(listen, Listen::Container) {
        // Inside a container clients arrive from the bridge network, not from 127.0.0.1.
        let hba = data.join("pg_hba.conf");
        let mut contents = std::fs::read_to_string(&hba)?;
        contents
            .push_str("host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n");
        std::fs::write(&hba, contents)?;
    }
    Ok(())
}
