//! `cargo xtask test`: provision one PostgreSQL for the run, run every test of the workspace
//! (unit, integration, doctests) against it, tear it down.

use pool_testkit::{BACKEND_ENV, Backend, DATABASE_URL_ENV, TestPostgres};

use crate::shell::{cargo, runtime, step};

/// Options of `cargo xtask test`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct Args {
    /// Where PostgreSQL comes from: docker, native, url or auto (default: SERVIO_TEST_BACKEND,
    /// else auto: docker when an engine answers, else native, else SERVIO_TEST_DATABASE_URL).
    #[arg(long, value_name = "BACKEND")]
    backend: Option<Backend>,
    /// Test only these packages instead of the whole workspace.
    #[arg(short, long = "package", value_name = "CRATE")]
    packages: Vec<String>,
    /// Extra arguments for `cargo test`; after a second `--` they go to the test binaries
    /// (e.g. `cargo xtask test -- -- --nocapture`).
    #[arg(last = true)]
    cargo_test_args: Vec<String>,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    runtime()?.block_on(run_async(args))
}

/// Removes what killed runs left behind, then starts PostgreSQL with `backend` for `purpose`
/// (e.g. "the tests") and says which server it is and why; Ctrl-C stops the wait.
pub(crate) async fn provision(backend: Backend, purpose: &str) -> anyhow::Result<TestPostgres> {
    println!("\n==> cleaning up after earlier runs");
    match pool_testkit::sweep_leftovers() {
        0 => println!("    nothing was left behind"),
        n => println!(
            "    removed {n} server(s), container(s) or directory(ies) left by killed runs"
        ),
    }

    println!("\n==> provisioning PostgreSQL for {purpose} (backend: {backend})");
    let server = tokio::select! {
        server = TestPostgres::start(backend) => server.map_err(|error| {
            error.context(format!(
                "cannot provision PostgreSQL for {purpose} with the {backend} backend"
            ))
        })?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted (Ctrl-C) while provisioning PostgreSQL"),
    };
    println!(
        "    using the {} backend: PostgreSQL at {}:{}\n    why: {}",
        server.backend(),
        server.host(),
        server.port(),
        server.reason()
    );
    Ok(server)
}

pub(crate) async fn run_async(args: &Args) -> anyhow::Result<()> {
    let backend = match args.backend {
        Some(backend) => backend,
        None => Backend::from_env()?,
    };
    let server = provision(backend, "the tests").await?;

    let mut command = cargo();
    command.arg("test");
    if args.packages.is_empty() {
        command.arg("--workspace");
    }
    for package in &args.packages {
        command.args(["--package", package]);
    }
    // --no-fail-fast: a failing crate should not hide how the others fare.
    command
        .args(["--all-features", "--locked", "--no-fail-fast"])
        .args(&args.cargo_test_args)
        .env(DATABASE_URL_ENV, server.superuser_url())
        .env(BACKEND_ENV, Backend::Url.as_str());
    // The exact command line is printed under the title.
    let title = if args.packages.is_empty() {
        "cargo test: every crate of the workspace".to_owned()
    } else {
        format!("cargo test: {}", args.packages.join(", "))
    };
    let result = step(
        &title,
        "every unit, integration and doc test, each test against a fresh database on the server above \
         (the testkit's own tests also start native and docker servers of their own)",
        "Read the first failure above; rerun one crate with `cargo xtask test -p <crate>`, \
         or one test with `cargo xtask test -p <crate> -- <test name>`",
        command,
    )
    .await;

    println!(
        "\n==> stopping the test PostgreSQL ({} backend)",
        server.backend()
    );
    drop(server);
    result?;
    println!("\nall tests passed");
    Ok(())
}
