//! # Implementation details
//!
//! Running the PostgreSQL and PgBouncer binaries: finding them, dropping root privileges
//! (both refuse to run as root), and turning a failed command into an error a reader can act
//! on.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;

use anyhow::{Context as _, bail};
use tokio::process::Command;

pub(crate) use crate::tools::{Account, pg_bindir, server_account};

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

/// A free TCP port on 127.0.0.1, as the kernel hands it out.
///
/// Another process may take it before the server binds it; callers retry on that failure.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind a port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}
