//! How a benchmark binary was asked to run: full or quick, and where its results go.

use std::env;
use std::path::PathBuf;
use std::time::Duration;

use crate::machine::Machine;

/// Set to `1` for a quick smoke run (what `cargo xtask bench --quick` does).
pub const QUICK_VAR: &str = "SERVIO_BENCH_QUICK";
/// Directory for `bench-results/` and `bench-summary.md` (default: the cargo target dir).
pub const DIR_VAR: &str = "SERVIO_BENCH_DIR";

/// The run mode and output directory of a benchmark binary.
#[derive(Debug, Clone)]
pub struct BenchEnv {
    /// A smoke run: every benchmark runs briefly, to show it works; numbers mean little.
    pub quick: bool,
    /// Where `bench-results/` and `bench-summary.md` are written.
    pub dir: PathBuf,
    /// The machine and commit, looked at as the binary starts (right after it was built), so
    /// the summary names the code that ran even if the tree changes during the run.
    pub machine: Machine,
}

impl BenchEnv {
    /// Reads the mode from the environment and the arguments: quick when [`QUICK_VAR`] is
    /// `1`, or when criterion runs in test mode (`cargo bench -- --test`, `cargo test
    /// --benches`, i.e. without `--bench`).
    pub fn from_env() -> BenchEnv {
        let args: Vec<String> = env::args().collect();
        let test_mode = args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench");
        let quick = env::var(QUICK_VAR).is_ok_and(|v| v == "1") || test_mode;
        BenchEnv {
            quick,
            dir: output_dir(),
            machine: Machine::detect(),
        }
    }

    /// `full` in a full run, `quick` in a quick one.
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick { quick } else { full }
    }

    /// How many slices of a fixed-duration load each pool runs, in turns with the others.
    pub fn slices(&self) -> usize {
        self.pick(3, 1)
    }

    /// How long one slice of a fixed-duration load records (after `warmup()`).
    pub fn duration(&self) -> Duration {
        self.pick(Duration::from_secs(1), Duration::from_millis(100))
    }

    /// How long one slice of a fixed-duration load runs before it records.
    pub fn warmup(&self) -> Duration {
        self.pick(Duration::from_millis(250), Duration::from_millis(20))
    }

    /// Rounds of the uncontended cycle per pool, in turns with the others, and cycles per
    /// round.
    pub fn cycle_rounds(&self) -> (usize, u64) {
        self.pick((9, 1_000_000), (3, 1_000))
    }
}

/// [`DIR_VAR`], else `CARGO_TARGET_DIR`, else the workspace's `target/`.
fn output_dir() -> PathBuf {
    let workspace = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let dir = env::var_os(DIR_VAR)
        .or_else(|| env::var_os("CARGO_TARGET_DIR"))
        .map_or_else(|| workspace.join("target"), PathBuf::from);
    if dir.is_absolute() {
        dir
    } else {
        workspace.join(dir)
    }
}

/// A current-thread Tokio runtime with timers and I/O: for one-task benchmarks, where it keeps
/// scheduler noise out of the cycle.
///
/// # Errors
///
/// If the runtime cannot be built.
pub fn current_thread_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// A multi-thread Tokio runtime of `workers` worker threads with timers and I/O.
///
/// # Errors
///
/// If the runtime cannot be built.
pub fn multi_thread_runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
}
