//! Fault 16: a runtime that holds checkouts shuts down (a pool shared by several
//! runtimes, a worker restarted, a test runtime ending): a pool built in one runtime lends
//! connections to callers in a second one, which is then dropped with checkouts out, a
//! query in flight, connects running and callers waiting. The pool keeps serving the first
//! runtime with its counts right and no slot or server connection lost.

use std::time::Duration;

use futures_util::future::join_all;
use pool_core::{PgConnector, Pool, PooledConnection};
use tokio::time::Instant;

use crate::Fixture;
use crate::support::{SLACK, TestResult, Watch, assert_no_secrets, select_one, stats_until};

/// Checkouts the second runtime holds when it dies (of 8; one more runs a query, and the
/// last two are held while callers queue).
const HELD: usize = 5;
/// Its callers still waiting then.
const WAITING: u32 = 3;

/// Keeps `conn` checked out by a task that never ends, until its runtime drops it.
fn hold(conn: PooledConnection<PgConnector>) {
    tokio::spawn(async move {
        let _held = conn;
        std::future::pending::<()>().await;
    });
}

/// What the second runtime leaves in flight when it is dropped, besides callers waiting.
#[derive(Debug, Clone, Copy)]
enum InFlight {
    /// Checkouts only, idle in the caller's hands.
    Checkouts,
    /// Checkouts, one of them running a query.
    CheckoutsAndAQuery,
}

/// Runs on a thread of its own: a second runtime takes `HELD` connections (the pool has
/// only some open, so it opens the rest from there), holds one more (running a query if
/// `in_flight` says so) and two others, queues `WAITING` callers, and is dropped with all
/// of it in flight.
fn second_runtime(pool: Pool<PgConnector>, in_flight: InFlight) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a second runtime");
    runtime.block_on(async {
        for _ in 0..HELD {
            hold(
                pool.acquire()
                    .await
                    .expect("a checkout in the second runtime"),
            );
        }
        let conn = pool.acquire().await.expect("a checkout");
        match in_flight {
            InFlight::Checkouts => hold(conn),
            InFlight::CheckoutsAndAQuery => {
                tokio::spawn(async move {
                    let mut conn = conn;
                    let _ = sqlx::query("SELECT pg_sleep(5)").execute(&mut *conn).await;
                });
            }
        }
        // The other two connections are held too, so these callers wait.
        for _ in 0..2 {
            hold(pool.acquire().await.expect("a checkout"));
        }
        for _ in 0..WAITING {
            tokio::spawn(pool.acquire());
        }
        let queued = stats_until(&pool, Duration::from_secs(5), |s| s.waiting == WAITING).await;
        assert_eq!(queued.waiting, WAITING, "{queued:?}");
    });
    // Dropping the runtime drops every task it holds, and what they hold, from a runtime
    // that is shutting down.
    drop(runtime);
}

