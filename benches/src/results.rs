//! Measurements shared between the benchmark binaries and the summary: one file per binary
//! under `<target>/bench-results/`, one `scenario<TAB>pool<TAB>metric<TAB>value` line each.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Names of the scenarios, pools and metrics the summary knows how to lay out.
pub mod names {
    /// Scenario: one task, acquire + release, in-memory connections, max 8.
    pub const UNCONTENDED: &str = "uncontended";
    /// Scenario: 64 tasks, acquire → yield → release, in-memory connections, max 8.
    pub const CONTENDED_64_ON_8: &str = "contended_64_on_8";
    /// Scenario: 64 tasks, acquire → yield → release, in-memory connections, max 32.
    pub const CONTENDED_64_ON_32: &str = "contended_64_on_32";
    /// Scenario: the uncontended cycle of our pool with and without pool-metrics recording.
    pub const METRICS_OVERHEAD: &str = "metrics_overhead";
    /// Scenario: 32 tasks, prepared `SELECT 1`, real PostgreSQL, max 10.
    pub const POSTGRES_SELECT_1: &str = "postgres_select_1";
    /// Scenario: 32 tasks, prepared 100-row `generate_series`, every row, max 10.
    pub const POSTGRES_FETCH_ALL: &str = "postgres_fetch_all";
    /// Scenario: 32 tasks, pgbench's simple-update transaction, max 10.
    pub const POSTGRES_SIMPLE_UPDATE: &str = "postgres_simple_update";
    /// Scenario: 64 tasks, `SELECT pg_sleep(0.002)`, max 10: latency is the wait for a
    /// connection.
    pub const POSTGRES_POOL_BOUND: &str = "postgres_pool_bound";
    /// Scenario: as [`POSTGRES_SELECT_1`], offered at one fixed rate that every pool compared
    /// sustains (a share of the slowest one's maximum).
    pub const POSTGRES_SELECT_1_PACED: &str = "postgres_select_1_paced";
    /// Scenario: open one connection to real PostgreSQL.
    pub const CONNECT: &str = "connect";

    /// Our pool.
    pub const OURS: &str = "servio-pool";
    /// Our pool without `max_uses`: like the peers, it never replaces a connection that works.
    pub const OURS_NO_MAX_USES: &str = "servio-pool (max_uses off, as the peers)";
    /// Our pool with a pool-metrics observer installed.
    pub const OURS_WITH_METRICS: &str = "servio-pool + pool-metrics";
    /// deadpool 0.13 (managed).
    pub const DEADPOOL: &str = "deadpool";
    /// bb8 0.9.
    pub const BB8: &str = "bb8";
    /// Reference row of the contended scenarios: Tokio's FIFO semaphore alone.
    pub const SEMAPHORE_FLOOR: &str = "reference: tokio Semaphore alone";
    /// sqlx `PgPool` with its defaults (`test_before_acquire(true)`).
    pub const PGPOOL: &str = "sqlx PgPool (defaults)";
    /// sqlx `PgPool` with `test_before_acquire(false)`.
    pub const PGPOOL_NO_TEST: &str = "sqlx PgPool (test_before_acquire=false)";
    /// deadpool-postgres, fast recycling, statements cached.
    pub const DEADPOOL_PG: &str = "deadpool-postgres (fast recycling, prepared)";
    /// bb8-postgres with its checkout test.
    pub const BB8_PG: &str = "bb8-postgres (test_on_check_out)";
    /// bb8-postgres without its checkout test.
    pub const BB8_PG_NO_TEST: &str = "bb8-postgres (no checkout test)";
    /// The minimal reference pool over tokio-postgres.
    pub const MINIMAL_PG: &str =
        "reference: Semaphore + `Mutex<Vec>` over tokio-postgres, prepared";
    /// The same minimal reference pool over sqlx connections: our driver, no pool logic.
    pub const MINIMAL_SQLX: &str = "reference: Semaphore + `Mutex<Vec>` over sqlx, prepared";
    /// The rate offered to every pool in [`POSTGRES_SELECT_1_PACED`].
    pub const OFFERED_RATE: &str = "offered load, every pool";
    /// pgbench, prepared `SELECT 1`, 10 clients: the server's ceiling.
    pub const PGBENCH: &str = "pgbench -M prepared, 10 clients (server ceiling)";
    /// Our `PgConnector`, opening one connection.
    pub const OURS_CONNECT: &str = "servio-pool PgConnector";
    /// `sqlx::PgConnection::connect_with`.
    pub const RAW_SQLX_CONNECT: &str = "sqlx PgConnection::connect_with";

    /// Metric: nanoseconds per acquire + release cycle.
    pub const NS_PER_CYCLE: &str = "ns_per_cycle";
    /// Metric: operations (or queries) per second.
    pub const OPS_PER_SEC: &str = "ops_per_sec";
    /// Metric: median latency in nanoseconds (acquire wait, query or connect).
    pub const P50_NS: &str = "p50_ns";
    /// Metric: 99th percentile latency in nanoseconds.
    pub const P99_NS: &str = "p99_ns";
    /// Metric: 99.9th percentile latency in nanoseconds.
    pub const P999_NS: &str = "p999_ns";
    /// Metric: mean latency in nanoseconds.
    pub const MEAN_NS: &str = "mean_ns";
    /// Metric: fewest operations of any task divided by the mean per task.
    pub const FAIRNESS: &str = "fairness";
    /// Metric: client CPU nanoseconds per operation.
    pub const CPU_NS_PER_OP: &str = "cpu_ns_per_op";
}

