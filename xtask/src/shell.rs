//! Running cargo and other commands: print what runs and why, stop on Ctrl-C, and turn a
//! failure into an error that says what to do.

use std::process::Stdio;

use anyhow::{Context as _, bail};
use tokio::process::Command;

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
pub(crate) fn workspace_root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_owned()
}

/// Prints a step's title, the reason for it, and the command line.
pub(crate) fn announce(title: &str, why: &str, command: &Command) {
    let std = command.as_std();
    let line: Vec<String> = std::iter::once(std.get_program())
        .chain(std.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    println!(
        "\n==> {title}\n    why: {why}\n    running: {}",
        line.join(" ")
    );
}

/// Runs `command` with inherited output. On Ctrl-C the child (which got the signal too) is
/// waited for, and the error says the run was interrupted. `fix` tells a reader what to do
/// when the command fails.
pub(crate) async fn step(
    title: &str,
    why: &str,
    fix: &str,
    mut command: Command,
) -> anyhow::Result<()> {
    announce(title, why, &command);
    let mut child = command
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("{title}: cannot start the command"))?;
    let status = tokio::select! {
        status = child.wait() => status?,
        _ = tokio::signal::ctrl_c() => {
            // The child is in our process group and got the same Ctrl-C: let it finish.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait()).await;
            bail!("interrupted (Ctrl-C) during: {title}");
        }
    };
    if !status.success() {
        bail!("{title} failed ({status}). {fix}");
    }
    Ok(())
}

/// A multi-thread runtime for a subcommand.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
