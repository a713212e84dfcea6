//! `cargo xtask demo`: the pools at work against a throwaway PostgreSQL.

/// Options of `cargo xtask demo`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("the demo is not written yet")
}
