//! The pool behind a real PgBouncer (Debian's 1.18, started by pool-testkit) with the
//! `pgbouncer` setting on. Session mode: everything works, and the pool recovers from a
//! server restart and from terminated backends. Transaction mode: simple-protocol
//! statements and explicit transactions work; an extended-protocol statement outside a
//! transaction can land its Parse and its Bind on two server connections, shown here
//! deterministically.

mod support;

use std::time::Duration;

use pool_config::{PgBouncerMode, PoolSettings};
use pool_core::{PgConnector, Pool};
use pool_testkit::{
    PgBouncer, PoolMode, RestartMode, SUPERUSER, SUPERUSER_PASSWORD, TestDatabase, TestServer,
};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use tokio::time::Instant;

use support::{
    BoxError, Load, TestResult, Watch, app_name, assert_no_secrets, capture_logs, error_text,
};

/// A server, a database on it, PgBouncer in front, and settings that reach the database
/// through PgBouncer with the `pgbouncer` setting on.
struct Bounced {
    server: TestServer,
    _db: TestDatabase,
    bouncer: PgBouncer,
    settings: PoolSettings,
}

async fn bounced(tag: &str, mode: PoolMode) -> Result<Bounced, BoxError> {
    capture_logs();
    let server = TestServer::start().await?;
    let db = server.database().await?;
    let bouncer = PgBouncer::start(&server, mode).await?;
    let mut settings = support::settings(bouncer.host(), bouncer.port(), &db, &app_name(tag));
    settings.pgbouncer = Some(match mode {
        PoolMode::Session => PgBouncerMode::Session,
        _ => PgBouncerMode::Transaction,
    });
    // Set on purpose: behind PgBouncer it must not be sent as a startup option.
    settings.statement_timeout = Some(Duration::from_secs(10));
    Ok(Bounced {
        server,
        _db: db,
        bouncer,
        settings,
    })
}

impl Bounced {
    fn pool(&self) -> Pool<PgConnector> {
        support::pool("bounced", &self.settings)
    }

