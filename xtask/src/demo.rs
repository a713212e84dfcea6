//! `cargo xtask demo`: check the prerequisites, then run the demo (the `pool-demo` crate:
//! the pools at work against a throwaway PostgreSQL, through a server restart).
//!
//! CI runs it short (`--duration 5s`) and checks its output: each pool served again after the
//! restart, and each close report is complete.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::prereq::{self, DEMO_NEEDS};
use crate::shell::{announce, cargo, target_dir};

/// Options of `cargo xtask demo`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct Args {
    /// Never install missing prerequisites; say what to install and stop.
    #[arg(long)]
    no_install: bool,
    /// The demo's own options: --duration 20s, --extra-workers 4, --health-port 0,
    /// --health-json (`cargo xtask demo -- --help` lists them).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "DEMO OPTIONS"
    )]
    demo_args: Vec<String>,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    prereq::check("cargo xtask demo", &DEMO_NEEDS, !args.no_install)?;
    let mut command = demo_command(&args.demo_args);
    announce(
        "the demo (crate pool-demo)",
        "the pools under load against a throwaway PostgreSQL, restarted halfway; Ctrl-C removes it",
        &command,
    );
    let status = command.stdin(Stdio::null()).status()?;
    if !status.success() {
        bail!("the demo failed ({status}): read its last lines above");
    }
    Ok(())
}

/// The CI smoke run: a short demo whose output must show the recovery and complete close
/// reports. `built_by_tests`: the workspace's test build just made the demo's binary (with
/// the test build's features), so it runs as is instead of `cargo run` building it again
/// with the demo's own.
pub(crate) fn smoke(built_by_tests: bool) -> anyhow::Result<()> {
    let short = ["--duration".to_owned(), "5s".to_owned()];
    let built = target_dir().join("debug").join("pool-demo");
    let mut command = if built_by_tests && built.is_file() {
        let mut command = Command::new(built);
        command.args(&short);
        command
    } else {
        demo_command(&short)
    };
    announce(
        "demo smoke run: cargo xtask demo --duration 5s",
        "the README's first command works: each pool recovers from the restart and closes completely",
        &command,
    );
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the demo")?;
    let mut output = String::new();
    for line in BufReader::new(child.stdout.take().context("the demo's output")?).lines() {
        let line = line?;
        println!("{line}");
        output.push_str(&line);
        output.push('\n');
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("the demo failed ({status}): read its last lines above");
    }
    check_output(&output)
}

fn demo_command(demo_args: &[String]) -> Command {
    let mut command = cargo();
    command
        .args(["run", "--package", "pool-demo", "--locked", "--"])
        .args(demo_args);
    command
}

/// The pools the demo runs (`config/development.toml`).
const POOLS: [&str; 2] = ["default", "replica"];

/// Checks the demo's output: every pool served again after the restart, and every close
/// report is complete.
fn check_output(output: &str) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for pool in POOLS {
        let line_of = |needle: &str| {
            output.lines().find(|line| {
                line.trim_start().starts_with(&format!("pool {pool} ")) && line.contains(needle)
            })
        };
        if line_of("served again").is_none() {
            problems.push(format!(
                "pool {pool} did not report serving again after the restart"
            ));
        }
        match line_of("still checked out:") {
            Some(line) if line.trim_end().ends_with(": complete") => {}
            Some(line) => problems.push(format!(
                "pool {pool}'s close report is not complete: {}",
                line.trim()
            )),
            None => problems.push(format!("pool {pool} printed no close report")),
        }
    }
    if !problems.is_empty() {
        bail!(
            "the demo's output is not what a working pool prints:\n  {}",
            problems.join("\n  ")
        );
    }
    println!("\n    demo smoke run: every pool recovered from the restart and closed completely");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demos_own_options_pass_through() {
        #[derive(Debug, clap::Parser)]
        struct Demo {
            #[command(flatten)]
            args: Args,
        }
        let parse = |line: &[&str]| <Demo as clap::Parser>::try_parse_from(line).unwrap().args;
        let args = parse(&["demo", "--no-install", "--duration", "5s", "--health-json"]);
        assert!(args.no_install);
        assert_eq!(args.demo_args, ["--duration", "5s", "--health-json"]);
        let args = parse(&["demo", "--duration", "5s"]);
        assert!(!args.no_install);
        assert_eq!(args.demo_args, ["--duration", "5s"]);
    }

    const GOOD: &str = "\
==> recovery after the restart
    pool default  served again 12ms after PostgreSQL was back (3 queries failed on broken connections meanwhile)
    pool replica  served again 9ms after PostgreSQL was back (2 queries failed on broken connections meanwhile)
==> closing the pools (close report)
    pool default  closed 10 idle, 0 returned while closing, 0 waiters failed, 0 still checked out: complete
    pool replica  closed 4 idle, 0 returned while closing, 0 waiters failed, 0 still checked out: complete
";

    #[test]
    fn recovery_and_complete_close_reports_pass() {
        check_output(GOOD).unwrap();
    }

    #[test]
    fn a_pool_that_did_not_recover_or_closed_incompletely_fails() {
        let stuck = GOOD.replace(
            "pool replica  served again 9ms after PostgreSQL was back",
            "pool replica  did not serve after the restart",
        );
        let error = check_output(&stuck).unwrap_err().to_string();
        assert!(
            error.contains("pool replica did not report serving again"),
            "{error}"
        );

        let incomplete = GOOD.replace(
            "0 still checked out: complete",
            "1 still checked out: INCOMPLETE",
        );
        let error = check_output(&incomplete).unwrap_err().to_string();
        assert!(error.contains("close report is not complete"), "{error}");

        let error = check_output("").unwrap_err().to_string();
        assert!(
            error.contains("pool default printed no close report"),
            "{error}"
        );
    }
}
