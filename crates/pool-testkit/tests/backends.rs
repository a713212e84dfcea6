//! Each backend starts a server that answers a query with the testkit's roles, rejects a wrong
//! password, and leaves no process, container or directory behind once dropped.

mod support;

use pool_testkit::{APP_USER, Backend, TestDatabase, TestPostgres};
use sqlx::Connection as _;

async fn answers_as_app_user(server: &TestPostgres) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect_with(&server.app_options("postgres")).await?;
    let (user, one): (String, i32) = sqlx::query_as("SELECT current_user::text, 1")
        .fetch_one(&mut conn)
        .await?;
    assert_eq!(user, APP_USER);
    assert_eq!(one, 1);
    conn.close().await?;
    Ok(())
}

async fn rejects_a_wrong_password(server: &TestPostgres) {
    let wrong = server.app_options("postgres").password("not-the-password");
    let error = sqlx::PgConnection::connect_with(&wrong)
        .await
        .expect_err("a wrong password must be rejected");
    let code = error
        .as_database_error()
        .and_then(|e| e.code().map(|c| c.into_owned()));
    // 28P01: invalid_password (scram-sha-256 over TCP).
    assert_eq!(code.as_deref(), Some("28P01"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn native_backend_serves_and_cleans_up() -> anyhow::Result<()> {
    let server = TestPostgres::start(Backend::Native).await?;
    assert_eq!(server.backend(), Backend::Native);
    answers_as_app_user(&server).await?;
    rejects_a_wrong_password(&server).await;
    let dir = server.state_dir().expect("native servers have a directory");
    let pid = support::postmaster_pid(&dir).expect("a running server has a postmaster.pid");
    assert!(dir.exists() && support::process_alive(pid));
    drop(server);
    support::eventually("the postmaster", || !support::process_alive(pid)).await;
    support::eventually("the state directory", || !dir.exists()).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_backend_serves_and_cleans_up() -> anyhow::Result<()> {
    if !support::docker_available() {
        pool_testkit::skip("docker", "no Docker engine answers here");
        return Ok(());
    }
    let server = TestPostgres::start(Backend::Docker).await?;
    assert_eq!(server.backend(), Backend::Docker);
    answers_as_app_user(&server).await?;
    rejects_a_wrong_password(&server).await;
    let id = server
        .container_id()
        .expect("docker servers have a container")
        .to_owned();
    let dir = server.state_dir().expect("docker servers have a directory");
    assert!(support::container_exists(&id));
    drop(server);
    support::eventually("the container", || !support::container_exists(&id)).await;
    support::eventually("the state directory", || !dir.exists()).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn url_backend_uses_the_named_server() -> anyhow::Result<()> {
    // The url backend pointed at a native server started for the purpose.
    let native = TestPostgres::start(Backend::Native).await?;
    let server = TestPostgres::from_url(&native.superuser_url()).await?;
    assert_eq!(server.backend(), Backend::Url);
    assert_eq!(server.port(), native.port());
    answers_as_app_user(&server).await?;
    rejects_a_wrong_password(&server).await;
    assert!(server.state_dir().is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn test_database_is_fresh_owned_by_the_app_role_and_dropped() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let mut conn = sqlx::PgConnection::connect_with(&db.app_options()).await?;
    sqlx::query("CREATE TABLE t (id int)")
        .execute(&mut conn)
        .await?;
    let owner: String = sqlx::query_scalar(
        "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = current_database()",
    )
    .fetch_one(&mut conn)
    .await?;
    assert_eq!(owner, APP_USER);
    let other = TestDatabase::create().await?;
    assert_ne!(db.name(), other.name());

    let name = db.name().to_owned();
    let mut admin = other.admin_connection().await?;
    // Still connected: the drop must force the session out.
    drop(db);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_one(&mut admin)
        .await?;
    assert_eq!(left, 0);
    assert!(
        conn.ping().await.is_err(),
        "the session of a dropped database is closed"
    );
    Ok(())
}