/// One measured value.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// What was run (see [`names`]).
    pub scenario: String,
    /// Which pool or connector ran it (see [`names`]).
    pub pool: String,
    /// What was measured (see [`names`]).
    pub metric: String,
    /// The value, in the metric's unit.
    pub value: f64,
}

/// Measurements in the order they were recorded.
#[derive(Debug, Clone, Default)]
pub struct Results {
    rows: Vec<Measurement>,
}

impl Results {
    /// No measurements yet.
    pub fn new() -> Results {
        Results::default()
    }

    /// Records one value, replacing an earlier value for the same scenario, pool and metric.
    pub fn record(&mut self, scenario: &str, pool: &str, metric: &str, value: f64) {
        self.rows.retain(|m| {
            (m.scenario.as_str(), m.pool.as_str(), m.metric.as_str()) != (scenario, pool, metric)
        });
        self.rows.push(Measurement {
            scenario: scenario.to_owned(),
            pool: pool.to_owned(),
            metric: metric.to_owned(),
            value,
        });
    }

    /// The value recorded for `scenario`, `pool` and `metric`, if any.
    pub fn get(&self, scenario: &str, pool: &str, metric: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|m| m.scenario == scenario && m.pool == pool && m.metric == metric)
            .map(|m| m.value)
    }

    /// The pools that have a value in `scenario`, in the order first recorded.
    pub fn pools(&self, scenario: &str) -> Vec<&str> {
        let mut pools: Vec<&str> = Vec::new();
        for m in self.rows.iter().filter(|m| m.scenario == scenario) {
            if !pools.contains(&m.pool.as_str()) {
                pools.push(&m.pool);
            }
        }
        pools
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Writes these results as `<dir>/bench-results/<bench>.tsv`, replacing that file.
    ///
    /// # Errors
    ///
    /// If the directory cannot be created or the file written.
    pub fn save(&self, dir: &Path, bench: &str) -> io::Result<PathBuf> {
        let results_dir = dir.join("bench-results");
        fs::create_dir_all(&results_dir)?;
        let mut text = String::new();
        for m in &self.rows {
            let _ = writeln!(
                text,
                "{}\t{}\t{}\t{}",
                m.scenario, m.pool, m.metric, m.value
            );
        }
        let path = results_dir.join(format!("{bench}.tsv"));
        fs::write(&path, text)?;
        Ok(path)
    }

    /// Reads every `<dir>/bench-results/*.tsv`, in file-name order; an absent directory gives
    /// no results.
    ///
    /// # Errors
    ///
    /// If a file cannot be read or holds a line that is not a measurement.
    pub fn load(dir: &Path) -> io::Result<Results> {
        let mut results = Results::new();
        let mut files: Vec<PathBuf> = match fs::read_dir(dir.join("bench-results")) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|ext| ext == "tsv"))
                .collect(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(results),
            Err(error) => return Err(error),
        };
        files.sort();
        for file in files {
            for (number, line) in fs::read_to_string(&file)?.lines().enumerate() {
                let invalid = || {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}:{}: not a measurement line", file.display(), number + 1),
                    )
                };
                let fields: Vec<&str> = line.split('\t').collect();
                let [scenario, pool, metric, value] = fields[..] else {
                    return Err(invalid());
                };
                let value = value.parse().map_err(|_| invalid())?;
                results.record(scenario, pool, metric, value);
            }
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_every_file() {
        let dir = tempfile_dir();
        let mut a = Results::new();
        a.record(names::UNCONTENDED, names::OURS, names::NS_PER_CYCLE, 41.5);
        a.record(
            names::UNCONTENDED,
            names::DEADPOOL,
            names::NS_PER_CYCLE,
            120.0,
        );
        a.save(&dir, "a").unwrap();
        let mut b = Results::new();
        b.record(names::CONNECT, names::OURS_CONNECT, names::P50_NS, 2e6);
        b.save(&dir, "b").unwrap();

        let loaded = Results::load(&dir).unwrap();
        assert_eq!(
            loaded.get(names::UNCONTENDED, names::OURS, names::NS_PER_CYCLE),
            Some(41.5)
        );
        assert_eq!(
            loaded.get(names::CONNECT, names::OURS_CONNECT, names::P50_NS),
            Some(2e6)
        );
        assert_eq!(
            loaded.pools(names::UNCONTENDED),
            vec![names::OURS, names::DEADPOOL]
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_later_value_replaces_an_earlier_one() {
        let mut r = Results::new();
        r.record("s", "p", "m", 1.0);
        r.record("s", "p", "m", 2.0);
        assert_eq!(r.get("s", "p", "m"), Some(2.0));
        assert_eq!(r.pools("s"), vec!["p"]);
    }

    #[test]
    fn a_broken_line_is_an_error_naming_the_file() {
        let dir = tempfile_dir();
        fs::create_dir_all(dir.join("bench-results")).unwrap();
        fs::write(dir.join("bench-results/x.tsv"), "only\ttwo\n").unwrap();
        let error = Results::load(&dir).unwrap_err();
        assert!(error.to_string().contains("x.tsv:1"), "{error}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn no_directory_is_no_results() {
        let loaded = Results::load(Path::new("/nonexistent/servio-bench")).unwrap();
        assert!(loaded.is_empty());
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "servio-bench-results-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }
}
