//! # Implementation details
//!
//! Finding what the testkit runs: the PostgreSQL server binaries, PgBouncer, openssl, and the
//! account servers run as when the caller is root. Standard library and `anyhow` only:
//! `cargo xtask` compiles this same file into itself (`#[path]`) to check the prerequisites
//! before it builds anything, so both look in the same places.

use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context as _, bail};

/// The account servers run as when the caller is root: PostgreSQL refuses to run as root.
/// `SERVIO_TEST_UNPRIVILEGED_USER` names another one.
const DEFAULT_UNPRIVILEGED_USER: &str = "postgres";

/// Directories searched after `PATH`: Debian installs PgBouncer in `/usr/sbin`, which is not
/// on an ordinary user's `PATH`; Homebrew uses `/opt/homebrew/bin` on Apple silicon.
const EXTRA_DIRS: [&str; 4] = [
    "/usr/sbin",
    "/usr/bin",
    "/usr/local/bin",
    "/opt/homebrew/bin",
];

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
    for dir in path_dirs() {
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

/// The `pgbouncer` program: on `PATH`, else in the usual install directories.
pub(crate) fn pgbouncer() -> anyhow::Result<PathBuf> {
    path_dirs()
        .chain(EXTRA_DIRS.map(PathBuf::from))
        .map(|dir| dir.join("pgbouncer"))
        .find(|path| path.is_file())
        .context(
            "pgbouncer is not installed: install it (Debian/Ubuntu: `apt-get install pgbouncer`; \
             macOS: `brew install pgbouncer`)",
        )
}

/// The `openssl` program on `PATH`.
pub(crate) fn openssl() -> anyhow::Result<PathBuf> {
    path_dirs()
        .map(|dir| dir.join("openssl"))
        .find(|path| path.is_file())
        .context(
            "openssl is not installed: install it (Debian/Ubuntu: `apt-get install openssl`; \
             macOS: `brew install openssl`)",
        )
}

fn path_dirs() -> impl Iterator<Item = PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .collect::<Vec<_>>()
        .into_iter()
}
