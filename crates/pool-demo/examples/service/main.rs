//! A service as the workspace README shows it: settings and the registry, migrations at
//! start-up, a handler that uses `begin()`, a streaming export, a LISTEN loop, health and
//! metrics. `cargo run -p pool-demo --example service` runs it against `DATABASE_URL` (or
//! `DB_*`) and `./config`; `tests/service.rs` runs it against the test server.

use std::io::Write;
use std::time::Duration;

use futures_util::TryStreamExt as _;
use pool_config::Settings;
use pool_core::{PgConnector, Pool, PoolRegistry};
use pool_health::{HealthChecker, HealthOptions, Status};
use pool_metrics::{MetricsPipeline, MetricsSettings};
use sqlx::migrate::Migrator;
use tokio::sync::mpsc;

/// Any error, for `?` on every crate's errors alike.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

// README: service start
/// The service's migrations, embedded at compile time.
static MIGRATOR: Migrator = sqlx::migrate!("examples/service/migrations");

/// What one run of the service did.
#[derive(Debug)]
pub(crate) struct Summary {
    /// The ids of the orders placed.
    pub(crate) placed: Vec<i64>,
    /// Rows the export wrote.
    pub(crate) exported: u64,
    /// Payloads the LISTEN loop heard.
    pub(crate) heard: Vec<String>,
    /// What readiness said while serving.
    pub(crate) ready: Status,
}

/// Start-up, a little traffic, shutdown.
pub(crate) async fn run(settings: Settings, metrics: MetricsSettings) -> Result<Summary, BoxError> {
    // Start-up: every declared pool, then the migrations, before serving anything.
    let pools = PoolRegistry::from_settings(&settings)?;
    let db = pools.get("default")?.clone();
    db.migrate(&MIGRATOR).await?; // pool-core's `migrate` feature
    let metrics = MetricsPipeline::start(metrics)?; // OTLP; an unreachable collector is logged
    metrics.metrics().instrument_registry(&pools)?;
    let health = HealthChecker::for_registry(&pools, HealthOptions::default())?;

    // A LISTEN loop beside the handlers: one connection of its own, outside the pools.
    let mut listener = db.listener().await?;
    listener.listen("orders").await?;
    let (heard, mut hearing) = mpsc::unbounded_channel();
    let listening = tokio::spawn(async move {
        loop {
            match listener.recv().await {
                Ok(note) if heard.send(note.payload().to_owned()).is_ok() => {}
                Ok(_) => return,
                // The server is away; the next recv() reconnects and listens again.
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    });

    // Handlers.
    let mut placed = Vec::new();
    for customer in 1..=3 {
        placed.push(place_order(&db, customer, 250 * customer, &["tea", "cake"]).await?);
    }
    let exported = export_orders(&db, &mut std::io::sink()).await?;
    let mut notes = Vec::new();
    while notes.len() < placed.len() {
        match tokio::time::timeout(Duration::from_secs(10), hearing.recv()).await {
            Ok(Some(payload)) => notes.push(payload),
            _ => break,
        }
    }
    let ready = health.ready().await.status(); // what /health/ready answers

    // Shutdown: stop listening, drain the pools, send the last metrics.
    listening.abort();
    pools.close_all(Duration::from_secs(10)).await;
    if let Err(error) = metrics.shutdown().await {
        // The collector is away: the last values are lost, the shutdown goes on.
        eprintln!("metrics: the last export failed: {error}");
    }
    Ok(Summary {
        placed,
        exported,
        heard: notes,
        ready,
    })
}

/// A handler: an order and its lines in one transaction, announced on commit.
async fn place_order(
    db: &Pool<PgConnector>,
    customer: i64,
    cents: i64,
    skus: &[&str],
) -> Result<i64, sqlx::Error> {
    let mut tx = db.begin().await?; // owns its connection until commit or drop
    let id: i64 =
        sqlx::query_scalar("INSERT INTO orders (customer, cents) VALUES ($1, $2) RETURNING id")
            .bind(customer)
            .bind(cents)
            .fetch_one(&mut tx)
            .await?;
    for sku in skus {
        sqlx::query("INSERT INTO order_lines (order_id, sku) VALUES ($1, $2)")
            .bind(id)
            .bind(sku)
            .execute(&mut tx)
            .await?;
    }
    sqlx::query("SELECT pg_notify('orders', $1::text)")
        .bind(id)
        .execute(&mut tx)
        .await?; // delivered at commit, not before
    tx.commit().await?;
    Ok(id)
}

/// A streaming export: rows are written as they arrive, never all in memory.
async fn export_orders(db: &Pool<PgConnector>, out: &mut impl Write) -> Result<u64, BoxError> {
    let mut rows =
        sqlx::query_as::<_, (i64, i64, i64)>("SELECT id, customer, cents FROM orders ORDER BY id")
            .fetch(db);
    let mut written = 0;
    while let Some((id, customer, cents)) = rows.try_next().await? {
        writeln!(out, "{id},{customer},{cents}")?;
        written += 1;
    }
    Ok(written)
}
// README: service end

#[allow(dead_code)] // a module of tests/service.rs too, where this is not the entry point
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let settings = Settings::load()?;
    let summary = run(settings, MetricsSettings::from_env()?).await?;
    println!(
        "placed {:?}, exported {}, heard {:?}, ready {:?}",
        summary.placed, summary.exported, summary.heard, summary.ready
    );
    Ok(())
}
