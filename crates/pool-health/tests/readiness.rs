//! Readiness under load and trouble, as a fleet sees it: a busy pool whose queue moves stays
//! ready (failing it would move the load to the other instances, which then fail in turn); a
//! frozen server fails it within the window; one acquire timeout on a slow server does not
//! take every instance out at once.

#![cfg(feature = "http")]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use pool_config::{PoolSettings, Profile};
use pool_core::{PgConnector, Pool, PoolOptions};
use pool_health::{HealthChecker, HealthOptions, Status, keys};
use pool_testkit::{TestDatabase, TestServer};
use support::{SLACK, checker, json};
use tokio::time::Instant;

/// Clients that loop `acquire(); <sql>; release` until stopped, ignoring errors (a frozen
/// server makes them time out); returns the stop flag and their tasks.
fn clients(
    pool: &Pool<PgConnector>,
    n: usize,
    sql: &'static str,
) -> (Arc<AtomicBool>, Vec<tokio::task::JoinHandle<()>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = (0..n)
        .map(|_| {
            let (pool, stop) = (pool.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(mut conn) = pool.acquire().await {
                        let _ = sqlx::raw_sql(sql).execute(&mut *conn).await;
                    }
                }
            })
        })
        .collect();
    (stop, tasks)
}

async fn stop(stop: Arc<AtomicBool>, tasks: Vec<tokio::task::JoinHandle<()>>) {
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.abort();
        let _ = task.await;
    }
}

/// 64 concurrent clients on the default pool of 10, each query 2 ms on the server, for 30 s:
/// every request is served after a short wait, and `/health/ready` answers 200 throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_pool_whose_queue_moves_stays_ready() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let pool = PoolOptions::from_settings(&PoolSettings::for_profile(Profile::Development))
        .name("default")
        .build(PgConnector::new(db.app_options()))?;
    assert_eq!(pool.stats().max, 10);
    let checker = checker(HealthOptions::default(), vec![pool.clone()]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/health/ready", listener.local_addr()?);
    let server = tokio::spawn(pool_health::http::serve(listener, checker.clone()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;

    let (flag, tasks) = clients(&pool, 64, "SELECT pg_sleep(0.002)");
    let most_waiting = Arc::new(AtomicU32::new(0));
    let watcher = tokio::spawn({
        let (pool, most) = (pool.clone(), Arc::clone(&most_waiting));
        async move {
            loop {
                most.fetch_max(pool.stats().waiting, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let started = Instant::now();
    let mut probes = 0;
    while started.elapsed() < Duration::from_secs(30) {
        let response = http.get(&url).send().await?;
        let status = response.status().as_u16();
        let body = response.text().await?;
        assert_eq!(
            status,
            200,
            "readiness failed after {:?} under a load the pool serves: {body}\n{}",
            started.elapsed(),
            json(&checker.report().await)
        );
        probes += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    watcher.abort();
    let acquired = pool.stats().acquired;
    stop(flag, tasks).await;
    assert!(probes >= 60, "{probes} probes");
    assert!(
        most_waiting.load(Ordering::Relaxed) > 10,
        "the load queued more than the seed's 10 waiters (most: {})",
        most_waiting.load(Ordering::Relaxed)
    );
    assert!(
        acquired > 1000,
        "the clients were served: {acquired} acquires"
    );
    server.abort();
    pool.close(Duration::from_secs(5)).await;
    Ok(())
}

/// A server that freezes under load: callers queue and nobody is served, so the oldest waiter
/// passes half of `acquire_timeout` and stays past it; readiness fails on it within the
/// window, and passes again after the quiet spell once the server thaws.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_fails_readiness_within_the_window_and_recovers() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let db = server.database().await?;
    let acquire_timeout = Duration::from_secs(2);
    let pool = PoolOptions::new()
        .name("default")
        .max_connections(2)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(1))
        .acquire_timeout(acquire_timeout)
        .build(PgConnector::new(db.app_options()))?;
    let options = HealthOptions {
        timeout: Duration::from_secs(1),
        cache_ttl: Duration::ZERO,
        acquire_timeout,
        timeout_window: Duration::from_secs(10),
        fail_after: Duration::from_secs(3),
        recovery: Duration::from_secs(2),
        ..HealthOptions::default()
    };
    let checker = checker(options.clone(), vec![pool.clone()]);
    let (flag, tasks) = clients(&pool, 8, "SELECT 1");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let wait_time = |checker: &HealthChecker| {
        let checker = checker.clone();
        async move {
            let ready = checker.ready().await;
            let status = ready
                .find(keys::POOL_WAIT_TIME, "default")
                .map(|r| r.status());
            (status, ready)
        }
    };
    let (status, ready) = wait_time(&checker).await;
    assert_eq!(status, Some(Status::Pass), "{}", json(&ready));

    server.freeze().await?;
    let frozen = Instant::now();
    loop {
        let (status, ready) = wait_time(&checker).await;
        if status == Some(Status::Fail) {
            assert_eq!(ready.status(), Status::Fail);
            break;
        }
        assert!(
            frozen.elapsed() < options.timeout_window + SLACK,
            "readiness did not fail within the window: {}",
            json(&ready)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    server.thaw().await?;
    let thawed = Instant::now();
    loop {
        let (status, ready) = wait_time(&checker).await;
        if status != Some(Status::Fail) {
            break;
        }
        assert!(
            thawed.elapsed() < options.recovery + options.timeout_window + SLACK,
            "readiness never recovered: {}",
            json(&ready)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop(flag, tasks).await;
    pool.close(Duration::from_secs(5)).await;
    Ok(())
}

/// Two instances over one slow server: on each, a slow statement holds the only connection
/// while another caller waits out its `acquire_timeout`, once. Neither instance fails
/// readiness, so the fleet does not leave the load balancer together over one slow moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_do_not_both_flap_on_a_single_timeout() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let acquire_timeout = Duration::from_secs(1);
    let instances: Vec<(Pool<PgConnector>, HealthChecker)> = (0..2)
        .map(|_| {
            let pool = PoolOptions::new()
                .name("default")
                .max_connections(1)
                .min_connections(0)
                .acquire_timeout(acquire_timeout)
                .build(PgConnector::new(db.app_options()))
                .expect("pool options");
            let options = HealthOptions {
                cache_ttl: Duration::ZERO,
                acquire_timeout,
                ..HealthOptions::default()
            };
            let checker = checker(options, vec![pool.clone()]);
            (pool, checker)
        })
        .collect();
    let mut slow_moments = Vec::new();
    for (pool, _) in &instances {
        let pool = pool.clone();
        slow_moments.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await.expect("acquire");
            let slow = sqlx::raw_sql("SELECT pg_sleep(1.5)").execute(&mut *conn);
            let waiter = pool.acquire();
            let (slow, waiter) = tokio::join!(slow, waiter);
            slow.expect("the slow statement");
            assert!(waiter.is_err(), "the waiter times out");
        }));
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        for (i, (_, checker)) in instances.iter().enumerate() {
            let ready = checker.ready().await;
            assert_ne!(
                ready.status(),
                Status::Fail,
                "instance {i} left the load balancer after {:?}: {}",
                started.elapsed(),
                json(&ready)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for moment in slow_moments {
        moment.await?;
    }
    for (pool, _) in &instances {
        assert_eq!(pool.stats().acquire_timeouts, 1, "one timeout each");
        pool.close(Duration::from_secs(5)).await;
    }
    Ok(())
}
