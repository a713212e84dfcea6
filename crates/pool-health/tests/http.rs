//! The HTTP endpoints, exercised by a real HTTP client over 127.0.0.1.

#![cfg(feature = "http")]

mod support;

use std::time::Duration;

use pool_health::HEALTH_JSON;
use pool_testkit::{APP_PASSWORD, TestDatabase};
use serde_json::Value;
use support::{checker, pool, quick, wait_idle};

struct Answer {
    status: u16,
    content_type: String,
    body: Value,
}

async fn get(client: &reqwest::Client, base: &str, path: &str) -> anyhow::Result<Answer> {
    let response = client.get(format!("{base}{path}")).send().await?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await?;
    assert!(!text.contains(APP_PASSWORD), "{path} leaked the password");
    Ok(Answer {
        status,
        content_type,
        body: serde_json::from_str(&text)?,
    })
}

#[tokio::test]
async fn endpoints_answer_health_json_with_probe_status_codes() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let pool = pool("default", db.app_options(), 2, 1);
    wait_idle(&pool, 1).await;
    let checker = checker(quick(), vec![pool.clone()]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    // Public probes and the operator report on one port, as an application may mount them.
    let app = pool_health::http::router(checker.clone())
        .merge(pool_health::http::operator_router(checker.clone()));
    let server = tokio::spawn(pool_health::http::serve_router(
        listener,
        app,
        pool_health::http::ServeOptions::default(),
    ));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;

    for (path, description) in [
        ("/health", "servio-pool health"),
        ("/health/live", "servio-pool liveness"),
        ("/health/ready", "servio-pool readiness"),
    ] {
        let answer = get(&client, &base, path).await?;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        assert_eq!(answer.content_type, HEALTH_JSON, "{path}");
        assert_eq!(answer.body["status"], "pass", "{path}: {}", answer.body);
        assert_eq!(answer.body["description"], description);
        let open = &answer.body["checks"]["pool:open"][0];
        assert_eq!(open["componentId"], "default", "{path}: {}", answer.body);
        assert_eq!(open["status"], "pass");
        assert!(open["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    let full = get(&client, &base, "/health").await?.body;
    let connectivity = &full["checks"]["postgres:connectivity"][0];
    assert_eq!(connectivity["observedUnit"], "ms");
    assert!(connectivity["observedValue"].as_f64().is_some());
    assert!(full["checks"]["pool:stats"][0]["observedValue"]["max"].as_u64() == Some(2));
    assert!(full["checks"]["postgres:version"][0]["observedValue"].is_string());
    let live = get(&client, &base, "/health/live").await?.body;
    assert!(live["checks"].get("postgres:connectivity").is_none());
    // The public probes carry statuses only: no latency, counts or statistics.
    let ready = get(&client, &base, "/health/ready").await?.body;
    for (key, results) in ready["checks"].as_object().expect("checks") {
        for result in results.as_array().expect("a list per check") {
            assert!(result.get("observedValue").is_none(), "{key}: {ready}");
        }
    }
    let unknown = client.get(format!("{base}/health/nope")).send().await?;
    assert_eq!(unknown.status().as_u16(), 404);
    // `serve` mounts the public probes only: the operator report is not there.
    let public = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let public_base = format!("http://{}", public.local_addr()?);
    let public_server = tokio::spawn(pool_health::http::serve(public, checker.clone()));
    let none = client.get(format!("{public_base}/health")).send().await?;
    assert_eq!(none.status().as_u16(), 404);
    assert_eq!(
        get(&client, &public_base, "/health/ready").await?.status,
        200
    );
    public_server.abort();

    // Draining: readiness 503 at once, liveness still 200 (warn).
    let held = pool.acquire().await?;
    let closing = support::begin_close(&pool).await;
    let ready = get(&client, &base, "/health/ready").await?;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.content_type, HEALTH_JSON);
    assert_eq!(ready.body["status"], "fail");
    assert!(
        ready.body["output"]
            .as_str()
            .is_some_and(|o| o.contains("closing"))
    );
    let live = get(&client, &base, "/health/live").await?;
    assert_eq!(
        (live.status, live.body["status"].as_str()),
        (200, Some("warn"))
    );
    let full = get(&client, &base, "/health").await?;
    assert_eq!(full.status, 503);

    // Closed: liveness fails too.
    drop(held);
    closing.await?;
    let live = get(&client, &base, "/health/live").await?;
    assert_eq!(
        (live.status, live.body["status"].as_str()),
        (503, Some("fail"))
    );
    server.abort();
    Ok(())
}

/// Slow clients (half a request line, then nothing) are closed within the header-read
/// timeout, beyond the connection cap at once, and the pool serves throughout: the sockets
/// they would hold are file descriptors its connections need.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_closed_in_time_and_the_pool_keeps_serving() -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    const CLIENTS: usize = 2000;
    // The default header-read timeout of `serve` (5 s), plus generous slack for 2000
    // connections on a busy machine.
    let bound = Duration::from_secs(5) + Duration::from_secs(15);

    let db = TestDatabase::create().await?;
    let pool = pool("default", db.app_options(), 2, 1);
    wait_idle(&pool, 1).await;
    let checker = checker(quick(), vec![pool.clone()]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(pool_health::http::serve(listener, checker));

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let worker = tokio::spawn({
        let (pool, stop, served) = (pool.clone(), Arc::clone(&stop), Arc::clone(&served));
        async move {
            while !stop.load(Ordering::Relaxed) {
                let mut conn = pool.acquire().await.expect("acquire works throughout");
                let one: i32 = sqlx::query_scalar("SELECT 1")
                    .fetch_one(&mut *conn)
                    .await
                    .expect("a query works throughout");
                assert_eq!(one, 1);
                drop(conn);
                served.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });

    let started = tokio::time::Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(addr).await?;
                stream.write_all(b"GET /health/rea").await?;
                let mut buf = [0u8; 256];
                // Until the server closes the connection (or resets it).
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
                anyhow::Ok(())
            })
        })
        .collect();
    let mut still_open = 0;
    for client in clients {
        match tokio::time::timeout_at(started + bound, client).await {
            Ok(joined) => joined??,
            Err(_) => still_open += 1,
        }
    }
    assert_eq!(
        still_open, 0,
        "{still_open} of {CLIENTS} slow clients still held a connection after {bound:?}"
    );
    let before = served.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        served.load(Ordering::Relaxed) > before,
        "the pool still serves"
    );
    stop.store(true, Ordering::Relaxed);
    worker.await?;

    // And the endpoint still answers a real probe.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let ready = get(&client, &format!("http://{addr}"), "/health/ready").await?;
    assert_eq!(ready.status, 200, "{}", ready.body);
    server.abort();
    pool.close(Duration::from_secs(5)).await;
    Ok(())
}
