//! `poolctl check`: runs the health checks of pool-health against the configured database(s),
//! with the same settings loading as `poolctl config`.
//!
//! Exit status: 0 when every check passes or warns, 1 when one fails or the settings cannot
//! be loaded, 2 for usage errors.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use pool_config::{Loader, Profile, Settings};
use pool_core::{PgConnector, Pool};
use pool_health::{HealthChecker, HealthOptions, HealthReport, keys};
use serde_json::Value;

/// Options of `poolctl check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Profile to load (development, staging, production, test); default: APP_ENV, else
    /// NODE_ENV, else development.
    #[arg(long, value_name = "PROFILE")]
    profile: Option<Profile>,
    /// Directory holding default.toml and the profile file (production.toml, ...); default:
    /// SERVIO_CONFIG_DIR, else ./config.
    #[arg(long, value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Output format: aligned text, or the application/health+json report.
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    format: CheckFormat,
    /// Service instances running this configuration: reports the connection budget
    /// (instances x (max_connections + 1 probe) per server against its max_connections minus
    /// reserved connections).
    #[arg(long, value_name = "N")]
    instances: Option<u32>,
}

/// How `poolctl check` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CheckFormat {
    /// Aligned text for a terminal.
    Text,
    /// The `application/health+json` report.
    Json,
}

/// The checks in the order an operator reads them; the statistics object is left to JSON.
const TEXT_ORDER: [&str; 13] = [
    keys::POOL_OPEN,
    keys::CONNECTIVITY,
    keys::POOL_WAITING,
    keys::POOL_WAIT_TIME,
    keys::POOL_CONNECTIONS,
    keys::POOL_ACQUIRE_TIMEOUTS,
    keys::SERVER_VERSION,
    keys::SERVER_MAX_CONNECTIONS,
    keys::SERVER_RESERVED_CONNECTIONS,
    keys::SERVER_CONNECTIONS,
    keys::SERVER_ROLE,
    keys::SERVER_REPLICATION_LAG,
    keys::SERVER_CONNECTION_BUDGET,
];

/// Runs `poolctl check`.
pub(crate) fn run(args: &CheckArgs) -> ExitCode {
    match check(args) {
        Ok(report) => {
            let output = match args.format {
                CheckFormat::Json => {
                    serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
                }
                CheckFormat::Text => text(&report),
            };
            // A closed pipe (`poolctl check | head`) is not worth a panic.
            let _ = std::io::stdout().write_all(output.as_bytes());
            if report.status().is_healthy() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("poolctl check: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<HealthReport> {
    let settings = load(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let pools = pools(&settings)?;
        let options = HealthOptions {
            timeout: deadline(&settings),
            cache_ttl: Duration::ZERO,
            // The operator asked about this configuration's servers: name them.
            show_hosts: true,
            instances: args.instances,
            ..HealthOptions::default()
        };
        let checker = HealthChecker::new(options, pools.iter().cloned())?;
        let report = checker.report().await;
        for pool in &pools {
            pool.close(Duration::from_secs(1)).await;
        }
        Ok(report)
    })
}

fn load(args: &CheckArgs) -> anyhow::Result<Settings> {
    let mut loader = Loader::new();
    if let Some(dir) = &args.config_dir {
        loader = loader.config_dir(dir);
    }
    if let Some(profile) = args.profile {
        loader = loader.profile(profile);
    }
    loader.load().map_err(|errors| {
        let listed: Vec<String> = errors.errors().iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "the settings do not load (see `poolctl config --check`):\n  {}",
            listed.join("\n  ")
        )
    })
}

/// One pool per declared pool, opening nothing in the background (`min_connections` 0): the
/// check connects only what it needs.
fn pools(settings: &Settings) -> anyhow::Result<Vec<Pool<PgConnector>>> {
    settings
        .pools()
        .map(|(name, pool_settings)| {
            let mut pool_settings = pool_settings.clone();
            pool_settings.min_connections = 0;
            Pool::from_settings(name, &pool_settings)
                .map_err(|e| anyhow::anyhow!("pool {name}: {e}"))
        })
        .collect()
}

/// Room for a connect (the slowest pool's `connect_timeout`) and a round trip after it.
fn deadline(settings: &Settings) -> Duration {
    let connect = settings
        .pools()
        .map(|(_, p)| p.connect_timeout)
        .max()
        .unwrap_or_default();
    connect + Duration::from_secs(1)
}

/// Each pool's checks, one line each, then the overall status.
fn text(report: &HealthReport) -> String {
    let mut out = String::new();
    let mut pools: Vec<&str> = report
        .check(keys::POOL_OPEN)
        .iter()
        .map(|r| r.component_id())
        .collect();
    pools.dedup();
    let width = TEXT_ORDER.iter().map(|k| k.len()).max().unwrap_or(0);
    for pool in pools {
        let endpoint = report
            .find(keys::SERVER_ENDPOINT, pool)
            .and_then(|r| r.observed_value())
            .map(|v| format!("  ({})", shown(v)))
            .unwrap_or_default();
        let _ = writeln!(out, "pool {pool}{endpoint}");
        for key in TEXT_ORDER {
            let Some(result) = report.find(key, pool) else {
                continue;
            };
            let mut line = result.observed_value().map(shown).unwrap_or_default();
            if let Some(unit) = result.observed_unit() {
                let _ = write!(line, " {unit}");
            }
            if let Some(why) = result.output() {
                if !line.is_empty() {
                    line.push_str(": ");
                }
                line.push_str(why);
            }
            let _ = writeln!(out, "  {:<4}  {key:<width$}  {line}", result.status());
        }
        out.push('\n');
    }
    let _ = writeln!(out, "status: {}", report.status());
    out
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
