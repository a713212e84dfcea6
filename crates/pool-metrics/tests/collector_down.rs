//! A collector that is not there: the pools keep serving, one warning is logged (not one per
//! export), header values and the URL's credentials and query string stay out of the log and
//! the errors, and shutdown still returns.

mod support;

use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pool_metrics::{MetricsPipeline, MetricsSettings, Protocol};
use pool_testkit::TestDatabase;
use support::pg_pool;
use tracing_subscriber::fmt::MakeWriter;

/// Everything logged in this test binary (the exports log from the SDK's reader thread, so
/// the subscriber must be the global one).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn global() -> &'static Logs {
        static LOGS: OnceLock<Logs> = OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = Logs::default();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(logs.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
            logs
        })
    }

    fn lines_with(&self, needle: &str) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines()
            .filter(|l| l.contains(needle))
            .map(String::from)
            .collect()
    }
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter(Arc::clone(&self.0))
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn collector_down(protocol: Protocol) {
    let logs = Logs::global();
    let port = closed_port();
    let address = format!("127.0.0.1:{port}");
    // Over HTTP the URL also carries credentials and an API key in its query string, as some
    // collectors take them.
    let (endpoint, metrics_endpoint) = match protocol {
        Protocol::HttpProtobuf => (
            None,
            Some(format!(
                "http://user:s3cr3t-pw@{address}/v1/metrics?api_key=s3cr3t-key"
            )),
        ),
        _ => (Some(format!("http://{address}")), None),
    };
    let metrics = MetricsPipeline::start(MetricsSettings {
        endpoint,
        metrics_endpoint,
        protocol: Some(protocol),
        interval: Some(Duration::from_millis(100)),
        timeout: Some(Duration::from_millis(500)),
        headers: vec![("authorization".into(), "Bearer s3cr3t-token".into())],
        ..MetricsSettings::default()
    })
    .expect("a collector that is down is no start error");
    let db = TestDatabase::create().await.expect("test database");
    let pg = pg_pool(&db, "default", 2);
    metrics.instrument(&pg).unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while logs.lines_with(&address).is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no warning logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Several more export intervals fail meanwhile, and the pool serves as usual.
    let until = tokio::time::Instant::now() + Duration::from_millis(1500);
    let mut queries = 0;
    while tokio::time::Instant::now() < until {
        let mut conn = pg.acquire().await.expect("the pool keeps serving");
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut *conn)
            .await
            .expect("query");
        assert_eq!(one, 1);
        queries += 1;
    }
    assert!(queries > 0);
    assert_eq!(pg.stats().acquire_timeouts, 0);
    let lines = logs.lines_with(&address);
    assert_eq!(lines.len(), 1, "rate-limited: {lines:#?}");
    let line = &lines[0];
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("metrics export failed"), "{line}");
    assert!(line.contains(protocol.as_str()), "{line}");
    assert!(
        !line.contains("s3cr3t"),
        "header values never logged: {line}"
    );

    let result = tokio::time::timeout(Duration::from_secs(15), metrics.shutdown())
        .await
        .expect("shutdown returns while the collector is down");
    // The last export could not be delivered: shutdown says so, it does not hang or panic.
    assert!(result.is_err(), "{result:?}");
    assert!(!format!("{result:?}").contains("s3cr3t"), "{result:?}");
    assert!(logs.lines_with("s3cr3t").is_empty());
    pg.close(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_collector_down_is_a_warning_not_a_failure() {
    collector_down(Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_collector_down_is_a_warning_not_a_failure() {
    collector_down(Protocol::HttpProtobuf).await;
}
