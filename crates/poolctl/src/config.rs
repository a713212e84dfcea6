//! `poolctl config`: the effective settings of every pool with their sources, lint findings,
//! and `--check` for deployment pipelines.
//!
//! Exit status: 0 when shown, or with `--check` when valid; 1 with `--check` when there are
//! errors (or warnings under `--deny-warnings`), and whenever the profile cannot be loaded
//! at all; 2 for usage errors.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use pool_config::{ConfigErrors, Finding, Level, LintContext, Loader, Profile, Settings};

mod markdown;
mod render;

/// Options of `poolctl config`.
#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// Profile to load (development, staging, production, test); default: APP_ENV, else
    /// NODE_ENV, else development.
    #[arg(long, value_name = "PROFILE", conflicts_with = "all_profiles")]
    profile: Option<Profile>,
    /// Load every profile (with --format markdown: the configuration documentation).
    #[arg(long)]
    all_profiles: bool,
    /// Directory holding default.toml and the profile file (production.toml, ...); default:
    /// SERVIO_CONFIG_DIR, else ./config.
    #[arg(long, value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Validate only: exit 0 when valid, 1 with the errors listed.
    #[arg(long)]
    check: bool,
    /// With --check, fail on warnings too.
    #[arg(long, requires = "check")]
    deny_warnings: bool,
    /// Service instances running this configuration (for the server budget check).
    #[arg(long, value_name = "N", requires = "server_max_connections")]
    instances: Option<u32>,
    /// The server's max_connections (for the server budget check).
    #[arg(long, value_name = "M")]
    server_max_connections: Option<u32>,
    /// Connections the server keeps for others (superuser_reserved_connections).
    #[arg(long, value_name = "K", default_value_t = LintContext::default().reserved_connections)]
    reserved_connections: u32,
}

/// How `poolctl config` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Aligned text for a terminal.
    Text,
    /// One JSON document.
    Json,
    /// Markdown tables, for documentation.
    Markdown,
}

/// One loaded profile: the settings as far as they resolved, every error, and the findings.
#[derive(Debug)]
pub(crate) struct ProfileReport {
    pub(crate) profile: Option<Profile>,
    pub(crate) settings: Option<Settings>,
    pub(crate) errors: ConfigErrors,
    pub(crate) findings: Vec<Finding>,
}

impl ProfileReport {
    fn load(args: &ConfigArgs, profile: Option<Profile>) -> Self {
        let mut loader = Loader::new();
        if let Some(dir) = &args.config_dir {
            loader = loader.config_dir(dir);
        }
        if let Some(profile) = profile {
            loader = loader.profile(profile);
        }
        match loader.load_lenient() {
            Ok((settings, errors)) => ProfileReport {
                profile: Some(settings.profile()),
                findings: settings.lint(&args.lint_context()),
                settings: Some(settings),
                errors,
            },
            Err(errors) => ProfileReport {
                profile,
                settings: None,
                errors,
                findings: Vec::new(),
            },
        }
    }

    fn warnings(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.level == Level::Warn)
            .count()
    }
}

impl ConfigArgs {
    fn lint_context(&self) -> LintContext {
        LintContext {
            instances: self.instances,
            server_max_connections: self.server_max_connections,
            reserved_connections: self.reserved_connections,
        }
    }
}

/// Runs `poolctl config`.
pub(crate) fn run(args: &ConfigArgs) -> ExitCode {
    let reports: Vec<ProfileReport> = if args.all_profiles {
        Profile::ALL
            .into_iter()
            .map(|p| ProfileReport::load(args, Some(p)))
            .collect()
    } else {
        vec![ProfileReport::load(args, args.profile)]
    };
    let output = match (args.format, args.check) {
        (Format::Json, _) => render::json(&reports, args.check),
        (Format::Markdown, false) if args.all_profiles => markdown::side_by_side(&reports),
        (Format::Markdown, _) => markdown::each(&reports),
        (Format::Text, true) => render::check_text(&reports, args.deny_warnings),
        (Format::Text, false) => render::text(&reports),
    };
    // A closed pipe (`poolctl config | head`) is not worth a panic.
    let _ = std::io::stdout().write_all(output.as_bytes());
    let unloadable = reports.iter().any(|r| r.settings.is_none());
    let invalid = reports.iter().any(|r| !r.errors.is_empty());
    let denied = args.deny_warnings && reports.iter().any(|r| r.warnings() > 0);
    if unloadable || (args.check && (invalid || denied)) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