/// How this runtime's callers use the pool once the second runtime is gone.
#[derive(Debug, Clone, Copy)]
enum Afterwards {
    /// Rounds of `run()` until one round has no failure; then every connection at once.
    RunUntilServed,
    /// A query on every connection at once, straight away.
    QueryEveryConnection,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkouts_of_a_runtime_that_shut_down_are_counted_back_and_the_pool_serves_on()
-> TestResult {
    after_a_second_runtime("runtime", InFlight::Checkouts, Afterwards::RunUntilServed).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "finding: connections opened in a runtime that has shut down go back to the idle \
            queue and fail the next caller's query with \"A Tokio 1.x context was found, but \
            it is being shutdown\" (their sockets belong to the dead runtime's reactor)"]
async fn connections_of_a_runtime_that_shut_down_never_fail_a_callers_query() -> TestResult {
    let afterwards = Afterwards::QueryEveryConnection;
    after_a_second_runtime("runtime-reactor", InFlight::Checkouts, afterwards).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "finding: the slot comes back now (the counts settle, the pool serves on), but \
            the connections opened in the dead runtime still fail a query each at the end \
            (the finding of connections_of_a_runtime_that_shut_down_never_fail_a_callers_query)"]
async fn a_query_in_flight_in_a_runtime_that_shut_down_costs_no_slot() -> TestResult {
    let in_flight = InFlight::CheckoutsAndAQuery;
    after_a_second_runtime("runtime-query", in_flight, Afterwards::RunUntilServed).await
}

/// Rounds of a query on each of `max` connections held at once (so every connection of the
/// pool is tried each round, none skipped by a quick reuse) until one round has no failure
/// (at most five); returns the failures and a sample.
async fn run_until_served(pool: &Pool<PgConnector>) -> (usize, Vec<String>) {
    let max = pool.stats().max;
    let (mut failures, mut sample) = (0, Vec::new());
    for _ in 0..5 {
        let held = join_all((0..max).map(|_| pool.acquire())).await;
        let mut failed = Vec::new();
        for conn in held {
            match conn {
                Ok(mut conn) => {
                    if let Err(error) = conn.run(select_one).await {
                        failed.push(error.to_string());
                    }
                }
                Err(error) => failed.push(error.to_string()),
            }
        }
        if failed.is_empty() {
            break;
        }
        failures += failed.len();
        sample.extend(failed.into_iter().take(2));
    }
    (failures, sample)
}

/// Builds the pool here, lends it to a second runtime that dies with `in_flight`, and
/// checks the pool from here: counts, deadlines, service, server connections.
async fn after_a_second_runtime(
    tag: &str,
    in_flight: InFlight,
    afterwards: Afterwards,
) -> TestResult {
    let mut f = Fixture::start(tag).await?;
    f.patient(Duration::from_secs(3), Duration::from_secs(4));
    let pool = crate::support::pool(tag, &f.settings);
    let watch = Watch::start(&pool, f.admin(), f.app());
    // Three connections open from this runtime; the second opens the rest.
    {
        let held: Vec<_> = join_all((0..3).map(|_| pool.acquire())).await;
        assert!(held.iter().all(Result::is_ok));
    }

    let dropped = Instant::now();
    let other = pool.clone();
    tokio::task::spawn_blocking(move || second_runtime(other, in_flight)).await?;
    let settled = stats_until(&pool, Duration::from_secs(5), |s| {
        s.in_use == 0 && s.waiting == 0
    })
    .await;
    let settled_after = dropped.elapsed();
    eprintln!("fault 16 ({in_flight:?}): after the second runtime dropped: {settled:?}");
    assert_eq!(
        (settled.in_use, settled.waiting),
        (0, 0),
        "checkouts and waiters of the dropped runtime are accounted for: {settled:?}"
    );
    assert!(settled.idle + settled.in_use == settled.total && settled.total <= settled.max);

    // With every connection out, one more caller times out by its deadline: the pool's
    // timers still run.
    let max = f.settings.max_connections as usize;
    let all: Vec<_> = join_all((0..max).map(|_| pool.acquire())).await;
    assert!(all.iter().all(Result::is_ok), "every slot is there");
    let limit = f.settings.acquire_timeout + SLACK;
    let started = Instant::now();
    let late = tokio::time::timeout(limit, pool.acquire())
        .await
        .expect("an acquire on a full pool returns by its deadline")
        .expect_err("every connection is out");
    assert!(late.timeout_phase().is_some(), "{late:?}");
    let late_took = started.elapsed();
    drop(all);

    let (failures, sample) = match afterwards {
        Afterwards::RunUntilServed => run_until_served(&pool).await,
        Afterwards::QueryEveryConnection => (0, Vec::new()),
    };
    eprintln!(
        "fault 16 ({in_flight:?}): the counts settled {settled_after:?} after the drop; a \
         caller on the full pool timed out after {late_took:?} with \"{late}\"; then {failures} \
         queries failed before a round of {max} succeeded (e.g. {sample:?}); closed {:?}",
        pool.stats().closed,
    );
    assert!(
        failures <= max,
        "{failures} failures: a connection of the dead runtime failed more than once"
    );
    // Full capacity from this runtime, and exactly as many server connections.
    f.assert_full_capacity(&pool).await;
    let recovered = dropped.elapsed();
    let stats = pool.stats();
    let on_server = f.backends_until(|n| n == i64::from(stats.total)).await;
    assert_eq!(
        on_server,
        i64::from(stats.total),
        "no server connection left behind"
    );
    watch
        .finish()
        .await
        .assert_bounded(f.settings.max_connections);
    eprintln!("fault 16 ({in_flight:?}): full capacity {recovered:?} after the drop");
    let close = pool.close(Duration::from_secs(2)).await;
    assert_no_secrets(&[&format!("{stats:?} {close:?} {late:?} {sample:?}")]);
    Ok(())
}
