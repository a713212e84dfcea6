//! Fault 4: a proxy between pool and server accepts new connections and never answers
//! (a network partition or a hung load balancer).

use std::net::SocketAddr;
use std::time::Duration;

use pool_core::{PoolError, TimeoutPhase};
use pool_testkit::{FaultProxy, ProxyMode};
use tokio::time::Instant;

use crate::Fixture;
use crate::support::{Load, SLACK, TestResult, Watch, assert_no_secrets, error_text, stats_until};

/// Long enough for the logins once the partition heals: on a loaded two-core machine
/// (builds and other tests beside) a debug build's login takes about a second when the
/// pool opens several at once, and with a 1 s timeout none might ever finish.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackholed_connects_time_out_at_the_connect_timeout() -> TestResult {
    let mut f = Fixture::start("blackhole").await?;
    let target: SocketAddr = format!("{}:{}", f.server.host(), f.server.port()).parse()?;
    let proxy = FaultProxy::start(target).await?;
    f.settings.host = proxy.host();
    f.settings.port = proxy.port().into();
    f.patient(CONNECT_TIMEOUT, ACQUIRE_TIMEOUT);
    proxy.set_mode(ProxyMode::Blackhole);
    let pool = crate::support::pool("blackhole", &f.settings);
    let watch = Watch::start(&pool, f.admin(), f.app());

    // One acquire alone: the first connect attempt ends at the connect timeout, and the
    // acquire at its own deadline, saying the connect timed out.
    let started = Instant::now();
    let acquire = tokio::spawn(pool.acquire());
    let first_failure =
        stats_until(&pool, Duration::from_secs(5), |s| s.connect_failures > 0).await;
    let connect_failed_after = started.elapsed();
    assert_eq!(first_failure.connect_failures, 1);
    assert!(
        connect_failed_after >= f.settings.connect_timeout
            && connect_failed_after <= f.settings.connect_timeout + SLACK,
        "the first connect attempt ended after {connect_failed_after:?}"
    );
    let error = acquire.await?.expect_err("nothing answers");
    let acquire_failed_after = started.elapsed();
    assert!(acquire_failed_after <= f.settings.acquire_timeout + SLACK);
    assert_eq!(
        error.timeout_phase(),
        Some(TimeoutPhase::Connecting),
        "{error:?}"
    );
    let text = error_text(&error);
    assert!(
        text.contains(&format!(
            "timed out after {ACQUIRE_TIMEOUT:?} while connecting"
        )) && text.contains(&format!("connect timed out after {CONNECT_TIMEOUT:?}")),
        "{text}"
    );
    assert!(matches!(
        error,
        PoolError::Timeout {
            last_error: Some(_),
            ..
        }
    ));

    // Under load, every acquire still ends by its deadline (some run out of it before the
    // partition heals); then the partition heals.
    let load = Load::start(&pool, 8);
    tokio::time::sleep(ACQUIRE_TIMEOUT + Duration::from_millis(500)).await;
    let healed = Instant::now();
    proxy.set_mode(ProxyMode::Pass);
    let (recovered, report) = f
        .recover(&pool, watch, load, healed, Duration::from_millis(500))
        .await;
    let stats = pool.stats();
    eprintln!(
        "fault 4 (proxy blackholes connects): first connect attempt failed after {:?} \
         (connect_timeout {CONNECT_TIMEOUT:?}), the acquire after {:?} (acquire_timeout \
         {ACQUIRE_TIMEOUT:?}) with \"{error}\" caused by \"connect timed out after \
         {CONNECT_TIMEOUT:?}\"; {} acquires failed under load; {} connect \
         attempts failed in all; first query succeeded {:?} after the proxy passed traffic \
         again",
        connect_failed_after,
        acquire_failed_after,
        report.acquire_errors().len(),
        stats.connect_failures,
        recovered,
    );
    let close = pool.close(Duration::from_secs(2)).await;
    assert_no_secrets(&[
        &text,
        &format!("{stats:?} {close:?}"),
        &report.errors().join("\n"),
    ]);
    Ok(())
}
