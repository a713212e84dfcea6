//! The fault controls of a dedicated `TestServer` do what tests rely on them to do.

mod support;

use std::time::Duration;

use pool_testkit::{RestartMode, TestServer};
use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

async fn connect(server: &TestServer, application_name: &str) -> anyhow::Result<PgConnection> {
    let db = server.database().await?;
    let options = db.app_options().application_name(application_name);
    Ok(PgConnection::connect_with(&options).await?)
}

fn sqlstate(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .and_then(|e| e.code().map(|c| c.into_owned()))
}

#[tokio::test(flavor = "multi_thread")]
async fn freeze_hangs_queries_until_thaw() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let mut conn = connect(&server, "frozen").await?;
    server.freeze().await?;
    let query = tokio::spawn(async move {
        let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await?;
        anyhow::Ok(one)
    });
    let mut query = query;
    // A short deadline passes while the server is frozen...
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut query)
            .await
            .is_err(),
        "a frozen server must not answer"
    );
    // ... and thawing releases the same query.
    server.thaw().await?;
    let one = tokio::time::timeout(Duration::from_secs(30), query).await???;
    assert_eq!(one, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_breaks_sessions_and_keeps_the_port() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let port = server.port();
    for mode in [RestartMode::Fast, RestartMode::Immediate] {
        let mut conn = connect(&server, "restarted").await?;
        server.restart(mode).await?;
        assert_eq!(server.port(), port);
        assert!(
            sqlx::query("SELECT 1").execute(&mut conn).await.is_err(),
            "{mode:?}: a session from before the restart is gone"
        );
        let mut fresh = connect(&server, "after").await?;
        sqlx::query("SELECT 1").execute(&mut fresh).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_refuses_connections_until_started_again() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let db = server.database().await?;
    server.stop().await?;
    assert!(PgConnection::connect_with(&db.app_options()).await.is_err());
    server.start_again().await?;
    let mut conn = PgConnection::connect_with(&db.app_options()).await?;
    sqlx::query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn terminate_backends_hits_only_the_named_application() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let mut victim = connect(&server, "victim").await?;
    let mut bystander = connect(&server, "bystander").await?;
    assert_eq!(server.terminate_backends("victim").await?, 1);
    assert!(sqlx::query("SELECT 1").execute(&mut victim).await.is_err());
    sqlx::query("SELECT 1").execute(&mut bystander).await?;
    assert_eq!(server.terminate_backends("nobody").await?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_rejects_writes_in_open_sessions_and_back() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let mut conn = connect(&server, "writer").await?;
    sqlx::query("CREATE TABLE t (id int)")
        .execute(&mut conn)
        .await?;
    server.set_read_only(true).await?;
    // The reload reaches an open session before its next statement; poll briefly for it.
    let mut rejected = None;
    for _ in 0..50 {
        match sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut conn)
            .await
        {
            Err(error) => {
                rejected = Some(error);
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let error = rejected.expect("writes are rejected once read-only");
    // 25006: read_only_sql_transaction.
    assert_eq!(sqlstate(&error).as_deref(), Some("25006"), "{error}");
    server.set_read_only(false).await?;
    let mut fresh = connect(&server, "writer").await?;
    sqlx::query("CREATE TABLE u (id int)")
        .execute(&mut fresh)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn max_connections_caps_the_application_role() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let db = server.database().await?;
    server.set_max_connections(3).await?;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(PgConnection::connect_with(&db.app_options()).await?);
    }
    let error = PgConnection::connect_with(&db.app_options())
        .await
        .expect_err("the third application connection is refused");
    // 53300: too_many_connections.
    assert_eq!(sqlstate(&error).as_deref(), Some("53300"), "{error}");
    // The superuser keeps its reserved slot, so the controls still work (once the refused
    // connection's backend has exited, which takes a moment after the refusal).
    let mut terminated = server.terminate_backends("nobody").await;
    for _ in 0..20 {
        if terminated.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        terminated = server.terminate_backends("nobody").await;
    }
    assert_eq!(terminated?, 0);
    assert!(server.set_max_connections(1).await.is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_server_removes_it() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let dir = server.state_dir();
    let pid = server.postmaster_pid()?;
    server.freeze().await?;
    drop(server);
    // Even a frozen server is stopped and removed at once.
    assert!(!dir.exists());
    assert!(!support::process_alive(pid));
    Ok(())
}
