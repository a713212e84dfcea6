//! # Implementation details
//!
//! The OTLP/HTTP exporter's client: hyper over rustls with the configuration of
//! [`tls::client_config`](crate::tls::client_config), for `http://` and `https://`
//! collectors alike. Our own rather than reqwest's, so verifying a collector needs no TLS
//! switched on in reqwest for every crate of the application (reqwest with TLS but no crypto
//! provider panics when any client is built).

use std::fmt;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

use crate::error::MetricsError;
use crate::settings::MetricsSettings;

/// Responses larger than this are refused (a collector answers with a few bytes).
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

pub(crate) struct OtlpHttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl fmt::Debug for OtlpHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpHttpClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl OtlpHttpClient {
    /// A client for `settings`' collector, each request bounded by the export timeout.
    pub(crate) fn new(settings: &MetricsSettings) -> Result<Self, MetricsError> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(crate::tls::client_config(settings)?)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(OtlpHttpClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout: settings.resolved_timeout(),
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for OtlpHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let request = Request::from_parts(parts, Full::new(body));
        let exchange = async {
            let response = self.client.request(request).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE).collect().await?.to_bytes();
            Ok::<_, HttpError>(Response::from_parts(parts, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                HttpError::from("no answer from the collector within the export timeout")
            })?
    }
}
