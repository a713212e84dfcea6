//! A wrong-password test needs a server that checks passwords: `checks_passwords` tells
//! one that does (scram-sha-256, as the testkit sets up) from one that trusts every login (the
//! common developer setup that `SERVIO_TEST_DATABASE_URL` may name).

use pool_testkit::TestServer;

#[tokio::test(flavor = "multi_thread")]
async fn a_server_with_passwords_requires_them_and_a_trusting_one_is_detected() -> anyhow::Result<()>
{
    let server = TestServer::start().await?;
    let db = server.database().await?;
    assert!(
        db.checks_passwords().await?,
        "the testkit's servers check passwords"
    );

    // The first matching line wins: trust every TCP login from here on.
    let hba = server.state_dir().join("data/pg_hba.conf");
    let rules = std::fs::read_to_string(&hba)?;
    std::fs::write(&hba, format!("host all all 127.0.0.1/32 trust\n{rules}"))?;
    let mut admin = db.admin_connection().await?;
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&mut admin)
        .await?;
    // The reload is asynchronous: the postmaster rereads the file when it gets the signal.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while db.checks_passwords().await? {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the trust rule never took effect"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(())
}
