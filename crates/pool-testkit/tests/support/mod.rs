//! Helpers shared by the testkit's own tests: is a process, container or directory gone.

#![allow(dead_code, unreachable_pub)]

use std::process::{Command, Stdio};
use std::time::Duration;

/// Whether `pid` runs (a zombie waiting for its parent to reap it has stopped running).
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// Sends `SIG<name>` (`INT`, `KILL`) to every process in `pids`.
pub fn signal(name: &str, pids: &[u32]) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .args(pids.iter().map(u32::to_string))
        .status();
}

/// Polls `gone` until it holds, failing after a generous deadline.
pub async fn eventually(what: &str, mut gone: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !gone() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} is still there"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn quiet(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a Docker engine answers here.
pub fn docker_available() -> bool {
    quiet(Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]))
}

/// Whether a container with this id exists.
pub fn container_exists(id: &str) -> bool {
    quiet(Command::new("docker").args(["inspect", "--format", "{{.Id}}", id]))
}

/// The postmaster pid recorded in a native server's state directory.
pub fn postmaster_pid(state_dir: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(state_dir.join("data/postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}
