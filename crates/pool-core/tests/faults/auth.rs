//! Fault 6: a wrong password. The server refuses it at once; the pool must say so at once,
//! not after its acquire timeout, and must never echo the password.

use std::time::Duration;

use pool_config::Secret;
use pool_core::PoolError;
use pool_testkit::APP_PASSWORD;
use tokio::time::Instant;

use crate::Fixture;
use crate::support::{SLACK, TestResult, WRONG_PASSWORD, assert_no_secrets, error_text, logged};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_fails_at_once_with_an_authentication_error() -> TestResult {
    let mut f = Fixture::start("auth").await?;
    f.settings.password = Secret::new(WRONG_PASSWORD);
    f.settings.acquire_timeout = Duration::from_secs(10);
    let pool = crate::support::pool("auth", &f.settings);

    let started = Instant::now();
    let acquires = futures_util::future::join_all((0..4).map(|_| pool.acquire())).await;
    let elapsed = started.elapsed();
    let mut texts = Vec::new();
    for result in acquires {
        let error = result.expect_err("the server refuses the password");
        assert!(
            matches!(error, PoolError::Authentication { .. }),
            "an authentication error, not a timeout: {error:?}"
        );
        let text = error_text(&error);
        assert!(
            text.contains("could not authenticate")
                && text.contains("password authentication failed for user"),
            "{text}"
        );
        texts.push(text);
    }
    assert!(
        elapsed < f.settings.acquire_timeout,
        "reported before the acquire timeout ran out ({elapsed:?})"
    );
    assert!(logged("connect failed"), "the refused connect is logged");
    assert_eq!(f.backends().await, 0);

    // Rotating to the right password fixes the pool in place.
    let rotated = Instant::now();
    pool.connector().set_password(APP_PASSWORD);
    // Logins stay refused until the backoff after the last refusal has passed (at most the
    // test pool's 500 ms cap): an acquire meanwhile fails at once with the refusal. On an
    // idle machine the first acquire after the rotation often comes that soon.
    let mut conn = loop {
        match pool.acquire().await {
            Ok(conn) => break conn,
            Err(PoolError::Authentication { .. })
                if rotated.elapsed() < Duration::from_millis(500) + SLACK =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => return Err(error.into()),
        }
    };
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut *conn).await?;
    assert_eq!(one, 1);
    let recovered = rotated.elapsed();
    drop(conn);
    let stats = pool.stats();
    eprintln!(
        "fault 6 (wrong password): 4 concurrent acquires failed after {elapsed:?} with \"{}\"; \
         after rotating the password the next acquire succeeded in {recovered:?}",
        texts[0]
    );
    let close = pool.close(Duration::from_secs(2)).await;
    assert_no_secrets(&[
        &texts.join("\n"),
        &format!("{stats:?} {close:?} {pool:?} {:?}", pool.connector()),
        &format!("{:?}", f.settings),
    ]);
    Ok(())
}

/// A wrong password under load: every caller learns it at once, and the server sees logins
/// at the backoff pace (at most `max_connections` per backoff step), not one per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_under_load_costs_the_server_logins_at_the_backoff_pace() -> TestResult {
    let mut f = Fixture::start("auth-storm").await?;
    // A login (SCRAM in a debug build, on a busy machine) can take over a second: the
    // refusal must arrive, not the connect timeout.
    f.patient(Duration::from_secs(5), Duration::from_secs(6));
    f.settings.password = Secret::new(WRONG_PASSWORD);
    let pool = crate::support::pool("auth-storm", &f.settings);
    let log = f.server.state_dir().join("postgres.log");
    let refused_logins = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("password authentication failed")
            .count()
    };
    let before = refused_logins();
    let started = Instant::now();
    let mut callers = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let burst = futures_util::future::join_all((0..100).map(|_| pool.acquire())).await;
        for outcome in burst {
            assert!(
                matches!(outcome, Err(PoolError::Authentication { .. })),
                "every caller learns the password is wrong: {outcome:?}"
            );
            callers += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let logins = refused_logins() - before;
    eprintln!(
        "fault 6b (wrong password under load): {callers} callers in 3 s all failed at once; \
         the server logged {logins} refused logins ({} connect failures counted by the pool)",
        pool.stats().connect_failures
    );
    assert!(callers >= 1000, "the load ran: {callers} callers");
    assert!(
        logins <= callers / 10,
        "{logins} logins for {callers} callers: logins must go at the backoff pace"
    );
    Ok(())
}
