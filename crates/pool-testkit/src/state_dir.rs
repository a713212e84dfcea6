//! # Implementation details
//!
//! Every server, container and PgBouncer the testkit starts has a state directory under
//! `$TMPDIR/servio-pool-testkit/`, named `<kind>-<owner pid>-<sequence>-<nanos>`, and a
//! watchdog: a small shell loop in its own process group that waits for the owning process to
//! disappear and then runs the directory's cleanup (stop the server, remove the container,
//! delete the directory). Rust runs no destructors for statics and a test process can be
//! killed, so the watchdog is what guarantees nothing outlives the run; Ctrl-C does not reach
//! it because it is not in the terminal's foreground process group. If the watchdog itself is
//! killed, [`sweep_leftovers`] removes what is left on the next run.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use crate::process::{give_to_server, is_alive};

/// File in a state directory that names a container to remove.
pub(crate) const CONTAINER_ID_FILE: &str = "container-id";
/// File in a state directory that holds a PgBouncer pid.
pub(crate) const PGBOUNCER_PID_FILE: &str = "pgbouncer.pid";
/// Docker label on every container we start: `<hostname>:<owner pid>`.
pub(crate) const OWNER_LABEL: &str = "servio-pool-testkit.owner";

/// Cleanup of one state directory, as a shell script taking the directory as `$1`.
///
/// Idempotent: it is run by `Drop`, by the watchdog and by the sweep, whichever comes first.
/// A pid read from a file is signalled only while its command line still names the program,
/// so a recycled pid is never hit.
const CLEANUP_SCRIPT: &str = r#"
dir="$1"
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
children() {
    for stat in /proc/[0-9]*/stat; do
        read -r pid comm state ppid rest < "$stat" 2>/dev/null && [ "$ppid" = "$1" ] && echo "$pid"
    done
}
pm=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null)
if [ -n "$pm" ] && grep -q postgres "/proc/$pm/cmdline" 2>/dev/null; then
    # Every backend is a process group of its own: thaw each one, then shut down at once.
    kids=$(children "$pm")
    kill -CONT "$pm" $kids 2>/dev/null
    kill -QUIT "$pm" 2>/dev/null
    i=0
    while alive "$pm" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    if alive "$pm"; then kill -KILL "$pm" $kids 2>/dev/null; fi
fi
pb=$(head -n 1 "$dir/pgbouncer.pid" 2>/dev/null)
if [ -n "$pb" ] && grep -q pgbouncer "/proc/$pb/cmdline" 2>/dev/null; then
    kill -KILL "$pb" 2>/dev/null
fi
cid=$(head -n 1 "$dir/container-id" 2>/dev/null)
if [ -n "$cid" ]; then
    docker rm --force --volumes "$cid" >/dev/null 2>&1
fi
rm -rf "$dir"
"#;

/// The watchdog: waits for the owner (`$1`) to exit, then cleans up the directory (`$2`).
const WATCHDOG_SCRIPT: &str = r#"
owner="$1"; dir="$2"
while kill -0 "$owner" 2>/dev/null; do sleep 1; done
sh -c "$CLEANUP" cleanup "$dir"
"#;

/// The parent of every state directory.
pub(crate) fn base_dir() -> PathBuf {
    std::env::temp_dir().join("servio-pool-testkit")
}

/// A state directory and its watchdog; dropping it runs the cleanup at once.
pub(crate) struct StateDir {
    path: PathBuf,
    watchdog: Option<Child>,
}

impl std::fmt::Debug for StateDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDir")
            .field("path", &self.path)
            .finish()
    }
}

impl StateDir {
    /// Creates a fresh state directory of `kind`, owned by the server account, and starts
    /// its watchdog.
    pub(crate) fn create(kind: &str) -> anyhow::Result<Self> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(|| {
            sweep_dirs(&base_dir());
        });

        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        // Ordering: only uniqueness matters.
        let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let base = base_dir();
        std::fs::create_dir_all(&base)
            .with_context(|| format!("cannot create {}", base.display()))?;
        // The server account must be able to reach its own directory inside.
        let _ = std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o1777));
        let path = base.join(format!("{kind}-{}-{sequence}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
        let mut dir = Self {
            path,
            watchdog: None,
        };
        give_to_server(&dir.path)?;
        dir.watchdog = Some(spawn_watchdog(&dir.path)?);
        Ok(dir)
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        run_cleanup(&self.path);
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

fn spawn_watchdog(dir: &Path) -> anyhow::Result<Child> {
    use std::os::unix::process::CommandExt as _;
    std::process::Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG_SCRIPT)
        .arg("watchdog")
        .arg(std::process::id().to_string())
        .arg(dir)
        .env("CLEANUP", CLEANUP_SCRIPT)
        // Its own process group: Ctrl-C on the terminal must not take it down with us.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the cleanup watchdog (sh)")
}

fn run_cleanup(dir: &Path) {
    let _ = std::process::Command::new("sh")
        .arg("-c")
        .arg(CLEANUP_SCRIPT)
        .arg("cleanup")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The owner pid encoded in a state directory's name.
fn owner_of(name: &str) -> Option<u32> {
    name.split('-').nth(1)?.parse().ok()
}

fn sweep_dirs(base: &Path) -> usize {
    let mut removed = 0;
    for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(owner) = name.to_str().and_then(owner_of) else {
            continue;
        };
        if owner != std::process::id() && !is_alive(owner) {
            tracing::info!(dir = %entry.path().display(), "removing a leftover of a dead test run");
            run_cleanup(&entry.path());
            removed += 1;
        }
    }
    removed
}

/// Removes servers, PgBouncers, containers and directories left by test runs that were
/// killed before their cleanup could run; returns how many were removed.
///
/// Runs by itself before the first server of a process starts; `cargo xtask test` calls it
/// up front so it can say what it removed.
pub fn sweep_leftovers() -> usize {
    let mut removed = sweep_dirs(&base_dir());
    removed += crate::docker::sweep_containers();
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_read_from_the_directory_name() {
        assert_eq!(owner_of("native-1234-0-99"), Some(1234));
        assert_eq!(owner_of("pgbouncer-77-3-1"), Some(77));
        assert_eq!(owner_of("unrelated"), None);
    }
}
