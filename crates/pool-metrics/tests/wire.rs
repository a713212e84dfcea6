//! The OTLP wire: both transports reach a collector with the configured headers, and
//! shutdown sends the last values.

mod support;

use std::time::Duration;

use pool_core::{PoolObserver, PoolStats};
use pool_metrics::{MetricsPipeline, MetricsSettings, Protocol};
use support::{Receiver, pool, state};

fn settings(receiver: &Receiver, protocol: Protocol) -> MetricsSettings {
    MetricsSettings {
        endpoint: Some(receiver.endpoint()),
        protocol: Some(protocol),
        interval: Some(Duration::from_millis(200)),
        headers: vec![("x-api-key".into(), "k-123 %ok".into())],
        service_name: Some("wire-test".into()),
        ..MetricsSettings::default()
    }
}

async fn round_trip(receiver: Receiver, protocol: Protocol) {
    let metrics = MetricsPipeline::start(settings(&receiver, protocol)).unwrap();
    let observer = metrics
        .register("default", || {
            let mut s = PoolStats::default();
            (s.total, s.idle, s.in_use, s.max) = (3, 1, 2, 5);
            s
        })
        .unwrap();
    observer.on_acquire(Duration::from_micros(300));

    let s = receiver
        .store
        .wait_for("the pool's connections", |s| {
            s.value("db.client.connection.count", &state("default", "used")) == Some(2.0)
        })
        .await;
    assert_eq!(
        s.resource_attribute("service.name").as_deref(),
        Some("wire-test")
    );
    assert_eq!(
        s.value("db.client.connection.count", &state("default", "idle")),
        Some(1.0)
    );
    assert_eq!(
        receiver.store.header("x-api-key").as_deref(),
        Some("k-123 %ok")
    );

    // What happens after the last periodic export is sent by shutdown.
    observer.on_acquire(Duration::from_micros(300));
    let before = receiver.store.count();
    tokio::time::timeout(Duration::from_secs(15), metrics.shutdown())
        .await
        .expect("shutdown returns")
        .expect("last export succeeds");
    assert!(receiver.store.count() > before);
    let last = receiver.store.latest().unwrap();
    let wait = last
        .histogram("db.client.connection.wait_time", &pool("default"))
        .unwrap();
    assert_eq!(wait.count, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_export_reaches_the_collector() {
    round_trip(Receiver::grpc().await, Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_protobuf_export_reaches_the_collector() {
    round_trip(Receiver::http().await, Protocol::HttpProtobuf).await;
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_on_a_current_thread_runtime_still_sends_the_last_values() {
    // The tonic exporter needs the runtime to send; shutdown must not block it.
    let receiver = Receiver::grpc().await;
    let mut s = settings(&receiver, Protocol::Grpc);
    s.interval = Some(Duration::from_secs(3600));
    let metrics = MetricsPipeline::start(s).unwrap();
    metrics.register("default", PoolStats::default).unwrap();
    tokio::time::timeout(Duration::from_secs(15), metrics.shutdown())
        .await
        .expect("shutdown returns")
        .expect("last export succeeds");
    assert_eq!(
        receiver.store.count(),
        1,
        "one export: the one shutdown sent"
    );
}
