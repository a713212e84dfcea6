//! The PostgreSQL scenarios: 32 tasks running a prepared `SELECT 1` through a pool, and the
//! time to open one connection.

use std::future::Future;
use std::ops::DerefMut;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Throughput};
use pool_core::{Connector, PgConnector, Pool, PoolOptions, PooledConnection};
use sqlx::postgres::PgPoolOptions;
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{Connection as _, PgConnection};
use tokio::runtime::Runtime;

use crate::checkout::Checkout;
use crate::distribution::Distribution;
use crate::load::run_batch;
use crate::results::{Results, names};

/// Tasks running queries in the PostgreSQL scenario.
pub const QUERY_TASKS: usize = 32;
/// `max_connections` of every pool in the PostgreSQL scenario.
pub const QUERY_MAX_CONNECTIONS: u32 = 10;

/// The query every task runs: sqlx prepares it once per connection and caches the statement.
pub const SELECT_1: &str = "SELECT 1";

/// Runs the prepared `SELECT 1` on `conn`.
///
/// # Panics
///
/// If the query fails: a benchmark must stop rather than report a broken run.
pub async fn select_1(conn: &mut PgConnection) {
    if let Err(error) = sqlx::query(SELECT_1).fetch_one(conn).await {
        panic!("SELECT 1 failed: {error}");
    }
}

impl Checkout for Pool<PgConnector> {
    type Conn<'a> = PooledConnection<PgConnector>;

    async fn checkout(&self) -> Self::Conn<'_> {
        match self.acquire().await {
            Ok(conn) => conn,
            Err(error) => panic!("servio-pool acquire() failed: {error}"),
        }
    }
}

impl Checkout for PgPool {
    type Conn<'a> = sqlx::pool::PoolConnection<sqlx::Postgres>;

    async fn checkout(&self) -> Self::Conn<'_> {
        match self.acquire().await {
            Ok(conn) => conn,
            Err(error) => panic!("PgPool acquire() failed: {error}"),
        }
    }
}

/// Our pool on `options`: [`QUERY_MAX_CONNECTIONS`], otherwise its defaults. Call it inside
/// a Tokio runtime.
///
/// # Errors
///
/// If the options are rejected.
pub fn servio_pg_pool(
    options: PgConnectOptions,
) -> Result<Pool<PgConnector>, pool_core::PoolError> {
    bench_options().build(PgConnector::new(options))
}

fn bench_options() -> PoolOptions {
    PoolOptions::new().max_connections(QUERY_MAX_CONNECTIONS)
}

/// [`servio_pg_pool`] without `max_uses`: connections are never replaced for their use count,
/// as in every peer.
///
/// # Errors
///
/// If the options are rejected.
pub fn servio_pg_pool_no_max_uses(
    options: PgConnectOptions,
) -> Result<Pool<PgConnector>, pool_core::PoolError> {
    bench_options()
        .max_uses(None)
        .build(PgConnector::new(options))
}

/// sqlx's `PgPool` on `options`: [`QUERY_MAX_CONNECTIONS`], `test_before_acquire` as given,
/// otherwise its defaults.
///
/// # Errors
///
/// If the first connection cannot be opened.
pub async fn sqlx_pg_pool(
    options: PgConnectOptions,
    test_before_acquire: bool,
) -> sqlx::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(QUERY_MAX_CONNECTIONS)
        .test_before_acquire(test_before_acquire)
        .connect_with(options)
        .await
}

/// One query operation through any pool: acquire, prepared `SELECT 1`, release. Returns the
/// instant it finished (connection released), so the load driver records the whole span.
pub async fn checkout_select_1<P>(pool: P) -> Instant
where
    P: Checkout,
    for<'a> P::Conn<'a>: DerefMut<Target = PgConnection>,
{
    let mut conn = pool.checkout().await;
    select_1(&mut conn).await;
    drop(conn);
    Instant::now()
}

/// Opens one connection through our connector and returns how long it took; the connection
/// is closed outside the timed span.
pub async fn connector_connect(connector: &PgConnector) -> Duration {
    let start = Instant::now();
    let connected = match connector.connect().await {
        Ok(connected) => connected,
        Err(error) => panic!("PgConnector::connect failed: {error}"),
    };
    let elapsed = start.elapsed();
    connector.close(connected.connection).await;
    elapsed
}

/// Registers a query operation in `group`: [`QUERY_TASKS`] tasks share the iterations;
/// criterion reports time per query.
pub fn bench_queries<F, Fut>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    name: &str,
    op: F,
) where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Instant> + Send + 'static,
{
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |b| {
        b.to_async(rt)
            .iter_custom(|iters| run_batch(QUERY_TASKS, iters, op.clone()));
    });
}

/// Opens one connection the plain sqlx way and returns how long it took; the connection is
/// closed outside the timed span.
pub async fn raw_connect(options: &PgConnectOptions) -> Duration {
    let start = Instant::now();
    let conn = match PgConnection::connect_with(options).await {
        Ok(conn) => conn,
        Err(error) => panic!("PgConnection::connect_with failed: {error}"),
    };
    let elapsed = start.elapsed();
    let _ = conn.close().await;
    elapsed
}

/// Registers a connect operation in `group` (it returns the time of one connect).
pub fn bench_connect<F, Fut>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    name: &str,
    connect: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = Duration>,
{
    group.bench_function(name, |b| {
        b.to_async(rt).iter_custom(|iters| {
            let connect = &connect;
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += connect().await;
                }
                total
            }
        });
    });
}

/// Times `rounds` connects through each of two connect operations, interleaved so a drift
/// in the server's speed hits both alike, and records median, mean and p99 of each under the
/// connect scenario.
pub fn measure_connects<A, FA, B, FB>(
    rt: &Runtime,
    results: &mut Results,
    rounds: usize,
    (a_name, a): (&str, A),
    (b_name, b): (&str, B),
) where
    A: Fn() -> FA,
    FA: Future<Output = Duration>,
    B: Fn() -> FB,
    FB: Future<Output = Duration>,
{
    let (mut a_samples, mut b_samples) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..rounds {
        a_samples.push(rt.block_on(a()).as_nanos() as u64);
        b_samples.push(rt.block_on(b()).as_nanos() as u64);
    }
    for (name, samples) in [(a_name, a_samples), (b_name, b_samples)] {
        let d = Distribution::from_nanos(samples);
        let scenario = names::CONNECT;
        let nanos = |d: Duration| d.as_nanos() as f64;
        results.record(scenario, name, names::P50_NS, nanos(d.quantile(0.5)));
        results.record(scenario, name, names::MEAN_NS, nanos(d.mean()));
        results.record(scenario, name, names::P99_NS, nanos(d.quantile(0.99)));
        println!(
            "{scenario:>20} {name:<40} median {:?}  mean {:?}",
            d.quantile(0.5),
            d.mean()
        );
    }
}
