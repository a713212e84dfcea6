//! Server-side counts: max respected, min kept, killed backends replaced, rotated passwords.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use pool_core::CloseReason;
use pool_testkit::TestDatabase;
use sqlx::{AssertSqlSafe, Connection};

use crate::{SLACK, backends, backends_until, build, settings_for};

#[tokio::test]
async fn server_connections_never_exceed_max() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.max_connections = 3;
    let app = settings.application_name.clone();
    let pool = build("max", &settings);
    let peak = Arc::new(AtomicI64::new(0));
    let watcher = {
        let peak = Arc::clone(&peak);
        let mut admin = db.admin_connection().await.unwrap();
        tokio::spawn(async move {
            for _ in 0..60 {
                let n = backends(&mut admin, &app).await;
                peak.fetch_max(n, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            sqlx::query("SELECT pg_sleep(0.05)")
                .execute(&pool)
                .await
                .map(drop)
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    watcher.await.unwrap();
    let peak = peak.load(Ordering::Relaxed);
    assert!((1..=3).contains(&peak), "peak {peak}");
    assert!(pool.stats().total <= 3);
}

#[tokio::test]
async fn min_connections_are_open_after_start_and_after_a_reap() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.max_connections = 5;
    settings.min_connections = 2;
    settings.idle_timeout = Some(Duration::from_millis(500));
    let app = settings.application_name.clone();
    let pool = build("min", &settings);
    let mut admin = db.admin_connection().await.unwrap();
    assert!(backends_until(&mut admin, &app, Duration::from_secs(10), |n| n == 2).await);
    let held: Vec<_> = futures_util::future::join_all((0..5).map(|_| pool.acquire())).await;
    assert!(held.iter().all(Result::is_ok));
    assert_eq!(backends(&mut admin, &app).await, 5);
    drop(held);
    assert!(
        backends_until(&mut admin, &app, Duration::from_secs(10), |n| n == 2).await,
        "reaped down to min_connections"
    );
    assert_eq!(pool.stats().closed.get(CloseReason::Idle), 3);
    assert_eq!(pool.stats().total, 2);
    assert!(pool.close(Duration::from_secs(10)).await.is_complete());
}

#[tokio::test]
async fn terminated_backends_are_replaced() {
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.max_connections = 4;
    settings.min_connections = 2;
    settings.validate_after_idle = Some(Duration::from_millis(100));
    let app = settings.application_name.clone();
    let pool = build("kill", &settings);
    let mut admin = db.admin_connection().await.unwrap();
    assert!(backends_until(&mut admin, &app, Duration::from_secs(10), |n| n == 2).await);
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(&app)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(killed.len(), 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..4 {
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(one, 1);
    }
    let stats = pool.stats();
    assert!(
        stats.closed.get(CloseReason::ValidationFailed) + stats.closed.get(CloseReason::Broken)
            >= 2,
        "{stats:?}"
    );
    assert!(backends_until(&mut admin, &app, Duration::from_secs(10), |n| n >= 2).await);
    assert!(pool.close(Duration::from_secs(10)).await.is_complete());
}

#[tokio::test]
async fn a_rotated_password_is_used_by_new_connections() {
    let db = TestDatabase::create().await.unwrap();
    let (role, mut settings) = crate::credentials::role_for(&db, "first-secret").await;
    let mut admin = db.admin_connection().await.unwrap();
    settings.password = pool_config::Secret::new("first-secret");
    let pool = build("rotate", &settings);
    let old = pool.acquire().await.unwrap();
    crate::credentials::set_role_password(&db, &role, "second-secret").await;
    pool.connector().set_password("second-secret");
    // A new connection (the old one is still checked out) logs in with the new password.
    let mut new = pool.acquire().await.unwrap();
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut *new)
        .await
        .unwrap();
    assert_eq!(user, role);
    assert_eq!(pool.stats().total, 2, "the pool was not dropped");
    drop((old, new));
    pool.close(Duration::from_secs(5)).await;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE {db} WITH (FORCE); DROP ROLE {role}",
        db = db.name()
    )))
    .execute(&mut admin)
    .await
    .ok();
    let _ = admin.close().await;
}

/// CPU time (ns) the calling thread has run, from the scheduler's statistics.
fn thread_cpu_ns() -> u64 {
    schedstat_run_ns("/proc/thread-self/schedstat")
}

/// CPU time (ns) every live thread of this process has run.
fn process_cpu_ns() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(Result::ok)
        .map(|task| schedstat_run_ns(task.path().join("schedstat")))
        .sum()
}

fn schedstat_run_ns(path: impl AsRef<std::path::Path>) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

