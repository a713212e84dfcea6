//! Shared test support: OTLP receivers (gRPC and HTTP) that decode with the
//! opentelemetry-proto types, an in-process capture exporter, and lookups over what arrived.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    HistogramDataPoint, Metric, NumberDataPoint, metric, number_data_point,
};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use pool_core::{PgConnector, Pool, PoolOptions};
use pool_testkit::TestDatabase;
use prost::Message;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How long a test waits for an export to show what it expects.
pub const EXPORT_DEADLINE: Duration = Duration::from_secs(30);

/// Export requests received, newest last, and the headers of the last one.
#[derive(Clone, Default)]
pub struct Store {
    requests: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
    headers: Arc<Mutex<Vec<(String, String)>>>,
}

impl Store {
    fn push(&self, request: ExportMetricsServiceRequest, headers: Vec<(String, String)>) {
        self.requests.lock().unwrap().push(request);
        *self.headers.lock().unwrap() = headers;
    }

    /// The newest export, if any arrived.
    pub fn latest(&self) -> Option<Snapshot> {
        self.requests.lock().unwrap().last().cloned().map(Snapshot)
    }

    /// How many exports arrived.
    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    /// The value of header `name` on the newest export.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .lock()
            .unwrap()
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    /// Waits until the newest export satisfies `ready`, then returns it.
    ///
    /// # Panics
    /// After [`EXPORT_DEADLINE`], with what arrived last.
    pub async fn wait_for(&self, what: &str, ready: impl Fn(&Snapshot) -> bool) -> Snapshot {
        let deadline = tokio::time::Instant::now() + EXPORT_DEADLINE;
        loop {
            if let Some(snapshot) = self.latest()
                && ready(&snapshot)
            {
                return snapshot;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "no export showed {what} within {EXPORT_DEADLINE:?}; {} exports, last: {:#?}",
                    self.count(),
                    self.latest().map(|s| s.summary())
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// An OTLP receiver on 127.0.0.1, stopped when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    pub store: Store,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// The collector's base URL (`http://127.0.0.1:port`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An OTLP/gRPC receiver (tonic, the generated `MetricsService`).
    pub async fn grpc() -> Receiver {
        Self::grpc_with(tonic::transport::Server::builder()).await
    }

    /// An OTLP/gRPC receiver on `server` (plain or TLS).
    async fn grpc_with(mut server: tonic::transport::Server) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let store = Store::default();
        let service = MetricsServiceServer::new(GrpcSink(store.clone()));
        let task = tokio::spawn(async move {
            server
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await
                .expect("grpc receiver");
        });
        Receiver { addr, store, task }
    }

    /// An OTLP/HTTP receiver (axum, protobuf bodies on `/v1/metrics`).
    pub async fn http() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let store = Store::default();
        let app = axum::Router::new()
            .route("/v1/metrics", post(http_export))
            .with_state(store.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("http receiver");
        });
        Receiver { addr, store, task }
    }

    /// An OTLP/HTTP receiver behind TLS, presenting `certs`' server certificate (for
    /// `localhost` and `127.0.0.1`, signed by `certs.ca_cert()`). Its endpoint is
    /// [`https_endpoint`](Self::https_endpoint); handshakes that fail are counted in
    /// `refused`.
    pub async fn https(certs: &pool_testkit::TestCertificates) -> (Receiver, Arc<AtomicU64>) {
        use tokio_rustls::rustls::pki_types::pem::PemObject as _;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(certs.server_cert())
            .expect("server certificate")
            .collect::<Result<Vec<_>, _>>()
            .expect("server certificate");
        let key = PrivateKeyDer::from_pem_file(certs.server_key()).expect("server key");
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate and key");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let store = Store::default();
        let refused = Arc::new(AtomicU64::new(0));
        let app = axum::Router::new()
            .route("/v1/metrics", post(http_export))
            .with_state(store.clone());
        let tls = TlsListener {
            inner: listener,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            refused: Arc::clone(&refused),
        };
        let task = tokio::spawn(async move {
            axum::serve(tls, app).await.expect("https receiver");
        });
        (Receiver { addr, store, task }, refused)
    }

    /// An OTLP/gRPC receiver behind TLS (tonic's), presenting `certs`' server certificate.
    pub async fn grpcs(certs: &pool_testkit::TestCertificates) -> Receiver {
        let identity = tonic::transport::Identity::from_pem(
            std::fs::read(certs.server_cert()).expect("server certificate"),
            std::fs::read(certs.server_key()).expect("server key"),
        );
        let server = tonic::transport::Server::builder()
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .expect("server tls");
        Self::grpc_with(server).await
    }

    /// The TLS receiver's base URL under the name its certificate carries.
    pub fn https_endpoint(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }
}

