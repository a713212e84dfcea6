//! Project automation for servio-pool: `cargo xtask test | demo | ci` (and `bench`).
//!
//! Each subcommand lives in a file of its own and says what it does, step by step, and what
//! to do when a step fails. xtask depends on anyhow and clap only: what needs a database
//! driver runs in a child process, so `cargo xtask` builds in seconds and checks the
//! prerequisites before anything heavy is compiled.

mod bench;
mod ci;
mod demo;
mod interrupt;
mod prereq;
mod shell;
mod summary;
mod test;
// pool-testkit's own lookups (std and anyhow only), compiled in here rather than depended on,
// so the prerequisites step and the tests look for the same programs in the same places.
// Not every item is used here.
#[allow(dead_code)]
#[path = "../../crates/pool-testkit/src/tools.rs"]
mod tools;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// servio-pool's project automation.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Check the prerequisites, provision PostgreSQL, run every test of the workspace against it.
    Test(test::Args),
    /// Benchmark servio-pool against deadpool, bb8 and sqlx's PgPool; print the summary.
    Bench(bench::Args),
    /// Show the pools at work against a throwaway PostgreSQL, through a server restart.
    Demo(demo::Args),
    /// What CI runs: fmt, clippy, docs, `cargo xtask test` and a Ctrl-C check, the demo and benchmark smoke runs.
    Ci(ci::Args),
    /// The Ctrl-C step of `ci` alone: interrupt `cargo xtask test` mid-run, check nothing is left.
    CtrlCCheck,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Test(args) => test::run(&args),
        Task::Bench(args) => bench::run(&args),
        Task::Demo(args) => demo::run(&args),
        Task::Ci(args) => ci::run(&args),
        Task::CtrlCCheck => interrupt::check(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("\nxtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        // clap checks names, groups and flags only when a command is built: do it for all.
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
