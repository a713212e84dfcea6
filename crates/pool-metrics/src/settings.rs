//! Where and how often metrics are exported: [`MetricsSettings`], from code or from the
//! standard `OTEL_*` environment variables.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use pool_config::percent_decode;

use crate::error::MetricsError;

/// `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector's base URL (HTTP adds `/v1/metrics`).
pub const ENV_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`: the full metrics URL, used as is; beats
/// [`ENV_ENDPOINT`].
pub const ENV_METRICS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_PROTOCOL`: `grpc` or `http/protobuf`.
pub const ENV_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`: beats [`ENV_PROTOCOL`].
pub const ENV_METRICS_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL";
/// `OTEL_EXPORTER_OTLP_HEADERS`: `key=value,key2=value2`, values percent-decoded.
pub const ENV_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
/// `OTEL_EXPORTER_OTLP_METRICS_HEADERS`: beats [`ENV_HEADERS`].
pub const ENV_METRICS_HEADERS: &str = "OTEL_EXPORTER_OTLP_METRICS_HEADERS";
/// `OTEL_EXPORTER_OTLP_TIMEOUT`: bound on one export, in milliseconds.
pub const ENV_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// `OTEL_EXPORTER_OTLP_METRICS_TIMEOUT`: beats [`ENV_TIMEOUT`].
pub const ENV_METRICS_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT";
/// `OTEL_EXPORTER_OTLP_CERTIFICATE`: PEM file of the roots trusted for an `https://`
/// collector, instead of the compiled-in Mozilla roots.
pub const ENV_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CERTIFICATE";
/// `OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE`: beats [`ENV_CERTIFICATE`].
pub const ENV_METRICS_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE";
/// `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`: PEM client certificate chain, for collectors that
/// require mutual TLS (with [`ENV_CLIENT_KEY`]).
pub const ENV_CLIENT_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE";
/// `OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE`: beats [`ENV_CLIENT_CERTIFICATE`].
pub const ENV_METRICS_CLIENT_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE";
/// `OTEL_EXPORTER_OTLP_CLIENT_KEY`: the PEM private key of [`ENV_CLIENT_CERTIFICATE`].
pub const ENV_CLIENT_KEY: &str = "OTEL_EXPORTER_OTLP_CLIENT_KEY";
/// `OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY`: beats [`ENV_CLIENT_KEY`].
pub const ENV_METRICS_CLIENT_KEY: &str = "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY";
/// `OTEL_METRIC_EXPORT_INTERVAL`: time between exports, in milliseconds.
pub const ENV_INTERVAL: &str = "OTEL_METRIC_EXPORT_INTERVAL";
/// `OTEL_SERVICE_NAME`: the `service.name` resource attribute (Prometheus' `job`).
pub const ENV_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";

/// Default time between exports: the OpenTelemetry default, and the old monitor's 60 s.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Default bound on one export (OpenTelemetry's default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `service.name` when neither the settings nor `OTEL_SERVICE_NAME` name one.
pub const DEFAULT_SERVICE_NAME: &str = "servio-pool";

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP over gRPC (tonic), collector port 4317.
    Grpc,
    /// OTLP over HTTP with protobuf bodies, collector port 4318. The OpenTelemetry default.
    #[default]
    HttpProtobuf,
}

impl Protocol {
    /// The name used by `OTEL_EXPORTER_OTLP_PROTOCOL`: `grpc` or `http/protobuf`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }

    /// The collector's default address for this transport on this machine.
    pub const fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::Grpc => "http://localhost:4317",
            Protocol::HttpProtobuf => "http://localhost:4318",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = MetricsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            _ => Err(MetricsError::InvalidSetting {
                key: "protocol".into(),
                value: Some(s.to_owned()),
                expected: "grpc or http/protobuf (http/json is not supported)",
            }),
        }
    }
}