/// A TCP listener that completes a TLS handshake before handing a connection to axum.
struct TlsListener {
    inner: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    refused: Arc<AtomicU64>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.inner.accept().await else {
                continue;
            };
            // One handshake at a time is plenty for one exporter.
            match self.acceptor.accept(tcp).await {
                Ok(stream) => return (stream, addr),
                Err(_) => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

struct GrpcSink(Store);

#[tonic::async_trait]
impl MetricsService for GrpcSink {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let headers = request
            .metadata()
            .clone()
            .into_headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        self.0.push(request.into_inner(), headers);
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

async fn http_export(
    State(store): State<Store>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<([(header::HeaderName, &'static str); 1], Vec<u8>), StatusCode> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if content_type != Some("application/x-protobuf") {
        return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let request = ExportMetricsServiceRequest::decode(body).map_err(|_| StatusCode::BAD_REQUEST)?;
    let headers = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    store.push(request, headers);
    let response = ExportMetricsServiceResponse {
        partial_success: None,
    };
    Ok((
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        response.encode_to_vec(),
    ))
}

/// An exporter that keeps every export in memory, converted to the OTLP request the real
/// exporters would send.
#[derive(Clone, Default)]
pub struct Capture(pub Store);

impl PushMetricExporter for Capture {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        self.0
            .push(ExportMetricsServiceRequest::from(metrics), Vec::new());
        Ok(())
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

/// One export request, with lookups by metric name and attributes.
#[derive(Clone, Debug)]
pub struct Snapshot(pub ExportMetricsServiceRequest);

fn string_value(kvs: &[KeyValue], key: &str) -> Option<String> {
    kvs.iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            other => Some(format!("{other:?}")),
        })
}

/// Whether `kvs` hold exactly these attributes.
fn attributes_are(kvs: &[KeyValue], want: &[(&str, &str)]) -> bool {
    kvs.len() == want.len()
        && want
            .iter()
            .all(|(k, v)| string_value(kvs, k).as_deref() == Some(*v))
}

fn number(point: &NumberDataPoint) -> f64 {
    match point.value {
        Some(number_data_point::Value::AsInt(v)) => v as f64,
        Some(number_data_point::Value::AsDouble(v)) => v,
        None => f64::NAN,
    }
}

impl Snapshot {
    /// Every metric of the export.
    pub fn metrics(&self) -> impl Iterator<Item = &Metric> {
        self.0
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
    }

    /// The metric named `name`.
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics().find(|m| m.name == name)
    }

    /// A resource attribute (`service.name`).
    pub fn resource_attribute(&self, key: &str) -> Option<String> {
        let resource = self.0.resource_metrics.first()?.resource.as_ref()?;
        string_value(&resource.attributes, key)
    }

    /// The instrumentation scope's name.
    pub fn scope_name(&self) -> Option<String> {
        let scope = self.0.resource_metrics.first()?.scope_metrics.first()?;
        scope.scope.as_ref().map(|s| s.name.clone())
    }

    /// The number points of a sum or gauge.
    pub fn number_points(&self, name: &str) -> Vec<&NumberDataPoint> {
        match self.metric(name).and_then(|m| m.data.as_ref()) {
            Some(metric::Data::Sum(sum)) => sum.data_points.iter().collect(),
            Some(metric::Data::Gauge(gauge)) => gauge.data_points.iter().collect(),
            _ => Vec::new(),
        }
    }

    /// The value of a sum or gauge point with exactly these attributes.
    pub fn value(&self, name: &str, attributes: &[(&str, &str)]) -> Option<f64> {
        self.number_points(name)
            .into_iter()
            .find(|p| attributes_are(&p.attributes, attributes))
            .map(number)
    }

    /// The histogram point with exactly these attributes.
    pub fn histogram(
        &self,
        name: &str,
        attributes: &[(&str, &str)],
    ) -> Option<&HistogramDataPoint> {
        match self.metric(name).and_then(|m| m.data.as_ref()) {
            Some(metric::Data::Histogram(h)) => h
                .data_points
                .iter()
                .find(|p| attributes_are(&p.attributes, attributes)),
            _ => None,
        }
    }

    /// `name{attributes} = value` lines, for failure messages.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for m in self.metrics() {
            let attrs = |kvs: &[KeyValue]| {
                kvs.iter()
                    .map(|kv| {
                        format!(
                            "{}={}",
                            kv.key,
                            string_value(kvs, &kv.key).unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            };
            match m.data.as_ref() {
                Some(metric::Data::Histogram(h)) => {
                    for p in &h.data_points {
                        lines.push(format!(
                            "{}{{{}}} count={}",
                            m.name,
                            attrs(&p.attributes),
                            p.count
                        ));
                    }
                }
                _ => {
                    for p in self.number_points(&m.name) {
                        lines.push(format!(
                            "{}{{{}}} = {}",
                            m.name,
                            attrs(&p.attributes),
                            number(p)
                        ));
                    }
                }
            }
        }
        lines
    }
}

/// The pool-name attribute pair.
pub fn pool(name: &str) -> [(&'static str, &str); 1] {
    [(pool_metrics::POOL_NAME, name)]
}

/// The pool-name and state attribute pairs of `db.client.connection.count`.
pub fn state<'a>(name: &'a str, state: &'a str) -> [(&'static str, &'a str); 2] {
    [
        (pool_metrics::POOL_NAME, name),
        (pool_metrics::CONNECTION_STATE, state),
    ]
}

/// A pool of `max` connections on the test database, none opened in advance, whose acquires
/// give up after 500 ms.
pub fn pg_pool(db: &TestDatabase, name: &str, max: u32) -> Pool<PgConnector> {
    PoolOptions::new()
        .name(name)
        .max_connections(max)
        .min_connections(0)
        .acquire_timeout(Duration::from_millis(500))
        .build(PgConnector::new(db.app_options()))
        .expect("pool options")
}
