//! Fault 2: the whole server freezes (SIGSTOP) for several seconds under load: the kernel
//! still accepts connections, nothing answers.

use std::time::Duration;

use tokio::time::Instant;

use crate::Fixture;
use crate::support::{TestResult, assert_no_secrets};

const FROZEN_FOR: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_server_fails_acquires_at_their_deadline_and_recovers_after_thaw() -> TestResult {
    let mut f = Fixture::start("freeze").await?;
    f.settings.acquire_timeout = Duration::from_secs(2);
    f.settings.connect_timeout = Duration::from_secs(1);
    f.settings.query_timeout = Some(Duration::from_millis(1500));
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
    assert!(
        errors
            .iter()
            .any(|e| e.contains("timed out after 2s while connecting")
                && e.contains("connect timed out after 1s")),
        "acquires fail at their deadline, carrying the connect timeout: {:?}",
        report.sample_errors()
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("timed out after 1.5s while running a query")),
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
