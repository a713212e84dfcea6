//! The instruments as an exporter receives them: names, units, kinds, attributes, values and
//! bucket boundaries, for one and for several pools (in-process exporter; the OTLP wire and a
//! real pool are covered by `export.rs`).

mod support;

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, metric};
use pool_core::testing::MemoryConnector;
use pool_core::{CloseReason, PoolObserver, PoolOptions, PoolStats};
use pool_metrics::{
    CLOSE_REASON, DURATION_BUCKETS, METRICS, MetricKind, MetricsError, MetricsPipeline,
    MetricsSettings, POOL_NAME,
};
use support::{Capture, pool, state};

fn stats(total: u32, idle: u32, waiting: u32, max: u32, min: u32, timeouts: u64) -> PoolStats {
    let mut s = PoolStats::default();
    s.total = total;
    s.idle = idle;
    s.in_use = total - idle;
    s.waiting = waiting;
    s.max = max;
    s.min = min;
    s.acquire_timeouts = timeouts;
    s
}

fn pipeline(capture: &Capture) -> MetricsPipeline {
    let settings = MetricsSettings {
        service_name: Some("orders".into()),
        ..MetricsSettings::default()
    };
    MetricsPipeline::with_exporter(capture.clone(), &settings)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_instrument_has_its_name_unit_kind_and_attributes() {
    let capture = Capture::default();
    let metrics = pipeline(&capture);
    let observer = metrics
        .register("default", || stats(5, 2, 1, 10, 2, 4))
        .unwrap();
    for _ in 0..3 {
        observer.on_acquire(Duration::from_micros(40));
    }
    observer.on_release(Duration::from_millis(2));
    observer.on_connect(Duration::from_millis(7));
    metrics.flush().await.unwrap();

    let snapshot = capture.0.latest().expect("an export");
    assert_eq!(
        snapshot.resource_attribute("service.name").as_deref(),
        Some("orders")
    );
    assert_eq!(
        snapshot.scope_name().as_deref(),
        Some(pool_metrics::SCOPE_NAME)
    );
    for descriptor in &METRICS {
        let m = snapshot.metric(descriptor.name).unwrap_or_else(|| {
            panic!(
                "{} not exported: {:#?}",
                descriptor.name,
                snapshot.summary()
            )
        });
        assert_eq!(m.unit, descriptor.unit, "{}", descriptor.name);
        assert_eq!(m.description, descriptor.description, "{}", descriptor.name);
        let cumulative = AggregationTemporality::Cumulative as i32;
        match (descriptor.kind, m.data.as_ref()) {
            (MetricKind::UpDownCounter, Some(metric::Data::Sum(s))) => {
                assert!(!s.is_monotonic, "{}", descriptor.name);
                assert_eq!(s.aggregation_temporality, cumulative, "{}", descriptor.name);
            }
            (MetricKind::Counter, Some(metric::Data::Sum(s))) => {
                assert!(s.is_monotonic, "{}", descriptor.name);
                assert_eq!(s.aggregation_temporality, cumulative, "{}", descriptor.name);
            }
            (MetricKind::Gauge, Some(metric::Data::Gauge(_))) => {}
            (MetricKind::Histogram, Some(metric::Data::Histogram(h))) => {
                assert_eq!(h.aggregation_temporality, cumulative, "{}", descriptor.name);
                for p in &h.data_points {
                    assert_eq!(p.explicit_bounds, DURATION_BUCKETS, "{}", descriptor.name);
                }
            }
            (kind, data) => panic!("{}: {kind:?} exported as {data:?}", descriptor.name),
        }
        // Every point carries the pool name, and only the documented attributes.
        for point in snapshot.number_points(descriptor.name) {
            let keys: Vec<&str> = point.attributes.iter().map(|kv| kv.key.as_str()).collect();
            assert_eq!(
                keys.len(),
                descriptor.attributes.len(),
                "{}",
                descriptor.name
            );
            assert!(keys.contains(&POOL_NAME), "{}", descriptor.name);
        }
    }

    let value = |name, attrs: &[(&str, &str)]| snapshot.value(name, attrs);
    assert_eq!(
        value("db.client.connection.count", &state("default", "idle")),
        Some(2.0)
    );
    assert_eq!(
        value("db.client.connection.count", &state("default", "used")),
        Some(3.0)
    );
    assert_eq!(
        value("db.client.connection.max", &pool("default")),
        Some(10.0)
    );
    assert_eq!(
        value("db.client.connection.idle.max", &pool("default")),
        Some(10.0)
    );
    assert_eq!(
        value("db.client.connection.idle.min", &pool("default")),
        Some(2.0)
    );
    assert_eq!(
        value("db.client.connection.pending_requests", &pool("default")),
        Some(1.0)
    );
    assert_eq!(
        value("db.client.connection.timeouts", &pool("default")),
        Some(4.0)
    );
    assert_eq!(
        value("servio.pool.utilization", &pool("default")),
        Some(0.5)
    );
    for reason in CloseReason::ALL {
        let attrs = [(POOL_NAME, "default"), (CLOSE_REASON, reason.as_str())];
        assert_eq!(
            value("servio.pool.connection.closed", &attrs),
            Some(0.0),
            "every reason is reported from the start, so rate() sees the first close"
        );
    }

    let wait = snapshot
        .histogram("db.client.connection.wait_time", &pool("default"))
        .expect("wait_time point");
    assert_eq!(wait.count, 3);
    // 40 µs lands in the (25 µs, 50 µs] bucket: sub-millisecond waits are resolved.
    let bucket = DURATION_BUCKETS.iter().position(|b| *b >= 40e-6).unwrap();
    assert_eq!(DURATION_BUCKETS[bucket], 50e-6);
    assert_eq!(wait.bucket_counts[bucket], 3, "{:?}", wait.bucket_counts);
    let used = snapshot
        .histogram("db.client.connection.use_time", &pool("default"))
        .unwrap();
    assert_eq!((used.count, used.sum), (1, Some(0.002)));
    let created = snapshot
        .histogram("db.client.connection.create_time", &pool("default"))
        .unwrap();
    assert_eq!((created.count, created.sum), (1, Some(0.007)));

    metrics.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_pools_export_two_separate_series() {
    let capture = Capture::default();
    let metrics = pipeline(&capture);
    let primary = metrics
        .register("default", || stats(4, 1, 0, 8, 1, 0))
        .unwrap();
    let replica = metrics
        .register("replica", || stats(2, 2, 0, 4, 0, 1))
        .unwrap();
    primary.on_acquire(Duration::from_millis(1));
    primary.on_acquire(Duration::from_millis(1));
    replica.on_acquire(Duration::from_millis(3));
    metrics.flush().await.unwrap();

    let s = capture.0.latest().unwrap();
    assert_eq!(
        s.value("db.client.connection.count", &state("default", "used")),
        Some(3.0)
    );
    assert_eq!(
        s.value("db.client.connection.count", &state("replica", "used")),
        Some(0.0)
    );
    assert_eq!(
        s.value("db.client.connection.max", &pool("default")),
        Some(8.0)
    );
    assert_eq!(
        s.value("db.client.connection.max", &pool("replica")),
        Some(4.0)
    );
    assert_eq!(
        s.value("servio.pool.utilization", &pool("replica")),
        Some(0.5)
    );
    assert_eq!(
        s.value("db.client.connection.timeouts", &pool("replica")),
        Some(1.0)
    );
    assert_eq!(
        s.value("db.client.connection.timeouts", &pool("default")),
        Some(0.0)
    );
    let count = |name| {
        s.histogram("db.client.connection.wait_time", &pool(name))
            .map(|h| h.count)
    };
    assert_eq!((count("default"), count("replica")), (Some(2), Some(1)));
    assert_eq!(metrics.pool_names(), ["default", "replica"]);
    metrics.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pool_name_is_registered_once_and_can_be_removed() {
    let capture = Capture::default();
    let metrics = pipeline(&capture);
    metrics.register("default", PoolStats::default).unwrap();
    let err = metrics.register("default", PoolStats::default).unwrap_err();
    assert!(
        matches!(err, MetricsError::AlreadyInstrumented(ref n) if n == "default"),
        "{err}"
    );
    assert_eq!(err.to_string(), "pool \"default\" is already instrumented");

    assert!(metrics.unregister("default"));
    assert!(!metrics.unregister("default"));
    metrics.register("default", PoolStats::default).unwrap();
    metrics.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pool_with_an_observer_of_its_own_is_refused_and_left_alone() {
    #[derive(Debug)]
    struct Other;
    impl PoolObserver for Other {}

    let capture = Capture::default();
    let metrics = pipeline(&capture);
    let pool = PoolOptions::new()
        .name("default")
        .build(MemoryConnector::new())
        .unwrap();
    assert!(pool.set_observer(Arc::new(Other)));
    let err = metrics.instrument(&pool).unwrap_err();
    assert!(
        matches!(err, MetricsError::ObserverTaken(ref n) if n == "default"),
        "{err}"
    );
    assert!(metrics.pool_names().is_empty(), "nothing half-registered");
    metrics.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_duration_recorded_on_any_thread_reaches_the_export() {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 10_000; // more than a thread's buffer holds
    let capture = Capture::default();
    let metrics = pipeline(&capture);
    let observer = metrics.register("default", PoolStats::default).unwrap();
    // Each thread records and exits before the export: nothing it buffered may be lost.
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let observer = Arc::clone(&observer);
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    observer.on_acquire(Duration::from_micros(1 + (t * PER_THREAD + i) % 7));
                    observer.on_release(Duration::from_millis(3));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    // Longer than the buffered encoding holds: recorded directly, still counted.
    observer.on_release(Duration::from_secs(6 * 3600));
    metrics.flush().await.unwrap();

    let s = capture.0.latest().unwrap();
    let wait = s
        .histogram("db.client.connection.wait_time", &pool("default"))
        .unwrap();
    assert_eq!(wait.count, THREADS * PER_THREAD);
    let expected_micros: u64 = (0..THREADS * PER_THREAD).map(|n| 1 + n % 7).sum();
    let sum = wait.sum.unwrap();
    assert!(
        (sum - expected_micros as f64 * 1e-6).abs() < 1e-6,
        "sum {sum} vs {expected_micros} µs"
    );
    assert_eq!(wait.bucket_counts[0], THREADS * PER_THREAD, "all ≤ 10 µs");
    let used = s
        .histogram("db.client.connection.use_time", &pool("default"))
        .unwrap();
    assert_eq!(used.count, THREADS * PER_THREAD + 1);
    assert_eq!(used.bucket_counts.last(), Some(&1), "the 6 h checkout");
    metrics.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runtime_controls_show_in_the_metrics() {
    let capture = Capture::default();
    let metrics = pipeline(&capture);
    let orders = PoolOptions::new()
        .name("default")
        .max_connections(4)
        .min_connections(0)
        .build(MemoryConnector::new())
        .unwrap();
    metrics.instrument(&orders).unwrap();
    orders.ready().await.unwrap();

    orders.pause();
    orders.resize(6, 1).unwrap();
    orders.evict();
    metrics.flush().await.unwrap();
    let s = capture.0.latest().expect("an export");
    assert_eq!(s.value("servio.pool.paused", &pool("default")), Some(1.0));
    assert_eq!(
        s.value("db.client.connection.max", &pool("default")),
        Some(6.0)
    );
    assert_eq!(
        s.value("db.client.connection.idle.min", &pool("default")),
        Some(1.0)
    );
    let evicted = [(POOL_NAME, "default"), (CLOSE_REASON, "evicted")];
    assert_eq!(
        s.value("servio.pool.connection.closed", &evicted),
        Some(1.0)
    );

    orders.resume();
    metrics.flush().await.unwrap();
    let s = capture.0.latest().expect("an export");
    assert_eq!(s.value("servio.pool.paused", &pool("default")), Some(0.0));
    metrics.shutdown().await.unwrap();
}
