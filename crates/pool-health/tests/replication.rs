//! Pools over several hosts. On a real replicating cluster, the operator report names the
//! role of the server each pool reaches and a standby's replication lag; the public probe
//! shows neither. Without `show_hosts`, no host of a list shows in any report.

mod support;

use std::time::Duration;

use pool_config::{PoolSettings, Profile, Secret, SslMode, TargetSessionAttrs};
use pool_core::{PgConnector, Pool};
use pool_health::{ServerRole, keys};
use pool_testkit::{APP_PASSWORD, APP_USER, ReplicatedCluster};
use support::{checker, json, pool, quick};

/// A `prefer-standby` pool over both nodes, the primary listed first.
fn prefer_standby(cluster: &ReplicatedCluster) -> Pool<PgConnector> {
    let mut s = PoolSettings::for_profile(Profile::Test);
    s.host = "127.0.0.1,127.0.0.1".to_owned();
    s.port = format!("{},{}", cluster.port(0), cluster.port(1))
        .parse()
        .expect("ports");
    s.target_session_attrs = TargetSessionAttrs::PreferStandby;
    s.database = cluster.database().to_owned();
    s.username = APP_USER.to_owned();
    s.password = Secret::new(APP_PASSWORD);
    s.ssl_mode = SslMode::Disable;
    s.min_connections = 0;
    Pool::from_settings("replica", &s).expect("valid settings")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_report_names_each_servers_role_and_a_standbys_lag() -> anyhow::Result<()> {
    let cluster = ReplicatedCluster::start(1).await?;
    cluster.wait_replayed(1, Duration::from_secs(30)).await?;
    let primary = pool("default", cluster.app_options(0), 2, 0);
    let replica = prefer_standby(&cluster);
    let checker = checker(
        pool_health::HealthOptions {
            timeout: Duration::from_secs(5),
            ..quick()
        },
        vec![primary.clone(), replica.clone()],
    );
    let report = checker.report().await;
    let text = json(&report);
    let facts = report.server_facts("default").expect("facts of default");
    assert_eq!(facts.role, ServerRole::Primary, "{text}");
    assert_eq!(facts.replication_lag_ms, None);
    let facts = report.server_facts("replica").expect("facts of replica");
    assert_eq!(facts.role, ServerRole::Standby, "{text}");
    let lag = facts.replication_lag_ms.expect("a standby reports its lag");
    println!("standby replication lag: {lag} ms");
    let role = report.find(keys::SERVER_ROLE, "replica").expect("role");
    assert!(json(&report).contains("\"standby\""), "{text}");
    assert!(role.output().is_none());
    assert!(
        report
            .find(keys::SERVER_REPLICATION_LAG, "replica")
            .is_some()
    );
    assert!(
        report
            .find(keys::SERVER_REPLICATION_LAG, "default")
            .is_none()
    );

    let public = json(&checker.ready().await.public());
    assert!(
        !public.contains("standby") && !public.contains("primary"),
        "the public probe shows the role: {public}"
    );
    primary.close(Duration::from_secs(1)).await;
    replica.close(Duration::from_secs(1)).await;
    Ok(())
}

#[tokio::test]
async fn no_host_of_a_list_shows_without_show_hosts() -> anyhow::Result<()> {
    let mut s = PoolSettings::for_profile(Profile::Test);
    s.host = "no-such-host-a.invalid,127.0.0.1".to_owned();
    s.port = "5432,1".parse().expect("ports");
    s.password = Secret::new(APP_PASSWORD);
    s.ssl_mode = SslMode::Disable;
    s.connect_timeout = Duration::from_millis(500);
    s.min_connections = 0;
    let pool = Pool::from_settings("default", &s).expect("valid settings");
    let checker = checker(quick(), vec![pool.clone()]);
    let report = json(&checker.report().await);
    assert!(report.contains("\"fail\""), "{report}");
    for host in ["no-such-host-a.invalid", "127.0.0.1"] {
        assert!(!report.contains(host), "{host} shows: {report}");
    }
    pool.close(Duration::from_secs(1)).await;
    Ok(())
}
