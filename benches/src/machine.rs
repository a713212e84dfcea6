//! The machine and toolchain a summary was measured on.

use std::fmt;
use std::fs;
use std::process::Command;
use std::thread;

/// CPU model, CPU count, rustc version and commit of a run.
#[derive(Debug, Clone)]
pub struct Machine {
    /// The CPU's model name (from `/proc/cpuinfo`), or `unknown CPU`.
    pub cpu: String,
    /// CPUs this process may use.
    pub cpus: usize,
    /// `rustc -V`, or `unknown rustc`.
    pub rustc: String,
    /// `git rev-parse --short HEAD` (with a note when tracked files differ from it), or
    /// `unknown commit`.
    pub commit: String,
}

impl Machine {
    /// Looks at this machine; any fact that cannot be read is reported as unknown.
    pub fn detect() -> Machine {
        let cpu = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines().find_map(|l| {
                    l.strip_prefix("model name")?
                        .split_once(':')
                        .map(|(_, v)| v.trim().to_owned())
                })
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
        Machine {
            cpu,
            cpus: thread::available_parallelism().map_or(0, usize::from),
            rustc: command_output(&rustc, &["-V"]).unwrap_or_else(|| "unknown rustc".to_owned()),
            commit: commit(),
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {} CPUs; {}; commit {}",
            self.cpu, self.cpus, self.rustc, self.commit
        )
    }
}

/// The commit measured: benchmarks build from the working tree, so say when it differs.
fn commit() -> String {
    let Some(head) = command_output("git", &["rev-parse", "--short", "HEAD"]) else {
        return "unknown commit".to_owned();
    };
    match command_output("git", &["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if !changes.is_empty() => format!("{head} plus uncommitted changes"),
        _ => head,
    }
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
