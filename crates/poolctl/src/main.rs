//! `poolctl`: the servio-pool operator CLI.
//!
//! A small dispatcher: each subcommand lives in its own module.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod config;

/// Operate servio-pool: show, check and document the configuration.
#[derive(Debug, Parser)]
#[command(name = "poolctl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the effective settings of every pool with their sources, check them, or print
    /// them as documentation.
    Config(config::ConfigArgs),
    /// Check the configured databases and pools: exit 0 on pass or warn, 1 on fail.
    Check(check::CheckArgs),
}

fn main() -> ExitCode {
    // Usage errors exit with status 2 (clap's convention); see each subcommand for the rest.
    let cli = Cli::parse();
    match cli.command {
        Command::Config(args) => config::run(&args),
        Command::Check(args) => check::run(&args),
    }
}
