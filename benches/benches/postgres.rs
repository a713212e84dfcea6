//! Benchmark 4: real PostgreSQL from pool-testkit. 32 tasks on pools of max 10 run a prepared
//! `SELECT 1` (acquire, query, release) through servio-pool and through sqlx's `PgPool` with
//! its defaults and with `test_before_acquire(false)`: queries per second, p50 / p99 / p99.9
//! latency and client CPU per query. Then the time to open one connection through our
//! `PgConnector` vs `PgConnection::connect_with`.

use benches::{
    BenchEnv, Interleaved, LoadConfig, QUERY_MAX_CONNECTIONS, QUERY_TASKS, Results, bench_connect,
    bench_queries, checkout_select_1, connector_connect, fill, load_slices, measure_connects,
    multi_thread_runtime, names, publish, raw_connect, record_slices, servio_pg_pool, sqlx_pg_pool,
};
use criterion::{Criterion, Throughput};
use pool_testkit::TestDatabase;

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
    let pgpool = rt.block_on(sqlx_pg_pool(options.clone(), true))?;
    let pgpool_no_test = rt.block_on(sqlx_pg_pool(options.clone(), false))?;
    let max = QUERY_MAX_CONNECTIONS as usize;
    rt.block_on(async {
        fill(&ours, max).await;
        fill(&pgpool, max).await;
        fill(&pgpool_no_test, max).await;
    });

    let mut criterion = Criterion::default().configure_from_args();
    let mut results = Results::new();
    let mut group = criterion.benchmark_group(names::POSTGRES_SELECT_1);
    group.throughput(Throughput::Elements(1));
    let mut runs = Interleaved::new();
    let config = LoadConfig::new(QUERY_TASKS, &env);
    let op = move || checkout_select_1(ours.clone());
    bench_queries(&mut group, &rt, names::OURS, op.clone());
    runs.add(names::OURS, load_slices(&rt, config, op));
    let op = move || checkout_select_1(pgpool.clone());
    bench_queries(&mut group, &rt, names::PGPOOL, op.clone());
    runs.add(names::PGPOOL, load_slices(&rt, config, op));
    let op = move || checkout_select_1(pgpool_no_test.clone());
    bench_queries(&mut group, &rt, names::PGPOOL_NO_TEST, op.clone());
    runs.add(names::PGPOOL_NO_TEST, load_slices(&rt, config, op));
    group.finish();
    // In turns, so a change in the machine's load hits every pool alike.
    record_slices(
        &mut results,
        names::POSTGRES_SELECT_1,
        runs.run(env.slices()),
    );

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
