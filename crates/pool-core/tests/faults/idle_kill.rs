//! Fault 14: the server ends sessions the pool holds: idle ones
//! (`idle_session_timeout`, SQLSTATE 57P05) and ones left idle inside a transaction
//! (`idle_in_transaction_session_timeout`, 25P03), set on the application role as a DBA
//! would.

use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::join_all;
use pool_core::{CloseReason, PgConnector, Pool};
use sqlx::postgres::PgConnection;
use sqlx::{Connection as _, Executor as _};
use tokio::time::Instant;

use crate::Fixture;
use crate::support::{SLACK, TestResult, Watch, assert_no_secrets, error_text, select_one};

/// What the server allows a session to stay idle: long enough that opening the pool's
/// every connection on a busy machine does not run into it.
const SERVER_TIMEOUT: &str = "2s";
/// How long the test leaves the pool idle: well past [`SERVER_TIMEOUT`].
const IDLE_FOR: Duration = Duration::from_millis(3500);

/// Sets `setting` for the application role in the fixture's database; sessions opened
/// from now on have it.
async fn set_on_role(f: &Fixture, setting: &str, value: &str) -> TestResult {
    let mut admin = PgConnection::connect_with(&f.admin()).await?;
    let sql = format!(
        "ALTER ROLE {} IN DATABASE \"{}\" SET {setting} = '{value}'",
        pool_testkit::APP_USER,
        f.db.name()
    );
    admin.execute(sqlx::AssertSqlSafe(sql)).await?;
    admin.close().await?;
    Ok(())
}

/// The errors of each round of `max` concurrent callers after the server ended every idle
/// session: through `run()`, then on `&mut *conn`, then through `run()` again.
struct Rounds {
    run: Vec<String>,
    direct: Vec<String>,
    again: Vec<String>,
    /// From the first caller to the end of the first round in which no caller failed.
    served_after: Option<Duration>,
}

impl Rounds {
    /// Runs the rounds (the third if `again`), each bounded by `f`'s acquire and query
    /// timeouts.
    async fn play(f: &Fixture, pool: &Pool<PgConnector>, again: bool) -> Self {
        let limit =
            f.settings.acquire_timeout + f.settings.query_timeout.unwrap_or_default() + SLACK;
        let bounded = |round| async move {
            tokio::time::timeout(limit, round)
                .await
                .expect("every caller of a round returns by its deadline")
        };
        let started = Instant::now();
        let mut served_after = None;
        let mut note = |errors: Vec<String>| {
            if errors.is_empty() && served_after.is_none() {
                served_after = Some(started.elapsed());
            }
            errors
        };
        let run = note(bounded(round_through_run(pool).boxed()).await);
        let direct = note(bounded(round_on_checkouts(pool).boxed()).await);
        let again = if again {
            note(bounded(round_through_run(pool).boxed()).await)
        } else {
            Vec::new()
        };
        Rounds {
            run,
            direct,
            again,
            served_after,
        }
    }

    fn failures(&self) -> usize {
        self.run.len() + self.direct.len() + self.again.len()
    }

    fn sample(&self) -> Vec<&String> {
        self.run
            .iter()
            .chain(&self.direct)
            .chain(&self.again)
            .take(3)
            .collect()
    }
}

async fn round_through_run(pool: &Pool<PgConnector>) -> Vec<String> {
    let max = pool.stats().max;
    let results = join_all((0..max).map(|_| pool.run(select_one))).await;
    results
        .into_iter()
        .filter_map(|r| r.err().map(|e| error_text(&e)))
        .collect()
}

async fn round_on_checkouts(pool: &Pool<PgConnector>) -> Vec<String> {
    let max = pool.stats().max;
    let results = join_all((0..max).map(|_| async {
        let mut conn = pool.acquire().await.map_err(|e| error_text(&e))?;
        sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| error_text(&e))
    }))
    .await;
    results.into_iter().filter_map(Result::err).collect()
}

/// Opens the pool's every connection, lets the server end them all while idle, then runs
/// three rounds of callers.
async fn after_idle_sessions_end(
    tag: &str,
    validate_after_idle: Duration,
) -> Result<(Fixture, Pool<PgConnector>, Watch, Rounds), crate::BoxError> {
    let mut f = Fixture::start(tag).await?;
    f.patient(Duration::from_secs(5), Duration::from_secs(10));
    set_on_role(&f, "idle_session_timeout", SERVER_TIMEOUT).await?;
    f.settings.validate_after_idle = Some(validate_after_idle);
    let pool = crate::support::pool(tag, &f.settings);
    let watch = Watch::start(&pool, f.admin(), f.app());
    f.assert_full_capacity(&pool).await;
    tokio::time::sleep(IDLE_FOR).await;
    assert_eq!(
        f.backends_until(|n| n == 0).await,
        0,
        "the server ended every idle session"
    );
    let rounds = Rounds::play(&f, &pool, true).await;
    Ok((f, pool, watch, rounds))
}

