//! The markdown summary: the targets with the measured ratios, then one table per
//! scenario with every pool side by side.

use std::fmt::Write as _;
use std::fs;
use std::io;

use crate::bench_env::BenchEnv;
use crate::machine::Machine;
use crate::results::{Results, names::*};

/// Saves `results` as the measurements of benchmark binary `bench`, then rewrites
/// `bench-summary.md` from every binary's measurements so far and prints its path.
///
/// Every binary calls this as it finishes, so the summary is complete after the last one and
/// never stale after an interrupted run's partial results.
///
/// # Errors
///
/// If a results file or the summary cannot be read or written.
pub fn publish(env: &BenchEnv, bench: &str, results: &Results) -> io::Result<()> {
    results.save(&env.dir, bench)?;
    let all = Results::load(&env.dir)?;
    let path = env.dir.join("bench-summary.md");
    fs::write(&path, render(&all, &env.machine, env.quick))?;
    println!("summary: {}", path.display());
    Ok(())
}

/// How a metric's values are printed.
#[derive(Debug, Clone, Copy)]
enum Unit {
    Nanos,
    PerSecond,
    Fraction,
}

#[derive(Debug)]
struct Column {
    metric: &'static str,
    header: &'static str,
    unit: Unit,
}

/// A scenario's table: which metrics, and which pool the ratio column compares with.
#[derive(Debug)]
struct Section {
    scenario: &'static str,
    title: &'static str,
    columns: &'static [Column],
    /// `(metric, pool, header)`: each row gets `pool's value ÷ row's value` of `metric`.
    ratio: (&'static str, &'static str, &'static str),
}

const fn col(metric: &'static str, header: &'static str, unit: Unit) -> Column {
    Column {
        metric,
        header,
        unit,
    }
}

const CYCLE_COLUMNS: &[Column] = &[
    col(NS_PER_CYCLE, "time per cycle", Unit::Nanos),
    col(CPU_NS_PER_OP, "CPU per cycle, all threads", Unit::Nanos),
];

const CONTENDED_COLUMNS: &[Column] = &[
    col(OPS_PER_SEC, "throughput", Unit::PerSecond),
    col(P50_NS, "p50 wait", Unit::Nanos),
    col(P99_NS, "p99 wait", Unit::Nanos),
    col(P999_NS, "p99.9 wait", Unit::Nanos),
    col(FAIRNESS, "fewest ops ÷ mean", Unit::Fraction),
];

const QUERY_COLUMNS: &[Column] = &[
    col(OPS_PER_SEC, "queries/s", Unit::PerSecond),
    col(P50_NS, "p50", Unit::Nanos),
    col(P99_NS, "p99", Unit::Nanos),
    col(P999_NS, "p99.9", Unit::Nanos),
    col(CPU_NS_PER_OP, "client CPU / query", Unit::Nanos),
];

const QPS_RATIO: (&str, &str, &str) = (
    OPS_PER_SEC,
    OURS,
    "servio-pool qps ÷ this (higher is better)",
);

const SECTIONS: &[Section] = &[
    Section {
        scenario: UNCONTENDED,
        title: "1. In-memory, uncontended: one task, acquire + release, max 8",
        columns: CYCLE_COLUMNS,
        ratio: (
            NS_PER_CYCLE,
            OURS,
            "servio-pool time ÷ this (lower is better)",
        ),
    },
    Section {
        scenario: CONTENDED_64_ON_8,
        title: "2a. In-memory, contended: 64 tasks on max 8, acquire → yield → release, 2 workers",
        columns: CONTENDED_COLUMNS,
        ratio: (
            OPS_PER_SEC,
            OURS,
            "servio-pool throughput ÷ this (higher is better)",
        ),
    },
    Section {
        scenario: CONTENDED_64_ON_32,
        title: "2b. In-memory, contended: 64 tasks on max 32, acquire → yield → release, 2 workers",
        columns: CONTENDED_COLUMNS,
        ratio: (
            OPS_PER_SEC,
            OURS,
            "servio-pool throughput ÷ this (higher is better)",
        ),
    },
    Section {
        scenario: METRICS_OVERHEAD,
        title: "3. Metrics recording: uncontended acquire + release with and without pool-metrics",
        columns: CYCLE_COLUMNS,
        ratio: (NS_PER_CYCLE, OURS_WITH_METRICS, "with metrics ÷ this"),
    },
    Section {
        scenario: POSTGRES_SELECT_1,
        title: "4a. PostgreSQL: 32 tasks on max 10, prepared SELECT 1, fetch_one (acquire, query, release)",
        columns: QUERY_COLUMNS,
        ratio: QPS_RATIO,
    },
    Section {
        scenario: POSTGRES_SELECT_1_PACED,
        title: "4a′. PostgreSQL, paced: the 4a workload offered at one rate (70 % of the slowest compared pool's 4a maximum), each task starting on its own schedule",
        columns: QUERY_COLUMNS,
        ratio: (P999_NS, OURS, "servio-pool p99.9 ÷ this (lower is better)"),
    },
    Section {
        scenario: POSTGRES_FETCH_ALL,
        title: "4c. PostgreSQL: 32 tasks on max 10, prepared 100-row generate_series, fetch_all",
        columns: QUERY_COLUMNS,
        ratio: QPS_RATIO,
    },
    Section {
        scenario: POSTGRES_SIMPLE_UPDATE,
        title: "4d. PostgreSQL: 32 tasks on max 10, pgbench's simple-update transaction (BEGIN, UPDATE, SELECT, INSERT, END; scale 1)",
        columns: QUERY_COLUMNS,
        ratio: QPS_RATIO,
    },
    Section {
        scenario: POSTGRES_POOL_BOUND,
        title: "4e. PostgreSQL, pool-bound: 64 tasks on max 10, SELECT pg_sleep(0.002); latency = wait for a connection",
        columns: &[
            col(OPS_PER_SEC, "queries/s", Unit::PerSecond),
            col(P50_NS, "p50 wait", Unit::Nanos),
            col(P99_NS, "p99 wait", Unit::Nanos),
            col(P999_NS, "p99.9 wait", Unit::Nanos),
            col(FAIRNESS, "fewest ops ÷ mean", Unit::Fraction),
            col(CPU_NS_PER_OP, "client CPU / query", Unit::Nanos),
        ],
        ratio: QPS_RATIO,
    },
    Section {
        scenario: CONNECT,
        title: "4b. PostgreSQL: open one connection (TCP, scram-sha-256)",
        columns: &[
            col(P50_NS, "median", Unit::Nanos),
            col(MEAN_NS, "mean", Unit::Nanos),
            col(P99_NS, "p99", Unit::Nanos),
        ],
        ratio: (P50_NS, OURS_CONNECT, "PgConnector median ÷ this"),
    },
];

/// A goal from the issue: `pool`'s `metric` (divided by `per`'s, if given) must be at most
/// (or at least) `bound`.
#[derive(Debug)]
struct Target {
    what: &'static str,
    scenario: &'static str,
    pool: &'static str,
    metric: &'static str,
    per: Option<(&'static str, &'static str)>,
    at_most: bool,
    bound: f64,
}

impl Target {
    fn measured(&self, r: &Results) -> Option<f64> {
        let value = r.get(self.scenario, self.pool, self.metric)?;
        match self.per {
            None => Some(value),
            Some((pool, metric)) => {
                let base = r.get(self.scenario, pool, metric)?;
                (base != 0.0).then(|| value / base)
            }
        }
    }
}

const fn at_most(what: &'static str, scenario: &'static str, bound: f64) -> Target {
    Target {
        what,
        scenario,
        pool: OURS,
        metric: NS_PER_CYCLE,
        per: None,
        at_most: true,
        bound,
    }
}

const fn at_least(what: &'static str, scenario: &'static str, bound: f64) -> Target {
    Target {
        at_most: false,
        ..at_most(what, scenario, bound)
    }
}

const fn of(target: Target, pool: &'static str, metric: &'static str) -> Target {
    Target {
        pool,
        metric,
        ..target
    }
}

const fn per(target: Target, pool: &'static str, metric: &'static str) -> Target {
    Target {
        per: Some((pool, metric)),
        ..target
    }
}

/// Client CPU per query no more than deadpool-postgres's in `scenario`.
const fn cpu_vs_deadpool(what: &'static str, scenario: &'static str) -> Target {
    per(
        of(at_most(what, scenario, 1.0), OURS, CPU_NS_PER_OP),
        DEADPOOL_PG,
        CPU_NS_PER_OP,
    )
}

const TARGETS: &[Target] = &[
    per(
        at_most("uncontended: servio-pool time ÷ deadpool", UNCONTENDED, 0.5),
        DEADPOOL,
        NS_PER_CYCLE,
    ),
    per(
        at_most("uncontended: servio-pool time ÷ bb8", UNCONTENDED, 0.5),
        BB8,
        NS_PER_CYCLE,
    ),
    per(
        of(
            at_least(
                "contended 64 on 8: servio-pool throughput ÷ deadpool",
                CONTENDED_64_ON_8,
                1.2,
            ),
            OURS,
            OPS_PER_SEC,
        ),
        DEADPOOL,
        OPS_PER_SEC,
    ),
    per(
        of(
            at_most(
                "contended 64 on 8: servio-pool p99 wait ÷ p50 wait",
                CONTENDED_64_ON_8,
                2.0,
            ),
            OURS,
            P99_NS,
        ),
        OURS,
        P50_NS,
    ),
    of(
        at_least(
            "contended 64 on 8: servio-pool fewest ops of a task ÷ mean",
            CONTENDED_64_ON_8,
            0.5,
        ),
        OURS,
        FAIRNESS,
    ),
    per(
        of(
            at_most(
                "metrics: time per cycle with pool-metrics ÷ without",
                METRICS_OVERHEAD,
                2.0,
            ),
            OURS_WITH_METRICS,
            NS_PER_CYCLE,
        ),
        OURS,
        NS_PER_CYCLE,
    ),
    per(
        of(
            at_least(
                "PostgreSQL: servio-pool qps ÷ PgPool (defaults)",
                POSTGRES_SELECT_1,
                1.2,
            ),
            OURS,
            OPS_PER_SEC,
        ),
        PGPOOL,
        OPS_PER_SEC,
    ),
    per(
        of(
            at_least(
                "PostgreSQL: servio-pool qps ÷ PgPool (test_before_acquire=false)",
                POSTGRES_SELECT_1,
                1.0,
            ),
            OURS,
            OPS_PER_SEC,
        ),
        PGPOOL_NO_TEST,
        OPS_PER_SEC,
    ),
    per(
        of(
            at_most(
                "PostgreSQL: servio-pool p99.9 ÷ PgPool (defaults)",
                POSTGRES_SELECT_1,
                1.0,
            ),
            OURS,
            P999_NS,
        ),
        PGPOOL,
        P999_NS,
    ),
    per(
        of(
            at_most(
                "PostgreSQL: servio-pool p99.9 ÷ PgPool (test_before_acquire=false)",
                POSTGRES_SELECT_1,
                1.0,
            ),
            OURS,
            P999_NS,
        ),
        PGPOOL_NO_TEST,
        P999_NS,
    ),
    per(
        of(
            at_least(
                "fetch_one: servio-pool qps ÷ deadpool-postgres",
                POSTGRES_SELECT_1,
                1.10,
            ),
            OURS,
            OPS_PER_SEC,
        ),
        DEADPOOL_PG,
        OPS_PER_SEC,
    ),
    per(
        of(
            at_least(
                "fetch_one: servio-pool qps ÷ minimal tokio-postgres pool",
                POSTGRES_SELECT_1,
                1.00,
            ),
            OURS,
            OPS_PER_SEC,
        ),
        MINIMAL_PG,
        OPS_PER_SEC,
    ),
    per(
        of(
            at_most(
                "fetch_one: servio-pool p99.9 ÷ minimal tokio-postgres pool",
                POSTGRES_SELECT_1,
                1.00,
            ),
            OURS,
            P999_NS,
        ),
        MINIMAL_PG,
        P999_NS,
    ),
    per(
        of(
            at_most("fetch_one: servio-pool p99 ÷ p50", POSTGRES_SELECT_1, 2.5),
            OURS,
            P99_NS,
        ),
        OURS,
        P50_NS,
    ),
    per(
        of(
            at_least(
                "fetch_one: servio-pool qps ÷ pgbench's ceiling",
                POSTGRES_SELECT_1,
                0.85,
            ),
            OURS,
            OPS_PER_SEC,
        ),
        PGBENCH,
        OPS_PER_SEC,
    ),
    per(
        of(
            at_most(
                "pool-bound: servio-pool p99 wait ÷ minimal tokio-postgres pool",
                POSTGRES_POOL_BOUND,
                1.2,
            ),
            OURS,
            P99_NS,
        ),
        MINIMAL_PG,
        P99_NS,
    ),
    of(
        at_least(
            "pool-bound: servio-pool fewest ops of a task ÷ mean",
            POSTGRES_POOL_BOUND,
            0.9,
        ),
        OURS,
        FAIRNESS,
    ),
    cpu_vs_deadpool(
        "fetch_one: servio-pool client CPU/query ÷ deadpool-postgres",
        POSTGRES_SELECT_1,
    ),
    cpu_vs_deadpool(
        "fetch_all: servio-pool client CPU/query ÷ deadpool-postgres",
        POSTGRES_FETCH_ALL,
    ),
    cpu_vs_deadpool(
        "simple-update: servio-pool client CPU/query ÷ deadpool-postgres",
        POSTGRES_SIMPLE_UPDATE,
    ),
    cpu_vs_deadpool(
        "pool-bound: servio-pool client CPU/query ÷ deadpool-postgres",
        POSTGRES_POOL_BOUND,
    ),
    per(
        of(
            at_most("connect: PgConnector median ÷ raw sqlx", CONNECT, 1.1),
            OURS_CONNECT,
            P50_NS,
        ),
        RAW_SQLX_CONNECT,
        P50_NS,
    ),
];

/// Same-run ratios that locate the PostgreSQL differences: the pool's own share (servio-pool
/// against the same minimal pool over sqlx), the driver's (the minimal pool over sqlx against
/// the one over tokio-postgres), and what `max_uses` costs. Only `what` and the ratio are
/// shown: these are [`Target`]s without a goal.
const CONTROLS: &[Target] = &[
    control(
        "fetch_one: servio-pool qps ÷ servio-pool with max_uses off",
        POSTGRES_SELECT_1,
        (OURS, OPS_PER_SEC),
        (OURS_NO_MAX_USES, OPS_PER_SEC),
    ),
    control(
        "fetch_one: servio-pool (max_uses off) qps ÷ reference over sqlx",
        POSTGRES_SELECT_1,
        (OURS_NO_MAX_USES, OPS_PER_SEC),
        (MINIMAL_SQLX, OPS_PER_SEC),
    ),
    control(
        "paced fetch_one: servio-pool (max_uses off) p99 ÷ reference over sqlx",
        POSTGRES_SELECT_1_PACED,
        (OURS_NO_MAX_USES, P99_NS),
        (MINIMAL_SQLX, P99_NS),
    ),
    control(
        "paced fetch_one: servio-pool (max_uses off) p99.9 ÷ reference over sqlx",
        POSTGRES_SELECT_1_PACED,
        (OURS_NO_MAX_USES, P999_NS),
        (MINIMAL_SQLX, P999_NS),
    ),
    control(
        "paced fetch_one: servio-pool p99.9 ÷ servio-pool with max_uses off",
        POSTGRES_SELECT_1_PACED,
        (OURS, P999_NS),
        (OURS_NO_MAX_USES, P999_NS),
    ),
    control(
        "paced fetch_one: reference over sqlx p99 ÷ reference over tokio-postgres (the driver)",
        POSTGRES_SELECT_1_PACED,
        (MINIMAL_SQLX, P99_NS),
        (MINIMAL_PG, P99_NS),
    ),
    control(
        "paced fetch_one: reference over sqlx p99.9 ÷ reference over tokio-postgres (the driver)",
        POSTGRES_SELECT_1_PACED,
        (MINIMAL_SQLX, P999_NS),
        (MINIMAL_PG, P999_NS),
    ),
    control(
        "fetch_one: servio-pool (max_uses off) client CPU/query ÷ reference over sqlx",
        POSTGRES_SELECT_1,
        (OURS_NO_MAX_USES, CPU_NS_PER_OP),
        (MINIMAL_SQLX, CPU_NS_PER_OP),
    ),
    control(
        "fetch_all: servio-pool (max_uses off) client CPU/query ÷ reference over sqlx",
        POSTGRES_FETCH_ALL,
        (OURS_NO_MAX_USES, CPU_NS_PER_OP),
        (MINIMAL_SQLX, CPU_NS_PER_OP),
    ),
    control(
        "simple-update: servio-pool (max_uses off) client CPU/query ÷ reference over sqlx",
        POSTGRES_SIMPLE_UPDATE,
        (OURS_NO_MAX_USES, CPU_NS_PER_OP),
        (MINIMAL_SQLX, CPU_NS_PER_OP),
    ),
    control(
        "pool-bound: servio-pool (max_uses off) client CPU/query ÷ reference over sqlx",
        POSTGRES_POOL_BOUND,
        (OURS_NO_MAX_USES, CPU_NS_PER_OP),
        (MINIMAL_SQLX, CPU_NS_PER_OP),
    ),
    control(
        "fetch_all: reference over sqlx client CPU/query ÷ reference over tokio-postgres (the driver)",
        POSTGRES_FETCH_ALL,
        (MINIMAL_SQLX, CPU_NS_PER_OP),
        (MINIMAL_PG, CPU_NS_PER_OP),
    ),
];

/// A same-run ratio, `of`'s value ÷ `per`'s, with no goal (see [`CONTROLS`]).
const fn control(
    what: &'static str,
    scenario: &'static str,
    of: (&'static str, &'static str),
    per: (&'static str, &'static str),
) -> Target {
    Target {
        what,
        scenario,
        pool: of.0,
        metric: of.1,
        per: Some(per),
        at_most: true,
        bound: f64::INFINITY,
    }
}

/// Renders `results` as markdown: machine, targets, then one table per scenario that has
/// results. `quick` marks a smoke run whose numbers are not meant to be read.
pub fn render(results: &Results, machine: &Machine, quick: bool) -> String {
    let mut out = String::from("# Benchmark summary\n\n");
    let _ = writeln!(out, "Machine: {machine}.\n");
    if quick {
        out.push_str(
            "**Quick smoke run**: every benchmark ran briefly to show it works; the numbers \
             below are not measurements. Run `cargo xtask bench` for those.\n\n",
        );
    }

    out.push_str("## Targets\n\n| target | measured | goal | met |\n|---|---|---|---|\n");
    for t in TARGETS {
        let goal = format!("{} {:.2}", if t.at_most { "≤" } else { "≥" }, t.bound);
        let (measured, met) = match t.measured(results) {
            Some(v) => {
                let met = if t.at_most {
                    v <= t.bound
                } else {
                    v >= t.bound
                };
                (format!("{v:.2}"), if met { "yes" } else { "**no**" })
            }
            None => ("not measured".to_owned(), "–"),
        };
        let _ = writeln!(out, "| {} | {measured} | {goal} | {met} |", t.what);
    }

    if CONTROLS.iter().any(|c| c.measured(results).is_some()) {
        out.push_str(
            "\n## Where the differences come from (same run)\n\n| ratio | measured |\n|---|---|\n",
        );
        for c in CONTROLS {
            let measured = c
                .measured(results)
                .map_or_else(|| "not measured".to_owned(), |v| format!("{v:.2}"));
            let _ = writeln!(out, "| {} | {measured} |", c.what);
        }
    }

    for section in SECTIONS {
        let pools = results.pools(section.scenario);
        if pools.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n## {}\n", section.title);
        let (ratio_metric, ratio_pool, ratio_header) = section.ratio;
        out.push_str("| pool |");
        for c in section.columns {
            let _ = write!(out, " {} |", c.header);
        }
        let _ = writeln!(out, " {ratio_header} |");
        out.push_str(&"|---".repeat(section.columns.len() + 2));
        out.push_str("|\n");
        let base = results.get(section.scenario, ratio_pool, ratio_metric);
        for pool in pools {
            let _ = write!(out, "| {pool} |");
            for c in section.columns {
                let cell = results
                    .get(section.scenario, pool, c.metric)
                    .map_or_else(|| "–".to_owned(), |v| format_value(v, c.unit));
                let _ = write!(out, " {cell} |");
            }
            let ratio = match (base, results.get(section.scenario, pool, ratio_metric)) {
                _ if pool == ratio_pool => "–".to_owned(),
                (Some(base), Some(v)) if v != 0.0 => format!("{:.2} ×", base / v),
                _ => "–".to_owned(),
            };
            let _ = writeln!(out, " {ratio} |");
        }
    }
    out
}

fn format_value(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Nanos if value < 1e3 => format!("{value:.0} ns"),
        Unit::Nanos if value < 1e6 => format!("{:.1} µs", value / 1e3),
        Unit::Nanos if value < 1e9 => format!("{:.2} ms", value / 1e6),
        Unit::Nanos => format!("{:.2} s", value / 1e9),
        Unit::PerSecond if value >= 1e6 => format!("{:.2} M/s", value / 1e6),
        Unit::PerSecond if value >= 1e3 => format!("{:.1} k/s", value / 1e3),
        Unit::PerSecond => format!("{value:.0}/s"),
        Unit::Fraction => format!("{value:.2}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Machine {
        Machine {
            cpu: "Test CPU".to_owned(),
            cpus: 2,
            rustc: "rustc 1.94.0".to_owned(),
            commit: "abc1234".to_owned(),
        }
    }

    #[test]
    fn shows_ratios_against_each_peer_and_whether_targets_are_met() {
        let mut r = Results::new();
        r.record(UNCONTENDED, OURS, NS_PER_CYCLE, 40.0);
        r.record(UNCONTENDED, DEADPOOL, NS_PER_CYCLE, 100.0);
        r.record(UNCONTENDED, DEADPOOL, CPU_NS_PER_OP, 110.0);
        r.record(UNCONTENDED, BB8, NS_PER_CYCLE, 60.0);
        let md = render(&r, &machine(), false);

        assert!(
            md.contains("Machine: Test CPU, 2 CPUs; rustc 1.94.0; commit abc1234."),
            "{md}"
        );
        assert!(
            md.contains("| deadpool | 100 ns | 110 ns | 0.40 × |"),
            "{md}"
        );
        assert!(md.contains("| bb8 | 60 ns | – | 0.67 × |"), "{md}");
        assert!(md.contains("| servio-pool | 40 ns | – | – |"), "{md}");
        assert!(
            md.contains("| uncontended: servio-pool time ÷ deadpool | 0.40 | ≤ 0.50 | yes |"),
            "{md}"
        );
        assert!(
            md.contains("| uncontended: servio-pool time ÷ bb8 | 0.67 | ≤ 0.50 | **no** |"),
            "{md}"
        );
        assert!(
            md.contains("| connect: PgConnector median ÷ raw sqlx | not measured | ≤ 1.10 | – |"),
            "{md}"
        );
        // Scenarios without results get no table, and no controls without their results.
        assert!(!md.contains("## 4a."), "{md}");
        assert!(!md.contains("## Where the differences come from"), "{md}");
        assert!(!md.contains("Quick smoke run"), "{md}");
    }

    #[test]
    fn controls_show_same_run_ratios_without_a_goal() {
        let mut r = Results::new();
        r.record(POSTGRES_SELECT_1_PACED, OURS, P999_NS, 450_000.0);
        r.record(
            POSTGRES_SELECT_1_PACED,
            OURS_NO_MAX_USES,
            P999_NS,
            900_000.0,
        );
        r.record(POSTGRES_SELECT_1_PACED, MINIMAL_SQLX, P999_NS, 1_000_000.0);
        let md = render(&r, &machine(), false);
        assert!(
            md.contains(
                "| paced fetch_one: servio-pool (max_uses off) p99.9 ÷ reference over sqlx | 0.90 |"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| paced fetch_one: servio-pool (max_uses off) p99 ÷ reference over sqlx | not measured |"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| servio-pool (max_uses off, as the peers) | – | – | – | 900.0 µs | – | 0.50 × |"
            ),
            "{md}"
        );
    }

    #[test]
    fn a_quick_run_says_its_numbers_mean_nothing() {
        let md = render(&Results::new(), &machine(), true);
        assert!(md.contains("**Quick smoke run**"), "{md}");
    }

    #[test]
    fn formats_units_for_reading() {
        assert_eq!(format_value(41.2, Unit::Nanos), "41 ns");
        assert_eq!(format_value(1_530.0, Unit::Nanos), "1.5 µs");
        assert_eq!(format_value(2_345_000.0, Unit::Nanos), "2.35 ms");
        assert_eq!(format_value(12_345_678.0, Unit::PerSecond), "12.35 M/s");
        assert_eq!(format_value(23_456.0, Unit::PerSecond), "23.5 k/s");
        assert_eq!(format_value(0.934, Unit::Fraction), "0.93");
    }
}
