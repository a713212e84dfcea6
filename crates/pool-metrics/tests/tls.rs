//! Export to an `https://` collector (OTLP/HTTP and OTLP/gRPC behind TLS on 127.0.0.1,
//! certificate from a private authority made by pool-testkit): configured only through the
//! standard `OTEL_*` variables, the exporter verifies the collector against
//! `OTEL_EXPORTER_OTLP_CERTIFICATE`, sends its headers only over the verified connection, and
//! refuses a collector it cannot verify without ever quoting the API key.

mod support;

use std::sync::atomic::Ordering;

use pool_core::PoolStats;
use pool_metrics::{MetricsPipeline, MetricsSettings};
use pool_testkit::TestCertificates;
use support::{EXPORT_DEADLINE, Receiver};

const API_KEY: &str = "k3y-0f-th3-c0llect0r";

/// A pipeline over one registered pool, configured from `OTEL_*` variables only.
fn pipeline(protocol: &str, vars: &[(&str, &str)]) -> MetricsPipeline {
    let mut all = vec![
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-api-key=k3y-0f-th3-c0llect0r",
        ),
        ("OTEL_METRIC_EXPORT_INTERVAL", "60000"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "5000"),
    ];
    all.extend_from_slice(vars);
    let settings = MetricsSettings::from_vars(all).expect("settings");
    let pipeline = MetricsPipeline::start(settings).expect("pipeline");
    pipeline
        .register("default", PoolStats::default)
        .expect("register");
    pipeline
}

/// Exports over `protocol` to `receiver` (behind TLS with `certs`' server certificate),
/// trusting the authority that signed it: the metrics and the API key arrive.
async fn exports_verified(protocol: &str, receiver: &Receiver, certs: &TestCertificates) {
    let endpoint = receiver.https_endpoint();
    let ca = certs.ca_cert();
    let metrics = pipeline(
        protocol,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.to_str().unwrap()),
        ],
    );
    tokio::time::timeout(EXPORT_DEADLINE, metrics.flush())
        .await
        .expect("the flush ends within its deadline")
        .expect("the export over TLS succeeds");
    let snapshot = receiver
        .store
        .wait_for("an export over TLS", |s| {
            s.metric("db.client.connection.max").is_some()
        })
        .await;
    assert!(snapshot.metric("servio.pool.utilization").is_some());
    assert_eq!(receiver.store.header("x-api-key").as_deref(), Some(API_KEY));
    metrics.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_to_an_https_collector_verified_against_the_given_authority() {
    let certs = TestCertificates::generate().await.expect("certificates");
    let (receiver, refused) = Receiver::https(&certs).await;
    exports_verified("http/protobuf", &receiver, &certs).await;
    assert_eq!(refused.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_to_an_https_grpc_collector_verified_against_the_given_authority() {
    let certs = TestCertificates::generate().await.expect("certificates");
    let receiver = Receiver::grpcs(&certs).await;
    exports_verified("grpc", &receiver, &certs).await;

    // Verified against the public roots only, the private authority's collector gets nothing.
    let before = receiver.store.count();
    let endpoint = receiver.https_endpoint();
    let metrics = pipeline("grpc", &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]);
    let error = tokio::time::timeout(EXPORT_DEADLINE, metrics.flush())
        .await
        .expect("the flush ends within its deadline")
        .expect_err("an unverified collector is refused");
    assert!(!format!("{error} {error:?}").contains(API_KEY), "{error}");
    let _ = metrics.shutdown().await;
    assert_eq!(
        receiver.store.count(),
        before,
        "nothing reached the collector"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_cannot_be_verified_gets_nothing() {
    let certs = TestCertificates::generate().await.expect("certificates");
    let (receiver, refused) = Receiver::https(&certs).await;
    let endpoint = format!("{}/?token={API_KEY}", receiver.https_endpoint());
    let other_ca = certs.other_ca_cert();
    // Another authority than the one that signed the collector's certificate, then the
    // compiled-in public roots, which know nothing of a private authority.
    for vars in [
        vec![
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", other_ca.to_str().unwrap()),
        ],
        vec![("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", endpoint.as_str())],
    ] {
        let metrics = pipeline("http/protobuf", &vars);
        let error = tokio::time::timeout(EXPORT_DEADLINE, metrics.flush())
            .await
            .expect("the flush ends within its deadline")
            .expect_err("an unverified collector is refused");
        let shown = format!("{error} {error:?} {metrics:?}");
        assert!(!shown.contains(API_KEY), "{shown}");
        let _ = metrics.shutdown().await;
    }
    assert_eq!(receiver.store.count(), 0, "nothing reached the collector");
    assert!(
        refused.load(Ordering::Relaxed) >= 2,
        "the handshakes were refused"
    );
}
