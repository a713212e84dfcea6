//! Running the real `poolctl` binary as an operator does: from the repository root, with
//! exactly the environment given.

#![allow(dead_code, reason = "each test file uses the helpers it needs")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `poolctl` from the repository root with exactly `env` (plus nothing inherited).
pub(crate) fn poolctl(args: &[&str], env: &[(&str, &str)]) -> Output {
    poolctl_in(&repo(), args, env)
}

pub(crate) fn poolctl_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_poolctl"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run poolctl")
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn both(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[track_caller]
pub(crate) fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", both(output));
}
