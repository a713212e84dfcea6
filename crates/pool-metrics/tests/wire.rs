//! The OTLP wire: both transports reach a collector with the configured headers, and
//! shutdown sends the last values.

mod support;

use std::time::Duration;

use pool_core::{PoolObserver, PoolStats};
use pool_metrics::{
    ENV_ENDPOINT, ENV_HEADERS, ENV_INTERVAL, ENV_METRICS_ENDPOINT, ENV_PROTOCOL, ENV_SERVICE_NAME,
    MetricsPipeline, MetricsSettings, Protocol,
};
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

#[tokio::test(flavor = "multi_thread")]
async fn the_standard_variables_alone_configure_the_export() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let receiver = match protocol {
            Protocol::Grpc => Receiver::grpc().await,
            _ => Receiver::http().await,
        };
        // Over HTTP the metrics-specific endpoint is used as is (no /v1/metrics added).
        let (variable, endpoint) = match protocol {
            Protocol::Grpc => (ENV_ENDPOINT, receiver.endpoint()),
            _ => (
                ENV_METRICS_ENDPOINT,
                format!("{}/v1/metrics", receiver.endpoint()),
            ),
        };
        let settings = MetricsSettings::from_vars([
            (variable, endpoint.as_str()),
            (ENV_PROTOCOL, protocol.as_str()),
            (ENV_INTERVAL, "200"),
            (ENV_HEADERS, "authorization=Bearer%20t0ken"),
            (ENV_SERVICE_NAME, "from-env"),
        ])
        .unwrap();
        let metrics = MetricsPipeline::start(settings).unwrap();
        metrics.register("default", PoolStats::default).unwrap();
        let s = receiver
            .store
            .wait_for("an export", |s| {
                s.metric("db.client.connection.max").is_some()
            })
            .await;
        assert_eq!(
            s.resource_attribute("service.name").as_deref(),
            Some("from-env")
        );
        assert_eq!(
            receiver.store.header("authorization").as_deref(),
            Some("Bearer t0ken"),
            "{protocol}"
        );
        metrics.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_the_pipeline_without_shutdown_neither_blocks_nor_loses_the_last_values() {
    let receiver = Receiver::grpc().await;
    let mut s = settings(&receiver, Protocol::Grpc);
    s.interval = Some(Duration::from_secs(3600));
    let metrics = MetricsPipeline::start(s).unwrap();
    metrics.register("default", PoolStats::default).unwrap();
    drop(metrics);
    // The runtime stays free to carry the export that the drop started.
    receiver
        .store
        .wait_for("the export of the dropped pipeline", |s| {
            s.metric("db.client.connection.max").is_some()
        })
        .await;
}
