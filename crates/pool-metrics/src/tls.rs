//! # Implementation details
//!
//! The TLS client configuration of the OTLP exporters (rustls for HTTP, tonic's for gRPC, both
//! with ring): verifying the collector's certificate and host name against the compiled-in
//! Mozilla roots, or against `certificate` alone (a private authority), with an optional
//! client certificate.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::error::MetricsError;
use crate::settings::MetricsSettings;

/// The rustls configuration for `settings`.
pub(crate) fn client_config(settings: &MetricsSettings) -> Result<ClientConfig, MetricsError> {
    let mut roots = RootCertStore::empty();
    match &settings.certificate {
        Some(path) => {
            for cert in certificates("certificate", path)? {
                roots
                    .add(cert)
                    .map_err(|e| invalid_file("certificate", path, e))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| MetricsError::Exporter(format!("tls setup: {e}")))?
            .with_root_certificates(roots);
    match (&settings.client_certificate, &settings.client_key) {
        (Some(cert), Some(key)) => {
            let chain = certificates("client_certificate", cert)?;
            let key_der = std::fs::read(key)
                .map_err(|e| invalid_file("client_key", key, e))
                .and_then(|pem| {
                    PrivateKeyDer::from_pem_slice(&pem)
                        .map_err(|e| invalid_file("client_key", key, e))
                })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| invalid_file("client_certificate", cert, e))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// Every certificate of the PEM file at `path`; at least one.
fn certificates(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, MetricsError> {
    let pem = std::fs::read(path).map_err(|e| invalid_file(key, path, e))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid_file(key, path, e))?;
    if certs.is_empty() {
        return Err(invalid_file(key, path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

fn invalid_file(key: &'static str, path: &Path, reason: impl std::fmt::Display) -> MetricsError {
    MetricsError::TlsFile {
        key,
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// tonic's TLS configuration for `settings` (an `https://` gRPC collector), with the same
/// roots and client certificate as [`client_config`].
pub(crate) fn tonic_config(
    settings: &MetricsSettings,
) -> Result<tonic::transport::ClientTlsConfig, MetricsError> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let config = match &settings.certificate {
        Some(path) => {
            // Checked here, so a bad file is named now rather than failing every export.
            certificates("certificate", path)?;
            let pem = std::fs::read(path).map_err(|e| invalid_file("certificate", path, e))?;
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
        }
        None => {
            ClientTlsConfig::new().trust_anchors(webpki_roots::TLS_SERVER_ROOTS.iter().cloned())
        }
    };
    match (&settings.client_certificate, &settings.client_key) {
        (Some(cert), Some(key)) => {
            certificates("client_certificate", cert)?;
            let cert_pem =
                std::fs::read(cert).map_err(|e| invalid_file("client_certificate", cert, e))?;
            let key_pem = std::fs::read(key).map_err(|e| invalid_file("client_key", key, e))?;
            Ok(config.identity(Identity::from_pem(cert_pem, key_pem)))
        }
        _ => Ok(config),
    }
}
