//! `cargo xtask test`: check the prerequisites, build the tests, provision one PostgreSQL for
//! the run, run every test of the workspace (unit, integration, doctests) against it, tear it
//! down, and end with a line per backend and tool: used, or skipped and why.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{Context as _, bail};

use crate::prereq::{self, TEST_NEEDS, Tool};
use crate::shell::{cargo, step, target_dir};
use crate::summary::{self, Server};

/// The names pool-testkit reads (kept in step with `crates/pool-testkit/src/{backend,skip}.rs`).
mod testkit_env {
    pub(super) const BACKEND: &str = "SERVIO_TEST_BACKEND";
    pub(super) const DATABASE_URL: &str = "SERVIO_TEST_DATABASE_URL";
    pub(super) const SKIP_LOG: &str = "SERVIO_TEST_SKIP_LOG";
    pub(super) const REQUIRE: &str = "SERVIO_TEST_REQUIRE";
}

/// The program in pool-testkit that holds the run's server.
const HOLDER: &str = "servio-test-postgres";

/// Where PostgreSQL comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Backend {
    /// Docker when an engine answers, else native, else SERVIO_TEST_DATABASE_URL.
    Auto,
    /// A container (the official image, or one built from the local PostgreSQL binaries).
    Docker,
    /// initdb + pg_ctl in a temporary directory.
    Native,
    /// The existing server SERVIO_TEST_DATABASE_URL names.
    Url,
}

impl Backend {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Docker => "docker",
            Self::Native => "native",
            Self::Url => "url",
        }
    }

    /// `--backend`, else `SERVIO_TEST_BACKEND`, else auto.
    pub(crate) fn chosen(asked: Option<Self>) -> anyhow::Result<Self> {
        if let Some(backend) = asked {
            return Ok(backend);
        }
        let from_env = std::env::var(testkit_env::BACKEND).unwrap_or_default();
        match from_env.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Self::Auto),
            "docker" => Ok(Self::Docker),
            "native" => Ok(Self::Native),
            "url" => Ok(Self::Url),
            other => bail!(
                "{}={other} is not a backend: use docker, native, url or auto",
                testkit_env::BACKEND
            ),
        }
    }
}

/// Options of `cargo xtask test`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// Where PostgreSQL comes from (default: SERVIO_TEST_BACKEND, else auto: docker when an
    /// engine answers, else native, else SERVIO_TEST_DATABASE_URL).
    #[arg(long, value_enum, value_name = "BACKEND")]
    backend: Option<Backend>,
    /// Never install missing prerequisites; say what to install and stop.
    #[arg(long)]
    no_install: bool,
    /// Test only these packages instead of the whole workspace.
    #[arg(short, long = "package", value_name = "CRATE")]
    packages: Vec<String>,
    /// Extra arguments for `cargo test`; after a second `--` they go to the test binaries
    /// (e.g. `cargo xtask test -- -- --nocapture`).
    #[arg(last = true)]
    cargo_test_args: Vec<String>,
}

impl Args {
    /// Whether the run tests every crate (no `-p`).
    pub(crate) fn whole_workspace(&self) -> bool {
        self.packages.is_empty()
    }
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let backend = Backend::chosen(args.backend)?;
    let needs = prereq::applicable(&TEST_NEEDS, &args.packages);
    if backend == Backend::Url && std::env::var_os(testkit_env::DATABASE_URL).is_none() {
        bail!(
            "the url backend needs {}=postgres://SUPERUSER:PASSWORD@HOST:PORT/postgres",
            testkit_env::DATABASE_URL
        );
    }
    let facts = prereq::check("cargo xtask test", &needs, !args.no_install)?;
    if let (Backend::Docker, Some(Err(why))) = (backend, facts.found.get(&Tool::Docker)) {
        // Asked for by name: its absence is an error, not a skip.
        bail!(
            "the docker backend was asked for, but {why}: start Docker (or point DOCKER_HOST at \
             an engine), or choose --backend native"
        );
    }