/// Where and how often metrics are exported.
///
/// Every field left `None` (or empty) takes the OpenTelemetry default; [`from_env`]
/// fills them from the standard `OTEL_*` variables. `Debug` never prints header values
/// (they often carry API keys), nor the endpoints' `user:password@` or query strings.
///
/// An `https://` collector is reached over TLS that verifies its certificate and host name
/// against the Mozilla roots compiled into the binary, or against [`certificate`] alone when
/// it is set (a private authority).
///
/// [`certificate`]: MetricsSettings::certificate
///
/// [`from_env`]: MetricsSettings::from_env
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MetricsSettings {
    /// The collector's base URL (`http://collector:4318`); HTTP appends `/v1/metrics`.
    /// Default: the protocol's local address (`http://localhost:4318` or `:4317`).
    pub endpoint: Option<String>,
    /// The full metrics URL, used as is; beats `endpoint`. Default: none.
    pub metrics_endpoint: Option<String>,
    /// The transport. Default: HTTP/protobuf (the OpenTelemetry default).
    pub protocol: Option<Protocol>,
    /// Time between exports. Default: 60 s, as the old monitor and OpenTelemetry.
    pub interval: Option<Duration>,
    /// Bound on one export, retries included. Default: 10 s (OpenTelemetry).
    pub timeout: Option<Duration>,
    /// Headers sent with every export (`authorization`, `x-api-key`). Default: none.
    pub headers: Vec<(String, String)>,
    /// The `service.name` resource attribute, Prometheus' `job` label.
    /// Default: `servio-pool`.
    pub service_name: Option<String>,
    /// PEM file of the roots trusted for an `https://` collector, instead of the compiled-in
    /// Mozilla roots (`OTEL_EXPORTER_OTLP_CERTIFICATE`). Default: none (the Mozilla roots).
    pub certificate: Option<PathBuf>,
    /// PEM client certificate chain for collectors that require mutual TLS
    /// (`OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`); needs [`client_key`](Self::client_key).
    /// Default: none.
    pub client_certificate: Option<PathBuf>,
    /// PEM private key of [`client_certificate`](Self::client_certificate)
    /// (`OTEL_EXPORTER_OTLP_CLIENT_KEY`). Default: none.
    pub client_key: Option<PathBuf>,
}

impl fmt::Debug for MetricsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted<'a>(&'a [(String, String)]);
        impl fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|(k, _)| (k, "***")))
                    .finish()
            }
        }
        let redacted = |url: &Option<String>| url.as_deref().map(redact_url);
        f.debug_struct("MetricsSettings")
            .field("endpoint", &redacted(&self.endpoint))
            .field("metrics_endpoint", &redacted(&self.metrics_endpoint))
            .field("protocol", &self.protocol)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("headers", &Redacted(&self.headers))
            .field("service_name", &self.service_name)
            .field("certificate", &self.certificate)
            .field("client_certificate", &self.client_certificate)
            .field("client_key", &self.client_key)
            .finish()
    }
}

