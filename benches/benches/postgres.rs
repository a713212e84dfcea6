//! Benchmark 4: real PostgreSQL from pool-testkit. Pools of max 10 (servio-pool with its
//! defaults and with `max_uses` off as in every peer, sqlx's `PgPool` with its defaults and
//! with `test_before_acquire(false)`, deadpool-postgres, bb8-postgres with and without its
//! checkout test, and the minimal FIFO reference pool over tokio-postgres and over sqlx) run
//! four workloads: a prepared `SELECT 1` and a 100-row `fetch_all` from 32 tasks, pgbench's
//! simple-update transaction from 32 tasks, and `pg_sleep(0.002)` from 64 tasks (pool-bound).
//! The `SELECT 1` load is run again at one offered rate every fair pool sustains, for latency
//! at equal load. pgbench's prepared `SELECT 1` from 10 clients is the server's ceiling. Then
//! the time to open one connection through our `PgConnector` vs `PgConnection::connect_with`.

use benches::{
    Bb8Pg, BenchEnv, Checkout, Interleaved, LoadConfig, LoadReport, MinimalPool, PgBench,
    PgWorkload, QUERY_MAX_CONNECTIONS, QUERY_TASKS, Results, SqlxReferencePool, bb8_operation,
    bb8_pg, bench_connect, bench_queries, checkout_select_1, connector_connect, deadpool_operation,
    deadpool_pg, fill, load_slices, measure_connects, minimal_operation, multi_thread_runtime,
    names, publish, raw_connect, record_slices, servio_pg_pool, servio_pg_pool_no_max_uses,
    sqlx_operation, sqlx_pg_pool, tpg_config,
};
use criterion::{Criterion, Throughput};
use pool_core::{PgConnector, Pool};
use pool_testkit::{APP_PASSWORD, APP_USER, SUPERUSER, SUPERUSER_PASSWORD, TestDatabase};
use sqlx::Connection as _;
use sqlx::PgPool;
use tokio::runtime::Runtime;

/// Tasks of the pool-bound workload.
const POOL_BOUND_TASKS: usize = 64;
/// The paced `SELECT 1` offers this share of the slowest compared pool's closed-loop rate.
const PACED_SHARE: f64 = 0.7;

/// Every pool of the PostgreSQL workloads.
struct PgPeers<'a> {
    ours: &'a Pool<PgConnector>,
    ours_no_max_uses: &'a Pool<PgConnector>,
    sqlx_reference: &'a SqlxReferencePool,
    minimal: &'a MinimalPool,
    deadpool: &'a deadpool_postgres::Pool,
    bb8: &'a Bb8Pg,
    bb8_no_test: &'a Bb8Pg,
    pgpool: &'a PgPool,
    pgpool_no_test: &'a PgPool,
}

impl<'a> PgPeers<'a> {
    /// Every pool, in the order of the tables.
    const ALL: &'static [&'static str] = &[
        names::OURS,
        names::OURS_NO_MAX_USES,
        names::MINIMAL_SQLX,
        names::MINIMAL_PG,
        names::DEADPOOL_PG,
        names::BB8_PG_NO_TEST,
        names::BB8_PG,
        names::PGPOOL,
        names::PGPOOL_NO_TEST,
    ];
    /// The fair pools compared at one rate (bb8's unfair hand-off and `PgPool`'s pings are
    /// not what the paced run asks about).
    const PACED: &'static [&'static str] = &[
        names::OURS,
        names::OURS_NO_MAX_USES,
        names::MINIMAL_SQLX,
        names::MINIMAL_PG,
        names::DEADPOOL_PG,
    ];

    /// `pools`' runs of `workload` under `config`, to be taken in turns.
    fn runs(
        &self,
        rt: &'a Runtime,
        config: LoadConfig,
        workload: PgWorkload,
        pools: &[&str],
    ) -> Interleaved<'a, LoadReport> {
        let mut runs = Interleaved::new();
        for &name in pools {
            match name {
                names::OURS => runs.add(name, sqlx_load(rt, config, workload, self.ours)),
                names::OURS_NO_MAX_USES => {
                    runs.add(name, sqlx_load(rt, config, workload, self.ours_no_max_uses))
                }
                names::MINIMAL_SQLX => {
                    runs.add(name, sqlx_load(rt, config, workload, self.sqlx_reference))
                }
                names::PGPOOL => runs.add(name, sqlx_load(rt, config, workload, self.pgpool)),
                names::PGPOOL_NO_TEST => {
                    runs.add(name, sqlx_load(rt, config, workload, self.pgpool_no_test))
                }
                names::MINIMAL_PG => {
                    let pool = self.minimal.clone();
                    runs.add(
                        name,
                        load_slices(rt, config, move || {
                            minimal_operation(pool.clone(), workload)
                        }),
                    );
                }
                names::DEADPOOL_PG => {
                    let pool = self.deadpool.clone();
                    runs.add(
                        name,
                        load_slices(rt, config, move || {
                            deadpool_operation(pool.clone(), workload)
                        }),
                    );
                }
                names::BB8_PG | names::BB8_PG_NO_TEST => {
                    let pool = if name == names::BB8_PG {
                        self.bb8.clone()
                    } else {
                        self.bb8_no_test.clone()
                    };
                    runs.add(
                        name,
                        load_slices(rt, config, move || bb8_operation(pool.clone(), workload)),
                    );
                }
                other => unreachable!("no pool named {other}"),
            }
        }
        runs
    }
}

