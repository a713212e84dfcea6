#![doc = include_str!("../README.md")]

mod catalog;
mod deferred;
mod error;
mod http_client;
mod metrics_observer;
mod pipeline;
mod pool_metrics;
mod reporting_exporter;
mod settings;
mod tls;

pub use catalog::{
    CLOSE_REASON, CONNECTION_STATE, DURATION_BUCKETS, METRICS, MetricDescriptor, MetricKind,
    POOL_NAME, prometheus_label,
};
pub use error::MetricsError;
pub use metrics_observer::MetricsObserver;
pub use pipeline::{MetricsPipeline, SCOPE_NAME};
pub use pool_metrics::PoolMetrics;
pub use settings::{
    DEFAULT_INTERVAL, DEFAULT_SERVICE_NAME, DEFAULT_TIMEOUT, ENV_CERTIFICATE,
    ENV_CLIENT_CERTIFICATE, ENV_CLIENT_KEY, ENV_ENDPOINT, ENV_HEADERS, ENV_INTERVAL,
    ENV_METRICS_CERTIFICATE, ENV_METRICS_CLIENT_CERTIFICATE, ENV_METRICS_CLIENT_KEY,
    ENV_METRICS_ENDPOINT, ENV_METRICS_HEADERS, ENV_METRICS_PROTOCOL, ENV_METRICS_TIMEOUT,
    ENV_PROTOCOL, ENV_SERVICE_NAME, ENV_TIMEOUT, MetricsSettings, Protocol,
};
