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
