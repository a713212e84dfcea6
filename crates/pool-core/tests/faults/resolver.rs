//! Fault 15: the server's host name does not resolve (a DNS outage, a service record
//! deleted, a typo in `DB_HOST`). Connects are bounded, acquires fail by their deadline
//! carrying the resolver's error, and lookups (blocking threads, in the driver) do not pile
//! up however many callers ask.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use pool_core::{PgConnector, PoolError, TimeoutPhase};
use tokio::time::Instant;

use crate::Fixture;
use crate::support::{SLACK, TestResult, Watch, assert_no_secrets, error_text, threads_named};

/// A name no resolver knows (`.invalid` is reserved for that, RFC 2606).
const UNRESOLVABLE: &str = "servio-unresolvable.invalid";
/// The name of the test runtime's threads, workers and blocking ones alike.
const THREADS: &str = "servio-resolve";
/// Callers per round, and rounds.
const CALLERS: usize = 250;
const ROUNDS: usize = 4;

#[test]
fn unresolvable_host_fails_acquires_by_their_deadline_without_piling_up_lookups() -> TestResult {
    // A runtime of its own, so its threads can be told from other tests' threads.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(THREADS)
        .enable_all()
        .build()?
        .block_on(unresolvable())
}

async fn unresolvable() -> TestResult {
    let mut f = Fixture::start("resolver").await?;
    let reachable = PgConnector::connect_options_from(&f.settings);
    f.settings.host = UNRESOLVABLE.to_owned();
    // Long enough for the logins once the name resolves again: on a loaded machine the
    // seven the full-capacity check opens at once took over 2 s each.
    f.patient(Duration::from_secs(5), Duration::from_secs(6));
    let limit = f.settings.acquire_timeout + SLACK;
    let pool = crate::support::pool("resolver", &f.settings);
    let watch = Watch::start(&pool, f.admin(), f.app());

    // One caller: the acquire times out connecting, with the resolver's error as its cause.
    let started = Instant::now();
    let error = pool.acquire().await.expect_err("the host does not resolve");
    let took = started.elapsed();
    assert!(took <= limit, "{took:?}");
    assert_eq!(
        error.timeout_phase(),
        Some(TimeoutPhase::Connecting),
        "{error:?}"
    );
    assert!(
        matches!(
            error,
            PoolError::Timeout {
                last_error: Some(_),
                ..
            }
        ),
        "{error:?}"
    );
    let text = error_text(&error);
    assert!(
        text.contains("failed to lookup address") || text.contains("resolve"),
        "the resolver's error is the cause: {text}"
    );

    // A thousand callers, two hundred at a time, while the runtime's threads are counted.
    let before = threads_named(THREADS);
    let peak = Arc::new(AtomicUsize::new(before));
    let counting = Arc::new(AtomicBool::new(true));
    let counter = tokio::spawn({
        let (peak, counting) = (Arc::clone(&peak), Arc::clone(&counting));
        async move {
            // Ordering: a stop flag and a maximum, read after the task is joined.
            while counting.load(Ordering::Relaxed) {
                peak.fetch_max(threads_named(THREADS), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    let attempts_before = pool.stats().connect_failures;
    let storm = Instant::now();
    let mut longest = Duration::ZERO;
    for _ in 0..ROUNDS {
        let acquires = (0..CALLERS).map(|_| async {
            let started = Instant::now();
            let result = pool.acquire().await;
            (started.elapsed(), result)
        });
        for (took, result) in join_all(acquires).await {
            longest = longest.max(took);
            let error = result.expect_err("the host does not resolve");
            assert_eq!(error.timeout_phase(), Some(TimeoutPhase::Connecting));
        }
    }
    let storm_took = storm.elapsed();
    counting.store(false, Ordering::Relaxed);
    counter.await?;
    let peak = peak.load(Ordering::Relaxed);
    let attempts = pool.stats().connect_failures - attempts_before;
    assert!(
        longest <= limit,
        "an acquire took {longest:?}, past its deadline"
    );
    let max = f.settings.max_connections as usize;
    // Each connect slot holds at most two blocking threads: the login (run off the workers)
    // and its name lookup. Lookups left behind by timed-out connects would grow past that.
    assert!(
        peak <= before + 2 * max,
        "the runtime grew from {before} to {peak} threads for {max} connect slots: lookups \
         pile up"
    );
    let stats = pool.stats();
    assert_eq!(
        (stats.total, stats.in_use, stats.waiting),
        (0, 0, 0),
        "{stats:?}"
    );

    // The name resolves again (here: the connector is pointed back at the server).
    let fixed = Instant::now();
    pool.connector().set_connect_options(reachable);
    let served = async {
        loop {
            if let Ok(mut conn) = pool.acquire().await
                && sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok()
            {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), served)
        .await
        .expect("the pool serves once the name resolves");
    let recovered = fixed.elapsed();
    f.assert_full_capacity(&pool).await;
    watch
        .finish()
        .await
        .assert_bounded(f.settings.max_connections);
    eprintln!(
        "fault 15 (host does not resolve): one acquire failed after {took:?} with \"{error}\" \
         caused by the resolver; {} acquires in {ROUNDS} rounds of {CALLERS} all failed by \
         their deadline (longest {longest:?}) in {storm_took:?}, with {attempts} connect \
         attempts; the runtime's threads went from {before} to at most {peak}; once the name \
         resolved the next acquire succeeded in {recovered:?}",
        ROUNDS * CALLERS,
    );
    let close = pool.close(Duration::from_secs(2)).await;
    assert_no_secrets(&[&text, &format!("{stats:?} {close:?}")]);
    Ok(())
}