/// Ends the test: full capacity, counts, at most max server connections all along, no
/// secret anywhere.
async fn finish(f: &Fixture, pool: &Pool<PgConnector>, watch: Watch, rounds: &Rounds) {
    let stats = pool.stats();
    assert_eq!(stats.in_use, 0, "{stats:?}");
    assert!(stats.idle + stats.in_use == stats.total && stats.total <= stats.max);
    f.assert_full_capacity(pool).await;
    watch
        .finish()
        .await
        .assert_bounded(f.settings.max_connections);
    let close = pool.close(Duration::from_secs(2)).await;
    let errors = [&rounds.run[..], &rounds.direct[..], &rounds.again[..]].concat();
    assert_no_secrets(&[&format!("{stats:?} {close:?}"), &errors.join("\n")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_the_server_ended_while_idle_are_replaced_when_validation_comes_first()
-> TestResult {
    // Validation after 200 ms idle, shorter than the server's 2 s.
    let (f, pool, watch, rounds) =
        after_idle_sessions_end("idle-kill-validated", Duration::from_millis(200)).await?;
    assert_eq!(rounds.failures(), 0, "{:?}", rounds.sample());
    let stats = pool.stats();
    // No caller failed, so every ended session was caught by validation before use. A ping
    // that reads the server's goodbye (57P05) or the closed socket after it counts the
    // connection as broken (a session the server ended is a broken connection); one that
    // ran out of time, as failing validation.
    let replaced =
        stats.closed.get(CloseReason::ValidationFailed) + stats.closed.get(CloseReason::Broken);
    assert!(
        replaced >= u64::from(stats.max),
        "each ended session failed validation: {stats:?}"
    );
    eprintln!(
        "fault 14 (server ends idle sessions after {SERVER_TIMEOUT}, validate_after_idle \
         200 ms): no caller saw an error; {replaced} connections failed validation and were \
         replaced before use; the first {} callers were served in {:?}",
        stats.max, rounds.served_after,
    );
    finish(&f, &pool, watch, &rounds).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_server_ended_while_idle_fails_at_most_the_one_query_that_meets_it()
-> TestResult {
    // The default validate_after_idle (5 s) is longer than the server's timeout: ended
    // sessions are handed out unchecked. Each may fail the one query that finds it dead,
    // never a second caller.
    let (f, pool, watch, rounds) =
        after_idle_sessions_end("idle-kill-once", Duration::from_secs(5)).await?;
    let max = f.settings.max_connections as usize;
    eprintln!(
        "fault 14 (server ends idle sessions after {SERVER_TIMEOUT}, validate_after_idle \
         5 s): {} of {max} callers through run() failed, then {} of {max} on checkouts, then \
         {} of {max} through run(); e.g. {:?}; the first round with no failure ended {:?} \
         after the first caller; closed {:?}",
        rounds.run.len(),
        rounds.direct.len(),
        rounds.again.len(),
        rounds.sample(),
        rounds.served_after,
        pool.stats().closed,
    );
    assert!(
        rounds.failures() <= max,
        "{} failures for {max} ended sessions: an ended session went back to the pool",
        rounds.failures()
    );
    assert!(rounds.again.is_empty(), "{:?}", rounds.again);
    finish(&f, &pool, watch, &rounds).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "finding: a session the server ended while idle (57P05) is handed out unchecked \
            when it was idle less than validate_after_idle, and fails the caller's query; \
            the server's goodbye is already in the socket, so the pool could see it without \
            a round trip"]
async fn sessions_the_server_ended_while_idle_never_fail_a_callers_query() -> TestResult {
    let (f, pool, watch, rounds) =
        after_idle_sessions_end("idle-kill-never", Duration::from_secs(5)).await?;
    assert_eq!(rounds.failures(), 0, "{:?}", rounds.sample());
    finish(&f, &pool, watch, &rounds).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_idle_in_transaction_fails_only_its_holder() -> TestResult {
    let mut f = Fixture::start("idle-in-tx").await?;
    f.patient(Duration::from_secs(5), Duration::from_secs(10));
    set_on_role(&f, "idle_in_transaction_session_timeout", SERVER_TIMEOUT).await?;
    // Connections used moments ago are not validated: only the release can catch them.
    f.settings.validate_after_idle = Some(Duration::from_secs(60));
    let pool = crate::support::pool("idle-in-tx", &f.settings);
    let watch = Watch::start(&pool, f.admin(), f.app());
    f.assert_full_capacity(&pool).await;
    let closed_before = pool.stats().closed.total();

    // One holder in an sqlx transaction, one after a raw BEGIN, both idle past the limit.
    let mut first = pool.acquire().await?;
    let mut second = pool.acquire().await?;
    let mut tx = first.begin().await?;
    sqlx::query("SELECT 1").execute(&mut *tx).await?;
    sqlx::raw_sql("BEGIN").execute(&mut *second).await?;
    tokio::time::sleep(IDLE_FOR).await;
    let in_tx = sqlx::query("SELECT 1")
        .execute(&mut *tx)
        .await
        .expect_err("the server ended the session");
    let raw = sqlx::query("SELECT 1")
        .execute(&mut *second)
        .await
        .expect_err("the server ended the session");
    drop(tx);
    drop(first);
    drop(second);

    // Every other caller is served by live connections.
    let rounds = Rounds::play(&f, &pool, false).await;
    let stats = pool.stats();
    eprintln!(
        "fault 14 (server ends sessions idle in a transaction after {SERVER_TIMEOUT}): the \
         holder in an sqlx transaction saw \"{in_tx}\", the holder after a raw BEGIN saw \
         \"{raw}\"; afterwards {} of 16 callers failed (e.g. {:?}), the first 8 were served \
         {:?} after the holders let go; closed {:?}",
        rounds.failures(),
        rounds.sample(),
        rounds.served_after,
        stats.closed,
    );
    assert_eq!(rounds.failures(), 0, "{:?}", rounds.sample());
    assert_eq!(
        stats.closed.total() - closed_before,
        2,
        "both ended sessions were closed: {stats:?}"
    );
    finish(&f, &pool, watch, &rounds).await;
    assert_no_secrets(&[&error_text(&in_tx), &error_text(&raw)]);
    Ok(())
}
