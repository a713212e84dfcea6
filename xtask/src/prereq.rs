//! The prerequisites step of `cargo xtask test` and `cargo xtask demo`: before anything heavy
//! is built, find what the run needs, say which tests need what, and either install what is
//! missing (as root or with passwordless sudo on Debian/Ubuntu) or stop at once with the
//! command that installs it on Debian/Ubuntu, Fedora and macOS.

use std::collections::BTreeMap;
use std::fmt;
use std::process::Command;
use std::time::Duration;

use anyhow::bail;

use crate::shell::{command_line, probe};
use crate::tools;

/// Something a command needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Tool {
    /// `initdb`, `pg_ctl`, `postgres` (and, as root, an unprivileged account to run them).
    Postgres,
    /// `pgbouncer`.
    PgBouncer,
    /// `openssl`.
    Openssl,
    /// A Docker engine that answers.
    Docker,
}

impl Tool {
    /// The name in the summary lines.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::Postgres => "native",
            Self::PgBouncer => "pgbouncer",
            Self::Openssl => "openssl",
            Self::Docker => "docker",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Postgres => "PostgreSQL server binaries",
            Self::PgBouncer => "pgbouncer",
            Self::Openssl => "openssl",
            Self::Docker => "Docker engine",
        }
    }

    /// The package that provides it, per platform; Docker is never installed for the reader.
    fn package(self, platform: Platform) -> Option<&'static str> {
        Some(match (self, platform) {
            (Self::Docker, _) => return None,
            (Self::Postgres, Platform::Fedora) => "postgresql-server",
            (Self::Postgres, Platform::MacOs) => "postgresql@15",
            (Self::Postgres, _) => "postgresql",
            (Self::PgBouncer, _) => "pgbouncer",
            (Self::Openssl, _) => "openssl",
        })
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One thing a command needs, and for what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Need {
    pub(crate) tool: Tool,
    /// The tests (or the part of the demo) that need it, and the crates they live in.
    pub(crate) for_what: &'static str,
    /// Packages whose tests need it; empty: every run needs it.
    pub(crate) packages: &'static [&'static str],
    /// Without it the run goes on and says what it skipped.
    pub(crate) optional: bool,
}

/// What `cargo xtask test` needs; the README's prerequisites say the same.
pub(crate) const TEST_NEEDS: [Need; 4] = [
    Need {
        tool: Tool::Postgres,
        for_what: "the fault, TLS and PgBouncer tests' own servers (pool-core, pool-health, \
                   pool-testkit, pool-demo), and the run's server when no Docker engine answers",
        packages: &[],
        optional: false,
    },
    Need {
        tool: Tool::PgBouncer,
        for_what: "the PgBouncer tests (pool-core, pool-health, pool-testkit)",
        packages: &["pool-core", "pool-health", "pool-testkit"],
        optional: false,
    },
    Need {
        tool: Tool::Openssl,
        for_what: "the TLS tests (pool-core)",
        packages: &["pool-core"],
        optional: false,
    },
    Need {
        tool: Tool::Docker,
        for_what: "the docker backend: the run's server in a container, and the backend's \
                   self-test (pool-testkit); without it those tests are skipped and the run's \
                   server is native",
        packages: &[],
        optional: true,
    },
];

/// What `cargo xtask demo` needs.
pub(crate) const DEMO_NEEDS: [Need; 1] = [Need {
    tool: Tool::Postgres,
    for_what: "the demo's throwaway server, which it restarts (a restart keeps a native server's port)",
    packages: &[],
    optional: false,
}];

/// The platforms we can name an install command for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Platform {
    Debian,
    Fedora,
    MacOs,
    Other,
}

impl Platform {
    fn detect() -> Self {
        if cfg!(target_os = "macos") {
            return Self::MacOs;
        }
        let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let ids: Vec<&str> = release
            .lines()
            .filter_map(|line| {
                line.strip_prefix("ID=")
                    .or_else(|| line.strip_prefix("ID_LIKE="))
            })
            .flat_map(|value| value.trim_matches('"').split_whitespace())
            .collect();
        if ids.iter().any(|id| matches!(*id, "debian" | "ubuntu")) {
            Self::Debian
        } else if ids
            .iter()
            .any(|id| matches!(*id, "fedora" | "rhel" | "centos"))
        {
            Self::Fedora
        } else {
            Self::Other
        }
    }
}

/// How we may install packages without asking anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Privilege {
    Root,
    PasswordlessSudo,
    None,
}

