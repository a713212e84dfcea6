//! # Implementation details
//!
//! Running the PostgreSQL and PgBouncer binaries: finding them, dropping root privileges
//! (both refuse to run as root), and turning a failed command into an error a reader can act
//! on.

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, bail};
use tokio::process::Command;

/// The account servers run as when the caller is root: PostgreSQL refuses to run as root.
/// `SERVIO_TEST_UNPRIVILEGED_USER` names another one.
const DEFAULT_UNPRIVILEGED_USER: &str = "postgres";

/// A user and group id to run servers as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Account {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// Whether this process runs as root.
pub(crate) fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The account servers run as: an unprivileged one when we are root, else ourselves.
///
/// Returns `None` when no switch is needed.
pub(crate) fn server_account() -> anyhow::Result<Option<Account>> {
    if !is_root() {
        return Ok(None);
    }
    let name = std::env::var("SERVIO_TEST_UNPRIVILEGED_USER")
        .unwrap_or_else(|_| DEFAULT_UNPRIVILEGED_USER.to_owned());
    let passwd = std::fs::read_to_string("/etc/passwd").context("cannot read /etc/passwd")?;
    for line in passwd.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() >= 4 && fields[0] == name {
            let uid = fields[2].parse().context("malformed uid in /etc/passwd")?;
            let gid = fields[3].parse().context("malformed gid in /etc/passwd")?;
            return Ok(Some(Account { uid, gid }));
        }
    }
    bail!(
        "PostgreSQL refuses to run as root and there is no user `{name}` to run it as: \
         install the postgresql package (it creates `postgres`), create the user \
         (`useradd --system {name}`), or set SERVIO_TEST_UNPRIVILEGED_USER to an existing \
         unprivileged user"
    )
}

/// Hands `path` to the server account (when we are root), so the server can write there.
pub(crate) fn give_to_server(path: &Path) -> anyhow::Result<()> {
    if let Some(account) = server_account()? {
        std::os::unix::fs::chown(path, Some(account.uid), Some(account.gid))
            .with_context(|| format!("cannot hand {} to the server user", path.display()))?;
    }
    Ok(())
}

/// A command that runs `program` as the server account.
///
/// `setpriv` execs the program in place (unlike `su`/`runuser`, which fork), so the pid we
/// see is the server's own and signals reach it directly.
pub(crate) fn server_command(program: impl AsRef<OsStr>) -> anyhow::Result<Command> {
    let command = match server_account()? {
        None => Command::new(program),
        Some(account) => {
            let mut command = Command::new("setpriv");
            command
                .arg(format!("--reuid={}", account.uid))
                .arg(format!("--regid={}", account.gid))
                .arg("--clear-groups")
                .arg("--")
                .arg(program);
            command
        }
    };
    Ok(command)
}

/// Runs a command to completion and returns its standard output.
///
/// `what` names the step for the error message, which carries the tail of standard error.
pub(crate) async fn run(command: &mut Command, what: &str) -> anyhow::Result<String> {
    let output = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("{what}: cannot run {:?}", command.as_std().get_program()))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}): {}",
            output.status,
            tail(&String::from_utf8_lossy(&output.stderr), 20)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The last `lines` lines of `text`, trimmed.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Sends `signal` (a name such as `STOP`) to every process in `pids`.
pub(crate) async fn signal(pids: &[u32], signal: &str) -> anyhow::Result<()> {
    let mut command = Command::new("kill");
    command.arg(format!("-{signal}"));
    command.args(pids.iter().map(u32::to_string));
    run(&mut command, &format!("sending SIG{signal} to {pids:?}"))
        .await
        .map(drop)
}

/// The pids of the children of `parent`, from `/proc`.
pub(crate) fn children_of(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces, so read after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        if ppid == Some(parent) {
            children.push(pid);
        }
    }
    children
}

/// Whether a process with this pid exists (and is not a zombie waiting to be reaped).
pub(crate) fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
///
/// `SERVIO_TEST_PG_BINDIR` wins; then `pg_config --bindir`; then the newest
/// `/usr/lib/postgresql/*/bin` (Debian and Ubuntu); then the directory of `initdb` on `PATH`.
pub(crate) fn pg_bindir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("SERVIO_TEST_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").is_file() {
            return Ok(dir);
        }
        bail!("SERVIO_TEST_PG_BINDIR={} holds no initdb", dir.display());
    }
    if let Ok(output) = std::process::Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if output.status.success() && dir.join("initdb").is_file() {
            return Ok(dir);
        }
    }
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versioned.sort();
    if let Some((_, dir)) = versioned.pop() {
        return Ok(dir);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
            return Ok(dir);
        }
    }
    bail!(
        "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found: install them \
         (Debian/Ubuntu: `apt-get install postgresql`; macOS: `brew install postgresql@15`) \
         or set SERVIO_TEST_PG_BINDIR to the directory that holds them"
    )
}

/// A free TCP port on 127.0.0.1, as the kernel hands it out.
///
/// Another process may take it before the server binds it; callers retry on that failure.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind a port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}
