//! [`TestCertificates`]: a certificate authority and a server certificate made with the
//! `openssl` command, and [`TestServer::start_with_tls`] to run a server with `ssl = on`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};

use crate::credentials::{SUPERUSER, SUPERUSER_PASSWORD, sql_literal};
use crate::process::{give_to_server, run};
use crate::server::TestServer;

/// How long the generated certificates are valid.
const VALID_DAYS: &str = "2";

/// Certificates for TLS tests, generated with the `openssl` command into a directory of their
/// own (removed on drop):
///
/// - a certificate authority ([`ca_cert`](Self::ca_cert));
/// - a server certificate it signed, for the host name `localhost` and the address
///   `127.0.0.1` ([`server_cert`](Self::server_cert), [`server_key`](Self::server_key));
/// - a second, unrelated authority ([`other_ca_cert`](Self::other_ca_cert)) that signed
///   nothing the server shows, for tests that expect verification to fail.
#[derive(Debug)]
pub struct TestCertificates {
    dir: tempfile::TempDir,
}

impl TestCertificates {
    /// Generates the authorities and the server certificate.
    ///
    /// # Errors
    ///
    /// When `openssl` is not installed (the message says how to install it) or fails.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the directory is removed when the future is dropped.
    pub async fn generate() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("servio-pool-tls-")
            .tempdir()
            .context("cannot create a directory for the test certificates")?;
        let certs = Self { dir };
        let path = certs.dir.path();
        std::fs::write(
            path.join("server.ext"),
            "basicConstraints = critical, CA:FALSE\n\
             keyUsage = critical, digitalSignature, keyEncipherment\n\
             extendedKeyUsage = serverAuth\n\
             subjectAltName = DNS:localhost, IP:127.0.0.1\n",
        )?;
        certs.authority("ca", "servio-pool test CA").await?;
        certs
            .authority("other-ca", "servio-pool unrelated CA")
            .await?;
        openssl(
            path,
            &[
                "req",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        )
        .await?;
        openssl(
            path,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                VALID_DAYS,
                "-sha256",
                "-extfile",
                "server.ext",
                "-out",
                "server.crt",
            ],
        )
        .await?;
        Ok(certs)
    }

    async fn authority(&self, name: &str, common_name: &str) -> anyhow::Result<()> {
        let key = format!("{name}.key");
        let cert = format!("{name}.crt");
        let subject = format!("/CN={common_name}");
        openssl(
            self.dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &cert,
                "-days",
                VALID_DAYS,
                "-sha256",
                "-subj",
                &subject,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        )
        .await
    }

    /// The authority that signed the server certificate (PEM).
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// An authority that signed nothing the server shows (PEM).
    pub fn other_ca_cert(&self) -> PathBuf {
        self.dir.path().join("other-ca.crt")
    }

    /// The server certificate, valid for `localhost` and `127.0.0.1` (PEM).
    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server.crt")
    }

    /// The server certificate's private key (PEM, unencrypted).
    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
}

async fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let mut command = tokio::process::Command::new("openssl");
    command.args(args).current_dir(dir);
    match run(&mut command, &format!("openssl {}", args[0])).await {
        Ok(_) => Ok(()),
        Err(error) => match crate::tools::openssl() {
            Ok(_) => Err(error),
            Err(missing) => Err(error.context(missing.to_string())),
        },
    }
}

impl TestServer {
    /// Starts a dedicated server with `ssl = on`, presenting a certificate of freshly
    /// generated [`TestCertificates`] (returned beside it). Plain-text connections are still
    /// accepted, so `prefer` and `disable` keep working.
    ///
    /// # Errors
    ///
    /// When the server does not start, `openssl` fails, or the server does not take the
    /// certificate (the message says why).
    ///
    /// # Cancel safety
    ///
    /// Cancelling it stops what was started so far.
    pub async fn start_with_tls() -> anyhow::Result<(Self, TestCertificates)> {
        let certs = TestCertificates::generate().await?;
        let server = Self::start().await?;
        server.enable_tls(&certs).await?;
        Ok((server, certs))
    }

    /// Turns `ssl = on` with the server certificate of `certs` (a reload: open sessions stay).
    ///
    /// # Errors
    ///
    /// When the server does not answer or does not take the certificate.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: the server's settings may be left half changed.
    pub async fn enable_tls(&self, certs: &TestCertificates) -> anyhow::Result<()> {
        let dir = self.state_dir();
        let cert = dir.join("tls-server.crt");
        let key = dir.join("tls-server.key");
        std::fs::copy(certs.server_cert(), &cert)?;
        std::fs::copy(certs.server_key(), &key)?;
        // PostgreSQL refuses a key file that others can read.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
        give_to_server(&cert)?;
        give_to_server(&key)?;

        let admin = PgConnectOptions::new_without_pgpass()
            .host(self.host())
            .port(self.port())
            .username(SUPERUSER)
            .password(SUPERUSER_PASSWORD)
            .database("postgres")
            .ssl_mode(PgSslMode::Disable);
        let mut conn = PgConnection::connect_with(&admin).await?;
        for (name, value) in [
            ("ssl_cert_file", cert.to_string_lossy()),
            ("ssl_key_file", key.to_string_lossy()),
            ("ssl", "on".into()),
        ] {
            let sql = format!("ALTER SYSTEM SET {name} = {}", sql_literal(&value));
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await?;
        }
        sqlx::raw_sql("SELECT pg_reload_conf()")
            .execute(&mut conn)
            .await?;
        let _ = conn.close().await;

        // A reload that cannot load the key keeps TLS off and only logs why: check it took.
        let tls = admin.ssl_mode(PgSslMode::Require);
        let mut last_error = None;
        for _ in 0..50 {
            match PgConnection::connect_with(&tls).await {
                Ok(conn) => {
                    let _ = conn.close().await;
                    return Ok(());
                }
                Err(error) => last_error = Some(error),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
        Err(anyhow::anyhow!(
            "the server did not turn TLS on: {}\nserver log:\n{}",
            last_error.map_or_else(String::new, |e| e.to_string()),
            crate::process::tail(&log, 10)
        ))
    }
}
