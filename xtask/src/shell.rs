//! Running cargo and other commands: print what runs and why, and turn a failure into an
//! error that says what to do.
//!
//! Ctrl-C reaches every process of the terminal's foreground group at once: xtask stops at
//! once, and each child cleans up after itself (the test servers' holder and the demo remove
//! their servers; test processes leave theirs to their watchdogs).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// The cargo that runs us (so `cargo +nightly xtask` stays on nightly).
pub(crate) fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root());
    // `cargo run` (how `cargo xtask` starts us) gives this binary its package's variables.
    // Handed on, they change what build scripts see (ring tracks CARGO_MANIFEST_DIR), so each
    // switch between `cargo xtask` and plain cargo would rebuild ring and everything above it.
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || matches!(
                name.as_ref(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
            )
        {
            command.env_remove(&key);
        }
    }
    command
}

/// The workspace root (xtask lives one level below it).
pub(crate) fn workspace_root() -> PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_owned()
}

/// `CARGO_TARGET_DIR`, else the workspace's `target/`.
pub(crate) fn target_dir() -> PathBuf {
    let root = workspace_root();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// The command line, as a reader would type it.
pub(crate) fn command_line(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints a step's title, the reason for it, and the command line.
pub(crate) fn announce(title: &str, why: &str, command: &Command) {
    println!(
        "\n==> {title}\n    why: {why}\n    running: {}",
        command_line(command)
    );
}

/// Runs `command` with inherited output. `fix` tells a reader what to do when it fails.
pub(crate) fn step(title: &str, why: &str, fix: &str, mut command: Command) -> anyhow::Result<()> {
    announce(title, why, &command);
    let status = command
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("{title}: cannot start `{}`", command_line(&command)))?;
    if !status.success() {
        bail!("{title} failed ({status}). {fix}");
    }
    Ok(())
}

/// Runs a quick query command (`docker version`, `sudo -n true`) and returns its trimmed
/// standard output, or `None` when it fails, cannot start, or runs past `deadline` (then it is
/// killed): a prerequisite that does not answer at once counts as missing.
pub(crate) fn probe(command: &mut Command, deadline: Duration) -> Option<String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => {
                let mut out = String::new();
                std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
                return Some(out.trim().to_owned());
            }
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) if started.elapsed() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}