impl MetricsSettings {
    /// Settings from the process environment's `OTEL_*` variables.
    ///
    /// # Errors
    /// [`MetricsError::InvalidSetting`] naming the variable when one holds a value that is
    /// not accepted (header values are never repeated in the message).
    pub fn from_env() -> Result<Self, MetricsError> {
        let vars = std::env::vars_os().filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            // A non-Unicode value of one of our variables becomes U+FFFD and fails to parse,
            // with the variable named; other variables are not ours to judge.
            k.starts_with("OTEL_")
                .then(|| (k, v.to_string_lossy().into_owned()))
        });
        Self::from_vars(vars)
    }

    /// Settings from these `(name, value)` variables (the process environment in
    /// [`from_env`](Self::from_env); any list in tests). A metrics-specific variable beats the
    /// generic one; empty values count as unset.
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, MetricsError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(k, v)| k.as_ref().starts_with("OTEL_") && !v.as_ref().trim().is_empty())
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().trim().to_owned()))
            .collect();
        let get = |name: &str| {
            vars.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(k, v)| (k.clone(), v.clone()))
        };
        let first = |names: [&str; 2]| names.into_iter().find_map(get);

        let mut settings = MetricsSettings {
            metrics_endpoint: get(ENV_METRICS_ENDPOINT).map(|(_, v)| v),
            endpoint: get(ENV_ENDPOINT).map(|(_, v)| v),
            service_name: get(ENV_SERVICE_NAME).map(|(_, v)| v),
            ..MetricsSettings::default()
        };
        if let Some((var, value)) = first([ENV_METRICS_PROTOCOL, ENV_PROTOCOL]) {
            settings.protocol = Some(value.parse().map_err(|_| MetricsError::InvalidSetting {
                key: var,
                value: Some(value),
                expected: "grpc or http/protobuf (http/json is not supported)",
            })?);
        }
        if let Some((var, value)) = first([ENV_METRICS_TIMEOUT, ENV_TIMEOUT]) {
            settings.timeout = Some(parse_millis(var, value)?);
        }
        if let Some((var, value)) = get(ENV_INTERVAL) {
            settings.interval = Some(parse_millis(var, value)?);
        }
        if let Some((var, value)) = first([ENV_METRICS_HEADERS, ENV_HEADERS]) {
            settings.headers = parse_headers(&var, &value)?;
        }
        let path = |names| first(names).map(|(_, v)| PathBuf::from(v));
        settings.certificate = path([ENV_METRICS_CERTIFICATE, ENV_CERTIFICATE]);
        settings.client_certificate =
            path([ENV_METRICS_CLIENT_CERTIFICATE, ENV_CLIENT_CERTIFICATE]);
        settings.client_key = path([ENV_METRICS_CLIENT_KEY, ENV_CLIENT_KEY]);
        settings.validate()?;
        Ok(settings)
    }

    /// Whether a collector address was configured (the demo exports only then).
    pub fn endpoint_configured(&self) -> bool {
        self.endpoint.is_some() || self.metrics_endpoint.is_some()
    }

    /// The transport in effect.
    pub fn resolved_protocol(&self) -> Protocol {
        self.protocol.unwrap_or_default()
    }

    /// The URL exports go to: `metrics_endpoint` as is, else `endpoint` (plus `/v1/metrics`
    /// over HTTP), else the protocol's local default.
    pub fn resolved_endpoint(&self) -> String {
        if let Some(url) = &self.metrics_endpoint {
            return url.clone();
        }
        let protocol = self.resolved_protocol();
        let base = self
            .endpoint
            .as_deref()
            .unwrap_or(protocol.default_endpoint());
        match protocol {
            Protocol::Grpc => base.to_owned(),
            Protocol::HttpProtobuf => format!("{}/v1/metrics", base.trim_end_matches('/')),
        }
    }

    /// [`resolved_endpoint`](Self::resolved_endpoint) without any `user:password@`, and with
    /// its query string (some collectors take an API key there) and fragment replaced by
    /// `***`, to print or log.
    pub fn redacted_endpoint(&self) -> String {
        redact_url(&self.resolved_endpoint())
    }

    /// The parts of the endpoints that may be secret (`user:password`, the query string),
    /// for removing them from error texts that quote the URL.
    pub(crate) fn endpoint_secrets(&self) -> Vec<String> {
        [&self.endpoint, &self.metrics_endpoint]
            .into_iter()
            .flatten()
            .flat_map(|url| {
                let (userinfo, query) = url_secrets(url);
                [userinfo, query]
            })
            .flatten()
            .filter(|secret| !secret.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Whether exports go over TLS (an `https://` collector).
    pub fn uses_tls(&self) -> bool {
        self.resolved_endpoint()
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
    }

    /// The time between exports in effect.
    pub fn resolved_interval(&self) -> Duration {
        self.interval.unwrap_or(DEFAULT_INTERVAL)
    }

    /// The bound on one export in effect.
    pub fn resolved_timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    /// The `service.name` in effect.
    pub fn resolved_service_name(&self) -> &str {
        self.service_name.as_deref().unwrap_or(DEFAULT_SERVICE_NAME)
    }

    /// Checks every field, so [`crate::MetricsPipeline::start`] fails early and clearly.
    ///
    /// # Errors
    /// [`MetricsError::InvalidSetting`] for an endpoint without `http://` or `https://`, a TLS
    /// file with an `http://` endpoint, a client certificate without its key (or the reverse), a zero
    /// interval or timeout, or a header name or value that HTTP cannot carry.
    pub fn validate(&self) -> Result<(), MetricsError> {
        for (key, url) in [
            ("endpoint", &self.endpoint),
            ("metrics_endpoint", &self.metrics_endpoint),
        ] {
            if let Some(url) = url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(MetricsError::InvalidSetting {
                    key: key.into(),
                    value: Some(redact_url(url)),
                    expected: "a URL starting with http:// or https:// (http://collector:4318)",
                });
            }
        }
        let tls_files = [
            ("certificate", &self.certificate),
            ("client_certificate", &self.client_certificate),
            ("client_key", &self.client_key),
        ];
        for (key, file) in tls_files {
            if let Some(file) = file
                && !self.uses_tls()
            {
                return Err(MetricsError::InvalidSetting {
                    key: key.into(),
                    value: Some(file.display().to_string()),
                    expected: "an https:// endpoint: over http:// the metrics and headers travel \
                               in clear text and no certificate is used",
                });
            }
        }
        if self.client_certificate.is_some() != self.client_key.is_some() {
            return Err(MetricsError::InvalidSetting {
                key: "client_certificate".into(),
                value: None,
                expected: "client_certificate and client_key together, or neither",
            });
        }
        for (key, value) in [("interval", self.interval), ("timeout", self.timeout)] {
            if value == Some(Duration::ZERO) {
                return Err(MetricsError::InvalidSetting {
                    key: key.into(),
                    value: Some("0".into()),
                    expected: "a positive duration",
                });
            }
        }
        for (name, value) in &self.headers {
            let name_ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            let value_ok = value
                .bytes()
                .all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
            if !name_ok || !value_ok {
                return Err(MetricsError::InvalidSetting {
                    key: format!("headers ({name})"),
                    value: None,
                    expected: "header names of letters, digits, '-', '_' or '.', and values of visible ASCII",
                });
            }
        }
        Ok(())
    }
}

