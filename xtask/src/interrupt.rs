//! The Ctrl-C check of `cargo xtask ci`: `cargo xtask test` is interrupted mid-run the way a
//! terminal's Ctrl-C does it (SIGINT to its whole process group), and nothing it started may
//! be left: no server, container, PgBouncer, watchdog or directory.
//!
//! The run gets a temporary directory of its own (`TMPDIR`), so everything the testkit makes
//! for it (state directories, data directories, PgBouncer configurations) lies below one path
//! that no other run uses.

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::shell::{command_line, probe};

/// The tests it interrupts: the fault tests hold native servers (and the run holds a
/// container or server of its own) for many seconds.
const TEST_ARGS: [&str; 2] = ["--test", "faults"];
/// How long the tests run before the signal.
const RUN_BEFORE_SIGNAL: Duration = Duration::from_secs(3);
/// Generous bounds: cleanup stops servers (up to 10 s each) and removes containers.
const EXIT_DEADLINE: Duration = Duration::from_secs(60);
const CLEANUP_DEADLINE: Duration = Duration::from_secs(60);

pub(crate) fn check() -> anyhow::Result<()> {
    let tmp = std::env::temp_dir().join(format!("servio-xtask-interrupt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    // The servers' account (postgres, when we are root) must be able to enter it.
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    let result = interrupt_a_run(&tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn interrupt_a_run(tmp: &Path) -> anyhow::Result<()> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["test", "--no-install", "--"])
        .args(TEST_ARGS)
        .env("TMPDIR", tmp)
        // A process group of its own, as a shell gives a foreground job.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    println!(
        "\n==> Ctrl-C check: interrupting `cargo xtask test -- {}` mid-run\n    why: Ctrl-C must leave no server, container, PgBouncer or directory behind\n    running: {} (TMPDIR={})",
        TEST_ARGS.join(" "),
        command_line(&command),
        tmp.display()
    );
    let mut run = command.spawn().context("cannot start cargo xtask test")?;
    let group = run.id();
    let mut started = false;
    for line in BufReader::new(run.stdout.take().context("the run's output")?).lines() {
        // libtest's first line for a test binary: the tests are running now.
        if line?.starts_with("running ") {
            started = true;
            break;
        }
    }
    if !started {
        let status = run.wait()?;
        bail!(
            "the run ended ({status}) before any test ran; run `cargo xtask test -- {}` to see why",
            TEST_ARGS.join(" ")
        );
    }
    std::thread::sleep(RUN_BEFORE_SIGNAL);
    // What the run holds now is what must go: a check of a run that held nothing proves nothing.
    let held = leftovers(tmp);
    let dirs = held
        .iter()
        .filter(|what| what.starts_with("directory "))
        .count();
    if dirs == 0 {
        signal_group("KILL", group);
        bail!(
            "the run held no server when it was to be interrupted, so the check would prove nothing"
        );
    }
    signal_group("INT", group);
    println!(
        "    sent SIGINT to the run's process group {RUN_BEFORE_SIGNAL:?} after its tests started, \
         while it held {dirs} state directories and {} processes",
        held.len() - dirs
    );

    let deadline = Instant::now() + EXIT_DEADLINE;
    while run.try_wait()?.is_none() {
        if Instant::now() > deadline {
            signal_group("KILL", group);
            bail!("the run did not stop within {EXIT_DEADLINE:?} of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let deadline = Instant::now() + CLEANUP_DEADLINE;
    loop {
        let left = leftovers(tmp);
        if left.is_empty() {
            println!(
                "    nothing was left behind: no state directory, process or container of the run"
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "Ctrl-C left these behind {CLEANUP_DEADLINE:?} after the run stopped:\n  {}",
                left.join("\n  ")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn signal_group(name: &str, group: u32) {
    let _ = Command::new("kill")
        .args([format!("-{name}"), "--".to_owned(), format!("-{group}")])
        .status();
}

/// What the run holds or left: state directories, processes whose command line names the
/// run's directory (servers, PgBouncers, watchdogs), and containers whose owner has exited.
fn leftovers(tmp: &Path) -> Vec<String> {
    let mut left: Vec<String> = std::fs::read_dir(tmp.join("servio-pool-testkit"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| format!("directory {}", entry.path().display()))
        .collect();
    let needle = tmp.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) && pid != std::process::id() {
            left.push(format!("process {pid}: {}", cmdline.trim()));
        }
    }
    let containers = probe(
        Command::new("docker").args([
            "ps",
            "-a",
            "--filter",
            "label=servio-pool-testkit.owner",
            "--format",
            "{{.ID}} {{.Label \"servio-pool-testkit.owner\"}}",
        ]),
        Duration::from_secs(10),
    )
    .unwrap_or_default();
    for line in containers.lines() {
        // The label is `<hostname>:<owner pid>`; a live owner is another run's.
        let owner = line
            .rsplit(':')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok());
        if owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            left.push(format!("container {line}"));
        }
    }
    left
}
