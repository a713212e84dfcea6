//! Project automation for servio-pool: `cargo xtask test | demo | ci` (and `bench`).
//!
//! Each subcommand lives in a file of its own and says what it does, step by step, and what
//! to do when a step fails.

mod bench;
mod ci;
mod demo;
mod shell;
mod test;

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
    /// Provision PostgreSQL and run every test of the workspace against it.
    Test(test::Args),
    /// Benchmark servio-pool against deadpool, bb8 and sqlx's PgPool; print the summary.
    Bench(bench::Args),
    /// Show the pools at work against a throwaway PostgreSQL, through a server restart.
    Demo(demo::Args),
    /// What CI checks: formatting, clippy, docs, then `cargo xtask test`.
    Ci(ci::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Test(args) => test::run(&args),
        Task::Bench(args) => bench::run(&args),
        Task::Demo(args) => demo::run(&args),
        Task::Ci(args) => ci::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("\nxtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
