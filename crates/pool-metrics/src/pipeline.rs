//! [`MetricsPipeline`]: the OTLP export pipeline, started once per process and shut down
//! (flushing the last values) when the service stops.

use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::{InstrumentationScope, Key};
use opentelemetry_otlp::{MetricExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use tokio::runtime::Handle;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

use crate::error::MetricsError;
use crate::pool_metrics::PoolMetrics;
use crate::reporting_exporter::ReportingExporter;
use crate::settings::{DEFAULT_SERVICE_NAME, MetricsSettings, Protocol};

/// The instrumentation scope of every metric (`otel_scope_name` in Prometheus).
pub const SCOPE_NAME: &str = "servio-pool";

/// Exports pool metrics over OTLP every interval until [`shutdown`](Self::shutdown).
///
/// The old system's monitor start/stop: [`start`](Self::start) builds the exporter and a
/// periodic reader, [`instrument_registry`](PoolMetrics::instrument_registry) and
/// [`instrument`](PoolMetrics::instrument) (through `Deref<Target = PoolMetrics>`) add
/// pools, [`shutdown`](Self::shutdown) exports the last values and stops.
///
/// Exports run on the SDK's reader thread, never on the pool's path: a collector that is
/// down or refuses the data costs the pools nothing. Failures are logged through `tracing`
/// (target `pool_metrics`) at once, then at most once a minute (or once per interval if
/// longer) with the count of failed exports, and a line when exports recover.
///
/// Call [`shutdown`](Self::shutdown) before the runtime stops. A pipeline dropped without it
/// shuts down on a thread of its own, so the drop never blocks the caller's runtime, but
/// nothing waits for that last export.
pub struct MetricsPipeline {
    /// `None` once [`shutdown`](Self::shutdown) took it.
    provider: Option<SdkMeterProvider>,
    metrics: PoolMetrics,
    /// What error texts must not repeat (the endpoint's credentials and query string).
    scrub: Scrub,
}

impl Drop for MetricsPipeline {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // The SDK's shutdown blocks until the last export is done, and that export may
            // need the very runtime this drop runs on.
            let spawned = std::thread::Builder::new()
                .name("pool-metrics-shutdown".into())
                .spawn(move || {
                    let _ = provider.shutdown();
                });
            if spawned.is_err() {
                tracing::warn!(
                    target: "pool_metrics",
                    "metrics pipeline dropped without shutdown; the last values were not exported"
                );
            }
        }
    }
}

impl fmt::Debug for MetricsPipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsPipeline")
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl Deref for MetricsPipeline {
    type Target = PoolMetrics;

    fn deref(&self) -> &PoolMetrics {
        &self.metrics
    }
}

impl MetricsPipeline {
    /// Starts exporting over OTLP as `settings` say (gRPC or HTTP/protobuf).
    ///
    /// Nothing is sent until the first interval ends (or [`flush`](Self::flush)); a
    /// collector that is not there yet is not an error.
    ///
    /// # Errors
    /// [`MetricsError::InvalidSetting`] for a setting that is not accepted,
    /// [`MetricsError::NoRuntime`] outside a tokio runtime (the exporter's connections
    /// live on it), [`MetricsError::Exporter`] if the OTLP exporter cannot be built.
    pub fn start(settings: MetricsSettings) -> Result<Self, MetricsError> {
        settings.validate()?;
        Handle::try_current().map_err(|_| MetricsError::NoRuntime)?;
        let exporter = build_exporter(&settings)?;
        let target = format!(
            "{} ({})",
            settings.redacted_endpoint(),
            settings.resolved_protocol()
        );
        let scrub = Scrub(settings.endpoint_secrets().into());
        let mut pipeline = Self::with_reporting(
            ReportingExporter::new(exporter, target, settings.resolved_interval())
                .scrubbing(scrub.clone()),
            &settings,
        );
        pipeline.scrub = scrub;
        Ok(pipeline)
    }

    /// Exports through `exporter` (any OpenTelemetry push exporter: a test double, or an
    /// OTLP exporter configured beyond what [`MetricsSettings`] offers) every
    /// `settings.interval`, under `settings.service_name`; the endpoint settings are unused.
    ///
    /// Call it inside a tokio runtime if the exporter needs one.
    pub fn with_exporter<E: PushMetricExporter>(exporter: E, settings: &MetricsSettings) -> Self {
        let target = "the configured exporter".to_owned();
        Self::with_reporting(
            ReportingExporter::new(exporter, target, settings.resolved_interval()),
            settings,
        )
    }

    fn with_reporting<E: PushMetricExporter>(
        exporter: ReportingExporter<E>,
        settings: &MetricsSettings,
    ) -> Self {
        let reader = PeriodicReader::builder(exporter)
            .with_interval(settings.resolved_interval())
            .build();
        let provider = SdkMeterProvider::builder()
            .with_resource(resource(settings))
            .with_reader(reader)
            .build();
        Self::with_provider(provider)
    }

    /// Uses a meter provider of the caller's (its readers, exporters and resource); the
    /// pipeline's [`shutdown`](Self::shutdown) shuts it down.
    pub fn with_provider(provider: SdkMeterProvider) -> Self {
        let scope = InstrumentationScope::builder(SCOPE_NAME)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let metrics = PoolMetrics::new(&provider.meter_with_scope(scope));
        MetricsPipeline {
            provider: Some(provider),
            metrics,
            scrub: Scrub::default(),
        }
    }