    build(args)?;
    let server = Holder::start(backend)?;
    let skip_log = target_dir().join("xtask").join("test-skips.tsv");
    std::fs::create_dir_all(skip_log.parent().unwrap_or(&skip_log))?;
    std::fs::write(&skip_log, "")
        .with_context(|| format!("cannot create {}", skip_log.display()))?;

    let mut command = cargo_test(args);
    command
        .args(&args.cargo_test_args)
        .env(testkit_env::DATABASE_URL, &server.info.url)
        .env(testkit_env::BACKEND, Backend::Url.as_str())
        .env(testkit_env::SKIP_LOG, &skip_log)
        .env(
            testkit_env::REQUIRE,
            if backend == Backend::Auto {
                ""
            } else {
                backend.as_str()
            },
        );
    let title = if args.packages.is_empty() {
        "cargo test: every crate of the workspace".to_owned()
    } else {
        format!("cargo test: {}", args.packages.join(", "))
    };
    let result = step(
        &title,
        "every unit, integration and doc test, each test against a fresh database on the server above \
         (fault, TLS and PgBouncer tests start native servers of their own)",
        "Read the first failure above; rerun one crate with `cargo xtask test -p <crate>`, \
         or one test with `cargo xtask test -p <crate> -- <test name>`",
        command,
    );
    let info = server.stop();
    let skips = std::fs::read_to_string(&skip_log).unwrap_or_default();
    summary::print(
        &needs,
        &facts,
        &info,
        &summary::parse_skips(&skips),
        result.is_ok(),
    );
    result
}

/// `cargo test` over the packages asked for, with every feature.
fn cargo_test(args: &Args) -> Command {
    let mut command = cargo();
    command.arg("test");
    if args.packages.is_empty() {
        command.arg("--workspace");
    }
    for package in &args.packages {
        command.args(["--package", package]);
    }
    // --no-fail-fast: a failing crate should not hide how the others fare.
    command.args(["--all-features", "--locked", "--no-fail-fast"]);
    command
}

/// Builds the tests before any server runs, and the program that will hold the server.
fn build(args: &Args) -> anyhow::Result<()> {
    let mut command = cargo_test(args);
    command.arg("--no-run");
    step(
        "building the tests",
        "compile errors show before a server is started; on a fresh clone this takes minutes",
        "Fix the first compile error above",
        command,
    )?;
    if !args.packages.is_empty() {
        // A workspace build makes it on the way (pool-testkit's tests run it); a run of some
        // crates may not.
        let mut holder = cargo();
        holder.args([
            "build",
            "--package",
            "pool-testkit",
            "--bin",
            HOLDER,
            "--locked",
        ]);
        step(
            "building the program that holds the run's PostgreSQL",
            "it provisions and removes the server, so xtask itself needs no database driver",
            "Fix the first compile error above",
            holder,
        )?;
    }
    Ok(())
}

/// pool-testkit's `servio-test-postgres`, holding the run's server until its stdin closes.
struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    info: Server,
}

impl Holder {
    fn start(backend: Backend) -> anyhow::Result<Self> {
        let exe: PathBuf = target_dir().join("debug").join(HOLDER);
        let mut child = Command::new(&exe)
            .args(["--backend", backend.as_str()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {} (built above)", exe.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("the holder's output")?;
        let mut info = Server::default();
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            let (key, value) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            match key {
                "backend" => info.backend = value.to_owned(),
                "url" => info.url = value.to_owned(),
                "ready" => {
                    return Ok(Self { child, stdin, info });
                }
                _ => {}
            }
        }
        let status = child.wait()?;
        bail!(
            "no PostgreSQL for the tests ({HOLDER} {status}; its reason is above). Choose another \
             --backend, or install what it names"
        )
    }

    /// Lets go of the server: the holder removes it and exits.
    fn stop(mut self) -> Server {
        drop(self.stdin.take());
        let _ = self.child.wait();
        std::mem::take(&mut self.info)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
