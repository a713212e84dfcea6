//! `cargo xtask bench`: run the criterion benchmarks of `benches/` (servio-pool against
//! deadpool, bb8 and sqlx's `PgPool`; on PostgreSQL also deadpool-postgres, bb8-postgres,
//! minimal reference pools over tokio-postgres and over sqlx, and pgbench's ceiling), print the
//! summary with its target table (in the target directory, or in `SERVIO_BENCH_DIR`). The
//! `postgres` benchmark starts its own PostgreSQL with the backend chosen here (pool-testkit
//! removes it at exit) and needs `pgbench` beside the server binaries.

use anyhow::Context as _;

use crate::shell::{cargo, step, target_dir};
use crate::test::Backend;

/// The benchmark binaries of `benches/`, in the order cargo runs them.
const BENCHES: [&str; 4] = ["contended", "metrics", "postgres", "uncontended"];
/// The one that needs PostgreSQL.
const NEEDS_POSTGRES: &str = "postgres";
/// pool-testkit's backend variable (kept in step with `crates/pool-testkit/src/backend.rs`).
const BACKEND_ENV: &str = "SERVIO_TEST_BACKEND";

/// Options of `cargo xtask bench`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct Args {
    /// A short smoke run for CI: every benchmark runs briefly, in a debug build, to show it
    /// works; its numbers are not measurements.
    #[arg(long)]
    quick: bool,
    /// Run only this benchmark (contended, metrics, postgres, uncontended); repeatable.
    #[arg(long = "bench", value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(BENCHES))]
    benches: Vec<String>,
    /// Where PostgreSQL comes from (default: SERVIO_TEST_BACKEND, else native: docker's port
    /// mapping adds a proxy hop to every round trip).
    #[arg(long, value_enum, value_name = "BACKEND")]
    backend: Option<Backend>,
    /// Extra arguments for the criterion binaries (e.g. a filter: `cargo xtask bench --
    /// servio-pool`).
    #[arg(last = true)]
    criterion_args: Vec<String>,
}

impl Args {
    /// `--quick`, for CI.
    pub(crate) fn quick() -> Self {
        Self {
            quick: true,
            ..Self::default()
        }
    }
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let target = target_dir();
    // `SERVIO_BENCH_DIR` keeps a run's results apart from those in the target directory.
    let out = match std::env::var_os(benches_env::DIR) {
        Some(dir) => std::path::absolute(&dir)
            .with_context(|| format!("{} is not a usable path", benches_env::DIR))?,
        None => target.clone(),
    };
    let selected: Vec<&str> = if args.benches.is_empty() {
        BENCHES.to_vec()
    } else {
        args.benches.iter().map(String::as_str).collect()
    };
    if !args.quick {
        warn_if_busy();
    }

    let results = out.join("bench-results");
    if args.benches.is_empty() && results.exists() {
        // A full run replaces every result, so none of an older run can slip into the table.
        std::fs::remove_dir_all(&results)
            .with_context(|| format!("cannot remove the old results in {}", results.display()))?;
    }

    let mut command = cargo();
    if args.quick {
        // A smoke run checks that the benchmarks run, not how fast: built like the tests
        // (debug, the workspace's features), it reuses what `cargo xtask test` compiled instead
        // of an optimised build of every dependency.
        command.args(["test", "--workspace", "--all-features", "--locked"]);
    } else {
        command.args(["bench", "--package", "benches", "--locked"]);
    }
    for bench in &selected {
        command.args(["--bench", bench]);
    }
    command.arg("--");
    if args.quick {
        // Criterion's test mode runs each benchmark once; the summary passes shorten too.
        command.arg("--test").env(benches_env::QUICK, "1");
    }
    command
        .args(&args.criterion_args)
        .env(benches_env::DIR, &out);
    if selected.contains(&NEEDS_POSTGRES) {
        let backend = match args.backend {
            Some(backend) => backend,
            None if std::env::var_os(BACKEND_ENV).is_some() => Backend::chosen(None)?,
            None => Backend::Native,
        };
        command.env(BACKEND_ENV, backend.as_str());
    }
    let (title, why) = if args.quick {
        (
            "quick benchmark smoke run",
            "every benchmark runs briefly (debug build, as the tests are built) to show it still works",
        )
    } else {
        (
            "benchmarks",
            "criterion per case, then a fixed-duration pass per pool for the summary (several minutes)",
        )
    };
    step(
        title,
        why,
        "Read the panic or error above: a benchmark stops when a pool fails (or, for postgres, \
         when no server can be started: choose another --backend). Rerun one with \
         `cargo xtask bench --quick --bench <name>`",
        command,
    )?;

    let summary = out.join("bench-summary.md");
    let text = std::fs::read_to_string(&summary)
        .with_context(|| format!("the benchmarks wrote no summary at {}", summary.display()))?;
    println!("\n{text}");
    println!("summary: {}", summary.display());
    println!(
        "criterion reports: {}",
        target.join("criterion/report/index.html").display()
    );
    Ok(())
}

/// The names the benchmark binaries read (kept in step with `benches/src/bench_env.rs`).
mod benches_env {
    /// `1` for a quick smoke run.
    pub(super) const QUICK: &str = "SERVIO_BENCH_QUICK";
    /// Where `bench-results/` and `bench-summary.md` go.
    pub(super) const DIR: &str = "SERVIO_BENCH_DIR";
}

/// Timings on a busy machine mislead: say so before a full run.
fn warn_if_busy() {
    let Ok(loadavg) = std::fs::read_to_string("/proc/loadavg") else {
        return;
    };
    let load: f64 = loadavg
        .split_whitespace()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0.0);
    let cpus = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    if load > cpus * 0.5 {
        println!(
            "\n==> note: load average {load:.1} on {cpus} CPUs: other work competes with the \
             benchmarks, so their numbers will be noisy"
        );
    }
}
