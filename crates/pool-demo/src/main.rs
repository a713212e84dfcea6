//! The pools at work against a throwaway PostgreSQL (`cargo xtask demo` runs this).
//!
//! It starts a dedicated server, loads `config/` with the development profile, builds the
//! registry (`default` and `replica`), serves the health endpoints on a local port, and runs
//! concurrent workers doing real queries with a live status line per pool. Halfway it
//! restarts the server and shows the pools recover (and `/health/ready` turn to fail and back);
//! it ends with a health report and the close report. With `OTEL_EXPORTER_OTLP_ENDPOINT` set
//! it also exports the pools' metrics over OTLP. Ctrl-C stops it and removes the server.

mod display;
mod live;
mod readiness;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use pool_config::{Loader, Profile, Settings};
use pool_core::{PoolObserver, PoolRegistry};
use pool_testkit::{APP_PASSWORD, APP_USER, RestartMode, TestServer};

use crate::display::Display;
use crate::live::Live;
use crate::readiness::Readiness;

/// servio-pool at work against a throwaway PostgreSQL, through a server restart.
#[derive(Debug, Clone, Parser)]
#[command(name = "cargo xtask demo", bin_name = "cargo xtask demo")]
struct Args {
    /// How long the workers run (`20s`, `5s`, `1m`); the server restarts halfway.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Workers per pool beyond its max_connections, so some of them wait.
    #[arg(long, default_value_t = 4)]
    extra_workers: u32,
    /// Port for the health endpoints on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    health_port: u16,
    /// Print the whole health report (application/health+json) instead of one line per check.
    #[arg(long)]
    health_json: bool,
}

/// The shortest run: the restart at its middle needs time before and after it.
const MIN_DURATION: Duration = Duration::from_secs(2);

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("\ndemo: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.duration >= MIN_DURATION,
        "--duration must be at least {} (the server restarts halfway)",
        humantime::format_duration(MIN_DURATION)
    );
    // Pool logs would scramble the live display; RUST_LOG turns them on.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        // Installed before the server starts: a Ctrl-C at any point must still remove it.
        let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let work = async {
            let server = start_server().await?;
            let outcome = demo(&server, args).await;
            Ok::<_, anyhow::Error>((server, outcome))
        };
        let (server, outcome) = tokio::select! {
            done = work => done?,
            _ = interrupt.recv() => anyhow::bail!("interrupted (Ctrl-C): the throwaway PostgreSQL is removed"),
            _ = terminate.recv() => anyhow::bail!("terminated (SIGTERM): the throwaway PostgreSQL is removed"),
        };
        println!("\n==> stopping the throwaway PostgreSQL and removing its files");
        drop(server);
        outcome
    })
}

async fn start_server() -> anyhow::Result<TestServer> {
    println!("==> starting a throwaway PostgreSQL");
    println!(
        "    why: the demo restarts it midway, so it runs natively (initdb + pg_ctl): a restart keeps its port"
    );
    let removed = pool_testkit::sweep_leftovers();
    if removed > 0 {
        println!("    (removed {removed} leftover(s) of earlier runs that were killed)");
    }
    let server = TestServer::start().await.context(
        "the demo needs the PostgreSQL server binaries (Debian/Ubuntu: `apt-get install postgresql`; \
         or set SERVIO_TEST_PG_BINDIR to the directory holding initdb and pg_ctl)",
    )?;
    println!("    PostgreSQL at {}:{}", server.host(), server.port());
    Ok(server)
}

/// `config/` of the workspace (the demo runs from anywhere): two levels above this crate.
fn config_dir() -> PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .unwrap_or(manifest)
        .join("config")
}