impl Privilege {
    fn detect() -> Self {
        if tools::is_root() {
            Self::Root
        } else if probe(
            Command::new("sudo").args(["-n", "true"]),
            Duration::from_secs(1),
        )
        .is_some()
        {
            Self::PasswordlessSudo
        } else {
            Self::None
        }
    }

    fn sudo(self) -> &'static str {
        if self == Self::Root { "" } else { "sudo " }
    }
}

/// What was found on the machine: each tool's location (or version), or why it is missing.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    pub(crate) platform: Platform,
    pub(crate) privilege: Privilege,
    pub(crate) found: BTreeMap<Tool, Result<String, String>>,
}

impl Facts {
    /// Looks for every tool in `needs`; each look is bounded, so this takes well under 2 s.
    pub(crate) fn gather(needs: &[Need]) -> Self {
        let found = needs
            .iter()
            .map(|need| (need.tool, look_for(need.tool)))
            .collect();
        Self {
            platform: Platform::detect(),
            privilege: Privilege::detect(),
            found,
        }
    }

    fn has(&self, tool: Tool) -> bool {
        matches!(self.found.get(&tool), Some(Ok(_)))
    }
}

fn look_for(tool: Tool) -> Result<String, String> {
    let shown = |path: std::path::PathBuf| path.display().to_string();
    match tool {
        Tool::Postgres => tools::pg_bindir()
            .and_then(|dir| tools::server_account().map(|_| shown(dir)))
            .map_err(|error| format!("{error:#}")),
        Tool::PgBouncer => tools::pgbouncer()
            .map(shown)
            .map_err(|error| format!("{error:#}")),
        Tool::Openssl => tools::openssl()
            .map(shown)
            .map_err(|error| format!("{error:#}")),
        Tool::Docker => probe(
            Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]),
            Duration::from_millis(1500),
        )
        .map(|version| format!("engine {version} answers"))
        .ok_or_else(|| "no Docker engine answers `docker version` within 1.5 s".to_owned()),
    }
}

/// What to do about the prerequisites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Everything needed is there.
    Ready,
    /// Install these packages with apt-get, prefixed by `as_root` (`sudo -n`, or nothing for
    /// root), then look again.
    Install {
        packages: Vec<String>,
        as_root: Vec<String>,
    },
    /// Stop: `missing` is needed, and these commands (one per platform) install it.
    Stop {
        missing: Vec<Tool>,
        commands: Vec<(&'static str, String)>,
    },
}

/// The needs that apply to a run of `packages` (empty: the whole workspace).
pub(crate) fn applicable(needs: &[Need], packages: &[String]) -> Vec<Need> {
    needs
        .iter()
        .filter(|need| {
            packages.is_empty()
                || need.packages.is_empty()
                || need
                    .packages
                    .iter()
                    .any(|p| packages.iter().any(|q| q == p))
        })
        .copied()
        .collect()
}

/// The decision, from what is needed, what was found, and whether installing is allowed.
pub(crate) fn decide(needs: &[Need], facts: &Facts, allow_install: bool) -> Decision {
    let mut missing: Vec<Tool> = needs
        .iter()
        .filter(|need| !need.optional && !facts.has(need.tool))
        .map(|need| need.tool)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Decision::Ready;
    }
    let packages = |platform| -> Vec<String> {
        missing
            .iter()
            .filter_map(|tool| tool.package(platform))
            .map(str::to_owned)
            .collect()
    };
    if allow_install && facts.platform == Platform::Debian && facts.privilege != Privilege::None {
        let as_root = match facts.privilege {
            Privilege::Root => vec![],
            _ => vec!["sudo".to_owned(), "-n".to_owned()],
        };
        return Decision::Install {
            packages: packages(Platform::Debian),
            as_root,
        };
    }
    let sudo = facts.privilege.sudo();
    let mut commands = vec![
        (
            "Debian/Ubuntu",
            format!(
                "{sudo}apt-get update && {sudo}apt-get install -y {}",
                packages(Platform::Debian).join(" ")
            ),
        ),
        (
            "Fedora",
            format!(
                "sudo dnf install -y {}",
                packages(Platform::Fedora).join(" ")
            ),
        ),
        (
            "macOS",
            format!("brew install {}", packages(Platform::MacOs).join(" ")),
        ),
    ];
    if missing.contains(&Tool::Postgres) {
        // Homebrew does not link a versioned PostgreSQL onto PATH.
        commands[2].1 += " && export SERVIO_TEST_PG_BINDIR=\"$(brew --prefix postgresql@15)/bin\"";
    }
    // The reader's own platform first.
    let own = match facts.platform {
        Platform::Fedora => 1,
        Platform::MacOs => 2,
        Platform::Debian | Platform::Other => 0,
    };
    commands[..=own].rotate_right(1);
    Decision::Stop { missing, commands }
}

