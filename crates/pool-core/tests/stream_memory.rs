//! A million rows streamed through `&Pool` in flat memory: the process's peak resident set
//! (`VmHWM`) grows by a small bounded amount, not with the size of the result. Alone in its
//! test binary, so no other test's allocations count.

use std::time::Duration;

use futures_util::TryStreamExt;
use pool_config::{PoolSettings, Profile, Secret, SslMode};
use pool_core::Pool;
use pool_testkit::{APP_PASSWORD, APP_USER, TestDatabase};
use sqlx::Row as _;

const ROWS: i64 = 1_000_000;

/// The peak resident set so far, in KiB (Linux); `None` elsewhere.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn a_million_rows_stream_in_flat_memory() {
    let Some(_) = peak_rss_kib() else {
        pool_testkit::skip(
            "linux",
            "no /proc/self/status to read the peak resident set from",
        );
        return;
    };
    let db = TestDatabase::create().await.unwrap();
    let mut settings = PoolSettings::for_profile(Profile::Test);
    settings.host = db.host().to_owned();
    settings.port = db.port().into();
    settings.database = db.name().to_owned();
    settings.username = APP_USER.to_owned();
    settings.password = Secret::new(APP_PASSWORD);
    settings.ssl_mode = SslMode::Disable;
    settings.min_connections = 0;
    // Reading a million rows in a debug build takes a while; the deadline bounds the stream.
    settings.query_timeout = Some(Duration::from_secs(600));
    settings.statement_timeout = None;
    let pool = Pool::from_settings("stream-memory", &settings).unwrap();
    let sql = format!("SELECT g, md5(g::text) AS digest FROM generate_series(1, {ROWS}) g");

    // Warm up: the connection, its buffers and the statement are in place before measuring.
    let warm: Vec<_> = sqlx::query(sqlx::AssertSqlSafe(sql.replace(&ROWS.to_string(), "1000")))
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(warm.len(), 1000);
    drop(warm);
    let before = peak_rss_kib().unwrap();

    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).fetch(&pool);
    let (mut count, mut bytes) = (0_i64, 0_usize);
    while let Some(row) = rows.try_next().await.unwrap() {
        count += 1;
        bytes += row.get::<&str, _>("digest").len();
    }
    drop(rows);
    let after = peak_rss_kib().unwrap();

    assert_eq!(count, ROWS);
    let growth = after.saturating_sub(before);
    eprintln!(
        "streamed {count} rows ({} MiB of digests) through &Pool: peak RSS {before} KiB before, \
         {after} KiB after, growth {growth} KiB",
        bytes / (1024 * 1024)
    );
    // Buffered, the rows alone would take well over 100 MiB; streamed, the growth is the
    // socket and decode buffers.
    assert!(
        growth < 32 * 1024,
        "peak RSS grew by {growth} KiB while streaming {ROWS} rows"
    );
    assert_eq!(pool.stats().in_use, 0);
    pool.close(Duration::from_secs(5)).await;
}