/// A load of `workload` through a pool of sqlx connections.
fn sqlx_load<'a, P>(
    rt: &'a Runtime,
    config: LoadConfig,
    workload: PgWorkload,
    pool: &P,
) -> impl FnMut() -> LoadReport + 'a
where
    P: Checkout,
    for<'c> P::Conn<'c>: std::ops::DerefMut<Target = sqlx::PgConnection>,
{
    let pool = pool.clone();
    load_slices(rt, config, move || sqlx_operation(pool.clone(), workload))
}

/// Checks `n` connections out of deadpool-postgres at once, so it opens them all.
async fn futures_join(pool: &deadpool_postgres::Pool, n: usize) -> Vec<deadpool_postgres::Object> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(pool.get().await.expect("deadpool-postgres get()"));
    }
    held
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = BenchEnv::from_env();
    let rt = multi_thread_runtime(2)?;
    let db = rt.block_on(TestDatabase::create())?;
    let options = db.app_options();
    println!(
        "PostgreSQL: database {} at {}:{}",
        db.name(),
        db.host(),
        db.port()
    );

    let ours = rt.block_on(async { servio_pg_pool(options.clone()) })?;
    let ours_no_max_uses = rt.block_on(async { servio_pg_pool_no_max_uses(options.clone()) })?;
    let max = QUERY_MAX_CONNECTIONS as usize;
    let sqlx_reference = rt.block_on(SqlxReferencePool::open(&options, max))?;
    let pgpool = rt.block_on(sqlx_pg_pool(options.clone(), true))?;
    let pgpool_no_test = rt.block_on(sqlx_pg_pool(options.clone(), false))?;
    rt.block_on(async {
        fill(&ours, max).await;
        fill(&ours_no_max_uses, max).await;
        fill(&pgpool, max).await;
        fill(&pgpool_no_test, max).await;
    });

    let mut criterion = Criterion::default().configure_from_args();
    let mut results = Results::new();
    let mut group = criterion.benchmark_group(names::POSTGRES_SELECT_1);
    group.throughput(Throughput::Elements(1));
    {
        let ours = ours.clone();
        bench_queries(&mut group, &rt, names::OURS, move || {
            checkout_select_1(ours.clone())
        });
        let pgpool = pgpool.clone();
        bench_queries(&mut group, &rt, names::PGPOOL, move || {
            checkout_select_1(pgpool.clone())
        });
        let pgpool = pgpool_no_test.clone();
        bench_queries(&mut group, &rt, names::PGPOOL_NO_TEST, move || {
            checkout_select_1(pgpool.clone())
        });
    }
    group.finish();

    // The peers over tokio-postgres, and pgbench's tables for the write transaction.
    let pgbench = PgBench {
        host: db.host().to_owned(),
        port: db.port(),
        database: db.name().to_owned(),
        user: SUPERUSER.to_owned(),
        password: SUPERUSER_PASSWORD.to_owned(),
    };
    pgbench.init();
    rt.block_on(async {
        let mut admin = db.admin_connection().await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "GRANT ALL ON pgbench_accounts, pgbench_history, pgbench_branches, pgbench_tellers TO {APP_USER}"
        )))
        .execute(&mut admin)
        .await?;
        admin.close().await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    let config = tpg_config(db.host(), db.port(), db.name(), APP_USER, APP_PASSWORD);
    let (deadpool, bb8, bb8_no_test, minimal) = rt.block_on(async {
        let deadpool = deadpool_pg(config.clone(), max);
        let bb8 = bb8_pg(config.clone(), QUERY_MAX_CONNECTIONS, true).await;
        let bb8_no_test = bb8_pg(config.clone(), QUERY_MAX_CONNECTIONS, false).await;
        let minimal = MinimalPool::open(&config, max).await;
        // Every pool full before it is timed.
        let held: Vec<_> = futures_join(&deadpool, max).await;
        drop(held);
        for pool in [&bb8, &bb8_no_test] {
            let mut held = Vec::with_capacity(max);
            for _ in 0..max {
                held.push(pool.get().await.expect("bb8-postgres get()"));
            }
        }
        (deadpool, bb8, bb8_no_test, minimal)
    });

    let workloads = [
        (names::POSTGRES_SELECT_1, PgWorkload::SelectOne, QUERY_TASKS),
        (names::POSTGRES_FETCH_ALL, PgWorkload::FetchAll, QUERY_TASKS),
        (
            names::POSTGRES_SIMPLE_UPDATE,
            PgWorkload::SimpleUpdate,
            QUERY_TASKS,
        ),
        (
            names::POSTGRES_POOL_BOUND,
            PgWorkload::PoolBound,
            POOL_BOUND_TASKS,
        ),
    ];
    let peers = PgPeers {
        ours: &ours,
        ours_no_max_uses: &ours_no_max_uses,
        sqlx_reference: &sqlx_reference,
        minimal: &minimal,
        deadpool: &deadpool,
        bb8: &bb8,
        bb8_no_test: &bb8_no_test,
        pgpool: &pgpool,
        pgpool_no_test: &pgpool_no_test,
    };
    for (scenario, workload, tasks) in workloads {
        let config = LoadConfig::new(tasks, &env);
        // In turns, so a change in the machine's load hits every pool alike.
        let runs = peers.runs(&rt, config, workload, PgPeers::ALL);
        record_slices(&mut results, scenario, runs.run(env.slices()));
    }

    // Latency at one load every pool sustains: closed loops measure each pool at its own
    // maximum, where the fastest also queues most in the server and the scheduler.
    let slowest = PgPeers::PACED
        .iter()
        .filter_map(|pool| results.get(names::POSTGRES_SELECT_1, pool, names::OPS_PER_SEC))
        .reduce(f64::min);
    if let Some(slowest) = slowest {
        let rate = (slowest * PACED_SHARE).round();
        results.record(
            names::POSTGRES_SELECT_1_PACED,
            names::OFFERED_RATE,
            names::OPS_PER_SEC,
            rate,
        );
        let config = LoadConfig::new(QUERY_TASKS, &env).paced(rate);
        let runs = peers.runs(&rt, config, PgWorkload::SelectOne, PgPeers::PACED);
        record_slices(
            &mut results,
            names::POSTGRES_SELECT_1_PACED,
            runs.run(env.slices()),
        );
    }
    let seconds = env.duration() * env.slices() as u32;
    match pgbench.select_1_tps(QUERY_MAX_CONNECTIONS, seconds) {
        Some(tps) => {
            results.record(
                names::POSTGRES_SELECT_1,
                names::PGBENCH,
                names::OPS_PER_SEC,
                tps,
            );
            println!(
                "{:>20} {:<40} {tps:>9.0} tps",
                names::POSTGRES_SELECT_1,
                names::PGBENCH
            );
        }
        None => eprintln!("pgbench's ceiling not measured"),
    }

    // A connect takes milliseconds (scram-sha-256 derives its key on the client): fewer
    // samples keep this group to seconds.
    let connector = pool_core::PgConnector::new(options.clone());
    let mut group = criterion.benchmark_group(names::CONNECT);
    group.sample_size(20);
    bench_connect(&mut group, &rt, names::OURS_CONNECT, || {
        connector_connect(&connector)
    });
    bench_connect(&mut group, &rt, names::RAW_SQLX_CONNECT, || {
        raw_connect(&options)
    });
    group.finish();
    measure_connects(
        &rt,
        &mut results,
        env.pick(200, 3),
        (names::OURS_CONNECT, || connector_connect(&connector)),
        (names::RAW_SQLX_CONNECT, || raw_connect(&options)),
    );
    criterion.final_summary();

    drop(db);
    Ok(publish(&env, "postgres", &results)?)
}