    /// The instruments and the pools they report on.
    pub fn metrics(&self) -> &PoolMetrics {
        &self.metrics
    }

    /// The underlying meter provider, to add instruments of your own to the same export.
    pub fn meter_provider(&self) -> &SdkMeterProvider {
        self.provider
            .as_ref()
            .unwrap_or_else(|| unreachable!("only shutdown(self) takes the provider"))
    }

    /// Collects and exports now, waiting for the export (bounded by the exporter's
    /// timeout).
    ///
    /// # Errors
    /// [`MetricsError::Flush`] if the export failed; the next one retries.
    ///
    /// # Cancel safety
    /// Cancel-safe: the export runs on a blocking thread and completes whether or not this
    /// future is polled to the end.
    pub async fn flush(&self) -> Result<(), MetricsError> {
        let provider = self.meter_provider().clone();
        off_runtime(move || provider.force_flush())
            .await
            .map_err(|e| MetricsError::Flush(self.scrub.apply(&e)))
    }

    /// Exports the last values and stops. Returns within the SDK's 5 s deadline even when
    /// the collector does not answer.
    ///
    /// # Errors
    /// [`MetricsError::Shutdown`] if the last export failed or timed out; the pipeline is
    /// stopped either way.
    ///
    /// # Cancel safety
    /// Cancel-safe: shutdown runs on a blocking thread and completes whether or not this
    /// future is polled to the end.
    pub async fn shutdown(mut self) -> Result<(), MetricsError> {
        let Some(provider) = self.provider.take() else {
            return Ok(());
        };
        let scrub = self.scrub.clone();
        off_runtime(move || provider.shutdown())
            .await
            .map_err(|e| MetricsError::Shutdown(scrub.apply(&e)))
    }
}

/// Removes the endpoint's secret parts (`user:password`, the query string) from an error
/// text: HTTP client errors quote the URL they failed on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scrub(std::sync::Arc<[String]>);

impl Scrub {
    pub(crate) fn apply(&self, text: &str) -> String {
        self.0.iter().fold(text.to_owned(), |text, secret| {
            text.replace(secret.as_str(), "***")
        })
    }
}

/// Runs a blocking SDK call off the runtime's threads: the OTLP exporter's final export
/// needs the runtime to make progress, so blocking a current-thread runtime on it would
/// wait out the SDK's deadline and lose the last values.
async fn off_runtime<F>(f: F) -> Result<(), String>
where
    F: FnOnce() -> OTelSdkResult + Send + 'static,
{
    let result = match Handle::try_current() {
        Ok(handle) => handle.spawn_blocking(f).await.map_err(|e| e.to_string())?,
        Err(_) => f(),
    };
    result.map_err(|e| e.to_string())
}

fn resource(settings: &MetricsSettings) -> Resource {
    // Resource::builder() also reads OTEL_RESOURCE_ATTRIBUTES (deployment.environment,
    // service.instance.id, …); the service name comes from the settings.
    let resource = Resource::builder()
        .with_service_name(settings.resolved_service_name().to_owned())
        .build();
    debug_assert!(
        resource
            .get(&Key::from_static_str("service.name"))
            .is_some(),
        "{DEFAULT_SERVICE_NAME} fallback"
    );
    resource
}

fn build_exporter(settings: &MetricsSettings) -> Result<MetricExporter, MetricsError> {
    let endpoint = settings.resolved_endpoint();
    let timeout = settings.resolved_timeout();
    let built = match settings.resolved_protocol() {
        Protocol::Grpc => {
            let mut metadata = MetadataMap::new();
            for (name, value) in &settings.headers {
                let invalid = || MetricsError::InvalidSetting {
                    key: format!("headers ({name})"),
                    value: None,
                    expected: "a gRPC metadata name (lower-case letters, digits, '-', '_', '.') and an ASCII value",
                };
                let key = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
                    .map_err(|_| invalid())?;
                let value = MetadataValue::try_from(value.as_str()).map_err(|_| invalid())?;
                metadata.insert(key, value);
            }
            let builder = MetricExporter::builder()
                .with_temporality(Temporality::Cumulative)
                .with_tonic()
                .with_endpoint(endpoint)
                .with_timeout(timeout)
                .with_metadata(metadata);
            if settings.uses_tls() {
                builder
                    .with_tls_config(crate::tls::tonic_config(settings)?)
                    .build()
            } else {
                builder.build()
            }
        }
        Protocol::HttpProtobuf => {
            // Our own client: it verifies an https:// collector against the roots the
            // settings name.
            let client = crate::http_client::OtlpHttpClient::new(settings)?;
            // The exporter percent-decodes header values it is given; ours are decoded
            // already, so protect their '%'.
            let headers: HashMap<String, String> = settings
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.replace('%', "%25")))
                .collect();
            MetricExporter::builder()
                .with_temporality(Temporality::Cumulative)
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_http_client(client)
                .with_endpoint(endpoint)
                .with_timeout(timeout)
                .with_headers(headers)
                .build()
        }
    };
    let scrub = Scrub(settings.endpoint_secrets().into());
    built.map_err(|e| MetricsError::Exporter(scrub.apply(&e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_outside_a_runtime_is_a_clear_error() {
        let err = MetricsPipeline::start(MetricsSettings::default()).unwrap_err();
        assert!(matches!(err, MetricsError::NoRuntime), "{err}");
        assert!(err.to_string().contains("tokio runtime"), "{err}");
    }
}
