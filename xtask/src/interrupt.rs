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
/// How long after that the run may take to hold its first server or directory.
const HOLD_DEADLINE: Duration = Duration::from_secs(60);
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
    // The run's output is read to the end on a thread of its own: the run never blocks on a
    // full pipe, and a failed check can show what the run said.
    let output = run.stdout.take().context("the run's output")?;
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut said: Vec<String> = Vec::new();
    // libtest's first line for a test binary: the tests are running now.
    let started = loop {
        match lines.recv() {
            Ok(line) => {
                let running = line.starts_with("running ");
                said.push(line);
                if running {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    if !started {
        let status = run.wait()?;
        bail!(
            "the run ended ({status}) before any test ran; run `cargo xtask test -- {}` to see why",
            TEST_ARGS.join(" ")
        );
    }
    std::thread::sleep(RUN_BEFORE_SIGNAL);
    // What the run holds at the signal is what must go: a check of a run that held nothing
    // proves nothing. A slow machine may take a while to start the first server, so wait for one.
    let deadline = Instant::now() + HOLD_DEADLINE;
    let (held, dirs) = loop {
        let held = leftovers(tmp);
        let dirs = held
            .iter()
            .filter(|what| what.starts_with("directory "))
            .count();
        if dirs > 0 {
            break (held, dirs);
        }
        let ended = run.try_wait()?;
        if ended.is_some() || Instant::now() > deadline {
            signal_group("KILL", group);
            let _ = run.wait();
            said.extend(lines.try_iter());
            let tail = said.len().saturating_sub(40);
            bail!(
                "the run held no state directory under {} {}, so the check would prove                  nothing. The last lines the run printed:\n  {}",
                tmp.join("servio-pool-testkit").display(),
                match ended {
                    Some(status) => format!("before it ended ({status})"),
                    None => format!("{HOLD_DEADLINE:?} after its tests started"),
                },
                said[tail..].join("\n  ")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
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