fn load_settings(server: &TestServer, database: &str) -> anyhow::Result<Settings> {
    let config_dir = config_dir();
    let mut vars: Vec<(String, String)> = vec![
        ("DB_HOST".into(), server.host().into()),
        ("DB_PORT".into(), server.port().to_string()),
        ("DB_NAME".into(), database.into()),
        ("DB_USERNAME".into(), APP_USER.into()),
        ("DB_PASSWORD".into(), APP_PASSWORD.into()),
    ];
    // Let a reader try other numbers: SERVIO_POOL_MAX_CONNECTIONS=4 cargo xtask demo.
    vars.extend(std::env::vars().filter(|(name, _)| name.starts_with("SERVIO_POOL_")));
    println!(
        "\n==> loading {} with the development profile (DB_* point at the throwaway server)",
        config_dir.display()
    );
    Loader::new()
        .config_dir(&config_dir)
        .profile(Profile::Development)
        .env(vars)
        .load()
        .map_err(|errors| anyhow::anyhow!("the configuration does not load:\n{errors}"))
}

async fn demo(server: &TestServer, args: &Args) -> anyhow::Result<()> {
    let database = server.database().await?;
    let settings = load_settings(server, database.name())?;
    let registry = PoolRegistry::from_settings(&settings)?;
    for (name, pool) in registry.iter() {
        let stats = pool.stats();
        println!(
            "    pool {name:<8} max_connections {:>3}, min_connections {:>2}",
            stats.max, stats.min
        );
    }

    let metrics = metrics_pipeline()?;
    let mut live = BTreeMap::new();
    for (name, pool) in registry.iter() {
        let forward = match &metrics {
            Some(pipeline) => Some(pipeline.metrics().register(name, {
                let pool = pool.clone();
                move || pool.stats()
            })? as Arc<dyn PoolObserver>),
            None => None,
        };
        let observer = Arc::new(Live::new(forward));
        pool.set_observer(observer.clone());
        live.insert(name.to_owned(), observer);
    }

    let checker =
        pool_health::HealthChecker::for_registry(&registry, pool_health::HealthOptions::default())?;
    let endpoints = serve_health(&checker, args.health_port).await?;
    let started = Instant::now();
    let readiness = Readiness::watch(checker.clone(), started);

    let total = args.duration;
    println!(
        "\n==> running workers for {:.1}s ({} per pool beyond max_connections, so some wait); the server restarts at {:.1}s",
        total.as_secs_f64(),
        args.extra_workers,
        total.as_secs_f64() / 2.0
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for (name, pool) in registry.iter() {
        for _ in 0..pool.stats().max + args.extra_workers {
            let pool = pool.clone();
            let live = Arc::clone(&live[name]);
            let stop = Arc::clone(&stop);
            workers.push(tokio::spawn(async move { work(pool, live, stop).await }));
        }
    }

    let mut display = Display::new(live.len());
    let mut restarted = false;
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    while started.elapsed() < total {
        ticker.tick().await;
        if !restarted && started.elapsed() >= total / 2 {
            restarted = true;
            display.note(&format!(
                "restarting PostgreSQL (fast shutdown: every open connection breaks) at {:.1}s",
                started.elapsed().as_secs_f64()
            ));
            let restart_started = Instant::now();
            for observer in live.values() {
                observer.mark_restart();
            }
            server.restart(RestartMode::Fast).await?;
            for observer in live.values() {
                observer.mark_back();
            }
            display.note(&format!(
                "PostgreSQL is back after {:.2}s; the pools discard broken connections and open new ones",
                restart_started.elapsed().as_secs_f64()
            ));
        }
        for change in readiness.changes() {
            display.note(&change);
        }
        let lines: Vec<String> = registry
            .iter()
            .map(|(name, pool)| live[name].status_line(name, &pool.stats()))
            .collect();
        display.show(&lines);
    }
    // Ordering: a worker that misses it runs one more query; nothing else depends on it.
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.await;
    }

    println!("\n==> recovery after the restart");
    for (name, observer) in &live {
        println!("    {}", observer.recovery_line(name));
    }

    println!("\n==> totals");
    for (name, pool) in registry.iter() {
        println!("    {}", live[name].summary_line(name, &pool.stats()));
    }

    print_health_report(&checker, args.health_json).await;
    readiness.stop();
    println!(
        "    /health/ready while the demo ran: {}",
        readiness.history()
    );
    endpoints.abort();

    println!("\n==> closing the pools (close report)");
    for report in registry.close_all(Duration::from_secs(5)).await {
        println!(
            "    pool {:<8} closed {} idle, {} returned while closing, {} waiters failed, {} still checked out: {}",
            report.pool,
            report.closed_idle,
            report.returned,
            report.waiters_failed,
            report.still_checked_out.len(),
            if report.is_complete() {
                "complete"
            } else {
                "INCOMPLETE"
            }
        );
        for checked_out in &report.still_checked_out {
            println!("        {checked_out}");
        }
    }
    if let Some(pipeline) = metrics {
        println!("\n==> flushing metrics to the OTLP collector");
        if let Err(error) = pipeline.shutdown().await {
            println!("    the collector did not take them: {error}");
        }
    }
    Ok(())
}