/// `url` without `user:password@`, with its query string and fragment shown as `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host_start = rest[..authority_end].rfind('@').map_or(0, |at| at + 1);
    let rest = &rest[host_start..];
    let path_end = rest.find(['?', '#']).unwrap_or(rest.len());
    let hidden = if path_end < rest.len() { "?***" } else { "" };
    let scheme = if scheme.is_empty() {
        String::new()
    } else {
        format!("{scheme}://")
    };
    format!("{scheme}{}{hidden}", &rest[..path_end])
}

/// The `user:password` and the query string (with fragment) of `url`, when present.
fn url_secrets(url: &str) -> (Option<&str>, Option<&str>) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let userinfo = rest[..authority_end].rfind('@').map(|at| &rest[..at]);
    let query = rest.find(['?', '#']).map(|start| &rest[start + 1..]);
    (userinfo, query)
}

fn parse_millis(var: String, value: String) -> Result<Duration, MetricsError> {
    match value.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(MetricsError::InvalidSetting {
            key: var,
            value: Some(value),
            expected: "a positive whole number of milliseconds",
        }),
    }
}

/// `key=value,key2=value2` with percent-encoded values (the OpenTelemetry format).
fn parse_headers(var: &str, value: &str) -> Result<Vec<(String, String)>, MetricsError> {
    let invalid = || MetricsError::InvalidSetting {
        key: var.to_owned(),
        value: None,
        expected: "comma-separated key=value pairs with percent-encoded values",
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').ok_or_else(invalid)?;
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() {
                return Err(invalid());
            }
            Ok((k.to_owned(), percent_decode(v).ok_or_else(invalid)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_set_gives_the_opentelemetry_defaults() {
        let s = MetricsSettings::from_vars(Vec::<(String, String)>::new()).unwrap();
        assert!(!s.endpoint_configured());
        assert_eq!(s.resolved_protocol(), Protocol::HttpProtobuf);
        assert_eq!(s.resolved_endpoint(), "http://localhost:4318/v1/metrics");
        assert_eq!(s.resolved_interval(), Duration::from_secs(60));
        assert_eq!(s.resolved_timeout(), Duration::from_secs(10));
        assert_eq!(s.resolved_service_name(), "servio-pool");
    }

    #[test]
    fn generic_variables_configure_everything() {
        let s = MetricsSettings::from_vars([
            (ENV_ENDPOINT, "http://collector:4317/"),
            (ENV_PROTOCOL, "GRPC"),
            (ENV_TIMEOUT, "2500"),
            (ENV_INTERVAL, "15000"),
            (ENV_HEADERS, "authorization=Bearer%20abc, x-tenant = blue"),
            (ENV_SERVICE_NAME, "orders"),
            ("PATH", "/usr/bin"),
        ])
        .unwrap();
        assert!(s.endpoint_configured());
        assert_eq!(s.resolved_protocol(), Protocol::Grpc);
        assert_eq!(s.resolved_endpoint(), "http://collector:4317/");
        assert_eq!(s.resolved_timeout(), Duration::from_millis(2500));
        assert_eq!(s.resolved_interval(), Duration::from_secs(15));
        assert_eq!(
            s.headers,
            [
                ("authorization".to_owned(), "Bearer abc".to_owned()),
                ("x-tenant".to_owned(), "blue".to_owned())
            ]
        );
        assert_eq!(s.resolved_service_name(), "orders");
    }

    #[test]
    fn metrics_variables_beat_generic_ones_and_the_http_path_is_added_once() {
        let s = MetricsSettings::from_vars([
            (ENV_ENDPOINT, "http://generic:4318"),
            (ENV_PROTOCOL, "grpc"),
            (ENV_METRICS_PROTOCOL, "http/protobuf"),
            (ENV_HEADERS, "a=1"),
            (ENV_METRICS_HEADERS, "b=2"),
            (ENV_TIMEOUT, "1000"),
            (ENV_METRICS_TIMEOUT, "3000"),
        ])
        .unwrap();
        assert_eq!(s.resolved_protocol(), Protocol::HttpProtobuf);
        assert_eq!(s.resolved_endpoint(), "http://generic:4318/v1/metrics");
        assert_eq!(s.headers, [("b".to_owned(), "2".to_owned())]);
        assert_eq!(s.resolved_timeout(), Duration::from_secs(3));

        let s = MetricsSettings::from_vars([
            (ENV_ENDPOINT, "http://generic:4318"),
            (ENV_METRICS_ENDPOINT, "http://special:9999/otlp/metrics"),
        ])
        .unwrap();
        assert_eq!(s.resolved_endpoint(), "http://special:9999/otlp/metrics");
    }

    #[test]
    fn empty_values_count_as_unset() {
        let s = MetricsSettings::from_vars([(ENV_ENDPOINT, ""), (ENV_PROTOCOL, " ")]).unwrap();
        assert!(!s.endpoint_configured());
        assert_eq!(s.protocol, None);
    }

    #[test]
    fn bad_values_are_errors_naming_the_variable() {
        let err = MetricsSettings::from_vars([(ENV_PROTOCOL, "http/json")]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(ENV_PROTOCOL) && msg.contains("http/json"),
            "{msg}"
        );
        assert!(msg.contains("grpc or http/protobuf"), "{msg}");

        let err = MetricsSettings::from_vars([(ENV_INTERVAL, "10s")]).unwrap_err();
        assert!(err.to_string().contains(ENV_INTERVAL), "{err}");
        assert!(err.to_string().contains("milliseconds"), "{err}");

        let err = MetricsSettings::from_vars([(ENV_ENDPOINT, "collector:4317")]).unwrap_err();
        assert!(err.to_string().contains("http://"), "{err}");
    }

    #[test]
    fn header_values_never_appear_in_errors_or_debug() {
        let err =
            MetricsSettings::from_vars([(ENV_HEADERS, "authorization=s3cr3t%zz")]).unwrap_err();
        assert!(err.to_string().contains(ENV_HEADERS), "{err}");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        assert!(!format!("{err:?}").contains("s3cr3t"), "{err:?}");

        let s = MetricsSettings {
            headers: vec![("x-api-key".into(), "s3cr3t".into())],
            ..MetricsSettings::default()
        };
        let debug = format!("{s:?}");
        assert!(
            debug.contains("x-api-key") && debug.contains("***"),
            "{debug}"
        );
        assert!(!debug.contains("s3cr3t"), "{debug}");

        let s = MetricsSettings {
            headers: vec![("x-api-key".into(), "s3cr3t\n".into())],
            ..MetricsSettings::default()
        };
        let err = s.validate().unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }

    #[test]
    fn credentials_in_the_endpoint_are_not_printed() {
        let with = |url: &str| MetricsSettings {
            metrics_endpoint: Some(url.into()),
            ..MetricsSettings::default()
        };
        assert_eq!(
            with("http://user:s3cr3t@collector:4318/v1/metrics").redacted_endpoint(),
            "http://collector:4318/v1/metrics"
        );
        assert_eq!(
            with("http://collector:4317").redacted_endpoint(),
            "http://collector:4317"
        );
        assert_eq!(
            with("http://collector:4318/a@b").redacted_endpoint(),
            "http://collector:4318/a@b"
        );
    }

    #[test]
    fn query_strings_and_credentials_never_appear_in_debug_logs_or_errors() {
        let url = "https://user:s3cr3t-pw@collector:4318/v1/metrics?api_key=s3cr3t-key#frag";
        let s = MetricsSettings {
            endpoint: Some(url.into()),
            metrics_endpoint: Some(url.into()),
            ..MetricsSettings::default()
        };
        assert_eq!(
            s.redacted_endpoint(),
            "https://collector:4318/v1/metrics?***"
        );
        let debug = format!("{s:?} {s:#?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(debug.contains("collector:4318"), "{debug}");
        let secrets = s.endpoint_secrets();
        assert!(
            secrets.iter().any(|p| p.contains("s3cr3t-pw")),
            "{secrets:?}"
        );
        assert!(
            secrets.iter().any(|p| p.contains("s3cr3t-key")),
            "{secrets:?}"
        );
        let bad = MetricsSettings {
            endpoint: Some("ftp://user:s3cr3t-pw@collector/?api_key=s3cr3t-key".into()),
            ..MetricsSettings::default()
        };
        let err = bad.validate().unwrap_err();
        assert!(!format!("{err} {err:?}").contains("s3cr3t"), "{err}");
    }

    #[test]
    fn certificates_come_from_the_standard_variables_and_need_https() {
        let s = MetricsSettings::from_vars([
            (ENV_ENDPOINT, "https://collector:4318"),
            (ENV_CERTIFICATE, "/generic/ca.pem"),
            (ENV_METRICS_CERTIFICATE, "/metrics/ca.pem"),
            (ENV_CLIENT_CERTIFICATE, "/client.pem"),
            (ENV_CLIENT_KEY, "/client.key"),
        ])
        .unwrap();
        assert!(s.uses_tls());
        assert_eq!(s.certificate, Some(PathBuf::from("/metrics/ca.pem")));
        assert_eq!(s.client_certificate, Some(PathBuf::from("/client.pem")));
        assert_eq!(s.client_key, Some(PathBuf::from("/client.key")));
        let err = MetricsSettings::from_vars([
            (ENV_ENDPOINT, "http://collector:4318"),
            (ENV_CERTIFICATE, "/ca.pem"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("https://"), "{err}");
        let err = MetricsSettings::from_vars([
            (ENV_ENDPOINT, "https://collector:4318"),
            (ENV_CLIENT_KEY, "/client.key"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("together"), "{err}");
    }

    #[test]
    fn zero_durations_are_rejected() {
        let s = MetricsSettings {
            interval: Some(Duration::ZERO),
            ..MetricsSettings::default()
        };
        assert!(s.validate().unwrap_err().to_string().contains("interval"));
        let err = MetricsSettings::from_vars([(ENV_TIMEOUT, "0")]).unwrap_err();
        assert!(err.to_string().contains(ENV_TIMEOUT), "{err}");
    }
}
