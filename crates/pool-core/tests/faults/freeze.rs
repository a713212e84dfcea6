//! Fault 2: the whole server freezes (SIGSTOP) for several seconds under load: the kernel
//! still accepts connections, nothing answers.

use std::time::Duration;

use tokio::time::Instant;

use crate::Fixture;
use crate::support::{TestResult, assert_no_secrets};

/// Each login after the thaw must fit in it: on a loaded two-core machine (builds and
/// other tests beside) a debug build's login takes about a second when the pool opens
/// seven at once, and with a 1 s timeout none might ever finish.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const QUERY_TIMEOUT: Duration = Duration::from_millis(1500);
/// Long enough for the whole sequence while frozen: the queries under way run out of
/// their query timeout, their connections go, the connects that replace them run out of
/// theirs, and the callers waiting on them run out of their acquire timeout, carrying it.
const FROZEN_FOR: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_server_fails_acquires_at_their_deadline_and_recovers_after_thaw() -> TestResult {
    let mut f = Fixture::start("freeze").await?;
    f.patient(CONNECT_TIMEOUT, ACQUIRE_TIMEOUT);
    f.settings.query_timeout = Some(QUERY_TIMEOUT);
    let pool = crate::support::pool("freeze", &f.settings);
    let (watch, load) = f.load(&pool, 16).await;

    let frozen = Instant::now();
    f.server.freeze().await?;
    tokio::time::sleep(FROZEN_FOR).await;
    f.server.thaw().await?;
    let thawed = Instant::now();
    let (recovered, report) = f
        .recover(&pool, watch, load, thawed, Duration::from_millis(2500))
        .await;
    let errors = report.errors();
    // Callers behind the frozen connections time out at their deadline: while connecting
    // (carrying the connect timeout), or, while the connections whose queries timed out
    // keep their slots until the cancel of their query has run (at most twice the connect
    // timeout, against a frozen server), while waiting for one.
    let acquire_timed_out = format!("timed out after {ACQUIRE_TIMEOUT:?} while connecting");
    let connect_timed_out = format!("connect timed out after {CONNECT_TIMEOUT:?}");
    let waited_out = format!("timed out after {ACQUIRE_TIMEOUT:?} while waiting for a connection");
    assert!(
        errors.iter().any(|e| {
            (e.contains(&acquire_timed_out) && e.contains(&connect_timed_out))
                || e.contains(&waited_out)
        }),
        "acquires fail at their deadline: {:?}",
        report.sample_errors()
    );
    let query_timed_out = format!("timed out after {QUERY_TIMEOUT:?} while running a query");
    assert!(
        errors.iter().any(|e| e.contains(&query_timed_out)),
        "queries on the frozen server end at the query timeout: {:?}",
        report.sample_errors()
    );
    assert_eq!(
        report.failures_since(thawed + recovered + Duration::from_secs(2)),
        0,
        "{:?}",
        report.sample_errors()
    );
    let stats = pool.stats();
    eprintln!(
        "fault 2 (server frozen {FROZEN_FOR:?}): {} acquire errors and {} query errors while \
         frozen (e.g. {:?}); {} connect attempts failed; first query succeeded {:?} after the \
         thaw ({:?} after the freeze); longest acquire {:?}; closed {:?}",
        report.acquire_errors().len(),
        report.work_errors().len(),
        report.sample_errors(),
        stats.connect_failures,
        recovered,
        thawed + recovered - frozen,
        report.max_acquire,
        stats.closed,
    );
    let close = pool.close(Duration::from_secs(2)).await;
    assert_no_secrets(&[&format!("{stats:?} {close:?}"), &errors.join("\n")]);
    Ok(())
}