/// The prerequisites step: look, report, then install or stop. `command` names the xtask
/// command for the messages (`cargo xtask test`).
///
/// # Errors
///
/// When something needed is missing and cannot be installed here: the message lists the
/// command that installs it on each platform.
pub(crate) fn check(command: &str, needs: &[Need], allow_install: bool) -> anyhow::Result<Facts> {
    println!("==> checking what `{command}` needs from this machine, before building anything");
    let facts = Facts::gather(needs);
    report(needs, &facts);
    match decide(needs, &facts, allow_install) {
        Decision::Ready => Ok(facts),
        Decision::Install { packages, as_root } => {
            let how = match facts.privilege {
                Privilege::Root => "running as root",
                _ => "passwordless sudo",
            };
            let update = apt_get(&as_root, &["update", "-qq"]);
            let mut install = apt_get(
                &as_root,
                &["install", "-y", "-qq", "--no-install-recommends"],
            );
            install.args(&packages);
            println!(
                "\n==> installing {} with apt-get ({how} on Debian/Ubuntu; --no-install turns this off)",
                packages.join(" ")
            );
            for mut command in [update, install] {
                println!("    running: {}", command_line(&command));
                run_install(&mut command)?;
            }
            let facts = Facts::gather(needs);
            report(needs, &facts);
            match decide(needs, &facts, false) {
                Decision::Ready => Ok(facts),
                _ => bail!(
                    "still missing after installing {}: see the lines above for why",
                    packages.join(" ")
                ),
            }
        }
        Decision::Stop { missing, commands } => {
            let names: Vec<String> = missing.iter().map(Tool::to_string).collect();
            let why = if allow_install {
                "installing needs root or passwordless sudo on Debian/Ubuntu"
            } else {
                "--no-install"
            };
            let mut text = format!(
                "`{command}` needs {} (see above for which tests), and it is not installed \
                 ({why}). Install it, then run `{command}` again:",
                names.join(", ")
            );
            for (platform, line) in commands {
                text += &format!("\n    {platform:<14} {line}");
            }
            bail!(text)
        }
    }
}

/// `apt-get <args>` without questions, as root (`env`: sudo does not hand our environment on).
fn apt_get(as_root: &[String], args: &[&str]) -> Command {
    let (program, prefix_args) = match as_root.split_first() {
        Some((sudo, sudo_args)) => (sudo.as_str(), sudo_args),
        None => ("env", &[][..]),
    };
    let mut command = Command::new(program);
    command.args(prefix_args);
    if !as_root.is_empty() {
        command.arg("env");
    }
    command
        .args(["DEBIAN_FRONTEND=noninteractive", "apt-get"])
        .args(args);
    command
}

fn run_install(command: &mut Command) -> anyhow::Result<()> {
    let status = command.status()?;
    if !status.success() {
        bail!(
            "`{}` failed ({status}); run it yourself to see why",
            command_line(command)
        );
    }
    Ok(())
}

