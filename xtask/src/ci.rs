//! `cargo xtask ci`: what CI checks, in the order that fails fastest: formatting, clippy,
//! docs, then the tests with a provisioned PostgreSQL.

use crate::shell::{cargo, runtime, step};

/// Options of `cargo xtask ci`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    test: crate::test::Args,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let mut fmt = cargo();
        fmt.args(["fmt", "--all", "--", "--check"]);
        step(
            "cargo fmt --check",
            "the code is formatted as rustfmt formats it",
            "Run `cargo fmt --all` and commit the result",
            fmt,
        )
        .await?;

        let mut clippy = cargo();
        clippy.args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]);
        step(
            "cargo clippy -D warnings",
            "no lint warnings in any crate, test, bench or example",
            "Fix each warning above (or, if it is wrong, allow it at the spot with a comment saying why)",
            clippy,
        )
        .await?;

        let mut doc = cargo();
        doc.args(["doc", "--workspace", "--no-deps", "--all-features", "--locked"])
            .env("RUSTDOCFLAGS", "-D warnings");
        step(
            "cargo doc (RUSTDOCFLAGS=-D warnings)",
            "the API docs build without broken links or other warnings",
            "Fix each warning above (broken intra-doc links are the usual cause)",
            doc,
        )
        .await?;

        crate::test::run_async(&args.test).await
    })
}
