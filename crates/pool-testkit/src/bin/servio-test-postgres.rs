//! `servio-test-postgres`: holds one PostgreSQL for a test run that another process drives.
//!
//! `cargo xtask test` runs it (so xtask itself needs neither sqlx nor testcontainers): it
//! removes what killed runs left behind, starts a server with the backend asked for
//! (`--backend docker|native|url|auto`, else `SERVIO_TEST_BACKEND`), tells the reader on
//! standard error what it did, and writes on standard output, one per line:
//!
//! ```text
//! backend <docker|native|url>
//! reason <why this backend>
//! url <superuser URL, for SERVIO_TEST_DATABASE_URL>
//! dir <its state directory>      (docker and native only)
//! ready
//! ```
//!
//! Then it keeps the server until its standard input closes (the driver exited or let go),
//! or until SIGINT or SIGTERM, and removes it. If it is killed outright, the server's
//! watchdog removes it.

use std::io::Write as _;
use std::process::ExitCode;

use pool_testkit::{Backend, TestPostgres};
use tokio::io::AsyncReadExt as _;
use tokio::signal::unix::{SignalKind, signal};

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("servio-test-postgres: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run());
    // The read of standard input runs on a blocking thread that returns only when input
    // comes; after a signal, none may come, so do not wait for it.
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("servio-test-postgres: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn backend_asked_for() -> anyhow::Result<Backend> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (None, _) => Backend::from_env(),
        (Some("--backend"), Some(name)) => Ok(name.parse()?),
        _ => anyhow::bail!("usage: servio-test-postgres [--backend docker|native|url|auto]"),
    }
}

async fn run() -> anyhow::Result<()> {
    let backend = backend_asked_for()?;
    // Installed first: a Ctrl-C while the server starts must still remove it.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;

    eprintln!("\n==> cleaning up after earlier runs");
    match pool_testkit::sweep_leftovers() {
        0 => eprintln!("    nothing was left behind"),
        n => eprintln!(
            "    removed {n} server(s), container(s) or directory(ies) left by killed runs"
        ),
    }
    eprintln!("\n==> provisioning PostgreSQL for the tests (backend: {backend})");
    let server = tokio::select! {
        server = TestPostgres::start(backend) => server.map_err(|error| {
            error.context(format!("cannot provision PostgreSQL with the {backend} backend"))
        })?,
        _ = interrupt.recv() => anyhow::bail!("interrupted (SIGINT) while provisioning PostgreSQL"),
        _ = terminate.recv() => anyhow::bail!("terminated (SIGTERM) while provisioning PostgreSQL"),
    };
    eprintln!(
        "    using the {} backend: PostgreSQL at {}:{}\n    why: {}",
        server.backend(),
        server.host(),
        server.port(),
        server.reason()
    );
    let mut out = std::io::stdout().lock();
    writeln!(out, "backend {}", server.backend())?;
    writeln!(out, "reason {}", server.reason().replace('\n', " "))?;
    writeln!(out, "url {}", server.superuser_url())?;
    if let Some(dir) = server.state_dir() {
        writeln!(out, "dir {}", dir.display())?;
    }
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);

    let why = tokio::select! {
        _ = closed(tokio::io::stdin()) => "the test run is over",
        _ = interrupt.recv() => "interrupted (SIGINT)",
        _ = terminate.recv() => "terminated (SIGTERM)",
    };
    eprintln!(
        "\n==> stopping the test PostgreSQL ({} backend): {why}",
        server.backend()
    );
    drop(server);
    Ok(())
}

/// Reads `input` until it closes.
async fn closed(mut input: tokio::io::Stdin) {
    let mut buffer = [0_u8; 64];
    while matches!(input.read(&mut buffer).await, Ok(n) if n > 0) {}
}
