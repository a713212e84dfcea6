//! How an sqlx error reads to the pool: which errors are worth retrying, which mean the
//! credentials or the database are wrong, and which leave a connection broken.

use crate::connector::ErrorClass;

/// Sorts an sqlx error by SQLSTATE: authentication (class 28), unknown database (3D000) or
/// a refused server parameter (42704, 22023, 42501), read-only (25006), terminated backend
/// (57P01); a TLS setup or certificate failure (unknown authority, wrong host name, a server
/// without TLS under `require`) is fatal, since retrying cannot fix it; other I/O and protocol errors are broken connections; the rest transient.
pub(crate) fn classify(error: &sqlx::Error) -> ErrorClass {
    match error {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some(code) if code.starts_with("28") => ErrorClass::Authentication,
            Some("3D000") => ErrorClass::Fatal,
            // A session parameter the server refuses at login or at its `set_config` right
            // after (unknown name, invalid value, not settable by the role): retrying the
            // same parameters cannot help. On a query's error the class changes nothing.
            Some("42704" | "22023" | "42501") => ErrorClass::Fatal,
            Some("25006") => ErrorClass::ReadOnly,
            // The server ended the session: terminated, crashed, or past
            // idle_in_transaction_session_timeout (25P03) or idle_session_timeout (57P05).
            Some("57P01" | "57P02" | "57P05" | "25P03") => ErrorClass::Broken,
            _ => ErrorClass::Transient,
        },
        // sqlx reports a failed handshake as I/O: rustls's error rides inside the io::Error.
        sqlx::Error::Io(io) if io.get_ref().is_some_and(is_tls_setup_failure) => ErrorClass::Fatal,
        // sqlx's own TLS errors: unreadable certificates, a host name that cannot be
        // verified, a server refusing TLS under `require`.
        // No password to log in with (an unreadable password file, a failing credentials
        // provider): a refused login, reported at once and tried again at the backoff pace.
        error if crate::pg_credentials::is_credentials_error(error) => ErrorClass::Authentication,
        sqlx::Error::Tls(_) | sqlx::Error::Configuration(_) => ErrorClass::Fatal,
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => ErrorClass::Broken,
        _ => ErrorClass::Transient,
    }
}

/// Whether `error` is rustls refusing the peer's certificate or the peer refusing ours:
/// configuration that no retry fixes (a corrupt record mid-stream is not one of these).
fn is_tls_setup_failure(error: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    use rustls::AlertDescription as Alert;
    match error.downcast_ref::<rustls::Error>() {
        Some(
            rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::UnsupportedNameType
            | rustls::Error::PeerIncompatible(_)
            | rustls::Error::InvalidCertRevocationList(_),
        ) => true,
        Some(rustls::Error::AlertReceived(alert)) => matches!(
            alert,
            Alert::BadCertificate
                | Alert::UnsupportedCertificate
                | Alert::CertificateRevoked
                | Alert::CertificateExpired
                | Alert::CertificateUnknown
                | Alert::UnknownCA
                | Alert::CertificateRequired
                | Alert::ProtocolVersion
                | Alert::HandshakeFailure
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_broken_connections() {
        let io = sqlx::Error::Io(std::io::Error::other("reset"));
        assert_eq!(classify(&io), ErrorClass::Broken);
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), ErrorClass::Transient);
    }

    #[test]
    fn certificate_failures_are_fatal_but_a_corrupt_record_is_not() {
        let tls_io = |e: rustls::Error| {
            sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        };
        for error in [
            tls_io(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
            tls_io(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            )),
            tls_io(rustls::Error::AlertReceived(
                rustls::AlertDescription::UnknownCA,
            )),
            sqlx::Error::Tls("server does not support TLS".into()),
        ] {
            assert_eq!(classify(&error), ErrorClass::Fatal, "{error}");
        }
        assert_eq!(
            classify(&tls_io(rustls::Error::DecryptError)),
            ErrorClass::Broken
        );
    }
}
