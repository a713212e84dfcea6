//! Errors of the metrics pipeline.

/// What can go wrong starting, using or stopping the metrics pipeline.
///
/// A collector that is down or refuses an export is not an error here: it is logged
/// (rate-limited) and the next export retries, see [`crate::MetricsPipeline`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// A setting or `OTEL_*` variable holds a value that is not accepted. `value` is `None`
    /// for headers, whose values are never repeated.
    #[error(
        "invalid metrics setting {key}{}: expected {expected}",
        value.as_ref().map(|v| format!(" = {v:?}")).unwrap_or_default()
    )]
    InvalidSetting {
        /// The field or environment variable.
        key: String,
        /// The rejected value, unless it may be secret.
        value: Option<String>,
        /// What is accepted.
        expected: &'static str,
    },
    /// A TLS file (`certificate`, `client_certificate`, `client_key`) could not be used. The
    /// message names the file, never its contents.
    #[error("cannot use the metrics {key} file {}: {reason}", path.display())]
    TlsFile {
        /// The setting (`certificate`, `client_certificate` or `client_key`).
        key: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The OTLP exporter needs a tokio runtime and none was running.
    #[error(
        "the metrics pipeline must be started inside a tokio runtime (the otlp exporter runs on it)"
    )]
    NoRuntime,
    /// The OTLP exporter could not be built from the settings.
    #[error("building the otlp metrics exporter failed: {0}")]
    Exporter(String),
    /// A pool of this name is already instrumented by this [`crate::PoolMetrics`].
    #[error("pool {0:?} is already instrumented")]
    AlreadyInstrumented(String),
    /// The pool accepts one observer and another one was installed before.
    #[error("pool {0:?} already has an observer installed")]
    ObserverTaken(String),
    /// An explicit flush did not complete (the collector may be down; values are kept and
    /// sent with the next export).
    #[error("flushing metrics failed: {0}")]
    Flush(String),
    /// Shutting down did not complete cleanly (for example the last export failed).
    #[error("shutting the metrics pipeline down failed: {0}")]
    Shutdown(String),
}