// The test's thread is the runtime's only worker (current-thread runtime).
#[tokio::test]
async fn logins_run_off_the_workers_and_replacements_serve_waiters_in_order() {
    const WAITERS: usize = 16;
    let db = TestDatabase::create().await.unwrap();
    // A SCRAM login is what costs the CPU; under trust authentication there is none.
    if !db.require_password_auth().await.unwrap() {
        return;
    }
    let mut settings = settings_for(&db);
    settings.max_connections = 2;
    // Every release retires its connection: each waiter is served by a fresh login.
    settings.max_uses = Some(1);
    let pool = build("logins", &settings);
    let served = Arc::new(std::sync::Mutex::new(Vec::with_capacity(WAITERS)));
    let (worker_before, process_before) = (thread_cpu_ns(), process_cpu_ns());
    let tasks: Vec<_> = (0..WAITERS)
        .map(|i| {
            let pool = pool.clone();
            let served = Arc::clone(&served);
            tokio::spawn(async move {
                let mut conn = pool.acquire().await.expect("acquire");
                served.lock().unwrap().push(i);
                sqlx::query_scalar::<_, i32>("SELECT 1")
                    .fetch_one(&mut *conn)
                    .await
                    .expect("SELECT 1");
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let worker = thread_cpu_ns() - worker_before;
    let process = process_cpu_ns() - process_before;
    let served = served.lock().unwrap().clone();
    assert_eq!(
        served,
        (0..WAITERS).collect::<Vec<_>>(),
        "each replacement goes to the oldest waiter"
    );
    assert!(
        pool.stats().closed.get(CloseReason::MaxUses) >= WAITERS as u64 - 2,
        "every release retired its connection: {:?}",
        pool.stats().closed
    );
    // The logins' key derivation runs on blocking threads: the worker keeps under half of
    // the client's CPU, free to run other tasks meanwhile.
    assert!(
        worker * 2 < process,
        "the worker ran {} µs of the client's {} µs of CPU over {WAITERS} logins: the logins \
         ran on the worker",
        worker / 1000,
        process / 1000
    );
}

/// A query dropped after it was sent leaves its reply on the wire. The connection it was on
/// is drained in the background (within `cleanup_timeout`, by default `connect_timeout`) and
/// then serves the waiters oldest first: the same server session, not a new login, and none
/// of them reads the dropped query's reply as its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_released_with_an_unread_reply_is_drained_and_serves_the_oldest_waiter() {
    const WAITERS: usize = 3;
    let db = TestDatabase::create().await.unwrap();
    let mut settings = settings_for(&db);
    settings.max_connections = 1;
    let pool = build("unread", &settings);
    let mut conn = pool.acquire().await.expect("acquire");
    let session: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .expect("pg_backend_pid");
    // Sent, then dropped 50 ms into the 300 ms before its reply.
    let dropped = tokio::time::timeout(
        Duration::from_millis(50),
        sqlx::query_scalar::<_, i32>("SELECT 7 FROM pg_sleep(0.3)").fetch_one(&mut *conn),
    )
    .await;
    assert!(dropped.is_err(), "the query ended before it was dropped");

    let served = Arc::new(std::sync::Mutex::new(Vec::with_capacity(WAITERS)));
    let mut waiters = Vec::with_capacity(WAITERS);
    for i in 0..WAITERS {
        let (waiter_pool, served) = (pool.clone(), Arc::clone(&served));
        waiters.push(tokio::spawn(async move {
            let mut conn = waiter_pool
                .acquire()
                .await
                .expect("acquire after the drain");
            let waited = std::time::Instant::now();
            served.lock().unwrap().push(i);
            let (pid, echoed): (i32, i32) = sqlx::query_as("SELECT pg_backend_pid(), $1::int4")
                .bind(i as i32 + 100)
                .fetch_one(&mut *conn)
                .await
                .expect("a query on the drained connection");
            (pid, echoed, waited)
        }));
        // Queued one after the other, so the order they are served in is the FIFO's.
        assert!(
            crate::eventually(SLACK, || pool.stats().waiting as usize == i + 1).await,
            "waiter {i} is queued"
        );
    }
    let released = std::time::Instant::now();
    drop(conn);

    for (i, waiter) in waiters.into_iter().enumerate() {
        let (pid, echoed, served_at) = waiter.await.unwrap();
        assert_eq!(
            pid, session,
            "waiter {i} got the same session, drained, not a new one"
        );
        assert_eq!(echoed, i as i32 + 100, "waiter {i} read its own reply");
        if i == 0 {
            let took = served_at - released;
            assert!(
                took <= settings.connect_timeout + SLACK,
                "the first waiter was served {took:?} after the release: the drain is bounded \
                 by cleanup_timeout ({:?})",
                settings.connect_timeout
            );
        }
    }
    assert_eq!(*served.lock().unwrap(), (0..WAITERS).collect::<Vec<_>>());
    let stats = pool.stats();
    assert_eq!(
        stats.closed.total(),
        0,
        "nothing closed: {:?}",
        stats.closed
    );
    assert_eq!(stats.total, 1, "one connection throughout");
}
