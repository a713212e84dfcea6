//! What the public probes tell whoever calls them: a status and a fixed category, never the
//! driver's message (which names the user, the database and the client's address), server
//! facts or statistics. The operator report keeps the details.

#![cfg(feature = "http")]

mod support;

use std::time::Duration;

use pool_health::{Category, HealthReport, Status, keys};
use pool_testkit::{APP_PASSWORD, APP_USER, TestDatabase};
use sqlx::postgres::PgConnectOptions;
use support::{checker, json, pool, quick};

const MISSING_DATABASE: &str = "servio_no_such_database";

/// The public readiness report of a pool over `options`, as a report and as served over
/// HTTP, and the operator's full report.
async fn reports(options: PgConnectOptions) -> anyhow::Result<(HealthReport, String, String)> {
    let pool = pool("default", options, 2, 0);
    let checker = checker(quick(), vec![pool.clone()]);
    let public = checker.ready().await.public();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(pool_health::http::serve(listener, checker.clone()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut served = String::new();
    for path in ["/health/ready", "/health/live"] {
        let response = client.get(format!("{base}{path}")).send().await?;
        served.push_str(&response.text().await?);
    }
    server.abort();
    let operator = json(&checker.report().await);
    pool.close(Duration::from_secs(1)).await;
    Ok((public, served, operator))
}

#[track_caller]
fn assert_discloses_nothing(what: &str, public: &HealthReport, served: &str, secrets: &[&str]) {
    let text = format!("{}\n{served}\n{public:?}", json(public));
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "{what}: the public probe shows {secret:?}:\n{text}"
        );
    }
    assert!(
        !text.contains("127.0.0.1"),
        "{what}: the client address shows:\n{text}"
    );
    assert!(
        !text.contains("observedValue"),
        "{what}: values show:\n{text}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_reported_as_authentication_and_nothing_more() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let (public, served, operator) = reports(db.app_options().password("not-the-password")).await?;
    assert_eq!(public.status(), Status::Fail, "{}", json(&public));
    let connectivity = public
        .find(keys::CONNECTIVITY, "default")
        .expect("connectivity");
    assert_eq!(connectivity.category(), Some(Category::Authentication));
    assert_eq!(connectivity.output(), Some("authentication"));
    assert_eq!(public.output(), Some("authentication"));
    assert_discloses_nothing("wrong password", &public, &served, &[APP_USER, db.name()]);
    // The operator report says what happened, with the user the server refused.
    assert!(operator.contains(APP_USER), "{operator}");
    assert!(!operator.contains(APP_PASSWORD) && !served.contains(APP_PASSWORD));
    Ok(())
}

#[tokio::test]
async fn a_missing_database_is_reported_as_authentication_and_nothing_more() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let (public, served, operator) = reports(db.app_options().database(MISSING_DATABASE)).await?;
    assert_eq!(public.status(), Status::Fail, "{}", json(&public));
    let connectivity = public
        .find(keys::CONNECTIVITY, "default")
        .expect("connectivity");
    assert_eq!(connectivity.category(), Some(Category::Authentication));
    assert_discloses_nothing(
        "missing database",
        &public,
        &served,
        &[APP_USER, MISSING_DATABASE, db.name()],
    );
    assert!(operator.contains(MISSING_DATABASE), "{operator}");
    Ok(())
}