fn report(needs: &[Need], facts: &Facts) {
    for need in needs {
        let state = match facts.found.get(&need.tool) {
            Some(Ok(what)) => format!("found: {what}"),
            Some(Err(_)) if need.optional => "not available (optional)".to_owned(),
            Some(Err(_)) | None => "MISSING".to_owned(),
        };
        println!(
            "    {:<27} {state}\n        for {}",
            need.tool.label(),
            need.for_what
        );
        if let Some(Err(why)) = facts.found.get(&need.tool) {
            println!("        why not: {why}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(platform: Platform, privilege: Privilege, missing: &[Tool]) -> Facts {
        let found = [Tool::Postgres, Tool::PgBouncer, Tool::Openssl, Tool::Docker]
            .into_iter()
            .map(|tool| {
                let state = if missing.contains(&tool) {
                    Err("not found".to_owned())
                } else {
                    Ok("/usr/bin/x".to_owned())
                };
                (tool, state)
            })
            .collect();
        Facts {
            platform,
            privilege,
            found,
        }
    }

    #[test]
    fn nothing_missing_means_ready_and_docker_is_optional() {
        let all_there = facts(Platform::Other, Privilege::None, &[Tool::Docker]);
        assert_eq!(decide(&TEST_NEEDS, &all_there, true), Decision::Ready);
    }

    #[test]
    fn root_on_debian_installs_what_is_missing() {
        let no_pgbouncer = facts(Platform::Debian, Privilege::Root, &[Tool::PgBouncer]);
        let Decision::Install { packages, as_root } = decide(&TEST_NEEDS, &no_pgbouncer, true)
        else {
            panic!("root on Debian installs");
        };
        assert_eq!(packages, ["pgbouncer"]);
        assert!(as_root.is_empty(), "no sudo for root: {as_root:?}");

        let sudo = facts(
            Platform::Debian,
            Privilege::PasswordlessSudo,
            &[Tool::PgBouncer, Tool::Openssl],
        );
        let Decision::Install { packages, as_root } = decide(&TEST_NEEDS, &sudo, true) else {
            panic!("passwordless sudo on Debian installs");
        };
        assert_eq!(packages, ["pgbouncer", "openssl"]);
        assert_eq!(as_root, ["sudo", "-n"]);
    }

    #[test]
    fn no_install_or_no_privilege_or_another_platform_stops_with_one_command_each() {
        for (platform, privilege, allow) in [
            (Platform::Debian, Privilege::Root, false),
            (Platform::Debian, Privilege::None, true),
            (Platform::Fedora, Privilege::Root, true),
            (Platform::MacOs, Privilege::None, true),
        ] {
            let no_pgbouncer = facts(platform, privilege, &[Tool::PgBouncer]);
            let Decision::Stop { missing, commands } = decide(&TEST_NEEDS, &no_pgbouncer, allow)
            else {
                panic!("{platform:?} {privilege:?} install allowed: {allow}: must stop");
            };
            assert_eq!(missing, [Tool::PgBouncer]);
            let platforms: Vec<&str> = commands.iter().map(|(p, _)| *p).collect();
            assert_eq!(platforms.len(), 3);
            for expected in ["Debian/Ubuntu", "Fedora", "macOS"] {
                assert!(platforms.contains(&expected), "{platforms:?}");
            }
            for (platform, line) in &commands {
                assert!(line.ends_with("pgbouncer"), "{platform}: {line}");
            }
        }
        let fedora = facts(Platform::Fedora, Privilege::None, &[Tool::PgBouncer]);
        let Decision::Stop { commands, .. } = decide(&TEST_NEEDS, &fedora, true) else {
            panic!("must stop");
        };
        assert_eq!(
            commands[0],
            ("Fedora", "sudo dnf install -y pgbouncer".to_owned())
        );
        let root = facts(Platform::Debian, Privilege::Root, &[Tool::PgBouncer]);
        let Decision::Stop { commands, .. } = decide(&TEST_NEEDS, &root, false) else {
            panic!("must stop");
        };
        assert_eq!(
            commands[0].1, "apt-get update && apt-get install -y pgbouncer",
            "no sudo for root"
        );
    }

    #[test]
    fn missing_server_binaries_name_each_platforms_package() {
        let none = facts(Platform::Other, Privilege::None, &[Tool::Postgres]);
        let Decision::Stop { commands, .. } = decide(&DEMO_NEEDS, &none, true) else {
            panic!("must stop");
        };
        let line = |name| &commands.iter().find(|(p, _)| *p == name).unwrap().1;
        assert!(line("Debian/Ubuntu").ends_with("install -y postgresql"));
        assert!(line("Fedora").ends_with("install -y postgresql-server"));
        assert!(
            line("macOS").contains("brew install postgresql@15 && export SERVIO_TEST_PG_BINDIR")
        );
    }

    #[test]
    fn a_run_of_some_crates_needs_only_what_their_tests_need() {
        let only_config = applicable(&TEST_NEEDS, &["pool-config".to_owned()]);
        let tools: Vec<Tool> = only_config.iter().map(|n| n.tool).collect();
        assert_eq!(tools, [Tool::Postgres, Tool::Docker]);
        let no_pgbouncer = facts(Platform::Debian, Privilege::None, &[Tool::PgBouncer]);
        assert_eq!(decide(&only_config, &no_pgbouncer, true), Decision::Ready);
        assert_eq!(applicable(&TEST_NEEDS, &[]).len(), TEST_NEEDS.len());
    }
}
