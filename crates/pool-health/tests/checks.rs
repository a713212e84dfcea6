//! Readiness, liveness and the full report against a real PostgreSQL.

mod support;

use std::sync::Arc;
use std::time::Duration;

use pool_health::{HealthChecker, HealthError, HealthOptions, Probe, Status, keys};
use pool_testkit::{APP_PASSWORD, PgBouncer, PoolMode, TestDatabase};
use serde_json::Value;
use sqlx::Row;
use support::{SLACK, checker, json, pool, quick, wait_idle};
use tokio::time::Instant;

#[tokio::test]
async fn a_healthy_server_passes_with_its_latency() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let pool = pool("default", db.app_options(), 4, 1);
    wait_idle(&pool, 1).await;
    let checker = checker(quick(), vec![pool.clone()]);

    let ready = checker.ready().await;
    assert_eq!(ready.status(), Status::Pass, "{}", json(&ready));
    let connectivity = ready
        .find(keys::CONNECTIVITY, "default")
        .expect("connectivity");
    assert_eq!(connectivity.observed_unit(), Some("ms"));
    let latency = connectivity.observed_value().and_then(Value::as_f64);
    assert!(latency.is_some_and(|ms| ms > 0.0), "{latency:?}");
    for key in [
        keys::POOL_OPEN,
        keys::POOL_WAITING,
        keys::POOL_CONNECTIONS,
        keys::POOL_ACQUIRE_TIMEOUTS,
    ] {
        assert_eq!(
            ready.find(key, "default").map(|r| r.status()),
            Some(Status::Pass),
            "{key}"
        );
    }
    assert!(
        ready.check(keys::POOL_STATS).is_empty(),
        "stats belong to the full report"
    );

    let live = checker.live();
    assert_eq!(live.status(), Status::Pass);
    assert_eq!(
        live.find(keys::POOL_MAINTENANCE, "default")
            .map(|r| r.status()),
        Some(Status::Pass),
        "{}",
        json(&live)
    );
    assert!(
        live.check(keys::CONNECTIVITY).is_empty(),
        "liveness never asks the database"
    );

    // Another role's session counts too, though the check runs as the application role.
    let _admin = db.admin_connection().await?;
    let full = checker.report().await;
    assert_eq!(full.status(), Status::Pass, "{}", json(&full));
    let facts = full.server_facts("default").expect("server facts");
    assert!(facts.max_connections > 0);
    assert!(facts.available_connections() <= facts.max_connections);
    assert!(
        facts.connections >= 2,
        "the check's own connection and the admin's count: {facts:?}"
    );
    assert!(!facts.version.is_empty());
    let stats = full
        .find(keys::POOL_STATS, "default")
        .and_then(|r| r.observed_value());
    assert_eq!(stats.and_then(|s| s["max"].as_u64()), Some(4));
    assert_eq!(
        full.find(keys::SERVER_MAX_CONNECTIONS, "default")
            .and_then(|r| r.observed_value())
            .and_then(Value::as_u64),
        Some(u64::from(facts.max_connections))
    );
    pool.close(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test]
async fn reports_hold_no_password_and_no_host_unless_asked() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let pool = pool("default", db.app_options(), 2, 0);
    let hidden = checker(quick(), vec![pool.clone()]);
    let text = json(&hidden.report().await);
    assert!(!text.contains(APP_PASSWORD));
    assert!(
        !text.contains(&format!("{}:{}", db.host(), db.port())),
        "{text}"
    );
    assert!(!text.contains(keys::SERVER_ENDPOINT));
    assert!(!format!("{hidden:?}").contains(APP_PASSWORD));

    let shown = checker(
        HealthOptions {
            show_hosts: true,
            ..quick()
        },
        vec![pool.clone()],
    );
    let report = shown.report().await;
    let endpoint = report
        .find(keys::SERVER_ENDPOINT, "default")
        .and_then(|r| r.observed_value());
    assert_eq!(
        endpoint.and_then(Value::as_str),
        Some(format!("{}:{}/{}", db.host(), db.port(), db.name()).as_str())
    );
    assert!(!json(&report).contains(APP_PASSWORD));
    pool.close(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test]
