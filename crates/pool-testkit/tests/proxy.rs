//! Each `FaultProxy` mode does what it says.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pool_testkit::{FaultProxy, ProxyMode, TestDatabase, TestServer};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};

fn through(proxy: &FaultProxy, db: &TestDatabase) -> PgConnectOptions {
    db.app_options().host(&proxy.host()).port(proxy.port())
}

fn target(db: &TestDatabase) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], db.port()))
}

#[tokio::test(flavor = "multi_thread")]
async fn pass_forwards_queries() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let proxy = FaultProxy::start(target(&db)).await?;
    let mut conn = PgConnection::connect_with(&through(&proxy, &db)).await?;
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await?;
    assert_eq!(one, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn latency_delays_every_round_trip() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let proxy = FaultProxy::start(target(&db)).await?;
    let mut conn = PgConnection::connect_with(&through(&proxy, &db)).await?;
    let delay = Duration::from_millis(200);
    proxy.set_mode(ProxyMode::Latency(delay));
    let started = Instant::now();
    sqlx::raw_sql("SELECT 1").execute(&mut conn).await?;
    // The request and the answer are each held back: at least the delay, once each way.
    assert!(started.elapsed() >= delay * 2, "{:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_breaks_open_and_new_connections() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let proxy = FaultProxy::start(target(&db)).await?;
    let mut open = PgConnection::connect_with(&through(&proxy, &db)).await?;
    proxy.set_mode(ProxyMode::Reset);
    assert!(sqlx::query("SELECT 1").execute(&mut open).await.is_err());
    let error = PgConnection::connect_with(&through(&proxy, &db))
        .await
        .expect_err("a new connection is reset");
    assert!(matches!(error, sqlx::Error::Io(_)), "{error:?}");
    proxy.set_mode(ProxyMode::Pass);
    PgConnection::connect_with(&through(&proxy, &db)).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn blackhole_accepts_and_never_answers() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let proxy = FaultProxy::start(target(&db)).await?;
    let mut open = PgConnection::connect_with(&through(&proxy, &db)).await?;
    proxy.set_mode(ProxyMode::Blackhole);
    let options = through(&proxy, &db);
    let connect = PgConnection::connect_with(&options);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), connect)
            .await
            .is_err(),
        "a connect through a blackhole must hang"
    );
    let query = sqlx::query("SELECT 1").execute(&mut open);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), query)
            .await
            .is_err(),
        "an open connection must stop answering"
    );
    assert_eq!(proxy.mode(), ProxyMode::Blackhole);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn set_target_sends_new_connections_to_the_other_server() -> anyhow::Result<()> {
    let primary = TestServer::start().await?;
    let standby = TestServer::start().await?;
    let primary_db = primary.database().await?;
    let proxy = FaultProxy::start(SocketAddr::from(([127, 0, 0, 1], primary.port()))).await?;
    let port_of = |options: PgConnectOptions| async move {
        let mut conn = PgConnection::connect_with(&options).await?;
        let port: i32 = sqlx::query_scalar("SELECT inet_server_port()")
            .fetch_one(&mut conn)
            .await?;
        anyhow::Ok(u16::try_from(port)?)
    };
    let options = primary_db
        .app_options()
        .host(&proxy.host())
        .port(proxy.port())
        .database("postgres");
    assert_eq!(port_of(options.clone()).await?, primary.port());
    proxy.set_target(SocketAddr::from(([127, 0, 0, 1], standby.port())));
    assert_eq!(port_of(options).await?, standby.port());
    Ok(())
}
