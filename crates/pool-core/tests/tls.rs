//! TLS to a server with `ssl = on` and certificates made by openssl (pool-testkit's
//! `TestServer::start_with_tls`): `require` encrypts; `require` with a root certificate
//! verifies the chain as libpq does; `verify-full` accepts the right authority and host name; the wrong authority or host name fails at once (a certificate
//! failure is not retried until the acquire deadline) with an error that says why.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use pool_config::{PoolSettings, SslMode};
use pool_core::{PgConnector, Pool, PoolError};
use pool_testkit::{TestCertificates, TestServer};
use tokio::net::TcpListener;

use support::{TestResult, app_name, assert_no_secrets, capture_logs, error_text};

async fn tls_server(
    tag: &str,
) -> Result<(TestServer, TestCertificates, PoolSettings), support::BoxError> {
    capture_logs();
    let (server, certs) = TestServer::start_with_tls().await?;
    let db = server.database().await?;
    let mut settings = support::settings("localhost", server.port(), &db, &app_name(tag));
    settings.max_connections = 2;
    settings.acquire_timeout = Duration::from_millis(1500);
    Ok((server, certs, settings))
}

fn with_tls(settings: &PoolSettings, mode: SslMode, ca: Option<PathBuf>) -> PoolSettings {
    let mut settings = settings.clone();
    settings.ssl_mode = mode;
    settings.ssl_root_cert = ca;
    settings
}

/// Whether the pool's connection is encrypted, as the server sees it.
async fn encrypted(pool: &Pool<PgConnector>) -> Result<bool, PoolError> {
    let mut conn = pool.acquire().await?;
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .expect("pg_stat_ssl");
    Ok(ssl)
}

/// Acquires from a pool that cannot verify the server and returns the error's text. The
/// failure comes at once, not after retries up to the acquire deadline: well within half of a
/// 10 s `acquire_timeout`.
async fn refused(settings: &PoolSettings) -> String {
    let mut settings = settings.clone();
    settings.acquire_timeout = Duration::from_secs(10);
    let pool = support::pool("tls", &settings);
    let started = tokio::time::Instant::now();
    let error = pool.acquire().await.expect_err("verification fails");
    let elapsed = started.elapsed();
    assert!(
        elapsed < settings.acquire_timeout / 2,
        "a certificate failure is not retried: failed after {elapsed:?}"
    );
    assert!(
        matches!(error, PoolError::Connect { .. }),
        "a connect error, not a timeout: {error:?}"
    );
    let text = error_text(&error);
    assert!(text.contains("could not connect"), "{text}");
    assert!(text.contains("invalid peer certificate"), "{text}");
    pool.close(Duration::from_secs(1)).await;
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_encrypts_without_checking_the_certificate() -> TestResult {
    let (_server, certs, settings) = tls_server("tls-require").await?;
    // No authority given: `require` does not verify.
    let pool = support::pool("tls", &with_tls(&settings, SslMode::Require, None));
    assert!(encrypted(&pool).await?, "require must encrypt");
    // `disable` still reaches the same server in plain text.
    let plain = support::pool("plain", &with_tls(&settings, SslMode::Disable, None));
    assert!(!encrypted(&plain).await?);
    let _ = certs;
    assert_no_secrets(&[&format!("{pool:?} {:?}", pool.stats())]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_with_a_root_certificate_verifies_it_as_libpq_does() -> TestResult {
    let (_server, certs, settings) = tls_server("tls-require-root").await?;
    // A server certificate from another authority than the one given is refused, at once.
    let wrong = with_tls(&settings, SslMode::Require, Some(certs.other_ca_cert()));
    let text = refused(&wrong).await;
    assert!(text.contains("UnknownIssuer"), "{text}");
    // The authority that signed it connects, encrypted.
    let mut right = with_tls(&settings, SslMode::Require, Some(certs.ca_cert()));
    right.host = "127.0.0.1".to_owned();
    assert!(encrypted(&support::pool("tls", &right)).await?);
    assert_no_secrets(&[&text]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_the_right_authority_and_host_name_connects() -> TestResult {
    let (_server, certs, settings) = tls_server("tls-verify").await?;
    for host in ["localhost", "127.0.0.1"] {
        let mut s = with_tls(&settings, SslMode::VerifyFull, Some(certs.ca_cert()));
        s.host = host.to_owned();
        let pool = support::pool("tls", &s);
        assert!(encrypted(&pool).await?, "verify-full to {host}");
    }
    let ca_only = with_tls(&settings, SslMode::VerifyCa, Some(certs.ca_cert()));
    assert!(encrypted(&support::pool("tls", &ca_only)).await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_another_authority_fails_clearly() -> TestResult {
    let (_server, certs, settings) = tls_server("tls-wrong-ca").await?;
    let text = refused(&with_tls(
        &settings,
        SslMode::VerifyFull,
        Some(certs.other_ca_cert()),
    ))
    .await;
    assert!(text.contains("UnknownIssuer"), "{text}");
    eprintln!("verify-full with an unrelated CA: {text}");
    assert_no_secrets(&[&text]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_the_wrong_host_name_fails_clearly() -> TestResult {
    let (server, certs, settings) = tls_server("tls-wrong-host").await?;
    // The certificate names localhost and 127.0.0.1; 127.0.0.2 reaches the same server
    // through a forwarder, under a name the certificate does not carry.
    let listener = TcpListener::bind("127.0.0.2:0").await?;
    let port = listener.local_addr()?.port();
    let upstream = format!("127.0.0.1:{}", server.port());
    let forwarder = tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    let mut wrong_host = with_tls(&settings, SslMode::VerifyFull, Some(certs.ca_cert()));
    wrong_host.host = "127.0.0.2".to_owned();
    wrong_host.port = port.into();
    let text = refused(&wrong_host).await;
    assert!(text.contains("NotValidForName"), "{text}");
    // The same forwarder with verify-ca (no host name check) connects: only the name failed.
    let mut ca_only = wrong_host.clone();
    ca_only.ssl_mode = SslMode::VerifyCa;
    assert!(encrypted(&support::pool("tls", &ca_only)).await?);
    forwarder.abort();
    eprintln!("verify-full under a host name the certificate lacks: {text}");
    assert_no_secrets(&[&text]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_connects_with_the_pools_tls_settings() -> TestResult {
    let (_server, certs, settings) = tls_server("tls-listen").await?;
    let verified = with_tls(&settings, SslMode::VerifyFull, Some(certs.ca_cert()));
    let pool = support::pool("tls", &verified);
    let mut listener = pool.listener().await?;
    listener.listen("tls").await?;
    // The listener's own session, as the server sees it: encrypted.
    let ssl: bool = sqlx::query_scalar(
        "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = $1 AND a.query LIKE 'LISTEN%'",
    )
    .bind(&verified.application_name)
    .fetch_one(&mut *pool.acquire().await?)
    .await?;
    assert!(
        ssl,
        "the listener's connection is encrypted and verified like the pool's"
    );
    sqlx::query("SELECT pg_notify('tls', 'over tls')")
        .execute(&pool)
        .await?;
    let note = tokio::time::timeout(Duration::from_secs(10), listener.recv()).await??;
    assert_eq!(note.payload(), "over tls");

    // An authority that did not sign the server's certificate fails the listener as it
    // fails the pool.
    let wrong = with_tls(&settings, SslMode::VerifyFull, Some(certs.other_ca_cert()));
    let error = support::pool("tls", &wrong)
        .listener()
        .await
        .expect_err("verification fails");
    let text = error.to_string();
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert_no_secrets(&[&text]);
    Ok(())
}
