//! Which server a connection goes to: `prefer-standby` through outages of either side,
//! `load_balance_hosts = random`, a host that hangs (frozen or blackholed) and one that does
//! not exist.

use std::time::Duration;

use pool_config::{LoadBalanceHosts, TargetSessionAttrs};
use pool_core::{Connector as _, PgConnector};
use std::net::SocketAddr;

use pool_testkit::{FaultProxy, ProxyMode, RestartMode};
use tokio::time::Instant;

use crate::support::{Load, SLACK, TestResult};
use crate::{address, cluster, pool, read, servers_of_all, settings, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefer_standby_reads_through_outages_and_returns_to_the_standby() -> TestResult {
    let cluster = cluster(1).await?;
    let (p0, p1) = (cluster.port(0), cluster.port(1));
    let s = settings(
        &cluster,
        &[p0, p1],
        TargetSessionAttrs::PreferStandby,
        "prefer",
    );
    let fallback = Duration::from_secs(2);
    let pool = pool("prefer", &s, fallback);
    for (server, in_recovery) in servers_of_all(&pool).await? {
        assert_eq!(
            server,
            address(p1),
            "the primary is listed first, the standby wins"
        );
        assert!(in_recovery);
    }
    let load = Load::start_with(&pool, 4, read);

    // The primary's outage does not touch the reads.
    let outage = Instant::now();
    cluster.stop(0, RestartMode::Immediate).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.start_again(0).await?;

    // No standby answers: the pool moves to the primary.
    let standby_down = Instant::now();
    cluster.stop(1, RestartMode::Fast).await?;
    let bound = Duration::from_secs(15);
    let moved = within(bound, || async {
        Ok(pool.server().as_deref() == Some(address(p0).as_str()))
    })
    .await?;
    let Some(moved) = moved else {
        panic!("the pool did not move to the primary within {bound:?}");
    };
    println!("moved to the primary {moved:?} after the standby stopped (bound {bound:?})");
    for (server, in_recovery) in servers_of_all(&pool).await? {
        assert_eq!(server, address(p0));
        assert!(!in_recovery);
    }

    // The standby answers again: fallback connections retire within `fallback`, and every
    // connection is on the standby once more.
    cluster.start_again(1).await?;
    let back_bound = fallback + Duration::from_secs(15);
    let back = within(back_bound, || async {
        Ok(servers_of_all(&pool)
            .await?
            .iter()
            .all(|(server, in_recovery)| *server == address(p1) && *in_recovery))
    })
    .await?;
    let Some(back) = back else {
        panic!("the pool did not return to the standby within {back_bound:?}");
    };
    println!("every connection back on the standby after {back:?} (bound {back_bound:?})");
    assert!(pool.stats().server_changes >= 2, "to the primary and back");

    let report = load.stop().await;
    assert_eq!(
        report.failures_since(outage) - report.failures_since(standby_down),
        0,
        "reads failed during the primary's outage: {:?}",
        report.sample_errors()
    );
    report.assert_acquires_bounded(s.acquire_timeout);
    pool.close(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_load_balancing_spreads_connections_over_two_standbys() -> TestResult {
    let cluster = cluster(2).await?;
    let (p1, p2) = (cluster.port(1), cluster.port(2));
    let mut s = settings(&cluster, &[p1, p2], TargetSessionAttrs::Standby, "balance");
    s.load_balance_hosts = LoadBalanceHosts::Random;
    let connector = PgConnector::from_settings(&s);
    const CONNECTS: usize = 200;
    // Binomial(200, 1/2): below 60 is more than 5.6 standard deviations off.
    const AT_LEAST: usize = 60;
    let mut counts = [0usize; 2];
    let start = Instant::now();
    for _ in 0..CONNECTS {
        let connected = connector.connect().await?;
        let server = connected
            .server
            .as_ref()
            .map(|s| s.index)
            .expect("a server");
        counts[server] += 1;
        connector.close(connected.connection).await;
    }
    println!(
        "{CONNECTS} connects over two standbys: {counts:?} in {:?} (each at least {AT_LEAST})",
        start.elapsed()
    );
    assert!(counts.iter().all(|&n| n >= AT_LEAST), "{counts:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_host_costs_one_connect_timeout_and_a_wrong_one_nothing() -> TestResult {
    let cluster = cluster(1).await?;
    let (p0, p1) = (cluster.port(0), cluster.port(1));

    // A host that does not resolve, listed first, does not fail the pool.
    let mut s = settings(&cluster, &[p0, p1], TargetSessionAttrs::Any, "wrong-host");
    s.host = "no-such-host.invalid,127.0.0.1".to_owned();
    s.port = format!("{p0},{p1}").parse().expect("ports");
    let wrong = pool("wrong-host", &s, Duration::from_secs(30));
    let mut conn = wrong.acquire().await?;
    assert_eq!(conn.server(), Some(address(p1).as_str()));
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut *conn).await?;
    assert_eq!(one, 1);
    drop(conn);
    wrong.close(Duration::from_secs(5)).await;

    // A frozen server listed first costs one connect_timeout, then the next host serves.
    let s = settings(&cluster, &[p0, p1], TargetSessionAttrs::Any, "hanging");
    let hanging = pool("hanging", &s, Duration::from_secs(30));
    cluster.freeze(0).await?;
    let start = Instant::now();
    let conn = hanging.acquire().await;
    let took = start.elapsed();
    cluster.thaw(0).await?;
    let conn = conn?;
    assert_eq!(conn.server(), Some(address(p1).as_str()));
    println!(
        "past a frozen first host in {took:?} (connect_timeout {:?}, bound plus {SLACK:?})",
        s.connect_timeout
    );
    assert!(took <= s.connect_timeout + SLACK, "{took:?}");
    drop(conn);
    hanging.close(Duration::from_secs(5)).await;

    // A blackholed host (it accepts and never answers, as a partition does) likewise.
    let proxy = FaultProxy::start(SocketAddr::from(([127, 0, 0, 1], p0))).await?;
    proxy.set_mode(ProxyMode::Blackhole);
    let s = settings(
        &cluster,
        &[proxy.port(), p1],
        TargetSessionAttrs::Any,
        "blackholed",
    );
    let blackholed = pool("blackholed", &s, Duration::from_secs(30));
    let start = Instant::now();
    let conn = blackholed.acquire().await?;
    let took = start.elapsed();
    assert_eq!(conn.server(), Some(address(p1).as_str()));
    println!(
        "past a blackholed first host in {took:?} (bound {:?})",
        s.connect_timeout + SLACK
    );
    assert!(took <= s.connect_timeout + SLACK, "{took:?}");
    drop(conn);
    blackholed.close(Duration::from_secs(5)).await;
    Ok(())
}

/// `check_writable` with several hosts and no `target_session_attrs`: a standby listed first
/// is skipped on connect, as `read-write` skips it, and every connection takes writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_writable_skips_a_standby_listed_first() -> TestResult {
    let cluster = cluster(1).await?;
    let (p0, p1) = (cluster.port(0), cluster.port(1));
    let mut s = settings(&cluster, &[p1, p0], TargetSessionAttrs::Any, "writable");
    s.check_writable = true;
    let pool = pool("writable", &s, Duration::from_secs(30));
    for (server, in_recovery) in servers_of_all(&pool).await? {
        assert_eq!(server, address(p0), "the standby listed first is skipped");
        assert!(!in_recovery);
    }
    sqlx::query("INSERT INTO writes DEFAULT VALUES")
        .execute(&pool)
        .await?;
    Ok(())
}
