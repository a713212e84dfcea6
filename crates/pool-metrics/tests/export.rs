//! A real pool on a real PostgreSQL, exported over OTLP/gRPC and OTLP/HTTP to a receiver in
//! the test: the numbers a dashboard shows are the pool's.

mod support;

use std::time::Duration;

use pool_core::{PoolRegistry, TimeoutPhase};
use pool_metrics::{MetricsPipeline, MetricsSettings, Protocol};
use pool_testkit::{APP_USER, TestDatabase};
use support::{Receiver, pg_pool, pool, state};

fn exporting_to(receiver: &Receiver, protocol: Protocol) -> MetricsPipeline {
    MetricsPipeline::start(MetricsSettings {
        endpoint: Some(receiver.endpoint()),
        protocol: Some(protocol),
        interval: Some(Duration::from_millis(200)),
        service_name: Some("export-test".into()),
        ..MetricsSettings::default()
    })
    .expect("pipeline")
}

async fn server_connections(db: &TestDatabase) -> i64 {
    let mut admin = db.admin_connection().await.expect("admin connection");
    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = $2")
        .bind(db.name())
        .bind(APP_USER)
        .fetch_one(&mut admin)
        .await
        .expect("pg_stat_activity")
}

async fn exports_a_real_pool(protocol: Protocol) {
    let receiver = match protocol {
        Protocol::Grpc => Receiver::grpc().await,
        _ => Receiver::http().await,
    };
    let db = TestDatabase::create().await.expect("test database");
    let metrics = exporting_to(&receiver, protocol);
    let pg = pg_pool(&db, "default", 5);
    metrics.instrument(&pg).expect("instrument");

    // 3 of 5 connections checked out, 2 back in the pool.
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut conn = pg.acquire().await.expect("acquire");
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(one, 1);
        held.push(conn);
    }
    held.truncate(3);
    assert_eq!(
        server_connections(&db).await,
        5,
        "the server sees the pool's 5 connections"
    );

    let s = receiver
        .store
        .wait_for("3 used and 2 idle", |s| {
            s.value("db.client.connection.count", &state("default", "used")) == Some(3.0)
                && s.value("db.client.connection.count", &state("default", "idle")) == Some(2.0)
        })
        .await;
    assert_eq!(
        s.resource_attribute("service.name").as_deref(),
        Some("export-test")
    );
    assert_eq!(
        s.value("db.client.connection.max", &pool("default")),
        Some(5.0)
    );
    assert_eq!(
        s.value("db.client.connection.idle.min", &pool("default")),
        Some(0.0)
    );
    assert_eq!(
        s.value("servio.pool.utilization", &pool("default")),
        Some(1.0)
    );
    assert_eq!(
        s.value("db.client.connection.pending_requests", &pool("default")),
        Some(0.0)
    );
    assert_eq!(
        s.value("db.client.connection.timeouts", &pool("default")),
        Some(0.0)
    );
    let created = s
        .histogram("db.client.connection.create_time", &pool("default"))
        .unwrap();
    assert_eq!(created.count, 5, "one create_time per physical connection");
    let used = s
        .histogram("db.client.connection.use_time", &pool("default"))
        .unwrap();
    assert_eq!(used.count, 2, "one use_time per release");

    // Check out the last two, then one more acquire runs out of acquire_timeout.
    held.push(pg.acquire().await.expect("idle connection"));
    held.push(pg.acquire().await.expect("idle connection"));
    let err = pg.acquire().await.expect_err("the pool is exhausted");
    assert_eq!(err.timeout_phase(), Some(TimeoutPhase::Waiting), "{err}");

    let s = receiver
        .store
        .wait_for("one timeout", |s| {
            s.value("db.client.connection.timeouts", &pool("default")) == Some(1.0)
        })
        .await;
    let stats = pg.stats();
    assert_eq!(stats.acquired, 7);
    let wait = s
        .histogram("db.client.connection.wait_time", &pool("default"))
        .unwrap();
    assert_eq!(
        wait.count, stats.acquired,
        "one wait_time per successful acquire"
    );
    assert_eq!(
        s.value("db.client.connection.count", &state("default", "used")),
        Some(5.0)
    );

    drop(held);
    pg.close(Duration::from_secs(5)).await;
    metrics.shutdown().await.expect("last export");
    let last = receiver.store.latest().unwrap();
    let used = last
        .histogram("db.client.connection.use_time", &pool("default"))
        .unwrap();
    assert_eq!(
        used.count, 7,
        "shutdown sent the releases that followed the last export"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_pool_over_grpc() {
    exports_a_real_pool(Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_pool_over_http_protobuf() {
    exports_a_real_pool(Protocol::HttpProtobuf).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_pools_of_one_registry_export_two_series() {
    let receiver = Receiver::http().await;
    let db = TestDatabase::create().await.expect("test database");
    let mut registry = PoolRegistry::new();
    registry.insert(pg_pool(&db, "default", 4));
    registry.insert(pg_pool(&db, "replica", 2));
    let metrics = exporting_to(&receiver, Protocol::HttpProtobuf);
    metrics
        .instrument_registry(&registry)
        .expect("one call instruments every pool");
    assert_eq!(metrics.pool_names(), ["default", "replica"]);

    let primary = registry.get("default").unwrap();
    let replica = registry.get("replica").unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(primary.acquire().await.expect("acquire"));
    }
    held.push(replica.acquire().await.expect("acquire"));

    let used =
        |s: &support::Snapshot, name| s.value("db.client.connection.count", &state(name, "used"));
    let s = receiver
        .store
        .wait_for("3 used on default and 1 on replica", |s| {
            used(s, "default") == Some(3.0) && used(s, "replica") == Some(1.0)
        })
        .await;
    assert_eq!(
        s.value("db.client.connection.max", &pool("default")),
        Some(4.0)
    );
    assert_eq!(
        s.value("db.client.connection.max", &pool("replica")),
        Some(2.0)
    );
    assert_eq!(
        s.value("servio.pool.utilization", &pool("default")),
        Some(0.75)
    );
    assert_eq!(
        s.value("servio.pool.utilization", &pool("replica")),
        Some(0.5)
    );
    let waits = |name| {
        s.histogram("db.client.connection.wait_time", &pool(name))
            .map(|h| h.count)
    };
    assert_eq!((waits("default"), waits("replica")), (Some(3), Some(1)));

    drop(held);
    registry.close_all(Duration::from_secs(5)).await;
    metrics.shutdown().await.expect("last export");
}