async fn a_saturated_pool_is_checked_without_queueing_and_reported_as_configured()
-> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let pool = pool("default", db.app_options(), 2, 0);
    let held = [pool.acquire().await?, pool.acquire().await?];
    let waiters: Vec<_> = (0..11)
        .map(|_| {
            let acquiring = pool.acquire();
            tokio::spawn(acquiring)
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(5);
    while pool.stats().waiting < 11 {
        assert!(
            Instant::now() < until,
            "waiters never queued: {:?}",
            pool.stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A queue that just formed is no trouble by default; the seed's instant rule is opt-in.
    // (No probe connection here: the count of probe connections is checked below.)
    let default = checker(
        HealthOptions {
            probe_connection: false,
            ..quick()
        },
        vec![pool.clone()],
    );
    let ready = default.ready().await;
    assert_eq!(ready.status(), Status::Warn, "{}", json(&ready));
    for key in [keys::POOL_WAITING, keys::POOL_WAIT_TIME] {
        let result = ready.find(key, "default").expect(key);
        assert_eq!(result.status(), Status::Pass, "{key}: {}", json(&ready));
    }
    drop(default);
    let options = HealthOptions {
        max_waiting: Some(10),
        ..quick()
    };
    let deadline = options.timeout + SLACK;
    let checker = checker(options, vec![pool.clone()]);
    let started = Instant::now();
    let ready = checker.ready().await;
    assert!(started.elapsed() < deadline, "took {:?}", started.elapsed());
    assert_eq!(ready.status(), Status::Fail, "{}", json(&ready));
    let waiting = ready.find(keys::POOL_WAITING, "default").expect("waiting");
    assert_eq!(waiting.status(), Status::Fail);
    assert_eq!(waiting.observed_value().and_then(Value::as_u64), Some(11));
    let at_max = ready
        .find(keys::POOL_CONNECTIONS, "default")
        .expect("connections");
    assert_eq!(
        at_max.status(),
        Status::Warn,
        "a full pool warns by default"
    );
    // The round trip went over the checker's own connection, not through the queue.
    let connectivity = ready
        .find(keys::CONNECTIVITY, "default")
        .expect("connectivity");
    assert_eq!(connectivity.status(), Status::Pass, "{}", json(&ready));
    let mut admin = db.admin_connection().await?;
    let probes: i64 = sqlx::query(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'servio-pool-health' \
         AND datname = current_database()",
    )
    .fetch_one(&mut admin)
    .await?
    .get(0);
    assert_eq!(probes, 1, "one long-lived probe connection");

    // Configured the seed's way: a full pool fails; more waiters tolerated.
    let seed_like = support::checker(
        HealthOptions {
            at_max_status: Status::Fail,
            max_waiting: Some(20),
            ..quick()
        },
        vec![pool.clone()],
    );
    let ready = seed_like.ready().await;
    assert_eq!(
        ready
            .find(keys::POOL_WAITING, "default")
            .map(|r| r.status()),
        Some(Status::Pass)
    );
    assert_eq!(
        ready
            .find(keys::POOL_CONNECTIONS, "default")
            .map(|r| r.status()),
        Some(Status::Fail)
    );

    // Without the probe connection, a busy pool is not measured rather than queued for.
    let no_probe = support::checker(
        HealthOptions {
            probe_connection: false,
            ..quick()
        },
        vec![pool.clone()],
    );
    let started = Instant::now();
    let ready = no_probe.ready().await;
    assert!(started.elapsed() < deadline, "took {:?}", started.elapsed());
    let connectivity = ready
        .find(keys::CONNECTIVITY, "default")
        .expect("connectivity");
    assert_eq!(connectivity.status(), Status::Warn);
    assert!(
        connectivity
            .output()
            .is_some_and(|o| o.contains("not measured"))
    );

    drop(held);
    for waiter in waiters {
        drop(waiter.await?);
    }
    pool.close(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test]
async fn one_acquire_timeout_warns_and_a_stream_of_them_fails_until_a_quiet_spell()
-> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let acquire_timeout = Duration::from_millis(300);
    let pool = pool_core::PoolOptions::new()
        .name("default")
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(acquire_timeout)
        .build(pool_core::PgConnector::new(db.app_options()))?;
    let options = HealthOptions {
        acquire_timeout,
        recovery: Duration::from_secs(1),
        ..quick()
    };
    let checker = checker(options.clone(), vec![pool.clone()]);
    assert_eq!(checker.ready().await.status(), Status::Pass);

    let held = pool.acquire().await?;
    assert!(
        pool.acquire().await.is_err(),
        "the second acquire times out"
    );
    let ready = checker.ready().await;
    let timeouts = ready
        .find(keys::POOL_ACQUIRE_TIMEOUTS, "default")
        .expect("timeouts");
    assert_eq!(timeouts.status(), Status::Warn, "{}", json(&ready));
    assert_eq!(timeouts.observed_value().and_then(Value::as_u64), Some(1));
    assert_eq!(
        ready.status(),
        Status::Warn,
        "one timeout only warns: {}",
        json(&ready)
    );

    // More than max_acquire_timeouts within the window: sustained trouble.
    for _ in 0..options.max_acquire_timeouts {
        assert!(pool.acquire().await.is_err());
    }
    let ready = checker.ready().await;
    let wait_time = ready
        .find(keys::POOL_WAIT_TIME, "default")
        .expect("waitTime");
    assert_eq!(wait_time.status(), Status::Fail, "{}", json(&ready));
    assert_eq!(ready.status(), Status::Fail);

    // Released: failing still (hysteresis), then passing once `recovery` passed quietly.
    drop(held);
    assert_eq!(checker.ready().await.status(), Status::Fail);
    let until = Instant::now() + options.recovery + SLACK;
    loop {
        let ready = checker.ready().await;
        if ready.status() != Status::Fail {
            break;
        }
        assert!(Instant::now() < until, "never recovered: {}", json(&ready));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pool.close(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test]
async fn close_fails_readiness_at_once_and_liveness_once_closed() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let pool = pool("default", db.app_options(), 2, 1);
    wait_idle(&pool, 1).await;
    let checker = checker(
        HealthOptions {
            cache_ttl: Duration::from_secs(60),
            ..quick()
        },
        vec![pool.clone()],
    );
    assert_eq!(
        checker.ready().await.status(),
        Status::Pass,
        "cached for a minute"
    );

    let held = pool.acquire().await?;
    let closing = support::begin_close(&pool).await;
    // The cached pass is not used: closing is read fresh.
    let ready = checker.ready().await;
    assert_eq!(ready.status(), Status::Fail, "{}", json(&ready));
    assert_eq!(
        ready.find(keys::POOL_OPEN, "default").map(|r| r.status()),
        Some(Status::Fail)
    );
    let live = checker.live();
    assert_eq!(
        live.status(),
        Status::Warn,
        "draining is alive: {}",
        json(&live)
    );

    drop(held);
    closing.await?;
    let live = checker.live();
    assert_eq!(live.status(), Status::Fail, "{}", json(&live));
    assert_eq!(checker.check(Probe::Ready).await.status(), Status::Fail);
    Ok(())
}

#[tokio::test]
async fn concurrent_callers_share_one_round_trip() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let pool = pool("default", db.app_options(), 2, 0);
    let checker = Arc::new(checker(
        HealthOptions {
            cache_ttl: Duration::from_secs(30),
            ..quick()
        },
        vec![pool.clone()],
    ));
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let checker = Arc::clone(&checker);
            tokio::spawn(async move { checker.ready().await })
        })
        .collect();
    let mut times = Vec::new();
    for call in calls {
        let report = call.await?;
        let connectivity = report
            .find(keys::CONNECTIVITY, "default")
            .expect("connectivity");
        assert_eq!(connectivity.status(), Status::Pass);
        times.push(connectivity.time());
    }
    times.dedup();
    assert_eq!(
        times.len(),
        1,
        "one round trip for twenty callers: {times:?}"
    );
    let again = checker.ready().await;
    assert_eq!(
        again.find(keys::CONNECTIVITY, "default").map(|r| r.time()),
        Some(times[0])
    );
    pool.close(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test]
async fn every_named_pool_is_reported_and_the_connection_budget_is_checked() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let primary = pool("default", db.app_options(), 5, 0);
    let replica = pool("replica", db.app_options(), 3, 0);
    let pools = vec![primary.clone(), replica.clone()];
    let fits = checker(
        HealthOptions {
            instances: Some(1),
            ..quick()
        },
        pools.clone(),
    );
    let report = fits.report().await;
    assert_eq!(report.check(keys::CONNECTIVITY).len(), 2);
    let budget = report
        .find(keys::SERVER_CONNECTION_BUDGET, "replica")
        .expect("budget");
    assert_eq!(budget.status(), Status::Pass);
    // Both pools share the server: (5 + 1) + (3 + 1) for one instance.
    assert_eq!(budget.observed_value().and_then(Value::as_u64), Some(10));

    let crowded = checker(
        HealthOptions {
            instances: Some(1000),
            ..quick()
        },
        pools,
    );
    let report = crowded.report().await;
    let budget = report
        .find(keys::SERVER_CONNECTION_BUDGET, "default")
        .expect("budget");
    assert_eq!(budget.status(), Status::Warn);
    assert!(
        budget
            .output()
            .is_some_and(|o| o.contains("default, replica")),
        "{:?}",
        budget.output()
    );
    assert_eq!(report.status(), Status::Warn);
    primary.close(Duration::from_secs(5)).await;
    replica.close(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test]
async fn unusable_options_are_refused_with_a_clear_error() {
    let options = sqlx::postgres::PgConnectOptions::new()
        .host("127.0.0.1")
        .port(1);
    let a = pool("default", options.clone(), 1, 0);
    let b = pool("default", options, 1, 0);
    let err = HealthChecker::new(HealthOptions::default(), vec![a.clone(), b]).unwrap_err();
    assert_eq!(err, HealthError::DuplicatePool("default".into()));
    assert_eq!(err.to_string(), "pool \"default\" is watched twice");
    let zero = HealthOptions {
        timeout: Duration::ZERO,
        ..HealthOptions::default()
    };
    let err = HealthChecker::new(zero, vec![a.clone()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "health check timeout must be greater than zero"
    );
    let unnamed = HealthOptions {
        probe_application_name: " ".into(),
        ..HealthOptions::default()
    };
    assert_eq!(
        HealthChecker::new(unnamed, vec![a]).unwrap_err(),
        HealthError::EmptyApplicationName
    );
}

#[tokio::test]
async fn checks_work_through_pgbouncer_in_transaction_mode() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let bouncer = PgBouncer::start(&db, PoolMode::Transaction).await?;
    let options = db.app_options().host(bouncer.host()).port(bouncer.port());
    let pool = pool("default", options, 1, 1);
    wait_idle(&pool, 1).await;
    let checker = checker(quick(), vec![pool.clone()]);
    // Over the idle pooled connection, then over the probe connection while the only pooled
    // one is busy: both speak the simple protocol, which transaction pooling keeps whole.
    for busy in [false, true] {
        let held = if busy {
            Some(pool.acquire().await?)
        } else {
            None
        };
        for _ in 0..3 {
            let full = checker.report().await;
            let connectivity = full
                .find(keys::CONNECTIVITY, "default")
                .expect("connectivity");
            assert_eq!(
                connectivity.status(),
                Status::Pass,
                "busy {busy}: {}",
                json(&full)
            );
            assert!(full.server_facts("default").is_some(), "{}", json(&full));
        }
        drop(held);
    }
    pool.close(Duration::from_secs(5)).await;
    Ok(())
}

/// A pool that outlived the runtime its maintenance task ran on: liveness fails (it would never
/// refill or reap again), though the pool is open. Liveness never asks the database, so none
/// is needed here.
#[test]
fn liveness_fails_when_maintenance_stopped_on_an_open_pool() {
    let unreachable = sqlx::postgres::PgConnectOptions::new_without_pgpass()
        .host("127.0.0.1")
        .port(1);
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    };
    let first = runtime();
    let pool = first.block_on(async { pool("default", unreachable, 2, 0) });
    assert!(pool.is_maintenance_running());
    let healthy = first.block_on(async { checker(quick(), vec![pool.clone()]).live() });
    assert_eq!(healthy.status(), Status::Pass, "{}", json(&healthy));
    drop(first);

    let second = runtime();
    let live = second.block_on(async { checker(quick(), vec![pool.clone()]).live() });
    assert_eq!(live.status(), Status::Fail, "{}", json(&live));
    let maintenance = live
        .find(keys::POOL_MAINTENANCE, "default")
        .expect("a maintenance check");
    assert_eq!(maintenance.status(), Status::Fail);
    assert!(
        maintenance
            .output()
            .is_some_and(|o| o.contains("maintenance task is not running")),
        "{}",
        json(&live)
    );
    assert_eq!(
        live.find(keys::POOL_OPEN, "default").map(|r| r.status()),
        Some(Status::Pass),
        "the pool itself is open"
    );
}