/// Serves `/health`, `/health/live` and `/health/ready` on 127.0.0.1 while the demo runs, and
/// prints the line to try.
async fn serve_health(
    checker: &pool_health::HealthChecker,
    port: u16,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| {
            format!("cannot listen on 127.0.0.1:{port} for the health endpoints (try another --health-port)")
        })?;
    let addr = listener.local_addr()?;
    println!(
        "\n==> health endpoints on http://{addr} while the demo runs (/health/live, /health/ready; \
         /health, the operators' report, is served here too because this port is local)"
    );
    println!("    try, in another terminal: curl -si http://{addr}/health/ready");
    let app = pool_health::http::router(checker.clone())
        .merge(pool_health::http::operator_router(checker.clone()));
    Ok(tokio::spawn(pool_health::http::serve_router(
        listener,
        app,
        pool_health::http::ServeOptions::default(),
    )))
}

async fn print_health_report(checker: &pool_health::HealthChecker, json: bool) {
    println!("\n==> health report (what /health/ready answers now)");
    let report = checker.ready().await;
    println!("    status: {}", report.status());
    if json {
        println!("{:#}", report.to_json());
        return;
    }
    for (key, results) in report.checks() {
        for result in results {
            let observed = result
                .observed_value()
                .map(|value| format!("{value} {}", result.observed_unit().unwrap_or_default()))
                .unwrap_or_default();
            println!(
                "    {key:<24} {:<8} {:<5} {}",
                result.component_id(),
                result.status(),
                observed.trim_end()
            );
        }
    }
    println!("    (--health-json prints the whole application/health+json document)");
}

/// The OTLP pipeline, when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the metrics variant) is set.
fn metrics_pipeline() -> anyhow::Result<Option<pool_metrics::MetricsPipeline>> {
    let settings = pool_metrics::MetricsSettings::from_env()?;
    if !settings.endpoint_configured() {
        println!("    metrics: set OTEL_EXPORTER_OTLP_ENDPOINT to export them over OTLP as well");
        return Ok(None);
    }
    println!(
        "    metrics: exporting over OTLP to {} ({})",
        settings.resolved_endpoint(),
        settings.resolved_protocol()
    );
    Ok(Some(pool_metrics::MetricsPipeline::start(settings)?))
}

/// The short real query every worker runs (2 to 10 ms on the server).
const QUERY: &str = "SELECT pg_sleep(0.002 + random() * 0.008)";

/// One worker: a short real query at a time until stopped. Workers of the `default` pool use
/// `&Pool` as an sqlx executor (how most `PgPool` call sites move over); the others check a
/// connection out and run the query on it with `run`. Both let the pool see an error that
/// shows the connection broken (the server restarted) and retire that connection.
async fn work(
    pool: pool_core::Pool<pool_core::PgConnector>,
    live: Arc<Live>,
    stop: Arc<AtomicBool>,
) {
    let as_executor = pool.name() == pool_config::DEFAULT_POOL;
    // Ordering: see where it is set.
    while !stop.load(Ordering::Relaxed) {
        let result = if as_executor {
            sqlx::query(QUERY).execute(&pool).await.map(drop)
        } else {
            async {
                let mut conn = pool.acquire().await?;
                conn.run(|c| Box::pin(async move { sqlx::query(QUERY).execute(c).await }))
                    .await
                    .map(drop)
            }
            .await
        };
        match result {
            Ok(()) => live.ok(),
            Err(error) => {
                live.error(&anyhow::Error::new(error));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