    /// Loads the pool, runs `fault`, and checks the pool serves again without a rebuild,
    /// every acquire ending by its deadline and the counts holding; returns how long after
    /// the fault the first query succeeded.
    async fn recovers_from<F: std::future::Future<Output = Result<(), BoxError>>>(
        &self,
        pool: &Pool<PgConnector>,
        fault: F,
    ) -> Result<(Duration, usize), BoxError> {
        let admin = support::admin_options(self.server.host(), self.server.port());
        let watch = Watch::start(pool, admin, &self.settings.application_name);
        let load = Load::start(pool, 16);
        assert!(
            load.first_ok_since(Instant::now(), Duration::from_secs(10))
                .await
                .is_some()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        fault.await?;
        let healed = Instant::now();
        let Some(recovered) = load.first_ok_since(healed, Duration::from_secs(15)).await else {
            let report = load.stop().await;
            panic!(
                "the pool does not serve again through PgBouncer: {:?}",
                report.sample_errors()
            );
        };
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let report = load.stop().await;
        let seen = watch.finish().await;
        report.assert_acquires_bounded(self.settings.acquire_timeout);
        // PgBouncer keeps its own server connections: only the pool's counts are ours.
        assert!(seen.violations.is_empty(), "{:?}", seen.violations);
        assert_eq!(
            report.failures_since(recovered + Duration::from_secs(1)),
            0,
            "{:?}",
            report.sample_errors()
        );
        assert_no_secrets(&[&report.errors().join("\n")]);
        Ok((recovered - healed, report.errors().len()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_mode_serves_prepared_queries_and_transactions() -> TestResult {
    let b = bounced("bouncer-session", PoolMode::Session).await?;
    let pool = b.pool();
    // Session mode keeps sqlx's statement cache: a statement run 50 times is prepared once
    // on the server, not left behind 50 times.
    let mut conn = pool.acquire().await?;
    for i in 0..50 {
        let got: i32 = sqlx::query_scalar("SELECT $1::int4")
            .bind(i)
            .fetch_one(&mut *conn)
            .await?;
        assert_eq!(got, i);
    }
    let prepared: i64 = sqlx::raw_sql("SELECT count(*) FROM pg_prepared_statements")
        .fetch_one(&mut *conn)
        .await
        .map(|row| sqlx::Row::get(&row, 0))?;
    assert_eq!(prepared, 1, "one server-side statement for one query text");
    drop(conn);
    sqlx::raw_sql("CREATE TABLE t (id int)")
        .execute(&pool)
        .await?;
    for i in 0..20 {
        let got: i32 = sqlx::query_scalar("SELECT $1::int4")
            .bind(i)
            .fetch_one(&pool)
            .await?;
        assert_eq!(got, i);
    }
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query("INSERT INTO t VALUES ($1)")
        .bind(1)
        .execute(&mut *tx)
        .await?;
    tx.rollback().await?;
    let mut tx = conn.begin().await?;
    sqlx::query("INSERT INTO t VALUES ($1)")
        .bind(2)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let ids: Vec<i32> = sqlx::query_scalar("SELECT id FROM t")
        .fetch_all(&mut *conn)
        .await?;
    assert_eq!(ids, [2]);
    // Session state lasts for the session.
    sqlx::raw_sql("SET search_path = pg_catalog, public")
        .execute(&mut *conn)
        .await?;
    let path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
        .fetch_one(&mut *conn)
        .await?;
    assert_eq!(path, "pg_catalog, public");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_mode_recovers_from_server_restarts() -> TestResult {
    let b = bounced("bouncer-restart", PoolMode::Session).await?;
    // After a failed server login (the server was down for a moment) PgBouncer refuses
    // clients for server_login_retry, 15 s by default: recovery through PgBouncer takes
    // that long at worst. The test shortens it.
    let mut admin = PgConnection::connect_with(&console(&b.bouncer)).await?;
    sqlx::raw_sql("SET server_login_retry = 1")
        .execute(&mut admin)
        .await?;
    let _ = admin.close().await;
    let pool = b.pool();
    for mode in [RestartMode::Fast, RestartMode::Immediate] {
        let (took, errors) = b
            .recovers_from(&pool, async { Ok(b.server.restart(mode).await?) })
            .await?;
        eprintln!(
            "fault 1 through PgBouncer (session mode, {mode:?} restart): {errors} failed ops; \
             first query succeeded {took:?} after the server was back"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_mode_recovers_from_terminated_backends() -> TestResult {
    let b = bounced("bouncer-terminate", PoolMode::Session).await?;
    let pool = b.pool();
    let app = b.settings.application_name.clone();
    let (took, errors) = b
        .recovers_from(&pool, async {
            let terminated = b.server.terminate_backends(&app).await?;
            assert!(
                terminated > 0,
                "PgBouncer's server connections carry the pool's name"
            );
            Ok(())
        })
        .await?;
    eprintln!(
        "fault 3 through PgBouncer (session mode, backends terminated): {errors} failed ops; \
         first query succeeded {took:?} after the terminate"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_mode_runs_simple_statements_and_explicit_transactions() -> TestResult {
    let b = bounced("bouncer-transaction", PoolMode::Transaction).await?;
    let pool = b.pool();
    sqlx::raw_sql("CREATE TABLE t (task int, i int)")
        .execute(&pool)
        .await?;
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    let mut conn = pool.acquire().await?;
                    let mut tx = conn.begin().await?;
                    // Unnamed statements: a named one would stay on the server connection
                    // and collide with another client's (see below).
                    sqlx::query("INSERT INTO t VALUES ($1, $2)")
                        .bind(task)
                        .bind(i)
                        .persistent(false)
                        .execute(&mut *tx)
                        .await?;
                    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t WHERE task = $1")
                        .bind(task)
                        .persistent(false)
                        .fetch_one(&mut *tx)
                        .await?;
                    assert_eq!(n, i64::from(i) + 1);
                    tx.commit().await?;
                    let sum: i64 = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "SELECT count(*) FROM t WHERE task = {task}"
                    )))
                    .fetch_one(&mut *conn)
                    .await
                    .map(|row| sqlx::Row::get(&row, 0))?;
                    assert_eq!(sum, i64::from(i) + 1);
                }
                Ok::<_, BoxError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let rows: i64 = sqlx::raw_sql("SELECT count(*) FROM t")
        .fetch_one(&pool)
        .await
        .map(|row| sqlx::Row::get(&row, 0))?;
    assert_eq!(rows, 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_pgbouncer_setting_the_startup_option_is_refused() -> TestResult {
    let b = bounced("bouncer-options", PoolMode::Transaction).await?;
    let mut plain = b.settings.clone();
    plain.pgbouncer = None;
    plain.acquire_timeout = Duration::from_secs(1);
    let refused = support::pool("plain", &plain)
        .acquire()
        .await
        .expect_err("PgBouncer refuses the statement_timeout startup option");
    let text = error_text(&refused);
    assert!(
        text.contains("unsupported startup parameter: options"),
        "{text}"
    );
    // The same settings with `pgbouncer = "transaction"` connect.
    let mut conn = b.pool().acquire().await?;
    sqlx::raw_sql("SELECT 1").execute(&mut *conn).await?;
    eprintln!("PgBouncer without the pgbouncer setting: {text}");
    assert_no_secrets(&[&text]);
    Ok(())
}

/// Superuser options for PgBouncer's admin console.
fn console(bouncer: &PgBouncer) -> PgConnectOptions {
    PgConnectOptions::new_without_pgpass()
        .host(bouncer.host())
        .port(bouncer.port())
        .username(SUPERUSER)
        .password(SUPERUSER_PASSWORD)
        .database("pgbouncer")
        .ssl_mode(PgSslMode::Disable)
}

/// The documented limit, made deterministic: PgBouncer hands out its idle server
/// connections round robin (`server_round_robin = 1`) and holds two, so the Parse/Sync
/// sqlx sends first goes to one and the Bind/Execute/Sync after it to the other, where the
/// unnamed statement does not exist. (With the default LIFO reuse and no other client, the
/// Bind usually lands on the same server connection and the race stays hidden, which is
/// what makes it dangerous in production under concurrency.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_mode_extended_protocol_outside_a_transaction_fails() -> TestResult {
    let b = bounced("bouncer-limit", PoolMode::Transaction).await?;
    let mut admin = PgConnection::connect_with(&console(&b.bouncer)).await?;
    sqlx::raw_sql("SET server_round_robin = 1")
        .execute(&mut admin)
        .await?;
    let pool = b.pool();
    // Two transactions at once make PgBouncer open two server connections; both go idle.
    let mut first = pool.acquire().await?;
    let mut second = pool.acquire().await?;
    let mut tx1 = first.begin().await?;
    let mut tx2 = second.begin().await?;
    for tx in [&mut tx1, &mut tx2] {
        sqlx::raw_sql("SELECT 1").execute(&mut **tx).await?;
    }
    tx1.commit().await?;
    tx2.commit().await?;
    drop(second);

    let error = sqlx::query_scalar::<_, i32>("SELECT $1::int4")
        .bind(1)
        .persistent(false)
        .fetch_one(&mut *first)
        .await
        .expect_err("the Bind reaches a server connection without the statement");
    let text = error_text(&error);
    assert!(
        text.contains("26000") && text.contains("unnamed prepared statement does not exist"),
        "{text}"
    );
    // Inside a transaction the same statement works: PgBouncer keeps the server connection.
    let mut tx = first.begin().await?;
    let one: i32 = sqlx::query_scalar("SELECT $1::int4")
        .bind(1)
        .persistent(false)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    assert_eq!(one, 1);
    let _ = admin.close().await;
    eprintln!("PgBouncer transaction mode, bound statement outside a transaction: {text}");
    Ok(())
}

/// Why queries need `.persistent(false)` in transaction mode, even inside a transaction:
/// sqlx names each statement (`sqlx_s_1`, `sqlx_s_2`, ... per client connection) and, with
/// the statement cache off, never closes it, so it stays on the server connection PgBouncer
/// lent. The next client whose counter reaches the same name on that server connection
/// fails. With one idle server connection (PgBouncer opens no second one for serial work)
/// this happens every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_mode_named_statements_collide_across_clients() -> TestResult {
    let b = bounced("bouncer-named", PoolMode::Transaction).await?;
    let pool = b.pool();
    let mut first = pool.acquire().await?;
    let mut second = pool.acquire().await?;
    let mut tx = first.begin().await?;
    let one: i32 = sqlx::query_scalar("SELECT $1::int4")
        .bind(1)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    assert_eq!(one, 1);

    let mut tx = second.begin().await?;
    let error = sqlx::query_scalar::<_, i32>("SELECT $1::int4 + 1")
        .bind(1)
        .fetch_one(&mut *tx)
        .await
        .expect_err("the second client's sqlx_s_1 already exists on the server connection");
    let text = error_text(&error);
    assert!(
        text.contains("42P05") && text.contains("prepared statement \"sqlx_s_1\" already exists"),
        "{text}"
    );
    tx.rollback().await?;
    // The same statement, unnamed, works.
    let mut tx = second.begin().await?;
    let two: i32 = sqlx::query_scalar("SELECT $1::int4 + 1")
        .bind(1)
        .persistent(false)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    assert_eq!(two, 2);
    eprintln!("PgBouncer transaction mode, named statements of two clients: {text}");
    Ok(())
}

/// A query timeout behind PgBouncer in session mode cancels the pool's own backend and
/// nobody else's: the timed-out connection stays open until its cancel has run, so
/// PgBouncer cannot lend that server connection to another client first. Here PgBouncer
/// holds two server connections; a second client waits for one while the pool's query times
/// out, and a third lets go of the other only after the cancel has queued behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_timeout_behind_pgbouncer_never_cancels_another_clients_query() -> TestResult {
    let mut b = bounced("bouncer-cancel", PoolMode::Session).await?;
    let mut admin = PgConnection::connect_with(&b.bouncer.admin_options()).await?;
    sqlx::raw_sql("SET default_pool_size = 2")
        .execute(&mut admin)
        .await?;
    let _ = admin.close().await;
    b.settings.max_connections = 1;
    b.settings.query_timeout = Some(Duration::from_millis(300));
    b.settings.connect_timeout = Duration::from_secs(2);
    let pool = b.pool();
    let client = support::client_options(&b.settings);

    // The other server connection goes to a client that lets go of it after 600 ms.
    let mut holder = PgConnection::connect_with(&client).await?;
    sqlx::raw_sql("SELECT 1").execute(&mut holder).await?;
    let timed_out = tokio::spawn({
        let pool = pool.clone();
        async move {
            pool.run(|c| {
                Box::pin(async move { sqlx::raw_sql("SELECT pg_sleep(5)").execute(c).await })
            })
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Waits for a server connection from here on: the first PgBouncer can lend it.
    let bystander = tokio::spawn(async move {
        let mut conn = PgConnection::connect_with(&client).await?;
        let result = sqlx::raw_sql("SELECT pg_sleep(1)").execute(&mut conn).await;
        let _ = conn.close().await;
        result.map(drop)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = holder.close().await;

    let error = timed_out.await?.expect_err("the pool's query timed out");
    assert!(
        error_text(&error).contains("while running a query"),
        "{error}"
    );
    let bystander = bystander.await?;
    eprintln!("a query timeout behind PgBouncer: the other client's query: {bystander:?}");
    assert!(
        bystander.is_ok(),
        "the cancel for the pool's timed-out query reached another client: {bystander:?}"
    );
    Ok(())
}
