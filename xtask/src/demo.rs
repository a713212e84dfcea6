//! `cargo xtask demo`: the pools at work against a throwaway PostgreSQL.
//!
//! It starts a dedicated server, loads `config/` with the development profile, builds the
//! registry (`default` and `replica`), and runs concurrent workers doing real queries with a
//! live status line per pool. Midway it restarts the server and shows the pools recover; it
//! ends with a health report and the close report. With `OTEL_EXPORTER_OTLP_ENDPOINT` set it
//! also exports the pools' metrics over OTLP.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use pool_config::{Loader, Profile, Settings};
use pool_core::{CloseReason, PoolObserver, PoolRegistry, TimeoutPhase};
use pool_testkit::{APP_PASSWORD, APP_USER, RestartMode, TestServer};

use crate::shell::{runtime, workspace_root};

/// Options of `cargo xtask demo`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// How long the workers run, in seconds; the server restarts halfway.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Workers per pool beyond its max_connections, so some of them wait.
    #[arg(long, default_value_t = 4)]
    extra_workers: u32,
    /// Print the whole health report (application/health+json) instead of one line per check.
    #[arg(long)]
    health_json: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.seconds >= 4,
        "--seconds must be at least 4 (the server restarts halfway)"
    );
    // Pool logs would scramble the live display; RUST_LOG turns them on.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    runtime()?.block_on(async {
        let server = start_server().await?;
        let outcome = tokio::select! {
            outcome = demo(&server, args) => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted (Ctrl-C)")),
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

fn load_settings(server: &TestServer, database: &str) -> anyhow::Result<Settings> {
    let config_dir = workspace_root().join("config");
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

    let total = Duration::from_secs(args.seconds);
    println!(
        "\n==> running workers for {}s ({} per pool beyond max_connections, so some wait); the server restarts at {}s",
        total.as_secs(),
        args.extra_workers,
        total.as_secs() / 2
    );
    let stop = tokio_util_like::StopFlag::default();
    let mut workers = Vec::new();
    for (name, pool) in registry.iter() {
        for _ in 0..pool.stats().max + args.extra_workers {
            let pool = pool.clone();
            let live = Arc::clone(&live[name]);
            let stop = stop.clone();
            workers.push(tokio::spawn(async move { work(pool, live, stop).await }));
        }
    }

    let started = Instant::now();
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
        let lines: Vec<String> = registry
            .iter()
            .map(|(name, pool)| live[name].status_line(name, &pool.stats()))
            .collect();
        display.show(&lines);
    }
    stop.stop();
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

    println!("\n==> health report (what /health/ready would answer)");
    let checker =
        pool_health::HealthChecker::for_registry(&registry, pool_health::HealthOptions::default())?;
    let report = checker.ready().await;
    println!("    status: {}", report.status());
    if args.health_json {
        println!("{:#}", report.to_json());
    } else {
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
    stop: tokio_util_like::StopFlag,
) {
    let as_executor = pool.name() == pool_config::DEFAULT_POOL;
    while !stop.is_stopped() {
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

/// Live numbers for one pool: acquire waits (from the pool's observer), query outcomes, and
/// the recovery after the restart. Forwards pool events to another observer (the metrics).
#[derive(Debug)]
struct Live {
    forward: Option<Arc<dyn PoolObserver>>,
    waits: Mutex<Vec<Duration>>,
    all_waits: Mutex<Vec<Duration>>,
    ok: AtomicU64,
    errors: AtomicU64,
    recovery: Mutex<Recovery>,
}

#[derive(Debug, Default)]
struct Recovery {
    restart_at: Option<Instant>,
    back_at: Option<Instant>,
    errors_after_restart: u64,
    last_error: Option<String>,
    first_ok_after_restart: Option<Duration>,
}

impl Recovery {
    /// "; last error: …" when a query failed, for the recovery line.
    fn last_error_note(&self) -> String {
        self.last_error
            .as_deref()
            .map(|e| format!("; last error: {}", first_line(e)))
            .unwrap_or_default()
    }
}

impl Live {
    fn new(forward: Option<Arc<dyn PoolObserver>>) -> Self {
        Self {
            forward,
            waits: Mutex::default(),
            all_waits: Mutex::default(),
            ok: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            recovery: Mutex::default(),
        }
    }

    fn recovery(&self) -> std::sync::MutexGuard<'_, Recovery> {
        self.recovery.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mark_restart(&self) {
        self.recovery().restart_at = Some(Instant::now());
    }

    fn mark_back(&self) {
        self.recovery().back_at = Some(Instant::now());
    }

    fn ok(&self) {
        // Ordering: independent counters, read for display only.
        self.ok.fetch_add(1, Ordering::Relaxed);
        let mut recovery = self.recovery();
        if let (Some(back), None) = (recovery.back_at, recovery.first_ok_after_restart) {
            recovery.first_ok_after_restart = Some(back.elapsed());
        }
    }

    fn error(&self, error: &anyhow::Error) {
        // Ordering: independent counters, read for display only.
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut recovery = self.recovery();
        if recovery.restart_at.is_some() && recovery.first_ok_after_restart.is_none() {
            recovery.errors_after_restart += 1;
        }
        recovery.last_error = Some(error.to_string());
    }

    fn status_line(&self, name: &str, stats: &pool_core::PoolStats) -> String {
        let window = std::mem::take(&mut *self.waits.lock().unwrap_or_else(|e| e.into_inner()));
        self.all_waits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(&window);
        format!(
            "{name:<8} total {:>2}  idle {:>2}  in use {:>2}  waiting {:>2} | acquire p50 {:>8} p99 {:>8} | queries ok {:>6} failed {:>4}",
            stats.total,
            stats.idle,
            stats.in_use,
            stats.waiting,
            percentile(&window, 0.50),
            percentile(&window, 0.99),
            self.ok.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }

    fn recovery_line(&self, name: &str) -> String {
        let recovery = self.recovery();
        match recovery.first_ok_after_restart {
            Some(after) => format!(
                "pool {name:<8} served again {:.0}ms after PostgreSQL was back ({} queries failed on broken connections meanwhile{})",
                after.as_secs_f64() * 1000.0,
                recovery.errors_after_restart,
                recovery.last_error_note()
            ),
            None => format!(
                "pool {name:<8} did not serve after the restart ({} queries failed{})",
                recovery.errors_after_restart,
                recovery.last_error_note()
            ),
        }
    }

    fn summary_line(&self, name: &str, stats: &pool_core::PoolStats) -> String {
        let mut waits = self
            .all_waits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        waits.sort_unstable();
        format!(
            "pool {name:<8} {} acquires ({} waited), {} connections opened, {} connect failures, {} closed; acquire p50 {} p99 {}",
            stats.acquired,
            stats.waited,
            stats.created,
            stats.connect_failures,
            stats.closed.total(),
            percentile(&waits, 0.50),
            percentile(&waits, 0.99),
        )
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

impl PoolObserver for Live {
    fn on_connect(&self, elapsed: Duration) {
        if let Some(forward) = &self.forward {
            forward.on_connect(elapsed);
        }
    }

    fn on_connect_error(&self) {
        if let Some(forward) = &self.forward {
            forward.on_connect_error();
        }
    }

    fn on_acquire(&self, wait: Duration) {
        self.waits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(wait);
        if let Some(forward) = &self.forward {
            forward.on_acquire(wait);
        }
    }

    fn on_release(&self, used: Duration) {
        if let Some(forward) = &self.forward {
            forward.on_release(used);
        }
    }

    fn on_remove(&self, reason: CloseReason) {
        if let Some(forward) = &self.forward {
            forward.on_remove(reason);
        }
    }

    fn on_timeout(&self, phase: TimeoutPhase) {
        if let Some(forward) = &self.forward {
            forward.on_timeout(phase);
        }
    }

    fn on_leak(&self, location: &'static std::panic::Location<'static>, held: Duration) {
        if let Some(forward) = &self.forward {
            forward.on_leak(location, held);
        }
    }
}

/// The `q` quantile of `samples` (sorted here), formatted; `-` when there are none.
fn percentile(samples: &[Duration], q: f64) -> String {
    if samples.is_empty() {
        return "-".to_owned();
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    // The nearest-rank method: the smallest sample with at least q of them at or below it.
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    let value = sorted[rank - 1];
    if value < Duration::from_millis(1) {
        format!("{}µs", value.as_micros())
    } else {
        format!("{:.1}ms", value.as_secs_f64() * 1000.0)
    }
}

/// The live display: lines redrawn in place on a terminal, printed every few ticks otherwise.
struct Display {
    lines: usize,
    drawn: bool,
    terminal: bool,
    ticks: u64,
}

impl Display {
    fn new(lines: usize) -> Self {
        Self {
            lines,
            drawn: false,
            terminal: std::io::stdout().is_terminal(),
            ticks: 0,
        }
    }

    fn show(&mut self, lines: &[String]) {
        self.ticks += 1;
        let mut out = std::io::stdout().lock();
        if self.terminal {
            if self.drawn {
                let _ = write!(out, "\x1b[{}A", self.lines);
            }
            for line in lines {
                let _ = writeln!(out, "\x1b[2K    {line}");
            }
            self.drawn = true;
        } else if self.ticks % 4 == 1 {
            for line in lines {
                let _ = writeln!(out, "    {line}");
            }
        }
        let _ = out.flush();
    }

    fn note(&mut self, text: &str) {
        // A note goes above the live lines, which are drawn again below it.
        self.drawn = false;
        println!("\n==> {text}");
    }
}

/// A flag the workers poll to stop.
mod tokio_util_like {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Debug, Clone, Default)]
    pub(super) struct StopFlag(Arc<AtomicBool>);

    impl StopFlag {
        pub(super) fn stop(&self) {
            // Ordering: a worker that misses it runs one more query; nothing else depends on it.
            self.0.store(true, Ordering::Relaxed);
        }

        pub(super) fn is_stopped(&self) -> bool {
            self.0.load(Ordering::Relaxed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 0.50), "50.0ms");
        assert_eq!(percentile(&samples, 0.99), "99.0ms");
        assert_eq!(percentile(&[Duration::from_micros(40)], 0.99), "40µs");
        assert_eq!(percentile(&[], 0.5), "-");
    }
}
