//! `cargo xtask ci`: what CI runs (`.ci/run` calls it), in the order that fails fastest:
//! formatting, clippy, docs, then the README's two commands: `cargo xtask test` (and a check
//! that Ctrl-C on it leaves nothing behind), and the demo in a short smoke run whose output is
//! checked; last, a smoke run of the benchmarks.

use crate::shell::{cargo, step};

/// Options of `cargo xtask ci`.
#[derive(Debug, Clone, clap::Args)]
// Its only field is the flattened `test::Args`, whose group has the same derived name.
#[group(skip)]
pub(crate) struct Args {
    #[command(flatten)]
    test: crate::test::Args,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    step(
        "cargo fmt --check",
        "the code is formatted as rustfmt formats it",
        "Run `cargo fmt --all` and commit the result",
        fmt,
    )?;

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
    )?;

    let mut doc = cargo();
    doc.args([
        "doc",
        "--workspace",
        "--no-deps",
        "--all-features",
        "--locked",
    ])
    .env("RUSTDOCFLAGS", "-D warnings");
    step(
        "cargo doc (RUSTDOCFLAGS=-D warnings)",
        "the API docs build without broken links or other warnings",
        "Fix each warning above (broken intra-doc links are the usual cause)",
        doc,
    )?;

    println!("\n==> cargo xtask test (the README's test command)");
    crate::test::run(&args.test)?;
    crate::interrupt::check()?;

    println!("\n==> cargo xtask demo --duration 5s (the README's demo command, short)");
    crate::demo::smoke(args.test.whole_workspace())?;

    // The benchmarks must keep working: each runs once (release build), which checks that they
    // run and write their summary, not their speed.
    println!("\n==> cargo xtask bench --quick (smoke run of the benchmarks)");
    crate::bench::run(&crate::bench::Args::quick())
}
